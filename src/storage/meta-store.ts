/** Records and the metadata-store interface every backend (SQLite, PostgreSQL) implements. */
import type { CommitFields } from '../core/tree.js';
import type { HashFrontier, StagedPart } from './blob-store.js';

export interface RepoRecord {
  id: string;
  namespace: string;
  name: string;
  description: string | null;
  creatorName: string | null;
  creatorEmail: string | null;
  createdAt: string;
}

export interface BranchRecord {
  name: string;
  commitId: string;
  createdAt: string;
  updatedAt: string;
}

/** A commit: its node's fields (`timestamp` RFC 3339 UTC with milliseconds), its root and its place in history. */
export interface CommitRecord extends CommitFields {
  /** Id of the root directory node. */
  rootId: string;
  /** 1 + the highest parent generation; a root commit has generation 1. Orders history. */
  generation: number;
}

export interface NewRepo {
  namespace: string;
  name: string;
  description: string | null;
  creatorName: string | null;
  creatorEmail: string | null;
}

export interface Page {
  offset: number;
  limit: number;
}

/** Everything one commit writes, applied atomically by `landCommit`. */
export interface CommitLanding {
  nodes: Array<[id: string, bytes: Uint8Array]>;
  commit: CommitRecord;
  blobs: Array<{ hash: string; size: number }>;
  branch: string;
  /** Current head the branch must still point at; null means the branch must not exist yet. */
  expectedHead: string | null;
}

/** An upload that arrives in parts: `commits/upload_chunk` ('chunked') or `versions/{hash}/chunks` ('version'). */
export interface UploadRecord {
  id: string;
  repoId: string;
  kind: 'chunked' | 'version';
  /** The client's name for the upload: the `hash` query parameter, or the version hash. */
  key: string;
  /** What the client declared, when it did: totals, compression, file name. */
  totalSize: number | null;
  totalChunks: number | null;
  details: Record<string, unknown>;
  /** 'open' accepts parts; 'assembling' is held by exactly one request. */
  state: 'open' | 'assembling';
  createdAt: string;
  updatedAt: string;
}

/** A stored part of an upload (see `StagedPart`: number, offset, size, the blob store's tag). */
export type UploadPart = StagedPart;

/**
 * How far an upload's bytes are hashed, in order from byte 0, so that completing it reads only the rest,
 * in whichever process completes it. `generation` changes whenever the frontier is reset (a part below
 * it, or below what is being read, was written again); an advance must name the generation it read.
 */
export interface UploadFrontier {
  through: number;
  state: Uint8Array | null;
  readingTo: number;
  generation: number;
}

export interface NewUpload {
  totalSize: number | null;
  totalChunks: number | null;
  details: Record<string, unknown>;
}

/** A server-side staging area pinned to a base commit of a branch. */
export interface WorkspaceRecord {
  /** The store's own key for the workspace; the methods below take it. */
  uid: string;
  /** Chosen by the client (Oxen's `workspace_id`), unique in the repository. */
  id: string;
  repoId: string;
  /** Optional unique name; a named workspace survives its commits. */
  name: string | null;
  branch: string;
  baseCommitId: string;
  createdAt: string;
  updatedAt: string;
}

/** One staged path: new content (hash and size), or a removal (`hash` null). */
export interface StagedChange {
  path: string;
  hash: string | null;
  size: number;
}

/** One operation of a workspace data frame's edit log: its number (1, 2, …) and the operation as JSON text. */
export interface FrameOpRecord {
  seq: number;
  op: string;
}

/** A workspace data frame that has an edit log: its path and the number of its last operation. */
export interface FrameLogHead {
  path: string;
  seq: number;
}

/**
 * A stored comparison of two data frames (`compare/data_frames`), by its client-chosen id in a repository.
 * The definition is JSON text owned by services/frame-compare.ts; its results are derived from it.
 */
export interface FrameComparisonRecord {
  id: string;
  definition: string;
  createdAt: string;
  updatedAt: string;
}

