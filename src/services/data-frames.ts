/**
 * Committed tabular files as data frames (Oxen's `data_frames/…`, `tabular/…` and `schemas/…` routes):
 * a page of a file with Oxen's view options or a client's SQL, the tabular files of a revision and their
 * schemas, indexing a file for queries, and a data frame listing a directory, committed.
 *
 * Files are read where the blob store keeps them (`FrameFiles`), by DuckDB behind `FrameEngine`, one
 * sandbox per file: nothing is loaded whole, so a file larger than memory pages within the engine's limits.
 */
import { createWriteStream, createReadStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BadRequest, Conflict, NotFound, YokeError } from '../core/errors.js';
import { hashBuffer } from '../core/hash.js';
import { joinRepoPath, normalizeRepoPath } from '../core/paths.js';
import { listDir, lookup, walkFiles, type FileEntry, type NodeSource } from '../core/tree.js';
import { duckdbTypeOf, quoteIdent, quoteLiteral, tabularFormatOf } from '../core/tabular.js';
import { InvalidFrameParam, type FrameOptions } from '../core/frame-options.js';
import type { Frame, FrameColumn, FrameEngine, FrameFile, FrameRows } from '../storage/frames/engine.js';
import type { FrameFiles } from '../storage/frames/frame-files.js';
import type { CommitRecord, MetaStore, RepoRecord } from '../storage/meta-store.js';
import type { CommitService } from './commits.js';
import type { FileService } from './files.js';
import type { NodeCache } from './node-cache.js';
import { defaultBranchOf } from './repositories.js';
import type { RevisionResolver } from './revisions.js';
import type { TreeResolver } from './trees.js';
import type { VersionService } from './versions.js';
import { WeightedLru } from './weighted-lru.js';
import { withFrameErrors } from './frame-errors.js';
import { viewOf } from './frame-pages.js';

/** What a file holds, whatever the page: known once per blob (its bytes never change; weight: columns + 1). */
interface SourceFacts {
  columns: FrameColumn[];
  height: number;
}

export interface FrameView {
  commit: CommitRecord;
  resource: { path: string; version: string };
  source: SourceFacts;
  view: { columns: FrameColumn[]; rows: FrameRows['rows']; totalEntries: number };
  options: FrameOptions;
}

export interface TabularFile {
  path: string;
  entry: FileEntry;
  latestCommit: CommitRecord | null;
}

export interface FileSchema {
  path: string;
  columns: FrameColumn[];
}

export interface FromDirectoryRequest {
  output_path?: unknown;
  extra_columns?: unknown;
  commit_message?: unknown;
  user_name?: unknown;
  user_email?: unknown;
  recursive?: unknown;
}

/** Oxen's error for a data frame asked of a file that is not tabular. */
function notTabular(path: string, dataType: string): YokeError {
  return new YokeError(400, 'bad_request', 'Not a tabular file', `${path} is a ${dataType} file, which cannot be read as a data frame`, { type: 'invalid_file_type' });
}

export class DataFrameService {
  private readonly facts = new WeightedLru<SourceFacts>(100_000);

  constructor(
    private readonly meta: MetaStore,
    private readonly nodes: NodeCache,
    private readonly revisions: RevisionResolver,
    private readonly trees: TreeResolver,
    private readonly files: FileService,
    private readonly commits: CommitService,
    private readonly versions: VersionService,
    private readonly engine: FrameEngine,
    private readonly frameFiles: FrameFiles,
    /** Scratch space for files being built (from_directory). */
    private readonly scratchDir: string,
  ) {}

  /** A page of the file at `{rev}/{path}` (or `{workspace}/{path}`) with Oxen's view options applied. */
  async view(repo: RepoRecord, resource: string, options: FrameOptions): Promise<FrameView> {
    const { resolved, entry } = await this.files.findCommitted(repo, resource);
    const file = await this.frameFileOf(resolved.path, entry, options.delimiter);
    return this.onFrame(file, resolved.path, entry.hash, async (frame, source) => ({
      commit: resolved.commit,
      resource: { path: resolved.path, version: resolved.version },
      source,
      view: await viewOf(frame, source, options),
      options,
    }));
  }

  /**
   * Marks the file at `{rev}/{path}` indexed for queries, as Oxen's `data_frames/index` does, by creating
   * the workspace Oxen would query it in (one per commit and path, so a second call finds it and gets
   * Oxen's `dataset_already_indexed`). Yoke needs no index to query a committed file: SQL reads the
   * version file in place.
   */
  async index(repo: RepoRecord, resource: string): Promise<void> {
    const { resolved, entry } = await this.files.findCommitted(repo, resource);
    await this.frameFileOf(resolved.path, entry, null);
    const id = `index-${hashBuffer(`${resolved.commit.id}\u0000${resolved.path}`)}`;
    const branch = resolved.version === resolved.commit.id ? defaultBranchOf(await this.meta.listBranches(repo.id))?.name : resolved.version;
    try {
      await this.meta.createWorkspace(repo.id, { id, name: null, branch: branch ?? 'main', baseCommitId: resolved.commit.id });
    } catch (error) {
      if (!(error instanceof Conflict)) throw error;
      throw new YokeError(400, 'resource_already_exists', 'Dataset is already indexed.', `This dataset ${resolved.path} is already indexed for SQL and NLP querying.`, { type: 'dataset_already_indexed' });
    }
  }

