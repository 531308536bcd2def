import { NotFound } from '../core/errors.js';
import { basename } from '../core/paths.js';
import {
  buildIndex,
  decodeIndexNode,
  decodeIndexRoot,
  encodeIndexRoot,
  indexCount,
  indexRootId,
  INDEXED_ENTRIES,
  keyKind,
  readIndexRange,
  type IndexItem,
  type IndexNode,
} from '../core/name-index.js';
import { decodeOxenNode, type OxenDirNode } from '../core/oxen-nodes.js';
import { entryFromPayload, listDir, lookup, nameIndexItems, UNCOMMITTED, type DirEntry, type Entry, type NodeSource } from '../core/tree.js';
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
  /** Entries in all. */
  count: number;
  /** How many entries are directories (they come first). */
  dirCount: number;
  /** Entries [from, to) in name order: directories first, then files, each kind by name. */
  range(from: number, to: number): Promise<Entry[]>;
}

/** Entries in name order, held in memory. */
interface NameOrder {
  entries: Entry[];
  dirCount: number;
}

/**
 * Entries held by the cache of name-ordered listings, all directories together: the arrays only, the entries
 * themselves are mostly the node cache's too.
 */
const LISTED_ENTRIES_CACHED = 200_000;

/** Page [offset, offset + limit) of an open directory in name order, each kind's order flipped when `reverse`. */
async function nameOrderPage(open: OpenDirectory, reverse: boolean, offset: number, limit: number): Promise<Entry[]> {
  const { count, dirCount } = open;
  const end = Math.min(count, offset + limit);
  if (!reverse) return open.range(offset, end);
  // Reversed, page positions map to two runs read forwards: the directories' and the files'.
  const dirs = offset < Math.min(end, dirCount) ? await open.range(dirCount - Math.min(end, dirCount), dirCount - offset) : [];
  const fileFrom = Math.max(offset, dirCount);
  const files = fileFrom < end ? await open.range(count - (end - dirCount), count - (fileFrom - dirCount)) : [];
  return [...dirs.reverse(), ...files.reverse()];
}

