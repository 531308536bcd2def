import { NotFound } from '../core/errors.js';
import { normalizeRepoPath } from '../core/paths.js';
import type { NodeSource } from '../core/tree.js';
import type { CommitRecord, MetaStore, RepoRecord, WorkspaceRecord } from '../storage/meta-store.js';
import type { NodeCache } from './node-cache.js';
import type { ResolvedRevision, RevisionResolver } from './revisions.js';
import type { WorkspaceService } from './workspaces.js';

/** A tree to read, named by `{revision}/{path}` or `{workspace}/{path}`. */
export interface ResolvedTree {
  source: NodeSource;
  rootId: string;
  path: string;
  /** What the reader named: the commit id or branch, or the workspace id. */
  version: string;
  /** The commit whose history dates the entries: the revision's, or the workspace's base. */
  commit: CommitRecord;
  workspace: WorkspaceRecord | null;
  /** The revision, when the tree is a commit's. */
  resolved: ResolvedRevision | null;
}

/**
 * Resolves a resource the way Oxen's read routes do: first as a commit or branch (see
 * RevisionResolver), last as a workspace by id or name, seen with its staged changes applied.
 */
export class TreeResolver {
  constructor(
    private readonly meta: MetaStore,
    private readonly nodes: NodeCache,
    private readonly revisions: RevisionResolver,
    private readonly workspaces: WorkspaceService,
  ) {}

  async resolve(repo: RepoRecord, resource: string): Promise<ResolvedTree> {
    try {
      const resolved = await this.revisions.resolve(repo, resource);
      const { commit, path, version } = resolved;
      return { source: this.nodes.forRepo(repo.id), rootId: commit.rootId, path, version, commit, workspace: null, resolved };
    } catch (err) {
      if (!(err instanceof NotFound)) throw err;
      const [first, ...rest] = resource.split('/');
      const workspace = await this.meta.getWorkspace(repo.id, first);
      if (!workspace) throw err;
      const view = await this.workspaces.view(workspace);
      const path = normalizeRepoPath(rest.join('/'), { allowRoot: true });
      return { source: view.source, rootId: view.rootId, path, version: workspace.id, commit: view.base, workspace, resolved: null };
    }
  }
}
