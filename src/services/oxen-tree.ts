import type { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { hashBuffer } from '../core/hash.js';
import { describeFile } from '../core/mime.js';
import {
  compareUtf8,
  encodeNodeRecord,
  encodeOxenNode,
  instantFromIso,
  NO_PARENT,
  nodeDirPath,
  oxenVnodeCount,
  oxenVnodeIndex,
  type NodeRecord,
  type RecordChild,
} from '../core/oxen-nodes.js';
import { basename, joinRepoPath, splitRepoPath } from '../core/paths.js';
import { loadBucket, loadDir, lookup, type DirNode, type Entry, type NodeSource } from '../core/tree.js';
import type { CommitRecord, MetaStore, RepoRecord } from '../storage/meta-store.js';
import { gzipFailure } from './gzip-failure.js';
import { allAncestors, commitsBetween } from './history.js';
import type { NodeCache } from './node-cache.js';
import { WeightedLru } from './weighted-lru.js';

/**
 * Serves a Yoke tree as Oxen's node records (`node` + `children` blobs), translated on the fly.
 *
 * Id mapping: a Yoke directory id is the Oxen dir id, a file node's id is its content hash and a
 * commit keeps its id; vnodes follow Oxen's split of a directory, with ids derived from the
 * directory's (see `oxenVnodes`). All are xxh3-128 hex, so valid Oxen u128 ids, and stable across requests.
 *
 * `last_commit_id` of files and directories is the commit the tree is read at, not the commit that
 * last changed the entry: finding that needs a walk back through history with per-file state,
 * while this keeps a record a pure function of (node id, commit), so a node that occurs at two
 * paths (identical directories) gets one record that is right for both. Oxen's client asks for a
 * directory at the directory's own latest commit (from `meta/`) and uses the id only to fetch large
 * files at `chunk/{commit}/{path}`, where the file is present with these bytes. When one response
 * covers several commits (a whole history, `base..head`), a shared node is sent once, stamped with
 * the oldest of them, the one that created it; should it have moved to another path since, that
 * stamp does not hold the path (only clone and fetch ask for several commits).
 *
 * Oxen's `data_type_counts`/`data_type_sizes` are not in Yoke's dir nodes; they are computed here
 * from file extensions and cached per directory id (content-addressed, so never stale). The first
 * request that needs the root's (every commit record holds its root dir) reads the whole tree once.
 */

export interface TreeDownloadOptions {
  /** Normalised directory paths; null for the whole tree. */
  subtrees: string[] | null;
  /** Directory levels below each start (-1: all), counted as Oxen does. */
  depth: number;
  /** Oxen's `is_download`: when false, a subtree also brings the nodes on the path down to it. */
  isDownload: boolean;
}

/** One of a directory's vnodes in Oxen's partition, with its payload. */
interface OxenVnode {
  id: string;
  entries: Entry[];
  payload: Buffer;
}

interface Summary {
  counts: Record<string, number>;
  sizes: Record<string, number>;
}

/** State of one download: what has been written, and the commit the entries are stamped with. */
interface Walk {
  repoId: string;
  source: NodeSource;
  commit: CommitRecord;
  modified: { seconds: number; nanoseconds: number };
  depth: number;
  /** Node records already written (or present on the client's side, for `base..head`). */
  written: Set<string>;
  /** Directories already walked, with the depth still to go below them then. */
  walked: Map<string, number>;
}

const MAX_CACHED_SUMMARIES = 100_000;

export class OxenTreeService {
  private readonly summaries = new WeightedLru<Summary>(MAX_CACHED_SUMMARIES);

  constructor(
    private readonly meta: MetaStore,
    private readonly nodes: NodeCache,
  ) {}

  /** The Oxen id of what is at `path` in `commit` ('' is the root): a dir id or a file's content hash; null if nothing. */
  async nodeHashAt(repo: RepoRecord, commit: CommitRecord, path: string): Promise<string | null> {
    const entry = await lookup(this.nodes.forRepo(repo.id), commit.rootId, path);
    if (entry === null) return null;
    return entry.kind === 'dir' ? entry.id : entry.hash;
  }

  /**
   * The records of Oxen's `tree/download/{commit}`: with subtrees, the commit and the subtrees of
   * that commit only; without, every commit of its history and all their trees (each node once).
   */
  async *commitRecords(repo: RepoRecord, commit: CommitRecord, options: TreeDownloadOptions): AsyncGenerator<NodeRecord> {
    const commits = options.subtrees ? [commit] : (await allAncestors(this.meta, repo.id, commit)).reverse();
    const written = new Set<string>();
    const walked = new Map<string, number>();
    for (const c of commits) yield* this.commitTree(repo, c, options, written, walked);
  }

  /**
   * The records of `tree/download/{base}..{head}`: the nodes of the commits after `base` up to
   * `head` that `base`'s tree does not already have (all of `base`'s when there are none).
   */
  async *rangeRecords(repo: RepoRecord, base: CommitRecord, head: CommitRecord, options: TreeDownloadOptions): AsyncGenerator<NodeRecord> {
    const newer = (await commitsBetween(this.meta, repo.id, base, head)).reverse();
    const written = new Set<string>();
    const walked = new Map<string, number>();
    if (newer.length === 0) {
      yield* this.commitTree(repo, base, options, written, walked);
      return;
    }
    // Walk base's tree without writing anything, so that only what it lacks is sent.
    for await (const _ of this.commitTree(repo, base, options, written, walked, { silent: true }));
    for (const c of newer) yield* this.commitTree(repo, c, options, written, walked);
  }

  private async *commitTree(
    repo: RepoRecord,
    commit: CommitRecord,
    options: TreeDownloadOptions,
    written: Set<string>,
    walked: Map<string, number>,
    { silent = false } = {},
  ): AsyncGenerator<NodeRecord> {
    const walk: Walk = {
      repoId: repo.id,
      source: this.nodes.forRepo(repo.id),
      commit,
      modified: instantFromIso(commit.timestamp),
      depth: options.depth,
      written,
      walked,
    };
    const emit = function* (record: NodeRecord) {
      if (walk.written.has(record.id)) return;
      walk.written.add(record.id);
      if (!silent) yield record;
    };
    if (!written.has(commit.id)) {
      const root = await loadDir(walk.source, commit.rootId);
      const payload = encodeOxenNode({
        type: 'Commit',
        hash: commit.id,
        parentIds: commit.parentIds,
        message: commit.message,
        author: commit.author,
        email: commit.email,
        timestamp: walk.modified,
      });
      const rootChild: RecordChild = { type: 'Dir', hash: commit.rootId, payload: await this.dirPayload(walk, '', commit.rootId, root) };
      yield* emit(encodeNodeRecord(commit.id, 'Commit', commit.parentIds[0] ?? NO_PARENT, payload, [rootChild]));
    }
    const starts = options.subtrees ?? [''];
    for (const path of starts) {
      // Oxen sends nothing below a subtree that is missing or is a file.
      const entry = path === '' ? ({ kind: 'dir', id: commit.rootId } as const) : await lookup(walk.source, commit.rootId, path);
      if (entry?.kind !== 'dir') continue;
      let parentId = commit.id;
      if (!options.isDownload && path !== '') {
        for (const record of await this.pathRecords(walk, path)) {
          yield* emit(record);
          if (record.type === 'VNode') parentId = record.id;
        }
      }
      for await (const record of this.dirRecords(walk, path, entry.id, parentId, 0)) yield* emit(record);
    }
  }

  /**
   * A directory's records, children first: the records of the subdirectories within depth, then
   * each vnode (its entries' payloads), then the directory itself (its vnodes' payloads).
   * Oxen counts depth in directory levels: the start's vnodes always come, and a directory `t`
   * levels down brings its vnodes and subdirectories while `depth > t`.
   */
  private async *dirRecords(walk: Walk, path: string, id: string, parentId: string, level: number): AsyncGenerator<NodeRecord> {
    const below = walk.depth < 0 ? Infinity : walk.depth - level;
    if ((walk.walked.get(id) ?? -Infinity) >= below) return; // an identical directory was walked as deep already
    walk.walked.set(id, below);
    const withVnodes = level === 0 || walk.depth < 0 || walk.depth > level;
    const withSubdirs = walk.depth < 0 || walk.depth > level;
    const dir = await loadDir(walk.source, id);
    const vnodes = await this.oxenVnodes(walk, path, id, dir);
    for (const vnode of vnodes) {
      if (withSubdirs) {
        for (const e of vnode.entries) {
          if (e.kind === 'dir') yield* this.dirRecords(walk, joinRepoPath(path, e.name), e.id, vnode.id, level + 1);
        }
      }
      if (withVnodes && !walk.written.has(vnode.id)) {
        yield encodeNodeRecord(vnode.id, 'VNode', id, vnode.payload, await this.entryPayloads(walk, vnode.entries));
      }
    }
    yield await this.dirRecord(walk, path, id, parentId, dir, vnodes);
  }

  /**
   * For a subtree requested without `is_download` (a partial clone): every directory above it and,
   * in each, the vnode that holds the next name, so that the client can find the subtree from the root.
   */
  private async pathRecords(walk: Walk, path: string): Promise<NodeRecord[]> {
    const records: NodeRecord[] = [];
    let dirPath = '';
    let dirId = walk.commit.rootId;
    let parentId = walk.commit.id;
    for (const name of splitRepoPath(path)) {
      const dir = await loadDir(walk.source, dirId);
      const vnodes = await this.oxenVnodes(walk, dirPath, dirId, dir);
      records.push(await this.dirRecord(walk, dirPath, dirId, parentId, dir, vnodes));
      const childPath = joinRepoPath(dirPath, name);
      const holder = vnodes[oxenVnodeIndex(childPath, vnodes.length)];
      const next = holder?.entries.find((e) => e.name === name);
      if (next?.kind !== 'dir') break;
      records.push(encodeNodeRecord(holder.id, 'VNode', dirId, holder.payload, await this.entryPayloads(walk, holder.entries)));
      parentId = holder.id;
      dirId = next.id;
      dirPath = childPath;
    }
    return records;
  }

  private async dirRecord(walk: Walk, path: string, id: string, parentId: string, dir: DirNode, vnodes: OxenVnode[]): Promise<NodeRecord> {
    const children: RecordChild[] = vnodes.map((v) => ({ type: 'VNode', hash: v.id, payload: v.payload }));
    return encodeNodeRecord(id, 'Dir', parentId, await this.dirPayload(walk, basename(path), id, dir), children);
  }

  /**
   * A directory's entries split as Oxen splits them, so that Oxen's readers find an entry in the
   * vnode they compute for it: ceil(entries / 10,000) vnodes, an entry in vnode xxh3(full path) mod
   * that count, each vnode sorted by UTF-8 bytes. Yoke's own buckets (by xxh32 of the name, 4,096 per
   * bucket) do not line up with that, so the whole directory is read first; memory is bounded by the
   * largest directory, not by the tree.
   *
   * Vnode ids are derived from the directory id (content-addressed, so any change in the directory
   * makes new ones) and, when the split depends on it, from the path too.
   */
  private async oxenVnodes(walk: Walk, path: string, dirId: string, dir: DirNode): Promise<OxenVnode[]> {
    const count = oxenVnodeCount(dir.entries);
    const parts: Entry[][] = Array.from({ length: count }, () => []);
    for (const bucketId of dir.buckets) {
      for (const e of await loadBucket(walk.source, bucketId)) parts[oxenVnodeIndex(joinRepoPath(path, e.name), count)].push(e);
    }
    return parts.map((entries, index) => {
      entries.sort((a, b) => compareUtf8(a.name, b.name));
      const id = hashBuffer(count === 1 ? `oxen-vnode\0${dirId}` : `oxen-vnode\0${dirId}\0${path}\0${index}/${count}`);
      return { id, entries, payload: encodeOxenNode({ type: 'VNode', hash: id, numEntries: entries.length }) };
    });
  }

  /** The payloads a vnode's `children` blob holds: its files and subdirectories, in name order. */
  private async entryPayloads(walk: Walk, entries: Entry[]): Promise<RecordChild[]> {
    const out: RecordChild[] = [];
    for (const e of entries) {
      if (e.kind === 'dir') {
        out.push({ type: 'Dir', hash: e.id, payload: await this.dirPayload(walk, e.name, e.id, await loadDir(walk.source, e.id)) });
        continue;
      }
      const { mimeType, dataType, extension } = describeFile(e.name);
      const payload = encodeOxenNode({
        type: 'File',
        name: e.name,
        metadataHash: null,
        hash: e.hash,
        combinedHash: e.hash,
        numBytes: e.size,
        lastCommitId: walk.commit.id,
        lastModifiedSeconds: walk.modified.seconds,
        lastModifiedNanoseconds: walk.modified.nanoseconds,
        dataType,
        metadata: null,
        mimeType,
        extension,
        chunkHashes: [e.hash],
        chunkType: 'SingleFile',
        storageBackend: 'Disk',
      });
      out.push({ type: 'File', hash: e.hash, payload });
    }
    return out;
  }

  private async dirPayload(walk: Walk, name: string, id: string, dir: DirNode): Promise<Buffer> {
    const summary = await this.summary(walk.repoId, walk.source, id);
    return encodeOxenNode({
      type: 'Dir',
      name,
      hash: id,
      numEntries: dir.entries,
      numBytes: dir.size,
      lastCommitId: walk.commit.id,
      // As Oxen's commit writer: directories carry no modification time.
      lastModifiedSeconds: 0,
      lastModifiedNanoseconds: 0,
      dataTypeCounts: summary.counts,
      dataTypeSizes: summary.sizes,
    });
  }

  /** Files below a directory, counted and summed by data type (cached by directory id, LRU). */
  private async summary(repoId: string, source: NodeSource, dirId: string): Promise<Summary> {
    const key = `${repoId}:${dirId}`;
    const hit = this.summaries.get(key);
    if (hit) return hit;
    const counts: Record<string, number> = {};
    const sizes: Record<string, number> = {};
    const add = (type: string, count: number, size: number) => {
      counts[type] = (counts[type] ?? 0) + count;
      sizes[type] = (sizes[type] ?? 0) + size;
    };
    const dir = await loadDir(source, dirId);
    for (const bucketId of dir.buckets) {
      for (const e of await loadBucket(source, bucketId)) {
        if (e.kind === 'file') add(describeFile(e.name).dataType, 1, e.size);
        else {
          const sub = await this.summary(repoId, source, e.id);
          for (const type of Object.keys(sub.counts)) add(type, sub.counts[type], sub.sizes[type]);
        }
      }
    }
    const summary = { counts, sizes };
    this.summaries.set(key, summary, 1);
    return summary;
  }
}

/**
 * Node records as Oxen's wire tarball: gzip (level 1, Oxen's "fast") of a ustar archive with, per
 * node, the directory `tree/nodes/{3 hex}/{rest}/` and its `node` and `children` files. Records are
 * pulled one at a time as the consumer reads (gzip's backpressure), so memory stays bounded whatever
 * the tree's size. If producing a record fails, or the consumer goes away (it destroys the returned
 * stream), the output is destroyed and `onFailure` says which; the client sees a truncated body.
 * The tar bytes are written here rather than through tar-stream, whose entry streams emit
 * unhandled errors when the output is destroyed under them.
 */
export function nodeRecordsTarGz(records: AsyncIterable<NodeRecord>, onFailure: (err: Error, consumerGone: boolean) => void): Readable {
  const gzip = createGzip({ level: 1 });
  const { fail, failed } = gzipFailure(gzip, onFailure);
  gzip.on('error', (err) => fail(err));
  gzip.on('close', () => {
    if (!gzip.writableFinished) fail(new Error('The node tarball was closed before it was complete'));
  });
  const write = (chunk: Buffer) =>
    new Promise<void>((resolve) => {
      if (failed() || gzip.write(chunk)) return resolve();
      const done = () => {
        gzip.off('drain', done);
        gzip.off('close', done);
        resolve();
      };
      gzip.on('drain', done);
      gzip.on('close', done);
    });
  // Small records are gathered into one write: each write into zlib is a thread-pool round trip.
  let batch: Buffer[] = [];
  let batched = 0;
  const flush = async () => {
    if (batched === 0) return;
    const chunk = Buffer.concat(batch, batched);
    batch = [];
    batched = 0;
    await write(chunk);
  };
  const put = async (chunk: Buffer) => {
    batch.push(chunk);
    batched += chunk.length;
    if (batched >= TAR_BATCH_BYTES) await flush();
  };
  (async () => {
    for await (const record of records) {
      if (failed()) return;
      const dir = nodeDirPath(record.id);
      await put(tarHeader(`${dir}/`, 0, 'directory'));
      for (const [name, data] of [['node', record.node], ['children', record.children]] as const) {
        await put(tarHeader(`${dir}/${name}`, data.length, 'file'));
        await put(data);
        if (data.length % TAR_BLOCK !== 0) await put(Buffer.alloc(TAR_BLOCK - (data.length % TAR_BLOCK)));
      }
    }
    await put(Buffer.alloc(2 * TAR_BLOCK)); // end of archive
    await flush();
    if (!failed()) gzip.end();
  })().catch((err: Error) => fail(err));
  return gzip;
}

const TAR_BLOCK = 512;
const TAR_BATCH_BYTES = 64 * 1024;

/** A ustar header: mode 0755 (directory) or 0644 (file), uid/gid 0, mtime 0. Names here are short ASCII. */
function tarHeader(name: string, size: number, type: 'file' | 'directory'): Buffer {
  if (name.length > 100) throw new Error(`tar entry name too long: ${name}`);
  if (size >= 8 ** 11) throw new Error(`tar entry too large: ${size} bytes`);
  const h = Buffer.alloc(TAR_BLOCK);
  h.write(name, 0, 'latin1');
  h.write(type === 'directory' ? '0000755\0' : '0000644\0', 100, 'latin1');
  h.write('0000000\0', 108, 'latin1'); // uid
  h.write('0000000\0', 116, 'latin1'); // gid
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  h.write('00000000000\0', 136, 'latin1'); // mtime
  h.write('        ', 148, 'latin1'); // checksum, counted as spaces
  h.write(type === 'directory' ? '5' : '0', 156, 'latin1');
  h.write('ustar\0' + '00', 257, 'latin1');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}
