import { normalizeHash } from '../core/hash.js';
import { NotFound } from '../core/errors.js';
import { assertBranchName } from '../core/names.js';
import { normalizeRepoPath } from '../core/paths.js';
import type { BranchRecord, CommitRecord, MetaStore, RepoRecord } from '../storage/meta-store.js';
import { WeightedLru } from './weighted-lru.js';

/** Commit records kept by each resolver (a few hundred bytes each). */
const HEAD_COMMITS_CACHED = 4096;

export interface ResolvedRevision {
  /** The original `{rev}/{path}` string. */
  resource: string;
  commit: CommitRecord;
  /** Set when the revision named a branch. */
  branch: BranchRecord | null;
  /** Branch name or commit id, as named. */
  version: string;
  /** Normalised path inside the repository; '' is the root. */
  path: string;
}

export interface WriteTarget {
  branch: string;
  /** Head at the time of resolution; null when the branch does not exist yet (empty repository). */
  head: CommitRecord | null;
  path: string;
}

/** Every way to split `a/b/c` into a branch and a path, longest branch first. */
function branchSplits(resource: string): Array<{ branch: string; rest: string }> {
  const segments = resource.split('/');
  const out: Array<{ branch: string; rest: string }> = [];
  for (let i = segments.length; i >= 1; i--) {
    out.push({ branch: segments.slice(0, i).join('/'), rest: segments.slice(i).join('/') });
  }
  return out;
}

/**
 * Resolves `{rev}/{path}` resources. A revision is a commit id (tried first, like Oxen) or a branch
 * name; branch names may contain `/`, so the longest existing branch prefix wins.
 */
export class RevisionResolver {
  /**
   * Branch heads' commits by `repoId:commitId`. A commit never changes once stored, and an entry is only
   * ever read for a head just read from its branch, so it is reachable (gc cannot have removed it).
   */
  private readonly headCommits = new WeightedLru<CommitRecord>(HEAD_COMMITS_CACHED);

  constructor(private readonly meta: MetaStore) {}

  /** The commit `branch` points at; one query the first time, none after (every GET by branch asked for it). */
  private async headOf(repo: RepoRecord, branch: BranchRecord): Promise<CommitRecord> {
    const key = `${repo.id}:${branch.commitId}`;
    const cached = this.headCommits.get(key);
    if (cached) return cached;
    const commit = await this.meta.getCommit(repo.id, branch.commitId);
    if (!commit) throw new Error(`Branch ${branch.name} points at missing commit ${branch.commitId}`);
    this.headCommits.set(key, commit, 1);
    return commit;
  }

  async resolve(repo: RepoRecord, resource: string): Promise<ResolvedRevision> {
    const [first, ...rest] = resource.split('/');
    const commitId = normalizeHash(first);
    if (commitId !== null) {
      const commit = await this.meta.getCommit(repo.id, commitId);
      if (commit) {
        return { resource, commit, branch: null, version: commit.id, path: normalizeRepoPath(rest.join('/'), { allowRoot: true }) };
      }
    }
    const match = await this.longestBranch(repo, resource);
    if (!match) throw new NotFound(`Could not find revision for path: ${resource}`);
    const commit = await this.headOf(repo, match.branch);
    return {
      resource,
      commit,
      branch: match.branch,
      version: match.branch.name,
      path: normalizeRepoPath(match.rest, { allowRoot: true }),
    };
  }

  /** Resolves a revision without a path: a commit id or a branch name. */
  async resolveCommit(repo: RepoRecord, revision: string): Promise<CommitRecord> {
    const commitId = normalizeHash(revision);
    if (commitId !== null) {
      const commit = await this.meta.getCommit(repo.id, commitId);
      if (commit) return commit;
    }
    const [branch] = await this.meta.findBranches(repo.id, [revision]);
    if (!branch) throw new NotFound(`Revision not found: ${revision}`);
    return this.headOf(repo, branch);
  }

  /**
   * Resolves the `{branch}/{path}` of a write. In a repository with no branch yet, the first
   * segment names the branch to create (as Oxen does); otherwise it must be an existing branch.
   */
  async resolveWrite(repo: RepoRecord, resource: string): Promise<WriteTarget> {
    const match = await this.longestBranch(repo, resource);
    if (match) {
      const head = await this.meta.getCommit(repo.id, match.branch.commitId);
      return { branch: match.branch.name, head, path: normalizeRepoPath(match.rest, { allowRoot: true }) };
    }
    if ((await this.meta.listBranches(repo.id)).length === 0) {
      const [first, ...rest] = resource.split('/');
      return { branch: assertBranchName(first), head: null, path: normalizeRepoPath(rest.join('/'), { allowRoot: true }) };
    }
    throw new NotFound(`Branch does not exist for path: ${resource}`);
  }

  private async longestBranch(repo: RepoRecord, resource: string) {
    const splits = branchSplits(resource);
    const found = await this.meta.findBranches(repo.id, splits.map((s) => s.branch));
    if (found.length === 0) return null;
    const byName = new Map(found.map((b) => [b.name, b]));
    for (const split of splits) {
      const branch = byName.get(split.branch);
      if (branch) return { branch, rest: split.rest };
    }
    return null;
  }
}
