import { lookupMany, sameEntry, type NodeSource } from '../core/tree.js';
import type { CommitRecord, MetaStore, RepoRecord } from '../storage/meta-store.js';
import type { NodeCache } from './node-cache.js';

const SCAN_BATCH = 500;

/** `commit` and all its ancestors, newest first. */
export function allAncestors(meta: MetaStore, repoId: string, commit: CommitRecord): Promise<CommitRecord[]> {
  return meta.listAncestors(repoId, commit.id, { offset: 0, limit: Number.MAX_SAFE_INTEGER });
}

/** Commits reachable from `head` and not from `base`, newest first. */
export async function commitsBetween(meta: MetaStore, repoId: string, base: CommitRecord, head: CommitRecord): Promise<CommitRecord[]> {
  const [ofHead, ofBase] = await Promise.all([allAncestors(meta, repoId, head), allAncestors(meta, repoId, base)]);
  const inBase = new Set(ofBase.map((c) => c.id));
  return ofHead.filter((c) => !inBase.has(c.id));
}

/** Each commit's first parent (null: a root commit, or a parent not stored); those not among `commits` are read in one query. */
export async function firstParents(meta: MetaStore, repoId: string, commits: CommitRecord[]): Promise<Array<CommitRecord | null>> {
  const known = new Map(commits.map((c) => [c.id, c]));
  const absent = [...new Set(commits.flatMap((c) => (c.parentIds[0] !== undefined && !known.has(c.parentIds[0]) ? [c.parentIds[0]] : [])))];
  for (const parent of await meta.getCommits(repoId, absent)) known.set(parent.id, parent);
  return commits.map((c) => (c.parentIds[0] === undefined ? null : (known.get(c.parentIds[0]) ?? null)));
}

/** Commit history of a revision, optionally narrowed to the commits that changed one path. */
export class HistoryService {
  constructor(
    private readonly meta: MetaStore,
    private readonly nodes: NodeCache,
  ) {}

  async page(repo: RepoRecord, head: CommitRecord, offset: number, limit: number): Promise<{ commits: CommitRecord[]; total: number }> {
    const [commits, total] = await Promise.all([
      this.meta.listAncestors(repo.id, head.id, { offset, limit }),
      this.meta.countAncestors(repo.id, head.id),
    ]);
    return { commits, total };
  }

  /** Ancestors of `head` (newest first) whose entry at `path` differs from their first parent's. */
  async pathPage(repo: RepoRecord, head: CommitRecord, path: string, offset: number, limit: number) {
    const matching: CommitRecord[] = [];
    let total = 0;
    for await (const commit of this.changesTo(repo, head, path)) {
      if (total >= offset && matching.length < limit) matching.push(commit);
      total += 1;
    }
    return { commits: matching, total };
  }

  private async *changesTo(repo: RepoRecord, head: CommitRecord, path: string): AsyncGenerator<CommitRecord> {
    const source: NodeSource = this.nodes.forRepo(repo.id);
    for (let offset = 0; ; offset += SCAN_BATCH) {
      const batch = await this.meta.listAncestors(repo.id, head.id, { offset, limit: SCAN_BATCH });
      // The entries at `path` in every commit of the batch and its parent, looked up together.
      const parents = await firstParents(this.meta, repo.id, batch);
      const roots = [...new Set([...batch, ...parents].flatMap((c) => (c ? [c.rootId] : [])))];
      const entries = await lookupMany(source, roots.map((rootId) => ({ rootId, path })));
      const entryAt = new Map(roots.map((rootId, i) => [rootId, entries[i]]));
      for (const [i, commit] of batch.entries()) {
        const parent = parents[i];
        if (!sameEntry(entryAt.get(commit.rootId)!, parent ? entryAt.get(parent.rootId)! : null)) yield commit;
      }
      if (batch.length < SCAN_BATCH) return;
    }
  }
}
