/**
 * Comparing data frames over HTTP (issue 13): `compare/data_frames` (create, get, update, delete a saved
 * comparison, and its derived frame of changed rows) and the tabular diff of `compare/file`, with the JSON
 * Oxen's clients parse (Oxen's CompareTabularResponse, JsonDataFrameViewResponse and TabularDiffView).
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { FrameEngine } from '../../src/storage/frames/engine.js';
import { AUTHOR, assertEnvelope, BIG_FRAME_SKIP, blobsInS3, createRepo, putFiles, startTestServer, type TestServer } from '../helpers/server.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../../shared/testdata/data_frames');

const json = (method: string, body: unknown) => ({ method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** Runs DuckDB statements (writing Parquet and large CSV fixtures) in a scratch engine. */
async function withWriter(dir: string, work: (run: (sql: string) => Promise<void>) => Promise<void>) {
  const engine = new FrameEngine({ scratchDir: join(dir, 'writer') });
  const db = await engine.openDatabase(':memory:');
  try {
    await work((sql) => db.run(sql));
  } finally {
    db.close();
    await engine.close();
  }
}

const PEOPLE_V1 = 'id,name,score,city\n1,Ada,1.5,London\n2,Bob,2.5,Paris\n3,Cy,3.5,Rome\n4,Di,4.5,Oslo\n';
// Bob's score changes, Cy leaves, Eve arrives.
const PEOPLE_V2 = 'id,name,score,city\n1,Ada,1.5,London\n2,Bob,2.75,Paris\n4,Di,4.5,Oslo\n5,Eve,5.5,Lima\n';

const side = (path: string, version: string) => ({ path, version });
const pick = (left: string | null, right: string | null = left) => ({ left, right, compare_method: null });
const key = (name: string) => ({ left: name, right: name, alias_as: null, compare_method: null });

