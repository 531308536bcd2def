import { NotFound } from '../core/errors.js';
import { basename } from '../core/paths.js';
import { listDir, lookup, UNCOMMITTED, type DirEntry, type Entry } from '../core/tree.js';
import type { CommitRecord, MetaStore, RepoRecord } from '../storage/meta-store.js';
import type { ResolvedTree, TreeResolver } from './trees.js';
import { WeightedLru } from './weighted-lru.js';

export type SortBy = 'name' | 'date';

export interface ListOptions {
  sortBy: SortBy;
  /** Flips the name or date order (directories still come first, as Oxen does). */
  reverse: boolean;
  /** Levels of children listed below each directory (Infinity: all). */
  depth: number;
}

/** An entry with the commit that last changed it, and its own entries when listed with depth. */
export interface ListedEntry {
  entry: Entry;
  latestCommit: CommitRecord | null;
  children?: ListedEntry[];
}

/** A directory found at `{revision}/{path}` (or `{workspace}/{path}`), named by its path's last segment, and its entries. */
export interface OpenDirectory {
  tree: ResolvedTree;
  dir: DirEntry;
  /** Directories first, then files, each kind by name. */
  entries: Entry[];
  /** How many of `entries` are directories. */
  dirCount: number;
}

/**
 * Entries held by the cache of name-ordered listings, all directories together: the arrays only, the entries
 * themselves are mostly the node cache's too.
 */
const LISTED_ENTRIES_CACHED = 200_000;

/** Page [offset, offset + limit) of an open directory in name order, each kind's order flipped when `reverse`. */
function nameOrderPage(open: OpenDirectory, reverse: boolean, offset: number, limit: number): Entry[] {
  const { entries, dirCount } = open;
  if (!reverse) return entries.slice(offset, offset + limit);
  const page: Entry[] = [];
  for (let i = offset; i < Math.min(entries.length, offset + limit); i++) {
    page.push(i < dirCount ? entries[dirCount - 1 - i] : entries[entries.length - 1 - (i - dirCount)]);
  }
  return page;
}

/** Directories first, then by name or by the date of their latest commit (`reverse` flips the second key only, as Oxen does). */
function sortEntries(entries: Entry[], latest: Map<string, CommitRecord | null>, sortBy: SortBy, reverse: boolean): Entry[] {
  const time = (e: Entry) => latest.get(e.name)?.timestamp ?? '';
  const key = (a: Entry, b: Entry) => {
    const [x, y] = sortBy === 'name' ? [a.name, b.name] : [time(a), time(b)];
    const order = x < y ? -1 : x > y ? 1 : 0;
    return reverse ? -order : order;
  };
  return [...entries].sort((a, b) => (a.kind === b.kind ? key(a, b) : a.kind === 'dir' ? -1 : 1));
}

/** Directory listings and single entries of a tree, each dated by the commit that last changed it. */
export class DirectoryService {
  /**
   * Committed directories' entries in name order, by repository and node id: a committed node never changes,
   * so every page of a large directory is a slice instead of a merge and sort of all its entries.
   */
  private readonly nameOrders = new WeightedLru<{ entries: Entry[]; dirCount: number }>(LISTED_ENTRIES_CACHED);

  constructor(
    private readonly meta: MetaStore,
    private readonly trees: TreeResolver,
  ) {}

  /** The directory at `resource`; 404 if there is none. */
  async open(repo: RepoRecord, resource: string): Promise<OpenDirectory> {
    const tree = await this.trees.resolve(repo, resource);
    const dir = await lookup(tree.source, tree.rootId, tree.path);
    if (!dir || dir.kind !== 'dir') throw new NotFound(`Directory not found: ${tree.path || '/'} at ${tree.version}`);
    // A workspace's view may change under the same ids: only committed trees are cached.
    const key = tree.workspace === null ? `${repo.id}:${dir.id}` : null;
    let order = key === null ? undefined : this.nameOrders.get(key);
    if (!order) {
      const entries = sortEntries(await listDir(tree.source, dir.id), new Map(), 'name', false);
      const firstFile = entries.findIndex((e) => e.kind !== 'dir');
      order = { entries, dirCount: firstFile === -1 ? entries.length : firstFile };
      if (key !== null) this.nameOrders.set(key, order, entries.length);
    }
    return { tree, dir: { ...dir, name: basename(tree.path) }, ...order };
  }

  /** One page of an open directory's entries in the asked order, with `options.depth` levels of children below each. */
  async page(repo: RepoRecord, open: OpenDirectory, options: ListOptions, offset: number, limit: number): Promise<{ dir: ListedEntry; entries: ListedEntry[] }> {
    // Sorting by name needs the page's commits only; by date, every entry's.
    let latest = options.sortBy === 'date' ? await this.latestCommits(repo, open.entries) : new Map<string, CommitRecord | null>();
    const pageEntries =
      options.sortBy === 'name' ? nameOrderPage(open, options.reverse, offset, limit) : sortEntries(open.entries, latest, options.sortBy, options.reverse).slice(offset, offset + limit);
    if (options.sortBy === 'name') latest = await this.latestCommits(repo, pageEntries);
    return {
      dir: await this.dated(repo, open.dir),
      entries: await this.describeEntries(repo, open.tree, pageEntries, latest, options),
    };
  }

  /** The file or directory at `resource`, named by its path's last segment; 404 if nothing is there. */
  async describe(repo: RepoRecord, resource: string): Promise<{ tree: ResolvedTree; entry: ListedEntry }> {
    const tree = await this.trees.resolve(repo, resource);
    const entry = await lookup(tree.source, tree.rootId, tree.path);
    if (!entry) throw new NotFound(`Could not find path: ${tree.path} at ${tree.version}`);
    return { tree, entry: await this.dated(repo, { ...entry, name: basename(tree.path) }) };
  }

  private async dated(repo: RepoRecord, entry: Entry): Promise<ListedEntry> {
    return { entry, latestCommit: (await this.latestCommits(repo, [entry])).get(entry.name) ?? null };
  }

  /**
   * The commit that last changed each entry, as its node records it. An entry a workspace changed
   * records none yet (UNCOMMITTED), and neither does a commit the repository does not hold.
   */
  private async latestCommits(repo: RepoRecord, entries: Entry[]): Promise<Map<string, CommitRecord | null>> {
    const ids = [...new Set(entries.map((e) => e.lastCommitId).filter((id) => id !== UNCOMMITTED))];
    const commits = new Map((await this.meta.getCommits(repo.id, ids)).map((c) => [c.id, c]));
    return new Map(entries.map((e) => [e.name, commits.get(e.lastCommitId) ?? null]));
  }

  /** `entries` with their latest commits, and `depth` levels of children below each directory. */
  private async describeEntries(repo: RepoRecord, tree: ResolvedTree, entries: Entry[], latest: Map<string, CommitRecord | null>, options: ListOptions): Promise<ListedEntry[]> {
    const listed: ListedEntry[] = [];
    for (const entry of entries) {
      const item: ListedEntry = { entry, latestCommit: latest.get(entry.name) ?? null };
      if (entry.kind === 'dir' && options.depth > 0) {
        const children = await listDir(tree.source, entry.id);
        const childLatest = await this.latestCommits(repo, children);
        const ordered = sortEntries(children, childLatest, options.sortBy, options.reverse);
        item.children = await this.describeEntries(repo, tree, ordered, childLatest, { ...options, depth: options.depth - 1 });
      }
      listed.push(item);
    }
    return listed;
  }
}
