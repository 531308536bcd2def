/**
 * Ingest part of the speed benchmark (issue 15; `YOKE_BENCH_SPEED_ONLY=ingest`).
 *  rate  INGEST_FILES × 4 KiB of fresh random bytes per case and round, each case in one request: POST versions
 *        (batch upload by hash), PUT file with one part per file (one commit), workspace staging (POST
 *        workspaces/{id}/files); then POST versions of blobs already stored. Baseline in the same rounds: a Node
 *        process writing the same number of files the plain way (open, write, fsync, close, rename into one of 256
 *        shard directories, 32 in flight with fs/promises, then one fsync per shard directory), timed inside it; on
 *        YOKE_BENCH_SPEED_SHAPE=s3, a PutObject of each file into a bucket of the same radosgw, 32 in flight.
 *  rss   a fresh server per total of INGEST_RSS_TOTALS: its RSS idle (in all, and its anonymous part: file-backed
 *        pages are mapped files, SQLite's database among them), then sampled every 100 ms while that many
 *        files arrive by POST versions, in requests of INGEST_RSS_REQUEST files (0: one request for all); the same on
 *        YOKE_BENCH_SPEED_BEFORE's checkout when set.
 * YOKE_BENCH_SPEED_BEFORE=<another checkout> runs the same cases on that one too, in the same rounds.
 * Env: YOKE_BENCH_SPEED_INGEST_FILES (10000), _INGEST_RSS_TOTALS (1000,10000,100000), _INGEST_RSS_REQUEST (10000),
 * _INGEST_PARTS (rate,rss).
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { hashBuffer } from '../src/core/hash.js';
import { jsonOrThrow, ROOT, startServerProcess, time, type ServerProcess } from './lib.js';

const ROUNDS = Number(process.env.YOKE_BENCH_SPEED_ROUNDS ?? 5);
const FILES = Number(process.env.YOKE_BENCH_SPEED_INGEST_FILES ?? 10_000);
const RSS_TOTALS = (process.env.YOKE_BENCH_SPEED_INGEST_RSS_TOTALS ?? '1000,10000,100000').split(',').map(Number);
const RSS_REQUEST = Number(process.env.YOKE_BENCH_SPEED_INGEST_RSS_REQUEST ?? 10_000);
const BEFORE = process.env.YOKE_BENCH_SPEED_BEFORE;
const FILE_BYTES = 4096;
const BOUNDARY = 'YOKEINGEST';
const AUTHOR = { name: 'Bench', email: 'bench@example.com' };

/** The environment of each server (a fresh database and bucket on PostgreSQL + S3; see speed.ts). */
type StorageEnv = () => Promise<Record<string, string>>;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The baseline: writes the files of `pack` (FILE_BYTES each, named by `names`) durably, timed inside its process. */
const FLOOR_SCRIPT = `
const fs = require('node:fs/promises');
const [pack, namesFile, root] = process.argv.slice(1);
(async () => {
  const bytes = await fs.readFile(pack);
  const names = JSON.parse(await fs.readFile(namesFile, 'utf8'));
  await fs.mkdir(root + '/tmp', { recursive: true });
  const shards = Array.from({ length: 256 }, (_, i) => root + '/objects/' + i.toString(16).padStart(2, '0'));
  for (const dir of shards) await fs.mkdir(dir, { recursive: true });
  const start = performance.now();
  const cpu = process.cpuUsage();
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < names.length) {
      const i = next++;
      const tmp = root + '/tmp/' + i;
      const file = await fs.open(tmp, 'wx');
      await file.writeFile(bytes.subarray(i * ${FILE_BYTES}, (i + 1) * ${FILE_BYTES}));
      await file.sync();
      await file.close();
      await fs.rename(tmp, root + '/objects/' + names[i].slice(0, 2) + '/' + names[i].slice(2));
    }
  }));
  await Promise.all(shards.map(async (dir) => { const d = await fs.open(dir, 'r'); await d.sync(); await d.close(); }));
  const used = process.cpuUsage(cpu);
  console.log((performance.now() - start) / 1000, (used.user + used.system) / 1e6);
})();`;

