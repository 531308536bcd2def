import { describeFile } from './mime.js';
import { hashBuffer } from './hash.js';
import { BadRequest } from './errors.js';
import {
  compareNames,
  decodeNodeRecord,
  decodeOxenNode,
  encodeNodeRecord,
  encodeOxenNode,
  instantFromIso,
  NO_PARENT,
  oxenVnodeIndex,
  readFileSummary,
  type NodeRecord,
  type OxenDirNode,
  type RecordChild,
} from './oxen-nodes.js';
import { basename, joinRepoPath, splitRepoPath } from './paths.js';
import { runInRounds, type WalkStep } from './rounds.js';
import {
  buildIndex,
  compareKeys,
  decodeIndexRoot,
  encodeIndexRoot,
  entryKey,
  indexCount,
  indexRootId,
  INDEXED_ENTRIES,
  updateIndex,
  type IndexChange,
  type IndexItem,
  type IndexRoot,
  type IndexRows,
} from './name-index.js';
import { frameRecord, noChunks, storedBlobs, storedRows, type ChunkLookup } from './stored-records.js';

export { frameRecord, unframeRecord } from './stored-records.js';

/**
 * The merkle tree, in Oxen's node format (oxen-nodes.ts), so that trees travel to and from Oxen's
 * clients as they are stored: commit → directory → vnodes → entries (files and directories).
 *
 * - A directory's entries are spread over its vnodes by xxh3-128 of the entry's full path modulo
 *   the vnode count, and sorted by name inside a vnode: that is where Oxen's readers look for a
 *   path. Changing one entry rewrites one vnode, the directory node and its ancestors.
 * - Every file and directory entry names the commit that last changed it (`lastCommitId`), so a
 *   listing is dated without walking history.
 * - Ids of the nodes Yoke builds are xxh3-128 of their full content (path, entries, last commits)
 *   and of the commit that writes them: equal ids mean equal records. Nodes from a client keep the
 *   client's ids.
 *
 * Yoke picks vnode counts as powers of two aiming at `vnodeSize` entries each: a one-file change
 * in a directory of n entries writes one vnode of about vnodeSize entries plus a directory record
 * with n / vnodeSize vnode rows, and the count (hence every vnode) changes only when n doubles.
 */

/** Entries per vnode Yoke aims for (Oxen's own client writes up to 10,000). */
export const DEFAULT_VNODE_SIZE = 256;

/** `lastCommitId` of an entry that is staged in a workspace and in no commit yet. */
export const UNCOMMITTED = '0';

export interface FileEntry {
  kind: 'file';
  name: string;
  /** Content hash: the name of the blob. */
  hash: string;
  size: number;
  lastCommitId: string;
  dataType: string;
  /** The entry's Oxen payload, reused byte for byte when the entry is carried over. */
  payload: Buffer;
}

export interface DirEntry {
  kind: 'dir';
  name: string;
  id: string;
  size: number;
  /** Files below, recursively. */
  files: number;
  lastCommitId: string;
  payload: Buffer;
}

export type Entry = FileEntry | DirEntry;

export interface DirNode {
  kind: 'dir';
  id: string;
  name: string;
  /** Direct children (files and directories). */
  entries: number;
  /** Bytes of all files below, recursively. */
  size: number;
  /** Files below, recursively. */
  files: number;
  lastCommitId: string;
  /** Files below by data type: counts and bytes. */
  counts: Record<string, number>;
  sizes: Record<string, number>;
  /** Vnode ids in partition order (an empty vnode is kept: its position is its index). */
  vnodes: string[];
  /** The vnodes' payloads, as the directory record holds them (reused when a vnode is carried over). */
  vnodePayloads: Buffer[];
  payload: Buffer;
}

export interface VNode {
  kind: 'vnode';
  id: string;
  /** Sorted by name (UTF-8 byte order). */
  entries: Entry[];
}

export interface CommitNode {
  kind: 'commit';
  id: string;
  parentIds: string[];
  message: string;
  author: string;
  email: string;
  timestamp: { seconds: number; nanoseconds: number };
  rootId: string;
}

export type TreeNode = DirNode | VNode | CommitNode;

