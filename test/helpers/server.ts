import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serverConfig } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/server/main.js';
import type { YokeOptions } from '../../src/services/yoke.js';
import type { S3Settings } from '../../src/storage/s3-blob-store.js';
import { startPostgres, type PostgresCluster } from './postgres.js';
import { startRadosgw } from './radosgw.js';

export interface TestServer extends RunningServer {
  dataDir: string;
  /** fetch() against the server; `path` starts with '/'. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** JSON helper: returns status and parsed body. */
  json(path: string, init?: RequestInit): Promise<{ status: number; body: any }>;
  /** A request whose path is sent byte for byte (fetch would normalise `..` and `%2e%2e`). */
  raw(method: string, path: string, body?: Buffer, headers?: Record<string, string>): Promise<{ status: number; body: any }>;
  stop(): Promise<void>;
}

/**
 * With `YOKE_TEST_META=postgres`, every test server keeps its metadata in PostgreSQL (one private cluster per
 * test process, one database per data directory, so a restart on the same directory finds its data again).
 */
let cluster: Promise<PostgresCluster> | null = null;
const databaseOf = new Map<string, Promise<string>>();
async function testDatabaseUrl(dataDir: string): Promise<string | undefined> {
  if (process.env.YOKE_TEST_META !== 'postgres') return undefined;
  cluster ??= startPostgres().then((started) => {
    if (!started.cluster) throw new Error(`YOKE_TEST_META=postgres, but ${started.skip}`);
    process.once('beforeExit', () => void started.cluster.stop());
    return started.cluster;
  });
  const pool = await cluster;
  if (!databaseOf.has(dataDir)) databaseOf.set(dataDir, pool.createDatabase());
  return databaseOf.get(dataDir);
}

/**
 * With `YOKE_TEST_BLOBS=s3`, every test server keeps its blobs in radosgw (test/helpers/radosgw.ts), one bucket
 * per data directory, so a restart on the same directory finds its blobs again.
 */
const bucketOf = new Map<string, Promise<S3Settings>>();
async function testS3(dataDir: string): Promise<S3Settings | undefined> {
  if (process.env.YOKE_TEST_BLOBS !== 's3') return undefined;
  if (!bucketOf.has(dataDir)) {
    bucketOf.set(
      dataDir,
      startRadosgw().then((started) => {
        if (!started.server) throw new Error(`YOKE_TEST_BLOBS=s3, but ${started.skip}`);
        return started.server.settings();
      }),
    );
  }
  return bucketOf.get(dataDir);
}

/**
 * Why a test that looks at the data directory itself (blob files, SQLite, the disk) cannot run in this test
 * process, or undefined when it can: the stores are PostgreSQL or S3 (`YOKE_TEST_META`, `YOKE_TEST_BLOBS`).
 */
export const localStoresOnly: string | undefined =
  process.env.YOKE_TEST_META || process.env.YOKE_TEST_BLOBS ? `looks at the local data directory, and this run keeps ${[process.env.YOKE_TEST_META, process.env.YOKE_TEST_BLOBS].filter(Boolean).join(' + ')} stores` : undefined;

/** Test servers keep their blobs in radosgw: there is no local blob directory (nor its temp files) to look at. */
export const blobsInS3 = process.env.YOKE_TEST_BLOBS === 's3';
/** Why the frame tests over 100 MB CSVs run once, on the local store: DuckDB's memory bound does not depend on where
 * blobs live, and the copy of an S3 blob into the frame scratch directory is covered by the other frame tests. */
export const BIG_FRAME_SKIP = 'the memory bound is the same on every store; reading a frame from S3 is covered by the smaller frame tests';

/**
 * The local blob store's temp files (a finished or refused write leaves none). S3 has none on disk: a small
 * body is buffered and a large one is a multipart upload, completed only once verified (its conformance suite).
 */
export async function blobTempFiles(dataDir: string): Promise<string[]> {
  return blobsInS3 ? [] : readdir(join(dataDir, 'blobs/tmp'));
}

