/**
 * Comparisons of two data frames (Oxen's `compare/data_frames`), and the tabular part of `compare/file`.
 *
 * A comparison is stored as its definition only: each side's path and version as the client named them,
 * pinned to the commit and blob they resolved to when it was created or updated, and the key, compared and
 * display columns asked for. Its results are derived from that definition and nothing else (the pinned
 * files never change), so any process can compute them again and they are never stale: a comparison of
 * `main` shows main as it was when it was saved, until the client updates it.
 *
 * Computing is DuckDB's work (core/frame-compare.ts builds the SQL): both version files are read in place
 * and joined, the changed rows written as a Parquet file with a small JSON of counts beside it, under
 * `<scratchDir>/<key>` where the key hashes everything the result depends on. Those files are a cache:
 * deleting them loses nothing, and comparisons with the same inputs share them. Pages of the derived frame
 * are read from the Parquet file through the engine's sandbox, with the view options of any data frame.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFound, YokeError } from '../core/errors.js';
import {
  comparisonSql,
  DIFF_STATUS_COLUMN,
  duplicateKeysSql,
  parseCompareRequest,
  planComparison,
  ROW_STATUSES,
  type ComparePicks,
  type ComparedFile,
  type CompareRequest,
  type ComparisonPlan,
  type RowStatus,
  type Side,
} from '../core/frame-compare.js';
import type { FrameOptions } from '../core/frame-options.js';
import { hashBuffer } from '../core/hash.js';
import { quoteIdent, quoteLiteral, tabularFormatOf } from '../core/tabular.js';
import { lookup } from '../core/tree.js';
import { frameSourceSql, FrameQueryError, type Frame, type FrameColumn, type FrameEngine, type FrameFile } from '../storage/frames/engine.js';
import type { FrameFiles } from '../storage/frames/frame-files.js';
import type { MetaStore, RepoRecord } from '../storage/meta-store.js';
import { frameClientError } from './frame-errors.js';
import { viewOf, type PageView } from './frame-pages.js';
import type { NodeCache } from './node-cache.js';
import type { RevisionResolver } from './revisions.js';

/** Bumped when the derived frame's layout changes, so that cached results of older layouts are not read. */
const RESULT_LAYOUT = 1;

/** One side of a stored comparison: as the client named it, and what that resolved to. */
export interface PinnedFile extends ComparedFile {
  commitId: string;
  hash: string;
}

/** What is stored of a comparison (as JSON in the metadata store): its results derive from this alone. */
export interface ComparisonDefinition extends ComparePicks {
  left: PinnedFile;
  right: PinnedFile;
}

/** What a comparison found, kept beside its derived frame. */
export interface ComparisonFacts {
  plan: ComparisonPlan;
  counts: Record<RowStatus, number>;
  /** Rows of each file whose keys another row of that file also has (Oxen's `dupes`). */
  dupes: Record<Side, number>;
  /** Columns of the derived frame, the status last; its rows are the changed ones. */
  columns: FrameColumn[];
  height: number;
}

export interface Comparison extends ComparisonFacts {
  id: string;
  definition: ComparisonDefinition;
}

/** The tabular part of `compare/file`: rows and columns one revision of a file has and the other lacks. */
export interface TabularFileDiff {
  /** Columns of each revision (null: the file is not in it). */
  baseColumns: FrameColumn[] | null;
  headColumns: FrameColumn[] | null;
  schemaChanged: boolean;
  addedRows: PageView | null;
  removedRows: PageView | null;
  addedColumns: PageView | null;
  removedColumns: PageView | null;
}

interface Materialized {
  /** The derived frame: a Parquet file. */
  path: string;
  key: string;
  facts: ComparisonFacts;
}

/** Oxen's error for a comparison of a file that is not tabular. */
function notTabular(path: string): YokeError {
  return new YokeError(400, 'bad_request', 'Not a tabular file', `${path} is not a tabular file (csv, tsv, jsonl, ndjson, json, parquet), so it cannot be compared as a data frame`, {
    type: 'invalid_file_type',
  });
}

export class FrameCompareService {
  private readonly building = new Map<string, Promise<Materialized>>();