/** The baseline on S3: PutObject of each file into a fresh bucket, 32 in flight, with the SDK settings Yoke uses. */
const S3_FLOOR_SCRIPT = `
const fs = require('node:fs/promises');
const { CreateBucketCommand, PutObjectCommand, S3Client } = require('@aws-sdk/client-s3');
const [pack, namesFile] = process.argv.slice(1);
(async () => {
  const bytes = await fs.readFile(pack);
  const names = JSON.parse(await fs.readFile(namesFile, 'utf8'));
  const client = new S3Client({ region: process.env.YOKE_S3_REGION, endpoint: process.env.YOKE_S3_ENDPOINT, forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  const Bucket = process.env.YOKE_S3_BUCKET + '-floor-' + process.pid;
  await client.send(new CreateBucketCommand({ Bucket }));
  const start = performance.now();
  const cpu = process.cpuUsage();
  let next = 0;
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < names.length) {
      const i = next++;
      await client.send(new PutObjectCommand({ Bucket, Key: 'blobs/' + names[i], Body: bytes.subarray(i * ${FILE_BYTES}, (i + 1) * ${FILE_BYTES}) }));
    }
  }));
  const used = process.cpuUsage(cpu);
  console.log((performance.now() - start) / 1000, (used.user + used.system) / 1e6);
})();`;

interface Files {
  names: string[];
  data: Buffer[];
}

function freshFiles(count: number, name: (i: number, data: Buffer) => string): Files {
  const data = Array.from({ length: count }, () => randomBytes(FILE_BYTES));
  return { names: data.map((d, i) => name(i, d)), data };
}

const byHash = (count: number) => freshFiles(count, (_, data) => hashBuffer(data).padStart(32, '0'));

/**
 * Seconds the baseline takes to write `files` under `root` (or into a bucket of the S3 server `env` names), and the CPU
 * seconds its process spent meanwhile.
 */
async function floor(work: string, files: Files, env: Record<string, string>): Promise<{ seconds: number; cpu: number }> {
  const pack = join(work, 'floor-pack');
  const names = join(work, 'floor-names.json');
  const root = join(work, 'floor-root');
  await writeFile(pack, Buffer.concat(files.data));
  await writeFile(names, JSON.stringify(files.data.map((d) => hashBuffer(d).padStart(32, '0'))));
  await rm(root, { recursive: true, force: true });
  const out = await new Promise<string>((resolve, reject) =>
    env.YOKE_S3_BUCKET
      ? execFile(process.execPath, ['-e', S3_FLOOR_SCRIPT, pack, names], { cwd: ROOT, env: { ...process.env, ...env } }, (err, stdout) => (err ? reject(err) : resolve(stdout)))
      : execFile(process.execPath, ['-e', FLOOR_SCRIPT, pack, names, root], (err, stdout) => (err ? reject(err) : resolve(stdout))),
  );
  await rm(root, { recursive: true, force: true });
  const [seconds, cpu] = out.trim().split(' ').map(Number);
  return { seconds, cpu };
}

/** A multipart body of `file[]` parts, generated in 1 MiB writes as it is sent (a 100,000-file body is not held whole here). */
function multipartStream(files: Files, fields: Record<string, string> = {}): Readable {
  function* coalesced() {
    let batch: Buffer[] = [];
    let size = 0;
    for (const piece of pieces()) {
      batch.push(piece);
      size += piece.length;
      if (size < 1 << 20) continue;
      yield Buffer.concat(batch);
      batch = [];
      size = 0;
    }
    if (size > 0) yield Buffer.concat(batch);
  }
  function* pieces() {
    for (const [name, value] of Object.entries(fields)) yield Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`);
    for (let i = 0; i < files.data.length; i++) {
      yield Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file[]"; filename="${files.names[i]}"\r\nContent-Type: application/octet-stream\r\n\r\n`);
      yield files.data[i];
      yield Buffer.from('\r\n');
    }
    yield Buffer.from(`--${BOUNDARY}--\r\n`);
  }
  return Readable.from(coalesced(), { objectMode: false });
}

/** Sends a multipart body and returns the parsed JSON reply, failing on any status but 200 or any err_files. */
function sendForm(url: string, method: string, body: Readable): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        const parsed = JSON.parse(text);
        const failed = Array.isArray(parsed.err_files) && parsed.err_files.length > 0;
        if (res.statusCode !== 200 || failed) reject(new Error(`${method} ${url}: ${res.statusCode} ${text.slice(0, 300)}`));
        else resolve(parsed);
      });
    });
    req.on('error', reject);
    body.pipe(req);
  });
}