/** An access token; the secret itself is never stored, only its hash. */
export interface TokenRecord {
  id: string;
  name: string;
  email: string;
  /** Scopes as written: `read`, `write:ns`, `admin:ns/repo`… */
  scopes: string[];
  /** SHA-256 of the secret, hex. */
  secretHash: string;
  createdAt: string;
  /** ISO time after which the token no longer works; null: never. */
  expiresAt: string | null;
}

export interface MetaStore {
  createRepo(repo: NewRepo): Promise<RepoRecord>;
  getRepo(namespace: string, name: string): Promise<RepoRecord | null>;
  listRepos(namespace: string): Promise<RepoRecord[]>;
  listNamespaces(): Promise<string[]>;
  deleteRepo(repoId: string): Promise<void>;
  /** Moves a repository (everything it holds) to another namespace; false if the name is taken there. */
  moveRepo(repoId: string, namespace: string): Promise<boolean>;

  listBranches(repoId: string): Promise<BranchRecord[]>;
  /** Branches among `names` that exist (used to resolve `{branch}/{path}` by prefix). */
  findBranches(repoId: string, names: string[]): Promise<BranchRecord[]>;
  /** Creates a branch; false if the name is taken. */
  createBranch(repoId: string, name: string, commitId: string): Promise<boolean>;
  /** Moves a branch only if it still points at `expected` (null: creates it only if absent). */
  compareAndSwapBranch(repoId: string, name: string, expected: string | null, next: string): Promise<boolean>;
  deleteBranch(repoId: string, name: string): Promise<boolean>;

  getCommit(repoId: string, id: string): Promise<CommitRecord | null>;
  getCommits(repoId: string, ids: string[]): Promise<CommitRecord[]>;
  /** `head` and its ancestors, newest first (generation, then timestamp). */
  listAncestors(repoId: string, head: string, page: Page): Promise<CommitRecord[]>;
  countAncestors(repoId: string, head: string): Promise<number>;
  isAncestor(repoId: string, ancestor: string, descendant: string): Promise<boolean>;
  listAllCommits(repoId: string, page: Page): Promise<CommitRecord[]>;
  countAllCommits(repoId: string): Promise<number>;
  /** Commits with no parents, oldest first. */
  listRootCommits(repoId: string): Promise<CommitRecord[]>;

  getNode(repoId: string, id: string): Promise<Uint8Array | null>;
  /** The stored bytes of those of `ids` the repository holds, in one read (tree walks ask a level at a time). */
  getNodes(repoId: string, ids: string[]): Promise<Map<string, Uint8Array>>;
  /** Which of `ids` the repository holds as nodes. */
  hasNodes(repoId: string, ids: string[]): Promise<Set<string>>;
  /**
   * Stores node records (stored form by id); ids already present keep their bytes and count as stored
   * now (as in `landCommit`): gc's grace period protects a row a new record shares with garbage.
   */
  putNodes(repoId: string, nodes: Array<[id: string, bytes: Uint8Array]>): Promise<void>;
  /** Marks pushed commits as completely sent (Oxen's client sends a commit's dir_hashes last), or (false) no longer so. */
  markCommitsReceived(repoId: string, ids: string[], received?: boolean): Promise<void>;
  /** Which of `ids` were marked as completely sent. */
  findReceivedCommits(repoId: string, ids: string[]): Promise<Set<string>>;
  /** Records commits whose nodes are stored (a client's push), parents before children; present ones are left as they are. */
  addCommits(repoId: string, commits: CommitRecord[]): Promise<void>;

