import type { BlobStore } from '../storage/blob-store.js';
import type { MetaStore } from '../storage/meta-store.js';
import { DEFAULT_VNODE_SIZE } from '../core/tree.js';
import { BranchService } from './branches.js';
import { CommitLog } from './commit-log.js';
import { CommitService } from './commits.js';
import { DirectoryService } from './directories.js';
import { FileService } from './files.js';
import { HistoryService } from './history.js';
import { MergeService } from './merge.js';
import { NodeCache } from './node-cache.js';
import { RepositoryService } from './repositories.js';
import { RevisionResolver } from './revisions.js';
import { DEFAULT_UPLOAD_OPTIONS, UploadService, type UploadOptions } from './uploads.js';
import { OxenTreeService } from './oxen-tree.js';
import { TreeResolver } from './trees.js';
import { WorkspaceService } from './workspaces.js';
import { SyncService } from './sync.js';
import { VersionService } from './versions.js';
import { AuthService } from './auth.js';
import { FsckService } from './fsck.js';
import { GarbageCollector } from './gc.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameEngine, type FrameEngineOptions } from '../storage/frames/engine.js';
import { FrameFiles } from '../storage/frames/frame-files.js';
import { DataFrameService } from './data-frames.js';
import { WorkspaceFrameService } from './workspace-frames.js';
import { FrameCompareService } from './frame-compare.js';

export interface YokeOptions {
  /** Entries per vnode the trees Yoke builds aim for (tests lower it). */
  vnodeSize?: number;
  /** Limits and expiry of uploads that arrive in parts. */
  uploads?: Partial<UploadOptions>;
  /**
   * Data frames (DuckDB): where spill files, copies of remote blobs and workspace frame caches go, and the
   * per-query limits. Default scratch: a directory of this process under the system's temporary directory.
   */
  frames?: Partial<FrameEngineOptions>;
}

/** The application layer: every service, wired to one metadata store and one blob store. */
export class Yoke {
  readonly nodes: NodeCache;
  readonly repos: RepositoryService;
  readonly revisions: RevisionResolver;
  readonly branches: BranchService;
  readonly commits: CommitService;
  readonly history: HistoryService;
  /** The commits the `commits/…` routes and the sync downloads list. */
  readonly commitLog: CommitLog;
  readonly uploads: UploadService;
  /** Content blobs as repositories hold them: stored, recorded, read and batch-downloaded. */
  readonly versions: VersionService;
  readonly workspaces: WorkspaceService;
  readonly merges: MergeService;
  readonly trees: TreeResolver;
  /** Files on a branch: upload, delete and move as commits; committed files found for reading. */
  readonly files: FileService;
  /** Directory listings and single entries, dated by their latest commits. */
  readonly dirs: DirectoryService;
  /** Yoke's trees as Oxen's node records (the `tree/…` routes). */
  readonly oxenTree: OxenTreeService;
  /** Oxen's push, clone, pull and fetch. */
  readonly sync: SyncService;
  /** Tokens and access decisions. */
  readonly auth: AuthService;
  /** Integrity checks (`yoke fsck`) and garbage collection (`yoke gc`). */
  readonly fsck: FsckService;
  readonly gc: GarbageCollector;
  /** DuckDB, sandboxed per file (storage/frames): used by the data-frame services only. */
  readonly frameEngine: FrameEngine;
  /** Version files as local paths the frame engine reads in place. */
  readonly frameFiles: FrameFiles;
  /** Committed tabular files as data frames: pages, SQL, schemas, indexing, directory listings. */
  readonly dataFrames: DataFrameService;
  /** Workspace data frames: indexed for editing, edited by rows and columns, committed with their workspace. */
  readonly workspaceFrames: WorkspaceFrameService;
  /** Comparisons of data frames row by row (compare/data_frames), and tabular file diffs. */
  readonly frameCompare: FrameCompareService;

  constructor(
    /** The stores themselves: for tests, benchmarks and closing. Routes reach them only through the services (test/core/layers.test.ts). */
    readonly meta: MetaStore,
    readonly blobs: BlobStore,
    options: YokeOptions = {},
  ) {
    this.nodes = new NodeCache(meta);
    const frameScratch = options.frames?.scratchDir ?? join(tmpdir(), `yoke-frames-${process.pid}`);
    this.frameEngine = new FrameEngine({ ...options.frames, scratchDir: frameScratch });
    this.frameFiles = new FrameFiles(blobs, frameScratch);
    this.revisions = new RevisionResolver(meta);
    const vnodeSize = options.vnodeSize ?? DEFAULT_VNODE_SIZE;
    this.commits = new CommitService(meta, this.nodes, vnodeSize);
    this.repos = new RepositoryService(meta, blobs, this.commits);
    this.history = new HistoryService(meta, this.nodes);
    this.versions = new VersionService(meta, blobs);
    this.uploads = new UploadService(meta, blobs, { ...DEFAULT_UPLOAD_OPTIONS, ...options.uploads });
    this.workspaces = new WorkspaceService(meta, this.nodes, this.commits, vnodeSize);
    this.trees = new TreeResolver(meta, this.nodes, this.revisions, this.workspaces);
    this.files = new FileService(this.nodes, this.trees, this.commits);
    this.dirs = new DirectoryService(meta, this.trees);
    this.oxenTree = new OxenTreeService(meta, this.nodes);
    this.sync = new SyncService(meta, this.nodes);
    this.auth = new AuthService(meta);
    this.fsck = new FsckService(meta, blobs);
    this.gc = new GarbageCollector(meta, blobs, this.uploads);
    this.merges = new MergeService(meta, blobs, this.nodes, this.revisions, this.commits);
    this.commitLog = new CommitLog(meta, this.revisions, this.history, this.merges);
    this.branches = new BranchService(meta, this.history, this.sync, this.merges);
    this.dataFrames = new DataFrameService(meta, this.nodes, this.revisions, this.trees, this.files, this.commits, this.versions, this.frameEngine, this.frameFiles, join(frameScratch, 'build'));
    this.workspaceFrames = new WorkspaceFrameService(meta, this.workspaces, this.dataFrames, this.versions, this.frameEngine, this.frameFiles, join(frameScratch, 'workspaces'));
    this.workspaces.attachFrames(this.workspaceFrames);
    this.frameCompare = new FrameCompareService(meta, this.nodes, this.revisions, this.frameEngine, this.frameFiles, join(frameScratch, 'compare'));
  }

  async close(): Promise<void> {
    await this.workspaceFrames.close();
    await this.frameEngine.close();
    await this.meta.close();
    await this.blobs.close();
  }
}
