/**
 * This process's copies of workspace data frames. The truth is each frame's log in the metadata store;
 * a copy is a DuckDB database file per (workspace, path) under `<scratchDir>/<pid>-<tag>/`, which any
 * process can build again from the log (so edits survive restarts, and every process sees them).
 *
 * Before each use a copy replays the operations appended since it was last used (by any process), or is
 * rebuilt when it is missing or was built from an earlier log at that path (a log deleted and begun
 * again). A write applies its operation in a DuckDB transaction, appends it to the log by
 * compare-and-swap on the last number, and only then commits the transaction: when another process
 * appended first, the transaction rolls back, the copy catches up and the write is tried on the new
 * frame. An operation that fails is never logged; a logged one is in every copy.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Conflict } from '../core/errors.js';
import type { FrameOp } from '../core/frame-edits.js';
import { hashBuffer } from '../core/hash.js';
import { quoteLiteral, type TabularFormat } from '../core/tabular.js';
import { frameCopyOptionsSql, type FrameDatabase, type FrameEngine, type FrameFile } from '../storage/frames/engine.js';
import type { FrameFiles } from '../storage/frames/frame-files.js';
import { processAlive } from '../storage/local-blob-store.js';
import type { MetaStore } from '../storage/meta-store.js';
import { applyOp, exportSql, loadState, saveState, visibleColumnsSql, type ApplyContext, type FrameState } from './frame-ops.js';
import { KeyedMutex } from './keyed-mutex.js';

/** Operations read from the log at a time when a copy catches up. */
const REPLAY_BATCH = 500;
/** Tries of a write that keeps losing the race to other processes' writes before it is refused (409). */
const WRITE_ATTEMPTS = 8;

/** One open copy of a frame. */
export class FrameReplica {
  private snapshotFile: string | null = null;

  constructor(
    readonly db: FrameDatabase,
    public state: FrameState,
    /** The database file; snapshots are written beside it. */
    readonly file: string,
  ) {}

  /**
   * The frame as a Parquet file (its columns and `_oxen_id`, in its order), for what only the sandbox may
   * run: a client's SQL. Written once per state of the frame, the previous one removed.
   */
  async snapshot(): Promise<FrameFile> {
    const path = `${this.file}.${this.state.seq}.parquet`;
    if (this.snapshotFile !== path) {
      const sql = `SELECT ${visibleColumnsSql(this.state)} FROM rows ORDER BY _oxen_row_id`;
      await this.db.run(`COPY (${sql}) TO ${quoteLiteral(path)} ${frameCopyOptionsSql('parquet')}`);
      if (this.snapshotFile !== null) await rm(this.snapshotFile, { force: true });
      this.snapshotFile = path;
    }
    return { path, format: 'parquet' };
  }

