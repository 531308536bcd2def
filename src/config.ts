import { resolve } from 'node:path';
import type { S3Settings } from './storage/s3-blob-store.js';

export interface ServerConfig {
  host: string;
  port: number;
  dataDir: string;
  /** PostgreSQL URL for the metadata (`postgres://…`); null: SQLite in the data directory. */
  databaseUrl: string | null;
  /** Most connections this process opens to PostgreSQL. */
  databasePoolSize: number;
  /** An S3-compatible bucket for file bytes; null: `<dataDir>/blobs`. */
  s3: S3Settings | null;
  logLevel: string;
  maxFileBytes: number;
  /** Largest decompressed size of one gzip part in a batch upload (`POST …/versions`), and of a tarball sent through `commits/upload_chunk`. */
  maxDecompressedBytes: number;
  /** Whether requests need a token. */
  auth: boolean;
  /** Auth was turned off explicitly while listening beyond loopback (worth a warning at start-up). */
  authOffOnNetwork: boolean;
  /** Origins whose web pages may call the API (CORS); `*` for any; empty: none. */
  corsOrigins: string[];
  /** A request whose connection carries no byte for this long is cut off (slow-drip clients); a healthy long upload keeps it busy. */
  idleTimeoutMs: number;
  /** A request body must average at least `bytesPerSecond` over each window while it arrives (0: no minimum). */
  minBodyRate: { bytesPerSecond: number; windowMs: number };
  /** DuckDB memory of one data-frame query (spills to `<dataDir>/frames` beyond it). */
  frameMemoryBytes: number;
  /** A data-frame query running longer is stopped (4xx). */
  frameQueryTimeoutMs: number;
}

/**
 * Default PostgreSQL connections per process: pg's own default. A request holds a connection only for a
 * statement (or a short transaction), so ten serve many concurrent requests; several processes together must
 * stay under the server's max_connections (100 by default).
 */
export const DEFAULT_DATABASE_POOL_SIZE = 10;
/** More connections than this from one process is a typo, not a setting (PostgreSQL forks a process per connection). */
const MAX_DATABASE_POOL_SIZE = 1000;

/** Default cap on what one gzip part may decompress to (the Oxen CLI sends parts of at most 10 MiB). */
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 1024 ** 3;

export interface ServerFlags {
  host?: string;
  port?: string | number;
  dataDir?: string;
  databaseUrl?: string;
  databasePoolSize?: string | number;
  s3Bucket?: string;
  s3Endpoint?: string;
  s3Region?: string;
  s3Prefix?: string;
  logLevel?: string;
  /** commander's `--auth` / `--no-auth`: true, false, or absent. */
  auth?: boolean;
  /** Comma-separated origins, or `*`. */
  corsOrigin?: string;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

function parseOrigins(text: string): string[] {
  const origins = text.split(',').map((o) => o.trim()).filter((o) => o !== '');
  for (const origin of origins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) throw new Error(`Invalid CORS origin: ${origin} (scheme://host[:port], or *)`);
  }
  return origins;
}

function parseSwitch(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  throw new Error(`Invalid ${name}: ${value} (1, true, 0 or false)`);
}

