/**
 * Workspace data frames (Oxen's `workspaces/{id}/data_frames/…`): a tabular file of a workspace indexed
 * for editing, then read page by page or with SQL, edited row by row and column by column, searched by
 * embedding similarity, downloaded, renamed, and committed with the workspace in its own format.
 *
 * A frame's edits are the operations of its log in the metadata store (core/frame-edits.ts); each process
 * answers from its own DuckDB copy of the frame (frame-replicas.ts), so edits survive restarts and every
 * process sees them. A client's SQL runs only in the engine's sandbox, on a Parquet snapshot of the frame.
 */
import { createReadStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Json } from '@duckdb/node-api';
import { BadRequest, NotFound } from '../core/errors.js';
import { parseFrameOptions, type FrameOptions } from '../core/frame-options.js';
import {
  columnMetadata,
  columnUpdate,
  embeddingOf,
  FrameNotIndexed,
  indexedFileOf,
  newColumn,
  pageInBody,
  ROW_ORDER_COLUMN,
  RowNotFound,
  rowsToAdd,
  rowUpdate,
  rowUpdates,
  schemaMetadata,
  type FrameOp,
  type JsonValue,
} from '../core/frame-edits.js';
import { normalizeRepoPath } from '../core/paths.js';
import { quoteIdent, tabularFormatOf, type TabularFormat } from '../core/tabular.js';
import type { FrameColumn, FrameDatabase, FrameEngine, FrameFile } from '../storage/frames/engine.js';
import type { FrameFiles } from '../storage/frames/frame-files.js';
import type { MetaStore, RepoRecord, StagedChange, WorkspaceRecord } from '../storage/meta-store.js';
import type { DataFrameService, TabularFile } from './data-frames.js';
import { withFrameErrors } from './frame-errors.js';
import { frameColumns, rowsWithIds, visibleColumnsSql, type FrameState } from './frame-ops.js';
import { MAX_PAGE_JSON_BYTES, viewOf, type PageSource, type PageView } from './frame-pages.js';
import { embeddingColumnsOf, meanVectorOf, meanVectorSql, nearestRows, vectorLength, type EmbeddingColumn } from './frame-embeddings.js';
import { FrameReplicas, type FrameReplica } from './frame-replicas.js';
import type { VersionService } from './versions.js';
import type { WorkspaceFrameChanges, WorkspaceService } from './workspaces.js';

/** A page of a workspace frame (or, not indexed, of its file), with the metadata its schema shows. */
export interface WorkspaceFramePage {
  indexed: boolean;
  source: { columns: FrameColumn[]; height: number };
  view: PageView;
  options: FrameOptions;
  metadata: FrameMetadata;
}

export interface FrameMetadata {
  columns: Record<string, JsonValue>;
  schema: JsonValue;
}

/** Rows an edit touched (or a row read). */
export interface FrameRowsResult {
  columns: FrameColumn[];
  rows: Record<string, Json>[];
  rowId: string | null;
  metadata: FrameMetadata;
}

/** The file a frame is indexed from: its path then (where its edits began), hash, size and format. */
interface IndexedFile {
  path: string;
  hash: string;
  size: number;
  format: TabularFormat;
}

const NO_METADATA: FrameMetadata = { columns: {}, schema: null };
/** The page a column edit answers with (Oxen answers with the frame's first page). */
const FIRST_PAGE = parseFrameOptions({});

function metadataOf(state: FrameState): FrameMetadata {
  return { columns: Object.fromEntries(state.columns.map((c) => [c.name, c.metadata])), schema: state.schemaMetadata };
}

/** Whether a frame's log holds edits of its rows, columns or path (metadata and embeddings alone write no file). */
function isChanged(state: FrameState, path: string): boolean {
  return state.changed || state.base.path !== path;
}

