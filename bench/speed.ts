/**
 * Speed benchmark (issue 15): each hot path beside its raw floor, measured alternately in the same run.
 *  get    GET of one 1 KiB committed file from CONNECTIONS keep-alive connections for SECONDS, vs a plain
 *         node:http static file server (its own process, stat + read stream of the same bytes), from each client of
 *         YOKE_BENCH_SPEED_CLIENTS (node,autocannon), with the CPU each server and client used; then the
 *         same after IDLE seconds without requests, over connections kept open through the idle period.
 *  list   first page (100) of a DIR_ENTRIES-entry directory vs of a 100-entry one; every entry of the big one
 *         (pages of 10,000, the most a page holds; or one `ls` reply of JSON lines) vs `git ls-tree -l` of the same
 *         directory in a git repository.
 *  batch  POST versions/batch-download and QUERY versions of BATCH_FILES × 4 KiB blobs (each count of the list),
 *         extracted by `tar -xz` (curl | tar), vs `tar -c | tar -x` of the same files from a directory.
 *  ingest batch upload, PUT file with many parts and workspace staging vs a Node fsync+rename floor, and the server's
 *         RSS as files arrive (bench/speed-ingest.ts).
 * YOKE_BENCH_SPEED_ONLY=get|list|batch|ingest runs one part. YOKE_BENCH_SPEED_SHAPE=local|postgres|s3: where Yoke keeps
 * metadata and blobs (PostgreSQL and radosgw started as bench/scale.ts does). YOKE_BENCH_SPEED_BEFORE=<another checkout>
 * serves that one too, in the same rounds (get and batch).
 * Env: YOKE_BENCH_SPEED_BATCH_FILES (10000,100000), YOKE_BENCH_SPEED_DIR_ENTRIES (100000), YOKE_BENCH_SPEED_SAME_BYTES (1: one blob for all), YOKE_BENCH_SPEED_GIT (0: no git baseline), YOKE_BENCH_SPEED_ROUNDS (5), _SECONDS (3), _CONNECTIONS (32), _IDLE (10).
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { YokeClient } from '../src/client/index.js';
import { hashBuffer } from '../src/core/hash.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { startRadosgw } from '../test/helpers/radosgw.js';
import { jsonOrThrow, multipart, ROOT, send, startServerProcess, time } from './lib.js';
import { ingest } from './speed-ingest.js';

const ROUNDS = Number(process.env.YOKE_BENCH_SPEED_ROUNDS ?? 5);
const SECONDS = Number(process.env.YOKE_BENCH_SPEED_SECONDS ?? 3);
const CONNECTIONS = Number(process.env.YOKE_BENCH_SPEED_CONNECTIONS ?? 32);
const IDLE = Number(process.env.YOKE_BENCH_SPEED_IDLE ?? 10);
const DIR_ENTRIES = Number(process.env.YOKE_BENCH_SPEED_DIR_ENTRIES ?? 100_000);
const BATCH_FILES = (process.env.YOKE_BENCH_SPEED_BATCH_FILES ?? '10000,100000').split(',').map(Number);
/** Every file of the listed directory holds the same bytes (a 1,000,000-entry directory then fills without writing a blob per file). */
const SAME_BYTES = process.env.YOKE_BENCH_SPEED_SAME_BYTES === '1';
/** Whether to write the git repository of `git ls-tree` (fast-import takes many minutes for one tree of 1,000,000 entries). */
const WITH_GIT = process.env.YOKE_BENCH_SPEED_GIT !== '0';
const AUTHOR = { name: 'Bench', email: 'bench@example.com' };
/** Load clients of the GET part, in order: `node` (http.request in this process), `autocannon` (its own process). */
const CLIENTS = (process.env.YOKE_BENCH_SPEED_CLIENTS ?? 'node,autocannon').split(',');
/** Another checkout of Yoke (dependencies installed) served beside this one in the same rounds: before and after a change. */
const BEFORE = process.env.YOKE_BENCH_SPEED_BEFORE;
/** Where Yoke keeps its data: `local` (SQLite + data directory), `postgres` (+ local blobs) or `s3` (PostgreSQL + radosgw). */
const SHAPE = process.env.YOKE_BENCH_SPEED_SHAPE ?? 'local';

