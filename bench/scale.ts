/**
 * Past one machine (issue 12): the version-file scenarios on each storage shape side by side — the local
 * default (data directory + SQLite), PostgreSQL metadata with local blobs, and PostgreSQL + S3 (Ceph radosgw) —
 * and write throughput with one `yoke serve` process against two on the same PostgreSQL (+ S3).
 * PostgreSQL is a private cluster (test/helpers/postgres.ts) and radosgw a single-node Ceph
 * (test/helpers/radosgw.ts), both started here; a shape whose service cannot start is reported, not faked.
 * Env: YOKE_BENCH_SCALE_FILES (2000), YOKE_BENCH_SCALE_MIB (256), YOKE_BENCH_SCALE_SECONDS (10), YOKE_BENCH_SCALE_CLIENTS (16).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { createStreamHasher, hashBuffer } from '../src/core/hash.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { startRadosgw } from '../test/helpers/radosgw.js';
import { batchDownloadEntries, jsonOrThrow, uploadChunked, multipart, send, startServerProcess, time, type ServerProcess } from './lib.js';

const FILES = Number(process.env.YOKE_BENCH_SCALE_FILES ?? 2000);
const BIG_MIB = Number(process.env.YOKE_BENCH_SCALE_MIB ?? 256);
const SECONDS = Number(process.env.YOKE_BENCH_SCALE_SECONDS ?? 10);
const CLIENTS = Number(process.env.YOKE_BENCH_SCALE_CLIENTS ?? 16);
const MiB = 1024 * 1024;
const CHUNK = 16 * MiB;
const AUTHOR = { name: 'Bench', email: 'bench@example.com' };

/** A storage shape: the environment a `yoke serve` gets, and a fresh one per server. */
interface Shape {
  name: string;
  env: () => Promise<Record<string, string>>;
}

export async function scaleBench(): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'yoke-bench-scale-'));
  const postgres = await startPostgres();
  const s3 = await startS3();
  const shapes: Shape[] = [{ name: 'local (SQLite + data directory)', env: async () => ({}) }];
  const notes: string[] = [];
  if (postgres.cluster) {
    const cluster = postgres.cluster;
    shapes.push({ name: 'PostgreSQL + local blobs', env: async () => ({ YOKE_DATABASE_URL: await cluster.createDatabase() }) });
    if (s3.env) {
      const s3env = s3.env;
      shapes.push({ name: 'PostgreSQL + S3 (radosgw)', env: async () => ({ YOKE_DATABASE_URL: await cluster.createDatabase(), ...(await s3env()) }) });
    } else notes.push(`S3 shapes skipped: ${s3.skip}`);
  } else notes.push(`PostgreSQL shapes skipped: ${postgres.skip}`);

  const out: string[] = [];
  try {
    // 1. The version-file scenarios, one fresh server per shape.
    const results: Array<{ shape: string; rows: Map<string, number> }> = [];
    for (const [i, shape] of shapes.entries()) {
      const server = await startServerProcess(join(work, `data-${i}`), await shape.env());
      try {
        results.push({ shape: shape.name, rows: await versionScenarios(server.url) });
      } finally {
        await server.stop();
      }
    }
    const cases = [...results[0].rows.keys()];
    out.push(
      table(
        `Version files by storage shape (${FILES} × 4 KiB, ${BIG_MIB} MiB file); seconds, and the ratio to the local default`,
        ['case', ...results.map((r) => r.shape)],
        cases.map((c) => [c, ...results.map((r) => `${r.rows.get(c)!.toFixed(3)} s (${(r.rows.get(c)! / results[0].rows.get(c)!).toFixed(1)}×)`)]),
      ),
    );

    // 2. One process against two on the same shared stores.
    for (const shape of shapes.slice(1)) {
      const env = await shape.env();
      const dataDir = join(work, `procs-${shape.name.replace(/\W+/g, '-')}`);
      const rows: string[][] = [];
      for (const count of [1, 2]) {
        const servers: ServerProcess[] = [];
        for (let i = 0; i < count; i++) servers.push(await startServerProcess(dataDir, env));
        try {
          rows.push([`${count} process${count > 1 ? 'es' : ''}`, ...(await throughput(servers.map((s) => s.url), `p${count}`))]);
        } finally {
          for (const s of servers) await s.stop();
        }
      }
      out.push(table(`Throughput, one process against two on ${shape.name} (${CLIENTS} clients, ${SECONDS} s per kind)`, ['processes', 'commits/s (PUT file, 2 × 2 KiB)', 'downloads/s (GET 4 KiB file)', 'batch uploads/s (8 × 4 KiB)'], rows));
    }
  } finally {
    await postgres.cluster?.stop();
    await rm(work, { recursive: true, force: true });
  }
  const text = [...out, ...notes.map((n) => `_${n}_`)].join('\n\n');
  console.log(text);
  return text;
}

