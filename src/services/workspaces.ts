import { BadRequest, NotFound, shown, Unprocessable } from '../core/errors.js';
import { assertBranchName } from '../core/names.js';
import { ancestors, normalizeRepoPath } from '../core/paths.js';
import { applyChanges, decodeRecord, lookup, lookupMany, overlaySource, UNCOMMITTED, type ChangeSet, type Entry, type NodeSource, type TreeNode } from '../core/tree.js';
import type { CommitRecord, MetaStore, RepoRecord, StagedChange, WorkspaceRecord } from '../storage/meta-store.js';
import type { Author, CommitService } from './commits.js';
import { commitsBetween } from './history.js';
import type { NodeCache } from './node-cache.js';

export type ChangeStatus = 'added' | 'modified' | 'removed';

export interface ClassifiedChange extends StagedChange {
  status: ChangeStatus;
}

/** What a workspace looks like: its base tree with the staged changes applied (nothing stored). */
export interface WorkspaceView {
  base: CommitRecord;
  rootId: string;
  source: NodeSource;
}

/** A workspace's edited data frames, as changes (services/workspace-frames.ts). */
export interface WorkspaceFrameChanges {
  /** The frames with edits: each path with its file's hash and size before them. */
  edited(workspace: WorkspaceRecord): Promise<StagedChange[]>;
  /** Writes each edited frame as a new blob in its format: the changes to commit, and what to call once they are. */
  export(workspace: WorkspaceRecord): Promise<{ changes: StagedChange[]; committed(): Promise<void> }>;
  /** Drops the edits of the frames at `path` and below; answers how many. */
  discard(workspace: WorkspaceRecord, path: string): Promise<number>;
  /** Lets go of this process's copies of a deleted workspace's frames. */
  forget(uid: string): Promise<void>;
}

const NO_FRAMES: WorkspaceFrameChanges = {
  edited: async () => [],
  export: async () => ({ changes: [], committed: async () => undefined }),
  discard: async () => 0,
  forget: async () => undefined,
};