  // Garbage collection. Nodes and commits remember when they were stored (ms since the epoch), so
  // that what a push or commit under way has stored but not yet made reachable survives a grace period.
  /** Ids of the nodes stored before `storedBefore`, in id order after `after` (null: from the start), at most `limit`. */
  listNodeIds(repoId: string, storedBefore: number, after: string | null, limit: number): Promise<string[]>;
  /** Deletes those of `ids` stored before `storedBefore`; returns how many went. */
  deleteNodes(repoId: string, ids: string[], storedBefore: number): Promise<number>;
  /** Ids of the commits stored at or after `since`. */
  listCommitsStoredSince(repoId: string, since: number): Promise<string[]>;
  /** Deletes those of `ids` stored before `storedBefore`, with their parent links and received marks; returns the ids deleted. */
  deleteCommits(repoId: string, ids: string[], storedBefore: number): Promise<string[]>;
  /** Forgets these blobs in every repository (they are leaving the blob store). */
  forgetBlobs(hashes: string[]): Promise<void>;

  /** Records that a repository holds these blobs (uploaded or committed). Idempotent. */
  addRepoBlobs(repoId: string, blobs: Array<{ hash: string; size: number }>): Promise<void>;
  /** Size of each of `hashes` the repository holds; absent hashes are missing from the map. */
  findRepoBlobs(repoId: string, hashes: string[]): Promise<Map<string, number>>;
  /** Writes nodes, blob references and the commit, then moves the branch by CAS — all or nothing. */
  landCommit(repoId: string, landing: CommitLanding): Promise<boolean>;

  /** The open upload with this key, created with `init` if there is none. */
  openUpload(repoId: string, kind: UploadRecord['kind'], key: string, init: NewUpload): Promise<UploadRecord>;
  getUpload(repoId: string, kind: UploadRecord['kind'], key: string): Promise<UploadRecord | null>;
  /**
   * Replaces an open upload's declared size and details with what `change` derives from its current
   * row, atomically (two concurrent changes both apply). Null if the upload is gone or not open.
   */
  updateUpload(uploadId: string, change: (upload: UploadRecord) => Pick<UploadRecord, 'totalSize' | 'details'>): Promise<UploadRecord | null>;
  /**
   * Announces that `writer` (one request, named `<host>:<pid>:<id>`) is about to store part `part`:
   * 'begun', or 'busy' while another writer has it under way (one `abandoned` says is gone is taken over),
   * or 'closed' when the upload is gone or being assembled. Writing a part again, or at an offset below
   * what the frontier covers or is reading, resets the frontier.
   */
  beginUploadPart(uploadId: string, part: number, offset: number | null, writer: string, abandoned: (writer: string) => boolean): Promise<'begun' | 'busy' | 'closed'>;
  /** Records the part `writer` stored and marks the upload as active; false if the upload is gone or the writer lost the part. */
  recordUploadPart(uploadId: string, stored: UploadPart, writer: string): Promise<boolean>;
  /** Withdraws a write that failed; what the part held before is forgotten too (an in-place write may have overwritten it). */
  abandonUploadPart(uploadId: string, part: number, writer: string): Promise<void>;
  /** Stored parts (none under way), by part number. */
  listUploadParts(uploadId: string): Promise<UploadPart[]>;
  getUploadFrontier(uploadId: string): Promise<UploadFrontier | null>;
  /** Marks bytes [through, readingTo) as being hashed; false if the frontier is no longer at (generation, through). */
  reserveUploadFrontier(uploadId: string, generation: number, through: number, readingTo: number): Promise<boolean>;
  /** Moves the frontier from `through` (reserved up to `next.through`) to `next`; false if it changed meanwhile. */
  advanceUploadFrontier(uploadId: string, generation: number, through: number, next: HashFrontier): Promise<boolean>;
  /**
   * Moves an upload from 'open' to 'assembling' on behalf of `claimant` (a process); false if another
   * request holds it or a part is still being written (writes `abandoned` says are gone are withdrawn).
   */
  claimUpload(uploadId: string, claimant: string, abandoned: (writer: string) => boolean): Promise<boolean>;
  /** Returns to 'open' the uploads being assembled by claimants `abandoned` says are gone (a process killed mid-assembly). */
  releaseAbandonedUploads(abandoned: (claimant: string) => boolean): Promise<number>;
  /** Returns a claimed upload to 'open' (assembly failed for a reason the client can fix by resending). */
  releaseUpload(uploadId: string): Promise<void>;
  deleteUpload(uploadId: string): Promise<void>;
  /** Uploads not touched since `before` (ISO time), for expiry. */
  listUploadsIdleSince(before: string): Promise<UploadRecord[]>;