interface Load {
  perSecond: number;
  p50: number;
  p99: number;
  /** CPU seconds the server process spent per 1,000 requests. */
  serverCpuPer1000: number;
  /** Cores the load client kept busy (CPU seconds per second). */
  clientCores: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString());

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** A server under load: where its requests go and the process whose CPU is counted. */
interface Target {
  name: string;
  url: string;
  pid: number;
}

/** GETs the target from CONNECTIONS keep-alive connections of this process for `seconds`; every answer must be `expected`. */
async function hammer(target: Target, expected: Buffer, seconds: number, kept?: Agent): Promise<Load> {
  const agent = kept ?? new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const latencies: number[] = [];
  const until = performance.now() + seconds * 1000;
  const getOnce = () =>
    new Promise<void>((resolve, reject) => {
      const start = performance.now();
      request(target.url, { agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          if (res.statusCode !== 200 || !Buffer.concat(chunks).equals(expected)) return reject(new Error(`GET ${target.url}: ${res.statusCode}`));
          latencies.push(performance.now() - start);
          resolve();
        });
      })
        .on('error', reject)
        .end();
    });
  const t0 = performance.now();
  const server0 = cpuSeconds(target.pid);
  const client0 = process.cpuUsage();
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    while (performance.now() < until) await getOnce();
  }));
  const elapsed = (performance.now() - t0) / 1000;
  const client = process.cpuUsage(client0);
  const serverCpu = cpuSeconds(target.pid) - server0;
  if (!kept) agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    perSecond: latencies.length / elapsed,
    p50: latencies[Math.floor(latencies.length * 0.5)],
    p99: latencies[Math.floor(latencies.length * 0.99)],
    serverCpuPer1000: (serverCpu * 1000) / latencies.length,
    clientCores: (client.user + client.system) / 1e6 / elapsed,
  };
}

/**
 * The same load from autocannon in its own process (a client that does less per request than Node's http module,
 * to see whether the Node client bounds the figures); its latencies have whole milliseconds. Bodies are not checked.
 */
