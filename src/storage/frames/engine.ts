/**
 * DuckDB behind one small surface: the only module that imports `@duckdb/node-api`.
 *
 * Two kinds of handle:
 * - `Frame` (from `withFrame`): one tabular file seen as the view `df`, in a DuckDB instance of its own that
 *   can read that one file and nothing else (external access off, configuration locked, no extension loading).
 *   User SQL runs only here, and only as one SELECT. Files are read in place and streamed by DuckDB, so a file
 *   larger than memory pages and aggregates within `memory_limit` (spilling to the scratch directory).
 * - `FrameDatabase` (from `openDatabase`): a DuckDB database file the services own (workspace frames). Only
 *   SQL built by services runs there (identifiers and literals through `core/tabular.ts`).
 * Every statement has a time limit; DuckDB errors become `FrameQueryError`s, which routes answer with 4xx.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import {
  DuckDBConnection,
  DuckDBInstance,
  DuckDBTypeId,
  JsonDuckDBValueConverter,
  StatementType,
  type DuckDBValue,
  type DuckDBValueConverter,
  type Json,
} from '@duckdb/node-api';
import { quoteLiteral, type TabularFormat } from '../../core/tabular.js';
import { processAlive } from '../local-blob-store.js';

export interface FrameEngineOptions {
  /** Spill files of queries larger than memory go to `<scratchDir>/spill`. */
  scratchDir: string;
  /** DuckDB `memory_limit` of each open frame or database. */
  memoryLimitBytes?: number;
  /** DuckDB threads of each open frame or database. */
  threads?: number;
  /** A statement running longer is interrupted (FrameQueryError kind 'timeout'). */
  queryTimeoutMs?: number;
  /** Frames kept open (instance per file) for the next page; the least recently used beyond this are closed. */
  maxOpenFrames?: number;
}

export const DEFAULT_FRAME_MEMORY_BYTES = 256 * 1024 * 1024;
export const DEFAULT_FRAME_QUERY_TIMEOUT_MS = 30_000;

/** A local tabular file: a version file of the blob store, a cached copy, or an export. */
export interface FrameFile {
  path: string;
  format: TabularFormat;
  /** Field separator for csv/tsv when not the format's own (Oxen's `delimiter` option). */
  delimiter?: string;
}

export interface FrameColumn {
  name: string;
  /** DuckDB's type, e.g. `BIGINT`, `VARCHAR[]`, `STRUCT(a INTEGER)`; Oxen's name: `oxenDtypeOf`. */
  type: string;
}

export interface FrameRows {
  columns: FrameColumn[];
  rows: Record<string, Json>[];
}

export type FrameErrorKind = 'sql' | 'not_read_only' | 'timeout' | 'memory' | 'unreadable' | 'too_large';

/** A query the engine refused or could not run: the client's doing (bad SQL, unreadable file), never a 500. */
export class FrameQueryError extends Error {
  constructor(readonly kind: FrameErrorKind, message: string) {
    super(message);
    this.name = 'FrameQueryError';
  }
}

/**
 * Read buffer of a CSV file read beside another in one query (`frameSourceSql`'s `besideAnother`). DuckDB's
 * default (32 MiB, two per file) leaves two files little room within a small memory limit (measured: a
 * comparison of two 150 MB CSVs in 128 MiB fails with the default, and spills and finishes with 8 MiB buffers,
 * as fast). Lines stay limited to 2 MB, DuckDB's default.
 */
const SHARED_CSV_BUFFER_BYTES = 8 * 1024 * 1024;

/** The `read_*` table function reading a file of the given format; `besideAnother` when a query reads two files. */
export function frameSourceSql(file: FrameFile, { besideAnother = false } = {}): string {
  const path = quoteLiteral(file.path);
  switch (file.format) {
    case 'csv':
    case 'tsv': {
      const delimiter = file.delimiter ?? (file.format === 'tsv' ? '\t' : ',');
      return `read_csv(${path}, delim = ${quoteLiteral(delimiter)}, header = true${besideAnother ? `, buffer_size = ${SHARED_CSV_BUFFER_BYTES}` : ''})`;
    }
    case 'jsonl':
    case 'ndjson':
      return `read_json(${path}, format = 'newline_delimited')`;
    case 'json':
      return `read_json(${path}, format = 'auto')`;
    case 'parquet':
      return `read_parquet(${path})`;
  }
}