/** A server ready for the cases: repository bench/ingest with a first commit, workspace `ingest` on main. */
async function prepare(server: ServerProcess): Promise<string> {
  await jsonOrThrow(await fetch(`${server.url}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'bench', name: 'ingest' }) }));
  const repo = `${server.url}/api/repos/bench/ingest`;
  await sendForm(`${repo}/file/main/start`, 'PUT', multipartStream(freshFiles(1, () => 'start.bin'), AUTHOR));
  await jsonOrThrow(await fetch(`${repo}/workspaces`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ workspace_id: 'ingest', branch_name: 'main' }) }));
  return repo;
}

/** The ingest cases against one server, each with its FILES fresh files (made before the clock starts). `round` keeps the paths of each round apart. */
function cases(repo: string, round: number): Array<[string, () => Promise<unknown>]> {
  const stored = byHash(FILES);
  const put = freshFiles(FILES, (i) => `f${i}.bin`);
  const staged = freshFiles(FILES, (i) => `f${i}.bin`);
  return [
    ['POST versions', () => sendForm(`${repo}/versions`, 'POST', multipartStream(stored))],
    ['PUT file, one part per file', () => sendForm(`${repo}/file/main/put${round}`, 'PUT', multipartStream(put, AUTHOR))],
    ['workspace staging', () => sendForm(`${repo}/workspaces/ingest/files/ws${round}`, 'POST', multipartStream(staged))],
    ['POST versions, every blob already stored', () => sendForm(`${repo}/versions`, 'POST', multipartStream(stored))],
  ];
}

async function ingestRate(work: string, env: StorageEnv): Promise<string[]> {
  const servers: Array<{ name: string; server: ServerProcess; repo: string }> = [];
  try {
    const server = await startServerProcess(join(work, 'ingest-data'), await env());
    servers.push({ name: 'Yoke', server, repo: await prepare(server) });
    if (BEFORE) {
      const before = await startServerProcess(join(work, 'ingest-data-before'), await env(), BEFORE);
      servers.push({ name: `Yoke before (${BEFORE})`, server: before, repo: await prepare(before) });
    }
    const seconds = new Map<string, number[]>();
    const cpu = new Map<string, number[]>();
    const add = (key: string, s: number) => seconds.set(key, [...(seconds.get(key) ?? []), s]);
    const load: number[] = [];
    const floorCpu: number[] = [];
    const floorEnv = await env();
    for (let round = 0; round < ROUNDS; round++) {
      load.push(loadavg()[0]);
      const measured = await floor(work, byHash(FILES), floorEnv);
      add('floor', measured.seconds);
      floorCpu.push(measured.cpu);
      for (const { name, server, repo } of servers) {
        for (const [label, run] of cases(repo, round)) {
          const cpu0 = cpuSeconds(server.child.pid!);
          add(`${name}\0${label}`, (await time(run)).seconds);
          cpu.set(`${name}\0${label}`, [...(cpu.get(`${name}\0${label}`) ?? []), cpuSeconds(server.child.pid!) - cpu0]);
        }
      }
    }
    const base = median(seconds.get('floor')!);
    const rate = (s: number) => Math.round(FILES / s).toLocaleString('en');
    const rows = [...seconds].filter(([key]) => key !== 'floor').map(([key, xs]) => {
      const [server, label] = key.split('\0');
      const s = median(xs);
      const cpuPer1000 = (median(cpu.get(key)!) * 1000 * 1000) / FILES;
      return `| ${server} | ${label} | ${s.toFixed(3)} | ${rate(s)} | ${((base / s) * 100).toFixed(0)} % | ${cpuPer1000.toFixed(0)} | ${xs.map((x) => x.toFixed(2)).join(', ')} |`;
    });
    const floorRuns = seconds.get('floor')!;
    return [
      `### Ingest (${FILES} × 4 KiB per case and round, one request each; ${ROUNDS} rounds, alternating; medians)`,
      '',
      '| server | case | s | files/s | of the floor | server CPU ms per 1,000 files | s per round |',
      '|---|---|---:|---:|---:|---:|---|',
      ...rows,
      `| floor | ${floorEnv.YOKE_S3_BUCKET ? 'Node, PutObject of each file (AWS SDK), 32 in flight' : 'Node, open/write/fsync/close/rename, 32 in flight, + 256 directory fsyncs'} | ${base.toFixed(3)} | ${rate(base)} | 100 % | ${((median(floorCpu) * 1000 * 1000) / FILES).toFixed(0)} | ${floorRuns.map((x) => x.toFixed(2)).join(', ')} |`,
      '',
      `Load average (1 min) before each round: ${load.map((l) => l.toFixed(2)).join(', ')}.`,
      '',
    ];
  } finally {
    for (const { server } of servers) await server.stop();
  }
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString());

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** The process's resident memory in MiB: in all, and its anonymous part (heaps, stacks: what it allocated itself). */
function rssMiB(pid: number): { all: number; anon: number } {
  const lines = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n');
  const kib = (field: string) => Number(lines.find((l) => l.startsWith(`${field}:`))!.split(/\s+/)[1]);
  return { all: kib('VmRSS') / 1024, anon: kib('RssAnon') / 1024 };
}

