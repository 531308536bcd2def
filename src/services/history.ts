import { listDir, listDirNode, loadBucket, loadDir, lookup, sameEntry, type DirNode, type Entry, type NodeSource } from '../core/tree.js';
import type { CommitRecord, MetaStore, RepoRecord } from '../storage/meta-store.js';
import type { NodeCache } from './node-cache.js';
import { WeightedLru } from './weighted-lru.js';

const SCAN_BATCH = 500;
/** Dated names kept across all cached directories (about 100 bytes each). */
const MAX_DATED_NAMES = 1_000_000;

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

  /** Dated entries of directories, by repository, commit and path, weighed by their number of names. */
  private readonly dated = new WeightedLru<Map<string, CommitRecord | null>>(MAX_DATED_NAMES);

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

  /**
   * For each name directly inside `dirPath`, the newest commit at or before `head` that changed it
   * (null if none did). Every entry of the directory is dated at once and the answer is cached
   * (commits are immutable), so the pages of one listing cost one walk; see `dateEntries`.
   */
  async lastChanges(repo: RepoRecord, head: CommitRecord, dirPath: string, names: string[]): Promise<Map<string, CommitRecord | null>> {
    const key = `${repo.id}\0${head.id}\0${dirPath}`;
    let dated = this.dated.get(key);
    if (!dated) {
      const source = this.nodes.forRepo(repo.id);
      const dir = await lookup(source, head.rootId, dirPath);
      // Not a directory at `head` (one a workspace creates): nothing in it was committed yet.
      if (dir?.kind !== 'dir') return new Map(names.map((name) => [name, null]));
      const all = (await listDir(source, dir.id)).map((e) => e.name);
      dated = await this.dateEntries(repo, head, dirPath, all);
      this.dated.set(key, dated, dated.size);
    }
    // A name the directory does not hold at `head` (one a workspace added) has no commit yet.
    return new Map(names.map((name) => [name, dated.get(name) ?? null]));
  }

  /**
   * One walk back along first parents that dates every name in `names` and stops once all are dated.
   * A commit that left the directory's node id unchanged is skipped; otherwise only the buckets
   * that differ from the first parent's are read and diffed as sorted lists, so the cost follows
   * what changed, not how many names are asked for.
   */
  private async dateEntries(repo: RepoRecord, head: CommitRecord, dirPath: string, names: string[]): Promise<Map<string, CommitRecord | null>> {
    const found = new Map<string, CommitRecord | null>();
    const remaining = new Set(names);
    const source: NodeSource = this.nodes.forRepo(repo.id);
    const dirAt = async (commit: CommitRecord | null) => {
      const dir = commit ? await lookup(source, commit.rootId, dirPath) : null;
      return dir?.kind === 'dir' ? { id: dir.id, node: await loadDir(source, dir.id) } : null;
    };
    // First parents only: along that chain each commit's tree is what the branch held, so the commit
    // found for a name has that name's entry as it is at `head` (a change made and undone on a merged
    // side branch is not its latest change; the merge commit is, if the merge changed it).
    let commit: CommitRecord | null = head;
    let mine = await dirAt(commit);
    while (commit !== null && remaining.size > 0) {
      const [parentId]: string[] = commit.parentIds;
      const parent: CommitRecord | null = parentId === undefined ? null : await this.meta.getCommit(repo.id, parentId);
      const theirs = await dirAt(parent);
      if (mine?.id !== theirs?.id) {
        for (const name of await changedNames(source, mine?.node ?? null, theirs?.node ?? null)) {
          if (!remaining.delete(name)) continue;
          found.set(name, commit);
          if (remaining.size === 0) break;
        }
      }
      commit = parent;
      mine = theirs;
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

/**
 * Names whose entry differs between two versions of a directory (either may be absent). With the
 * same bucket layout only differing buckets are read; otherwise both listings are compared.
 */
async function changedNames(source: NodeSource, mine: DirNode | null, theirs: DirNode | null): Promise<Set<string>> {
  const changed = new Set<string>();
  const entries = async (dir: DirNode | null) => (dir ? listDirNode(source, dir) : []);
  if (mine && theirs && mine.buckets.length === theirs.buckets.length) {
    for (let i = 0; i < mine.buckets.length; i++) {
      if (mine.buckets[i] === theirs.buckets[i]) continue;
      const [a, b] = await Promise.all([loadBucket(source, mine.buckets[i]), loadBucket(source, theirs.buckets[i])]);
      diffSorted(a, b, changed);
    }
  } else {
    diffSorted(await entries(mine), await entries(theirs), changed);
  }
  return changed;
}

/** Adds to `out` every name present in only one of two name-sorted lists, or with different entries. */
function diffSorted(a: Entry[], b: Entry[], out: Set<string>) {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (y === undefined || (x !== undefined && x.name < y.name)) {
      out.add(x.name);
      i++;
    } else if (x === undefined || y.name < x.name) {
      out.add(y.name);
      j++;
    } else {
      if (!sameEntry(x, y)) out.add(x.name);
      i++;
      j++;
    }
  }
}