  constructor(
    private readonly meta: MetaStore,
    private readonly nodes: NodeCache,
    private readonly revisions: RevisionResolver,
    private readonly engine: FrameEngine,
    private readonly frameFiles: FrameFiles,
    /** Where derived frames are cached. */
    private readonly scratchDir: string,
  ) {}

  /** Creates the comparison the body describes (Oxen's `TabularCompareBody`), or replaces one of the same id. */
  create(repo: RepoRecord, body: unknown): Promise<Comparison> {
    return this.save(repo, parseCompareRequest(body, null));
  }

  /** Replaces comparison `id` with the body's definition (creating it if absent, as Oxen does). */
  update(repo: RepoRecord, id: string, body: unknown): Promise<Comparison> {
    return this.save(repo, parseCompareRequest(body, id));
  }

  async get(repo: RepoRecord, id: string): Promise<Comparison> {
    return (await this.load(repo, id)).comparison;
  }

  async delete(repo: RepoRecord, id: string): Promise<void> {
    if (!(await this.meta.deleteFrameComparison(repo.id, id))) throw new NotFound(`No comparison ${id} in this repository`);
  }

  /** A page of comparison `id`'s derived frame (its changed rows), with the view options of any data frame. */
  async derivedView(repo: RepoRecord, id: string, options: FrameOptions): Promise<{ comparison: Comparison; view: PageView }> {
    const { comparison, path } = await this.load(repo, id);
    const view = await this.onFile({ path, format: 'parquet' }, `comparison ${id}`, (frame) => viewOf(frame, comparison, options));
    return { comparison, view };
  }

  private async load(repo: RepoRecord, id: string): Promise<{ comparison: Comparison; path: string }> {
    const record = await this.meta.getFrameComparison(repo.id, id);
    if (!record) throw new NotFound(`No comparison ${id} in this repository`);
    const definition = JSON.parse(record.definition) as ComparisonDefinition;
    const { path, facts } = await this.materialize(definition);
    return { comparison: { id, definition, ...facts }, path };
  }

  /**
   * Oxen's tabular diff of one file between two revisions (`compare/file`): rows whose values (in the
   * columns both revisions have) are new or gone, whole, and the columns one revision alone has, each paged
   * with `options`. Null when the path names no format the engine reads.
   */
  async fileDiff(path: string, base: { commitId: string; hash: string } | null, head: { commitId: string; hash: string } | null, options: FrameOptions): Promise<TabularFileDiff | null> {
    const format = tabularFormatOf(path);
    if (format === null || (!base && !head)) return null;
    const pin = (side: { commitId: string; hash: string }): PinnedFile => ({ path, version: side.commitId, ...side });
    if (!base || !head) {
      // A file added or removed whole: its every row is new or gone.
      const only = pin((base ?? head)!);
      const file = await this.frameFileOf(only);
      const facts = await this.onFile(file, path, async (frame) => ({ columns: await frame.columns(), height: await frame.count() }), true);
      const rows = await this.onFile(file, path, (frame) => viewOf(frame, facts, options));
      return { baseColumns: base && facts.columns, headColumns: head && facts.columns, schemaChanged: true, addedRows: head && rows, removedRows: base && rows, addedColumns: null, removedColumns: null };
    }
    const definition: ComparisonDefinition = { left: pin(base), right: pin(head), keys: [], targets: [], display: [] };
    const columnsOf = async (pinned: PinnedFile, columns: string[] | null) => {
      if (columns?.length === 0) return null;
      const file = await this.frameFileOf(pinned);
      return this.onFile(file, path, async (frame) => viewOf(frame, { columns: await frame.columns(), height: await frame.count() }, { ...options, columns }));
    };
    const materialized = await this.materialize(definition).catch((error: unknown) => {
      if (error instanceof YokeError && error.extra.type === 'schema_error') return null;
      throw error;
    });
    if (!materialized) {
      // No column in common, so no row of one revision can be found in the other: every column is new or gone.
      const [addedColumns, removedColumns] = [await columnsOf(definition.right, null), await columnsOf(definition.left, null)];
      return { baseColumns: removedColumns!.columns, headColumns: addedColumns!.columns, schemaChanged: true, addedRows: null, removedRows: null, addedColumns, removedColumns };
    }
    const { plan, counts } = materialized.facts;
    const rowsOf = async (status: 'added' | 'removed') => {
      const subset = await this.rowsWithStatus(materialized, status);
      return this.onFile({ path: subset, format: 'parquet' }, path, async (frame) => viewOf(frame, { columns: await frame.columns(), height: counts[status] }, options));
    };
    const typed = (side: Side) => plan[side].map((c) => `${c.name}\u0000${c.type}`).join('\u0001');
    return {
      baseColumns: plan.left,
      headColumns: plan.right,
      schemaChanged: typed('left') !== typed('right'),
      addedRows: await rowsOf('added'),
      removedRows: await rowsOf('removed'),
      addedColumns: await columnsOf(definition.right, plan.added.map((c) => c.name)),
      removedColumns: await columnsOf(definition.left, plan.removed.map((c) => c.name)),
    };
  }