function inMemory(order: NameOrder): Pick<OpenDirectory, 'count' | 'dirCount' | 'range'> {
  return { count: order.entries.length, dirCount: order.dirCount, range: async (from, to) => order.entries.slice(from, to) };
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
  private readonly nameOrders = new WeightedLru<NameOrder>(LISTED_ENTRIES_CACHED);
  /** Name index nodes, decoded, by repository and id (weighed by their items), and the entries of the leaves' items. */
  private readonly indexNodes = new WeightedLru<IndexNode>(LISTED_ENTRIES_CACHED);
  private readonly indexedEntries = new WeakMap<IndexItem, Entry>();

  constructor(
    private readonly meta: MetaStore,
    private readonly trees: TreeResolver,
  ) {}

  /** The directory at `resource`; 404 if there is none. */
  async open(repo: RepoRecord, resource: string): Promise<OpenDirectory> {
    const tree = await this.trees.resolve(repo, resource);
    const dir = await lookup(tree.source, tree.rootId, tree.path);
    if (!dir || dir.kind !== 'dir') throw new NotFound(`Directory not found: ${tree.path || '/'} at ${tree.version}`);
    return this.openEntry(repo, tree, { ...dir, name: basename(tree.path) });
  }

  /** Directory entry `dir` of `tree`, opened for paging. */
  private async openEntry(repo: RepoRecord, tree: ResolvedTree, dir: DirEntry): Promise<OpenDirectory> {
    const found = { tree, dir };
    // A workspace's view may change under the same ids: only committed trees are cached or indexed.
    const committed = tree.workspace === null;
    const key = `${repo.id}:${dir.id}`;
    const cached = committed ? this.nameOrders.get(key) : undefined;
    if (cached) return { ...found, ...inMemory(cached) };
    const entryCount = committed && tree.source.readRows !== undefined ? (decodeOxenNode('Dir', dir.payload) as OxenDirNode).numEntries : 0;
    const large = entryCount >= INDEXED_ENTRIES;
    if (large) {
      const index = await this.nameIndex(repo, tree.source, dir.id);
      // An index that disagrees with its directory is not used (the directory's entries are what is true).
      if (index && index.count === entryCount) return { ...found, ...index };
    }
    const entries = sortEntries(await listDir(tree.source, dir.id), new Map(), 'name', false);
    const firstFile = entries.findIndex((e) => e.kind !== 'dir');
    const order = { entries, dirCount: firstFile === -1 ? entries.length : firstFile };
    if (committed) this.nameOrders.set(key, order, entries.length);
    // A large directory without an index (pushed by a client, or written before indexes) gets one, for the next cold
    // read. It only saves time: a store that refuses the write does not fail the listing.
    if (large) await this.meta.putNodes(repo.id, indexRows(dir.id, entries)).catch(() => {});
    return { ...found, ...inMemory(order) };
  }

  /** Paging through directory `dirId`'s stored name index, if it has one. */
  private async nameIndex(repo: RepoRecord, source: NodeSource, dirId: string): Promise<Pick<OpenDirectory, 'count' | 'dirCount' | 'range'> | null> {
    const readRows = source.readRows!.bind(source);
    const stored = (await readRows([indexRootId(dirId)])).get(indexRootId(dirId));
    if (stored === undefined) return null;
    const root = decodeIndexRoot(stored);
    // Index nodes are immutable (named by their bytes): cached decoded, so pages over a large directory decode it once.
    const readNodes = async (ids: string[]) => {
      const nodes = new Map(ids.map((id) => [id, this.indexNodes.get(`${repo.id}:${id}`)]));
      const missing = ids.filter((id) => nodes.get(id) === undefined);
      const found = missing.length === 0 ? new Map<string, Uint8Array>() : await readRows(missing);
      for (const id of missing) {
        const node = decodeIndexNode(found.get(id) ?? raise(new Error(`index node ${id} of directory ${dirId} is not stored`)));
        this.indexNodes.set(`${repo.id}:${id}`, node, node.items.length);
        nodes.set(id, node);
      }
      return ids.map((id) => nodes.get(id)!);
    };
    const entryOf = (item: IndexItem) => {
      let entry = this.indexedEntries.get(item);
      if (entry === undefined) this.indexedEntries.set(item, (entry = entryFromPayload(keyKind(item.key), item.value)));
      return entry;
    };
    return {
      count: indexCount(root.top),
      dirCount: root.dirCount,
      range: async (from, to) => (await readIndexRange(root, from, to, readNodes)).map(entryOf),
    };
  }

  /** One page of an open directory's entries in the asked order, with `options.depth` levels of children below each. */
  async page(repo: RepoRecord, open: OpenDirectory, options: ListOptions, offset: number, limit: number): Promise<{ dir: ListedEntry; entries: ListedEntry[] }> {
    // Sorting by name needs the page's commits only; by date, every entry's.
    const all = options.sortBy === 'date' ? await open.range(0, open.count) : [];
    let latest = options.sortBy === 'date' ? await this.latestCommits(repo, all) : new Map<string, CommitRecord | null>();
    const pageEntries =
      options.sortBy === 'name' ? await nameOrderPage(open, options.reverse, offset, limit) : sortEntries(all, latest, options.sortBy, options.reverse).slice(offset, offset + limit);
    if (options.sortBy === 'name') latest = await this.latestCommits(repo, pageEntries);
    return {
      dir: await this.dated(repo, open.dir),
      entries: await this.describeEntries(repo, open.tree, pageEntries, latest, options),
    };
  }

  /**
   * Every entry of an open directory in name order, `batchSize` at a time, each with its path below the directory;
   * with `recursive`, each directory is followed by its own entries. Memory holds a batch per level, whatever the
   * directory's size, since a large directory's entries are read from its name index range by range (one without an
   * index yet is read whole once, as a page of it would be, and gets one).
   */
  async *entries(repo: RepoRecord, open: OpenDirectory, recursive: boolean, batchSize = 1000, prefix = ''): AsyncGenerator<Array<{ path: string; entry: Entry }>> {
    for (let from = 0; from < open.count; from += batchSize) {
      const batch = (await open.range(from, Math.min(open.count, from + batchSize))).map((entry) => ({ path: prefix + entry.name, entry }));
      if (!recursive) {
        yield batch;
        continue;
      }
      // Directories come first: each is followed by what is below it, then the rest of the batch.
      let start = 0;
      for (let i = 0; i < batch.length; i++) {
        const { path, entry } = batch[i];
        if (entry.kind !== 'dir') continue;
        yield batch.slice(start, i + 1);
        start = i + 1;
        yield* this.entries(repo, await this.openEntry(repo, open.tree, entry), true, batchSize, `${path}/`);
      }
      if (start < batch.length) yield batch.slice(start);
    }
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

/** The rows that store the name index of directory `dirId`, whose entries are `entries`. */
function indexRows(dirId: string, entries: Entry[]): Array<[string, Uint8Array]> {
  const rows: Array<[string, Uint8Array]> = [];
  const root = buildIndex(nameIndexItems(entries), { write: (id, bytes) => rows.push([id, bytes]) });
  rows.push([indexRootId(dirId), encodeIndexRoot(root)]);
  return rows;
}

function raise(err: Error): never {
  throw err;
}