/** Read access to stored nodes; implementations may cache, since nodes are immutable. */
export interface NodeSource {
  getNode(id: string): Promise<TreeNode>;
  /** Several nodes in the order asked, in one read: a source whose reads are round trips provides it. */
  getNodes?(ids: string[]): Promise<TreeNode[]>;
  /** The chunks a stored node's record lists, when known (a rewrite then stores only its new chunks; see stored-records.ts). */
  storedChunks?(id: string): readonly string[] | undefined;
  /** Stored rows as they are (those not stored are left out): what a directory's name index (name-index.ts) is read from. */
  readRows?(ids: string[]): Promise<Map<string, Uint8Array>>;
}

/** Nodes by id, in one read when the source can. */
export function readNodes(source: NodeSource, ids: string[]): Promise<TreeNode[]> {
  return source.getNodes ? source.getNodes(ids) : Promise.all(ids.map((id) => source.getNode(id)));
}

/** `source`, answering first from `local` (nodes in memory: read ahead, or written and not stored). */
export function overlaySource(source: NodeSource, local: (id: string) => TreeNode | undefined): NodeSource {
  return {
    getNode: async (id) => local(id) ?? source.getNode(id),
    getNodes: async (ids) => {
      const rest = ids.filter((id) => local(id) === undefined);
      const read = await readNodes(source, rest);
      const fromSource = new Map(rest.map((id, i) => [id, read[i]]));
      return ids.map((id) => local(id) ?? fromSource.get(id)!);
    },
    readRows: source.readRows?.bind(source),
  };
}

// ---- stored form ----------------------------------------------------------------------------

function dirEntry(payload: Buffer, node: OxenDirNode): DirEntry {
  return { kind: 'dir', name: node.name, id: node.hash, size: node.numBytes, files: sumCounts(node.dataTypeCounts), lastCommitId: node.lastCommitId, payload };
}

const sumCounts = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

/** A directory entry from its Oxen payload (as a vnode or a name index holds it). */
export function entryFromPayload(kind: 'file' | 'dir', payload: Buffer): Entry {
  if (kind === 'dir') return dirEntry(payload, decodeOxenNode('Dir', payload) as OxenDirNode);
  const file = readFileSummary(payload);
  return { kind: 'file', name: file.name, hash: file.hash, size: file.numBytes, lastCommitId: file.lastCommitId, dataType: file.dataType, payload };
}

/** Decodes a record (as Oxen writes it: `node` and `children` blobs) into Yoke's view of it. */
export function decodeRecord(id: string, node: Uint8Array, children: Uint8Array): TreeNode {
  const record = decodeNodeRecord(node, children);
  switch (record.type) {
    case 'Dir': {
      const dir = decodeOxenNode('Dir', record.payload) as OxenDirNode;
      if (record.children.some((c) => c.type !== 'VNode')) throw new Error(`dir ${id}: every child of a directory is a vnode`);
      return {
        kind: 'dir',
        id,
        name: dir.name,
        entries: dir.numEntries,
        size: dir.numBytes,
        files: sumCounts(dir.dataTypeCounts),
        lastCommitId: dir.lastCommitId,
        counts: dir.dataTypeCounts,
        sizes: dir.dataTypeSizes,
        vnodes: record.children.map((c) => c.hash),
        vnodePayloads: record.children.map((c) => c.payload),
        payload: record.payload,
      };
    }
    case 'VNode': {
      const entries = record.children.map((c): Entry => {
        if (c.type !== 'File' && c.type !== 'Dir') throw new Error(`vnode ${id}: a vnode holds files and directories, not a ${c.type}`);
        return entryFromPayload(c.type === 'File' ? 'file' : 'dir', c.payload);
      });
      for (let i = 1; i < entries.length; i++) {
        if (compareNames(entries[i - 1].name, entries[i].name) >= 0) throw new Error(`vnode ${id}: entries are not sorted by name (or repeat one)`);
      }
      return { kind: 'vnode', id, entries };
    }
    case 'Commit': {
      const commit = decodeOxenNode('Commit', record.payload);
      if (commit.type !== 'Commit') throw new Error('unreachable');
      const root = record.children[0];
      if (record.children.length !== 1 || root.type !== 'Dir') throw new Error(`commit ${id}: a commit has exactly one child, its root directory`);
      const { type: _, hash: __, ...fields } = commit;
      return { kind: 'commit', id, ...fields, rootId: root.hash };
    }
    case 'File':
      throw new Error(`node ${id}: file nodes are stored inside their vnode, not on their own`);
  }
}

