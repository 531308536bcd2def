import { BadRequest, Conflict, NotFound } from '../core/errors.js';
import { normalizeHash } from '../core/hash.js';
import { assertBranchName } from '../core/names.js';
import type { BranchRecord, CommitRecord, MetaStore, RepoRecord } from '../storage/meta-store.js';
import type { HistoryService } from './history.js';
import type { MergeService } from './merge.js';
import { defaultBranchOf } from './repositories.js';
import type { SyncService } from './sync.js';

export interface BranchWithHead {
  branch: BranchRecord;
  /** Null only if the branch points at a commit the repository lacks (damage). */
  head: CommitRecord | null;
}

/**
 * Branches moved by hand: created, fast-forwarded (or forced), deleted, and a pushed commit merged
 * in. Every move is a compare-and-swap on the branch; a commit a client pushed joins the history
 * only through `SyncService.adoptCommit`, once its tree checks out. Commits that change files land
 * through `CommitService` instead.
 */
export class BranchService {
  constructor(
    private readonly meta: MetaStore,
    private readonly history: HistoryService,
    private readonly sync: SyncService,
    private readonly merges: MergeService,
  ) {}

  async list(repo: RepoRecord): Promise<BranchWithHead[]> {
    const branches = await this.meta.listBranches(repo.id);
    const heads = new Map((await this.meta.getCommits(repo.id, branches.map((b) => b.commitId))).map((c) => [c.id, c]));
    return branches.map((branch) => ({ branch, head: heads.get(branch.commitId) ?? null }));
  }

  async find(repo: RepoRecord, name: string): Promise<BranchRecord | null> {
    const [branch] = await this.meta.findBranches(repo.id, [name]);
    return branch ?? null;
  }

  async require(repo: RepoRecord, name: string): Promise<BranchRecord> {
    const branch = await this.find(repo, name);
    if (!branch) throw new NotFound(`Branch '${name}' does not exist`);
    return branch;
  }

  async withHead(repo: RepoRecord, branch: BranchRecord): Promise<BranchWithHead> {
    return { branch, head: await this.meta.getCommit(repo.id, branch.commitId) };
  }

  /**
   * Creates `name` at another branch's head or at a commit (a pushed one is adopted first); 409 if
   * it exists. `commitId` is the commit it was created at.
   */
  async create(repo: RepoRecord, name: string, from: { branch: string } | { commitId: string }): Promise<BranchWithHead & { commitId: string }> {
    let commitId: string;
    if ('branch' in from) {
      commitId = (await this.require(repo, from.branch)).commitId;
    } else {
      const id = normalizeHash(from.commitId);
      if (id === null) throw new NotFound(`Commit '${from.commitId}' not found`);
      commitId = (await this.sync.adoptCommit(repo, id)).id;
    }
    if (!(await this.meta.createBranch(repo.id, name, commitId))) throw new Conflict(`Branch '${name}' already exists`);
    return { ...(await this.withHead(repo, await this.require(repo, name))), commitId };
  }

  /** Moves (or creates) `name` to commit `id`: a fast-forward only, unless `force`. A lost race is a 409, not retried. */
  async move(repo: RepoRecord, name: string, id: string, force: boolean): Promise<BranchWithHead> {
    const target = await this.sync.adoptCommit(repo, id);
    const current = await this.find(repo, name);
    if (current && current.commitId !== target.id && !force && !(await this.meta.isAncestor(repo.id, current.commitId, target.id))) {
      throw new Conflict(`Commit ${target.id} does not descend from the head of '${name}' (${current.commitId}); pass force to move it anyway`);
    }
    const moved = await this.meta.compareAndSwapBranch(repo.id, name, current?.commitId ?? null, target.id);
    if (!moved) throw new Conflict(`Branch '${name}' moved while updating it; retry`);
    return this.withHead(repo, await this.require(repo, name));
  }

  /**
   * Oxen's `PUT branches/{name}/merge`: the client's pushed commit merged into the branch. As
   * oxen-server does, a conflict leaves the branch where it was and answers its head
   * (`created: false`, as when there was nothing to merge).
   */
  async mergePushed(repo: RepoRecord, rawBranch: string, clientCommitId: unknown, serverCommitId: unknown): Promise<{ commit: CommitRecord; created: boolean }> {
    const ids = [clientCommitId, serverCommitId].map((v) => (typeof v === 'string' ? normalizeHash(v) : null));
    if (ids.some((id) => id === null)) throw new BadRequest('Invalid request body: expected {client_commit_id, server_commit_id}');
    const branch = await this.require(repo, assertBranchName(rawBranch));
    const incoming = await this.sync.adoptCommit(repo, ids[0]!);
    const current = await this.meta.getCommit(repo.id, ids[1]!);
    if (!current) throw new NotFound(`Commit '${String(serverCommitId)}' not found`);
    try {
      const outcome = await this.merges.merge(repo, { base: branch.name, head: incoming.id, threeDot: false }, { name: incoming.author, email: incoming.email });
      const commit = outcome.kind === 'merge_commit' ? outcome.merge : outcome.kind === 'fast_forward' ? outcome.head : outcome.base;
      return { commit, created: outcome.kind !== 'up_to_date' };
    } catch (err) {
      if (err instanceof Conflict && err.extra.type === 'merge_conflict') {
        const now = await this.require(repo, branch.name);
        return { commit: (await this.meta.getCommit(repo.id, now.commitId)) ?? current, created: false };
      }
      throw err;
    }
  }

  /** Deletes any branch but the default one (as oxen-server refuses to delete its checked-out branch: without it the repository would look empty). */
  async delete(repo: RepoRecord, name: string): Promise<BranchRecord> {
    const branch = await this.require(repo, name);
    if (defaultBranchOf(await this.meta.listBranches(repo.id))?.name === branch.name) {
      throw new BadRequest(`Cannot delete '${branch.name}': it is the repository's default branch`, { type: 'default_branch' });
    }
    if (!(await this.meta.deleteBranch(repo.id, branch.name))) throw new NotFound(`Branch '${branch.name}' does not exist`);
    return branch;
  }

  /** A page of the commits on `branch` that changed `path`, newest first. */
  async pathHistory(repo: RepoRecord, branch: BranchRecord, path: string, offset: number, limit: number): Promise<{ commits: CommitRecord[]; total: number }> {
    const head = (await this.meta.getCommit(repo.id, branch.commitId))!;
    return this.history.pathPage(repo, head, path, offset, limit);
  }
}