  /** Writes the frame's rows (no row ids) to `out` in its format. */
  async exportTo(out: FrameFile): Promise<void> {
    await this.db.run(`COPY (${exportSql(this.state)}) TO ${quoteLiteral(out.path)} ${frameCopyOptionsSql(out.format)}`);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

class LostRace extends Error {}

export class FrameReplicas {
  private readonly dir: string;
  /** Open copies, least recently used first. */
  private readonly open = new Map<string, FrameReplica>();
  private readonly locks = new KeyedMutex();
  private readonly context: ApplyContext;

  constructor(
    private readonly meta: MetaStore,
    private readonly engine: FrameEngine,
    frameFiles: FrameFiles,
    private readonly scratchDir: string,
    // Each open copy is a DuckDB instance with its own memory limit: few stay open (reopening one is cheap).
    private readonly maxOpen = 4,
  ) {
    this.dir = join(scratchDir, `${process.pid}-${randomUUID().slice(0, 8)}`);
    this.context = { baseFile: async (hash, format) => ({ path: await frameFiles.pathOf(hash), format }) };
  }

  /** The local file of a blob (a copy when the blob store is remote). */
  baseFile(hash: string, format: TabularFormat): Promise<FrameFile> {
    return this.context.baseFile(hash, format);
  }

  /** Removes the copies of processes that are gone (a kill left them). */
  async removeAbandoned(): Promise<void> {
    for (const name of await readdir(this.scratchDir).catch(() => [] as string[])) {
      const owner = /^(\d+)-/.exec(name);
      if (owner && !processAlive(Number(owner[1]))) await rm(join(this.scratchDir, name), { recursive: true, force: true });
    }
  }

  /** Runs `work` on the frame as its log has it now (null: it has no log, so it is not indexed). */
  read<T>(uid: string, path: string, work: (replica: FrameReplica | null) => Promise<T>): Promise<T> {
    return this.locks.run(keyOf(uid, path), async () => work(await this.current(uid, path)));
  }

  /**
   * Applies and logs the operation `build` makes from the frame as it is (see the module comment), then
   * runs `after` on the frame. `build` returning null writes nothing. `build` runs again after a lost race.
   */
  write<T>(uid: string, path: string, build: (replica: FrameReplica | null) => Promise<FrameOp | null>, after: (replica: FrameReplica | null) => Promise<T>): Promise<T> {
    return this.locks.run(keyOf(uid, path), async () => {
      for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
        const replica = await this.current(uid, path);
        const op = await build(replica);
        if (op === null) return after(replica);
        const target = replica ?? (await this.create(uid, path));
        const seq = replica?.state.seq ?? 0;
        try {
          target.state = await target.db.transaction(async () => {
            const next = { ...(await applyOp(target.db, replica?.state ?? null, op, this.context)), seq: seq + 1, lastOpId: op.opId };
            await saveState(target.db, next);
            if (!(await this.meta.appendFrameOp(uid, path, seq, JSON.stringify(op)))) throw new LostRace();
            return next;
          });
        } catch (error) {
          if (!replica) await this.discard(target);
          if (error instanceof LostRace) continue;
          throw error;
        }
        if (!replica) this.remember(keyOf(uid, path), target);
        return after(target);
      }
      throw new Conflict(`${path} kept changing while this edit was applied; try again`);
    });
  }

  /** Closes and deletes this process's copies of a workspace's frames (its logs are gone or going). */
  async forget(uid: string): Promise<void> {
    for (const [key, replica] of [...this.open]) {
      if (!key.startsWith(`${uid}\u0000`)) continue;
      await this.locks.run(key, async () => {
        if (this.open.get(key) === replica) await this.discard(replica);
      });
    }
    await rm(join(this.dir, uid), { recursive: true, force: true });
  }

  async close(): Promise<void> {
    for (const replica of this.open.values()) await replica.close();
    this.open.clear();
    await rm(this.dir, { recursive: true, force: true });
  }

  /** The copy brought up to date with the log, opened or built as needed; null when there is no log. */
  private async current(uid: string, path: string): Promise<FrameReplica | null> {
    const key = keyOf(uid, path);
    let replica = this.open.get(key) ?? (await this.reopen(uid, path));
    if (replica) {
      // The log from the copy's last operation on: that operation first, or the log is not the one it was built from.
      const ops = await this.meta.listFrameOps(uid, path, replica.state.seq - 1, REPLAY_BATCH);
      if (ops[0]?.seq === replica.state.seq && (JSON.parse(ops[0].op) as FrameOp).opId === replica.state.lastOpId) {
        await this.replay(uid, path, replica, ops.slice(1), ops.length === REPLAY_BATCH);
        this.remember(key, replica);
        return replica;
      }
      await this.discard(replica);
    }
    const ops = await this.meta.listFrameOps(uid, path, 0, REPLAY_BATCH);
    if (ops.length === 0) return null;
    replica = await this.create(uid, path);
    try {
      await this.replay(uid, path, replica, ops, ops.length === REPLAY_BATCH);
    } catch (error) {
      await this.discard(replica);
      throw error;
    }
    this.remember(key, replica);
    return replica;
  }

  /** Applies logged operations (and, while `more`, those after them), a batch per transaction. */
  private async replay(uid: string, path: string, replica: FrameReplica, ops: Array<{ seq: number; op: string }>, more: boolean): Promise<void> {
    let batch = ops;
    for (;;) {
      if (batch.length > 0) {
        replica.state = await replica.db.transaction(async () => {
          let state: FrameState | null = replica.state.seq === 0 ? null : replica.state;
          for (const { seq, op } of batch) {
            const parsed = JSON.parse(op) as FrameOp;
            state = { ...(await applyOp(replica.db, state, parsed, this.context)), seq, lastOpId: parsed.opId };
          }
          await saveState(replica.db, state!);
          return state!;
        });
      }
      if (!more) return;
      batch = await this.meta.listFrameOps(uid, path, replica.state.seq, REPLAY_BATCH);
      more = batch.length === REPLAY_BATCH;
    }
  }

  private fileOf(uid: string, path: string): string {
    return join(this.dir, uid, `${hashBuffer(path)}.duckdb`);
  }

  /** A copy left on disk by an earlier use (closed since); null if there is none or it holds no state. */
  private async reopen(uid: string, path: string): Promise<FrameReplica | null> {
    const file = this.fileOf(uid, path);
    if (!(await stat(file).catch(() => null))) return null;
    const db = await this.engine.openDatabase(file).catch(() => null);
    if (!db) return null;
    const state = await loadState(db);
    if (state) return new FrameReplica(db, state, file);
    db.close();
    await removeDatabase(file);
    return null;
  }

  /** A new, empty copy (whatever was at its file is removed). Its state is a placeholder until `index` is applied. */
  private async create(uid: string, path: string): Promise<FrameReplica> {
    const file = this.fileOf(uid, path);
    await mkdir(join(this.dir, uid), { recursive: true });
    await removeDatabase(file);
    return new FrameReplica(await this.engine.openDatabase(file), EMPTY_STATE, file);
  }

  private async discard(replica: FrameReplica): Promise<void> {
    for (const [key, open] of this.open) if (open === replica) this.open.delete(key);
    await replica.close();
    await removeDatabase(replica.file);
  }

  /** Marks the copy as the most recently used and closes the least recently used beyond `maxOpen`. */
  private remember(key: string, replica: FrameReplica): void {
    this.open.delete(key);
    this.open.set(key, replica);
    const excess = [...this.open].slice(0, Math.max(0, this.open.size - this.maxOpen)).filter(([oldest]) => oldest !== key);
    for (const [oldest, open] of excess) {
      // Under its own lock, since a request may be using it; still open then, or it was reopened meanwhile.
      void this.locks.run(oldest, async () => {
        if (this.open.get(oldest) !== open) return;
        this.open.delete(oldest);
        await open.close();
      });
    }
  }
}

const EMPTY_STATE: FrameState = {
  seq: 0,
  lastOpId: '',
  base: { path: '', hash: '', size: 0, format: 'csv', rows: 0 },
  changed: false,
  columns: [],
  schemaMetadata: null,
  embeddings: {},
  nextRowOrder: 0,
};

function keyOf(uid: string, path: string): string {
  return `${uid}\u0000${path}`;
}

/** A database file with its write-ahead log and snapshots. */
async function removeDatabase(file: string): Promise<void> {
  const dir = join(file, '..');
  const name = file.slice(dir.length + 1);
  for (const entry of await readdir(dir).catch(() => [] as string[])) if (entry.startsWith(name)) await rm(join(dir, entry), { force: true });
}
