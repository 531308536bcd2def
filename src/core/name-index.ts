import { hashBuffer } from './hash.js';
import { idBytesBE, idFromBytesBE } from './oxen-nodes.js';
import { asBuffer, mixKey } from './stored-records.js';

/**
 * A large directory's entries in listing order, stored beside it (Oxen's records spread them over vnodes
 * by the hash of their path, so a page by name would otherwise read and sort every entry).
 *
 * A search tree with counts: leaves hold entries (key and Oxen payload), inner nodes hold, per child, its
 * last key, how many entries lie below it and its id. A page at any offset reads one node per level and
 * the leaves it shows. Nodes are cut where a key hashes to a boundary (as the chunks of stored-records.ts),
 * so a change rewrites the nodes on its path and leaves its neighbours (shared with earlier versions) alone.
 * Nodes are stored under 'x' + the hash of their bytes; the top node under 'i' + the directory's id,
 * after the count of subdirectories.
 *
 * Node: u8 height (0: leaf), u32 LE item count, per item: u16 LE key length, key (UTF-8), u32 LE count
 * (1 in a leaf), u32 LE value length, value (a leaf's: the entry's payload; an inner node's: the child's
 * id, 16 bytes big-endian).
 */

/** A key and what it stands for: an entry (count 1, its payload) or a node (entries below it, its id). */
export interface IndexItem {
  key: string;
  count: number;
  value: Buffer;
}

export interface IndexNode {
  height: number;
  items: IndexItem[];
}

/** The top of an index: the directory's subdirectory count and its top node. */
export interface IndexRoot {
  dirCount: number;
  top: IndexNode;
}

/** Reads index nodes by id (each must be stored) and keeps the ones a change writes. */
export interface IndexRows {
  read(ids: string[]): Promise<Uint8Array[]>;
  write(id: string, bytes: Buffer): void;
}

/** A key's new entry (payload), or null to remove it. */
export interface IndexChange {
  key: string;
  value: Buffer | null;
}

/** Directories with fewer entries are listed by reading them whole (a few milliseconds). */
export const INDEXED_ENTRIES = 1000;

/** One key in this many ends a node, per height: leaves of about 8 entries (1.4 KB), inner nodes of about 16 children. */
const BOUNDARY = [8, 16];
/** A run of keys that never hits a boundary is cut here anyway. */
const MAX_RUN = [32, 64];
const NODE_PREFIX = 'x';
const ROOT_PREFIX = 'i';

/** The row id of the index of directory `dirId`. */
export const indexRootId = (dirId: string) => ROOT_PREFIX + dirId;

/** Listing order: directories first, then files, each by name (JavaScript string order). */
export const entryKey = (kind: 'dir' | 'file', name: string) => (kind === 'dir' ? 'd' : 'f') + name;
export const keyKind = (key: string): 'dir' | 'file' => (key[0] === 'd' ? 'dir' : 'file');
/** Orders keys (or items and changes by their keys) as the index holds them. */
export const compareKeys = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

const isBoundary = (key: string, height: number) => mixKey(key, height) % BOUNDARY[Math.min(height, 1)] === 0;

/** The child ids of an inner node (none for a leaf). */
export function indexChildIds(node: IndexNode): string[] {
  return node.height === 0 ? [] : node.items.map((item) => NODE_PREFIX + idFromBytesBE(item.value));
}

export function encodeIndexNode(node: IndexNode): Buffer {
  const keys = node.items.map((item) => Buffer.from(item.key, 'utf8'));
  const size = 5 + node.items.reduce((sum, item, i) => sum + 10 + keys[i].length + item.value.length, 0);
  const out = Buffer.allocUnsafe(size);
  let at = out.writeUInt8(node.height, 0);
  at = out.writeUInt32LE(node.items.length, at);
  node.items.forEach((item, i) => {
    at = out.writeUInt16LE(keys[i].length, at);
    at += keys[i].copy(out, at);
    at = out.writeUInt32LE(item.count, at);
    at = out.writeUInt32LE(item.value.length, at);
    at += item.value.copy(out, at);
  });
  return out;
}