  /** Creates a workspace; Conflict (409) if its id or name is taken in the repository. */
  createWorkspace(repoId: string, workspace: { id: string; name: string | null; branch: string; baseCommitId: string }): Promise<WorkspaceRecord>;
  /** By id, or else by name. */
  getWorkspace(repoId: string, idOrName: string): Promise<WorkspaceRecord | null>;
  listWorkspaces(repoId: string, name?: string): Promise<WorkspaceRecord[]>;
  /** Deletes a workspace and everything staged in it. */
  deleteWorkspace(uid: string): Promise<boolean>;
  deleteAllWorkspaces(repoId: string): Promise<number>;
  /** Stages changes (replacing earlier ones for the same paths) in one transaction. */
  stageChanges(uid: string, changes: StagedChange[]): Promise<void>;
  /** Unstages `path` and everything below it; returns how many staged paths were dropped. */
  unstage(uid: string, path: string): Promise<number>;
  /** Staged changes sorted by path, optionally only `prefix` and below. */
  listStagedChanges(uid: string, options?: { prefix?: string }): Promise<StagedChange[]>;
  /**
   * After a commit of `committed`: moves the workspace to `baseCommitId` and drops exactly the
   * staged changes that were committed (changes staged meanwhile stay).
   */
  advanceWorkspace(uid: string, baseCommitId: string, committed: StagedChange[]): Promise<void>;

  // Workspace data frames: per (workspace, path) an append-only log of edit operations, the truth every
  // process rebuilds its frame caches from (services/workspace-frames.ts). Deleted with the workspace.
  /**
   * Appends `op` as number `expectedSeq + 1` if the log's last operation is still `expectedSeq` (0: no log
   * yet); false if another append came first. NotFound if the workspace is gone.
   */
  appendFrameOp(uid: string, path: string, expectedSeq: number, op: string): Promise<boolean>;
  /** Operations numbered above `afterSeq`, in order, at most `limit`. */
  listFrameOps(uid: string, path: string, afterSeq: number, limit: number): Promise<FrameOpRecord[]>;
  /** The workspace's data frames that have a log, by path. */
  listFrameLogs(uid: string): Promise<FrameLogHead[]>;
  /** Deletes the log of `path`; with `throughSeq`, only while its last operation is still that one. False if nothing went. */
  deleteFrameLog(uid: string, path: string, throughSeq?: number): Promise<boolean>;
  /** Moves the log of `from` to `to`; false if `from` has none or `to` has one. */
  renameFrameLog(uid: string, from: string, to: string): Promise<boolean>;

  // Data frame comparisons: one definition per (repository, id), deleted with the repository.
  /** Creates the comparison `id`, or replaces its definition (keeping when it was created). */
  putFrameComparison(repoId: string, id: string, definition: string): Promise<FrameComparisonRecord>;
  getFrameComparison(repoId: string, id: string): Promise<FrameComparisonRecord | null>;
  /** False if there was no such comparison. */
  deleteFrameComparison(repoId: string, id: string): Promise<boolean>;

  createToken(token: TokenRecord): Promise<void>;
  /** The token whose secret hashes to `secretHash`, or null (unknown or revoked). */
  findTokenBySecret(secretHash: string): Promise<TokenRecord | null>;
  /** The token with this id, or null (unknown or revoked). */
  findToken(id: string): Promise<TokenRecord | null>;
  /** Every token, oldest first. */
  listTokens(): Promise<TokenRecord[]>;
  /** Revokes (deletes) a token; false if there is none with that id. */
  deleteToken(id: string): Promise<boolean>;

  close(): Promise<void>;
}