/** The workspace's database as a page source: `df` is its view of the rows; a client's SQL never runs here. */
function databaseSource(db: FrameDatabase): PageSource {
  return {
    rows: (sql, params, options) => db.rows(sql, params, options),
    count: async (sql) => Number((await db.rows(`SELECT count(*) AS n FROM (${sql}) AS q`)).rows[0].n),
    columns: async (sql) => (await db.rows(`SELECT * FROM (${sql}) AS q LIMIT 0`)).columns,
    checkSelect: async () => {
      throw new Error('A client query runs only in the sandbox');
    },
  };
}

function formatOf(path: string): TabularFormat {
  const format = tabularFormatOf(path);
  if (format === null) throw new BadRequest(`File format not supported, must be tabular: ${path}`, { type: 'invalid_file_type' });
  return format;
}

export class WorkspaceFrameService implements WorkspaceFrameChanges {
  private readonly replicas: FrameReplicas;
  private readonly exportsDir: string;

  constructor(
    private readonly meta: MetaStore,
    private readonly workspaces: WorkspaceService,
    private readonly dataFrames: DataFrameService,
    private readonly versions: VersionService,
    private readonly engine: FrameEngine,
    frameFiles: FrameFiles,
    /** Where this service keeps its copies of frames and the files it writes (exports, downloads). */
    scratchDir: string,
  ) {
    this.replicas = new FrameReplicas(meta, engine, frameFiles, join(scratchDir, 'replicas'));
    this.exportsDir = join(scratchDir, 'exports');
  }

  /** Removes what killed processes left in the scratch directory. */
  async removeAbandoned(): Promise<void> {
    await this.replicas.removeAbandoned();
  }

  async close(): Promise<void> {
    await this.replicas.close();
  }

  /** A page of the frame at `path` with Oxen's view options; not indexed, of the workspace's file as it is. */
  async page(repo: RepoRecord, workspace: WorkspaceRecord, rawPath: string, options: FrameOptions, similarTo?: { where: string; column: string }): Promise<WorkspaceFramePage> {
    const path = normalizeRepoPath(rawPath);
    const page = await this.replicas.read(workspace.uid, path, async (replica) => {
      if (!replica) return null;
      const source = await this.sourceOf(replica);
      if (similarTo) {
        const embedding = await this.meanVector(replica, similarTo.column, similarTo.where);
        const view = await nearestRows(replica, { column: similarTo.column, embedding, page: options.page, pageSize: options.pageSize });
        return { indexed: true, source, view, options, metadata: metadataOf(replica.state) };
      }
      const view = options.sql === null ? await viewOf(databaseSource(replica.db), source, options) : await this.sandboxed(replica, (frame) => viewOf(frame, source, options));
      return { indexed: true, source, view, options, metadata: metadataOf(replica.state) };
    });
    if (page) return page;
    const file = await this.dataFrames.view(repo, `${workspace.id}/${path}`, options);
    return { indexed: false, source: file.source, view: file.view, options, metadata: NO_METADATA };
  }

  /** The frame's columns (with `_oxen_id`) and height. */
  private async sourceOf(replica: FrameReplica): Promise<{ columns: FrameColumn[]; height: number }> {
    const columns = await frameColumns(replica.db, replica.state, true);
    const height = Number((await replica.db.rows('SELECT count(*) AS n FROM rows')).rows[0].n);
    return { columns, height };
  }

  /** Runs `work` in the sandbox on a snapshot of the frame (for a client's SQL); refusals are 4xx. */
  private async sandboxed<T>(replica: FrameReplica, work: (frame: PageSource) => Promise<T>): Promise<T> {
    return this.onSnapshot(replica, (snapshot) => this.engine.withFrame(snapshot, work));
  }

  /** Runs engine work on a snapshot of the frame; refusals are 4xx, naming the frame, not the snapshot's file. */
  private async onSnapshot<T>(replica: FrameReplica, work: (snapshot: FrameFile) => Promise<T>): Promise<T> {
    const snapshot = await replica.snapshot();
    return withFrameErrors(() => work(snapshot), { file: { localPath: snapshot.path, shownAs: replica.state.base.path } });
  }

