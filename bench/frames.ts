/**
 * Data-frame benchmark (issue 13): a 1,000,000-row, 10-column table as CSV and as Parquet, served by Yoke
 * (a `yoke serve` process) beside DuckDB's own CLI (pip `duckdb-cli`, the same DuckDB release) and a Polars
 * script (`bench/frames-baseline.py`, Polars from `.venv-oxen`) doing the same work on the same files.
 * Then a 2 GB CSV is paged through the server while its RSS is sampled.
 * Sizes: BENCH_FRAMES_ROWS (1000000), BENCH_FRAMES_BIG_GB (2; 0 skips the big file).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameEngine } from '../src/storage/frames/engine.js';
import { ROOT, jsonOrThrow, startServerProcess, time, type ServerProcess } from './lib.js';

const ROWS = Number(process.env.BENCH_FRAMES_ROWS ?? 1_000_000);
const BIG_GB = Number(process.env.BENCH_FRAMES_BIG_GB ?? 2);
const AUTHOR = { name: 'Bench', email: 'bench@example.com' };
const ROUNDS = 3;
const EDITS = 1_000;

/** Ten columns of mixed types; `id` is the key, `category` has 97 values. */
const TABLE_SQL = (rows: number) => `SELECT range AS id, 'user' || (range % 50000) AS name, (range % 97)::INTEGER AS category,
  round(random() * 100, 3) AS score, (range % 3 = 0) AS flag, DATE '2020-01-01' + (range % 1000)::INTEGER AS day,
  'lorem ipsum ' || (range % 1000) AS text, range * 7 % 1000003 AS x, round(random(), 6) AS y, 'tag' || (range % 10) AS tag
  FROM range(${rows})`;

async function median(work: () => Promise<unknown>): Promise<number> {
  const seconds: number[] = [];
  for (let i = 0; i < ROUNDS; i++) seconds.push((await time(work)).seconds);
  return seconds.sort((a, b) => a - b)[Math.floor(ROUNDS / 2)];
}

/** DuckDB's CLI, installed from PyPI into a scratch virtual environment once. */
function duckdbCli(): string {
  const venv = join(tmpdir(), 'yoke-bench-duckdb-cli');
  const binary = join(venv, 'bin', 'duckdb');
  if (!existsSync(binary)) {
    execFileSync('python3', ['-m', 'venv', venv]);
    execFileSync(join(venv, 'bin', 'pip'), ['install', '-q', 'duckdb-cli==1.5.6'], { stdio: 'inherit' });
  }
  return binary;
}