  /** The tabular files of a revision (as the tree types them), by path, with the commits that last changed them. */
  async tabularFiles(repo: RepoRecord, revision: string): Promise<TabularFile[]> {
    const commit = await this.revisions.resolveCommit(repo, revision);
    const found: Array<{ path: string; entry: FileEntry }> = [];
    for await (const file of walkFiles(this.nodes.forRepo(repo.id), commit.rootId)) {
      if (file.entry.dataType === 'tabular') found.push(file);
    }
    const commits = new Map((await this.meta.getCommits(repo.id, [...new Set(found.map((f) => f.entry.lastCommitId))])).map((c) => [c.id, c]));
    return found.map((f) => ({ ...f, latestCommit: commits.get(f.entry.lastCommitId) ?? null }));
  }

  /**
   * Schemas at `{rev}` (every tabular file Yoke can read), or `{rev}/{path}`: that file's (none when it is
   * not tabular), or those of the tabular files below a directory. `{workspace}/{path}` reads the workspace's
   * files as staged.
   */
  async schemas(repo: RepoRecord, resource: string): Promise<{ commit: CommitRecord; resource: { path: string; version: string } | null; schemas: FileSchema[] }> {
    const resolved = await this.trees.resolve(repo, resource);
    const { source } = resolved;
    const at = await lookup(source, resolved.rootId, resolved.path);
    if (!at) throw new NotFound(`Could not find path: ${resolved.path} at ${resolved.version}`);
    const files: Array<{ path: string; entry: FileEntry }> = [];
    if (at.kind === 'file') files.push({ path: resolved.path, entry: at });
    else for await (const file of walkFiles(source, at.id, resolved.path)) if (file.entry.dataType === 'tabular') files.push(file);

    const schemas: FileSchema[] = [];
    for (const { path, entry } of files) {
      const format = tabularFormatOf(path);
      if (format === null) continue;
      const facts = await this.sourceFacts({ path: await this.frameFiles.pathOf(entry.hash), format }, path, entry.hash).catch((error: unknown) => {
        // A file Yoke cannot read has no schema to list (Oxen lists only files it extracted one from).
        if (error instanceof YokeError && error.httpStatus === 400) return null;
        throw error;
      });
      if (facts) schemas.push({ path, columns: facts.columns });
    }
    return { commit: resolved.commit, resource: resolved.path === '' ? null : { path: resolved.path, version: resolved.version }, schemas };
  }

  /**
   * Oxen's `from_directory`: a Parquet file listing the files of the directory at `{branch}/{path}` (one
   * `file_path` column, plus empty `extra_columns`), committed to the branch at `output_path`.
   */
  async fromDirectory(repo: RepoRecord, resource: string, request: FromDirectoryRequest): Promise<CommitRecord> {
    const resolved = await this.revisions.resolve(repo, resource);
    if (!resolved.branch) throw new NotFound(`A data frame is committed to a branch: ${resolved.version} is not one`);
    const plan = fromDirectoryPlan(request);
    const source = this.nodes.forRepo(repo.id);
    const dir = await lookup(source, resolved.commit.rootId, resolved.path);
    if (dir?.kind !== 'dir') throw new BadRequest(`Directory not found: ${resolved.path}`);

    await mkdir(this.scratchDir, { recursive: true });
    const listing = join(this.scratchDir, `listing-${randomUUID()}.jsonl`);
    const output = join(this.scratchDir, `listing-${randomUUID()}.parquet`);
    try {
      // Paths go to a file as they are found (a directory may hold millions), then DuckDB writes the Parquet.
      const files = plan.recursive ? walkFiles(source, dir.id, resolved.path) : directFiles(source, dir.id, resolved.path);
      await pipeline(Readable.from(jsonLines(files)), createWriteStream(listing));
      const extra = plan.extraColumns.map((c) => `CAST(NULL AS ${c.type}) AS ${quoteIdent(c.name)}`);
      const db = await this.engine.openDatabase(':memory:');
      try {
        await withFrameErrors(() =>
          db.run(
            `COPY (SELECT CAST(file_path AS VARCHAR) AS file_path${extra.map((e) => `, ${e}`).join('')} FROM read_json(${quoteLiteral(listing)}, format = 'newline_delimited', columns = {file_path: 'VARCHAR'})) ` +
              `TO ${quoteLiteral(output)} (FORMAT parquet)`,
          ),
        );
      } finally {
        db.close();
      }
      const writes = this.versions.startWrites();
      const blob = await writes.put(createReadStream(output));
      await writes.commit();
      const { commit } = await this.commits.commit({
        repo,
        branch: resolved.branch.name,
        base: resolved.commit,
        changes: new Map([[plan.outputPath, { hash: blob.hash, size: blob.size }]]),
        blobs: [{ hash: blob.hash, size: blob.size }],
        author: plan.author,
        message: plan.message ?? `Data frame of the files in ${resolved.path || '/'}`,
        allowNoChanges: true,
      });
      return commit;
    } finally {
      await rm(listing, { force: true });
      await rm(output, { force: true });
    }
  }

