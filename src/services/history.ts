import { bucketOf, findChild, loadDir, lookup, sameEntry, type NodeSource } from '../core/tree.js';
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

  /** The newest commit at or before `head` that changed `path`, or null. */
  async lastChange(repo: RepoRecord, head: CommitRecord, path: string): Promise<CommitRecord | null> {
    for await (const commit of this.changesTo(repo, head, path)) return commit;
    return null;
  }

  /**
   * For each name directly inside `dirPath`, the newest commit at or before `head` that changed it
   * (null if none did). One walk back through history serves every name; a commit that left the
   * directory itself unchanged (same node id) is skipped without looking at its entries, and the
   * walk stops once every name is resolved.
   */
  async lastChanges(repo: RepoRecord, head: CommitRecord, dirPath: string, names: string[]): Promise<Map<string, CommitRecord | null>> {
    const found = new Map<string, CommitRecord | null>();
    const remaining = new Set(names);
    if (remaining.size === 0) return found;
    const source: NodeSource = this.nodes.forRepo(repo.id);
    const childrenOf = async (commit: CommitRecord | null) => {
      const dir = commit ? await lookup(source, commit.rootId, dirPath) : null;
      return dir?.kind === 'dir' ? { id: dir.id, node: await loadDir(source, dir.id) } : null;
    };
    for (let offset = 0; remaining.size > 0; offset += SCAN_BATCH) {
      const batch = await this.meta.listAncestors(repo.id, head.id, { offset, limit: SCAN_BATCH });
      for (const commit of batch) {
        const [parentId] = commit.parentIds;
        const parent = parentId === undefined ? null : await this.meta.getCommit(repo.id, parentId);
        const [mine, theirs] = await Promise.all([childrenOf(commit), childrenOf(parent)]);
        if (mine?.id === theirs?.id) continue;
        const sameLayout = mine !== null && theirs !== null && mine.node.buckets.length === theirs.node.buckets.length;
        for (const name of remaining) {
          // Same bucket node on both sides: nothing in it changed, without reading its entries.
          if (sameLayout) {
            const bucket = bucketOf(name, mine.node.buckets.length);
            if (mine.node.buckets[bucket] === theirs.node.buckets[bucket]) continue;
          }
          const now = mine ? ((await findChild(source, mine.node, name)) ?? null) : null;
          const before = theirs ? ((await findChild(source, theirs.node, name)) ?? null) : null;
          if (!sameEntry(now, before)) {
            found.set(name, commit);
            remaining.delete(name);
          }
        }
        if (remaining.size === 0) break;
      }
      if (batch.length < SCAN_BATCH) break;
    }
    for (const name of remaining) found.set(name, null);
    return found;
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