function cliSeconds(cli: string, sql: string): number {
  const start = process.hrtime.bigint();
  const run = spawnSync(cli, ['-c', sql], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (run.status !== 0) throw new Error(`duckdb: ${run.stderr}`);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function cliMedian(cli: string, sql: string): number {
  const seconds = Array.from({ length: ROUNDS }, () => cliSeconds(cli, sql));
  return seconds.sort((a, b) => a - b)[Math.floor(ROUNDS / 2)];
}

async function put(server: ServerProcess, repo: string, file: string, path: string, message: string): Promise<void> {
  execFileSync('curl', ['-sS', '--fail-with-body', '-o', '/dev/null', '-X', 'PUT', '-F', `file=@${file}`, '-F', `message=${message}`, '-F', `name=${AUTHOR.name}`, '-F', `email=${AUTHOR.email}`, `${server.url}/api/repos/bench/${repo}/file/main/${path}`]);
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

type Ops = Record<'first_page' | 'filtered_page' | 'group_by' | 'index' | 'edit_commit' | 'batch_edit_commit' | 'diff', number>;

async function serverOps(server: ServerProcess, repo: string, format: string): Promise<Ops> {
  const api = `${server.url}/api/repos/bench/${repo}`;
  const path = `v.${format}`;
  const get = async (query: string) => jsonOrThrow(await fetch(`${api}/data_frames/main/${path}?${query}`));
  const sql = (text: string) => `sql=${encodeURIComponent(text)}&page_size=100`;
  const ops: Partial<Ops> = {};
  ops.first_page = await median(() => get('page=1&page_size=100'));
  ops.filtered_page = await median(() => get(sql('SELECT * FROM df WHERE category = 42')));
  ops.group_by = await median(() => get(sql('SELECT category, count(*) AS n, avg(score) AS mean FROM df GROUP BY category')));

  // Index into a fresh workspace, edit EDITS rows (eight requests in flight, as a script would), commit.
  const workspace = async () => {
    const created = await jsonOrThrow(await fetch(`${api}/workspaces`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ branch_name: 'main', workspace_id: randomUUID() }) }));
    return created.workspace.id as string;
  };
  const index = (id: string) => fetch(`${api}/workspaces/${id}/data_frames/resource/${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ is_indexed: true }) }).then(jsonOrThrow);
  const indexSeconds: number[] = [];
  const editSeconds: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const id = await workspace();
    indexSeconds.push((await time(() => index(id))).seconds);
    // Row ids of rows spread over the frame: one sql page per edited row would dominate, so read them in one query.
    const picked = await jsonOrThrow(
      await fetch(`${api}/workspaces/${id}/data_frames/resource/${path}?${sql(`SELECT * FROM df WHERE id % ${ROWS / EDITS} = 0`).replace('page_size=100', `page_size=${EDITS}`)}`),
    );
    const rowIds: string[] = picked.data_frame.view.data.map((row: Record<string, unknown>) => row._oxen_id);
    if (rowIds.length !== EDITS) throw new Error(`expected ${EDITS} rows to edit, got ${rowIds.length}`);
    editSeconds.push(
      (
        await time(async () => {
          let next = 0;
          await Promise.all(
            Array.from({ length: 8 }, async () => {
              while (next < rowIds.length) {
                const rowId = rowIds[next++];
                await jsonOrThrow(await fetch(`${api}/workspaces/${id}/data_frames/rows/${rowId}/resource/${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tag: `edited ${round}` }) }));
              }
            }),
          );
          await jsonOrThrow(await fetch(`${api}/workspaces/${id}/commit/main`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: `edit ${round}`, author: AUTHOR.name, email: AUTHOR.email }) }));
        })
      ).seconds,
    );
  }
  ops.index = indexSeconds.sort((a, b) => a - b)[1];
  ops.edit_commit = editSeconds.sort((a, b) => a - b)[1];
  // The same edits as one batch request (Oxen's `PUT rows/resource/{path}`), then the commit.
  let batchRound = 0;
  ops.batch_edit_commit = await median(async () => {
    const id = await workspace();
    await index(id);
    const picked = await jsonOrThrow(await fetch(`${api}/workspaces/${id}/data_frames/resource/${path}?sql=${encodeURIComponent(`SELECT * FROM df WHERE id % ${ROWS / EDITS} = 0`)}&page_size=${EDITS}`));
    const value = `batch ${batchRound++}`;
    const data = picked.data_frame.view.data.map((row: Record<string, unknown>) => ({ row_id: row._oxen_id, value: { tag: value } }));
    await jsonOrThrow(await fetch(`${api}/workspaces/${id}/data_frames/rows/resource/${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data }) }));
    await jsonOrThrow(await fetch(`${api}/workspaces/${id}/commit/main`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: value, author: AUTHOR.name, email: AUTHOR.email }) }));
  });

  const diffPath = `d.${format}`;
  // Create the comparison, then read the first page of changed rows. The changed rows are cached per pair of
  // versions, so only a pair's first comparison runs the join: that one is measured (one round per format).
  ops.diff = (
    await time(async () => {
      await jsonOrThrow(
        await fetch(`${api}/compare/data_frames`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ compare_id: `bench-${format}`, left: { path: diffPath, version: 'v1' }, right: { path: diffPath, version: 'main' }, keys: [{ left: 'id', right: 'id' }], compare: [], display: [] }),
        }),
      );
      const changed = await jsonOrThrow(await fetch(`${api}/compare/data_frames/bench-${format}/diff/v1..main?page_size=100`));
      if (changed.data_frame.source.size.height !== ROWS / 100) throw new Error(`expected ${ROWS / 100} changed rows, got ${changed.data_frame.source.size.height}`);
    })
  ).seconds;
  return ops as Ops;
}

export async function framesBench(): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'yoke-bench-frames-'));
  const engine = new FrameEngine({ scratchDir: join(work, 'scratch'), memoryLimitBytes: 1024 ** 3, queryTimeoutMs: 600_000 });
  const cli = duckdbCli();
  const lines: string[] = [];
  let server: ServerProcess | null = null;
  try {
    // v1, and v2 with 1 % of rows changed (every 100th row's score).
    const db = await engine.openDatabase(join(work, 'gen.duckdb'));
    await db.run(`CREATE TABLE v1 AS ${TABLE_SQL(ROWS)}`);
    await db.run(`CREATE TABLE v2 AS SELECT * REPLACE (CASE WHEN id % 100 = 0 THEN score + 1 ELSE score END AS score) FROM v1`);
    for (const format of ['csv', 'parquet']) {
      const options = format === 'csv' ? '(HEADER)' : '(FORMAT parquet)';
      for (const version of ['v1', 'v2']) await db.run(`COPY ${version} TO '${join(work, `${version}.${format}`)}' ${options}`);
    }
    db.close();

    server = await startServerProcess(join(work, 'data'));
    const results: Record<string, { yoke: Ops; duckdb: Ops; polars: Ops }> = {};
    for (const format of ['csv', 'parquet']) {
      const repo = `frames-${format}`;
      await jsonOrThrow(await fetch(`${server.url}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'bench', name: repo, user: AUTHOR }) }));
      await put(server, repo, join(work, `v1.${format}`), `v.${format}`, 'table');
      await put(server, repo, join(work, `v1.${format}`), `d.${format}`, 'diff base');
      await jsonOrThrow(await fetch(`${server.url}/api/repos/bench/${repo}/branches`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ new_name: 'v1', from_name: 'main' }) }));
      await put(server, repo, join(work, `v2.${format}`), `d.${format}`, '1 % of rows changed');
      const yoke = await serverOps(server, repo, format);

      const file = (v: string) => `'${join(work, `${v}.${format}`)}'`;
      const source = (v: string) => (format === 'csv' ? `read_csv(${file(v)})` : `read_parquet(${file(v)})`);
      const edits = Array.from({ length: EDITS }, (_, i) => `UPDATE df SET tag = 'edited' WHERE id = ${i * (ROWS / EDITS)};`).join('');
      const out = `'${join(work, `cli-edited.${format}`)}'`;
      const duckdb: Ops = {
        first_page: cliMedian(cli, `SELECT * FROM ${source('v1')} LIMIT 100; SELECT count(*) FROM ${source('v1')};`),
        filtered_page: cliMedian(cli, `SELECT * FROM ${source('v1')} WHERE category = 42 LIMIT 100; SELECT count(*) FROM ${source('v1')} WHERE category = 42;`),
        group_by: cliMedian(cli, `SELECT category, count(*) AS n, avg(score) AS mean FROM ${source('v1')} GROUP BY category;`),
        index: cliMedian(cli, `ATTACH '${join(work, 'cli-index.duckdb')}' AS w; CREATE OR REPLACE TABLE w.df AS SELECT * FROM ${source('v1')};`),
        batch_edit_commit: cliMedian(cli, `ATTACH '${join(work, 'cli-index.duckdb')}' AS w; USE w; UPDATE df SET tag = 'batch' WHERE id % ${ROWS / EDITS} = 0; COPY df TO ${out} ${format === 'csv' ? '(HEADER)' : '(FORMAT parquet)'};`),
        edit_commit: cliMedian(cli, `ATTACH '${join(work, 'cli-index.duckdb')}' AS w; USE w; ${edits} COPY df TO ${out} ${format === 'csv' ? '(HEADER)' : '(FORMAT parquet)'};`),
        diff: cliMedian(cli, `SELECT count(*) FROM ((SELECT * FROM ${source('v1')} EXCEPT SELECT * FROM ${source('v2')}) UNION ALL (SELECT * FROM ${source('v2')} EXCEPT SELECT * FROM ${source('v1')}));`),
      };
      const polars = JSON.parse(execFileSync(join(ROOT, '.venv-oxen', 'bin', 'python'), [join(ROOT, 'bench', 'frames-baseline.py'), work, format], { encoding: 'utf8' })) as Ops;
      results[format] = { yoke, duckdb, polars };
    }

    const labels: Record<keyof Ops, string> = {
      first_page: 'first page (100 rows + row count)',
      filtered_page: 'filtered page (`category = 42`, 100 rows + count)',
      group_by: '`GROUP BY category` (count, mean)',
      index: 'index into a workspace',
      edit_commit: `edit ${EDITS} rows (one request each, 8 in flight) and commit`,
      batch_edit_commit: `edit ${EDITS} rows (one batch request) and commit`,
      diff: 'diff of two versions differing in 1 % of rows (first comparison of the pair; Yoke caches the result)',
    };
    lines.push(`### Data frames: ${ROWS.toLocaleString('en')} rows × 10 columns (medians of ${ROUNDS})`, '');
    lines.push('| operation | format | Yoke | DuckDB CLI | Yoke / DuckDB | Polars | Yoke / Polars |', '|---|---|---:|---:|---:|---:|---:|');
    for (const format of ['csv', 'parquet']) {
      const r = results[format];
      for (const op of Object.keys(labels) as (keyof Ops)[]) {
        lines.push(`| ${labels[op]} | ${format} | ${r.yoke[op].toFixed(3)} s | ${r.duckdb[op].toFixed(3)} s | ${(r.yoke[op] / r.duckdb[op]).toFixed(1)}× | ${r.polars[op].toFixed(3)} s | ${(r.yoke[op] / r.polars[op]).toFixed(1)}× |`);
      }
    }
    lines.push('');

    if (BIG_GB > 0) {
      const big = join(work, 'big.csv');
      // About 82 bytes a row (measured: 21.5 M rows came to 1.63 GiB at the 100 once assumed).
      const bigRows = Math.round((BIG_GB * 1024 ** 3) / 82);
      const gen = await engine.openDatabase(join(work, 'gen-big.duckdb'));
      await gen.run(`COPY (${TABLE_SQL(bigRows)}) TO '${big}' (HEADER)`);
      gen.close();
      const size = (await stat(big)).size;
      await jsonOrThrow(await fetch(`${server.url}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'bench', name: 'big', user: AUTHOR }) }));
      await put(server, 'big', big, 'big.csv', 'big table');
      const pid = server.child.pid!;
      const idle = rssMiB(pid);
      let peak = idle;
      const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 50);
      const pages: number[] = [];
      const api = `${server.url}/api/repos/bench/big/data_frames/main/big.csv`;
      for (const page of [1, 2, 1000, 100_000, Math.floor(bigRows / 100)]) {
        pages.push((await time(async () => jsonOrThrow(await fetch(`${api}?page=${page}&page_size=100`)))).seconds);
      }
      const grouped = await time(async () => jsonOrThrow(await fetch(`${api}?sql=${encodeURIComponent('SELECT category, count(*) AS n FROM df GROUP BY category')}`)));
      clearInterval(sampler);
      lines.push(`### Paging a ${(size / 1024 ** 3).toFixed(2)} GiB CSV (${bigRows.toLocaleString('en')} rows)`, '');
      lines.push('| request | seconds |', '|---|---:|');
      ['first page (cold)', 'page 2', 'page 1,000', 'page 100,000', 'last page'].forEach((label, i) => lines.push(`| ${label} | ${pages[i].toFixed(3)} |`));
      lines.push(`| \`GROUP BY category\` | ${grouped.seconds.toFixed(3)} |`, '');
      lines.push(`Server RSS: ${idle.toFixed(0)} MiB before, ${peak.toFixed(0)} MiB at most while paging (DuckDB memory limit ${process.env.YOKE_FRAME_MEMORY_BYTES ?? '256 MiB (default)'}).`, '');
    }
  } finally {
    await server?.stop();
    await engine.close();
    await rm(work, { recursive: true, force: true });
  }
  const text = lines.join('\n');
  console.log(text);
  return text;
}