/** The COPY options that write a file of the given format (csv and tsv with a header row, json as one array). */
export function frameCopyOptionsSql(format: TabularFormat): string {
  switch (format) {
    case 'csv':
      return '(FORMAT csv, HEADER true)';
    case 'tsv':
      return `(FORMAT csv, HEADER true, DELIMITER '\t')`;
    case 'jsonl':
    case 'ndjson':
      return '(FORMAT json)';
    case 'json':
      return '(FORMAT json, ARRAY true)';
    case 'parquet':
      return '(FORMAT parquet)';
  }
}

const SAFE_INTEGER_TYPES = new Set([DuckDBTypeId.BIGINT, DuckDBTypeId.UBIGINT, DuckDBTypeId.HUGEINT, DuckDBTypeId.UHUGEINT]);

/** Values as Oxen's JSON has them: 64-bit integers and decimals as numbers (strings only beyond 2^53), dates as ISO text. */
const toJson: DuckDBValueConverter<Json> = (value: DuckDBValue, type, converter) => {
  if (value !== null && SAFE_INTEGER_TYPES.has(type.typeId) && typeof value === 'bigint') {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  }
  if (value !== null && type.typeId === DuckDBTypeId.DECIMAL) return Number(String(value));
  return JsonDuckDBValueConverter(value, type, converter);
};

class Limits {
  private instances = 0;

  constructor(readonly memoryLimitBytes: number, readonly threads: number, readonly queryTimeoutMs: number, readonly spillDir: string) {}

  /** Settings of a new instance. Each spills into a directory of its own: DuckDB's temp file names are per instance, not unique across instances or processes sharing a data directory. */
  config(): Record<string, string> {
    this.instances += 1;
    return {
      threads: String(this.threads),
      // Below ~96 MiB DuckDB's CSV reader cannot hold its read buffers (measured: 48 MiB fails a count).
      memory_limit: `${Math.max(96, Math.floor(this.memoryLimitBytes / (1024 * 1024)))}MB`,
      temp_directory: join(this.spillDir, `${hostname()}-${process.pid}-${this.instances}`),
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
    };
  }
}

/** Runs one statement on a connection, interrupted after the time limit; DuckDB errors → FrameQueryError. */
async function runLimited<T>(connection: DuckDBConnection, timeoutMs: number, work: () => Promise<T>): Promise<T> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    connection.interrupt();
  }, timeoutMs);
  try {
    return await work();
  } catch (error) {
    if (timedOut) throw new FrameQueryError('timeout', `the query ran longer than ${timeoutMs} ms and was stopped`);
    throw asFrameError(error);
  } finally {
    clearTimeout(timer);
  }
}

