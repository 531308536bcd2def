import { lookup, sameEntry, type NodeSource } from '../core/tree.js';
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
    const entryAt = async (commit: CommitRecord) => lookup(source, commit.rootId, path);
    for (let offset = 0; ; offset += SCAN_BATCH) {
      const batch = await this.meta.listAncestors(repo.id, head.id, { offset, limit: SCAN_BATCH });
      for (const commit of batch) {
        const [parentId] = commit.parentIds;
        const parent = parentId === undefined ? null : await this.meta.getCommit(repo.id, parentId);
        const mine = await entryAt(commit);
        const theirs = parent ? await entryAt(parent) : null;
        if (!sameEntry(mine, theirs)) yield commit;
      }
      if (batch.length < SCAN_BATCH) return;
    }
  }
}
