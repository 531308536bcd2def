import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { ServerConfig } from '../config.js';
import { Yoke, type YokeOptions } from '../services/yoke.js';
import { LocalBlobStore, processAlive } from '../storage/local-blob-store.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { MetaStore } from '../storage/meta-store.js';
import { SqliteMetaStore } from '../storage/sqlite-meta-store.js';
import { buildApp, SPEC_PATH } from './app.js';
import { requestLogFields } from './request-log.js';

/** Scratch directories (`dir-hashes-<pid>-…`) of processes that are gone: a kill left them. */
async function removeAbandonedScratch(scratchRoot: string): Promise<void> {
  for (const name of await readdir(scratchRoot).catch(() => [] as string[])) {
    const owner = /^dir-hashes-(\d+)-/.exec(name);
    if (owner && !processAlive(Number(owner[1]))) await rm(join(scratchRoot, name), { recursive: true, force: true });
  }
}

/**
 * The metadata store the configuration names: PostgreSQL at `databaseUrl` (schema migrated on open, at most
 * `databasePoolSize` connections), else
 * SQLite at `<dataDir>/meta.sqlite`. The PostgreSQL module is loaded only when it is used.
 */
export async function openMetaStore(config: Pick<ServerConfig, 'dataDir' | 'databaseUrl' | 'databasePoolSize'>): Promise<MetaStore> {
  if (config.databaseUrl !== null) {
    const { PgMetaStore } = await import('../storage/pg-meta-store.js');
    return PgMetaStore.open(config.databaseUrl, { maxConnections: config.databasePoolSize });
  }
  return new SqliteMetaStore(join(config.dataDir, 'meta.sqlite'));
}

/**
 * The blob store the configuration names: an S3-compatible bucket (`s3`), else `<dataDir>/blobs`. The AWS SDK
 * is loaded only when it is used.
 */
export async function openBlobStore(config: Pick<ServerConfig, 'dataDir' | 's3'>): Promise<BlobStore> {
  if (config.s3 !== null) {
    const { S3BlobStore } = await import('../storage/s3-blob-store.js');
    return S3BlobStore.open(config.s3);
  }
  return LocalBlobStore.open(join(config.dataDir, 'blobs'));
}

/** A URL as it may be logged: its password (and any password-like query parameter) masked. */
export function redactCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    for (const key of [...parsed.searchParams.keys()]) if (/pass|secret|key|token/i.test(key)) parsed.searchParams.set(key, '***');
    return parsed.toString();
  } catch {
    return '(unreadable URL)';
  }
}

/** What a person starting the server needs to know: where the data is, whether tokens are needed, where to go. */
async function packageVersion(): Promise<string> {
  return (JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

function startupReport(config: ServerConfig, url: string, version: string) {
  const database = config.databaseUrl === null ? null : redactCredentials(config.databaseUrl);
  const blobsDir = join(config.dataDir, 'blobs');
  const meta = database === null ? { kind: 'sqlite', path: join(config.dataDir, 'meta.sqlite') } : { kind: 'postgresql', database };
  const blobs =
    config.s3 === null
      ? { kind: 'local', path: blobsDir }
      : { kind: 's3', bucket: config.s3.bucket, prefix: config.s3.prefix, region: config.s3.region, endpoint: config.s3.endpoint === null ? 'AWS' : redactCredentials(config.s3.endpoint) };
  const fields = { version, dataDir: config.dataDir, meta, blobs, auth: config.auth, web: `${url}/`, api: `${url}${SPEC_PATH}` };
  const metaText = database === null ? `SQLite in ${config.dataDir}` : `PostgreSQL ${database}`;
  const blobText = config.s3 === null ? `files in ${blobsDir}` : `files in S3 bucket ${config.s3.bucket}`;
  const message = `Yoke ${version} serving ${fields.web} (API document ${fields.api}); data: ${metaText}, ${blobText}; auth ${config.auth ? 'on: requests need a token' : 'off'}`;
  return { fields, message };
}

export interface RunningServer {
  app: FastifyInstance;
  yoke: Yoke;
  url: string;
  close(): Promise<void>;
}

/**
 * Opens the backends (SQLite metadata under `dataDir`, or PostgreSQL at `databaseUrl`; blobs under `dataDir`, or
 * in an S3 bucket) and serves.
 * Layout: `<dataDir>/meta.sqlite`, `<dataDir>/blobs/objects/<h[0..2]>/<h[2..]>`, `<dataDir>/blobs/tmp/`,
 * `<dataDir>/frames/` (data-frame caches and spill files: deleting it loses nothing).
 */
export async function startServer(config: ServerConfig, options: YokeOptions = {}): Promise<RunningServer> {
  await mkdir(config.dataDir, { recursive: true });
  await removeAbandonedScratch(join(config.dataDir, 'tmp'));
  const meta = await openMetaStore(config);
  const blobs = await openBlobStore(config);
  // The decompression cap of batch uploads also bounds the tarballs that arrive through upload_chunk.
  const yoke = new Yoke(meta, blobs, {
    ...options,
    uploads: { maxDecompressedBytes: config.maxDecompressedBytes, ...options.uploads },
    frames: { scratchDir: join(config.dataDir, 'frames'), memoryLimitBytes: config.frameMemoryBytes, queryTimeoutMs: config.frameQueryTimeoutMs, ...options.frames },
  });
  await yoke.uploads.releaseAbandonedUploads();
  await yoke.workspaceFrames.removeAbandoned();
  const logger = config.logLevel === 'silent' ? false : { level: config.logLevel, redact: ['req.headers.authorization'], serializers: { req: requestLogFields } };
  const app = await buildApp(yoke, { logger, maxFileBytes: config.maxFileBytes, maxDecompressedBytes: config.maxDecompressedBytes, dataDir: config.dataDir, auth: config.auth, corsOrigins: config.corsOrigins, idleTimeoutMs: config.idleTimeoutMs, minBodyRate: config.minBodyRate });
  const version = await packageVersion();
  // fastify's own "Server listening at" line is replaced by the fuller one below, written before any request's.
  const level = app.log.level;
  app.log.level = 'warn';
  try {
    await app.listen({ host: config.host, port: config.port });
  } finally {
    app.log.level = level;
  }
  if (config.authOffOnNetwork) app.log.warn({ host: config.host }, 'auth is off (--no-auth) while listening beyond loopback: anyone who can reach this address can read, write and delete every repository');
  // Abandoned partial uploads expire; look for them a few times per TTL.
  const ttl = yoke.uploads.idleTtlMs;
  const sweeper = setInterval(() => {
    yoke.uploads.expireIdleUploads().catch((err) => app.log.error({ err }, 'expiring idle uploads failed'));
  }, Math.min(Math.max(ttl / 4, 1000), 60 * 60 * 1000));
  sweeper.unref();
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  if (config.logLevel !== 'silent') {
    const { fields, message } = startupReport(config, url, version);
    app.log.info(fields, message);
  }
  return {
    app,
    yoke,
    url,
    async close() {
      clearInterval(sweeper);
      await app.close();
      await yoke.close();
    },
  };
}
