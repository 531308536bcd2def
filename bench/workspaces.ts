/**
 * Workspace benchmark: stage N files of 4 KiB through a workspace (multipart requests of ~10 MiB,
 * two in flight) and commit them, beside a batch upload (`POST …/versions`) of the same files in
 * the same run — the figure of the version-files benchmark.
 * Size: BENCH_WORKSPACE_FILES (10000).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashBuffer } from '../src/core/hash.js';
import { jsonOrThrow, multipart, printTable, send, startServerProcess, time, type Row } from './lib.js';

const FILES = Number(process.env.BENCH_WORKSPACE_FILES ?? 10_000);

/** Sends the bodies to `url`, two requests in flight; every answer must be 200 without err_files. */
async function sendAll(url: string, bodies: Buffer[]) {
  let next = 0;
  await Promise.all(
    [0, 1].map(async () => {
      while (next < bodies.length) {
        const res = await send(url, 'POST', bodies[next++], { 'content-type': 'multipart/form-data; boundary=BENCH' });
        const parsed = JSON.parse(res.body.toString());
        if (res.status !== 200 || parsed.err_files.length > 0) throw new Error(`${url}: ${res.status} ${res.body.toString().slice(0, 300)}`);
      }
    }),
  );
}

export async function workspacesBench(): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'yoke-bench-ws-'));
  const server = await startServerProcess(join(work, 'data'));
  const rows: Row[] = [];
  try {
    const repo = `${server.url}/api/repos/bench/ws`;
    await jsonOrThrow(await fetch(`${server.url}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'bench', name: 'ws' }) }));
    const perRequest = Math.floor((10 * 1024 * 1024) / 4096);
    const batches = (files: Array<{ name: string; data: Buffer }>) =>
      Array.from({ length: Math.ceil(files.length / perRequest) }, (_, i) => multipart(files.slice(i * perRequest, (i + 1) * perRequest), 'BENCH'));

    const versions = Array.from({ length: FILES }, () => randomBytes(4096)).map((data) => ({ name: hashBuffer(data), data }));
    const batch = await time(() => sendAll(`${repo}/versions`, batches(versions)));
    rows.push({ case: `batch upload ${FILES} × 4 KiB (POST versions)`, yoke: batch.seconds, baseline: batch.seconds, baselineName: 'itself', note: `${Math.round(FILES / batch.seconds)} files/s` });

    await jsonOrThrow(await fetch(`${repo}/workspaces`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ workspace_id: 'bench', branch_name: 'main' }) }));
    const paths = Array.from({ length: FILES }, (_, i) => ({ name: `d${i % 100}/f${i}.bin`, data: randomBytes(4096) }));
    const staging = await time(() => sendAll(`${repo}/workspaces/bench/files/data`, batches(paths)));
    const commit = await time(async () =>
      jsonOrThrow(
        await fetch(`${repo}/workspaces/bench/commit/main`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ message: 'bench', author: 'Bench', email: 'bench@example.com' }),
        }),
      ),
    );
    const total = staging.seconds + commit.seconds;
    rows.push({
      case: `stage ${FILES} × 4 KiB in a workspace + commit`,
      yoke: total,
      baseline: batch.seconds,
      baselineName: 'batch upload above',
      note: `${Math.round(FILES / total)} files/s (staging ${staging.seconds.toFixed(2)} s, commit ${commit.seconds.toFixed(2)} s)`,
    });
  } finally {
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
  return printTable(`Workspaces (${FILES} files)`, rows);
}