describe('compare/data_frames', () => {
  let server: TestServer;
  let work: string;
  let dataDir: string;
  let v1Commit: string;
  const R = 'cmp/frames';
  const api = (path: string) => `/api/repos/${R}${path}`;
  const create = (body: unknown) => server.json(api('/compare/data_frames'), json('POST', body));
  const created = async (body: unknown) => {
    const res = await create(body);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assertEnvelope(res.body, 'success');
    return res.body;
  };
  const derived = async (id: string, query: Record<string, string> = {}) => {
    const res = await server.json(api(`/compare/data_frames/${encodeURIComponent(id)}/diff/main..main?${new URLSearchParams(query)}`));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assertEnvelope(res.body, 'success');
    return res.body;
  };
  const refused = async (res: Promise<{ status: number; body: any }>, status: number, type?: string) => {
    const { status: got, body } = await res;
    assert.equal(got, status, JSON.stringify(body));
    assertEnvelope(body, 'error');
    if (type) assert.equal(body.error.type, type, JSON.stringify(body));
    return body;
  };
  const people = (keys: unknown[] = [key('id')], compare: unknown[] = [], display: unknown[] = []) => ({
    compare_id: 'people',
    left: side('people.csv', 'v1'),
    right: side('people.csv', 'main'),
    keys,
    compare,
    display,
  });
  const names = (schema: any) => schema.fields.map((f: any) => f.name);
  const dtypes = (schema: any) => Object.fromEntries(schema.fields.map((f: any) => [f.name, f.dtype]));

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'yoke-cmp-'));
    dataDir = join(work, 'data');
    server = await startTestServer({ dataDir });
    await createRepo(server, 'cmp', 'frames');
    let res = await putFiles(server, R, 'main', [
      { name: 'people.csv', content: PEOPLE_V1 },
      { name: 'schema.csv', content: 'id,name,score,old\n1,Ada,1.5,x\n2,Bob,2.5,y\n' },
      { name: 'dupes.csv', content: 'k,v\na,1\na,2\nb,1\n' },
      { name: 'nulls.jsonl', content: '{"k": null, "v": 1}\n{"k": "a", "v": 2}\n' },
      { name: 'renamed.csv', content: 'a,b\n1,2\n' },
      { name: 'notes.txt', content: 'not a table\n' },
      { name: 'invalid.parquet', content: readFileSync(join(FIXTURES, 'invalid.parquet')) },
    ]);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    v1Commit = res.body.commit.id;
    res = await server.json(api('/branches'), json('POST', { new_name: 'v1', from_name: 'main' }));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    // The same people as Parquet, with narrower types than the CSV reader gives them (i32, f32).
    await withWriter(work, async (run) => {
      await run(`CREATE TABLE p AS SELECT * FROM (VALUES (1, 'Ada', 1.5, 'London'), (2, 'Bob', 2.5, 'Paris'), (3, 'Cy', 3.5, 'Rome'), (4, 'Di', 4.5, 'Oslo')) AS t(id, name, score, city)`);
      await run(`COPY (SELECT CAST(id AS INTEGER) AS id, name, CAST(score AS FLOAT) AS score, city FROM p) TO '${join(work, 'people.parquet')}' (FORMAT parquet)`);
    });
    res = await putFiles(server, R, 'main', [
      { name: 'people.csv', content: PEOPLE_V2 },
      { name: 'people.parquet', content: readFileSync(join(work, 'people.parquet')) },
      // `old` dropped, `new` added, `score` now text.
      { name: 'schema.csv', content: 'id,name,score,new\n1,Ada,1.5,p\n2,Bob,n/a,q\n3,Cy,3.5,r\n' },
      // The two a rows in another order (no change), and a third a.
      { name: 'dupes.csv', content: 'k,v\na,2\na,1\na,3\nb,1\n' },
      { name: 'nulls.tsv', content: 'k\tv\n\t1\na\t3\n' },
      { name: 'renamed.csv', content: 'c,d\n3,4\n5,6\n' },
    ]);
    assert.equal(res.status, 200, JSON.stringify(res.body));
  });

  after(async () => {
    await server?.stop();
    await rm(work, { recursive: true, force: true });
  });

  describe('a comparison by key columns', () => {
    it('creates it: counts, schemas, keys, compared and display columns as Oxen\'s CompareTabularResponse has them', async () => {
      const body = await created(people());
      const { dfs } = body;
      assert.equal(body.status_message, 'resource_found');
      assert.deepEqual(dfs.summary.modifications, { added_rows: 1, removed_rows: 1, modified_rows: 1 });
      assert.deepEqual(dfs.dupes, { left: 0, right: 0 });
      assert.deepEqual(body.messages, []);
      assert.deepEqual(dfs.schema_diff, { added_cols: [], removed_cols: [], retyped_cols: [] });
      assert.deepEqual(dtypes(dfs.source_schemas.left), { id: 'i64', name: 'str', score: 'f64', city: 'str' });
      assert.deepEqual(dfs.source_schemas.left, dfs.source_schemas.right);
      assert.match(dfs.source_schemas.left.hash, /^[0-9a-f]+$/);
      assert.deepEqual(names(dfs.summary.schema), ['id', 'name.left', 'name.right', 'score.left', 'score.right', 'city.left', 'city.right', '_oxen_diff_status']);
      assert.deepEqual(dfs.keys, [key('id')]);
      assert.deepEqual(dfs.targets, [pick('name'), pick('score'), pick('city')]);
      assert.deepEqual(dfs.display, []);
      assert.equal(body.compare_id, 'people');
      assert.deepEqual(body.left, { path: 'people.csv', version: 'v1', commit_id: v1Commit });
      assert.equal(body.right.version, 'main');
      assert.notEqual(body.right.commit_id, v1Commit);
    });

    it('serves the derived frame of changed rows, ordered by key, paged and queried like a data frame', async () => {
      await created(people());
      const body = await derived('people');
      assert.deepEqual(body.derived_resource, { resource_id: 'people', path: '/compare/data_frames/people/diff', resource_type: 'compare' });
      assert.equal(body.commit, null);
      assert.equal(body.resource, null);
      const df = body.data_frame;
      assert.deepEqual(df.source.size, { height: 3, width: 8 });
      assert.deepEqual(df.view.data, [
        { id: 2, 'name.left': 'Bob', 'name.right': 'Bob', 'score.left': 2.5, 'score.right': 2.75, 'city.left': 'Paris', 'city.right': 'Paris', _oxen_diff_status: 'modified' },
        { id: 3, 'name.left': 'Cy', 'name.right': null, 'score.left': 3.5, 'score.right': null, 'city.left': 'Rome', 'city.right': null, _oxen_diff_status: 'removed' },
        { id: 5, 'name.left': null, 'name.right': 'Eve', 'score.left': null, 'score.right': 5.5, 'city.left': null, 'city.right': 'Lima', _oxen_diff_status: 'added' },
      ]);
      assert.deepEqual(df.view.pagination, { page_number: 1, page_size: 100, total_pages: 1, total_entries: 3 });

      const second = (await derived('people', { page: '2', page_size: '2' })).data_frame.view;
      assert.deepEqual(second.data.map((r: any) => r.id), [5]);
      assert.deepEqual(second.pagination, { page_number: 2, page_size: 2, total_pages: 2, total_entries: 3 });
      const filtered = (await derived('people', { filter: '_oxen_diff_status == removed', columns: 'id,_oxen_diff_status' })).data_frame.view;
      assert.deepEqual(filtered.data, [{ id: 3, _oxen_diff_status: 'removed' }]);
      assert.deepEqual(filtered.size, { height: 1, width: 2 });
      const sorted = (await derived('people', { sort_by: 'id', reverse: 'true', page_size: '1' })).data_frame.view;
      assert.deepEqual(sorted.data.map((r: any) => r.id), [5]);
      const grouped = (await derived('people', { sql: 'SELECT _oxen_diff_status AS status, count(*) AS n FROM df GROUP BY 1 ORDER BY 1' })).data_frame.view;
      assert.deepEqual(grouped.data, [
        { status: 'added', n: 1 },
        { status: 'modified', n: 1 },
        { status: 'removed', n: 1 },
      ]);
      await refused(server.json(api(`/compare/data_frames/people/diff/main..main?sql=${encodeURIComponent("SELECT * FROM read_csv('/etc/passwd')")}`)), 400);
      await refused(server.json(api('/compare/data_frames/people/diff/main..main?columns=nope')), 400, 'column_error');
    });

    it('compares only the columns asked for, and shows the display columns asked for', async () => {
      let body = await created(people([key('id')], [pick('name')]));
      assert.deepEqual(body.dfs.summary.modifications, { added_rows: 1, removed_rows: 1, modified_rows: 0 }, 'Bob kept his name');
      assert.deepEqual(body.dfs.targets, [pick('name')]);
      assert.deepEqual(body.dfs.display, [pick('score'), pick('city')], 'the other columns, from both sides');
      body = await created(people([key('id')], [pick('score')], [pick('city', null)]));
      assert.deepEqual(body.dfs.display, [pick('city', null)]);
      assert.deepEqual(names(body.dfs.summary.schema), ['id', 'score.left', 'score.right', 'city.left', '_oxen_diff_status']);
      const rows = (await derived('people')).data_frame.view.data;
      assert.deepEqual(rows[0], { id: 2, 'score.left': 2.5, 'score.right': 2.75, 'city.left': 'Paris', _oxen_diff_status: 'modified' });
    });

    it('compares rows whole when no keys are given (a changed row is removed and added)', async () => {
      const body = await created(people([]));
      assert.deepEqual(body.dfs.summary.modifications, { added_rows: 2, removed_rows: 2, modified_rows: 0 });
      assert.deepEqual(body.dfs.keys.map((k: any) => k.left), ['id', 'name', 'score', 'city']);
      const rows = (await derived('people')).data_frame.view.data;
      assert.deepEqual(
        rows.map((r: any) => [r.id, r.score, r._oxen_diff_status]),
        [
          [2, 2.5, 'removed'],
          [2, 2.75, 'added'],
          [3, 3.5, 'removed'],
          [5, 5.5, 'added'],
        ],
      );
    });

    it('gets, updates and deletes a saved comparison; GET and POST read the same', async () => {
      await created(people());
      const got = await server.json(api('/compare/data_frames/people'));
      assert.equal(got.status, 200, JSON.stringify(got.body));
      assert.deepEqual(got.body.dfs.summary.modifications, { added_rows: 1, removed_rows: 1, modified_rows: 1 });
      const posted = await server.json(api('/compare/data_frames/people'), json('POST', people()));
      assert.deepEqual(posted.body, got.body);

      const updated = await server.json(api('/compare/data_frames/people'), json('PUT', { ...people([key('id')], [pick('city')]), compare_id: 'ignored: the URL names it' }));
      assert.equal(updated.status, 200, JSON.stringify(updated.body));
      assert.equal(updated.body.compare_id, 'people');
      assert.deepEqual(updated.body.dfs.summary.modifications, { added_rows: 1, removed_rows: 1, modified_rows: 0 });
      assert.deepEqual((await server.json(api('/compare/data_frames/people'))).body.dfs.targets, [pick('city')]);
      await refused(server.json(api('/compare/data_frames/ignored: the URL names it')), 404);

      const deleted = await server.json(api('/compare/data_frames/people'), { method: 'DELETE' });
      assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
      assert.equal(deleted.body.status_message, 'resource_deleted');
      await refused(server.json(api('/compare/data_frames/people')), 404);
      await refused(server.json(api('/compare/data_frames/people'), { method: 'DELETE' }), 404);
      await refused(server.json(api('/compare/data_frames/people/diff/main..main')), 404);
    });

    it('keeps the versions it was saved with until updated, and survives a restart and a lost cache', async () => {
      const body = await created({ ...people(), compare_id: 'pinned' });
      const pinned = body.right.commit_id;
      const moved = await putFiles(server, R, 'main', [{ name: 'people.csv', content: PEOPLE_V1 }]);
      assert.equal(moved.status, 200, JSON.stringify(moved.body));
      let got = await server.json(api('/compare/data_frames/pinned'));
      assert.deepEqual([got.body.right.commit_id, got.body.dfs.summary.modifications.added_rows], [pinned, 1], 'main as it was when saved');

      await server.stop();
      await rm(join(dataDir, 'frames'), { recursive: true, force: true });
      server = await startTestServer({ dataDir });
      got = await server.json(api('/compare/data_frames/pinned'));
      assert.equal(got.status, 200, JSON.stringify(got.body));
      assert.deepEqual(got.body.dfs.summary.modifications, { added_rows: 1, removed_rows: 1, modified_rows: 1 });
      assert.equal((await derived('pinned')).data_frame.view.data.length, 3);

      const updated = await server.json(api('/compare/data_frames/pinned'), json('PUT', people()));
      assert.notEqual(updated.body.right.commit_id, pinned);
      assert.deepEqual(updated.body.dfs.summary.modifications, { added_rows: 0, removed_rows: 0, modified_rows: 0 }, 'main is v1 again');
      assert.deepEqual((await derived('pinned')).data_frame.view.data, []);
      // Restore main for the other cases.
      await putFiles(server, R, 'main', [{ name: 'people.csv', content: PEOPLE_V2 }]);
    });
  });

  describe('formats, schema changes and duplicates', () => {
    it('finds no change between a CSV and the same data as Parquet with narrower types', async () => {
      const body = await created({ compare_id: 'formats', left: side('people.csv', 'v1'), right: side('people.parquet', 'main'), keys: [key('id')], compare: [], display: [] });
      assert.deepEqual(body.dfs.summary.modifications, { added_rows: 0, removed_rows: 0, modified_rows: 0 });
      assert.deepEqual(dtypes(body.dfs.source_schemas.right), { id: 'i32', name: 'str', score: 'f32', city: 'str' });
      assert.deepEqual(body.dfs.schema_diff.retyped_cols, [
        { name: 'id', key: 'id.retyped', dtype: 'i32', previous_dtype: 'i64' },
        { name: 'score', key: 'score.retyped', dtype: 'f32', previous_dtype: 'f64' },
      ]);
      const whole = await created({ compare_id: 'formats', left: side('people.csv', 'v1'), right: side('people.parquet', 'main'), keys: [], compare: [], display: [] });
      assert.deepEqual(whole.dfs.summary.modifications, { added_rows: 0, removed_rows: 0, modified_rows: 0 });
    });

    it('matches a NULL key with a NULL key, across JSON lines and TSV', async () => {
      const body = await created({ compare_id: 'nulls', left: side('nulls.jsonl', 'v1'), right: side('nulls.tsv', 'main'), keys: [key('k')], compare: [], display: [] });
      assert.deepEqual(body.dfs.summary.modifications, { added_rows: 0, removed_rows: 0, modified_rows: 1 });
      assert.deepEqual((await derived('nulls')).data_frame.view.data, [{ k: 'a', 'v.left': 2, 'v.right': 3, _oxen_diff_status: 'modified' }]);
    });

    it('compares across added, removed and retyped columns', async () => {
      const body = await created({ compare_id: 'schema', left: side('schema.csv', 'v1'), right: side('schema.csv', 'main'), keys: [key('id')], compare: [], display: [] });
      const { dfs } = body;
      assert.deepEqual(dfs.schema_diff.added_cols, [{ name: 'new', key: 'new.added', dtype: 'str' }]);
      assert.deepEqual(dfs.schema_diff.removed_cols, [{ name: 'old', key: 'old.removed', dtype: 'str' }]);
      assert.deepEqual(dfs.schema_diff.retyped_cols, [{ name: 'score', key: 'score.retyped', dtype: 'str', previous_dtype: 'f64' }]);
      assert.deepEqual(dfs.summary.modifications, { added_rows: 1, removed_rows: 0, modified_rows: 1 }, '1.5 is "1.5"; 2.5 is not "n/a"');
      assert.deepEqual(dfs.display, [pick('old', null), pick(null, 'new')]);
      assert.deepEqual((await derived('schema')).data_frame.view.data, [
        { id: 2, 'name.left': 'Bob', 'name.right': 'Bob', 'score.left': 2.5, 'score.right': 'n/a', 'old.left': 'y', 'new.right': 'q', _oxen_diff_status: 'modified' },
        { id: 3, 'name.left': null, 'name.right': 'Cy', 'score.left': null, 'score.right': '3.5', 'old.left': null, 'new.right': 'r', _oxen_diff_status: 'added' },
      ]);
      // Comparing the new column (right only): every matched row gained a value, so each is modified.
      const gained = await created({ compare_id: 'schema', left: side('schema.csv', 'v1'), right: side('schema.csv', 'main'), keys: [key('id')], compare: [pick(null, 'new')], display: [] });
      assert.deepEqual(gained.dfs.summary.modifications, { added_rows: 1, removed_rows: 0, modified_rows: 2 });
      assert.deepEqual(gained.dfs.targets, [pick(null, 'new')]);
    });

    it('pairs rows of a repeated key occurrence by occurrence, and warns as Oxen does', async () => {
      const body = await created({ compare_id: 'dupes', left: side('dupes.csv', 'v1'), right: side('dupes.csv', 'main'), keys: [key('k')], compare: [], display: [] });
      assert.deepEqual(body.dfs.dupes, { left: 2, right: 3 });
      assert.deepEqual(body.dfs.summary.modifications, { added_rows: 1, removed_rows: 0, modified_rows: 0 }, 'a reordering is no change; the third a is new');
      assert.equal(body.messages.length, 1);
      assert.deepEqual([body.messages[0].level, body.messages[0].title], ['Warning', 'Duplicate keys']);
      assert.match(body.messages[0].description, /Left df duplicates: 2\nRight df duplicates: 3/);
      assert.deepEqual((await derived('dupes')).data_frame.view.data, [{ k: 'a', 'v.left': null, 'v.right': 3, _oxen_diff_status: 'added' }]);
    });
  });

  describe('refusals', () => {
    it('refuses bad bodies, missing columns, files and revisions with a 4xx, and stores nothing', async () => {
      const valid = { ...people(), compare_id: 'refused' };
      await refused(server.json(api('/compare/data_frames'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1]' }), 400);
      await refused(create({ ...valid, compare_id: undefined }), 400);
      await refused(create({ ...valid, compare_id: 'a\u0001b' }), 400);
      await refused(create({ ...valid, left: 'people.csv' }), 400);
      await refused(create({ ...valid, keys: 'id' }), 400);
      await refused(create({ ...valid, keys: [{ left: 'id', right: 'name' }] }), 400);
      await refused(create({ ...valid, compare: [{}] }), 400);
      await refused(create({ ...valid, keys: [key('nope')] }), 400, 'schema_error');
      await refused(create({ ...valid, compare: [pick('nope')] }), 400, 'schema_error');
      await refused(create({ ...valid, display: [pick(null, 'nope')] }), 400, 'schema_error');
      await refused(create({ ...valid, keys: [], compare: [pick('name')] }), 400);
      await refused(create({ ...valid, left: side('notes.txt', 'main') }), 400, 'invalid_file_type');
      await refused(create({ ...valid, right: side('invalid.parquet', 'main') }), 400, 'data_frame_error');
      await refused(create({ ...valid, right: side('nope.csv', 'main') }), 404);
      await refused(create({ ...valid, right: side('people.csv', 'no-such-branch') }), 404);
      await refused(create({ ...valid, right: side('../people.csv', 'main') }), 400);
      await refused(server.json(api('/compare/data_frames/refused')), 404);
      await refused(server.json('/api/repos/cmp/nope/compare/data_frames', json('POST', valid)), 404);
    });
  });

  describe('compare/file of a data frame', () => {
    const file = async (spec: string, query = '') => {
      const res = await server.json(api(`/compare/file/${spec}${query}`));
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body.compare;
    };

    it('gives Oxen\'s tabular diff: rows new and gone whole, for an unchanged schema', async () => {
      const compare = await file('v1..main/people.csv');
      assert.equal(compare.status, 'modified');
      assert.deepEqual(compare.diff_summary, { tabular: { num_added_rows: 2, num_added_cols: 0, num_removed_rows: 2, num_removed_cols: 0, schema_has_changed: false } });
      const { tabular } = compare.diff;
      assert.deepEqual(tabular.summary, compare.diff_summary.tabular);
      assert.deepEqual(names(tabular.base_schema), ['id', 'name', 'score', 'city']);
      assert.deepEqual(tabular.added_rows.data, [
        { id: 2, name: 'Bob', score: 2.75, city: 'Paris' },
        { id: 5, name: 'Eve', score: 5.5, city: 'Lima' },
      ]);
      assert.deepEqual(tabular.added_rows.full_size, { height: 2, width: 4 });
      assert.deepEqual(tabular.added_rows_view.data, tabular.added_rows.data);
      assert.deepEqual(tabular.added_rows_view.pagination, { page_number: 1, page_size: 100, total_pages: 1, total_entries: 2 });
      assert.deepEqual(tabular.removed_rows.data.map((r: any) => [r.id, r.score]), [
        [2, 2.5],
        [3, 3.5],
      ]);
      assert.equal(tabular.added_cols, null);
      assert.equal(tabular.removed_cols_view, null);
      const paged = await file('v1..main/people.csv', '?page=2&page_size=1');
      assert.deepEqual(paged.diff.tabular.added_rows.data.map((r: any) => r.id), [5]);
    });

    it('gives the columns each revision alone has when the schema changed, and whole files added', async () => {
      const { tabular } = (await file('v1..main/schema.csv')).diff;
      assert.deepEqual(tabular.summary, { num_added_rows: 2, num_added_cols: 1, num_removed_rows: 1, num_removed_cols: 1, schema_has_changed: true });
      assert.equal(tabular.added_rows, null);
      assert.deepEqual(tabular.added_rows_view.data.map((r: any) => [r.id, r.new]), [
        [2, 'q'],
        [3, 'r'],
      ]);
      assert.deepEqual(tabular.added_cols.data, [{ new: 'p' }, { new: 'q' }, { new: 'r' }]);
      assert.deepEqual(tabular.removed_cols_view.data, [{ old: 'x' }, { old: 'y' }]);

      const renamed = (await file('v1..main/renamed.csv')).diff.tabular;
      assert.deepEqual(renamed.summary, { num_added_rows: 0, num_added_cols: 2, num_removed_rows: 0, num_removed_cols: 2, schema_has_changed: true }, 'no column in common');
      assert.deepEqual([renamed.added_rows_view, renamed.removed_rows_view], [null, null]);
      assert.deepEqual(renamed.added_cols.data, [{ c: 3, d: 4 }, { c: 5, d: 6 }]);
      assert.deepEqual(renamed.removed_cols_view.data, [{ a: 1, b: 2 }]);

      const added = await file('v1..main/people.parquet');
      assert.equal(added.status, 'added');
      assert.deepEqual(added.diff_summary.tabular, { num_added_rows: 4, num_added_cols: 4, num_removed_rows: 0, num_removed_cols: 0, schema_has_changed: true });
      assert.equal(added.diff.tabular.base_schema, null);
      assert.equal(added.diff.tabular.added_rows.data.length, 4);
    });

    it('keeps the line diff of a tabular file that cannot be read as a data frame, and of text', async () => {
      const broken = await putFiles(server, R, 'main', [{ name: 'broken.csv', content: 'a,b\n1,2,3,4\n"unclosed\n' }]);
      assert.equal(broken.status, 200, JSON.stringify(broken.body));
      const lines = await file('v1..main/broken.csv');
      assert.equal(lines.status, 'added');
      assert.equal(lines.diff_summary, null);
      assert.deepEqual(lines.diff.lines.map((l: any) => l.modification), ['Added', 'Added', 'Added']);
      const text = await file('v1..main/notes.txt');
      assert.equal(text.diff_summary, null);
      assert.ok(Array.isArray(text.diff.lines));
    });
  });
});