/** A stored record (plain or chunked: stored-records.ts), decoded; a chunked one's chunks come from `chunk`. */
export function decodeStoredNode(id: string, bytes: Uint8Array, chunk: ChunkLookup = noChunks): TreeNode {
  const { node, children } = storedBlobs(bytes, chunk);
  return decodeRecord(id, node, children);
}

/** Collects the records a change creates: as records, and as the rows that store them; re-adding one is harmless. */
export class NodeWriter {
  /** Stored rows by id: records' heads and the chunks not known to be stored already. */
  readonly nodes = new Map<string, Uint8Array>();
  readonly records = new Map<string, NodeRecord>();

  /** `keys` cut the children into chunks (stored-records.ts); `stored` are chunks stored already. */
  put(record: NodeRecord, keys: readonly string[] | 'position', stored?: ReadonlySet<string>): void {
    this.records.set(record.id, record);
    for (const [id, bytes] of storedRows(record, keys, stored)) this.nodes.set(id, bytes);
  }
}

// ---- names ----------------------------------------------------------------------------------

/** Two entries name the same content (same file bytes, or the same directory tree). */
export function sameEntry(a: Entry | null, b: Entry | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.kind === 'file' && b.kind === 'file') return a.hash === b.hash;
  if (a.kind === 'dir' && b.kind === 'dir') return a.id === b.id;
  return false;
}

const byName = (a: Entry, b: Entry) => compareNames(a.name, b.name);

// ---- reading --------------------------------------------------------------------------------

export function asDir(node: TreeNode): DirNode {
  if (node.kind !== 'dir') throw new Error(`Node ${node.id} is not a directory`);
  return node;
}

export function asVnode(node: TreeNode): Entry[] {
  if (node.kind !== 'vnode') throw new Error(`Node ${node.id} is not a vnode`);
  return node.entries;
}

export async function loadDir(source: NodeSource, id: string): Promise<DirNode> {
  return asDir(await source.getNode(id));
}

export async function loadVnode(source: NodeSource, id: string): Promise<Entry[]> {
  return asVnode(await source.getNode(id));
}

/** The entries of several vnodes, read together. */
export async function loadVnodes(source: NodeSource, ids: string[]): Promise<Entry[][]> {
  return (await readNodes(source, ids)).map(asVnode);
}