/** The hashes of every blob the server's blob store holds, sorted (whatever the backend). */
export async function storedBlobHashes(server: { yoke: { blobs: { list(): AsyncIterable<{ hash: string }> } } }): Promise<string[]> {
  const hashes: string[] = [];
  for await (const blob of server.yoke.blobs.list()) hashes.push(blob.hash);
  return hashes.sort();
}

/** Starts the real server on a free port over a fresh temporary data directory. */
export async function startTestServer(
  options: YokeOptions & { dataDir?: string; maxFileBytes?: number; maxDecompressedBytes?: number; auth?: boolean; corsOrigin?: string; idleTimeoutMs?: number; minBodyRate?: { bytesPerSecond: number; windowMs: number } } = {},
): Promise<TestServer> {
  const { dataDir, maxFileBytes, maxDecompressedBytes, auth, corsOrigin, idleTimeoutMs, minBodyRate, ...yokeOptions } = options;
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'yoke-test-')));
  const databaseUrl = await testDatabaseUrl(dir);
  const s3 = await testS3(dir);
  const config = { ...serverConfig({ host: '127.0.0.1', port: 0, dataDir: dir, logLevel: 'silent', auth, corsOrigin, databaseUrl }, {}), ...(s3 ? { s3 } : {}) };
  const server = await startServer(
    { ...config, ...(maxFileBytes === undefined ? {} : { maxFileBytes }), ...(maxDecompressedBytes === undefined ? {} : { maxDecompressedBytes }), ...(idleTimeoutMs === undefined ? {} : { idleTimeoutMs }), ...(minBodyRate === undefined ? {} : { minBodyRate }) },
    yokeOptions,
  );
  const fetchPath = (path: string, init?: RequestInit) => fetch(server.url + path, init);
  return {
    ...server,
    dataDir: dir,
    fetch: fetchPath,
    async json(path, init) {
      const res = await fetchPath(path, init);
      const text = await res.text();
      let body: any;
      try {
        body = JSON.parse(text);
      } catch {
        throw new Error(`Expected JSON from ${init?.method ?? 'GET'} ${path} (${res.status}), got: ${text.slice(0, 200)}`);
      }
      return { status: res.status, body };
    },
    raw(method, path, body, headers = {}) {
      const url = new URL(server.url);
      return new Promise((resolve, reject) => {
        const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: any = text;
            try {
              parsed = JSON.parse(text);
            } catch {}
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
        });
        req.on('error', reject);
        req.end(body);
      });
    },
    async stop() {
      await server.close();
      if (!dataDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

export const AUTHOR = { name: 'Ada Lovelace', email: 'ada@example.com' };

export async function createRepo(server: TestServer, namespace: string, name: string) {
  const { status, body } = await server.json('/api/repos', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ namespace, name, user: AUTHOR, description: `repo ${name}` }),
  });
  if (status !== 200) throw new Error(`create repo failed: ${status} ${JSON.stringify(body)}`);
  return body;
}

/** PUT …/file/{resource} with the given parts (field name defaults to `file`). */
export async function putFiles(
  server: TestServer,
  repoPath: string,
  resource: string,
  files: Array<{ name: string; content: string | Uint8Array; field?: string }>,
  fields: Record<string, string> = { ...AUTHOR, message: 'upload' },
) {
  const form = new FormData();
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  for (const f of files) form.append(f.field ?? "file", new Blob([typeof f.content === "string" ? f.content : Buffer.from(f.content)]), f.name);
  return server.json(`/api/repos/${repoPath}/file/${resource}`, { method: 'PUT', body: form });
}

export function assertEnvelope(body: any, status: 'success' | 'error') {
  if (body.status !== status || typeof body.status_message !== 'string' || typeof body.oxen_version !== 'string') {
    throw new Error(`Bad envelope: ${JSON.stringify(body)}`);
  }
  if (status === 'error' && (typeof body.error?.type !== 'string' || typeof body.status_description !== 'string')) {
    throw new Error(`Bad error envelope: ${JSON.stringify(body)}`);
  }
}
