import type { Readable } from 'node:stream';
import { nodeDirPath, oxenVnodeIndex, type NodeRecord } from '../core/oxen-nodes.js';

/** A record as it goes on the wire. */
export type WireRecord = Pick<NodeRecord, 'id' | 'node' | 'children'>;
import { joinRepoPath, splitRepoPath } from '../core/paths.js';
import { findChild, loadDir, loadVnode, lookup, type NodeSource } from '../core/tree.js';
import type { CommitRecord, MetaStore, RepoRecord } from '../storage/meta-store.js';
import { allAncestors, commitsBetween } from './history.js';
import type { NodeCache } from './node-cache.js';
import { tarGzStream } from './tar-gz.js';

/**
 * Serves stored trees as Oxen's node records. Yoke's trees are in Oxen's format, so a record goes
 * out as it is stored; this decides which records a download needs, each once, children first
 * (Oxen's client writes what it unpacks, in any order).
 */

export interface TreeDownloadOptions {
  /** Normalised directory paths; null for the whole tree. */
  subtrees: string[] | null;
  /** Directory levels below each start (-1: all), counted as Oxen does. */
  depth: number;
  /** Oxen's `is_download`: when false, a subtree also brings the nodes on the path down to it. */
  isDownload: boolean;
}

/** State of one download: which records are out (or on the client already, for `base..head`). */
interface Walk {
  repoId: string;
  source: NodeSource;
  commit: CommitRecord;
  depth: number;
  written: Set<string>;
  /** Directories already walked, with the depth still to go below them then. */
  walked: Map<string, number>;
}

export class OxenTreeService {
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
  async *commitRecords(repo: RepoRecord, commit: CommitRecord, options: TreeDownloadOptions): AsyncGenerator<WireRecord> {
    const commits = options.subtrees ? [commit] : (await allAncestors(this.meta, repo.id, commit)).reverse();
    yield* this.recordsOf(repo, commits, options);
  }

  /** The records of `commits` (oldest first) and all their trees, each node once. */
  async *recordsOf(repo: RepoRecord, commits: CommitRecord[], options: TreeDownloadOptions = { subtrees: null, depth: -1, isDownload: true }): AsyncGenerator<WireRecord> {
    const written = new Set<string>();
    const walked = new Map<string, number>();
    for (const c of commits) yield* this.commitTree(repo, c, options, written, walked);
  }

  /**
   * The records of `tree/download/{base}..{head}`: the nodes of the commits after `base` up to
   * `head` that `base`'s tree does not already have (all of `base`'s when there are none).
   */
  async *rangeRecords(repo: RepoRecord, base: CommitRecord, head: CommitRecord, options: TreeDownloadOptions): AsyncGenerator<WireRecord> {
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
  ): AsyncGenerator<WireRecord> {
    const walk: Walk = { repoId: repo.id, source: this.nodes.forRepo(repo.id), commit, depth: options.depth, written, walked };
    const self = this;
    const emit = async function* (id: string) {
      if (walk.written.has(id)) return;
      walk.written.add(id);
      if (!silent) yield await self.record(repo.id, id);
    };
    yield* emit(commit.id);
    for (const path of options.subtrees ?? ['']) {
      // Oxen sends nothing below a subtree that is missing or is a file.
      const entry = path === '' ? ({ kind: 'dir', id: commit.rootId } as const) : await lookup(walk.source, commit.rootId, path);
      if (entry?.kind !== 'dir') continue;
      if (!options.isDownload && path !== '') {
        for (const id of await this.pathIds(walk, path)) yield* emit(id);
      }
      for await (const id of this.dirIds(walk, entry.id, 0)) yield* emit(id);
    }
  }

  private async record(repoId: string, id: string): Promise<WireRecord> {
    return { id, ...(await this.nodes.record(repoId, id)) };
  }

  /**
   * A directory's records, children first: the subdirectories within depth, then its vnodes, then
   * the directory itself. Oxen counts depth in directory levels: the start's vnodes always come,
   * and a directory `t` levels down brings its vnodes and subdirectories while `depth > t`.
   */
  private async *dirIds(walk: Walk, id: string, level: number): AsyncGenerator<string> {
    const below = walk.depth < 0 ? Infinity : walk.depth - level;
    if ((walk.walked.get(id) ?? -Infinity) >= below) return; // walked as deep already (an earlier commit's tree)
    walk.walked.set(id, below);
    const withVnodes = level === 0 || walk.depth < 0 || walk.depth > level;
    const withSubdirs = walk.depth < 0 || walk.depth > level;
    const dir = await loadDir(walk.source, id);
    for (const vnodeId of dir.vnodes) {
      if (withSubdirs && !walk.written.has(vnodeId)) {
        for (const e of await loadVnode(walk.source, vnodeId)) if (e.kind === 'dir') yield* this.dirIds(walk, e.id, level + 1);
      }
      if (withVnodes) yield vnodeId;
    }
    yield id;
  }

  /**
   * For a subtree requested without `is_download` (a partial clone): every directory above it and,
   * in each, the vnode that holds the next name, so that the client can find the subtree from the root.
   */
  private async pathIds(walk: Walk, path: string): Promise<string[]> {
    const ids: string[] = [];
    let dirPath = '';
    let dirId = walk.commit.rootId;
    for (const name of splitRepoPath(path)) {
      const dir = await loadDir(walk.source, dirId);
      ids.push(dirId);
      const childPath = joinRepoPath(dirPath, name);
      if (dir.vnodes.length === 0) break;
      const holder = dir.vnodes[oxenVnodeIndex(childPath, dir.vnodes.length)];
      const next = await findChild(walk.source, dir, childPath);
      if (next?.kind !== 'dir') break;
      ids.push(holder);
      dirId = next.id;
      dirPath = childPath;
    }
    return ids;
  }
}

/**
 * Node records as Oxen's wire tarball: per node, the directory `tree/nodes/{3 hex}/{rest}/` and its
 * `node` and `children` files, gzip level 1 (Oxen's "fast"). See `tarGzStream` for how it streams and fails.
 */
export function nodeRecordsTarGz(records: AsyncIterable<WireRecord>, onFailure: (err: Error, consumerGone: boolean) => void): Readable {
  return tarGzStream(
    (async function* () {
      for await (const record of records) {
        const dir = nodeDirPath(record.id);
        yield { name: `${dir}/` };
        yield { name: `${dir}/node`, data: record.node };
        yield { name: `${dir}/children`, data: record.children };
      }
    })(),
    onFailure,
  );
}