export function decodeIndexNode(bytes: Uint8Array): IndexNode {
  const buf = asBuffer(bytes);
  const fail = () => {
    throw new Error('index node is malformed');
  };
  if (buf.length < 5) fail();
  const height = buf.readUInt8(0);
  const count = buf.readUInt32LE(1);
  const items: IndexItem[] = [];
  let at = 5;
  for (let i = 0; i < count; i++) {
    if (at + 2 > buf.length) fail();
    const keyLength = buf.readUInt16LE(at);
    if (at + 10 + keyLength > buf.length) fail();
    const key = buf.toString('utf8', at + 2, at + 2 + keyLength);
    at += 2 + keyLength;
    const itemCount = buf.readUInt32LE(at);
    const valueLength = buf.readUInt32LE(at + 4);
    if (at + 8 + valueLength > buf.length) fail();
    items.push({ key, count: itemCount, value: buf.subarray(at + 8, at + 8 + valueLength) });
    at += 8 + valueLength;
  }
  if (at !== buf.length || (height > 0 && items.some((item) => item.value.length !== 16))) fail();
  return { height, items };
}

export function encodeIndexRoot(root: IndexRoot): Buffer {
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32LE(root.dirCount, 0);
  return Buffer.concat([head, encodeIndexNode(root.top)]);
}

export function decodeIndexRoot(bytes: Uint8Array): IndexRoot {
  const buf = asBuffer(bytes);
  if (buf.length < 4) throw new Error('index root is malformed');
  return { dirCount: buf.readUInt32LE(0), top: decodeIndexNode(buf.subarray(4)) };
}

/** Entries below a node or root. */
export const indexCount = (node: IndexNode) => node.items.reduce((sum, item) => sum + item.count, 0);

/** The index of `entries` (in key order, keys unique), its nodes below the top written to `rows`. */
export function buildIndex(entries: IndexItem[], rows: Pick<IndexRows, 'write'>): IndexRoot {
  const dirCount = entries.filter((item) => keyKind(item.key) === 'dir').length;
  let items = entries;
  for (let height = 0; ; height++) {
    const nodes = cut(items, height);
    if (nodes.length <= 1) return { dirCount, top: { height, items } };
    items = nodes.map((node) => stored(node, rows));
  }
}

/**
 * The index `root` becomes with `changes` (keys unique, in any order): the nodes on the changed keys'
 * paths are read and rewritten, the rest shared. Returns null when no entry is left.
 */
export async function updateIndex(root: IndexRoot, changes: IndexChange[], rows: IndexRows): Promise<IndexRoot | null> {
  const sorted = [...changes].sort(compareKeys);
  const dirDelta = { value: 0 };
  let items = await rewrite(root.top, sorted, rows, dirDelta);
  let height = root.top.height;
  for (;;) {
    if (items.length === 0) return null;
    if (height > 0 && items.length === 1) {
      // A top with one child: the child is the top.
      const [child] = await rows.read(indexChildIds({ height, items }));
      ({ height, items } = decodeIndexNode(child));
      continue;
    }
    const nodes = cut(items, height);
    if (nodes.length === 1) return { dirCount: root.dirCount + dirDelta.value, top: nodes[0] };
    items = nodes.map((node) => stored(node, rows));
    height++;
  }
}

/** Decoded index nodes by id (each must be stored): a reader may cache them, since a node id names its bytes. */
export type IndexNodeReader = (ids: string[]) => Promise<IndexNode[]>;

/** Items [from, to) of the index's leaves, in key order: one read per level. */
export async function readIndexRange(root: IndexRoot, from: number, to: number, readNodes: IndexNodeReader): Promise<IndexItem[]> {
  let level = [{ node: root.top, from, to }];
  while (level.length > 0 && level[0].node.height > 0) {
    const wanted: Array<{ id: string; from: number; to: number }> = [];
    for (const { node, from, to } of level) {
      const ids = indexChildIds(node);
      let start = 0;
      node.items.forEach((item, i) => {
        const end = start + item.count;
        if (end > from && start < to) wanted.push({ id: ids[i], from: Math.max(0, from - start), to: Math.min(item.count, to - start) });
        start = end;
      });
    }
    const read = await readNodes(wanted.map((w) => w.id));
    level = wanted.map((w, i) => ({ node: read[i], from: w.from, to: w.to }));
  }
  return level.flatMap(({ node, from, to }) => node.items.slice(from, to));
}

