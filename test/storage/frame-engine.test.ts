import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameEngine, FrameQueryError, type FrameFile } from '../../src/storage/frames/engine.js';
import { FrameFiles } from '../../src/storage/frames/frame-files.js';
import { LocalBlobStore } from '../../src/storage/local-blob-store.js';
import { hashBuffer } from '../../src/core/hash.js';
import { oxenDtypeOf } from '../../src/core/tabular.js';

const rows = [
  { id: 1, name: 'a', score: 1.5, tags: ['x'] },
  { id: 2, name: 'b, "quoted"', score: 2.5, tags: [] },
  { id: 3, name: 'c', score: null, tags: ['y', 'z'] },
];

describe('frame engine (DuckDB)', () => {
  let dir: string;
  let engine: FrameEngine;
  const files: Record<string, FrameFile> = {};

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'yoke-frames-'));
    engine = new FrameEngine({ scratchDir: join(dir, 'scratch'), queryTimeoutMs: 2_000 });
    await writeFile(join(dir, 'a.csv'), 'id,name,score\n1,a,1.5\n2,"b, ""quoted""",2.5\n3,c,\n');
    await writeFile(join(dir, 'a.tsv'), 'id\tname\tscore\n1\ta\t1.5\n2\tb, "quoted"\t2.5\n3\tc\t\n');
    await writeFile(join(dir, 'a.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    await writeFile(join(dir, 'a.json'), JSON.stringify(rows));
    // Parquet is written by DuckDB itself, from a database the test owns.
    const db = await engine.openDatabase(join(dir, 'writer.duckdb'));
    await db.run(`COPY (SELECT * FROM read_json('${join(dir, 'a.jsonl')}', format = 'newline_delimited')) TO '${join(dir, 'a.parquet')}' (FORMAT parquet)`);
    db.close();
    for (const format of ['csv', 'tsv', 'jsonl', 'json', 'parquet'] as const) files[format] = { path: join(dir, `a.${format}`), format };
  });

  after(async () => {
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  });

  for (const format of ['csv', 'tsv', 'jsonl', 'json', 'parquet'] as const) {
    it(`reads ${format} as the view df, with counts and typed columns`, async () => {
      await engine.withFrame(files[format], async (frame) => {
        assert.equal(await frame.count(), 3);
        const columns = await frame.columns();
        assert.deepEqual(columns.slice(0, 3).map((c) => [c.name, oxenDtypeOf(c.type)]), [['id', 'i64'], ['name', 'str'], ['score', 'f64']]);
        const page = await frame.rows('SELECT id, name, score FROM df ORDER BY id LIMIT 2 OFFSET 1');
        assert.deepEqual(page.rows, [{ id: 2, name: 'b, "quoted"', score: 2.5 }, { id: 3, name: 'c', score: null }]);
      });
    });
  }

  it('keeps nested values nested', async () => {
    await engine.withFrame(files.parquet, async (frame) => {
      const { rows: got, columns } = await frame.rows('SELECT tags FROM df ORDER BY id');
      assert.deepEqual(got.map((r) => r.tags), [['x'], [], ['y', 'z']]);
      assert.equal(oxenDtypeOf(columns[0].type), 'list[str]');
    });
  });

  it('accepts one SELECT and refuses everything else, with a kind the routes map to 4xx', async () => {
    const secret = join(dir, 'secret.txt');
    await writeFile(secret, 'not for clients');
    const refused: [string, FrameQueryError['kind']][] = [
      [`SELECT * FROM read_csv('${secret}')`, 'unreadable'],
      [`SELECT * FROM read_text('/etc/passwd')`, 'unreadable'],
      [`SELECT * FROM glob('/*')`, 'unreadable'],
      [`COPY df TO '${join(dir, 'out.csv')}'`, 'unreadable'],
      [`ATTACH '${join(dir, 'x.duckdb')}' AS x`, 'not_read_only'],
      ['INSTALL httpfs', 'not_read_only'],
      ['LOAD httpfs', 'not_read_only'],
      ['SET enable_external_access = true', 'not_read_only'],
      ['CREATE TABLE t AS SELECT 1', 'not_read_only'],
      ['DROP VIEW df', 'not_read_only'],
      ['SELECT 1; SELECT 2', 'not_read_only'],
      ["SELECT * FROM query('DROP VIEW df')", 'sql'],
      ['SELECT * FROM nope', 'sql'],
      ['SELECT * FROM df WHERE', 'sql'],
    ];
    await engine.withFrame(files.csv, async (frame) => {
      for (const [sql, kind] of refused) {
        await assert.rejects(
          async () => frame.rows(`SELECT * FROM (${await frame.checkSelect(sql)}) AS q LIMIT 5`),
          (error: unknown) => error instanceof FrameQueryError && error.kind === kind,
          sql,
        );
      }
      // Still intact after all that.
      assert.equal(await frame.count(), 3);
      assert.equal(await frame.checkSelect('select * from df where id > 1;  '), 'select * from df where id > 1');
    });
    assert.equal(await readFile(join(dir, 'out.csv')).catch(() => null), null);
  });

  it('stops queries that run too long or need too much memory', async () => {
    await engine.withFrame(files.csv, async (frame) => {
      await assert.rejects(
        frame.rows('WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT count(*) FROM t'),
        (error: unknown) => error instanceof FrameQueryError && error.kind === 'timeout',
      );
      await assert.rejects(
        frame.rows('SELECT list(range) FROM range(400000000)'),
        (error: unknown) => error instanceof FrameQueryError && (error.kind === 'memory' || error.kind === 'timeout'),
      );
      assert.equal(await frame.count(), 3);
    });
  });

  it('exports a client\'s SELECT to one file in each format, from a sandbox that can write nothing else', async () => {
    for (const format of ['csv', 'tsv', 'jsonl', 'ndjson', 'json', 'parquet'] as const) {
      const out = { path: join(dir, `export.${format}`), format };
      await engine.exportSelect(files.jsonl, 'SELECT id, name FROM df WHERE id > 1 ORDER BY id', out);
      const back = await engine.withFrame(out, async (frame) => (await frame.rows('SELECT * FROM df')).rows);
      assert.deepEqual(back.map((r) => [Number(r.id), r.name]), [[2, 'b, "quoted"'], [3, 'c']], format);
    }
    const out = { path: join(dir, 'refused.csv'), format: 'csv' as const };
    for (const sql of [`SELECT * FROM read_csv('${files.csv.path}')`, `COPY df TO '${join(dir, 'elsewhere.csv')}'`, 'SELECT 1; SELECT 2', 'DROP VIEW df']) {
      await assert.rejects(engine.exportSelect(files.jsonl, sql, out), (error: unknown) => error instanceof FrameQueryError, sql);
    }
    await assert.rejects(readFile(join(dir, 'elsewhere.csv')), 'nothing was written elsewhere');
  });

  it('spills into a directory per instance, and removes what killed processes of this host left', async () => {
    const spill = join(dir, 'scratch', 'spill');
    const stale = join(spill, `${hostname()}-999999999-1`);
    const othersHost = join(spill, 'another-host-999999999-1');
    await mkdir(stale, { recursive: true });
    await mkdir(othersHost, { recursive: true });
    const second = new FrameEngine({ scratchDir: join(dir, 'scratch'), memoryLimitBytes: 96 * 1024 * 1024 });
    assert.deepEqual((await readdir(spill)).sort(), ['another-host-999999999-1']);
    // An ORDER BY over more than the memory limit spills, into this instance's own directory.
    await second.withFrame(files.csv, async (frame) => {
      const { rows } = await frame.rows('SELECT max(s) AS m FROM (SELECT repeat(range::VARCHAR, 50) AS s FROM range(3000000) ORDER BY s DESC LIMIT 1)');
      assert.equal(typeof rows[0].m, 'string');
    });
    await second.close();
  });

  it('gives the local blob store its own files, and refuses unknown hashes', async () => {
    const blobs = await LocalBlobStore.open(join(dir, 'blobs'));
    const bytes = await readFile(files.csv.path);
    const { hash } = await blobs.put([bytes]);
    assert.equal(hash, hashBuffer(bytes));
    const frameFiles = new FrameFiles(blobs, join(dir, 'scratch'));
    const path = await frameFiles.pathOf(hash);
    assert.equal(path, blobs.localPath(hash));
    await engine.withFrame({ path, format: 'csv' }, async (frame) => assert.equal(await frame.count(), 3));
    await assert.rejects(frameFiles.pathOf('0'.repeat(31) + '1'), { name: 'NotFound' });
    await blobs.close();
  });
});