async function versionScenarios(url: string): Promise<Map<string, number>> {
  const rows = new Map<string, number>();
  const repo = `${url}/api/repos/bench/scale`;
  await jsonOrThrow(await fetch(`${url}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'bench', name: 'scale', user: AUTHOR }) }));
  const files = Array.from({ length: FILES }, () => {
    const data = randomBytes(4096);
    return { hash: hashBuffer(data), data };
  });
  const perRequest = 500;
  const bodies = Array.from({ length: Math.ceil(FILES / perRequest) }, (_, i) => multipart(files.slice(i * perRequest, (i + 1) * perRequest).map((f) => ({ name: f.hash, data: f.data })), 'SCALE'));
  let next = 0;
  rows.set(
    `batch upload ${FILES} × 4 KiB (POST versions, 2 in flight)`,
    (
      await time(() =>
        Promise.all(
          [0, 1].map(async () => {
            while (next < bodies.length) {
              const res = await send(`${repo}/versions`, 'POST', bodies[next++], { 'content-type': 'multipart/form-data; boundary=SCALE' });
              if (res.status !== 200 || JSON.parse(res.body.toString()).err_files.length > 0) throw new Error(`batch upload: ${res.status} ${res.body.toString().slice(0, 300)}`);
            }
          }),
        ),
      )
    ).seconds,
  );
  rows.set(
    `batch download of them (one tar.gz)`,
    (
      await time(async () => {
        const entries = await batchDownloadEntries(repo, files.map((f) => f.hash));
        if (entries !== FILES) throw new Error(`downloaded ${entries} entries`);
      })
    ).seconds,
  );
  // A big file generated from one random block with a distinct first byte per upload (a new hash each time).
  const size = BIG_MIB * MiB;
  const block = randomBytes(MiB);
  const bigFile = async (stamp: number) => {
    const first = Buffer.from(block);
    first[0] = stamp;
    const bytes = (start: number, end: number) =>
      Readable.from(
        (function* () {
          for (let at = start; at < end; ) {
            const within = at % MiB;
            const take = Math.min(MiB - within, end - at);
            yield (at < MiB ? first : block).subarray(within, within + take);
            at += take;
          }
        })(),
      );
    const hasher = await createStreamHasher();
    for await (const piece of bytes(0, size)) hasher.update(piece as Buffer);
    return { hash: hasher.digest(), bytes };
  };
  const viaChunks = await bigFile(1);
  rows.set(
    `${BIG_MIB} MiB via versions/{hash}/chunks (16 MiB, 2 in flight) + complete`,
    (
      await time(() => uploadChunked(repo, viaChunks.hash, size, CHUNK, viaChunks.bytes))
    ).seconds,
  );
  const viaUploadChunk = await bigFile(2);
  rows.set(
    `${BIG_MIB} MiB via commits/upload_chunk (16 MiB, 2 in flight)`,
    (
      await time(async () => {
        const total = Math.ceil(size / CHUNK);
        let i = 0;
        await Promise.all(
          [0, 1].map(async () => {
            while (i < total) {
              const n = i++;
              const end = Math.min((n + 1) * CHUNK, size);
              const query = `hash=${viaUploadChunk.hash}&chunk_num=${n}&total_chunks=${total}&total_size=${size}&is_compressed=false&filename=big.bin`;
              const res = await send(`${repo}/commits/upload_chunk?${query}`, 'POST', viaUploadChunk.bytes(n * CHUNK, end), { 'content-length': end - n * CHUNK, 'content-type': 'application/octet-stream' });
              if (res.status !== 200) throw new Error(`upload_chunk ${n}: ${res.status} ${res.body}`);
            }
          }),
        );
      })
    ).seconds,
  );
  const download = await time(async () => {
    const res = await fetch(`${repo}/versions/batch-download`, { method: 'POST', headers: { 'content-type': 'application/gzip' }, body: gzipSync(`${viaChunks.hash}\n`) });
    let got = 0;
    for await (const piece of res.body as unknown as AsyncIterable<Uint8Array>) got += piece.byteLength;
    if (res.status !== 200 || got < size / 2) throw new Error(`big download: ${res.status}, ${got} bytes`);
  });
  rows.set(`${BIG_MIB} MiB back (batch-download, gzip)`, download.seconds);
  return rows;
}

/** Requests per second of three kinds, each for SECONDS with CLIENTS clients spread over the servers. */
async function throughput(urls: string[], tag: string): Promise<string[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  const base = (client: number) => urls[client % urls.length];
  const repoOf = (client: number) => `bench/${tag}-${client % 4}`;
  for (let r = 0; r < 4; r++) {
    await jsonOrThrow(await fetch(`${urls[0]}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'bench', name: `${tag}-${r}`, user: AUTHOR }) }));
    const res = await send(`${urls[0]}/api/repos/bench/${tag}-${r}/file/main/seed`, 'PUT', form({ message: 'seed', ...AUTHOR }, [{ name: 'seed.bin', data: randomBytes(4096) }]), { 'content-type': 'multipart/form-data; boundary=SCALEFORM' });
    if (res.status !== 200) throw new Error(`seed: ${res.status} ${res.body}`);
  }
  const kinds: Array<(client: number, n: number) => Promise<number>> = [
    (client, n) => call(agent, `${base(client)}/api/repos/${repoOf(client)}/file/main/c${client}`, 'PUT', form({ message: `c${client} ${n}`, ...AUTHOR }, [{ name: `a${n}.txt`, data: randomBytes(2048) }, { name: `b${n}.txt`, data: randomBytes(2048) }]), 'multipart/form-data; boundary=SCALEFORM'),
    (client) => call(agent, `${base(client)}/api/repos/${repoOf(client)}/file/main/seed/seed.bin`, 'GET', null, ''),
    (client) => {
      const blobs = Array.from({ length: 8 }, () => randomBytes(4096));
      return call(agent, `${base(client)}/api/repos/${repoOf(client)}/versions`, 'POST', multipart(blobs.map((data) => ({ name: hashBuffer(data), data })), 'SCALE'), 'multipart/form-data; boundary=SCALE');
    },
  ];
  const rates: string[] = [];
  for (const kind of kinds) {
    const until = Date.now() + SECONDS * 1000;
    let done = 0;
    const started = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, client) => {
        for (let n = 0; Date.now() < until; n++) {
          const status = await kind(client, n);
          if (status !== 200) throw new Error(`${tag}, kind ${kinds.indexOf(kind)}, client ${client}: status ${status}`);
          done += 1;
        }
      }),
    );
    rates.push((done / (Number(process.hrtime.bigint() - started) / 1e9)).toFixed(1));
  }
  agent.destroy();
  return rates;
}

function call(agent: Agent, url: string, method: string, body: Buffer | null, contentType: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = body ? { 'content-type': contentType, 'content-length': body.length } : {};
    const req = request(url, { method, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) console.error(`${method} ${url}: ${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 300)}`);
        resolve(res.statusCode ?? 0);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body ?? undefined);
  });
}

function form(fields: Record<string, string>, files: Array<{ name: string; data: Buffer }>): Buffer {
  const head = Object.entries(fields).map(([name, value]) => `--SCALEFORM\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`);
  return Buffer.concat([Buffer.from(head.join('')), multipart(files, 'SCALEFORM')]);
}

function table(title: string, header: string[], rows: string[][]): string {
  return [`### ${title}`, '', `| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`), ''].join('\n');
}

/** radosgw for the S3 shape, through the tests' own helper (one booted for this run); `env()` names a fresh bucket. */
async function startS3(): Promise<{ env?: () => Promise<Record<string, string>>; skip?: string }> {
  const started = await startRadosgw();
  if (!started.server) return { skip: started.skip };
  const server = started.server;
  return { env: async () => server.env() };
}