  async isIndexed(workspace: WorkspaceRecord, rawPath: string): Promise<boolean> {
    return (await this.meta.listFrameOps(workspace.uid, normalizeRepoPath(rawPath), 0, 1)).length > 0;
  }

  /**
   * Indexes the frame for editing (a no-op when it is), or with `indexed` false drops its index and
   * every edit. The file must be a tabular file of the workspace.
   */
  async setIndexed(workspace: WorkspaceRecord, rawPath: string, indexed: boolean): Promise<void> {
    const path = normalizeRepoPath(rawPath);
    if (indexed) await this.ensureIndexed(workspace, path);
    else await this.meta.deleteFrameLog(workspace.uid, path);
  }

  /**
   * Drops the frame's edits and indexes it again (Oxen's restore): from the workspace's file, or for a frame
   * moved to a path with no file, from the file it was indexed from (so it stays moved).
   */
  async restore(workspace: WorkspaceRecord, rawPath: string): Promise<void> {
    const path = normalizeRepoPath(rawPath);
    const [first] = await this.meta.listFrameOps(workspace.uid, path, 0, 1);
    const indexedFrom = first ? indexedFileOf(first.op) : null;
    const moved = indexedFrom !== null && !(await this.workspaces.entryAt(workspace, path));
    const file = moved ? { ...indexedFrom, format: formatOf(indexedFrom.path) } : await this.fileOf(workspace, path);
    await this.meta.deleteFrameLog(workspace.uid, path);
    await this.indexFrom(workspace, path, file);
  }

  /** The workspace's file at `path`, which must be tabular. */
  private async fileOf(workspace: WorkspaceRecord, path: string): Promise<IndexedFile> {
    const entry = await this.workspaces.entryAt(workspace, path);
    if (!entry) throw new NotFound(`Could not find path: ${path} in workspace ${workspace.id}`);
    if (entry.kind !== 'file') throw new BadRequest(`Not a file: ${path}`, { type: 'not_a_file' });
    return { path, hash: entry.hash, size: entry.size, format: formatOf(path) };
  }

  private async ensureIndexed(workspace: WorkspaceRecord, path: string): Promise<void> {
    if (!(await this.isIndexed(workspace, path))) await this.indexFrom(workspace, path, await this.fileOf(workspace, path));
  }

  /** Indexes the frame at `path` from `file` (a no-op when another request indexed it first). */
  private async indexFrom(workspace: WorkspaceRecord, path: string, file: IndexedFile): Promise<void> {
    const op: FrameOp = { kind: 'index', opId: randomUUID(), ...file };
    const local = await this.replicas.baseFile(file.hash, file.format);
    await withFrameErrors(() => this.replicas.write(workspace.uid, path, async (replica) => (replica ? null : op), async () => undefined), {
      readingFile: true,
      file: { localPath: local.path, shownAs: file.path },
    });
  }

  /**
   * Writes the operation `build` makes (null: none) on an indexed frame, then answers with `after`.
   * Engine refusals are 4xx.
   */
  private edit<T>(workspace: WorkspaceRecord, rawPath: string, build: (replica: FrameReplica) => Promise<FrameOp | null>, after: (replica: FrameReplica) => Promise<T>): Promise<T> {
    const path = normalizeRepoPath(rawPath);
    return withFrameErrors(() =>
      this.replicas.write(
        workspace.uid,
        path,
        async (replica) => {
          if (!replica) throw new FrameNotIndexed(path);
          return build(replica);
        },
        async (replica) => after(replica!),
      ),
    );
  }

  /** Reads an indexed frame (FrameNotIndexed otherwise). */
  private readIndexed<T>(workspace: WorkspaceRecord, rawPath: string, work: (replica: FrameReplica) => Promise<T>): Promise<T> {
    const path = normalizeRepoPath(rawPath);
    return withFrameErrors(() =>
      this.replicas.read(workspace.uid, path, async (replica) => {
        if (!replica) throw new FrameNotIndexed(path);
        return work(replica);
      }),
    );
  }

