import { xxh32 } from '@node-rs/xxhash';
import { hashBuffer } from './hash.js';
import { BadRequest } from './errors.js';
import { joinRepoPath, splitRepoPath } from './paths.js';

/**
 * The merkle tree: commit → directory → vnode (bucket) → entries.
 *
 * - A file is a leaf entry (name, content hash, size) stored inside its directory's bucket.
 * - A directory node holds its totals and the ids of its buckets. Up to `bucketSize` entries live
 *   in one bucket; beyond that the entries are spread over a power-of-two number of buckets by a
 *   hash of the name, so changing one entry rewrites one bucket, the directory node and its
 *   ancestors — never the whole directory.
 * - Every node id is the xxh3-128 of the node's canonical bytes: anyone can re-verify a node, and
 *   identical subtrees get identical ids, so unchanged subtrees are shared between commits.
 */

export const DEFAULT_BUCKET_SIZE = 4096;

export interface FileLeaf {
  hash: string;
  size: number;
}

export type Entry =
  | { kind: 'file'; name: string; hash: string; size: number }
  | { kind: 'dir'; name: string; id: string; size: number; files: number };

export interface DirNode {
  kind: 'dir';
  /** Direct children (files and directories). */
  entries: number;
  /** Bytes of all files below, recursively. */
  size: number;
  /** Files below, recursively. */
  files: number;
  /** Bucket (vnode) ids; null marks an empty bucket. */
  buckets: Array<string | null>;
}

export interface VNode {
  kind: 'vnode';
  /** Sorted by name. */
  entries: Entry[];
}

export type TreeNode = DirNode | VNode;

/** Read access to stored nodes; implementations may cache, since nodes are immutable. */
export interface NodeSource {
  getNode(id: string): Promise<TreeNode>;
}

// ---- canonical encoding -------------------------------------------------------------------

type EncodedEntry = [string, 'f', string, number] | [string, 'd', string, number, number];

export function encodeNode(node: TreeNode): Uint8Array {
  const body =
    node.kind === 'dir'
      ? ['dir', node.entries, node.size, node.files, node.buckets]
      : [
          'vnode',
          node.entries.map((e): EncodedEntry =>
            e.kind === 'file' ? [e.name, 'f', e.hash, e.size] : [e.name, 'd', e.id, e.size, e.files],
          ),
        ];
  return Buffer.from(JSON.stringify(body), 'utf8');
}

export function decodeNode(bytes: Uint8Array): TreeNode {
  const body = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  if (body[0] === 'dir') {
    return { kind: 'dir', entries: body[1], size: body[2], files: body[3], buckets: body[4] };
  }
  if (body[0] === 'vnode') {
    return {
      kind: 'vnode',
      entries: (body[1] as EncodedEntry[]).map((e): Entry =>
        e[1] === 'f'
          ? { kind: 'file', name: e[0], hash: e[2], size: e[3] }
          : { kind: 'dir', name: e[0], id: e[2], size: e[3], files: e[4] },
      ),
    };
  }
  throw new Error(`Unknown tree node type: ${String(body[0])}`);
}

export function nodeId(bytes: Uint8Array): string {
  return hashBuffer(bytes);
}

/** Collects the nodes a change creates; ids are content hashes, so re-adding one is harmless. */
export class NodeWriter {
  readonly nodes = new Map<string, Uint8Array>();

  put(node: TreeNode): string {
    const bytes = encodeNode(node);
    const id = nodeId(bytes);
    this.nodes.set(id, bytes);
    return id;
  }
}

export const EMPTY_DIR: DirNode = { kind: 'dir', entries: 0, size: 0, files: 0, buckets: [] };

// ---- bucketing ------------------------------------------------------------------------------

export function bucketCount(entries: number, bucketSize: number): number {
  if (entries === 0) return 0;
  let n = 1;
  while (n * bucketSize < entries) n *= 2;
  return n;
}

export function bucketOf(name: string, buckets: number): number {
  return buckets <= 1 ? 0 : xxh32(name) & (buckets - 1);
}