  private async save(repo: RepoRecord, request: CompareRequest): Promise<Comparison> {
    const definition: ComparisonDefinition = {
      left: await this.pin(repo, request.left),
      right: await this.pin(repo, request.right),
      keys: request.keys,
      targets: request.targets,
      display: request.display,
    };
    // Computed before it is stored: a comparison that cannot be made (a missing column, an unreadable
    // file) is refused and leaves nothing behind.
    const { facts } = await this.materialize(definition);
    await this.meta.putFrameComparison(repo.id, request.compareId, JSON.stringify(definition));
    return { id: request.compareId, definition, ...facts };
  }

  private async pin(repo: RepoRecord, file: ComparedFile): Promise<PinnedFile> {
    const commit = await this.revisions.resolveCommit(repo, file.version);
    const entry = await lookup(this.nodes.forRepo(repo.id), commit.rootId, file.path);
    if (entry?.kind !== 'file') throw new NotFound(`No file ${file.path} at ${file.version}`);
    if (tabularFormatOf(file.path) === null) throw notTabular(file.path);
    return { path: file.path, version: file.version, commitId: commit.id, hash: entry.hash };
  }

  private async frameFileOf(pinned: PinnedFile): Promise<FrameFile> {
    const format = tabularFormatOf(pinned.path);
    if (format === null) throw notTabular(pinned.path);
    return { path: await this.frameFiles.pathOf(pinned.hash), format };
  }

  /** Runs `work` on a file's sandboxed frame; engine refusals become 400s naming the file as `shownAs`. */
  private onFile<T>(file: FrameFile, shownAs: string, work: (frame: Frame) => Promise<T>, readingFile = false): Promise<T> {
    return this.clientErrors(() => this.engine.withFrame(file, work), [{ localPath: file.path, shownAs }], readingFile);
  }