/** `items` (of nodes at `height`) cut into nodes. */
function cut(items: IndexItem[], height: number): IndexNode[] {
  const nodes: IndexNode[] = [];
  let start = 0;
  for (let i = 0; i < items.length; i++) {
    if (i === items.length - 1 || i + 1 - start >= MAX_RUN[Math.min(height, 1)] || isBoundary(items[i].key, height)) {
      nodes.push({ height, items: items.slice(start, i + 1) });
      start = i + 1;
    }
  }
  return nodes;
}

/** Stores a node below the top and returns its item in its parent. */
function stored(node: IndexNode, rows: Pick<IndexRows, 'write'>): IndexItem {
  const bytes = encodeIndexNode(node);
  const hash = hashBuffer(bytes);
  rows.write(NODE_PREFIX + hash, bytes);
  return { key: node.items[node.items.length - 1].key, count: indexCount(node), value: idBytesBE(hash) };
}

/**
 * The items `node` holds once `changes` (sorted, all within its key range) are made: a leaf's entries
 * merged with them; an inner node's children, those holding a change rewritten and cut again. A
 * rewritten run that ends without a boundary (its last key was removed) takes in the next child, so
 * nodes do not shrink for good.
 */
async function rewrite(node: IndexNode, changes: IndexChange[], rows: IndexRows, dirDelta: { value: number }): Promise<IndexItem[]> {
  if (node.height === 0) return merge(node.items, changes, dirDelta);
  // Change k goes to the first child whose last key is not below it (the last child takes the rest).
  const groups = new Map<number, IndexChange[]>();
  let child = 0;
  for (const change of changes) {
    while (child < node.items.length - 1 && node.items[child].key < change.key) child++;
    const group = groups.get(child);
    if (group) group.push(change);
    else groups.set(child, [change]);
  }
  const ids = indexChildIds(node);
  const touched = [...groups.keys()];
  const read = new Map((await rows.read(touched.map((i) => ids[i]))).map((bytes, k) => [touched[k], decodeIndexNode(bytes)]));
  const out: IndexItem[] = [];
  let pending: IndexItem[] = [];
  const flush = () => {
    for (const part of cut(pending, node.height - 1)) out.push(stored(part, rows));
    pending = [];
  };
  for (let i = 0; i < node.items.length; i++) {
    const group = groups.get(i);
    if (group) {
      pending.push(...(await rewrite(read.get(i)!, group, rows, dirDelta)));
    } else if (pending.length > 0 && !isBoundary(pending[pending.length - 1].key, node.height - 1)) {
      const [next] = await rows.read([ids[i]]);
      pending.push(...decodeIndexNode(next).items);
      flush();
    } else {
      if (pending.length > 0) flush();
      out.push(node.items[i]);
    }
  }
  if (pending.length > 0) flush();
  return out;
}

/** A leaf's entries with `changes` made, counting subdirectories added and removed. */
function merge(items: IndexItem[], changes: IndexChange[], dirDelta: { value: number }): IndexItem[] {
  const out: IndexItem[] = [];
  let i = 0;
  for (const change of changes) {
    while (i < items.length && items[i].key < change.key) out.push(items[i++]);
    const present = i < items.length && items[i].key === change.key;
    if (present) i++;
    const isDir = keyKind(change.key) === 'dir';
    if (change.value !== null) out.push({ key: change.key, count: 1, value: change.value });
    if (isDir) dirDelta.value += (change.value !== null ? 1 : 0) - (present ? 1 : 0);
  }
  while (i < items.length) out.push(items[i++]);
  return out;
}