  /** Rows by id as clients see them (the frame's columns and `_oxen_id`), in the frame's order. */
  private async rowsById(replica: FrameReplica, ids: string[], rowId: string | null): Promise<FrameRowsResult> {
    const found = await replica.db.rows(
      `SELECT ${visibleColumnsSql(replica.state)} FROM rows WHERE ${rowsWithIds(replica.state, ids)} ORDER BY ${quoteIdent(ROW_ORDER_COLUMN)}`,
      [JSON.stringify(ids)],
      { maxJsonBytes: MAX_PAGE_JSON_BYTES },
    );
    return { columns: found.columns, rows: found.rows, rowId, metadata: metadataOf(replica.state) };
  }

  async getRow(workspace: WorkspaceRecord, path: string, id: string): Promise<FrameRowsResult> {
    return this.readIndexed(workspace, path, async (replica) => {
      const result = await this.rowsById(replica, [id], id);
      if (result.rows.length === 0) throw new RowNotFound(id);
      return result;
    });
  }

  /** Adds one row or several (each gets a new `_oxen_id`); answers with the rows added. */
  async addRows(workspace: WorkspaceRecord, path: string, body: unknown): Promise<FrameRowsResult> {
    const values = rowsToAdd(body);
    let ids: string[] = [];
    return this.edit(
      workspace,
      path,
      async () => {
        ids = values.map(() => randomUUID());
        return { kind: 'add_rows', opId: randomUUID(), rows: values.map((v, i) => ({ id: ids[i], values: v })) };
      },
      (replica) => this.rowsById(replica, ids, ids[0]),
    );
  }

  async updateRow(workspace: WorkspaceRecord, path: string, id: string, body: unknown): Promise<FrameRowsResult> {
    const values = rowUpdate(body);
    return this.edit(
      workspace,
      path,
      async () => ({ kind: 'update_rows', opId: randomUUID(), rows: [{ id, values }] }),
      (replica) => this.rowsById(replica, [id], id),
    );
  }

  /** Oxen's batch update; answers with the ids updated. */
  async updateRows(workspace: WorkspaceRecord, path: string, body: unknown): Promise<string[]> {
    const rows = rowUpdates(body);
    return this.edit(
      workspace,
      path,
      async () => ({ kind: 'update_rows', opId: randomUUID(), rows }),
      async () => rows.map((r) => r.id),
    );
  }

  /** Deletes a row; answers with it as it was. */
  async deleteRow(workspace: WorkspaceRecord, path: string, id: string): Promise<FrameRowsResult> {
    let deleted: FrameRowsResult | null = null;
    return this.edit(
      workspace,
      path,
      async (replica) => {
        deleted = await this.rowsById(replica, [id], null);
        if (deleted.rows.length === 0) throw new RowNotFound(id);
        return { kind: 'delete_row', opId: randomUUID(), row: id };
      },
      async () => deleted!,
    );
  }

  /** A row back as the file has it (a row the workspace added is removed); answers with the row now. */
  async restoreRow(workspace: WorkspaceRecord, path: string, id: string): Promise<FrameRowsResult> {
    return this.edit(
      workspace,
      path,
      async () => ({ kind: 'restore_row', opId: randomUUID(), row: id }),
      (replica) => this.rowsById(replica, [id], id),
    );
  }

  async addColumn(workspace: WorkspaceRecord, path: string, body: unknown): Promise<WorkspaceFramePage> {
    const column = newColumn(body);
    return this.edit(workspace, path, async () => ({ kind: 'add_column', opId: randomUUID(), ...column }), (replica) => this.firstPage(replica));
  }