async function cannon(target: Target, seconds: number): Promise<Load> {
  const times = join(tmpdir(), `yoke-bench-autocannon-${process.pid}`);
  const server0 = cpuSeconds(target.pid);
  const out = await new Promise<string>((resolve, reject) => {
    const args = ['-f', '%U %S', '-o', times, join(ROOT, 'node_modules/.bin/autocannon'), '-c', String(CONNECTIONS), '-d', String(seconds), '-j', target.url];
    execFile('/usr/bin/time', args, { maxBuffer: 1 << 24 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
  const serverCpu = cpuSeconds(target.pid) - server0;
  const result = JSON.parse(out);
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`autocannon ${target.url}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  const [user, system] = (await readFile(times, 'utf8')).trim().split(/\s+/).slice(-2).map(Number);
  await rm(times, { force: true });
  return {
    perSecond: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    serverCpuPer1000: (serverCpu * 1000) / result.requests.total,
    clientCores: (user + system) / result.duration,
  };
}

/** A plain node:http server (its own process) answering every GET with the file at `path`. */
async function startStaticServer(path: string): Promise<{ url: string; pid: number; stop(): void }> {
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
  return { url: `http://127.0.0.1:${port}/one.bin`, pid: child.pid!, stop: () => child.kill('SIGTERM') };
}

function loadLine(name: string, client: string, runs: Load[]): string {
  const of = (pick: (r: Load) => number) => median(runs.map(pick));
  const p50 = of((r) => r.p50);
  const p99 = of((r) => r.p99);
  return `| ${name} | ${client} | ${of((r) => r.perSecond).toFixed(0)} | ${p50.toFixed(2)} | ${p99.toFixed(2)} | ${(p99 / p50).toFixed(1)} | ${(of((r) => r.serverCpuPer1000) * 1000).toFixed(0)} | ${of((r) => r.clientCores).toFixed(2)} | ${runs.map((r) => r.perSecond.toFixed(0)).join(', ')} |`;
}

/** Creates repository bench/get on `url` holding `bytes` at main/small/one.bin; its GET address. */
async function commitSmallFile(url: string, bytes: Buffer<ArrayBuffer>): Promise<string> {
  await jsonOrThrow(await fetch(`${url}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'bench', name: 'get' }) }));
  const form = new FormData();
  form.append('name', AUTHOR.name);
  form.append('email', AUTHOR.email);
  form.append('files[]', new Blob([bytes]), 'one.bin');
  await jsonOrThrow(await fetch(`${url}/api/repos/bench/get/file/main/small`, { method: 'PUT', body: form }));
  return `${url}/api/repos/bench/get/file/main/small/one.bin`;
}

async function smallFileGet(work: string): Promise<string> {
  const bytes = randomBytes(1024);
  const file = join(work, 'one.bin');
  await writeFile(file, bytes);
  const server = await startServerProcess(join(work, 'data'), await storageEnv());
  const before = BEFORE ? await startServerProcess(join(work, 'data-before'), await storageEnv(), BEFORE) : null;
  const plain = await startStaticServer(file);
  try {
    const targets: Target[] = [{ name: 'Yoke GET file/main/small/one.bin', url: await commitSmallFile(server.url, bytes), pid: server.child.pid! }];
    if (before) targets.push({ name: `Yoke before (${BEFORE})`, url: await commitSmallFile(before.url, bytes), pid: before.child.pid! });
    targets.push({ name: 'plain node:http static file server', url: plain.url, pid: plain.pid });
    const clients: Record<string, (target: Target, seconds: number) => Promise<Load>> = {
      node: (target, seconds) => hammer(target, bytes, seconds),
      autocannon: cannon,
    };
    // Warm every server (JIT, caches) before measuring.
    for (const target of targets) await hammer(target, bytes, 1);
    const runs = new Map<string, Load[]>();
    const load: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      load.push(loadavg()[0]);
      for (const client of CLIENTS) {
        for (const target of targets) {
          const key = `${target.name}\0${client}`;
          runs.set(key, [...(runs.get(key) ?? []), await clients[client](target, SECONDS)]);
        }
      }
    }
    // The connections of the round before stay open through the idle period, as a client's pool keeps them. The
    // static server idles too, in turn: a drop both show is the machine's, not Yoke's.
    const baseline = targets[targets.length - 1];
    const afterIdle: Load[] = [];
    const baselineAfterIdle: Load[] = [];
    const kept = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    const keptBaseline = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    await hammer(targets[0], bytes, 1, kept);
    await hammer(baseline, bytes, 1, keptBaseline);
    for (let round = 0; round < ROUNDS; round++) {
      await sleep(IDLE * 1000);
      afterIdle.push(await hammer(targets[0], bytes, SECONDS, kept));
      await sleep(IDLE * 1000);
      baselineAfterIdle.push(await hammer(baseline, bytes, SECONDS, keptBaseline));
    }
    kept.destroy();
    keptBaseline.destroy();
    const rate = (target: Target, client: string) => median(runs.get(`${target.name}\0${client}`)!.map((r) => r.perSecond));
    const ratios = CLIENTS.flatMap((client) =>
      targets.slice(0, -1).map((target) => `${target.name} / node:http with the ${client} client: ${((rate(target, client) / rate(baseline, client)) * 100).toFixed(0)} %.`),
    );
    const lines = [
      `### Small-file GET (1 KiB, ${CONNECTIONS} keep-alive connections, ${SECONDS} s × ${ROUNDS} rounds, alternating)`,
      '',
      '| server | client | req/s (median) | p50 ms | p99 ms | p99 / p50 | server CPU ms per 1,000 req | client cores | req/s per round |',
      '|---|---|---:|---:|---:|---:|---:|---:|---|',
      ...CLIENTS.flatMap((client) => targets.map((target) => loadLine(target.name, client, runs.get(`${target.name}\0${client}`)!))),
      loadLine(`${targets[0].name}, each round after ${IDLE} s idle`, 'node', afterIdle),
      loadLine(`${baseline.name}, each round after ${IDLE} s idle`, 'node', baselineAfterIdle),
      '',
      ...ratios,
      `Load average (1 min) before each round: ${load.map((l) => l.toFixed(2)).join(', ')}.`,
      '',
    ];
    console.log(lines.join('\n'));
    return lines.join('\n');
  } finally {
    plain.stop();
    await server.stop();
    await before?.stop();
  }
}

/** Commits `count` tiny files into `dir` of the repository, 10,000 per PUT. */
async function fillDirectory(repoUrl: string, dir: string, count: number) {
  for (let start = 0; start < count; start += 10_000) {
    const form = new FormData();
    form.append('name', AUTHOR.name);
    form.append('email', AUTHOR.email);
    for (let i = start; i < Math.min(count, start + 10_000); i++) form.append('files[]', new Blob([SAME_BYTES ? 'entry\n' : `entry ${i}\n`]), `e${String(i).padStart(7, '0')}.txt`);
    await jsonOrThrow(await fetch(`${repoUrl}/file/main/${dir}`, { method: 'PUT', body: form }));
  }
}

/** A git repository holding the same `count` files under `dir`, written by fast-import (no work tree). */
function gitRepository(path: string, dir: string, count: number) {
  execFileSync('git', ['init', '-q', '--bare', path]);
  const lines = ['commit refs/heads/main', 'committer Bench <bench@example.com> 0 +0000', 'data 5', 'fill'];
  for (let i = 0; i < count; i++) {
    const data = SAME_BYTES ? 'entry\n' : `entry ${i}\n`;
    lines.push(`M 100644 inline ${dir}/e${String(i).padStart(7, '0')}.txt`, `data ${Buffer.byteLength(data)}`, data);
  }
  execFileSync('git', ['-C', path, 'fast-import', '--quiet'], { input: lines.join('\n') + '\n', maxBuffer: 1 << 30 });
}

async function listing(work: string): Promise<string> {
  const server = await startServerProcess(join(work, 'list-data'), await storageEnv());
  try {
    await jsonOrThrow(await fetch(`${server.url}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'bench', name: 'list' }) }));
    const repoUrl = `${server.url}/api/repos/bench/list`;
    // git's repository first: its writes (100,000 objects) would otherwise stall the server's first read after them.
    const git = join(work, 'list.git');
    if (WITH_GIT) gitRepository(git, 'wide', DIR_ENTRIES);
    await fillDirectory(repoUrl, 'narrow', 100);
    const fill = await time(() => fillDirectory(repoUrl, 'wide', DIR_ENTRIES));
    const page = async (dir: string, size: number, number: number, expected: number) => {
      const body = await jsonOrThrow(await fetch(`${repoUrl}/dir/main/${dir}?page_size=${size}&page=${number}`));
      if (body.entries.length !== expected) throw new Error(`${dir} page ${number}: ${body.entries.length} entries`);
    };
    const cold = await time(() => page('wide', 100, 1, 100));
    // Every entry as JSON lines (`ls`, a Yoke extension): the body as text, as git's output is taken; then through
    // the typed client, which parses each line as the stream delivers it.
    const lsText = async () => {
      const res = await fetch(`${repoUrl}/ls/main/wide`);
      const text = await res.text();
      let count = 0;
      for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) count++;
      if (!res.ok || count !== DIR_ENTRIES) throw new Error(`ls: ${res.status}, ${count} entries`);
      return Buffer.byteLength(text);
    };
    const lsClient = async () => {
      let count = 0;
      for await (const entry of new YokeClient({ baseUrl: server.url }).entries('bench', 'list', 'main/wide')) count += entry.type === 'file' ? 1 : 0;
      if (count !== DIR_ENTRIES) throw new Error(`ls through the client: ${count} entries`);
    };
    const coldLs = await time(lsText);
    const lsTexts: number[] = [];
    const lsParsed: number[] = [];
    const narrow: number[] = [];
    const wide: number[] = [];
    const all: number[] = [];
    const lsTree: number[] = [];
    const load: number[] = [];
    // What the client's JSON.parse alone costs of "every entry": the pages' texts, parsed again after the rounds.
    let pageTexts: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      load.push(loadavg()[0]);
      narrow.push((await time(() => page('narrow', 100, 1, 100))).seconds);
      wide.push((await time(() => page('wide', 100, 1, 100))).seconds);
      all.push(
        (
          await time(async () => {
            pageTexts = [];
            for (let number = 1; number <= Math.ceil(DIR_ENTRIES / 10_000); number++) {
              const res = await fetch(`${repoUrl}/dir/main/wide?page_size=10000&page=${number}`);
              const text = await res.text();
              if (!res.ok || JSON.parse(text).entries.length !== Math.min(10_000, DIR_ENTRIES - (number - 1) * 10_000)) throw new Error(`wide page ${number}: ${res.status}`);
              pageTexts.push(text);
            }
          })
        ).seconds,
      );
      lsTexts.push((await time(lsText)).seconds);
      lsParsed.push((await time(lsClient)).seconds);
      if (WITH_GIT) lsTree.push((await time(async () => execFileSync('git', ['-C', git, 'ls-tree', '-l', 'main', 'wide/'], { maxBuffer: 1 << 30 }))).seconds);
    }
    const ms = (xs: number[]) => (median(xs) * 1000).toFixed(1);
    const jsonBytes = pageTexts.reduce((sum, text) => sum + Buffer.byteLength(text), 0);
    const parse = await time(async () => pageTexts.forEach((text) => JSON.parse(text)));
    const lines = [
      `### Directory listing (${DIR_ENTRIES} entries, ${ROUNDS} rounds, alternating; medians)`,
      '',
      '| case | Yoke ms | baseline | baseline ms | ratio |',
      '|---|---:|---|---:|---:|',
      `| first page (100) of the ${DIR_ENTRIES}-entry directory | ${ms(wide)} | first page of a 100-entry directory | ${ms(narrow)} | ${(median(wide) / median(narrow)).toFixed(1)}× |`,
      ...([
        ['every entry (pages of 10,000)', all],
        ['every entry, one `ls` reply (JSON lines), as text', lsTexts],
        ['every entry, one `ls` reply, through the typed client (each line parsed)', lsParsed],
      ] as const).map(([name, xs]) => (WITH_GIT ? `| ${name} | ${ms(xs)} | git ls-tree -l | ${ms(lsTree)} | ${(median(xs) / median(lsTree)).toFixed(1)}× |` : `| ${name} | ${ms(xs)} | (git not run) | | |`)),
      '',
      `The \`ls\` reply is ${(coldLs.result / 1e6).toFixed(1)} MB (${Math.round(coldLs.result / DIR_ENTRIES)} bytes an entry); its first time, right after the first page, took ${(coldLs.seconds * 1000).toFixed(0)} ms.`,
      '',
      `Every entry is ${(jsonBytes / 1e6).toFixed(1)} MB of Oxen's JSON (${Math.round(jsonBytes / DIR_ENTRIES)} bytes an entry); the client's JSON.parse of it alone takes ${(parse.seconds * 1000).toFixed(0)} ms.`,
      '',
      `The first page right after the commits (nodes not yet decoded): ${(cold.seconds * 1000).toFixed(0)} ms; filling the directory took ${fill.seconds.toFixed(1)} s. Load average (1 min) before each round: ${load.map((l) => l.toFixed(2)).join(', ')}.`,
      '',
    ];
    console.log(lines.join('\n'));
    return lines.join('\n');
  } finally {
    await server.stop();
  }
}

/** Uploads `count` random 4 KiB blobs to repository bench/batch on each server (500 per POST) and keeps them as files under `source`; their hashes. */
async function uploadBatchBlobs(urls: string[], source: string, count: number): Promise<string[]> {
  for (const url of urls) await jsonOrThrow(await fetch(`${url}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'bench', name: 'batch' }) }));
  await mkdir(source);
  const hashes: string[] = [];
  for (let start = 0; start < count; start += 500) {
    const files = Array.from({ length: Math.min(500, count - start) }, () => randomBytes(4096)).map((data) => ({ name: hashBuffer(data), data }));
    for (const url of urls) {
      const res = await send(`${url}/api/repos/bench/batch/versions`, 'POST', multipart(files, 'SPEED'), { 'content-type': 'multipart/form-data; boundary=SPEED' });
      if (res.status !== 200) throw new Error(`batch upload: ${res.status}`);
    }
    for (const f of files) {
      hashes.push(f.name);
      await writeFile(join(source, f.name), f.data);
    }
  }
  return hashes;
}

async function batchDownload(work: string, count: number): Promise<string> {
  const server = await startServerProcess(join(work, `batch-data-${count}`), await storageEnv());
  const before = BEFORE ? await startServerProcess(join(work, `batch-data-before-${count}`), await storageEnv(), BEFORE) : null;
  try {
    const source = join(work, `batch-files-${count}`);
    const hashes = await uploadBatchBlobs([server.url, ...(before ? [before.url] : [])], source, count);
    const request = join(work, 'batch-request.gz');
    await writeFile(request, gzipSync(hashes.map((hash) => `${hash}\n`).join('')));
    const out = join(work, 'batch-out');
    // Wall time, and the CPU time of every process involved (the command's, and the server's): on a shared
    // machine the wall time depends on the others' load, the CPU time much less.
    const times = join(work, 'batch-times');
    const run = async ({ command, extracts, pid }: Case) => {
      await rm(out, { recursive: true, force: true });
      await mkdir(out);
      const server0 = pid === undefined ? 0 : cpuSeconds(pid);
      const seconds = (await time(async () => execFileSync('/usr/bin/time', ['-f', '%U %S', '-o', times, 'sh', '-c', command]))).seconds;
      const serverCpu = pid === undefined ? 0 : cpuSeconds(pid) - server0;
      const [user, system] = (await readFile(times, 'utf8')).trim().split(/\s+/).slice(-2).map(Number);
      const extracted = Number(execFileSync('sh', ['-c', `find '${out}' -type f | wc -l`]).toString());
      if (extracts && extracted !== count) throw new Error(`${command}: ${extracted} files`);
      return { seconds, cpu: user + system + serverCpu };
    };
    const download = (url: string, method: string, path: string, sink = `| tar -xz -C '${out}'`) =>
      `curl -sS --fail -X ${method} -H 'content-type: application/gzip' --data-binary @'${request}' '${url}/api/repos/bench/batch/${path}' ${sink}`;
    // Extracted (the goal), and the archive alone into a pipe (what the server does, without creating files).
    type Case = { name: string; command: string; extracts: boolean; pid?: number };
    const tarCase: Case = { name: 'baseline: tar -c \\| tar -x', command: `tar -c -C '${source}' . | tar -x -C '${out}'`, extracts: true };
    const tarStream: Case = { name: 'baseline: tar -c \\| cat > /dev/null', command: `tar -c -C '${source}' . | cat > /dev/null`, extracts: false };
    const cases: Case[] = [
      { name: 'POST versions/batch-download, curl \\| tar -xz', command: download(server.url, 'POST', 'versions/batch-download'), extracts: true, pid: server.child.pid },
      { name: 'QUERY versions, curl \\| tar -xz', command: download(server.url, 'QUERY', 'versions'), extracts: true, pid: server.child.pid },
      ...(before ? [{ name: `POST versions/batch-download, before (${BEFORE})`, command: download(before.url, 'POST', 'versions/batch-download'), extracts: true, pid: before.child.pid }] : []),
      tarCase,
      { name: 'POST versions/batch-download, curl > /dev/null', command: download(server.url, 'POST', 'versions/batch-download', '> /dev/null'), extracts: false, pid: server.child.pid },
      ...(before ? [{ name: 'the same, before', command: download(before.url, 'POST', 'versions/batch-download', '> /dev/null'), extracts: false, pid: before.child.pid }] : []),
      tarStream,
    ];
    const results = new Map<string, Array<{ seconds: number; cpu: number }>>(cases.map((c) => [c.name, []]));
    const load: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      load.push(loadavg()[0]);
      for (const c of cases) results.get(c.name)!.push(await run(c));
    }
    await rm(source, { recursive: true, force: true });
    const seconds = (c: Case) => results.get(c.name)!.map((r) => r.seconds);
    const cpu = (c: Case) => median(results.get(c.name)!.map((r) => r.cpu));
    const baseline = (c: Case) => (c.extracts ? tarCase : tarStream);
    const lines = [
      `### Batch download (${count} × 4 KiB, extracted; ${ROUNDS} rounds, alternating; medians)`,
      '',
      '| case | s (median) | ÷ its tar baseline | CPU s, all processes | ÷ baseline | s per round |',
      '|---|---:|---:|---:|---:|---|',
      ...cases.map((c) => {
        const runs = seconds(c);
        const ratio = median(runs) / median(seconds(baseline(c)));
        return `| ${c.name} | ${median(runs).toFixed(3)} | ${ratio.toFixed(2)}× | ${cpu(c).toFixed(2)} | ${(cpu(c) / cpu(baseline(c))).toFixed(2)}× | ${runs.map((x) => x.toFixed(3)).join(', ')} |`;
      }),
      '',
      `Load average (1 min) before each round: ${load.map((l) => l.toFixed(2)).join(', ')}.`,
      '',
    ];
    console.log(lines.join('\n'));
    return lines.join('\n');
  } finally {
    await server.stop();
    await before?.stop();
  }
}

/** The environment of each Yoke server: the data directory alone, or a fresh database (and bucket) of the shape chosen. */
let storageEnv: () => Promise<Record<string, string>> = async () => ({});

/** Starts PostgreSQL (and radosgw) for SHAPE as bench/scale.ts does; what stops them. */
async function startShape(): Promise<() => Promise<void>> {
  if (SHAPE === 'local') return async () => {};
  const postgres = await startPostgres();
  if (!postgres.cluster) throw new Error(`PostgreSQL did not start: ${postgres.skip}`);
  const cluster = postgres.cluster;
  const s3 = SHAPE === 's3' ? await startRadosgw() : null;
  if (s3 && !s3.server) throw new Error(`radosgw did not start: ${s3.skip}`);
  storageEnv = async () => ({ YOKE_DATABASE_URL: await cluster.createDatabase(), ...(s3?.server ? await s3.server.env() : {}) });
  return () => cluster.stop();
}

export async function speedBench(): Promise<string> {
  const stopShape = await startShape();
  const work = await mkdtemp(join(tmpdir(), 'yoke-bench-speed-'));
  try {
    const only = process.env.YOKE_BENCH_SPEED_ONLY;
    const parts: string[] = [];
    if (!only || only === 'get') parts.push(await smallFileGet(work));
    if (!only || only === 'list') parts.push(await listing(work));
    if (!only || only === 'batch') for (const count of BATCH_FILES) parts.push(await batchDownload(work, count));
    if (!only || only === 'ingest') parts.push(await ingest(work, storageEnv));
    return parts.join('\n');
  } finally {
    await stopShape();
    await rm(work, { recursive: true, force: true });
  }
}