const byName = (a: Entry, b: Entry) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Two entries name the same content (same file bytes, or the same directory tree). */
export function sameEntry(a: Entry | null, b: Entry | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.kind === 'file' && b.kind === 'file') return a.hash === b.hash;
  if (a.kind === 'dir' && b.kind === 'dir') return a.id === b.id;
  return false;
}

// ---- reading --------------------------------------------------------------------------------

export async function loadDir(source: NodeSource, id: string): Promise<DirNode> {
  const node = await source.getNode(id);
  if (node.kind !== 'dir') throw new Error(`Node ${id} is not a directory`);
  return node;
}

export async function loadBucket(source: NodeSource, id: string | null): Promise<Entry[]> {
  if (id === null) return [];
  const node = await source.getNode(id);
  if (node.kind !== 'vnode') throw new Error(`Node ${id} is not a vnode`);
  return node.entries;
}

function findSorted(entries: Entry[], name: string): Entry | undefined {
  let lo = 0;
  let hi = entries.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const candidate = entries[mid].name;
    if (candidate === name) return entries[mid];
    if (candidate < name) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/** The entry named `name` directly inside directory `dir`, reading only its bucket. */
export async function findChild(source: NodeSource, dir: DirNode, name: string): Promise<Entry | undefined> {
  if (dir.buckets.length === 0) return undefined;
  const entries = await loadBucket(source, dir.buckets[bucketOf(name, dir.buckets.length)]);
  return findSorted(entries, name);
}

/** The entry at `path` ('' is the root directory), or null when nothing is there. */
export async function lookup(source: NodeSource, rootId: string, path: string): Promise<Entry | null> {
  let dir = await loadDir(source, rootId);
  let entry: Entry = { kind: 'dir', name: '', id: rootId, size: dir.size, files: dir.files };
  const segments = splitRepoPath(path);
  for (let i = 0; i < segments.length; i++) {
    if (i > 0) {
      if (entry.kind !== 'dir') return null;
      dir = await loadDir(source, entry.id);
    }
    const child = await findChild(source, dir, segments[i]);
    if (!child) return null;
    entry = child;
  }
  return entry;
}

/** All direct entries of a directory node, sorted by name. */
export async function listDir(source: NodeSource, dirId: string): Promise<Entry[]> {
  return listDirNode(source, await loadDir(source, dirId));
}

/** All direct entries of a loaded directory node, sorted by name. */
export async function listDirNode(source: NodeSource, dir: DirNode): Promise<Entry[]> {
  const all: Entry[] = [];
  for (const bucket of dir.buckets) all.push(...(await loadBucket(source, bucket)));
  return dir.buckets.length > 1 ? all.sort(byName) : all;
}

/** Every file below a directory, depth first in name order. */
export async function* walkFiles(
  source: NodeSource,
  dirId: string,
  prefix = '',
): AsyncGenerator<{ path: string; hash: string; size: number }> {
  for (const entry of await listDir(source, dirId)) {
    const path = joinRepoPath(prefix, entry.name);
    if (entry.kind === 'file') yield { path, hash: entry.hash, size: entry.size };
    else yield* walkFiles(source, entry.id, path);
  }
}

// ---- writing --------------------------------------------------------------------------------

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

export interface ApplyResult {
  rootId: string;
  root: DirNode;
  nodes: Map<string, Uint8Array>;
}

/**
 * Applies a change set to the tree rooted at `rootId` (null: an empty tree) and returns the new
 * root. Only directories on a changed path are read and rewritten, and within each of them only
 * the buckets holding a changed name (unless the bucket count itself changes). Directories left
 * empty are removed, as in git.
 */
export async function applyChanges(
  source: NodeSource,
  rootId: string | null,
  changes: ChangeSet,
  bucketSize = DEFAULT_BUCKET_SIZE,
): Promise<ApplyResult> {
  const writer = new NodeWriter();
  const grouped = groupChanges(changes);
  const rewritten = await rewriteDir(source, writer, bucketSize, rootId, '', grouped);
  return { rootId: rewritten.id, root: rewritten.node, nodes: writer.nodes };
}

async function rewriteDir(
  source: NodeSource,
  writer: NodeWriter,
  bucketSize: number,
  dirId: string | null,
  path: string,
  change: ChangeDir,
): Promise<{ id: string; node: DirNode }> {
  const dir = dirId === null ? EMPTY_DIR : await loadDir(source, dirId);
  const oldBuckets = dir.buckets.length;
  const loaded = new Map<number, Map<string, Entry>>();
  const bucketEntries = async (index: number) => {
    let map = loaded.get(index);
    if (!map) {
      map = new Map((await loadBucket(source, dir.buckets[index])).map((e) => [e.name, e]));
      loaded.set(index, map);
    }
    return map;
  };
  const existing = async (name: string) =>
    oldBuckets === 0 ? undefined : (await bucketEntries(bucketOf(name, oldBuckets))).get(name);

  const replacements = new Map<string, { old: Entry | undefined; next: Entry | null }>();
  for (const [name, leaf] of change.files) {
    const old = await existing(name);
    if (leaf !== null && old?.kind === 'dir') {
      throw new PathConflict(`'${joinRepoPath(path, name)}' is a directory`);
    }
    replacements.set(name, { old, next: leaf === null ? null : { kind: 'file', name, hash: leaf.hash, size: leaf.size } });
  }
  for (const [name, sub] of change.dirs) {
    const old = await existing(name);
    // The same change set also removes `name` (groupChanges allows only null there): start afresh.
    const removed = change.files.has(name);
    if (old?.kind === 'file' && !removed) {
      throw new PathConflict(`'${joinRepoPath(path, name)}' is a file, not a directory`);
    }
    const base = old?.kind === 'dir' && !removed ? old.id : null;
    const child = await rewriteDir(source, writer, bucketSize, base, joinRepoPath(path, name), sub);
    const next: Entry | null =
      child.node.entries === 0 ? null : { kind: 'dir', name, id: child.id, size: child.node.size, files: child.node.files };
    replacements.set(name, { old, next });
  }

  let entries = dir.entries;
  let size = dir.size;
  let files = dir.files;
  for (const { old, next } of replacements.values()) {
    if (old) {
      entries -= 1;
      size -= old.size;
      files -= old.kind === 'file' ? 1 : old.files;
    }
    if (next) {
      entries += 1;
      size += next.size;
      files += next.kind === 'file' ? 1 : next.files;
    }
  }

  const newBuckets = bucketCount(entries, bucketSize);
  let buckets: Array<string | null>;
  if (newBuckets === oldBuckets) {
    // Same layout: rewrite only the buckets holding a changed name.
    buckets = dir.buckets.slice();
    const touched = new Set<number>();
    for (const [name, { old, next }] of replacements) {
      if (!old && !next) continue; // removing something absent: nothing to rewrite
      const index = bucketOf(name, newBuckets);
      const map = await bucketEntries(index);
      if (next) map.set(name, next);
      else map.delete(name);
      touched.add(index);
    }
    for (const index of touched) buckets[index] = writeBucket(writer, [...loaded.get(index)!.values()]);
  } else {
    // The bucket count changed: redistribute every entry.
    const all = new Map<string, Entry>();
    for (let i = 0; i < oldBuckets; i++) for (const [name, e] of await bucketEntries(i)) all.set(name, e);
    for (const [name, { next }] of replacements) {
      if (next) all.set(name, next);
      else all.delete(name);
    }
    const spread: Entry[][] = Array.from({ length: newBuckets }, () => []);
    for (const e of all.values()) spread[bucketOf(e.name, newBuckets)].push(e);
    buckets = spread.map((bucket) => writeBucket(writer, bucket));
  }

  const node: DirNode = { kind: 'dir', entries, size, files, buckets };
  return { id: writer.put(node), node };
}

function writeBucket(writer: NodeWriter, entries: Entry[]): string | null {
  if (entries.length === 0) return null;
  return writer.put({ kind: 'vnode', entries: entries.sort(byName) });
}