/** `changes` with `frames` in place of what is staged at the same paths. */
function withFrames(changes: StagedChange[], frames: StagedChange[]): StagedChange[] {
  const framePaths = new Set(frames.map((f) => f.path));
  return [...changes.filter((c) => !framePaths.has(c.path)), ...frames].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

const SYSTEM_AUTHOR: Author = { name: 'Yoke', email: 'yoke@localhost' };
const WORKSPACE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

function changeSet(changes: StagedChange[]): ChangeSet {
  return new Map(changes.map((c) => [c.path, c.hash === null ? null : { hash: c.hash, size: c.size }]));
}

/**
 * Server-side staging areas (Oxen workspaces). A workspace is pinned to a base commit of a branch;
 * staged changes live in the metadata store (so they survive restarts and any server process can
 * take any request); committing goes through the same CommitService path as `PUT …/file`.
 */
export class WorkspaceService {
  private frames: WorkspaceFrameChanges = NO_FRAMES;

  constructor(
    private readonly meta: MetaStore,
    private readonly nodes: NodeCache,
    private readonly commits: CommitService,
    private readonly vnodeSize: number,
  ) {}

  /** Makes edited data frames part of the workspace's changes (their service is built after this one). */
  attachFrames(frames: WorkspaceFrameChanges): void {
    this.frames = frames;
  }

  /** Finds the workspace by id (or by name), or creates it on the branch's head. */
  async getOrCreate(repo: RepoRecord, request: { id: unknown; branch: unknown; name?: unknown }): Promise<{ workspace: WorkspaceRecord; created: boolean }> {
    if (typeof request.id !== 'string' || !WORKSPACE_ID.test(request.id)) {
      throw new BadRequest(`Invalid workspace_id '${shown(request.id)}': expected up to 128 of [A-Za-z0-9_.-]`);
    }
    const name = request.name === undefined || request.name === null || request.name === '' ? null : request.name;
    if (name !== null && (typeof name !== 'string' || !WORKSPACE_ID.test(name))) throw new BadRequest(`Invalid workspace name '${shown(name)}'`);
    const branch = assertBranchName(request.branch);
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = (await this.meta.getWorkspace(repo.id, request.id)) ?? (name ? await this.meta.getWorkspace(repo.id, name) : null);
      if (existing) return { workspace: existing, created: false };
      const head = await this.branchHead(repo, branch);
      try {
        const workspace = await this.meta.createWorkspace(repo.id, { id: request.id, name, branch, baseCommitId: head.id });
        return { workspace, created: true };
      } catch (err) {
        // Another request created it (or took the name) meanwhile: answer with that one.
        if ((err as { httpStatus?: number }).httpStatus !== 409) throw err;
      }
    }
    throw new Error(`Could not get or create workspace ${request.id}`);
  }

  /** The branch's head; an empty repository gets the branch with an empty initial commit (as Oxen does). */
  private async branchHead(repo: RepoRecord, branch: string): Promise<CommitRecord> {
    const [found] = await this.meta.findBranches(repo.id, [branch]);
    if (found) return (await this.meta.getCommit(repo.id, found.commitId))!;
    if ((await this.meta.listBranches(repo.id)).length > 0) throw new NotFound(`Branch '${branch}' not found`);
    const author = repo.creatorName && repo.creatorEmail ? { name: repo.creatorName, email: repo.creatorEmail } : SYSTEM_AUTHOR;
    try {
      const { commit } = await this.commits.commit({ repo, branch, base: null, changes: new Map(), blobs: [], author, message: 'Initial commit' });
      return commit;
    } catch (err) {
      // A concurrent request created the branch first: use its head.
      const [now] = await this.meta.findBranches(repo.id, [branch]);
      if (now) return (await this.meta.getCommit(repo.id, now.commitId))!;
      throw err;
    }
  }

  async require(repo: RepoRecord, idOrName: string): Promise<WorkspaceRecord> {
    const workspace = await this.meta.getWorkspace(repo.id, idOrName);
    if (!workspace) throw new NotFound(`Workspace not found: ${idOrName}`);
    return workspace;
  }

  /** The repository's workspaces, or only the one named `name`. */
  list(repo: RepoRecord, name?: string): Promise<WorkspaceRecord[]> {
    return this.meta.listWorkspaces(repo.id, name);
  }

  /** Deletes a workspace and everything staged in it. */
  async delete(workspace: WorkspaceRecord): Promise<void> {
    await this.meta.deleteWorkspace(workspace.uid);
    await this.frames.forget(workspace.uid);
  }

  /** Deletes every workspace of the repository; answers how many there were. */
  async deleteAll(repo: RepoRecord): Promise<number> {
    const workspaces = await this.meta.listWorkspaces(repo.id);
    const deleted = await this.meta.deleteAllWorkspaces(repo.id);
    for (const workspace of workspaces) await this.frames.forget(workspace.uid);
    return deleted;
  }

  async baseCommit(workspace: WorkspaceRecord): Promise<CommitRecord> {
    const commit = await this.meta.getCommit(workspace.repoId, workspace.baseCommitId);
    if (!commit) throw new Error(`Workspace ${workspace.id} points at missing commit ${workspace.baseCommitId}`);
    return commit;
  }

  /** The workspace's tree: base plus staged changes, computed in memory. */
  async view(workspace: WorkspaceRecord): Promise<WorkspaceView> {
    const base = await this.baseCommit(workspace);
    const stored = this.nodes.forRepo(workspace.repoId);
    const changes = await this.meta.listStagedChanges(workspace.uid);
    if (changes.length === 0) return { base, rootId: base.rootId, source: stored };
    const applied = await applyChanges(stored, base.rootId, changeSet(changes), { commitId: UNCOMMITTED, vnodeSize: this.vnodeSize });
    const decoded = new Map<string, TreeNode>();
    const source = overlaySource(stored, (id) => {
      const record = applied.records.get(id);
      if (!record) return undefined;
      let node = decoded.get(id);
      if (!node) decoded.set(id, (node = decodeRecord(id, record.node, record.children)));
      return node;
    });
    return { base, rootId: applied.rootId, source };
  }

  async entryAt(workspace: WorkspaceRecord, path: string): Promise<Entry | null> {
    const view = await this.view(workspace);
    return lookup(view.source, view.rootId, path);
  }

  /** Whether the workspace's base commit has something at `path`. */
  async baseHas(workspace: WorkspaceRecord, path: string): Promise<boolean> {
    const base = await this.baseCommit(workspace);
    return (await lookup(this.nodes.forRepo(workspace.repoId), base.rootId, path)) !== null;
  }

  /** Stages new contents; each path is validated against the workspace's tree before anything is staged. */
  async stageFiles(workspace: WorkspaceRecord, files: Array<{ path: string; hash: string; size: number }>): Promise<void> {
    const changes = files.map((f) => ({ path: f.path, hash: f.hash, size: f.size }));
    await this.assertApplicable(workspace, changes);
    await this.meta.stageChanges(workspace.uid, changes);
  }

  /** Records uploaded blobs as held by the repository, then stages them as `stageFiles` does. */
  async stageUploads(workspace: WorkspaceRecord, files: Array<{ path: string; hash: string; size: number }>): Promise<void> {
    await this.meta.addRepoBlobs(workspace.repoId, files);
    await this.stageFiles(workspace, files);
  }

  /** Stages removals of existing files or directories; returns the paths that were not there. */
  async stageRemovals(workspace: WorkspaceRecord, rawPaths: string[]): Promise<{ removed: string[]; missing: string[] }> {
    const paths = rawPaths.map((p) => normalizeRepoPath(p));
    const view = await this.view(workspace);
    const removed: string[] = [];
    const missing: string[] = [];
    const found = await lookupMany(view.source, paths.map((path) => ({ rootId: view.rootId, path })));
    paths.forEach((path, i) => (found[i] ? removed : missing).push(path));
    await this.meta.stageChanges(workspace.uid, removed.map((path) => ({ path, hash: null, size: 0 })));
    return { removed, missing };
  }

  /** Stages a move of a file: removal of `from`, addition of its content at `to`. */
  async stageMove(workspace: WorkspaceRecord, from: string, rawTo: unknown): Promise<string> {
    if (typeof rawTo !== 'string' || rawTo.trim() === '') throw new BadRequest('new_path is required');
    const to = normalizeRepoPath(rawTo);
    const view = await this.view(workspace);
    const entry = await lookup(view.source, view.rootId, from);
    if (!entry) throw new NotFound(`Could not find path: ${from}`);
    if (entry.kind !== 'file') throw new BadRequest(`Only files can be moved: ${from} is a directory`);
    if (await lookup(view.source, view.rootId, to)) throw new BadRequest(`new_path already exists: ${to}`);
    const changes = [
      { path: from, hash: null, size: 0 },
      { path: to, hash: entry.hash, size: entry.size },
    ];
    await this.assertApplicable(workspace, changes);
    await this.meta.stageChanges(workspace.uid, changes);
    return to;
  }

  /** Refuses (400) a file at `path` that would collide with the workspace's tree, before its bytes are sent. */
  async assertCanStageFile(workspace: WorkspaceRecord, path: string): Promise<void> {
    // The content is not known yet; any file leaf shows whether the path itself fits.
    await this.assertApplicable(workspace, [{ path, hash: '0', size: 0 }]);
  }

  /** Refuses (400) changes that collide with the workspace's tree, e.g. a file under a file. */
  private async assertApplicable(workspace: WorkspaceRecord, changes: StagedChange[]): Promise<void> {
    const view = await this.view(workspace);
    await applyChanges(view.source, view.rootId, changeSet(changes), { commitId: UNCOMMITTED, vnodeSize: this.vnodeSize });
  }

  /** Unstages `path` and below, edits of data frames there included; answers how many paths. */
  async unstage(workspace: WorkspaceRecord, path: string): Promise<number> {
    return (await this.meta.unstage(workspace.uid, path)) + (await this.frames.discard(workspace, path));
  }

  /**
   * Staged changes (under `prefix`), each classified against the base tree, and the directories
   * that the additions create (absent from the base) with how many added files each holds.
   */
  async status(workspace: WorkspaceRecord, prefix = ''): Promise<{ changes: ClassifiedChange[]; newDirs: Map<string, number> }> {
    const base = await this.baseCommit(workspace);
    const source = this.nodes.forRepo(workspace.repoId);
    const changes: ClassifiedChange[] = [];
    const newDirs = new Map<string, number>();
    const under = (path: string) => prefix === '' || path === prefix || path.startsWith(`${prefix}/`);
    const frames = (await this.frames.edited(workspace)).filter((f) => under(f.path));
    const staged = withFrames(await this.meta.listStagedChanges(workspace.uid, { prefix: prefix || undefined }), frames);
    const framePaths = new Set(frames.map((f) => f.path));
    // The base's entry at every staged path, then at every directory above an addition, each set looked up together.
    const at = async (paths: string[]) => lookupMany(source, paths.map((path) => ({ rootId: base.rootId, path })));
    const entries = await at(staged.map((c) => c.path));
    const added: StagedChange[] = [];
    staged.forEach((change, i) => {
      const before = entries[i];
      if (change.hash === null) {
        if (before) changes.push({ ...change, status: 'removed' });
      } else if (!before || before.kind !== 'file') {
        changes.push({ ...change, status: 'added' });
        added.push(change);
      } else if (before.hash !== change.hash || framePaths.has(change.path)) {
        // An edited data frame is modified whatever the hash it shows (its file's, until it is committed).
        changes.push({ ...change, status: 'modified' });
      }
    });
    const dirs = [...new Set(added.flatMap((c) => ancestors(c.path)))];
    const dirExists = new Map((await at(dirs)).map((entry, i) => [dirs[i], entry?.kind === 'dir']));
    for (const change of added) {
      for (const dir of ancestors(change.path)) if (!dirExists.get(dir)) newDirs.set(dir, (newDirs.get(dir) ?? 0) + 1);
    }
    return { changes, newDirs };
  }

  /** Whether the workspace can be committed onto `branch`, the conflicting paths, and the commits it would be applied on top of. */
  async mergeability(workspace: WorkspaceRecord, branch: string) {
    const base = await this.baseCommit(workspace);
    const head = await this.headOf(workspace, branch);
    const staged = withFrames(await this.meta.listStagedChanges(workspace.uid), await this.frames.edited(workspace));
    const conflicts = head.id === base.id ? [] : await this.commits.changedPaths(workspace.repoId, base, head, staged.map((c) => c.path));
    const ahead = head.id === base.id ? [] : await commitsBetween(this.meta, workspace.repoId, base, head);
    return { isMergeable: conflicts.length === 0, conflicts, commits: ahead };
  }

  private async headOf(workspace: WorkspaceRecord, branch: string): Promise<CommitRecord> {
    const [found] = await this.meta.findBranches(workspace.repoId, [branch]);
    if (!found) return this.baseCommit(workspace);
    return (await this.meta.getCommit(workspace.repoId, found.commitId))!;
  }

  /**
   * Commits everything staged onto `branch` (created at the workspace's base if missing): a plain
   * commit if the branch has not moved, otherwise the changes rebased onto its head unless a staged
   * path also changed there (409). Nothing staged: 422. Unnamed workspaces are then deleted; named
   * ones move to the new commit, keeping anything staged meanwhile.
   */
  async commit(repo: RepoRecord, workspace: WorkspaceRecord, rawBranch: string, request: { message?: unknown; author?: unknown; email?: unknown }) {
    const branch = assertBranchName(rawBranch);
    if (typeof request.message !== 'string' || request.message.trim() === '') throw new BadRequest('message is required');
    if (typeof request.author !== 'string' || request.author.trim() === '') throw new BadRequest('author is required');
    if (typeof request.email !== 'string' || request.email.trim() === '') throw new BadRequest('email is required');
    const staged = await this.meta.listStagedChanges(workspace.uid);
    // Edited data frames are written out now, each as a new blob in its format, in place of what is staged there.
    const frames = await this.frames.export(workspace);
    const changes = withFrames(staged, frames.changes);
    if (changes.length === 0) throw new Unprocessable('Nothing is staged in this workspace', { type: 'no_changes' });
    const base = await this.baseCommit(workspace);
    await this.meta.createBranch(repo.id, branch, base.id);
    const { commit } = await this.commits.commit({
      repo,
      branch,
      base,
      changes: changeSet(changes),
      blobs: changes.flatMap((c) => (c.hash === null ? [] : [{ hash: c.hash, size: c.size }])),
      author: { name: request.author, email: request.email },
      message: request.message,
    });
    if (workspace.name === null) {
      await this.meta.deleteWorkspace(workspace.uid);
      await this.frames.forget(workspace.uid);
    } else {
      await this.meta.advanceWorkspace(workspace.uid, commit.id, staged);
      await frames.committed();
    }
    return commit;
  }
}