  /** The file as the engine reads it; 400 `invalid_file_type` when its extension names no tabular format. */
  private async frameFileOf(path: string, entry: FileEntry, delimiter: string | null): Promise<FrameFile> {
    const format = tabularFormatOf(path);
    if (format === null) throw notTabular(path, entry.dataType);
    if (delimiter !== null && format !== 'csv' && format !== 'tsv') throw new InvalidFrameParam('delimiter', delimiter, `only csv and tsv files have one, not ${format}`);
    return { path: await this.frameFiles.pathOf(entry.hash), format, ...(delimiter === null ? {} : { delimiter }) };
  }

  /**
   * Runs `work` on the file's frame with what it holds: a file DuckDB cannot read is Oxen's
   * `data_frame_error` (400), and errors name the file by its path in the repository.
   */
  private onFrame<T>(file: FrameFile, repoPath: string, hash: string, work: (frame: Frame, source: SourceFacts) => Promise<T>): Promise<T> {
    const shown = { file: { localPath: file.path, shownAs: repoPath } };
    const reading = (frame: Frame) => withFrameErrors(() => this.factsOf(frame, hash), { ...shown, readingFile: true });
    // Opening the frame reads the file too; what `work` runs is the client's query.
    return withFrameErrors(() => this.engine.withFrame(file, async (frame) => withFrameErrors(async () => work(frame, await reading(frame)), shown)), { ...shown, readingFile: true });
  }

  private async sourceFacts(file: FrameFile, repoPath: string, hash: string): Promise<SourceFacts> {
    return this.onFrame(file, repoPath, hash, async (_frame, source) => source);
  }

  private async factsOf(frame: Frame, hash: string): Promise<SourceFacts> {
    const key = `${hash}\u0000${frame.file.format}\u0000${frame.file.delimiter ?? ''}`;
    const known = this.facts.get(key);
    if (known) return known;
    const facts = { columns: await frame.columns(), height: await frame.count() };
    this.facts.set(key, facts, 1 + facts.columns.length);
    return facts;
  }
}

async function* jsonLines(files: AsyncIterable<{ path: string }>) {
  for await (const { path } of files) yield `${JSON.stringify({ file_path: path })}\n`;
}


/** The files directly inside a directory (Oxen's non-recursive listing). */
async function* directFiles(source: NodeSource, dirId: string, prefix: string) {
  for (const entry of await listDir(source, dirId)) if (entry.kind === 'file') yield { path: joinRepoPath(prefix, entry.name), entry };
}

interface FromDirectoryPlan {
  outputPath: string;
  extraColumns: Array<{ name: string; type: string }>;
  message: string | null;
  author: { name: string; email: string };
  recursive: boolean;
}

function nonEmptyText(name: string, value: unknown): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string') throw new BadRequest(`${name} must be a string`);
  return value;
}

/** The request of `from_directory`, checked; the output is a Parquet file (another extension is replaced, as Oxen does). */
function fromDirectoryPlan(request: FromDirectoryRequest): FromDirectoryPlan {
  const output = nonEmptyText('output_path', request.output_path);
  if (output === null) throw new BadRequest('output_path is required');
  const normalized = normalizeRepoPath(output);
  const dot = normalized.lastIndexOf('.');
  const outputPath = dot > normalized.lastIndexOf('/') ? `${normalized.slice(0, dot)}.parquet` : `${normalized}.parquet`;
  const name = nonEmptyText('user_name', request.user_name);
  const email = nonEmptyText('user_email', request.user_email);
  if (name === null || email === null) throw new BadRequest('user_name and user_email are required (the commit\'s author)');
  if (request.recursive !== undefined && request.recursive !== null && typeof request.recursive !== 'boolean') throw new BadRequest('recursive must be true or false');
  const extra = request.extra_columns ?? [];
  if (!Array.isArray(extra)) throw new BadRequest('extra_columns must be a list of {name, data_type}');
  const seen = new Set(['file_path']);
  const extraColumns = extra.map((column: unknown) => {
    const { name: columnName, data_type: dataType } = (column ?? {}) as { name?: unknown; data_type?: unknown };
    if (typeof columnName !== 'string' || columnName === '' || typeof dataType !== 'string') throw new BadRequest('extra_columns must be a list of {name, data_type}');
    if (seen.has(columnName)) throw new BadRequest(`Column name '${columnName}' appears twice`, { type: 'column_error' });
    seen.add(columnName);
    const type = duckdbTypeOf(dataType);
    if (type === null) throw new BadRequest(`Unknown data_type '${dataType}' of column '${columnName}'`, { type: 'column_error' });
    return { name: columnName, type };
  });
  if (extraColumns.length > 1000) throw new BadRequest('extra_columns: at most 1000 columns');
  return { outputPath, extraColumns, message: nonEmptyText('commit_message', request.commit_message), author: { name, email }, recursive: request.recursive === true };
}