function parseDatabaseUrl(value: string): string | null {
  if (value === '') return null;
  if (!/^postgres(ql)?:\/\//.test(value)) throw new Error('Invalid database URL: expected postgres://user:password@host:port/database');
  return value;
}

function parsePoolSize(value: string | number): number {
  const size = Number(value);
  if (String(value).trim() === '' || !Number.isInteger(size) || size < 1 || size > MAX_DATABASE_POOL_SIZE) {
    throw new Error(`Invalid database pool size: ${value} (a whole number of connections from 1 to ${MAX_DATABASE_POOL_SIZE})`);
  }
  return size;
}

/** pino's levels, and silent (no log at all). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function parseLogLevel(value: string): string {
  if (!LOG_LEVELS.includes(value)) throw new Error(`Invalid log level: ${value} (one of ${LOG_LEVELS.join(', ')})`);
  return value;
}

function parsePort(value: string | number): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`Invalid port: ${value}`);
  return port;
}

function parsePositive(name: string, value: string | number): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`Invalid ${name}: ${value}`);
  return n;
}

function parseNonNegative(name: string, value: string | number): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`Invalid ${name}: ${value}`);
  return n;
}

/** The S3 settings, when a bucket is named; credentials only from the environment (never a flag: shell history, `ps`). */
function parseS3(flags: ServerFlags, env: NodeJS.ProcessEnv): S3Settings | null {
  const bucket = flags.s3Bucket ?? env.YOKE_S3_BUCKET ?? '';
  if (bucket === '') return null;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) throw new Error(`Invalid S3 bucket name: ${bucket} (3–63 lower-case letters, digits, dots and hyphens)`);
  const endpoint = flags.s3Endpoint ?? env.YOKE_S3_ENDPOINT ?? '';
  if (endpoint !== '' && !/^https?:\/\/[^/\s]+\/?$/.test(endpoint)) throw new Error(`Invalid S3 endpoint: ${endpoint} (http(s)://host[:port])`);
  const prefix = flags.s3Prefix ?? env.YOKE_S3_PREFIX ?? '';
  if (prefix !== '' && !/^[A-Za-z0-9!_.*'()/-]+\/$/.test(prefix)) throw new Error(`Invalid S3 prefix: ${prefix} (safe key characters, ending with /)`);
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = env;
  if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) throw new Error('Set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither');
  return {
    bucket,
    endpoint: endpoint === '' ? null : endpoint,
    region: flags.s3Region ?? env.YOKE_S3_REGION ?? env.AWS_REGION ?? 'us-east-1',
    prefix,
    credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : null,
  };
}

/** Flags win over environment variables, which win over the defaults. */
export function serverConfig(flags: ServerFlags = {}, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const host = flags.host ?? env.YOKE_HOST ?? '127.0.0.1';
  // Off on the embedded local set-up; on by default as soon as others on the network can connect.
  const chosen = flags.auth ?? parseSwitch('YOKE_AUTH', env.YOKE_AUTH);
  const onNetwork = !LOOPBACK.has(host);
  return {
    auth: chosen ?? onNetwork,
    authOffOnNetwork: chosen === false && onNetwork,
    corsOrigins: parseOrigins(flags.corsOrigin ?? env.YOKE_CORS_ORIGINS ?? ''),
    idleTimeoutMs: parsePositive('YOKE_IDLE_TIMEOUT_MS', env.YOKE_IDLE_TIMEOUT_MS ?? 5 * 60 * 1000),
    minBodyRate: { bytesPerSecond: parseNonNegative('YOKE_MIN_BODY_RATE', env.YOKE_MIN_BODY_RATE ?? 1024), windowMs: 60_000 },
    host,
    port: parsePort(flags.port ?? env.YOKE_PORT ?? 3000),
    dataDir: resolve(flags.dataDir ?? env.YOKE_DATA_DIR ?? './data'),
    databaseUrl: parseDatabaseUrl(flags.databaseUrl ?? env.YOKE_DATABASE_URL ?? ''),
    databasePoolSize: parsePoolSize(flags.databasePoolSize ?? env.YOKE_DATABASE_POOL_SIZE ?? DEFAULT_DATABASE_POOL_SIZE),
    s3: parseS3(flags, env),
    logLevel: parseLogLevel(flags.logLevel ?? env.YOKE_LOG_LEVEL ?? 'info'),
    maxFileBytes: parsePositive('YOKE_MAX_FILE_BYTES', env.YOKE_MAX_FILE_BYTES ?? 64 * 1024 ** 3),
    maxDecompressedBytes: parsePositive('YOKE_MAX_DECOMPRESSED_BYTES', env.YOKE_MAX_DECOMPRESSED_BYTES ?? DEFAULT_MAX_DECOMPRESSED_BYTES),
    frameMemoryBytes: parsePositive('YOKE_FRAME_MEMORY_BYTES', env.YOKE_FRAME_MEMORY_BYTES ?? 256 * 1024 ** 2),
    frameQueryTimeoutMs: parsePositive('YOKE_FRAME_QUERY_TIMEOUT_MS', env.YOKE_FRAME_QUERY_TIMEOUT_MS ?? 30_000),
  };
}