  /** Renames or retypes a column, and sets its metadata when the body has some. */
  async updateColumn(workspace: WorkspaceRecord, path: string, name: string, body: unknown): Promise<WorkspaceFramePage> {
    const update = columnUpdate(body);
    if (update.newName === null && update.newType === null && update.metadata === undefined) throw new BadRequest('Nothing to update: give new_name, new_data_type or metadata');
    let page: WorkspaceFramePage | null = null;
    if (update.newName !== null || update.newType !== null) {
      page = await this.edit(workspace, path, async () => ({ kind: 'update_column', opId: randomUUID(), name, newName: update.newName, newType: update.newType }), (replica) => this.firstPage(replica));
    }
    if (update.metadata !== undefined) {
      const metadata = update.metadata;
      page = await this.edit(workspace, path, async () => ({ kind: 'column_metadata', opId: randomUUID(), name: update.newName ?? name, metadata }), (replica) => this.firstPage(replica));
    }
    return page!;
  }

  async deleteColumn(workspace: WorkspaceRecord, path: string, name: string): Promise<WorkspaceFramePage> {
    return this.edit(workspace, path, async () => ({ kind: 'delete_column', opId: randomUUID(), name }), (replica) => this.firstPage(replica));
  }

  /** Metadata of one column (indexing the frame first if it is not: its log holds the metadata). */
  async setColumnMetadata(workspace: WorkspaceRecord, rawPath: string, body: unknown): Promise<void> {
    const { name, metadata } = columnMetadata(body);
    const path = normalizeRepoPath(rawPath);
    await this.ensureIndexed(workspace, path);
    await this.edit(workspace, path, async () => ({ kind: 'column_metadata', opId: randomUUID(), name, metadata }), async () => undefined);
  }

  /** Metadata of the frame's schema (indexing the frame first if it is not). */
  async setSchemaMetadata(workspace: WorkspaceRecord, rawPath: string, body: unknown): Promise<void> {
    const metadata = schemaMetadata(body);
    const path = normalizeRepoPath(rawPath);
    await this.ensureIndexed(workspace, path);
    await this.edit(workspace, path, async () => ({ kind: 'schema_metadata', opId: randomUUID(), metadata }), async () => undefined);
  }

  /** The frame's columns (without `_oxen_id`) with their metadata; not indexed, the file's. */
  async schema(repo: RepoRecord, workspace: WorkspaceRecord, rawPath: string): Promise<{ columns: FrameColumn[]; metadata: FrameMetadata }> {
    const path = normalizeRepoPath(rawPath);
    const indexed = await withFrameErrors(() =>
      this.replicas.read(workspace.uid, path, async (replica) => (replica ? { columns: await frameColumns(replica.db, replica.state), metadata: metadataOf(replica.state) } : null)),
    );
    if (indexed) return indexed;
    await this.fileOf(workspace, path);
    const { schemas } = await this.dataFrames.schemas(repo, `${workspace.id}/${path}`);
    if (schemas.length === 0) throw new BadRequest(`Could not read a schema from ${path}`, { type: 'data_frame_error' });
    return { columns: schemas[0].columns, metadata: NO_METADATA };
  }

  private async firstPage(replica: FrameReplica): Promise<WorkspaceFramePage> {
    const source = await this.sourceOf(replica);
    const view = await viewOf(databaseSource(replica.db), source, FIRST_PAGE);
    return { indexed: true, source, view, options: FIRST_PAGE, metadata: metadataOf(replica.state) };
  }

