import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import type { Readable } from 'node:stream';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { createGunzip, gzipSync } from 'node:zlib';
import tar from 'tar-stream';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** The Node flags of package.json's `start` script (and bin/yoke.cjs's first line). */
const SERVER_NODE_FLAGS = '--max-semi-space-size=8';

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Runs `yoke serve` in its own process, so client work does not share the server's event loop; `root`: another checkout's (a before/after run). */
export async function startServerProcess(dataDir: string, env: Record<string, string> = {}, root = ROOT): Promise<ServerProcess> {
  const port = await freePort();
  // The server runs with the Node flags `npm start` gives it. YOKE_BENCH_NODE_FLAGS replaces them (V8's heap sizing,
  // say), to measure their effect; YOKE_BENCH_BEFORE_NODE_FLAGS, when set, replaces them for the "before" checkout
  // (the same code with and without a flag).
  const flagsBefore = root !== ROOT ? process.env.YOKE_BENCH_BEFORE_NODE_FLAGS : undefined;
  const nodeFlags = (flagsBefore ?? process.env.YOKE_BENCH_NODE_FLAGS ?? SERVER_NODE_FLAGS).split(' ').filter((flag) => flag !== '');
  const child = spawn(process.execPath, [...nodeFlags, join(root, 'bin/yoke.cjs'), 'serve', '--port', String(port), '--data-dir', dataDir, '--log-level', 'warn'], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, ...env },
  });
  const url = `http://127.0.0.1:${port}`;
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  let ready = false;
  for (let i = 0; i < 200 && !ready && !exited(); i++) {
    try {
      ready = (await fetch(`${url}/api/version`)).ok;
    } catch {}
    if (!ready) await new Promise((r) => setTimeout(r, 50));
  }
  const stop = () =>
    new Promise<void>((resolve) => {
      // A server that already exited sends no second 'exit': waiting for one would hang the bench.
      if (exited()) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  if (!ready) {
    await stop();
    throw new Error(`yoke serve did not start (exit code ${child.exitCode}, signal ${child.signalCode})`);
  }
  return { url, child, stop };
}

export async function time<T>(work: () => Promise<T>): Promise<{ seconds: number; result: T }> {
  const start = process.hrtime.bigint();
  const result = await work();
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, result };
}

export interface Row {
  case: string;
  yoke: number;
  baseline: number;
  baselineName: string;
  unit?: string;
  note?: string;
}

export function printTable(title: string, rows: Row[]) {
  const lines = [
    `### ${title}`,
    '',
    '| case | Yoke | baseline | baseline time | Yoke / baseline | note |',
    '|---|---:|---|---:|---:|---|',
    ...rows.map(
      (r) =>
        `| ${r.case} | ${r.yoke.toFixed(3)} s | ${r.baselineName} | ${r.baseline.toFixed(3)} s | ${(r.yoke / r.baseline).toFixed(1)}× | ${r.note ?? ''} |`,
    ),
    '',
  ];
  console.log(lines.join('\n'));
  return lines.join('\n');
}

export async function jsonOrThrow(res: Response) {
  const body = await res.json();
  if (!res.ok) throw new Error(`${res.status}: ${JSON.stringify(body)}`);
  return body;
}

/** One HTTP request with a buffered or streamed body; resolves with status and body. */
export function send(url: string, method: string, body: Buffer | Readable, headers: Record<string, string | number>): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (Buffer.isBuffer(body)) req.end(body);
    else body.pipe(req);
  });
}

/** A multipart body of `file[]` parts; each part's filename is `name` (a hash or a path). */
export function multipart(files: Array<{ name: string; data: Buffer }>, boundary: string): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file[]"; filename="${f.name}"\r\nContent-Type: application/octet-stream\r\n\r\n`), f.data, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(parts);
}


/** `POST {repo}/versions/batch-download` of `hashes`; resolves with the number of tar entries that came back. */
export async function batchDownloadEntries(repo: string, hashes: string[]): Promise<number> {
  const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
    const req = request(`${repo}/versions/batch-download`, { method: 'POST', headers: { 'content-type': 'application/gzip' } }, resolve);
    req.on('error', reject);
    req.end(gzipSync(hashes.map((hash) => `${hash}\n`).join('')));
  });
  if (res.statusCode !== 200) throw new Error(`batch download: ${res.statusCode}`);
  const extract = tar.extract();
  let entries = 0;
  const counting = (async () => {
    for await (const entry of extract) {
      entries += 1;
      entry.resume();
    }
  })();
  res.pipe(createGunzip()).pipe(extract);
  await counting;
  return entries;
}

/**
 * Uploads a file of `size` bytes through `versions/{hash}/chunks` in `chunk`-byte pieces, two in flight (as
 * Oxen's client does), then completes it; `body(start, end)` streams bytes [start, end).
 */
export async function uploadChunked(repo: string, hash: string, size: number, chunk: number, body: (start: number, end: number) => Readable): Promise<void> {
  const starts = Array.from({ length: Math.ceil(size / chunk) }, (_, i) => i * chunk);
  let next = 0;
  await Promise.all(
    [0, 1].map(async () => {
      while (next < starts.length) {
        const start = starts[next++];
        const end = Math.min(start + chunk, size);
        const res = await send(`${repo}/versions/${hash}/chunks?offset=${start}`, 'PUT', body(start, end), { 'content-length': end - start });
        if (res.status !== 200) throw new Error(`chunk ${start}: ${res.status} ${res.body}`);
      }
    }),
  );
  const done = await send(`${repo}/versions/${hash}/complete`, 'POST', Buffer.from(JSON.stringify({ files: [{ hash, file_name: 'big' }] })), { 'content-type': 'application/json' });
  if (done.status !== 200) throw new Error(`complete: ${done.status} ${done.body}`);
}