  /** Engine refusals as 400s whose messages name the files as the client knows them, never a server path. */
  private async clientErrors<T>(work: () => Promise<T>, files: Array<{ localPath: string; shownAs: string }>, readingFile = false): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (!(error instanceof FrameQueryError)) throw error;
      const message = files.reduce((text, f) => text.replaceAll(f.localPath, f.shownAs), error.message);
      throw frameClientError(new FrameQueryError(error.kind, message), { readingFile: readingFile || error.kind === 'unreadable' });
    }
  }

  /** The derived frame of a definition and its facts: from the cache, else computed (once at a time per key in this process). */
  private async materialize(definition: ComparisonDefinition): Promise<Materialized> {
    const formats = [definition.left, definition.right].map((f) => tabularFormatOf(f.path));
    const key = hashBuffer(JSON.stringify([RESULT_LAYOUT, definition.left.hash, formats[0], definition.right.hash, formats[1], definition.keys, definition.targets, definition.display]));
    const path = join(this.scratchDir, `${key}.parquet`);
    const cached = await this.cachedFacts(key, path);
    if (cached) return { path, key, facts: cached };
    let build = this.building.get(key);
    if (!build) {
      build = this.build(definition, key, path).finally(() => this.building.delete(key));
      this.building.set(key, build);
    }
    return build;
  }

  private async cachedFacts(key: string, path: string): Promise<ComparisonFacts | null> {
    const text = await readFile(join(this.scratchDir, `${key}.json`), 'utf8').catch(() => null);
    if (text === null || !(await stat(path).catch(() => null))) return null;
    return JSON.parse(text) as ComparisonFacts;
  }

  private async build(definition: ComparisonDefinition, key: string, path: string): Promise<Materialized> {
    const files = { left: await this.frameFileOf(definition.left), right: await this.frameFileOf(definition.right) };
    const sources = { left: frameSourceSql(files.left, { besideAnother: true }), right: frameSourceSql(files.right, { besideAnother: true }) };
    const shown = (side: Side) => ({ localPath: files[side].path, shownAs: `${definition[side].path} at ${definition[side].version}` });

    await mkdir(this.scratchDir, { recursive: true });
    const partial = `${path}.${randomUUID()}.part`;
    // All of it in one DuckDB instance, whose memory limit bounds the whole comparison.
    const db = await this.engine.openDatabase(':memory:');
    try {
      const columnsOf = (side: Side) => this.clientErrors(async () => (await db.rows(`SELECT * FROM ${sources[side]} LIMIT 0`)).columns, [shown(side)], true);
      const plan = planComparison(await columnsOf('left'), await columnsOf('right'), definition);
      const facts = await this.clientErrors(async () => {
        const repeated = { left: await db.rows(duplicateKeysSql(plan.keys, sources.left)), right: await db.rows(duplicateKeysSql(plan.keys, sources.right)) };
        const dupes = { left: Number(repeated.left.rows[0].n), right: Number(repeated.right.rows[0].n) };
        await db.run(`COPY (${comparisonSql(plan, sources, dupes.left + dupes.right > 0)}) TO ${quoteLiteral(partial)} (FORMAT parquet)`);
        const written = `read_parquet(${quoteLiteral(partial)})`;
        const statuses = await db.rows(`SELECT ${quoteIdent(DIFF_STATUS_COLUMN)} AS status, count(*) AS n FROM ${written} GROUP BY 1`);
        const counts = Object.fromEntries(ROW_STATUSES.map((s) => [s, Number(statuses.rows.find((r) => r.status === s)?.n ?? 0)])) as Record<RowStatus, number>;
        const { columns } = await db.rows(`SELECT * FROM ${written} LIMIT 0`);
        return { plan, counts, dupes, columns, height: counts.added + counts.removed + counts.modified };
      }, [shown('left'), shown('right')]);
      await rename(partial, path);
      // The facts are written last: their file says the derived frame beside it is complete.
      const factsPath = join(this.scratchDir, `${key}.json`);
      const partialFacts = `${factsPath}.${randomUUID()}.part`;
      await writeFile(partialFacts, JSON.stringify(facts));
      await rename(partialFacts, factsPath);
      return { path, key, facts };
    } finally {
      db.close();
      await rm(partial, { force: true });
    }
  }

  /** The derived frame's rows of one status as the file they came from has them (cached beside it). */
  private async rowsWithStatus({ path, key, facts }: Materialized, status: 'added' | 'removed'): Promise<string> {
    const subset = join(this.scratchDir, `${key}.${status}.parquet`);
    if (await stat(subset).catch(() => null)) return subset;
    const side = status === 'added' ? 'right' : 'left';
    const own = new Set((status === 'added' ? facts.plan.added : facts.plan.removed).map((c) => c.name));
    // Columns both files have are keys of the default comparison; a column of one file is `name.side`.
    const projection = facts.plan[side].map((c) => (own.has(c.name) ? `${quoteIdent(`${c.name}.${side}`)} AS ${quoteIdent(c.name)}` : quoteIdent(c.name)));
    const partial = `${subset}.${randomUUID()}.part`;
    const db = await this.engine.openDatabase(':memory:');
    try {
      await this.clientErrors(
        () => db.run(`COPY (SELECT ${projection.join(', ')} FROM read_parquet(${quoteLiteral(path)}) WHERE ${quoteIdent(DIFF_STATUS_COLUMN)} = ${quoteLiteral(status)}) TO ${quoteLiteral(partial)} (FORMAT parquet)`),
        [],
      );
      await rename(partial, subset);
      return subset;
    } finally {
      db.close();
      await rm(partial, { force: true });
    }
  }
}