  /**
   * Moves the frame, with its edits, to `newPath` (a path the workspace does not have; its extension names
   * the format it is committed in). The old path is staged as removed.
   */
  async rename(workspace: WorkspaceRecord, rawPath: string, rawNewPath: unknown): Promise<string> {
    if (typeof rawNewPath !== 'string' || rawNewPath.trim() === '') throw new BadRequest('new_path cannot be empty');
    const path = normalizeRepoPath(rawPath);
    const newPath = normalizeRepoPath(rawNewPath);
    formatOf(newPath);
    if (newPath === path) return newPath;
    if (await this.workspaces.entryAt(workspace, newPath)) throw new BadRequest('new_path already exists');
    await this.workspaces.assertCanStageFile(workspace, newPath);
    await this.ensureIndexed(workspace, path);
    if (!(await this.meta.renameFrameLog(workspace.uid, path, newPath))) throw new BadRequest('new_path already exists');
    // The old path leaves the workspace: unstaged if it was staged, removed if the base commit has it.
    await this.meta.unstage(workspace.uid, path);
    if (await this.workspaces.baseHas(workspace, path)) await this.meta.stageChanges(workspace.uid, [{ path, hash: null, size: 0 }]);
    return newPath;
  }

  /**
   * The frame (or its file, not indexed) as a file of `format` (default: its own), or the result of a
   * client's SQL over it; streamed, then deleted.
   */
  async download(workspace: WorkspaceRecord, rawPath: string, request: { sql: string | null; format: TabularFormat | null }): Promise<{ stream: Readable; size: number; format: TabularFormat }> {
    const path = normalizeRepoPath(rawPath);
    const format = request.format ?? formatOf(path);
    const out: FrameFile = { path: await this.scratchFile(format), format };
    try {
      const exported = await withFrameErrors(() =>
        this.replicas.read(workspace.uid, path, async (replica) => {
          if (!replica) return false;
          if (request.sql === null) await replica.exportTo(out);
          else await this.onSnapshot(replica, (snapshot) => this.engine.exportSelect(snapshot, request.sql!, out));
          return true;
        }),
      );
      if (!exported) {
        const file = await this.fileOf(workspace, path);
        if (request.sql === null && format === file.format) {
          return { stream: await this.versions.readCommitted(file.hash), size: file.size, format };
        }
        const local = await this.replicas.baseFile(file.hash, file.format);
        await withFrameErrors(() => this.engine.exportSelect(local, request.sql ?? 'SELECT * FROM df', out), { file: { localPath: local.path, shownAs: path } });
      }
      const { size } = await stat(out.path);
      const stream = createReadStream(out.path);
      stream.once('close', () => void rm(out.path, { force: true }));
      return { stream, size, format };
    } catch (error) {
      await rm(out.path, { force: true });
      throw error;
    }
  }

  private async scratchFile(format: TabularFormat): Promise<string> {
    await mkdir(this.exportsDir, { recursive: true });
    return join(this.exportsDir, `${process.pid}-${randomUUID()}.${format}`);
  }

  /** The tabular files of `branch`'s head that are indexed in the workspace. */
  async indexedOn(repo: RepoRecord, workspace: WorkspaceRecord, branch: string): Promise<TabularFile[]> {
    const files = await this.dataFrames.tabularFiles(repo, branch);
    const indexed = new Set((await this.meta.listFrameLogs(workspace.uid)).map((l) => l.path));
    return files.filter((f) => indexed.has(f.path));
  }

  async embeddingColumns(workspace: WorkspaceRecord, path: string): Promise<EmbeddingColumn[]> {
    return this.readIndexed(workspace, path, async (replica) => embeddingColumnsOf(replica.state));
  }

  /** Enables nearest-neighbour queries on a column of number vectors (its length: the first row's). */
  async enableEmbeddings(workspace: WorkspaceRecord, path: string, body: unknown): Promise<EmbeddingColumn[]> {
    const column = (body as { column?: unknown } | null)?.column;
    if (typeof column !== 'string' || column === '') throw new BadRequest('column is required');
    return this.edit(
      workspace,
      path,
      async (replica) => {
        return { kind: 'enable_embeddings', opId: randomUUID(), column, vectorLength: await vectorLength(replica, column) };
      },
      async (replica) => embeddingColumnsOf(replica.state),
    );
  }

