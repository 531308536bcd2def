/**
 * Committed data frames over HTTP (issue 13): `GET data_frames/{rev}/{path}` with Oxen's view options and
 * SQL, `POST data_frames/index/…`, `POST data_frames/from_directory/…`, `GET tabular/{rev}`,
 * `GET schemas/{rev}[/{path}]`. Fixtures are Oxen's own (../shared/testdata/data_frames); the expected
 * pages of wiki_1k.parquet are those Oxen's client tests assert.
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { FrameEngine } from '../../src/storage/frames/engine.js';
import { AUTHOR, assertEnvelope, BIG_FRAME_SKIP, blobsInS3, createRepo, putFiles, startTestServer, type TestServer } from '../helpers/server.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '../../../shared/testdata/data_frames');
const fixture = (name: string) => readFileSync(join(FIXTURES, name));

const json = (method: string, body: unknown) => ({ method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** Writes files with DuckDB (Parquet with nested columns, a wide CSV, a large CSV) from a scratch engine. */
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

describe('committed data frames', () => {
  let server: TestServer;
  let work: string;
  const R = 'frames/data';
  const api = (path: string) => `/api/repos/${R}${path}`;
  const frame = async (resource: string, query: Record<string, string> = {}) => {
    const res = await server.json(api(`/data_frames/${resource}?${new URLSearchParams(query)}`));
    return res;
  };
  const page = async (resource: string, query: Record<string, string> = {}) => {
    const { status, body } = await frame(resource, query);
    assert.equal(status, 200, JSON.stringify(body));
    assertEnvelope(body, 'success');
    return body;
  };
  const refused = async (resource: string, query: Record<string, string>, status: number, type: string) => {
    const res = await frame(resource, query);
    assert.equal(res.status, status, `${resource} ${JSON.stringify(query)}: ${JSON.stringify(res.body)}`);
    assertEnvelope(res.body, 'error');
    assert.equal(res.body.error.type, type, `${JSON.stringify(query)}: ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const ids = (body: any) => body.data_frame.view.data.map((row: any) => row.id);
  const dtypes = (schema: any) => Object.fromEntries(schema.fields.map((f: any) => [f.name, f.dtype]));

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'yoke-df-'));
    await withWriter(work, async (run) => {
      await run(`COPY (SELECT range AS id, {'a': range, 'b': 'x' || range} AS point, [range, range + 1] AS pair, ['t' || range] AS tags, DATE '2020-01-01' + range::INTEGER AS day FROM range(5)) TO '${join(work, 'nested.parquet')}' (FORMAT parquet)`);
      const columns = Array.from({ length: 400 }, (_, i) => `range * ${i} AS c${i}`).join(', ');
      await run(`COPY (SELECT ${columns} FROM range(30)) TO '${join(work, 'wide.csv')}' (HEADER)`);
    });
    server = await startTestServer();
    await createRepo(server, 'frames', 'data');
    const files = ['wiki_1k.parquet', 'people.parquet', 'mixed_data_types.csv', 'quoted_fields.csv', 'spam_ham_data_w_quote.tsv', 'test.jsonl', 'tabs.csv', 'invalid.parquet'];
    let res = await putFiles(server, R, 'main/data', files.map((name) => ({ name, content: fixture(name) })));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    res = await putFiles(server, R, 'main/more', [
      { name: 'nested.parquet', content: readFileSync(join(work, 'nested.parquet')) },
      { name: 'wide.csv', content: readFileSync(join(work, 'wide.csv')) },
      { name: 'rows.ndjson', content: '{"id": 1, "meta": {"k": "v", "n": [1, 2]}}\n{"id": 2, "meta": {"k": "w", "n": []}}\n' },
      { name: 'array.json', content: JSON.stringify([{ id: 1, name: 'a' }, { id: 2, name: 'b' }]) },
      { name: 'README.md', content: '# not a table\n' },
    ]);
    assert.equal(res.status, 200, JSON.stringify(res.body));
  });

  after(async () => {
    await server?.stop();
    await rm(work, { recursive: true, force: true });
  });

  describe('pages', () => {
    it('pages a parquet file as Oxen does: source and view sizes, schema, pagination, opts', async () => {
      const body = await page('main/data/wiki_1k.parquet', { page: '4', page_size: '5', columns: 'id,title' });
      const df = body.data_frame;
      assert.deepEqual(df.source.size, { height: 1024, width: 3 });
      assert.deepEqual(dtypes(df.source.schema), { id: 'str', url: 'str', title: 'str' });
      assert.match(df.source.schema.hash, /^[0-9a-f]+$/);
      assert.deepEqual(df.view.size, { height: 5, width: 2 });
      assert.deepEqual(df.view.pagination, { page_number: 4, page_size: 5, total_pages: 205, total_entries: 1024 });
      assert.equal(df.view.data[0].title, 'Ayn Rand');
      assert.deepEqual(Object.keys(df.view.data[0]), ['id', 'title']);
      assert.deepEqual(df.view.opts.find((o: any) => o.name === 'slice'), { name: 'slice', value: '15..20' });
      assert.deepEqual(body.resource, { path: 'data/wiki_1k.parquet', version: 'main' });
      assert.equal(body.derived_resource, null);
      assert.equal(typeof body.commit.id, 'string');
    });

    it('defaults to page 1 of 100 rows; page 0 and page_size 0 read as 1', async () => {
      let df = (await page('main/data/wiki_1k.parquet')).data_frame;
      assert.equal(df.view.data.length, 100);
      assert.deepEqual(df.view.pagination, { page_number: 1, page_size: 100, total_pages: 11, total_entries: 1024 });
      df = (await page('main/data/wiki_1k.parquet', { page: '0', page_size: '0' })).data_frame;
      assert.deepEqual([df.view.data.length, df.view.pagination.page_number, df.view.pagination.page_size], [1, 1, 1]);
      df = (await page('main/data/wiki_1k.parquet', { page: '12' })).data_frame;
      assert.deepEqual([df.view.data.length, df.view.size.height], [0, 0]);
    });

    it('slices rows (slice wins over row) and returns one row', async () => {
      const sliced = (await page('main/data/wiki_1k.parquet', { slice: '330..333', columns: 'id,title', row: '7' })).data_frame;
      assert.deepEqual(sliced.view.data.map((r: any) => r.title), ['April 26', 'Anisotropy', 'Alpha decay']);
      const all = await page('main/data/wiki_1k.parquet', { slice: 'all', page_size: '3' });
      assert.equal(all.data_frame.view.data.length, 3);
      const one = (await page('main/data/people.parquet', { row: '7' })).data_frame;
      assert.deepEqual(ids({ data_frame: one }), [7]);
    });

    it('reads every tabular format, with nested and wide schemas', async () => {
      const csv = (await page('main/data/mixed_data_types.csv')).data_frame;
      assert.deepEqual(dtypes(csv.source.schema), { prompt: 'str', response: 'str', is_correct: 'bool', response_time: 'f64', difficulty: 'i64' });
      assert.deepEqual(csv.view.data[0], { prompt: 'who is it?', response: 'issa me', is_correct: true, response_time: 0.5, difficulty: 1 });
      const quoted = (await page('main/data/quoted_fields.csv', { row: '2' })).data_frame;
      assert.deepEqual(quoted.view.data, [{ name: 'Charlie', description: 'Has "escaped" quotes', value: 30 }]);
      const tsv = (await page('main/data/spam_ham_data_w_quote.tsv', { page_size: '2' })).data_frame;
      assert.deepEqual(tsv.source.size, { height: 100, width: 2 });
      const jsonl = (await page('main/data/test.jsonl')).data_frame;
      assert.deepEqual(jsonl.view.data, [{ id: 1, text: 'I love it', category: 'positive' }, { id: 1, text: 'I hate it', category: 'negative' }]);
      const ndjson = (await page('main/more/rows.ndjson')).data_frame;
      assert.deepEqual(ndjson.view.data[0], { id: 1, meta: { k: 'v', n: [1, 2] } });
      assert.deepEqual(dtypes(ndjson.source.schema), { id: 'i64', meta: 'struct' });
      const array = (await page('main/more/array.json')).data_frame;
      assert.deepEqual(array.view.data, [{ id: 1, name: 'a' }, { id: 2, name: 'b' }]);
      const nested = (await page('main/more/nested.parquet', { row: '2' })).data_frame;
      assert.deepEqual(nested.view.data, [{ id: 2, point: { a: 2, b: 'x2' }, pair: [2, 3], tags: ['t2'], day: '2020-01-03' }]);
      assert.deepEqual(dtypes(nested.source.schema), { id: 'i64', point: 'struct', pair: 'list[i64]', tags: 'list[str]', day: 'date' });
      const wide = (await page('main/more/wide.csv', { page_size: '2' })).data_frame;
      assert.deepEqual(wide.source.size, { height: 30, width: 400 });
      assert.equal(Object.keys(wide.view.data[1]).length, 400);
      assert.equal(wide.view.data[1].c399, 399);
    });

    it('reads a csv with another delimiter when told, and refuses one for parquet', async () => {
      const tabs = (await page('main/data/tabs.csv', { delimiter: '\t' })).data_frame;
      assert.deepEqual(tabs.view.data, [{ file: 'images/test.png', label: 'dog', x: 13, y: 24 }]);
      await refused('main/data/wiki_1k.parquet', { delimiter: ';' }, 400, 'invalid_data_frame_param');
      await refused('main/data/tabs.csv', { delimiter: '::' }, 400, 'invalid_data_frame_param');
    });

    it('resolves the longest branch prefix, commit ids and workspaces', async () => {
      const created = await server.json(api('/branches'), json('POST', { new_name: 'feature/data', from_name: 'main' }));
      assert.equal(created.status, 200, JSON.stringify(created.body));
      const onBranch = await page('feature/data/data/test.jsonl');
      assert.deepEqual(onBranch.resource, { path: 'data/test.jsonl', version: 'feature/data' });
      const byCommit = await page(`${onBranch.commit.id}/data/test.jsonl`);
      assert.deepEqual(byCommit.resource, { path: 'data/test.jsonl', version: onBranch.commit.id });
      const ws = await server.json(api('/workspaces'), json('PUT', { workspace_id: 'df-ws', branch_name: 'main' }));
      assert.equal(ws.status, 200, JSON.stringify(ws.body));
      assert.equal((await page('df-ws/data/test.jsonl')).data_frame.source.size.height, 2);
    });

    it('refuses what is not a tabular file, and finds nothing where nothing is', async () => {
      const notTabular = await refused('main/more/README.md', {}, 400, 'invalid_file_type');
      assert.match(notTabular.error.detail, /more\/README\.md is a text file/);
      await refused('main/more', {}, 400, 'not_a_file');
      await refused('main/nope.csv', {}, 404, 'resource_not_found');
      await refused('nobranch/data/test.jsonl', {}, 404, 'resource_not_found');
      const broken = await refused('main/data/invalid.parquet', {}, 400, 'data_frame_error');
      assert.doesNotMatch(broken.error.detail, new RegExp(server.dataDir), 'no server path in the message');
      assert.match(broken.error.detail, /data\/invalid\.parquet/);
    });
  });

  describe('view options', () => {
    it('filters with Oxen\'s syntax, left to right, values typed by their column', async () => {
      const body = await page('main/data/mixed_data_types.csv', { filter: 'difficulty > 1 && is_correct == false' });
      assert.deepEqual(body.data_frame.view.data.map((r: any) => r.response), ['issa them']);
      assert.deepEqual(body.data_frame.view.pagination, { page_number: 1, page_size: 100, total_pages: 1, total_entries: 1 });
      assert.deepEqual(body.data_frame.source.size, { height: 4, width: 5 });
      const either = await page('main/data/mixed_data_types.csv', { filter: 'response == issa me || difficulty >= 3', columns: 'response' });
      assert.deepEqual(either.data_frame.view.data, [{ response: 'issa me' }, { response: 'nothing' }]);
      const none = await page('main/data/people.parquet', { filter: 'id != 0 && id <= 0' });
      assert.deepEqual([none.data_frame.view.data, none.data_frame.view.pagination.total_entries], [[], 0]);
    });

    it('sorts, reverses, shuffles, and takes rows by position', async () => {
      const sorted = await page('main/data/people.parquet', { sort_by: 'score', page_size: '100', columns: 'score' });
      const scores = sorted.data_frame.view.data.map((r: any) => r.score);
      assert.deepEqual(scores, [...scores].sort((a: number, b: number) => a - b));
      const down = await page('main/data/people.parquet', { sort_by: 'score', reverse: 'true', page_size: '100', columns: 'score' });
      assert.deepEqual(down.data_frame.view.data.map((r: any) => r.score), [...scores].reverse());
      // reverse alone: the file's last rows first, paged.
      assert.deepEqual(ids(await page('main/data/people.parquet', { reverse: 'true', page: '2', page_size: '3' })), [96, 95, 94]);
      const shuffled = await page('main/data/people.parquet', { randomize: 'true', page_size: '100' });
      assert.deepEqual([...ids(shuffled)].sort((a: number, b: number) => a - b), Array.from({ length: 100 }, (_, i) => i));
      assert.deepEqual(ids(await page('main/data/people.parquet', { take: '5,0,5,99' })), [5, 0, 5, 99]);
      assert.deepEqual(ids(await page('main/data/people.parquet', { take: '0,1', reverse: 'true' })), [99, 98]);
      assert.deepEqual(ids(await page('main/data/people.parquet', { take: '9,8,7,6', page: '2', page_size: '2' })), [7, 6]);
      const taken = await page('main/data/people.parquet', { take: '0', sort_by: 'score', reverse: 'true' });
      assert.equal(taken.data_frame.view.data[0].score, Math.max(...scores));
      assert.equal(taken.data_frame.view.pagination.total_entries, 100);
    });

    it('refuses options it cannot use with Oxen\'s errors', async () => {
      const cases: Array<[Record<string, string>, string]> = [
        [{ slice: '5' }, 'invalid_data_frame_param'],
        [{ slice: '10..3' }, 'invalid_data_frame_param'],
        [{ slice: '0..100000' }, 'invalid_data_frame_param'],
        [{ take: '1,,2' }, 'invalid_data_frame_param'],
        [{ take: '-1' }, 'invalid_data_frame_param'],
        [{ take: '100' }, 'invalid_data_frame_param'],
        [{ page: 'two' }, 'invalid_data_frame_param'],
        [{ page_size: '-5' }, 'invalid_data_frame_param'],
        [{ row: '1e3' }, 'invalid_data_frame_param'],
        [{ reverse: 'yes' }, 'invalid_data_frame_param'],
        [{ filter: 'id' }, 'invalid_data_frame_param'],
        [{ filter: 'id == 1 &&' }, 'invalid_data_frame_param'],
        [{ filter: 'nope == 1' }, 'column_error'],
        [{ filter: 'id == abc' }, 'query_error'],
        [{ columns: 'id,nope' }, 'column_error'],
        [{ sort_by: 'nope' }, 'column_error'],
      ];
      for (const [query, type] of cases) await refused('main/data/people.parquet', query, 400, type);
      const twice = await server.json(api('/data_frames/main/data/people.parquet?page=1&page=2'));
      assert.equal(twice.status, 400);
    });
  });

  describe('sql', () => {
    it('queries the view df and pages the result, the other options applied to it', async () => {
      const sql = 'SELECT category, count(*) AS n, round(avg(score), 3) AS mean FROM df GROUP BY category';
      const body = await page('main/data/people.parquet', { sql, sort_by: 'category', page_size: '2' });
      const df = body.data_frame;
      assert.deepEqual(df.source.size, { height: 100, width: 5 });
      assert.deepEqual(dtypes(df.view.schema), { category: 'str', n: 'i64', mean: 'f64' });
      assert.equal(df.view.data.length, 2);
      assert.ok(df.view.data[0].category < df.view.data[1].category);
      const groups = df.view.pagination.total_entries;
      assert.ok(groups >= 2);
      assert.equal(df.view.pagination.total_pages, Math.ceil(groups / 2));
      assert.equal(df.view.opts.find((o: any) => o.name === 'sql').value, sql);
      const filtered = await page('main/data/people.parquet', { sql: 'SELECT id, score FROM df WHERE id <= 10;', filter: 'id > 5', columns: 'id' });
      assert.deepEqual(ids(filtered), [6, 7, 8, 9, 10]);
      assert.equal(filtered.data_frame.view.pagination.total_entries, 5);
    });

    it('refuses every query that is not one read-only SELECT over df, with a 4xx, and stays intact', async () => {
      const secret = join(work, 'secret.csv');
      await writeFile(secret, 'a\nsecret\n');
      const malicious = [
        `COPY df TO '${join(work, 'leak.csv')}'`,
        `COPY (SELECT 1) TO '${join(work, 'leak.csv')}'`,
        `ATTACH '${join(work, 'x.duckdb')}' AS x`,
        "SELECT * FROM read_csv('/etc/passwd')",
        `SELECT * FROM read_csv('${secret}')`,
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT * FROM read_blob('/etc/hostname')",
        "SELECT * FROM read_parquet('/etc/passwd')",
        "SELECT * FROM read_json('/etc/passwd')",
        "SELECT * FROM sniff_csv('/etc/passwd')",
        "SELECT * FROM glob('/*')",
        "SELECT * FROM glob('*')",
        'INSTALL httpfs',
        'LOAD httpfs',
        "SELECT * FROM read_csv('https://example.com/x.csv')",
        'PRAGMA enable_external_access',
        "SET enable_external_access = true",
        "SET allowed_paths = ['/']",
        "RESET lock_configuration",
        'CREATE TABLE t AS SELECT * FROM df',
        'CREATE MACRO m() AS 1',
        'DROP VIEW df',
        'DELETE FROM df',
        "INSERT INTO df VALUES (1)",
        'SELECT 1; SELECT 2',
        'SELECT * FROM df; DROP VIEW df',
        "SELECT * FROM query('DROP VIEW df')",
        'EXPLAIN SELECT * FROM df',
        'CHECKPOINT',
        'EXPORT DATABASE \'/tmp/yoke-export\'',
        "CALL pragma_version()",
        'SELECT * FROM nope',
        'SELECT FROM WHERE',
      ];
      for (const sql of malicious) {
        const res = await frame('main/data/people.parquet', { sql });
        assert.ok(res.status >= 400 && res.status < 500, `${sql}: ${res.status} ${JSON.stringify(res.body)}`);
        assertEnvelope(res.body, 'error');
      }
      assert.equal(await stat(join(work, 'leak.csv')).catch(() => null), null);
      // The frame and the file are unchanged after all that.
      const body = await page('main/data/people.parquet', { sql: 'SELECT count(*) AS n FROM df' });
      assert.deepEqual(body.data_frame.view.data, [{ n: 100 }]);
    });
  });

  describe('index, tabular and schemas', () => {
    it('indexes a file once; the second time is Oxen\'s dataset_already_indexed', async () => {
      let res = await server.json(api('/data_frames/index/main/data/people.parquet'), { method: 'POST' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status_message, 'resource_updated');
      res = await server.json(api('/data_frames/index/main/data/people.parquet'), { method: 'POST' });
      assert.equal(res.status, 400);
      assert.equal(res.body.status_message, 'resource_already_exists');
      assert.equal(res.body.error.type, 'dataset_already_indexed');
      // Another path, or the same path at another commit, is another index.
      res = await server.json(api('/data_frames/index/main/data/test.jsonl'), { method: 'POST' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      res = await server.json(api('/data_frames/index/main/more/README.md'), { method: 'POST' });
      assert.equal(res.body.error?.type, 'invalid_file_type');
      res = await server.json(api('/data_frames/index/main/nope.csv'), { method: 'POST' });
      assert.equal(res.status, 404);
    });

    it('lists the tabular files of a revision, paginated, by path', async () => {
      const { status, body } = await server.json(api('/tabular/main?page_size=4'));
      assert.equal(status, 200, JSON.stringify(body));
      assert.deepEqual(body.entries.map((e: any) => e.filename), ['data/invalid.parquet', 'data/mixed_data_types.csv', 'data/people.parquet', 'data/quoted_fields.csv']);
      assert.equal(body.entries[0].data_type, 'tabular');
      assert.equal(typeof body.entries[0].latest_commit.id, 'string');
      assert.deepEqual([body.page_number, body.page_size, body.total_entries, body.total_pages], [1, 4, 11, 3]);
      const last = await server.json(api('/tabular/main?page=3&page_size=4'));
      assert.deepEqual(last.body.entries.map((e: any) => e.filename), ['more/nested.parquet', 'more/rows.ndjson', 'more/wide.csv']);
      assert.equal((await server.json(api('/tabular/nope'))).status, 404);
    });

    it('lists schemas by hash, of a revision, a file or a directory', async () => {
      const all = await server.json(api('/schemas/main'));
      assert.equal(all.status, 200, JSON.stringify(all.body));
      const hashes = all.body.schemas.map((s: any) => s.hash);
      assert.deepEqual(hashes, [...hashes].sort());
      assert.equal(all.body.schemas.length, 10, 'every readable tabular file (not invalid.parquet)');
      assert.equal(all.body.resource, null);
      const one = await server.json(api('/schemas/main/data/mixed_data_types.csv'));
      assert.deepEqual(one.body.schemas.map((s: any) => [s.path, dtypes(s)]), [
        ['data/mixed_data_types.csv', { prompt: 'str', response: 'str', is_correct: 'bool', response_time: 'f64', difficulty: 'i64' }],
      ]);
      assert.deepEqual(one.body.resource, { path: 'data/mixed_data_types.csv', version: 'main' });
      const dir = await server.json(api('/schemas/main/more'));
      assert.deepEqual(dir.body.schemas.map((s: any) => s.path).sort(), ['more/nested.parquet', 'more/rows.ndjson', 'more/wide.csv']);
      assert.deepEqual((await server.json(api('/schemas/main/more/README.md'))).body.schemas, []);
      const staged = await server.json(api('/schemas/df-ws/data/test.jsonl'));
      assert.deepEqual([staged.body.schemas.map((s: any) => s.path), staged.body.resource], [['data/test.jsonl'], { path: 'data/test.jsonl', version: 'df-ws' }]);
      assert.equal((await server.json(api('/schemas/main/nope.csv'))).status, 404);
    });
  });

  describe('from_directory', () => {
    it('commits a Parquet listing of a directory (recursive or not) with typed empty extra columns', async () => {
      const res = await server.json(
        api('/data_frames/from_directory/main/data'),
        json('POST', {
          output_path: 'listings/data.csv',
          extra_columns: [{ name: 'label', data_type: 'str' }, { name: 'score', data_type: 'float' }],
          commit_message: 'Listing data',
          user_name: AUTHOR.name,
          user_email: AUTHOR.email,
          recursive: true,
        }),
      );
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status_message, 'resource_created');
      assert.equal(res.body.commit.message, 'Listing data');
      const listing = (await page('main/listings/data.parquet')).data_frame;
      assert.deepEqual(dtypes(listing.source.schema), { file_path: 'str', label: 'str', score: 'f32' });
      assert.equal(listing.view.data.length, 8);
      assert.ok(listing.view.data.some((r: any) => r.file_path === 'data/wiki_1k.parquet' && r.label === null && r.score === null));

      const flat = await server.json(api('/data_frames/from_directory/main'), json('POST', { output_path: 'root', user_name: AUTHOR.name, user_email: AUTHOR.email }));
      assert.equal(flat.status, 200, JSON.stringify(flat.body));
      const root = (await page('main/root.parquet')).data_frame;
      assert.deepEqual(root.view.data, [], 'the root holds directories only');
    });

    it('refuses what it cannot build', async () => {
      const head = (await page('main/data/test.jsonl')).commit.id;
      const body = { output_path: 'x.parquet', user_name: AUTHOR.name, user_email: AUTHOR.email };
      const cases: Array<[string, unknown, number]> = [
        ['main/data/test.jsonl', body, 400],
        ['main/nope', body, 400],
        [`${head}/data`, body, 404],
        ['main/data', { ...body, output_path: '' }, 400],
        ['main/data', { ...body, output_path: '../x' }, 400],
        ['main/data', { output_path: 'x' }, 400],
        ['main/data', { ...body, extra_columns: [{ name: 'a', data_type: 'nope' }] }, 400],
        ['main/data', { ...body, extra_columns: [{ name: 'file_path', data_type: 'str' }] }, 400],
        ['main/data', { ...body, extra_columns: 'a' }, 400],
        ['main/data', { ...body, recursive: 'yes' }, 400],
      ];
      for (const [resource, request, status] of cases) {
        const res = await server.json(api(`/data_frames/from_directory/${resource}`), json('POST', request));
        assert.equal(res.status, status, `${resource} ${JSON.stringify(request)}: ${JSON.stringify(res.body)}`);
        assertEnvelope(res.body, 'error');
      }
    });
  });
});

describe('data frame limits', () => {
  let server: TestServer;
  const R = 'frames/limits';
  before(async () => {
    server = await startTestServer({ frames: { memoryLimitBytes: 100 * 1024 * 1024, queryTimeoutMs: 1_500 } });
    await createRepo(server, 'frames', 'limits');
    await putFiles(server, R, 'main', [{ name: 'p.parquet', content: fixture('people.parquet') }]);
  });
  after(() => server?.stop());
  const sql = (query: string) => server.json(`/api/repos/${R}/data_frames/main/p.parquet?${new URLSearchParams({ sql: query })}`);

  it('stops queries past the time, memory or result size a request may use, with a 4xx', async () => {
    const cases: Array<[string, string]> = [
      ['WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT * FROM t', 'query_timeout'],
      ['SELECT count(*) FROM df a, df b, df c, df d, df e, df f', 'query_timeout'],
      ['SELECT a.* FROM range(100000000000) a, df', 'query_timeout'],
      ['SELECT list(range) FROM range(400000000)', 'query_too_large'],
      ["SELECT string_agg(repeat('x', 1000000), '') FROM range(1000)", 'query_too_large'],
      ["SELECT repeat('x', 20000000) AS s FROM range(10)", 'result_too_large'],
    ];
    for (const [query, type] of cases) {
      const res = await sql(query);
      assert.equal(res.status, 400, `${query}: ${JSON.stringify(res.body)}`);
      assert.ok([type, 'query_timeout', 'query_too_large'].includes(res.body.error.type), `${query}: ${JSON.stringify(res.body)}`);
    }
    const ok = await sql('SELECT count(*) AS n FROM df');
    assert.deepEqual(ok.body.data_frame.view.data, [{ n: 100 }]);
  });
});

describe('a CSV larger than the frame memory limit', { skip: blobsInS3 ? BIG_FRAME_SKIP : undefined }, () => {
  let server: TestServer;
  let work: string;
  const R = 'frames/big';
  const ROWS = 5_000_000;
  const MEMORY_LIMIT = 128 * 1024 * 1024;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'yoke-df-big-'));
    await withWriter(work, (run) =>
      run(`COPY (SELECT range AS id, 'name-' || range AS name, range % 97 AS category, repeat('lorem ipsum ', 6) || range AS text FROM range(${ROWS})) TO '${join(work, 'big.csv')}' (HEADER)`),
    );
    server = await startTestServer({ frames: { memoryLimitBytes: MEMORY_LIMIT } });
    await createRepo(server, 'frames', 'big');
    // curl streams the file from disk: this process never holds it (and, the server running in this
    // process, must not block its event loop).
    await promisify(execFile)('curl', ['-sS', '--fail-with-body', '-o', '/dev/null', '-X', 'PUT', '-F', `file=@${join(work, 'big.csv')}`, '-F', `name=${AUTHOR.name}`, '-F', `email=${AUTHOR.email}`, `${server.url}/api/repos/${R}/file/main/big.csv`]);
  });
  after(async () => {
    await server?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('pages, filters and aggregates it in place while the server\'s memory stays bounded', async (t) => {
    const size = (await stat(join(work, 'big.csv'))).size;
    assert.ok(size > 3 * MEMORY_LIMIT, `the file is ${size} bytes`);
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    try {
      const get = async (query: Record<string, string>) => {
        const res = await server.json(`/api/repos/${R}/data_frames/main/big.csv?${new URLSearchParams(query)}`);
        assert.equal(res.status, 200, `${JSON.stringify(query)}: ${JSON.stringify(res.body).slice(0, 500)}`);
        return res.body.data_frame;
      };
      const first = await get({ page_size: '10' });
      assert.deepEqual(first.source.size, { height: ROWS, width: 4 });
      assert.equal(first.view.data[9].id, 9);
      const last = await get({ page: String(ROWS / 10), page_size: '10' });
      assert.equal(last.view.data[9].id, ROWS - 1);
      const filtered = await get({ filter: 'category == 5', page_size: '3' });
      assert.deepEqual(filtered.view.data.map((r: any) => r.id), [5, 102, 199]);
      assert.equal(filtered.view.pagination.total_entries, Math.ceil((ROWS - 5) / 97));
      const grouped = await get({ sql: 'SELECT category, count(*) AS n FROM df GROUP BY category', sort_by: 'category', page_size: '1' });
      assert.deepEqual(grouped.view.data, [{ category: 0, n: Math.ceil(ROWS / 97) }]);
    } finally {
      clearInterval(sampler);
    }
    const grown = peak - before;
    t.diagnostic(`RSS grew by ${(grown / 2 ** 20).toFixed(0)} MiB paging a ${(size / 2 ** 20).toFixed(0)} MiB CSV (memory limit ${MEMORY_LIMIT / 2 ** 20} MiB)`);
    // DuckDB's memory limit, and as much again for its threads' buffers and the replies: far below the file.
    assert.ok(grown < 2 * MEMORY_LIMIT, `RSS grew by ${(grown / 2 ** 20).toFixed(0)} MiB while paging a ${(size / 2 ** 20).toFixed(0)} MiB file`);
  });
});

describe('data frames with auth', () => {
  let server: TestServer;
  const R = 'team/frames';
  const as = (secret: string | null, init: RequestInit = {}): RequestInit => ({ ...init, headers: { ...(init.headers as Record<string, string>), ...(secret ? { authorization: `Bearer ${secret}` } : {}) } });
  let admin: string;
  before(async () => {
    server = await startTestServer({ auth: true });
    admin = (await server.yoke.auth.create({ name: 'Root', email: 'root@example.com', scopes: ['admin'] })).secret;
    const created = await server.json('/api/repos', as(admin, json('POST', { namespace: 'team', name: 'frames', user: AUTHOR })));
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const form = new FormData();
    form.append('file', new Blob([fixture('test.jsonl')]), 'test.jsonl');
    for (const [k, v] of Object.entries(AUTHOR)) form.append(k, v);
    assert.equal((await server.json(`/api/repos/${R}/file/main/d/test.jsonl`, as(admin, { method: 'PUT', body: form }))).status, 200);
  });
  after(() => server?.stop());

  it('reads with a read scope, like other reads; index and from_directory need write', async () => {
    const reader = (await server.yoke.auth.create({ name: 'R', email: 'r@example.com', scopes: ['read:team'] })).secret;
    const writer = (await server.yoke.auth.create({ name: 'W', email: 'w@example.com', scopes: ['write:team/frames'] })).secret;
    const stranger = (await server.yoke.auth.create({ name: 'S', email: 's@example.com', scopes: ['admin:other'] })).secret;
    for (const path of ['/data_frames/main/d/test.jsonl?sql=SELECT%201%20AS%20x', '/tabular/main', '/schemas/main', '/schemas/main/d/test.jsonl']) {
      assert.equal((await server.json(`/api/repos/${R}${path}`, as(reader))).status, 200, path);
      assert.equal((await server.json(`/api/repos/${R}${path}`, as(null))).status, 401, path);
      assert.equal((await server.json(`/api/repos/${R}${path}`, as(stranger))).status, 403, path);
    }
    const listing = { output_path: 'l.parquet', user_name: AUTHOR.name, user_email: AUTHOR.email };
    assert.equal((await server.json(`/api/repos/${R}/data_frames/index/main/d/test.jsonl`, as(reader, { method: 'POST' }))).status, 403);
    assert.equal((await server.json(`/api/repos/${R}/data_frames/from_directory/main/d`, as(reader, json('POST', listing)))).status, 403);
    assert.equal((await server.json(`/api/repos/${R}/data_frames/index/main/d/test.jsonl`, as(writer, { method: 'POST' }))).status, 200);
    assert.equal((await server.json(`/api/repos/${R}/data_frames/from_directory/main/d`, as(writer, json('POST', listing)))).status, 200);
  });
});
