/**
 * Speed benchmark (issue 15): each hot path beside its raw floor, measured alternately in the same run.
 *  get    GET of one 1 KiB committed file from CONNECTIONS keep-alive connections for SECONDS, vs a plain
 *         node:http static file server (its own process, stat + read stream of the same bytes); then the
 *         same after IDLE seconds without requests, over connections kept open through the idle period.
 * Env: YOKE_BENCH_SPEED_ROUNDS (5), _SECONDS (3), _CONNECTIONS (32), _IDLE (10).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonOrThrow, startServerProcess } from './lib.js';

const ROUNDS = Number(process.env.YOKE_BENCH_SPEED_ROUNDS ?? 5);
const SECONDS = Number(process.env.YOKE_BENCH_SPEED_SECONDS ?? 3);
const CONNECTIONS = Number(process.env.YOKE_BENCH_SPEED_CONNECTIONS ?? 32);
const IDLE = Number(process.env.YOKE_BENCH_SPEED_IDLE ?? 10);
const AUTHOR = { name: 'Bench', email: 'bench@example.com' };

interface Load {
  perSecond: number;
  p50: number;
  p99: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GETs `url` from CONNECTIONS keep-alive connections for `seconds`; every answer must be `expected`. */
async function hammer(url: string, expected: Buffer, seconds: number, kept?: Agent): Promise<Load> {
  const agent = kept ?? new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const latencies: number[] = [];
  const until = performance.now() + seconds * 1000;
  const getOnce = () =>
    new Promise<void>((resolve, reject) => {
      const start = performance.now();
      request(url, { agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          if (res.statusCode !== 200 || !Buffer.concat(chunks).equals(expected)) return reject(new Error(`GET ${url}: ${res.statusCode}`));
          latencies.push(performance.now() - start);
          resolve();
        });
      })
        .on('error', reject)
        .end();
    });
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    while (performance.now() < until) await getOnce();
  }));
  const elapsed = (performance.now() - t0) / 1000;
  if (!kept) agent.destroy();
  latencies.sort((a, b) => a - b);
  return { perSecond: latencies.length / elapsed, p50: latencies[Math.floor(latencies.length * 0.5)], p99: latencies[Math.floor(latencies.length * 0.99)] };
}

/** A plain node:http server (its own process) answering every GET with the file at `path`. */
async function startStaticServer(path: string): Promise<{ url: string; stop(): void }> {
  const code = `
    const fs = require('node:fs');
    const server = require('node:http').createServer((req, res) => {
      fs.stat(${JSON.stringify(path)}, (err, st) => {
        if (err) { res.writeHead(404); return res.end(); }
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': st.size, etag: '"' + st.mtimeMs + '"' });
        fs.createReadStream(${JSON.stringify(path)}, { end: st.size - 1 }).pipe(res);
      });
    });
    server.keepAliveTimeout = 60000;
    server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', () => reject(new Error('static server exited')));
  });
  return { url: `http://127.0.0.1:${port}/one.bin`, stop: () => child.kill('SIGTERM') };
}

function loadLine(name: string, runs: Load[]): string {
  const rps = median(runs.map((r) => r.perSecond));
  const p50 = median(runs.map((r) => r.p50));
  const p99 = median(runs.map((r) => r.p99));
  return `| ${name} | ${rps.toFixed(0)} | ${p50.toFixed(2)} | ${p99.toFixed(2)} | ${(p99 / p50).toFixed(1)} | ${runs.map((r) => r.perSecond.toFixed(0)).join(', ')} |`;
}

async function smallFileGet(work: string): Promise<string> {
  const bytes = randomBytes(1024);
  const file = join(work, 'one.bin');
  await writeFile(file, bytes);
  const server = await startServerProcess(join(work, 'data'));
  const plain = await startStaticServer(file);
  try {
    await jsonOrThrow(await fetch(`${server.url}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'bench', name: 'get' }) }));
    const form = new FormData();
    form.append('name', AUTHOR.name);
    form.append('email', AUTHOR.email);
    form.append('files[]', new Blob([bytes]), 'one.bin');
    await jsonOrThrow(await fetch(`${server.url}/api/repos/bench/get/file/main/small`, { method: 'PUT', body: form }));
    const yokeUrl = `${server.url}/api/repos/bench/get/file/main/small/one.bin`;
    // Warm both (JIT, caches) before measuring.
    await hammer(yokeUrl, bytes, 1);
    await hammer(plain.url, bytes, 1);
    const yoke: Load[] = [];
    const baseline: Load[] = [];
    const afterIdle: Load[] = [];
    const load: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      load.push(loadavg()[0]);
      yoke.push(await hammer(yokeUrl, bytes, SECONDS));
      baseline.push(await hammer(plain.url, bytes, SECONDS));
    }
    // The connections of the round before stay open through the idle period, as a client's pool keeps them.
    const kept = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    await hammer(yokeUrl, bytes, 1, kept);
    for (let round = 0; round < ROUNDS; round++) {
      await sleep(IDLE * 1000);
      afterIdle.push(await hammer(yokeUrl, bytes, SECONDS, kept));
    }
    kept.destroy();
    const ratio = median(yoke.map((r) => r.perSecond)) / median(baseline.map((r) => r.perSecond));
    const lines = [
      `### Small-file GET (1 KiB, ${CONNECTIONS} keep-alive connections, ${SECONDS} s × ${ROUNDS} rounds, alternating)`,
      '',
      '| server | req/s (median) | p50 ms | p99 ms | p99 / p50 | req/s per round |',
      '|---|---:|---:|---:|---:|---|',
      loadLine('Yoke GET file/main/small/one.bin', yoke),
      loadLine('plain node:http static file server', baseline),
      loadLine(`Yoke, each round after ${IDLE} s idle`, afterIdle),
      '',
      `Yoke / node:http: ${(ratio * 100).toFixed(0)} %. Load average (1 min) before each round: ${load.map((l) => l.toFixed(2)).join(', ')}.`,
      '',
    ];
    console.log(lines.join('\n'));
    return lines.join('\n');
  } finally {
    plain.stop();
    await server.stop();
  }
}

export async function speedBench(): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'yoke-bench-speed-'));
  try {
    const parts = [await smallFileGet(work)];
    return parts.join('\n');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
