import { setTimeout as sleep } from 'node:timers/promises';
import { computeCommitId } from '../core/commit.js';
import { Conflict, NotFound, Unprocessable } from '../core/errors.js';
import { applyChanges, commitNodeBytes, lookupMany, sameEntry, type ChangeSet, type NodeSource } from '../core/tree.js';
import type { CommitRecord, MetaStore, RepoRecord } from '../storage/meta-store.js';
import { KeyedMutex } from './keyed-mutex.js';
import type { NodeCache } from './node-cache.js';

export interface Author {
  name: string;
  email: string;
}

export interface CommitRequest {
  repo: RepoRecord;
  branch: string;
  /** The head the caller validated against; null when the branch did not exist yet. */
  base: CommitRecord | null;
  changes: ChangeSet;
  /** Blob references the commit introduces (recorded for the repository). */
  blobs: Array<{ hash: string; size: number }>;
  author: Author;
  message: string;
  /**
   * When the changes leave the tree as it is: answer the current head instead of 422. Uploading
   * the same bytes again is then idempotent, as a PUT should be.
   */
  allowNoChanges?: boolean;
  /** Parents after the branch head: a merge commit names the commit it merged. */
  mergeParents?: CommitRecord[];
  /** Land the commit even if the tree does not change (a merge that brings no new content). */
  allowEmpty?: boolean;
}

export interface CommitOutcome {
  commit: CommitRecord;
  /** False when nothing changed and the current head was returned (see `allowNoChanges`). */
  created: boolean;
}

const MAX_ATTEMPTS = 25;

/**
 * The one path by which a change set becomes a commit on a branch. Under a per-branch lock it
 * re-reads the head, applies the changes on top of it and lands nodes, commit and ref move in one
 * transaction guarded by compare-and-swap; if another process moved the branch first, it retries
 * on the new head. Changes are rebased like Oxen's workspace commits: if a path being changed was
 * also changed on the branch since `base`, the commit is refused with 409 instead.
 */
export class CommitService {
  private readonly locks = new KeyedMutex();

  constructor(
    private readonly meta: MetaStore,
    private readonly nodes: NodeCache,
    private readonly vnodeSize: number,
  ) {}

  async commit(request: CommitRequest): Promise<CommitOutcome> {
    const { repo, branch } = request;
    return this.locks.run(`${repo.id}\u0000${branch}`, async () => {
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const [current] = await this.meta.findBranches(repo.id, [branch]);
        if (!current && request.base) throw new NotFound(`Branch '${branch}' was deleted`);
        const head = current ? await this.meta.getCommit(repo.id, current.commitId) : null;
        if (current && !head) throw new Error(`Branch ${branch} points at missing commit ${current.commitId}`);
        if (head && head.id !== request.base?.id) await this.assertUntouched(repo, request, head);

        const parents = [...(head ? [head] : []), ...(request.mergeParents ?? [])];
        const content = {
          parentIds: parents.map((p) => p.id),
          message: request.message,
          author: request.author.name,
          email: request.author.email,
          timestamp: new Date().toISOString(),
        };
        const id = computeCommitId({ ...content, changes: request.changes });
        const source = this.nodes.forRepo(repo.id);
        const applied = await applyChanges(source, head?.rootId ?? null, request.changes, { commitId: id, vnodeSize: this.vnodeSize });
        if (head && applied.rootId === head.rootId && !request.allowEmpty) {
          if (request.allowNoChanges) return { commit: head, created: false };
          throw new Unprocessable('No changes to commit', { type: 'no_changes' });
        }
        const generation = Math.max(0, ...parents.map((p) => p.generation)) + 1;
        const commit: CommitRecord = { id, ...content, rootId: applied.rootId, generation };
        const landed = await this.meta.landCommit(repo.id, {
          nodes: [...applied.nodes, [id, commitNodeBytes(commit, applied.root)]],
          commit,
          blobs: request.blobs,
          branch,
          expectedHead: head?.id ?? null,
        });
        if (landed) return { commit, created: true };
        await sleep(Math.random() * 10 * (attempt + 1));
      }
      throw new Conflict(`Branch '${branch}' kept moving; gave up after ${MAX_ATTEMPTS} attempts`);
    });
  }

  /**
   * The paths whose entry differs between `base` (null: an empty tree) and `head`: the rule by which
   * a change set made against `base` conflicts with the branch. Workspace mergeability asks it too.
   */
  async changedPaths(repoId: string, base: CommitRecord | null, head: CommitRecord, paths: Iterable<string>): Promise<string[]> {
    const source: NodeSource = this.nodes.forRepo(repoId);
    const wanted = [...paths];
    // Every path in both trees, looked up together: head's entries, then base's.
    const roots = base ? [head.rootId, base.rootId] : [head.rootId];
    const found = await lookupMany(source, roots.flatMap((rootId) => wanted.map((path) => ({ rootId, path }))));
    return wanted.filter((_, i) => !sameEntry(base ? found[wanted.length + i] : null, found[i]));
  }

  /** 409 if any path in the change set differs between the caller's base and the current head. */
  private async assertUntouched(repo: RepoRecord, request: CommitRequest, head: CommitRecord): Promise<void> {
    const conflicts = await this.changedPaths(repo.id, request.base, head, request.changes.keys());
    if (conflicts.length > 0) {
      throw new Conflict(`These paths changed on '${request.branch}' since ${request.base?.id ?? 'the request began'}: ${conflicts.join(', ')}`, {
        conflicts: conflicts.map((path) => ({ path })),
      });
    }
  }
}
