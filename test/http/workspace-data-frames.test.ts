/**
 * Workspace data frames over HTTP against the real server: indexing, pages with Oxen's options and SQL,
 * row and column edits, metadata, embeddings, download and rename, refusals (4xx, never 500), the changes
 * and status of a workspace with edited frames, committing each format back as a new version, conflicts,
 * edits surviving a restart, and two processes sharing the stores (PostgreSQL; skipped without it).
 */
import { strict as assert } from 'node:assert';
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FrameEngine } from '../../src/storage/frames/engine.js';
import type { TabularFormat } from '../../src/core/tabular.js';
import { startYokeProcess } from '../helpers/cli.js';
import { startPostgres } from '../helpers/postgres.js';
import { AUTHOR, assertEnvelope, createRepo, putFiles, startTestServer, type TestServer } from '../helpers/server.js';

const TESTDATA = '/work/shared/testdata/data_frames';
const COMMIT = { message: 'edit frames', author: AUTHOR.name, email: AUTHOR.email };
const PEOPLE_CSV = 'name,age,city\nann,30,Oslo\nbob,40,Rome\ncid,25,Lima\n';

const json = (method: string, body?: unknown): RequestInit => ({ method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

describe('workspace data frames', () => {
  let server: TestServer;
  let scratch: string;
  let engine: FrameEngine;
  const R = 'wsdf/repo';
  const api = (path: string) => `/api/repos/${R}${path}`;
  const df = (ws: string, rest: string) => api(`/workspaces/${ws}/data_frames/${rest}`);
  const newWorkspace = async (id: string, extra: Record<string, unknown> = {}) => {
    const res = await server.json(api('/workspaces'), json('PUT', { workspace_id: id, branch_name: 'main', ...extra }));
    assert.equal(res.status, 200, JSON.stringify(res.body));
  };
  const index = async (ws: string, path: string) => {
    const res = await server.json(df(ws, `resource/${path}`), { method: 'PUT', body: JSON.stringify({ is_indexed: true }) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  };
  const page = async (ws: string, path: string, query = '') => {
    const res = await server.json(df(ws, `resource/${path}${query}`));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  };
  const rows = async (ws: string, path: string, query = '') => (await page(ws, path, query)).data_frame.view.data as Array<Record<string, unknown>>;
  const committed = async (path: string) => Buffer.from(await (await server.fetch(api(`/file/main/${path}`))).arrayBuffer());
  /** Rows of a file's bytes, read by DuckDB as the format says. */
  const parse = async (bytes: Buffer, format: TabularFormat) => {
    const file = join(scratch, `parse-${Math.random().toString(36).slice(2)}.${format}`);
    await writeFile(file, bytes);
    return engine.withFrame({ path: file, format }, async (frame) => (await frame.rows('SELECT * FROM df')).rows);
  };

  before(async () => {
    server = await startTestServer();
    scratch = await mkdtemp(join(tmpdir(), 'yoke-wsdf-'));
    engine = new FrameEngine({ scratchDir: scratch });
    await createRepo(server, 'wsdf', 'repo');
    const put = await putFiles(server, R, 'main', [{ name: 'people.csv', content: PEOPLE_CSV }], { ...AUTHOR, message: 'people' });
    assert.equal(put.status, 200, JSON.stringify(put.body));
  });
  after(async () => {
    await engine.close();
    await server.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('pages a file before it is indexed (is_indexed false), then the indexed frame with _oxen_id', async () => {
    await newWorkspace('w-read');
    const before = await page('w-read', 'people.csv');
    assertEnvelope(before, 'success');
    assert.equal(before.is_indexed, false);
    assert.equal(before.resource, null);
    assert.deepEqual(before.data_frame.view.data, [
      { name: 'ann', age: 30, city: 'Oslo' },
      { name: 'bob', age: 40, city: 'Rome' },
      { name: 'cid', age: 25, city: 'Lima' },
    ]);
    await index('w-read', 'people.csv');
    await index('w-read', 'people.csv');
    const after = await page('w-read', 'people.csv');
    assert.equal(after.is_indexed, true);
    assert.equal(after.resource.path, 'people.csv');
    assert.deepEqual(
      after.data_frame.view.schema.fields.map((f: { name: string; dtype: string }) => `${f.name}:${f.dtype}`),
      ['name:str', 'age:i64', 'city:str', '_oxen_id:str'],
    );
    assert.deepEqual(after.data_frame.view.data.map((r: Record<string, unknown>) => r.name), ['ann', 'bob', 'cid']);
    assert.deepEqual(after.data_frame.source.size, { height: 3, width: 4 });
    assert.equal(after.data_frame.view.pagination.total_entries, 3);
    const ids = after.data_frame.view.data.map((r: Record<string, unknown>) => r._oxen_id);
    assert.equal(new Set(ids).size, 3);
    const status = await server.json(api('/workspaces/w-read/changes'));
    assert.equal(status.body.staged.modified_files.entries.length, 0, 'indexing alone changes nothing');
  });
  it('adds, reads, updates (one and a batch), deletes and restores rows; before indexing, row routes are 400 dataset_not_indexed', async () => {
    await newWorkspace('w-rows');
    const early = await server.json(df('w-rows', 'rows/resource/people.csv'), json('POST', { name: 'dan' }));
    assert.equal(early.status, 400);
    assertEnvelope(early.body, 'error');
    assert.equal(early.body.error.type, 'dataset_not_indexed');
    await index('w-rows', 'people.csv');

    const added = await server.json(df('w-rows', 'rows/resource/people.csv'), json('POST', { data: { name: 'dan', age: 51, city: 'Kyiv' } }));
    assert.equal(added.status, 200, JSON.stringify(added.body));
    const danId = added.body.row_id as string;
    assert.match(danId, /^[0-9a-f-]{36}$/);
    assert.deepEqual(added.body.data_frame.view.data, [{ name: 'dan', age: 51, city: 'Kyiv', _oxen_id: danId }]);
    // Several at once, each naming its own columns (the others are null); a row's own _oxen_id is not taken.
    const several = await server.json(df('w-rows', 'rows/resource/people.csv'), json('POST', [{ name: 'eve' }, { age: 7, _oxen_id: 'mine' }]));
    assert.equal(several.status, 200, JSON.stringify(several.body));
    assert.deepEqual(several.body.data_frame.view.data.map((r: Record<string, unknown>) => [r.name, r.age, r.city]), [['eve', null, null], [null, 7, null]]);
    assert.notEqual(several.body.data_frame.view.data[1]._oxen_id, 'mine');
    assert.deepEqual((await rows('w-rows', 'people.csv')).map((r) => r.name), ['ann', 'bob', 'cid', 'dan', 'eve', null]);

    const got = await server.json(df('w-rows', `rows/${danId}/resource/people.csv`));
    assert.equal(got.status, 200);
    assert.equal(got.body.row_id, danId);
    assert.deepEqual(got.body.data_frame.view.data, [{ name: 'dan', age: 51, city: 'Kyiv', _oxen_id: danId }]);

    const bobId = (await rows('w-rows', 'people.csv'))[1]._oxen_id as string;
    const updated = await server.json(df('w-rows', `rows/${bobId}/resource/people.csv`), json('PUT', { city: 'Bari', _oxen_id: 'ignored' }));
    assert.equal(updated.status, 200, JSON.stringify(updated.body));
    assert.equal(updated.body.status_message, 'resource_updated');
    assert.deepEqual(updated.body.data_frame.view.data, [{ name: 'bob', age: 40, city: 'Bari', _oxen_id: bobId }]);

    const batch = await server.json(df('w-rows', 'rows/resource/people.csv'), json('PUT', { data: [{ row_id: danId, value: { age: 52 } }, { row_id: bobId, value: { name: 'rob', age: '41' } }] }));
    assert.equal(batch.status, 200, JSON.stringify(batch.body));
    assert.deepEqual(batch.body.rows, [{ row_id: danId, code: 200, error: null }, { row_id: bobId, code: 200, error: null }]);
    const now = await rows('w-rows', 'people.csv');
    assert.deepEqual(now.slice(0, 4).map((r) => [r.name, r.age, r.city]), [['ann', 30, 'Oslo'], ['rob', 41, 'Bari'], ['cid', 25, 'Lima'], ['dan', 52, 'Kyiv']]);

    const deleted = await server.json(df('w-rows', `rows/${danId}/resource/people.csv`), { method: 'DELETE' });
    assert.equal(deleted.status, 200);
    assert.equal(deleted.body.status_message, 'resource_deleted');
    assert.deepEqual(deleted.body.data_frame.view.data.map((r: Record<string, unknown>) => r.age), [52], 'answers with the row as it was');
    assert.equal((await server.json(df('w-rows', `rows/${danId}/resource/people.csv`))).status, 404);

    // Restoring: a row of the file gets the file's values back, a deleted one comes back in its place, an added one goes.
    const restored = await server.json(df('w-rows', `rows/${bobId}/restore/people.csv`), { method: 'POST' });
    assert.equal(restored.status, 200, JSON.stringify(restored.body));
    assert.deepEqual(restored.body.data_frame.view.data, [{ name: 'bob', age: 40, city: 'Rome', _oxen_id: bobId }]);
    const annId = now[0]._oxen_id as string;
    assert.equal((await server.json(df('w-rows', `rows/${annId}/resource/people.csv`), { method: 'DELETE' })).status, 200);
    assert.equal((await server.json(df('w-rows', `rows/${annId}/restore/people.csv`), { method: 'POST' })).status, 200);
    const eveId = several.body.row_id as string;
    const gone = await server.json(df('w-rows', `rows/${eveId}/restore/people.csv`), { method: 'POST' });
    assert.equal(gone.status, 200);
    assert.deepEqual(gone.body.data_frame.view.data, []);
    assert.deepEqual((await rows('w-rows', 'people.csv')).map((r) => r.name), ['ann', 'bob', 'cid', null]);
  });
  it('adds, renames, retypes and deletes columns, with column and schema metadata in the schema', async () => {
    await newWorkspace('w-cols');
    // Metadata may be set before indexing (the frame is indexed to hold it).
    const early = await server.json(df('w-cols', 'columns/schema/metadata/people.csv'), json('POST', { column_name: 'name', metadata: { _oxen: { render: { func: 'text' } } } }));
    assert.equal(early.status, 200, JSON.stringify(early.body));
    const added = await server.json(df('w-cols', 'columns/resource/people.csv'), json('POST', { name: 'score', data_type: 'f64' }));
    assert.equal(added.status, 200, JSON.stringify(added.body));
    assert.deepEqual(added.body.data_frame.view.schema.fields.map((f: { name: string }) => f.name), ['name', 'age', 'city', 'score', '_oxen_id']);
    assert.deepEqual(added.body.data_frame.view.data.map((r: Record<string, unknown>) => r.score), [null, null, null]);

    const renamed = await server.json(df('w-cols', 'columns/city/resource/people.csv'), json('PUT', { new_name: 'town', metadata: { unit: 'place' } }));
    assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
    const retyped = await server.json(df('w-cols', 'columns/age/resource/people.csv'), json('PUT', { new_data_type: 'str' }));
    assert.equal(retyped.status, 200, JSON.stringify(retyped.body));
    assert.deepEqual(retyped.body.data_frame.view.data[0], { name: 'ann', age: '30', town: 'Oslo', score: null, _oxen_id: '0' });
    const bad = await server.json(df('w-cols', 'columns/name/resource/people.csv'), json('PUT', { new_data_type: 'i64' }));
    assert.equal(bad.status, 400, 'ann is no number');
    assertEnvelope(bad.body, 'error');
    assert.equal((await server.json(df('w-cols', 'columns/score/resource/people.csv'), { method: 'DELETE' })).status, 200);
    assert.equal((await server.json(df('w-cols', 'schema/people.csv'), json('PUT', { metadata: { task: 'census' } }))).status, 200);

    const schema = await server.json(df('w-cols', 'schema/people.csv'));
    assert.equal(schema.status, 200);
    assert.deepEqual(
      schema.body.fields.map((f: { name: string; dtype: string; metadata: unknown }) => [f.name, f.dtype, f.metadata]),
      [['name', 'str', { _oxen: { render: { func: 'text' } } }], ['age', 'str', null], ['town', 'str', { unit: 'place' }]],
    );
    assert.deepEqual(schema.body.metadata, { task: 'census' });
    const unindexed = await server.json(df('w-read', 'schema/people.csv'));
    assert.deepEqual(unindexed.body.fields.map((f: { name: string }) => f.name), ['name', 'age', 'city']);

    for (const [method, path, body, type] of [
      ['POST', 'columns/resource/people.csv', { name: 'town', data_type: 'str' }, 'column_error'],
      ['POST', 'columns/resource/people.csv', { name: '_oxen_id', data_type: 'str' }, 'column_error'],
      ['POST', 'columns/resource/people.csv', { name: 'x', data_type: 'complex128' }, 'column_error'],
      ['PUT', 'columns/nope/resource/people.csv', { new_name: 'x' }, 'column_error'],
      ['PUT', 'columns/name/resource/people.csv', { new_name: 'town' }, 'column_error'],
      ['DELETE', 'columns/nope/resource/people.csv', undefined, 'column_error'],
      ['POST', 'columns/schema/metadata/people.csv', { column_name: 'nope', metadata: {} }, 'column_error'],
    ] as const) {
      const res = await server.json(df('w-cols', path), json(method, body));
      assert.equal(res.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.type, type, JSON.stringify(res.body));
    }
  });

  it('answers the view options and SQL on the edited frame; SQL runs in the sandbox only', async () => {
    await newWorkspace('w-query');
    await index('w-query', 'people.csv');
    await server.json(df('w-query', 'rows/resource/people.csv'), json('POST', { name: 'dan', age: 51, city: 'Oslo' }));
    assert.deepEqual((await rows('w-query', 'people.csv', '?sort_by=age&reverse=true')).map((r) => r.name), ['dan', 'bob', 'ann', 'cid']);
    assert.deepEqual((await rows('w-query', 'people.csv', '?filter=city%20%3D%3D%20Oslo&columns=name,age')), [{ name: 'ann', age: 30 }, { name: 'dan', age: 51 }]);
    const second = await page('w-query', 'people.csv', '?page=2&page_size=3');
    assert.deepEqual(second.data_frame.view.data.map((r: Record<string, unknown>) => r.name), ['dan']);
    assert.deepEqual(second.data_frame.view.pagination, { page_number: 2, page_size: 3, total_pages: 2, total_entries: 4 });
    assert.deepEqual((await rows('w-query', 'people.csv', '?reverse=true&page_size=2')).map((r) => r.name), ['dan', 'cid']);

    const sql = await page('w-query', 'people.csv', `?sql=${encodeURIComponent("SELECT city, count(*) AS n FROM df GROUP BY city ORDER BY n DESC, city")}`);
    assert.deepEqual(sql.data_frame.view.data, [{ city: 'Oslo', n: 2 }, { city: 'Lima', n: 1 }, { city: 'Rome', n: 1 }]);
    assert.equal(sql.data_frame.view.pagination.total_entries, 3);
    const byId = await rows('w-query', 'people.csv', `?sql=${encodeURIComponent("SELECT * FROM df WHERE name = 'dan'")}`);
    assert.equal(byId.length, 1);
    assert.equal(typeof byId[0]._oxen_id, 'string', 'the sandbox sees _oxen_id');
    for (const bad of [
      "SELECT * FROM read_csv('/etc/passwd')",
      'DELETE FROM df',
      "COPY df TO '/tmp/yoke-stolen.csv'",
      'SELECT * FROM df; SELECT 1',
      "ATTACH '/tmp/x.duckdb' AS x",
      'SELECT * FROM rows',
      'SELECT nope FROM df',
    ]) {
      const res = await server.json(df('w-query', `resource/people.csv?sql=${encodeURIComponent(bad)}`));
      assert.equal(res.status, 400, `${bad}: ${JSON.stringify(res.body)}`);
      assertEnvelope(res.body, 'error');
      assert.doesNotMatch(JSON.stringify(res.body), /yoke-test-|replicas/, 'no server path in the message');
    }
    const unknown = await server.json(df('w-query', 'resource/people.csv?sort_by=nope'));
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error.type, 'column_error');
  });

  it('enables embeddings and sorts rows by cosine similarity (neighbors, and find_embedding_where in the sandbox)', async () => {
    const vectors = [
      { id: '1', title: 'A', embedding: [0.1, 0.2, 0.3] },
      { id: '2', title: 'B', embedding: [0.2, 0.3, 0.4] },
      { id: '3', title: 'C', embedding: [0.3, 0.4, 0.5] },
      { id: '4', title: 'D', embedding: [-0.3, 0.1, -0.5] },
    ];
    const put = await putFiles(server, R, 'main', [{ name: 'vectors.jsonl', content: vectors.map((v) => JSON.stringify(v)).join('\n') + '\n' }], { ...AUTHOR, message: 'vectors' });
    assert.equal(put.status, 200);
    await newWorkspace('w-emb');
    await index('w-emb', 'vectors.jsonl');
    assert.deepEqual((await server.json(df('w-emb', 'embeddings/columns/vectors.jsonl'))).body.columns, []);
    const enabled = await server.json(df('w-emb', 'embeddings/columns/vectors.jsonl'), json('POST', { column: 'embedding', use_background_thread: false }));
    assert.equal(enabled.status, 200, JSON.stringify(enabled.body));
    assert.deepEqual(enabled.body.columns, [{ name: 'embedding', vector_length: 3, status: 'complete' }]);
    assert.deepEqual((await server.json(df('w-emb', 'embeddings/columns/vectors.jsonl'))).body.columns, enabled.body.columns);

    const near = await server.json(df('w-emb', 'embeddings/neighbors/vectors.jsonl'), json('POST', { column: 'embedding', embedding: [0.3, 0.4, 0.5], page_size: 2, page_num: 1 }));
    assert.equal(near.status, 200, JSON.stringify(near.body));
    const found = near.body.data_frame.view.data;
    assert.deepEqual(found.map((r: Record<string, unknown>) => r.id), ['3', '2']);
    assert.deepEqual(found[0].embedding, [0.3, 0.4, 0.5]);
    assert.ok(Math.abs(found[0].similarity - 1) < 1e-9);
    assert.ok(found[0].similarity >= found[1].similarity);
    assert.equal(near.body.data_frame.view.pagination.total_entries, 4);

    const where = await rows('w-emb', 'vectors.jsonl', `?find_embedding_where=${encodeURIComponent("title = 'A' OR title = 'C'")}&sort_by_similarity_to=embedding&page_size=3`);
    assert.deepEqual(where.map((r) => r.id), ['2', '3', '1'], 'the mean of A and C is B');
    for (const [body, status] of [
      [{ column: 'nope', embedding: [1, 2, 3] }, 400],
      [{ column: 'title', embedding: [1, 2, 3] }, 400],
      [{ column: 'embedding', embedding: [] }, 400],
      [{ column: 'embedding', embedding: ['x'] }, 400],
    ] as const) {
      const res = await server.json(df('w-emb', 'embeddings/neighbors/vectors.jsonl'), json('POST', body));
      assert.equal(res.status, status, `${JSON.stringify(body)}: ${JSON.stringify(res.body)}`);
    }
    const other = await server.json(df('w-emb', 'embeddings/neighbors/vectors.jsonl'), json('POST', { column: 'embedding', embedding: [1, 2] }));
    assert.equal(other.status, 200, 'vectors of another length have no similarity');
    assert.ok(other.body.data_frame.view.data.every((r: Record<string, unknown>) => r.similarity === null));
    const noMatch = await server.json(df('w-emb', `resource/vectors.jsonl?find_embedding_where=${encodeURIComponent("title = 'Z'")}&sort_by_similarity_to=embedding`));
    assert.equal(noMatch.status, 400);
    const sneaky = await server.json(df('w-emb', `resource/vectors.jsonl?find_embedding_where=${encodeURIComponent("1=1 AND (SELECT count(*) FROM read_csv('/etc/passwd')) > 0")}&sort_by_similarity_to=embedding`));
    assert.equal(sneaky.status, 400);
  });
  it('refuses bad input with 4xx in the error envelope, never 500', async () => {
    await newWorkspace('w-bad');
    await index('w-bad', 'people.csv');
    const someId = (await rows('w-bad', 'people.csv'))[0]._oxen_id as string;
    const cases: Array<[string, string, unknown, number, string?]> = [
      ['POST', 'rows/resource/people.csv', { nope: 1 }, 400, 'schema_error'],
      ['POST', 'rows/resource/people.csv', { age: 'old' }, 400],
      ['POST', 'rows/resource/people.csv', [], 400],
      ['POST', 'rows/resource/people.csv', 'not a row', 400],
      ['POST', 'rows/resource/people.csv', [{ name: 'x' }, 3], 400],
      ['PUT', `rows/${someId}/resource/people.csv`, { nope: 1 }, 400, 'schema_error'],
      ['PUT', `rows/${someId}/resource/people.csv`, { age: [1, 2] }, 400],
      ['PUT', 'rows/no-such-row/resource/people.csv', { age: 1 }, 404],
      ['GET', 'rows/no-such-row/resource/people.csv', undefined, 404],
      ['DELETE', 'rows/no-such-row/resource/people.csv', undefined, 404],
      ['POST', 'rows/no-such-row/restore/people.csv', undefined, 404],
      ['PUT', 'rows/resource/people.csv', [{ row_id: someId, value: { age: 1 } }, { row_id: 'no-such-row', value: { age: 2 } }], 404],
      ['PUT', 'rows/resource/people.csv', [{ value: { age: 1 } }], 400],
      ['PUT', 'rows/resource/people.csv', { row_id: someId }, 400],
      ['PUT', 'resource/people.csv', { is_indexed: 'yes' }, 400],
      ['PUT', 'resource/nope.csv', { is_indexed: true }, 404],
      ['GET', 'resource/nope.csv', undefined, 404],
      ['GET', 'resource/people.csv?page_size=lots', undefined, 400],
      ['GET', 'rows/x/resource/nope.csv', undefined, 400, 'dataset_not_indexed'],
      ['PUT', 'rename/people.csv', { new_path: 'notes.txt' }, 400],
      ['PUT', 'rename/people.csv', { new_path: '' }, 400],
      ['PUT', 'rename/people.csv', { new_path: '../up.csv' }, 400],
      ['PUT', 'columns/no-resource-here', { new_name: 'x' }, 400],
      ['POST', 'embeddings/columns/people.csv', { column: 'age' }, 400],
      ['GET', 'download/people.csv?output=out.xlsx', undefined, 400],
      ['GET', `download/people.csv?sql=${encodeURIComponent('DROP TABLE df')}`, undefined, 400],
    ];
    for (const [method, path, body, status, type] of cases) {
      const res = await server.fetch(df('w-bad', path), json(method, body));
      const text = await res.text();
      assert.equal(res.status, status, `${method} ${path} ${JSON.stringify(body)}: ${text}`);
      const parsed = JSON.parse(text);
      assertEnvelope(parsed, 'error');
      if (type) assert.equal(parsed.error.type, type, text);
    }
    // Bodies that are not JSON, or sent as text without a Content-Type (as Oxen's client sends them).
    const notJson = await server.fetch(df('w-bad', 'rows/resource/people.csv'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":' });
    assert.equal(notJson.status, 400);
    const asText = await server.json(df('w-bad', 'rows/resource/people.csv'), { method: 'POST', body: JSON.stringify({ name: 'text' }) });
    assert.equal(asText.status, 200, JSON.stringify(asText.body));
    // A file that is not tabular, and one DuckDB cannot read.
    await putFiles(server, R, 'main', [{ name: 'notes.txt', content: 'hello' }, { name: 'broken.parquet', content: await readFile(join(TESTDATA, 'invalid.parquet')) }], { ...AUTHOR, message: 'odd files' });
    await newWorkspace('w-odd');
    const notTabular = await server.json(df('w-odd', 'resource/notes.txt'), json('PUT', { is_indexed: true }));
    assert.equal(notTabular.status, 400);
    const broken = await server.json(df('w-odd', 'resource/broken.parquet'), json('PUT', { is_indexed: true }));
    assert.equal(broken.status, 400, JSON.stringify(broken.body));
    assert.equal(broken.body.error.type, 'data_frame_error');
    assert.doesNotMatch(JSON.stringify(broken.body), /blobs\/objects/, 'the blob\'s path on the server is not shown');
    assert.equal((await page('w-odd', 'broken.parquet').catch(() => null)), null);
  });

  it('shows edited frames in changes as modified, and commits each format back as a new version whose bytes parse to the edited rows', async () => {
    const files: Array<[string, TabularFormat, string | Buffer]> = [
      ['formats/a.csv', 'csv', 'k,v\none,1\n"two, quoted",2\n'],
      ['formats/b.tsv', 'tsv', 'k\tv\none\t1\ntwo\t2\n'],
      ['formats/c.jsonl', 'jsonl', '{"k":"one","v":1}\n{"k":"two","v":2}\n'],
      ['formats/d.ndjson', 'ndjson', '{"k":"one","v":1}\n{"k":"two","v":2}\n'],
      ['formats/e.parquet', 'parquet', Buffer.alloc(0)],
    ];
    // The Parquet file is written by DuckDB from the same rows.
    const parquet = join(scratch, 'e.parquet');
    const fileEngine = new FrameEngine({ scratchDir: join(scratch, 'writer') });
    await writeFile(join(scratch, 'e.csv'), 'k,v\none,1\ntwo,2\n');
    await fileEngine.exportSelect({ path: join(scratch, 'e.csv'), format: 'csv' }, 'SELECT * FROM df', { path: parquet, format: 'parquet' });
    await fileEngine.close();
    files[4][2] = await readFile(parquet);
    const put = await putFiles(server, R, 'main', files.map(([path, , content]) => ({ name: path, content })), { ...AUTHOR, message: 'formats' });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const before = new Map<string, Buffer>();
    for (const [path] of files) before.set(path, await committed(path));

    await newWorkspace('w-formats');
    for (const [path] of files) {
      await index('w-formats', path);
      const [first] = await rows('w-formats', path);
      assert.equal((await server.json(df('w-formats', `rows/${first._oxen_id}/resource/${path}`), json('PUT', { v: 10 }))).status, 200);
      assert.equal((await server.json(df('w-formats', `rows/resource/${path}`), json('POST', { k: 'three, "quoted"', v: 3 }))).status, 200);
    }
    await index('w-formats', 'people.csv');

    const changes = await server.json(api('/workspaces/w-formats/changes'));
    assert.equal(changes.status, 200);
    const modified = changes.body.staged.modified_files;
    assert.deepEqual(modified.entries.map((e: { filename: string }) => e.filename), files.map(([path]) => path), 'indexed without edits: not a change');
    assert.equal(modified.total_entries, 5);
    const aEntry = modified.entries[0];
    assert.equal(aEntry.hash, (await server.json(api('/meta/main/formats/a.csv'))).body.entry.hash, "a modified frame shows its file's hash until committed");
    assert.equal(changes.body.staged.added_files.entries.length, 0);
    assert.deepEqual(changes.body.changes.map((c: { status: string }) => c.status), ['modified', 'modified', 'modified', 'modified', 'modified']);

    const commit = await server.json(api('/workspaces/w-formats/commit/main'), json('POST', COMMIT));
    assert.equal(commit.status, 200, JSON.stringify(commit.body));
    for (const [path, format] of files) {
      const bytes = await committed(path);
      assert.notDeepEqual(bytes, before.get(path), `${path} has new bytes`);
      const parsed = await parse(bytes, format);
      assert.deepEqual(parsed.map((r) => [r.k, Number(r.v)]), [['one', 10], [format === 'csv' ? 'two, quoted' : 'two', 2], ['three, "quoted"', 3]], path);
      const meta = await server.json(api(`/meta/main/${path}`));
      assert.equal(meta.body.entry.size, bytes.length);
      assert.equal(meta.body.entry.latest_commit.id, commit.body.commit.id);
    }
    assert.equal((await server.json(api('/workspaces/w-formats'))).status, 404, 'an unnamed workspace goes once committed');
  });

  it('commits through the workspace commit path: a frame changed on the branch meanwhile is a 409; a named workspace keeps edits made after the export', async () => {
    await newWorkspace('w-conflict');
    await index('w-conflict', 'people.csv');
    await server.json(df('w-conflict', 'rows/resource/people.csv'), json('POST', { name: 'zed', age: 9, city: 'Nuuk' }));
    const moved = await putFiles(server, R, 'main', [{ name: 'people.csv', content: PEOPLE_CSV + 'eli,60,Cork\n' }], { ...AUTHOR, message: 'people on main' });
    assert.equal(moved.status, 200);
    const conflict = await server.json(api('/workspaces/w-conflict/commit/main'), json('POST', COMMIT));
    assert.equal(conflict.status, 409, JSON.stringify(conflict.body));
    assert.equal((await committed('people.csv')).toString(), PEOPLE_CSV + 'eli,60,Cork\n');
    assert.equal((await rows('w-conflict', 'people.csv')).length, 4, 'the edits are still there');
    const mergeable = await server.json(api('/workspaces/w-conflict/merge/main'));
    assert.equal(mergeable.body.is_mergeable, false);

    await newWorkspace('w-named', { name: 'frames-named' });
    await index('w-named', 'people.csv');
    await server.json(df('w-named', 'rows/resource/people.csv'), json('POST', { name: 'fay', age: 33, city: 'Faro' }));
    const ok = await server.json(api('/workspaces/w-named/commit/main'), json('POST', COMMIT));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal((await parse(await committed('people.csv'), 'csv')).length, 5);
    const after = await server.json(api('/workspaces/w-named/changes'));
    assert.equal(after.body.staged.modified_files.entries.length, 0, 'committed edits are no longer changes');
    assert.equal((await page('w-named', 'people.csv')).is_indexed, false, 'its log went with the commit');
  });
  it('downloads the frame in its own format or another, or a query of it; renames it, which commits as a move', async () => {
    await newWorkspace('w-move');
    // Not indexed: the file's own bytes.
    const raw = await server.fetch(df('w-move', 'download/people.csv'));
    assert.equal(raw.status, 200);
    assert.equal(await raw.text(), (await committed('people.csv')).toString());
    await index('w-move', 'people.csv');
    const [first] = await rows('w-move', 'people.csv');
    await server.json(df('w-move', `rows/${first._oxen_id}/resource/people.csv`), json('PUT', { city: 'Bergen' }));

    const csv = await server.fetch(df('w-move', 'download/people.csv'));
    assert.equal(csv.status, 200);
    assert.equal(csv.headers.get('content-type'), 'text/csv');
    assert.match(csv.headers.get('content-disposition') ?? '', /filename="people.csv"/);
    const csvRows = await parse(Buffer.from(await csv.arrayBuffer()), 'csv');
    assert.equal(csvRows[0].city, 'Bergen');
    assert.equal('_oxen_id' in csvRows[0], false, 'no row ids in the file');
    const jsonl = await server.fetch(df('w-move', 'download/people.csv?output=out.jsonl'));
    assert.equal(jsonl.headers.get('content-type'), 'application/x-ndjson');
    assert.deepEqual((await parse(Buffer.from(await jsonl.arrayBuffer()), 'jsonl')).map((r) => r.city), csvRows.map((r) => r.city));
    const query = await server.fetch(df('w-move', `download/people.csv?output=q.parquet&sql=${encodeURIComponent('SELECT city, count(*) AS n FROM df GROUP BY city ORDER BY city')}`));
    assert.equal(query.status, 200);
    assert.deepEqual((await parse(Buffer.from(await query.arrayBuffer()), 'parquet')).map((r) => r.city), [...csvRows.map((r) => r.city)].sort());

    const taken = await server.json(df('w-move', 'rename/people.csv'), json('PUT', { new_path: 'formats/a.csv' }));
    assert.equal(taken.status, 400, 'new_path exists');
    const renamed = await server.json(df('w-move', 'rename/people.csv'), json('PUT', { new_path: 'moved/people.jsonl' }));
    assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
    assert.equal((await page('w-move', 'moved/people.jsonl')).is_indexed, true);
    assert.equal((await rows('w-move', 'moved/people.jsonl'))[0].city, 'Bergen', 'the edits moved with it');
    assert.equal((await server.json(df('w-move', 'resource/people.csv'))).status, 404, 'the old path is gone from the workspace');
    const changes = (await server.json(api('/workspaces/w-move/changes'))).body;
    assert.deepEqual(changes.changes.map((c: { path: string; status: string }) => `${c.status} ${c.path}`), ['added moved/people.jsonl', 'removed people.csv']);
    assert.deepEqual(Object.keys(changes.staged.added_dirs.paths), ['moved']);

    const listed = await server.json(df('w-move', 'branch/main'));
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.entries.map((e: { filename: string }) => e.filename), [], 'moved/people.jsonl is not on main yet, and people.csv is no longer indexed');

    const commit = await server.json(api('/workspaces/w-move/commit/main'), json('POST', COMMIT));
    assert.equal(commit.status, 200, JSON.stringify(commit.body));
    assert.equal((await server.fetch(api('/file/main/people.csv'))).status, 404);
    const moved = await parse(await committed('moved/people.jsonl'), 'jsonl');
    assert.deepEqual(moved.map((r) => r.city), csvRows.map((r) => r.city));
  });

  it('lists the workspace\'s indexed frames of a branch; unstaging a frame drops its edits; deleting the workspace drops its logs', async () => {
    await newWorkspace('w-list');
    await index('w-list', 'formats/a.csv');
    await index('w-list', 'formats/c.jsonl');
    const listed = await server.json(df('w-list', 'branch/main'));
    assert.equal(listed.status, 200);
    assertEnvelope(listed.body, 'success');
    assert.deepEqual(listed.body.entries.map((e: { filename: string; data_type: string }) => [e.filename, e.data_type]), [['formats/a.csv', 'tabular'], ['formats/c.jsonl', 'tabular']]);
    assert.equal(listed.body.total_entries, 2);

    await server.json(df('w-list', 'rows/resource/formats/a.csv'), json('POST', { k: 'new' }));
    assert.equal((await server.json(api('/workspaces/w-list/changes'))).body.staged.modified_files.entries.length, 1);
    const unstaged = await server.json(api('/workspaces/w-list/changes/formats'), { method: 'DELETE' });
    assert.equal(unstaged.status, 200, JSON.stringify(unstaged.body));
    assert.equal((await server.json(api('/workspaces/w-list/changes'))).body.staged.modified_files.entries.length, 0);
    assert.equal((await page('w-list', 'formats/a.csv')).is_indexed, false);
    assert.equal((await page('w-list', 'formats/c.jsonl')).is_indexed, false, 'everything below formats/ was unstaged');

    await index('w-list', 'formats/c.jsonl');
    await index('w-list', 'formats/a.csv');
    await server.json(df('w-list', 'rows/resource/formats/a.csv'), json('POST', { k: 'again' }));
    const restored = await server.json(df('w-list', 'resource/formats/a.csv'), { method: 'DELETE' });
    assert.equal(restored.status, 200);
    const back = await page('w-list', 'formats/a.csv');
    assert.equal(back.is_indexed, true, 'restore indexes the file again');
    assert.equal(back.data_frame.view.pagination.total_entries, 3, 'without the row added');
    assert.equal((await server.json(df('w-list', 'resource/formats/a.csv'), json('PUT', { is_indexed: false }))).status, 200);
    assert.equal((await page('w-list', 'formats/a.csv')).is_indexed, false);

    const uid = (await server.yoke.workspaces.require(await server.yoke.repos.require('wsdf', 'repo'), 'w-list')).uid;
    assert.equal((await server.yoke.meta.listFrameLogs(uid)).length, 1);
    assert.equal((await server.json(api('/workspaces/w-list'), { method: 'DELETE' })).status, 200);
    assert.deepEqual(await server.yoke.meta.listFrameLogs(uid), []);
  });
  it('indexes a file uploaded into the workspace; renamed (so no longer staged), its file is still kept by gc', async () => {
    await newWorkspace('w-upload');
    const form = new FormData();
    form.append('file[]', new Blob(['id,label\n1,cat\n2,dog\n']), 'uploaded.csv');
    const upload = await server.json(api('/workspaces/w-upload/files/incoming'), { method: 'POST', body: form });
    assert.equal(upload.status, 200, JSON.stringify(upload.body));
    await index('w-upload', 'incoming/uploaded.csv');
    await server.json(df('w-upload', 'rows/0/resource/incoming/uploaded.csv'), json('PUT', { label: 'lynx' }));
    assert.equal((await server.json(df('w-upload', 'rename/incoming/uploaded.csv'), json('PUT', { new_path: 'labels.parquet' }))).status, 200);
    const changes = (await server.json(api('/workspaces/w-upload/changes'))).body.changes;
    assert.deepEqual(changes.map((c: { path: string; status: string }) => `${c.status} ${c.path}`), ['added labels.parquet'], 'the upload is no longer staged');
    const gc = await server.json('/api/admin/gc?grace=0', { method: 'POST' });
    assert.equal(gc.status, 200, JSON.stringify(gc.body));
    // Restoring a row reads the file the frame was indexed from.
    const restored = await server.json(df('w-upload', 'rows/0/restore/labels.parquet'), { method: 'POST' });
    assert.equal(restored.status, 200, JSON.stringify(restored.body));
    assert.equal(restored.body.data_frame.view.data[0].label, 'cat');
    const fsck = await server.json('/api/admin/fsck?repo=wsdf/repo');
    assert.equal(fsck.status, 200);
    assert.equal(fsck.body.fsck.clean, true, JSON.stringify(fsck.body.fsck.problems));
  });
});

describe('workspace data frames across a restart', () => {
  it('keeps indexed frames and their edits (the log is in the metadata store), and commits them after the restart', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'yoke-wsdf-restart-'));
    const api = (path: string) => `/api/repos/wsdf/restart${path}`;
    const df = (rest: string) => api(`/workspaces/w/data_frames/${rest}`);
    let server = await startTestServer({ dataDir });
    try {
      await createRepo(server, 'wsdf', 'restart');
      assert.equal((await putFiles(server, 'wsdf/restart', 'main', [{ name: 'people.csv', content: PEOPLE_CSV }])).status, 200);
      assert.equal((await server.json(api('/workspaces'), json('PUT', { workspace_id: 'w', branch_name: 'main' }))).status, 200);
      assert.equal((await server.json(df('resource/people.csv'), json('PUT', { is_indexed: true }))).status, 200);
      const added = await server.json(df('rows/resource/people.csv'), json('POST', { name: 'dan', age: 51, city: 'Kyiv' }));
      assert.equal((await server.json(df('rows/0/resource/people.csv'), json('PUT', { age: 31 }))).status, 200);
      assert.equal((await server.json(df('columns/resource/people.csv'), json('POST', { name: 'note', data_type: 'str' }))).status, 200);
      const before = (await server.json(df('resource/people.csv'))).body.data_frame.view.data;
      await server.stop();

      // A copy left by a process that is gone (a kill) is removed at start.
      const abandoned = join(dataDir, 'frames', 'workspaces', 'replicas', '999999999-deadbeef');
      await mkdir(abandoned, { recursive: true });
      server = await startTestServer({ dataDir });
      await assert.rejects(stat(abandoned), 'the dead process\'s copies are gone');
      const after = await server.json(df('resource/people.csv'));
      assert.equal(after.status, 200);
      assert.equal(after.body.is_indexed, true);
      assert.deepEqual(after.body.data_frame.view.data, before);
      assert.deepEqual(after.body.data_frame.view.data.map((r: Record<string, unknown>) => [r.name, r.age, r.note]), [['ann', 31, null], ['bob', 40, null], ['cid', 25, null], ['dan', 51, null]]);
      assert.equal((await server.json(df(`rows/${added.body.row_id}/resource/people.csv`))).status, 200, 'row ids survive');
      const commit = await server.json(api('/workspaces/w/commit/main'), json('POST', COMMIT));
      assert.equal(commit.status, 200, JSON.stringify(commit.body));
      const bytes = await (await server.fetch(api('/file/main/people.csv'))).text();
      assert.equal(bytes, 'name,age,city,note\nann,31,Oslo,\nbob,40,Rome,\ncid,25,Lima,\ndan,51,Kyiv,\n');
    } finally {
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

const postgres = await startPostgres();

/** Two `yoke serve` processes on one PostgreSQL database and one data directory (each keeps its own frame copies). */
describe('workspace data frames in two processes sharing the stores', { skip: postgres.skip }, () => {
  let dataDir: string;
  let a: { url: string; child: ChildProcess };
  let b: { url: string; child: ChildProcess };
  const call = async (server: { url: string }, path: string, init?: RequestInit) => {
    const res = await fetch(`${server.url}/api/repos/two/frames${path}`, init);
    return { status: res.status, body: await res.json() };
  };
  const df = (rest: string) => `/workspaces/w/data_frames/${rest}`;
  const names = async (server: { url: string }) => {
    const res = await call(server, df('resource/people.csv?page_size=100'));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.data_frame.view.data.map((r: Record<string, unknown>) => r.name);
  };

  before(async () => {
    const databaseUrl = await postgres.cluster!.createDatabase();
    dataDir = await mkdtemp(join(tmpdir(), 'yoke-wsdf-two-'));
    const args = ['--database-url', databaseUrl, '--log-level', 'error'];
    [a, b] = await Promise.all([startYokeProcess(dataDir, args), startYokeProcess(dataDir, args)]);
    assert.equal((await fetch(`${a.url}/api/repos`, json('POST', { namespace: 'two', name: 'frames', user: AUTHOR }))).status, 200);
    const form = new FormData();
    for (const [key, value] of Object.entries({ message: 'people', ...AUTHOR })) form.append(key, value);
    form.append('file', new Blob([PEOPLE_CSV]), 'people.csv');
    assert.equal((await fetch(`${a.url}/api/repos/two/frames/file/main/people.csv`, { method: 'PUT', body: form })).status, 200);
  });
  after(async () => {
    for (const server of [a, b]) server?.child.kill('SIGTERM');
    await rm(dataDir, { recursive: true, force: true });
  });

  it('sees one frame from both: edits through either are read through the other, concurrent edits all land, and either commits them', async () => {
    assert.equal((await call(a, '/workspaces', json('PUT', { workspace_id: 'w', branch_name: 'main' }))).status, 200);
    assert.equal((await call(a, df('resource/people.csv'), json('PUT', { is_indexed: true }))).status, 200);
    const added = await call(b, df('rows/resource/people.csv'), json('POST', { name: 'dan', age: 51, city: 'Kyiv' }));
    assert.equal(added.status, 200, JSON.stringify(added.body));
    assert.deepEqual(await names(a), ['ann', 'bob', 'cid', 'dan']);
    assert.equal((await call(a, df(`rows/${added.body.row_id}/resource/people.csv`), json('PUT', { name: 'dana' }))).status, 200);
    assert.deepEqual(await names(b), ['ann', 'bob', 'cid', 'dana']);
    assert.equal((await call(b, df('columns/resource/people.csv'), json('POST', { name: 'note', data_type: 'str' }))).status, 200);

    // Twelve at once, alternating between the processes: each process retries the writes that lose the race.
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => call(i % 2 === 0 ? a : b, df('rows/resource/people.csv'), json('POST', { name: `p${i}`, note: i % 2 === 0 ? 'a' : 'b' }))),
    );
    assert.deepEqual(results.map((r) => r.status), Array(12).fill(200), JSON.stringify(results.find((r) => r.status !== 200)?.body));
    const fromA = await names(a);
    assert.deepEqual(fromA, await names(b));
    assert.deepEqual(fromA.slice(0, 4), ['ann', 'bob', 'cid', 'dana']);
    assert.deepEqual([...fromA.slice(4)].sort(), Array.from({ length: 12 }, (_, i) => `p${i}`).sort());

    // Restoring through one drops the edits the other sees; edits again, then a commit through the other.
    assert.equal((await call(a, df('resource/people.csv'), { method: 'DELETE' })).status, 200);
    assert.deepEqual(await names(b), ['ann', 'bob', 'cid']);
    assert.equal((await call(b, df('rows/resource/people.csv'), json('POST', { name: 'eve', age: 22, city: 'Nice' }))).status, 200);
    const status = await call(a, '/workspaces/w/changes');
    assert.deepEqual(status.body.staged.modified_files.entries.map((e: { filename: string }) => e.filename), ['people.csv']);
    const commit = await call(a, '/workspaces/w/commit/main', json('POST', COMMIT));
    assert.equal(commit.status, 200, JSON.stringify(commit.body));
    const file = await fetch(`${b.url}/api/repos/two/frames/file/main/people.csv`);
    assert.equal(await file.text(), `${PEOPLE_CSV}eve,22,Nice\n`);
  });
});