function asFrameError(error: unknown): FrameQueryError {
  if (error instanceof FrameQueryError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (/^Out of Memory Error/i.test(message)) return new FrameQueryError('memory', message);
  if (/^(IO|Permission) Error/i.test(message)) return new FrameQueryError('unreadable', message);
  return new FrameQueryError('sql', message);
}

export interface ReadOptions {
  /**
   * Refuse (FrameQueryError 'too_large') a result whose rows come to more JSON than this. DuckDB's
   * memory_limit does not cover the strings of a result (`repeat('x', 50000000)` ten times is 500 MB), so
   * the size is measured inside DuckDB, where the page is held within its memory limit, before any row
   * becomes a JavaScript value.
   */
  maxJsonBytes?: number;
}

const RESULT_BYTES = '__yoke_result_bytes';

async function readRows(connection: DuckDBConnection, sql: string, params?: DuckDBValue[], options: ReadOptions = {}): Promise<FrameRows> {
  const { maxJsonBytes } = options;
  const measured = maxJsonBytes !== undefined;
  const reader = await connection.runAndReadAll(
    measured ? `SELECT sum(strlen(CAST(to_json(__yoke_result) AS VARCHAR))) OVER () AS ${RESULT_BYTES}, __yoke_result.* FROM (${sql}) AS __yoke_result` : sql,
    params,
  );
  if (measured && reader.currentRowCount > 0) {
    const bytes = Number(reader.value(0, 0));
    if (bytes > maxJsonBytes) {
      const mib = (n: number) => (n / (1024 * 1024)).toFixed(1);
      throw new FrameQueryError('too_large', `the result is ${mib(bytes)} MiB of JSON, more than the ${mib(maxJsonBytes)} MiB one request may return: ask for fewer rows or columns`);
    }
  }
  const skip = measured ? 1 : 0;
  const names = reader.columnNames().slice(skip);
  const types = reader.columnTypes().slice(skip);
  const rows = reader.convertRowObjects(toJson) as Record<string, Json>[];
  if (measured) for (const row of rows) delete row[RESULT_BYTES];
  return { columns: names.map((name, i) => ({ name, type: types[i].toString() })), rows };
}

/** One tabular file as the view `df` (see the module comment). */
export interface Frame {
  readonly file: FrameFile;
  /** Columns of `df`, or of the result of `sql`. */
  columns(sql?: string): Promise<FrameColumn[]>;
  /** Rows of `sql` (which should carry its own LIMIT), `$1…` bound to `params`. */
  rows(sql: string, params?: DuckDBValue[], options?: ReadOptions): Promise<FrameRows>;
  /** Number of rows of `sql` (default: all of `df`), remembered while the frame stays open. */
  count(sql?: string, params?: DuckDBValue[]): Promise<number>;
  /**
   * A client's SQL checked to be exactly one SELECT (binding it also checks names), returned without a
   * trailing semicolon so it can be wrapped as a subquery; else FrameQueryError ('not_read_only' or 'sql').
   */
  checkSelect(sql: string): Promise<string>;
}

class SandboxedFrame implements Frame {
  private readonly counts = new Map<string, number>();
  users = 0;
  lastUsed = Date.now();

  private constructor(readonly file: FrameFile, private readonly instance: DuckDBInstance, private readonly limits: Limits) {}

  /** `writable`: one more file the sandbox may access, which `exportTo` writes. */
  static async open(file: FrameFile, limits: Limits, writable?: string): Promise<SandboxedFrame> {
    const instance = await DuckDBInstance.create(':memory:', limits.config());
    const frame = new SandboxedFrame(file, instance, limits);
    const connection = await instance.connect();
    try {
      // Order matters: the one readable file is allowed before external access is switched off for good,
      // and the configuration is locked before any client SQL can run.
      await connection.run(`SET allowed_paths = [${[file.path, ...(writable === undefined ? [] : [writable])].map(quoteLiteral).join(', ')}]`);
      await connection.run('SET enable_external_access = false');
      await connection.run('SET lock_configuration = true');
      await runLimited(connection, limits.queryTimeoutMs, () => connection.run(`CREATE VIEW df AS SELECT * FROM ${frameSourceSql(file)}`));
    } catch (error) {
      connection.closeSync();
      instance.closeSync();
      throw asFrameError(error);
    }
    connection.closeSync();
    return frame;
  }

  private async withConnection<T>(work: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    const connection = await this.instance.connect();
    try {
      return await runLimited(connection, this.limits.queryTimeoutMs, () => work(connection));
    } finally {
      connection.closeSync();
    }
  }

  async columns(sql = 'SELECT * FROM df'): Promise<FrameColumn[]> {
    return (await this.withConnection((c) => readRows(c, `SELECT * FROM (${sql}) AS q LIMIT 0`))).columns;
  }

  rows(sql: string, params?: DuckDBValue[], options?: ReadOptions): Promise<FrameRows> {
    return this.withConnection((c) => readRows(c, sql, params, options));
  }

  async count(sql = 'SELECT * FROM df', params?: DuckDBValue[]): Promise<number> {
    const key = JSON.stringify([sql, params ?? []], (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    const known = this.counts.get(key);
    if (known !== undefined) return known;
    const result = await this.rows(`SELECT count(*) AS n FROM (${sql}) AS q`, params);
    const n = Number(result.rows[0].n);
    this.counts.set(key, n);
    return n;
  }

  async checkSelect(sql: string): Promise<string> {
    const trimmed = sql.trim().replace(/;\s*$/, '');
    return this.withConnection(async (connection) => {
      const statements = await connection.extractStatements(trimmed);
      if (statements.count !== 1) throw new FrameQueryError('not_read_only', `expected exactly one SELECT statement, got ${statements.count}`);
      const prepared = await statements.prepare(0);
      const type = prepared.statementType;
      prepared.destroySync();
      if (type !== StatementType.SELECT) throw new FrameQueryError('not_read_only', 'only a SELECT query is allowed');
      return trimmed;
    });
  }

  /** Writes the result of a client's SELECT (checked as `checkSelect` does) to the sandbox's writable file. */
  async exportTo(sql: string, out: FrameFile): Promise<void> {
    const select = await this.checkSelect(sql);
    await this.withConnection((c) => c.run(`COPY (${select}) TO ${quoteLiteral(out.path)} ${frameCopyOptionsSql(out.format)}`));
  }

  close(): void {
    this.instance.closeSync();
  }
}

/** A DuckDB database file owned by a service (see the module comment). */
export class FrameDatabase {
  private constructor(private readonly instance: DuckDBInstance, private readonly connection: DuckDBConnection, private readonly limits: Limits) {}

  static async open(path: string, limits: Limits): Promise<FrameDatabase> {
    let instance: DuckDBInstance;
    try {
      instance = await DuckDBInstance.create(path, limits.config());
    } catch (error) {
      throw asFrameError(error);
    }
    return new FrameDatabase(instance, await instance.connect(), limits);
  }

  /** Runs statements (several allowed, separated by `;`) for their effect. */
  async run(sql: string, params?: DuckDBValue[]): Promise<void> {
    await runLimited(this.connection, this.limits.queryTimeoutMs, () => this.connection.run(sql, params));
  }

  rows(sql: string, params?: DuckDBValue[], options?: ReadOptions): Promise<FrameRows> {
    return runLimited(this.connection, this.limits.queryTimeoutMs, () => readRows(this.connection, sql, params, options));
  }

  /** Runs `work` in a transaction: committed when it returns, rolled back when it throws. */
  async transaction<T>(work: () => Promise<T>): Promise<T> {
    await this.run('BEGIN TRANSACTION');
    try {
      const result = await work();
      await this.run('COMMIT');
      return result;
    } catch (error) {
      await this.run('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  close(): void {
    this.connection.closeSync();
    this.instance.closeSync();
  }
}

/** Spill directories that processes of this host left behind when they were killed (DuckDB removes its own on close). */
function removeSpillOfDeadProcesses(spillDir: string): void {
  const host = hostname();
  for (const name of readdirSync(spillDir)) {
    const match = /^(.*)-(\d+)-\d+$/.exec(name);
    if (!match || match[1] !== host || processAlive(Number(match[2]))) continue;
    rmSync(join(spillDir, name), { recursive: true, force: true });
  }
}

export class FrameEngine {
  private readonly limits: Limits;
  private readonly maxOpenFrames: number;
  private readonly open = new Map<string, Promise<SandboxedFrame>>();

  constructor(options: FrameEngineOptions) {
    const spillDir = join(options.scratchDir, 'spill');
    mkdirSync(spillDir, { recursive: true });
    removeSpillOfDeadProcesses(spillDir);
    this.limits = new Limits(
      options.memoryLimitBytes ?? DEFAULT_FRAME_MEMORY_BYTES,
      options.threads ?? 2,
      options.queryTimeoutMs ?? DEFAULT_FRAME_QUERY_TIMEOUT_MS,
      spillDir,
    );
    this.maxOpenFrames = options.maxOpenFrames ?? 8;
  }

  /** Runs `work` on the file as the sandboxed view `df`; the frame stays open for the next call on the same file. */
  async withFrame<T>(file: FrameFile, work: (frame: Frame) => Promise<T>): Promise<T> {
    const key = JSON.stringify([file.path, file.format, file.delimiter ?? null]);
    let opening = this.open.get(key);
    if (!opening) {
      opening = SandboxedFrame.open(file, this.limits);
      this.open.set(key, opening);
      opening.catch(() => this.open.delete(key));
    }
    const frame = await opening;
    frame.users += 1;
    frame.lastUsed = Date.now();
    try {
      return await work(frame);
    } finally {
      frame.users -= 1;
      await this.closeLeastRecentlyUsed();
    }
  }

  /**
   * Writes the result of a client's SELECT over `file` (the view df) to `out`, in a sandbox of its own
   * that can read `file`, write `out` and nothing else.
   */
  async exportSelect(file: FrameFile, sql: string, out: FrameFile): Promise<void> {
    const frame = await SandboxedFrame.open(file, this.limits, out.path);
    try {
      await frame.exportTo(sql, out);
    } finally {
      frame.close();
    }
  }

  /** Opens (creating if absent) a DuckDB database file; the caller closes it. */
  openDatabase(path: string): Promise<FrameDatabase> {
    return FrameDatabase.open(path, this.limits);
  }

  private async closeLeastRecentlyUsed(): Promise<void> {
    if (this.open.size <= this.maxOpenFrames) return;
    const idle: [string, SandboxedFrame][] = [];
    for (const [key, opening] of this.open) {
      const frame = await opening.catch(() => null);
      if (frame && frame.users === 0) idle.push([key, frame]);
    }
    idle.sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [key, frame] of idle.slice(0, this.open.size - this.maxOpenFrames)) {
      this.open.delete(key);
      frame.close();
    }
  }

  /** Closes every open frame (databases are closed by their owners). */
  async close(): Promise<void> {
    const frames = [...this.open.values()];
    this.open.clear();
    for (const opening of frames) (await opening.catch(() => null))?.close();
  }
}