  /** Rows by cosine similarity of a vector column to `query.embedding`, most similar first (Oxen's neighbors). */
  async neighbors(workspace: WorkspaceRecord, path: string, body: unknown): Promise<WorkspaceFramePage> {
    const request = (body ?? {}) as { column?: unknown; embedding?: unknown; page_size?: unknown; page_num?: unknown };
    if (typeof request.column !== 'string' || request.column === '') throw new BadRequest('column is required');
    const column = request.column;
    const embedding = embeddingOf(request.embedding, 'embedding');
    const { page, pageSize } = pageInBody(request.page_num, request.page_size, 10);
    const options = parseFrameOptions({ page: String(page), page_size: String(pageSize) });
    return this.readIndexed(workspace, path, async (replica) => {
      const source = await this.sourceOf(replica);
      const view = await nearestRows(replica, { column, embedding, page, pageSize });
      return { indexed: true, source, view, options, metadata: metadataOf(replica.state) };
    });
  }

  /** The mean vector of `column` over the rows a client's WHERE clause selects (computed in the sandbox). */
  private async meanVector(replica: FrameReplica, column: string, where: string): Promise<number[]> {
    const sql = meanVectorSql(replica.state, column, where);
    const result = await this.sandboxed(replica, async (frame) => frame.rows(await frame.checkSelect(sql)));
    return meanVectorOf(result.rows, column, where);
  }

  // What the workspace's changes, commits and deletions need (WorkspaceFrameChanges).

  /** The frames with edits of their rows, columns or path: each path with its file's hash and size before the edits. */
  async edited(workspace: WorkspaceRecord): Promise<StagedChange[]> {
    const changes: StagedChange[] = [];
    for (const { path } of await this.meta.listFrameLogs(workspace.uid)) {
      const state = await withFrameErrors(() => this.replicas.read(workspace.uid, path, async (replica) => replica?.state ?? null));
      if (state && isChanged(state, path)) changes.push({ path, hash: state.base.hash, size: state.base.size });
    }
    return changes;
  }

  /** Writes each edited frame in its own format as a new verified blob; `committed` then drops their logs. */
  async export(workspace: WorkspaceRecord): Promise<{ changes: StagedChange[]; committed(): Promise<void> }> {
    const changes: StagedChange[] = [];
    const exported: Array<{ path: string; seq: number }> = [];
    const writes = this.versions.startWrites();
    for (const { path } of await this.meta.listFrameLogs(workspace.uid)) {
      const out: FrameFile = { path: await this.scratchFile(formatOf(path)), format: formatOf(path) };
      try {
        const seq = await withFrameErrors(() =>
          this.replicas.read(workspace.uid, path, async (replica) => {
            if (!replica || !isChanged(replica.state, path)) return null;
            await replica.exportTo(out);
            return replica.state.seq;
          }),
        );
        if (seq === null) continue;
        const blob = await writes.put(createReadStream(out.path));
        changes.push({ path, hash: blob.hash, size: blob.size });
        exported.push({ path, seq });
      } finally {
        await rm(out.path, { force: true });
      }
    }
    await writes.commit();
    return {
      changes,
      committed: async () => {
        // Only logs nothing was appended to since the export: later edits stay, on top of the same base.
        for (const { path, seq } of exported) await this.meta.deleteFrameLog(workspace.uid, path, seq);
      },
    };
  }

  /** Drops the edits (and the index) of the frames at `path` and below; answers how many. */
  async discard(workspace: WorkspaceRecord, path: string): Promise<number> {
    let dropped = 0;
    for (const log of await this.meta.listFrameLogs(workspace.uid)) {
      if (path === '' || log.path === path || log.path.startsWith(`${path}/`)) dropped += (await this.meta.deleteFrameLog(workspace.uid, log.path)) ? 1 : 0;
    }
    return dropped;
  }

  /** This process's copies of a deleted workspace's frames. */
  forget(uid: string): Promise<void> {
    return this.replicas.forget(uid);
  }
}
