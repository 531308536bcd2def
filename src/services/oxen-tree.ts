import type { Readable } from 'node:stream';
import { nodeDirPath, type NodeRecord } from '../core/oxen-nodes.js';

/** A record as it goes on the wire. */
export type WireRecord = Pick<NodeRecord, 'id' | 'node' | 'children'>;
import { joinRepoPath, splitRepoPath } from '../core/paths.js';
import { walkInRounds, type WalkStep } from '../core/rounds.js';
import { asDir, asVnode, findChild, holderVnode, loadDir, lookup, type NodeSource } from '../core/tree.js';
import type { CommitRecord, MetaStore, RepoRecord } from '../storage/meta-store.js';
import { allAncestors, commitsBetween } from './history.js';
import type { CachedNode, NodeCache } from './node-cache.js';
import { tarGzStream } from './tar-gz.js';

/**
 * Serves stored trees as Oxen's node records. Yoke's trees are in Oxen's format, so a record goes
 * out as it is stored; this decides which records a download needs, each once, in the order they
 * are read (Oxen's client writes what it unpacks, in any order).
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
  /** Directory levels below each start (-1: all). */
  depth: number;
  written: Set<string>;
  /** Directories already walked, with the depth still to go below them then. */
  walked: Map<string, number>;
  /** Vnodes whose subdirectories are walked to the bottom already (a vnode is often shared by versions of its directory). */
  expanded: Set<string>;
}

const newWalk = (depth: number): Walk => ({ depth, written: new Set(), walked: new Map(), expanded: new Set() });

type Step = WalkStep<CachedNode>;

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
    yield* this.treeRecords(repo, commits, options, newWalk(options.depth));
  }

  /**
   * The records of `tree/download/{base}..{head}`: the nodes of the commits after `base` up to
   * `head` that `base`'s tree does not already have (all of `base`'s when there are none).
   */
  async *rangeRecords(repo: RepoRecord, base: CommitRecord, head: CommitRecord, options: TreeDownloadOptions): AsyncGenerator<WireRecord> {
    const newer = (await commitsBetween(this.meta, repo.id, base, head)).reverse();
    const walk = newWalk(options.depth);
    if (newer.length === 0) {
      yield* this.treeRecords(repo, [base], options, walk);
      return;
    }
    // Walk base's tree without writing anything, so that only what it lacks is sent.
    for await (const _ of this.treeRecords(repo, [base], options, walk, { silent: true }));
    yield* this.treeRecords(repo, newer, options, walk);
  }

  /**
   * The records of the commits and their trees (or subtrees) that `walk` has not written yet. The trees
   * are walked together, a level of all of them at a time (see walkInRounds), each record sent as it is read.
   */
  private async *treeRecords(repo: RepoRecord, commits: CommitRecord[], options: TreeDownloadOptions, walk: Walk, { silent = false } = {}): AsyncGenerator<WireRecord> {
    const source = this.nodes.forRepo(repo.id);
    const out: WireRecord[] = [];
    const emit = (id: string, entry: CachedNode) => {
      if (walk.written.has(id)) return;
      walk.written.add(id);
      if (!silent) out.push({ id, ...entry.blobs });
    };
    const emitAll = (ids: string[]): Step => ({ ids, then: (entries) => entries.forEach((entry, i) => emit(ids[i], entry)) });
    const start: Step[] = [];
    for (const commit of commits) {
      start.push(emitAll([commit.id]));
      for (const path of options.subtrees ?? ['']) {
        // Oxen sends nothing below a subtree that is missing or is a file.
        const entry = path === '' ? ({ kind: 'dir', id: commit.rootId } as const) : await lookup(source, commit.rootId, path);
        if (entry?.kind !== 'dir') continue;
        if (!options.isDownload && path !== '') start.push(emitAll(await this.pathIds(source, commit, path)));
        if (claimDir(walk, entry.id, 0)) start.push(dirStep(walk, emit, entry.id, 0));
      }
    }
    for await (const _ of walkInRounds((ids) => this.nodes.records(repo.id, ids), start)) yield* out.splice(0);
  }

  /**
   * For a subtree requested without `is_download` (a partial clone): every directory above it and,
   * in each, the vnode that holds the next name, so that the client can find the subtree from the root.
   */
  private async pathIds(source: NodeSource, commit: CommitRecord, path: string): Promise<string[]> {
    const ids: string[] = [];
    let dirPath = '';
    let dirId = commit.rootId;
    for (const name of splitRepoPath(path)) {
      const dir = await loadDir(source, dirId);
      ids.push(dirId);
      const childPath = joinRepoPath(dirPath, name);
      const holder = holderVnode(dir, childPath);
      if (holder === null) break;
      const next = await findChild(source, dir, childPath);
      if (next?.kind !== 'dir') break;
      ids.push(holder);
      dirId = next.id;
      dirPath = childPath;
    }
    return ids;
  }
}

/** Marks a directory as walked `level` levels below a start; false if it was walked at least as deep already (an earlier commit's tree). */
function claimDir(walk: Walk, id: string, level: number): boolean {
  const below = walk.depth < 0 ? Infinity : walk.depth - level;
  if ((walk.walked.get(id) ?? -Infinity) >= below) return false;
  walk.walked.set(id, below);
  return true;
}

/**
 * A directory's records: the directory, its vnodes, and the subdirectories within depth. Oxen counts
 * depth in directory levels: the start's vnodes always come, and a directory `t` levels down brings
 * its vnodes and subdirectories while `depth > t`.
 */
function dirStep(walk: Walk, emit: (id: string, entry: CachedNode) => void, id: string, level: number): Step {
  const unlimited = walk.depth < 0;
  const withVnodes = level === 0 || unlimited || walk.depth > level;
  const withSubdirs = unlimited || walk.depth > level;
  const expand = (vnodeId: string) => withSubdirs && !(unlimited && walk.expanded.has(vnodeId));
  return {
    ids: [id],
    then: ([entry]) => {
      emit(id, entry);
      if (!withVnodes) return;
      const vnodes = asDir(entry.node).vnodes.filter((v) => !walk.written.has(v) || expand(v));
      if (vnodes.length === 0) return;
      return [
        {
          ids: vnodes,
          then: (entries) => {
            const next: Step[] = [];
            entries.forEach((vnode, i) => {
              emit(vnodes[i], vnode);
              if (!expand(vnodes[i])) return;
              if (unlimited) walk.expanded.add(vnodes[i]);
              for (const e of asVnode(vnode.node)) if (e.kind === 'dir' && claimDir(walk, e.id, level + 1)) next.push(dirStep(walk, emit, e.id, level + 1));
            });
            return next;
          },
        },
      ];
    },
  };
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