describe('comparing CSV files larger than the frame memory limit', { skip: blobsInS3 ? BIG_FRAME_SKIP : undefined }, () => {
  let server: TestServer;
  let work: string;
  const R = 'cmp/big';
  // Larger files: CMP_ROWS=4000000 (400 MB each, about 20 s).
  const ROWS = Number(process.env.CMP_ROWS ?? 1_500_000);
  // DuckDB needs about this much to join two CSV files of any size, spilling the rest (100 MiB is too little).
  const MEMORY_LIMIT = 128 * 1024 * 1024;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'yoke-cmp-big-'));
    const text = `repeat('lorem ipsum ', 6) || range`;
    await withWriter(work, async (run) => {
      await run(`COPY (SELECT range AS id, 'name-' || range AS name, range % 97 AS category, ${text} AS text FROM range(${ROWS})) TO '${join(work, 'a.csv')}' (HEADER)`);
      // 1 % of rows changed, every 1000th gone, 500 new.
      await run(
        `COPY (SELECT range AS id, CASE WHEN range % 100 = 0 THEN 'renamed-' || range ELSE 'name-' || range END AS name, range % 97 AS category, ${text} AS text FROM range(${ROWS}) WHERE range % 1000 <> 1 ` +
          `UNION ALL SELECT ${ROWS} + range, 'new', 0, 'x' FROM range(500)) TO '${join(work, 'b.csv')}' (HEADER)`,
      );
    });
    server = await startTestServer({ frames: { memoryLimitBytes: MEMORY_LIMIT } });
    await createRepo(server, 'cmp', 'big');
    // curl streams the files from disk: this process never holds them.
    // Asynchronously: the server answering curl runs in this process.
    const put = (name: string, branchPath: string) =>
      promisify(execFile)('curl', ['-sS', '--fail-with-body', '-o', '/dev/null', '-X', 'PUT', '-F', `file=@${join(work, name)};filename=big.csv`, '-F', `name=${AUTHOR.name}`, '-F', `email=${AUTHOR.email}`, `${server.url}/api/repos/${R}/file/${branchPath}`]);
    await put('a.csv', 'main');
    const branch = await server.json(`/api/repos/${R}/branches`, json('POST', { new_name: 'base', from_name: 'main' }));
    assert.equal(branch.status, 200, JSON.stringify(branch.body));
    await put('b.csv', 'main');
  });
  after(async () => {
    await server?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('joins them in DuckDB (spilling to disk) while the server\'s memory stays bounded', async () => {
    const size = (await stat(join(work, 'a.csv'))).size;
    assert.ok(size > MEMORY_LIMIT, `the file is ${size} bytes`);
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    try {
      const res = await server.json(`/api/repos/${R}/compare/data_frames`, json('POST', { compare_id: 'big', left: side('big.csv', 'base'), right: side('big.csv', 'main'), keys: [key('id')], compare: [], display: [] }));
      assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 500));
      assert.deepEqual(res.body.dfs.summary.modifications, { added_rows: 500, removed_rows: ROWS / 1000, modified_rows: ROWS / 100 });
      const page = await server.json(`/api/repos/${R}/compare/data_frames/big/diff/main..main?page_size=2`);
      assert.deepEqual(
        page.body.data_frame.view.data.map((r: any) => [r.id, r['name.right'], r._oxen_diff_status]),
        [
          [0, 'renamed-0', 'modified'],
          [1, null, 'removed'],
        ],
      );
    } finally {
      clearInterval(sampler);
    }
    // DuckDB's limit bounds its buffers, not every allocation beside them: measured, RSS grows by about
    // 155 to 180 MiB at this limit, whether the files are 145 MiB or 393 MiB each (CMP_ROWS=4000000).
    const grown = peak - before;
    const shown = `RSS grew by ${(grown / 2 ** 20).toFixed(0)} MiB while comparing two ${(size / 2 ** 20).toFixed(0)} MiB files`;
    if (process.env.CMP_ROWS) console.log(shown);
    assert.ok(grown < MEMORY_LIMIT + 96 * 1024 * 1024, shown);
    assert.ok((await readdir(join(server.dataDir, 'frames', 'compare'))).some((f) => f.endsWith('.parquet')), 'the derived frame is cached');
  });
});