async function ingestRss(work: string, env: StorageEnv): Promise<string[]> {
  const rows: string[] = [];
  const checkouts: Array<[string, string | undefined]> = [['Yoke', undefined], ...(BEFORE ? [[`Yoke before`, BEFORE] as [string, string]] : [])];
  for (const total of RSS_TOTALS) for (const [name, checkout] of checkouts) {
    const server = await startServerProcess(join(work, `rss-data-${total}`), await env(), checkout);
    try {
      const pid = server.child.pid!;
      await jsonOrThrow(await fetch(`${server.url}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'bench', name: 'rss' }) }));
      const repo = `${server.url}/api/repos/bench/rss`;
      // Warm: the first request loads the multipart and upload code.
      await sendForm(`${repo}/versions`, 'POST', multipartStream(byHash(100)));
      await sleep(1000);
      const idle = rssMiB(pid);
      const peak = { ...idle };
      const sampler = setInterval(() => {
        const now = rssMiB(pid);
        peak.all = Math.max(peak.all, now.all);
        peak.anon = Math.max(peak.anon, now.anon);
      }, 100);
      const perRequest = RSS_REQUEST > 0 ? Math.min(RSS_REQUEST, total) : total;
      let seconds = 0;
      for (let sent = 0; sent < total; sent += perRequest) {
        const files = byHash(Math.min(perRequest, total - sent));
        seconds += (await time(() => sendForm(`${repo}/versions`, 'POST', multipartStream(files)))).seconds;
      }
      clearInterval(sampler);
      const after = rssMiB(pid);
      const mib = (x: number) => x.toFixed(0);
      rows.push(
        `| ${name} | ${total.toLocaleString('en')} | ${perRequest.toLocaleString('en')} | ${Math.round(total / seconds).toLocaleString('en')} | ${mib(idle.all)} | ${mib(peak.all)} | ${mib(peak.all - idle.all)} | ${mib(after.all)} | ${mib(idle.anon)} | ${mib(peak.anon - idle.anon)} | ${mib(after.all - after.anon)} |`,
      );
    } finally {
      await server.stop();
      await rm(join(work, `rss-data-${total}`), { recursive: true, force: true });
    }
  }
  return [
    `### Server RSS while files arrive (POST versions of 4 KiB files; a fresh server per total)`,
    '',
    '| server | files in all | files per request | files/s | idle MiB | peak MiB | peak − idle MiB | after MiB | anonymous idle MiB | anonymous peak − idle MiB | file-backed after MiB |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
  ];
}

export async function ingest(work: string, env: StorageEnv): Promise<string> {
  const dir = join(work, 'ingest');
  await mkdir(dir, { recursive: true });
  const parts = (process.env.YOKE_BENCH_SPEED_INGEST_PARTS ?? 'rate,rss').split(',');
  const lines = [...(parts.includes('rate') ? await ingestRate(dir, env) : []), ...(parts.includes('rss') ? await ingestRss(dir, env) : [])];
  console.log(lines.join('\n'));
  return lines.join('\n');
}