function findSorted(entries: Entry[], name: string): Entry | undefined {
  let lo = 0;
  let hi = entries.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const order = compareNames(entries[mid].name, name);
    if (order === 0) return entries[mid];
    if (order < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/** The id of the vnode of `dir` that holds `path` (a full path), or null when the directory is empty. */
export function holderVnode(dir: DirNode, path: string): string | null {
  return dir.vnodes.length === 0 ? null : dir.vnodes[oxenVnodeIndex(path, dir.vnodes.length)];
}

/** The entry at `path` (full path) directly inside `dir`, reading only the vnode that holds it. */
export async function findChild(source: NodeSource, dir: DirNode, path: string): Promise<Entry | undefined> {
  const holder = holderVnode(dir, path);
  return holder === null ? undefined : findSorted(await loadVnode(source, holder), basename(path));
}

/**
 * The entry at `path` ('' is the root directory), or null when nothing is there. One path reads a node
 * at a time either way; this loop costs a few times less CPU than lookupMany's rounds (a hot path).
 */
export async function lookup(source: NodeSource, rootId: string, path: string): Promise<Entry | null> {
  let dir = await loadDir(source, rootId);
  let entry: Entry = { kind: 'dir', name: '', id: rootId, size: dir.size, files: dir.files, lastCommitId: dir.lastCommitId, payload: dir.payload };
  const segments = splitRepoPath(path);
  for (let i = 0; i < segments.length; i++) {
    if (i > 0) {
      if (entry.kind !== 'dir') return null;
      dir = await loadDir(source, entry.id);
    }
    const child = await findChild(source, dir, segments.slice(0, i + 1).join('/'));
    if (!child) return null;
    entry = child;
  }
  return entry;
}

/**
 * The entries at several paths, each in its own tree (or the same), or null where nothing is there.
 * The lookups go down together: the directories of a level are read in one call, then their vnodes.
 */
export async function lookupMany(source: NodeSource, queries: Array<{ rootId: string; path: string }>): Promise<Array<Entry | null>> {
  const found: Array<Entry | null> = queries.map(() => null);
  // Looks for segment `depth` of query `i` in directory `dirId`.
  const inDir = (i: number, segments: string[], depth: number, dirId: string): WalkStep<TreeNode> => ({
    ids: [dirId],
    then: ([node]) => {
      const dir = asDir(node);
      if (segments.length === 0) {
        found[i] = { kind: 'dir', name: '', id: dirId, size: dir.size, files: dir.files, lastCommitId: dir.lastCommitId, payload: dir.payload };
        return;
      }
      const holder = holderVnode(dir, segments.slice(0, depth + 1).join('/'));
      if (holder === null) return;
      return [
        {
          ids: [holder],
          then: ([vnode]) => {
            const child = findSorted(asVnode(vnode), segments[depth]);
            if (child && depth + 1 === segments.length) found[i] = child;
            else if (child?.kind === 'dir') return [inDir(i, segments, depth + 1, child.id)];
          },
        },
      ];
    },
  });
  await runInRounds((ids) => readNodes(source, ids), queries.map((q, i) => inDir(i, splitRepoPath(q.path), 0, q.rootId)));
  return found;
}

/** All direct entries of a directory node, sorted by name. */
export async function listDir(source: NodeSource, dirId: string): Promise<Entry[]> {
  return listDirNode(source, await loadDir(source, dirId));
}

/** All direct entries of a loaded directory node, sorted by name. */
export async function listDirNode(source: NodeSource, dir: DirNode): Promise<Entry[]> {
  const all = (await loadVnodes(source, dir.vnodes)).flat();
  return dir.vnodes.length > 1 ? all.sort(byName) : all;
}

/** Every file below a directory, depth first in name order. */
export async function* walkFiles(
  source: NodeSource,
  dirId: string,
  prefix = '',
): AsyncGenerator<{ path: string; entry: FileEntry }> {
  for (const entry of await listDir(source, dirId)) {
    const path = joinRepoPath(prefix, entry.name);
    if (entry.kind === 'file') yield { path, entry };
    else yield* walkFiles(source, entry.id, path);
  }
}

// ---- writing --------------------------------------------------------------------------------

/** A file a change puts at a path; `carry` is an existing entry with these bytes to reuse as it is (a merge takes the other side's). */
export interface FileLeaf {
  hash: string;
  size: number;
  carry?: FileEntry;
}

/** A change set: path → new file, or null to remove the file or directory at that path. */
export type ChangeSet = Map<string, FileLeaf | null>;

interface ChangeDir {
  files: Map<string, FileLeaf | null>;
  dirs: Map<string, ChangeDir>;
}

/** A path in the change set collides with the tree or with another change. */
export class PathConflict extends BadRequest {}

function groupChanges(changes: ChangeSet): ChangeDir {
  const root: ChangeDir = { files: new Map(), dirs: new Map() };
  for (const [path, leaf] of changes) {
    const segments = splitRepoPath(path);
    if (segments.length === 0) throw new PathConflict('Cannot replace the repository root');
    let node = root;
    for (let i = 0; i < segments.length - 1; i++) {
      const name = segments[i];
      if (node.files.get(name)) {
        throw new PathConflict(`'${segments.slice(0, i + 1).join('/')}' is both a file and a directory in this change`);
      }
      let next = node.dirs.get(name);
      if (!next) node.dirs.set(name, (next = { files: new Map(), dirs: new Map() }));
      node = next;
    }
    const name = segments[segments.length - 1];
    if (leaf !== null && node.dirs.has(name)) {
      throw new PathConflict(`'${path}' is both a file and a directory in this change`);
    }
    node.files.set(name, leaf);
  }
  return root;
}

export interface ApplyOptions {
  /** The commit the change becomes: the last commit of every entry it changes (UNCOMMITTED for a workspace view). */
  commitId: string;
  vnodeSize?: number;
}

export interface ApplyResult {
  rootId: string;
  root: DirNode;
  /** Rows to store (see NodeWriter). */
  nodes: Map<string, Uint8Array>;
  /** The records written, by id. */
  records: Map<string, NodeRecord>;
}

/**
 * Applies a change set to the tree rooted at `rootId` (null: an empty tree) and returns the new
 * root. Only directories on a changed path are read and rewritten, and within each of them only
 * the vnodes holding a changed name (unless the vnode count changes). A file written with the
 * bytes it already has is no change, so the tree (and its ids) stay as they were. Directories
 * left empty are removed, as in git; the root stays, possibly empty.
 */
export async function applyChanges(source: NodeSource, rootId: string | null, changes: ChangeSet, options: ApplyOptions): Promise<ApplyResult> {
  const writer = new NodeWriter();
  const grouped = groupChanges(changes);
  // A change along one path reads one directory after another anyway (rewriteDir reads each one's vnodes together).
  const read = rootId === null || !forks(grouped) ? source : await readAhead(source, rootId, grouped);
  const storedChunks = (id: string | undefined) => new Set(id === undefined ? [] : (source.storedChunks?.(id) ?? []));
  const context: RewriteContext = {
    source: read,
    writer,
    commitId: options.commitId,
    vnodeSize: options.vnodeSize ?? DEFAULT_VNODE_SIZE,
    storedChunks,
    // A workspace's view is never stored, so it needs no index.
    indexed: options.commitId !== UNCOMMITTED,
  };
  const root = rootId === null ? null : await loadDir(read, rootId);
  const rewritten = await rewriteDir(context, root, '', grouped);
  const node = rewritten ?? writeDir(context, '', [], emptySummary());
  return { rootId: node.id, root: node, nodes: writer.nodes, records: writer.records };
}

/** Whether a change set goes into two subdirectories of some directory (so that reading ahead saves reads). */
function forks(change: ChangeDir): boolean {
  return change.dirs.size > 1 || [...change.dirs.values()].some(forks);
}

/**
 * `source` with what a change set reads already in memory: the directories on its paths and the vnodes
 * holding its names, read a level at a time (rewriteDir goes one directory after another). What is not
 * read ahead (every vnode of a directory whose vnode count changes) is read from `source` as it is needed.
 */
async function readAhead(source: NodeSource, rootId: string, change: ChangeDir): Promise<NodeSource> {
  const nodes = new Map<string, TreeNode>();
  const inDir = (id: string, path: string, change: ChangeDir): WalkStep<TreeNode> => ({
    ids: [id],
    then: ([node]) => {
      nodes.set(id, node);
      const dir = asDir(node);
      const names = [...change.files.keys(), ...change.dirs.keys()];
      const holders = [...new Set(names.flatMap((name) => holderVnode(dir, joinRepoPath(path, name)) ?? []))];
      if (holders.length === 0) return;
      return [
        {
          ids: holders,
          then: (vnodes) => {
            vnodes.forEach((vnode, i) => nodes.set(holders[i], vnode));
            const entries = new Map(vnodes.flatMap(asVnode).map((e) => [e.name, e]));
            return [...change.dirs].flatMap(([name, sub]) => {
              const entry = entries.get(name);
              return entry?.kind === 'dir' && !change.files.has(name) ? [inDir(entry.id, joinRepoPath(path, name), sub)] : [];
            });
          },
        },
      ];
    },
  });
  await runInRounds((ids) => readNodes(source, ids), [inDir(rootId, '', change)]);
  return overlaySource(source, (id) => nodes.get(id));
}

interface RewriteContext {
  source: NodeSource;
  writer: NodeWriter;
  commitId: string;
  vnodeSize: number;
  /** The chunks the record a write replaces (by id) is stored with: those are not stored again. */
  storedChunks: (id: string | undefined) => ReadonlySet<string>;
  /** Whether large directories get their name index written (name-index.ts). */
  indexed: boolean;
}

interface Summary {
  entries: number;
  counts: Record<string, number>;
  sizes: Record<string, number>;
}

const emptySummary = (): Summary => ({ entries: 0, counts: {}, sizes: {} });

/** Adds (sign 1) or removes (sign -1) an entry's files from a directory's totals. */
function account(summary: Summary, entry: Entry, sign: 1 | -1, subdir?: DirNode): void {
  summary.entries += sign;
  // Never below zero (as Oxen's saturating arithmetic): a client's totals can be stale (Oxen 0.65
  // writes the directories above a modified file with their old bytes), so taking an entry away
  // may take more than a total holds.
  const add = (type: string, count: number, size: number) => {
    summary.counts[type] = Math.max(0, (summary.counts[type] ?? 0) + sign * count);
    summary.sizes[type] = Math.max(0, (summary.sizes[type] ?? 0) + sign * size);
    if (summary.counts[type] === 0) {
      delete summary.counts[type];
      delete summary.sizes[type];
    }
  };
  if (entry.kind === 'file') add(entry.dataType, 1, entry.size);
  else {
    const counts = subdir?.counts ?? (decodeOxenNode('Dir', entry.payload) as OxenDirNode).dataTypeCounts;
    const sizes = subdir?.sizes ?? (decodeOxenNode('Dir', entry.payload) as OxenDirNode).dataTypeSizes;
    for (const type of Object.keys(counts)) add(type, counts[type], sizes[type] ?? 0);
  }
}

/** The vnode count for `entries`: the current one while vnodes average between a quarter and twice `vnodeSize`. */
export function chooseVnodeCount(current: number, entries: number, vnodeSize: number): number {
  if (entries === 0) return 0;
  if (current > 0 && entries > (current * vnodeSize) / 4 && entries <= current * vnodeSize * 2) return current;
  let count = 1;
  while (count * vnodeSize < entries) count *= 2;
  return count;
}

/**
 * Rewrites one directory (null: it does not exist yet) with its part of the change set. Returns
 * the directory unchanged (same object) when nothing in it changes, null when it ends up empty.
 */
async function rewriteDir(context: RewriteContext, dir: DirNode | null, path: string, change: ChangeDir): Promise<DirNode | null> {
  const oldCount = dir?.vnodes.length ?? 0;
  const loaded = new Map<number, Map<string, Entry>>();
  const load = async (indices: number[]) => {
    const wanted = [...new Set(indices)].filter((i) => !loaded.has(i));
    const lists = await loadVnodes(context.source, wanted.map((i) => dir!.vnodes[i]));
    wanted.forEach((index, k) => loaded.set(index, new Map(lists[k].map((e) => [e.name, e]))));
  };
  const vnodeEntries = async (index: number) => {
    await load([index]);
    return loaded.get(index)!;
  };
  const existing = async (name: string) =>
    oldCount === 0 ? undefined : (await vnodeEntries(oxenVnodeIndex(joinRepoPath(path, name), oldCount))).get(name);
  // The vnodes holding the changed names, then the subdirectories the change goes into, each read together.
  if (oldCount > 0) await load([...change.files.keys(), ...change.dirs.keys()].map((name) => oxenVnodeIndex(joinRepoPath(path, name), oldCount)));
  const subdirIds: string[] = [];
  for (const name of change.dirs.keys()) {
    const old = await existing(name);
    if (old?.kind === 'dir' && !change.files.has(name)) subdirIds.push(old.id);
  }
  const subdirs = new Map((await readNodes(context.source, subdirIds)).map((node) => [node.id, asDir(node)]));

  const replacements = new Map<string, { old: Entry | undefined; next: Entry | null; subdir?: DirNode }>();
  for (const [name, leaf] of change.files) {
    const old = await existing(name);
    if (leaf !== null && old?.kind === 'dir') throw new PathConflict(`'${joinRepoPath(path, name)}' is a directory`);
    if (leaf === null ? old === undefined : old?.kind === 'file' && old.hash === leaf.hash) continue; // no change
    replacements.set(name, { old, next: leaf === null ? null : newFileEntry(context, name, leaf) });
  }
  for (const [name, sub] of change.dirs) {
    const old = await existing(name);
    // The same change set also removes `name` (groupChanges allows only null there): start afresh.
    const removed = change.files.has(name);
    if (old?.kind === 'file' && !removed) throw new PathConflict(`'${joinRepoPath(path, name)}' is a file, not a directory`);
    const base = old?.kind === 'dir' && !removed ? subdirs.get(old.id)! : null;
    const child = await rewriteDir(context, base, joinRepoPath(path, name), sub);
    if (child === base) continue;
    const next: Entry | null =
      child === null ? null : { kind: 'dir', name, id: child.id, size: child.size, files: child.files, lastCommitId: child.lastCommitId, payload: child.payload };
    const previous = replacements.get(name)?.old ?? old;
    if (previous === undefined && next === null) replacements.delete(name);
    else replacements.set(name, { old: previous, next, subdir: child ?? undefined });
  }
  if (replacements.size === 0) return dir;

  const summary: Summary = dir ? { entries: dir.entries, counts: { ...dir.counts }, sizes: { ...dir.sizes } } : emptySummary();
  for (const { old, next, subdir } of replacements.values()) {
    if (old) account(summary, old, -1);
    if (next) account(summary, next, 1, subdir);
  }
  if (summary.entries === 0 && path !== '') return null;

  const count = chooseVnodeCount(oldCount, summary.entries, context.vnodeSize);
  let vnodes: WrittenVnode[];
  let allEntries: Entry[] | null = null;
  if (count === oldCount) {
    // Same partition: rewrite only the vnodes holding a changed name.
    vnodes = dir!.vnodes.map((id, i) => ({ id, payload: dir!.vnodePayloads[i] }));
    const touched = new Set<number>();
    for (const [name, { next }] of replacements) {
      const index = oxenVnodeIndex(joinRepoPath(path, name), count);
      const map = await vnodeEntries(index);
      if (next) map.set(name, next);
      else map.delete(name);
      touched.add(index);
    }
    for (const index of touched) vnodes[index] = writeVnode(context, path, [...loaded.get(index)!.values()], dir!.vnodes[index]);
  } else {
    // The count changed: redistribute every entry.
    const all = new Map<string, Entry>();
    await load(Array.from({ length: oldCount }, (_, i) => i));
    for (let i = 0; i < oldCount; i++) for (const [name, e] of await vnodeEntries(i)) all.set(name, e);
    for (const [name, { next }] of replacements) {
      if (next) all.set(name, next);
      else all.delete(name);
    }
    allEntries = [...all.values()];
    const spread: Entry[][] = Array.from({ length: count }, () => []);
    for (const e of allEntries) spread[oxenVnodeIndex(joinRepoPath(path, e.name), count)].push(e);
    vnodes = spread.map((entries) => writeVnode(context, path, entries));
  }
  const written = writeDir(context, path, vnodes, summary, dir?.id);
  await writeNameIndex(context, dir, written, allEntries, replacements);
  return written;
}

/** The name index items of `entries`, in listing order. */
export function nameIndexItems(entries: Iterable<Entry>): IndexItem[] {
  return [...entries].map((e) => ({ key: entryKey(e.kind, e.name), count: 1, value: e.payload })).sort(compareKeys);
}

/**
 * Writes the name index (name-index.ts) of `written` when it is large: built from its entries when all of them
 * were read, else by updating the index of `dir`, the directory it replaces, if that has one. An index that cannot
 * be updated (or comes out with the wrong count) is not written: a listing of the directory builds it again.
 */
async function writeNameIndex(context: RewriteContext, dir: DirNode | null, written: DirNode, all: Entry[] | null, replacements: Map<string, { old: Entry | undefined; next: Entry | null }>): Promise<void> {
  const readRows = context.source.readRows?.bind(context.source);
  if (!context.indexed || readRows === undefined || written.entries < INDEXED_ENTRIES) return;
  const nodes = context.writer.nodes;
  const rows: IndexRows = {
    read: async (ids) => {
      const found = await readRows(ids.filter((id) => !nodes.has(id)));
      return ids.map((id) => {
        const bytes = nodes.get(id) ?? found.get(id);
        if (bytes === undefined) throw new Error(`index node ${id} is not stored`);
        return bytes;
      });
    },
    write: (id, bytes) => nodes.set(id, bytes),
  };
  let root: IndexRoot | null = null;
  if (all !== null) root = buildIndex(nameIndexItems(all), rows);
  else if (dir !== null) {
    const stored = (await readRows([indexRootId(dir.id)])).get(indexRootId(dir.id));
    if (stored === undefined) return;
    const changes: IndexChange[] = [];
    for (const [name, { old, next }] of replacements) {
      if (old && old.kind !== next?.kind) changes.push({ key: entryKey(old.kind, name), value: null });
      if (next) changes.push({ key: entryKey(next.kind, name), value: next.payload });
    }
    try {
      root = await updateIndex(decodeIndexRoot(stored), changes, rows);
    } catch {
      return; // a damaged index: the directory's next listing builds a new one
    }
  }
  if (root !== null && indexCount(root.top) === written.entries) nodes.set(indexRootId(written.id), encodeIndexRoot(root));
}

function newFileEntry(context: RewriteContext, name: string, leaf: FileLeaf): FileEntry {
  if (leaf.carry && leaf.carry.name === name && leaf.carry.hash === leaf.hash) return leaf.carry;
  const { mimeType, dataType, extension } = describeFile(name);
  const modified = instantFromIso(new Date().toISOString());
  const payload = encodeOxenNode({
    type: 'File',
    name,
    metadataHash: null,
    hash: leaf.hash,
    combinedHash: leaf.hash,
    numBytes: leaf.size,
    lastCommitId: context.commitId,
    lastModifiedSeconds: modified.seconds,
    lastModifiedNanoseconds: modified.nanoseconds,
    dataType,
    metadata: null,
    mimeType,
    extension,
    chunkHashes: [leaf.hash],
    chunkType: 'SingleFile',
    storageBackend: 'Disk',
  });
  return { kind: 'file', name, hash: leaf.hash, size: leaf.size, lastCommitId: context.commitId, dataType, payload };
}

interface WrittenVnode {
  id: string;
  payload: Buffer;
}

/** Writes a vnode of `entries`, in place of the vnode `replacing` (if any). */
function writeVnode(context: RewriteContext, dirPath: string, entries: Entry[], replacing?: string): WrittenVnode {
  entries.sort(byName);
  // The commit is in the id as in the directory's: ids a pusher could predict from a tree it can
  // read would let it store a record under an id a later commit of Yoke's takes (stored first wins).
  const id = hashBuffer(Buffer.concat([Buffer.from(`vnode\0${dirPath}\0${context.commitId}\0`, 'utf8'), ...entries.map((e) => e.payload)]));
  const children: RecordChild[] = entries.map((e) => ({ type: e.kind === 'file' ? 'File' : 'Dir', hash: e.kind === 'file' ? e.hash : e.id, payload: e.payload }));
  const payload = encodeOxenNode({ type: 'VNode', hash: id, numEntries: entries.length });
  context.writer.put(encodeNodeRecord(id, 'VNode', NO_PARENT, payload, children), entries.map((e) => e.name), context.storedChunks(replacing));
  return { id, payload };
}

/** Writes a directory of `vnodes`, in place of the directory `replacing` (if any). */
function writeDir(context: RewriteContext, path: string, vnodes: WrittenVnode[], summary: Summary, replacing?: string): DirNode {
  const id = hashBuffer(`dir\0${path}\0${context.commitId}\0${vnodes.map((v) => v.id).join(',')}`);
  const children: RecordChild[] = vnodes.map((v) => ({ type: 'VNode', hash: v.id, payload: v.payload }));
  const size = Object.values(summary.sizes).reduce((a, b) => a + b, 0);
  const payload = encodeOxenNode({
    type: 'Dir',
    name: basename(path),
    hash: id,
    numEntries: summary.entries,
    numBytes: size,
    lastCommitId: context.commitId,
    // As Oxen's commit writer: directories carry no modification time.
    lastModifiedSeconds: 0,
    lastModifiedNanoseconds: 0,
    dataTypeCounts: summary.counts,
    dataTypeSizes: summary.sizes,
  });
  context.writer.put(encodeNodeRecord(id, 'Dir', NO_PARENT, payload, children), 'position', context.storedChunks(replacing));
  return {
    kind: 'dir',
    id,
    name: basename(path),
    entries: summary.entries,
    size,
    files: sumCounts(summary.counts),
    lastCommitId: context.commitId,
    counts: summary.counts,
    sizes: summary.sizes,
    vnodes: vnodes.map((v) => v.id),
    vnodePayloads: vnodes.map((v) => v.payload),
    payload,
  };
}

// ---- commits --------------------------------------------------------------------------------

export interface CommitFields {
  id: string;
  parentIds: string[];
  message: string;
  author: string;
  email: string;
  /** ISO-8601 UTC. */
  timestamp: string;
}

/** A commit's node record (its one child is the root directory's payload), in stored form. */
export function commitNodeBytes(commit: CommitFields, root: DirNode): Uint8Array {
  const payload = encodeOxenNode({
    type: 'Commit',
    hash: commit.id,
    parentIds: commit.parentIds,
    message: commit.message,
    author: commit.author,
    email: commit.email,
    timestamp: instantFromIso(commit.timestamp),
  });
  const rootChild: RecordChild = { type: 'Dir', hash: root.id, payload: root.payload };
  return frameRecord(encodeNodeRecord(commit.id, 'Commit', commit.parentIds[0] ?? NO_PARENT, payload, [rootChild]));
}
