import { normalizeHash } from '../core/hash.js';
import type { CommitRecord, MetaStore, RepoRecord } from '../storage/meta-store.js';
import { allAncestors, type HistoryService } from './history.js';
import type { MergeService } from './merge.js';
import type { RevisionResolver } from './revisions.js';

export interface CommitPage {
  commits: CommitRecord[];
  total: number;
}

/** The repository's commits as the `commits/…` routes and the sync downloads list them, newest first unless said otherwise. */
export class CommitLog {
  constructor(
    private readonly meta: MetaStore,
    private readonly revisions: RevisionResolver,
    private readonly revisionHistory: HistoryService,
    private readonly merges: MergeService,
  ) {}

  /**
   * A page of the history named by `spec`: `{revision}`, `{revision}/{path}` (the commits that
   * changed the path) or `{base}..{head}` (what head adds to base). An empty repository has no
   * branch yet; its history is empty, as Oxen answers, not a 404.
   */
  async history(repo: RepoRecord, spec: string, offset: number, limit: number): Promise<CommitPage> {
    if ((await this.meta.countAllCommits(repo.id)) === 0) return { commits: [], total: 0 };
    const range = spec.includes('..') ? await this.merges.tryResolveRange(repo, spec) : null;
    if (range) {
      const commits = await this.merges.commitsBetween(repo, range.base, range.head);
      return { commits: commits.slice(offset, offset + limit), total: commits.length };
    }
    const resolved = await this.revisions.resolve(repo, spec);
    return resolved.path === ''
      ? this.revisionHistory.page(repo, resolved.commit, offset, limit)
      : this.revisionHistory.pathPage(repo, resolved.commit, resolved.path, offset, limit);
  }

  /** A page of every commit in the repository, on any branch or none. */
  async all(repo: RepoRecord, offset: number, limit: number): Promise<CommitPage> {
    const [commits, total] = await Promise.all([this.meta.listAllCommits(repo.id, { offset, limit }), this.meta.countAllCommits(repo.id)]);
    return { commits, total };
  }

  /** The first commit (one of them, if histories were joined), or null in an empty repository. */
  async root(repo: RepoRecord): Promise<CommitRecord | null> {
    const [root] = await this.meta.listRootCommits(repo.id);
    return root ?? null;
  }

  /** The commit with id `id` (any hex spelling), or null. */
  async find(repo: RepoRecord, id: string): Promise<CommitRecord | null> {
    const canonical = normalizeHash(id);
    return canonical === null ? null : this.meta.getCommit(repo.id, canonical);
  }

  /** Every ancestor of a revision (itself excluded), and its direct parents. */
  async ancestry(repo: RepoRecord, revision: string): Promise<{ ancestors: CommitRecord[]; parents: CommitRecord[] }> {
    const commit = await this.revisions.resolveCommit(repo, revision);
    const [ancestors, parents] = await Promise.all([
      this.meta.listAncestors(repo.id, commit.id, { offset: 1, limit: Number.MAX_SAFE_INTEGER }),
      this.meta.getCommits(repo.id, commit.parentIds),
    ]);
    return { ancestors, parents };
  }

  /**
   * Oldest first: `head` and all its ancestors; or, given `base`, the commits between the two and
   * both ends (as Oxen's server sends directory indexes: the client unpacks base's over its own).
   */
  async lineage(repo: RepoRecord, headRevision: string, baseRevision?: string): Promise<CommitRecord[]> {
    const head = await this.revisions.resolveCommit(repo, headRevision);
    if (baseRevision === undefined) return (await allAncestors(this.meta, repo.id, head)).reverse();
    const base = await this.revisions.resolveCommit(repo, baseRevision);
    return [...(await this.merges.commitsBetween(repo, base, head)), base].reverse();
  }

  /** Every commit of the repository, oldest first. */
  async everyOldestFirst(repo: RepoRecord): Promise<CommitRecord[]> {
    return (await this.meta.listAllCommits(repo.id, { offset: 0, limit: Number.MAX_SAFE_INTEGER })).reverse();
  }
}
