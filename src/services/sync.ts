import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { BadRequest, NotFound } from '../core/errors.js';
import { diffTrees } from '../core/diff.js';
import { normalizeHash } from '../core/hash.js';
import { compareNames, decodeNodeRecord, dirHashesMemberCommit, decodeOxenNode, encodeNodeRecord, oxenVnodeIndex, type OxenNodeType } from '../core/oxen-nodes.js';
import { joinRepoPath } from '../core/paths.js';
import { decodeRecord, findChild, frameRecord, loadCommitNode, loadDir, loadVnode, type CommitNode, type DirNode, type Entry, type NodeSource } from '../core/tree.js';
import { writeDirHashesDb } from '../storage/dir-hashes-db.js';
import type { CommitRecord, MetaStore, RepoRecord } from '../storage/meta-store.js';
import { allAncestors, commitsBetween } from './history.js';
import type { NodeCache } from './node-cache.js';
import { readTarGz, tarGzStream, type TarMember } from './tar-gz.js';
import { WeightedLru } from './weighted-lru.js';

/** `{3 hex}/{rest}/node|children`, as Oxen's client packs nodes (optionally under `tree/nodes/`, as its server does). */
const NODE_ENTRY = /^(?:tree\/nodes\/)?([0-9a-f]{3})\/([0-9a-f]{1,29})\/(node|children)$/;
const NODE_DIR = /^(?:tree\/?|tree\/nodes\/?|(?:tree\/nodes\/)?[0-9a-f]{3}\/?|(?:tree\/nodes\/)?[0-9a-f]{3}\/[0-9a-f]{1,29}\/?)$/;
/** One `node` or `children` file; a vnode of 10,000 entries is about 1.5 MB. */
const MAX_NODE_FILE_BYTES = 256 * 1024 * 1024;
const MAX_UNPACKED_BYTES = 64 * 1024 ** 3;
const WRITE_BATCH_BYTES = 16 * 1024 * 1024;
const MAX_CACHED_DIR_PATHS = 2_000_000;

export interface CommitProblem {
  commit: string;
  problem: string;
}

/**
 * Oxen's sync protocol, Yoke's side of it: nodes a client pushes are checked as they arrive and
 * stored as they are; a pushed commit becomes part of the repository's history only when a branch
 * is moved onto it, after its whole tree is verified (every node present and well-formed, each
 * entry in the vnode Oxen's readers will look in, every file's blob held by the repository).
 */
export class SyncService {
  /** Directory path → directory id of commits' trees (Oxen's `dir_hashes`), weighed by paths. */
  private readonly dirHashCache = new WeightedLru<Map<string, string>>(MAX_CACHED_DIR_PATHS);

  constructor(
    private readonly meta: MetaStore,
    private readonly nodes: NodeCache,
  ) {}

  /**
   * Stores the node records of a client's `POST tree/nodes` tarball. Each record is decoded before
   * it is stored; a malformed one refuses the request (records stored before it stay: they are
   * valid, and unreachable until a commit that verifies names them).
   */
  async receiveNodes(repo: RepoRecord, body: Readable): Promise<number> {
    // A record's two files come next to each other (Oxen's own reader requires it), so at most one
    // half-record is ever held.
    let half: { id: string; node?: Buffer; children?: Buffer } | null = null;
    const unpaired = (h: { id: string; node?: Buffer }) => new BadRequest(`Node ${h.id} came without its ${h.node ? 'children' : 'node'} file next to it`);
    let batch: Array<[string, Uint8Array]> = [];
    let batched = 0;
    let stored = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      await this.meta.putNodes(repo.id, batch);
      stored += batch.length;
      batch = [];
      batched = 0;
    };
    await readTarGz(body, MAX_UNPACKED_BYTES, 'The node upload', async (entry, name) => {
      if (entry.header.type === 'directory' && NODE_DIR.test(name)) return entry.resume();
      const match = entry.header.type === 'file' ? NODE_ENTRY.exec(name) : null;
      if (!match) throw new BadRequest(`Refusing tar entry '${entry.header.name}' (${entry.header.type}): only {3 hex}/{rest}/node and children files are accepted`);
      const id = normalizeHash(match[1] + match[2])!;
      if (half && half.id !== id) throw unpaired(half);
      const parts: { id: string; node?: Buffer; children?: Buffer } = half ?? { id };
      parts[match[3] as 'node' | 'children'] = await readEntry(entry as AsyncIterable<Buffer>, name);
      if (parts.node === undefined || parts.children === undefined) {
        half = parts;
        return;
      }
      half = null;
      const record = checkedRecord(id, parts.node, parts.children);
      batch.push([id, record]);
      batched += record.length;
      if (batched >= WRITE_BATCH_BYTES) await flush();
    });
    if (half) throw unpaired(half);
    await flush();
    return stored;
  }

  /**
   * Those of `ids` (commit ids) the repository does not hold completely: neither in its history nor
   * pushed through to the commit's dir_hashes, which Oxen's client sends after its blobs and nodes.
   * A commit reported present gets nothing sent, so one cut off half-way must count as missing.
   */
  async missingCommits(repo: RepoRecord, ids: string[]): Promise<string[]> {
    const normal = ids.map((id) => normalizeHash(id) ?? id);
    const [received, stored, known] = await Promise.all([
      this.meta.findReceivedCommits(repo.id, normal),
      this.meta.hasNodes(repo.id, normal),
      this.meta.getCommits(repo.id, normal),
    ]);
    // A received mark alone is not enough: a dir_hashes upload can name a commit whose node never came.
    const present = new Set([...[...received].filter((id) => stored.has(id)), ...known.map((c) => c.id)]);
    return ids.filter((_, i) => !present.has(normal[i]));
  }

  /**
   * Takes a client's `commits/upload` tarball: the RocksDB files of `history/{commit}/dir_hashes/`
   * (and the legacy `dirs/`). Yoke derives directory indexes from its trees, so the files are read
   * and dropped; what matters is that the client got this far with each commit named.
   */
  async receiveDirHashes(repo: RepoRecord, body: Readable): Promise<string[]> {
    const commits = new Set<string>();
    await readTarGz(body, MAX_UNPACKED_BYTES, 'The dir_hashes upload', async (entry, name) => {
      const commit = entry.header.type === 'file' || entry.header.type === 'directory' ? dirHashesMemberCommit(name) : null;
      if (commit === null) throw new BadRequest(`Refusing tar entry '${entry.header.name}' (${entry.header.type}): only history/{commit}/dir_hashes/… is accepted`);
      commits.add(commit);
      entry.resume();
    });
    await this.meta.markCommitsReceived(repo.id, [...commits]);
    return [...commits];
  }

  async missingNodes(repo: RepoRecord, ids: string[]): Promise<string[]> {
    const normal = ids.map((id) => normalizeHash(id) ?? id);
    const present = await this.meta.hasNodes(repo.id, normal);
    return ids.filter((_, i) => !present.has(normal[i]));
  }

  /** Files that the commits after `base` up to `head` (all of `head`'s history without a base) add or change and whose blobs the repository lacks. */
  async missingFiles(repo: RepoRecord, base: CommitRecord | null, head: CommitRecord): Promise<Array<{ commitId: string; path: string; hash: string; size: number }>> {
    const source = this.nodes.forRepo(repo.id);
    const commits = base ? await commitsBetween(this.meta, repo.id, base, head) : await allAncestors(this.meta, repo.id, head);
    const wanted = new Map<string, { commitId: string; path: string; hash: string; size: number }>();
    for (const commit of commits) {
      const parent = commit.parentIds[0] === undefined ? null : await this.meta.getCommit(repo.id, commit.parentIds[0]);
      for (const change of await diffTrees(source, parent?.rootId ?? null, commit.rootId)) {
        if (change.after && !wanted.has(change.after.hash)) wanted.set(change.after.hash, { commitId: commit.id, path: change.path, hash: change.after.hash, size: change.after.size });
      }
    }
    const hashes = [...wanted.keys()];
    const held = await this.meta.findRepoBlobs(repo.id, hashes);
    return hashes.filter((h) => !held.has(h)).map((h) => wanted.get(h)!);
  }

  /**
   * The commit `id` as part of the repository's history: a commit Yoke knows, or a pushed one whose
   * nodes are stored, which is verified with all its pushed ancestors and recorded (oldest first).
   * 404 if there is no such commit; 400 naming the first problem if its tree is incomplete.
   */
  async adoptCommit(repo: RepoRecord, id: string): Promise<CommitRecord> {
    const known = await this.meta.getCommit(repo.id, id);
    if (known) return known;
    const source = this.nodes.forRepo(repo.id);
    const order = new Set<string>();
    const nodes = new Map<string, CommitNode>();
    const visit = async (start: string) => {
      // Iterative depth-first walk; a commit is appended after its parents (oldest first).
      const stack: Array<{ id: string; expanded: boolean }> = [{ id: start, expanded: false }];
      while (stack.length > 0) {
        const top = stack[stack.length - 1];
        if (top.expanded) {
          stack.pop();
          order.add(top.id);
          continue;
        }
        top.expanded = true;
        if (nodes.has(top.id) || (await this.meta.getCommit(repo.id, top.id))) {
          stack.pop();
          continue;
        }
        if ((await this.meta.hasNodes(repo.id, [top.id])).size === 0) {
          if (top.id === start) throw new NotFound(`Commit '${top.id}' not found`);
          throw new BadRequest(`Commit ${top.id}, a parent of what is being pushed, is missing: push it first`);
        }
        const node = await loadCommitNode(source, top.id).catch((err) => {
          throw new BadRequest(`Node ${top.id} is not a commit: ${(err as Error).message}`);
        });
        nodes.set(top.id, node);
        for (const parent of node.parentIds) if (!nodes.has(parent)) stack.push({ id: parent, expanded: false });
      }
    };
    await visit(id);
    const records = new Map<string, CommitRecord>();
    for (const commitId of order) {
      const node = nodes.get(commitId)!;
      const parents = await Promise.all(
        node.parentIds.map(async (p) => records.get(p) ?? (await this.meta.getCommit(repo.id, p)) ?? undefined),
      );
      if (parents.some((p) => p === undefined)) throw new BadRequest(`Commit ${commitId} names a parent the repository does not hold`);
      const firstParentRoot = parents[0]?.rootId ?? null;
      try {
        await this.verifyTree(repo, source, commitId, firstParentRoot, node.rootId);
      } catch (err) {
        // Ask the client for this commit again on its next push.
        await this.meta.markCommitsReceived(repo.id, [commitId], false);
        throw err;
      }
      records.set(commitId, {
        id: commitId,
        parentIds: node.parentIds,
        message: node.message,
        author: node.author,
        email: node.email,
        timestamp: new Date(node.timestamp.seconds * 1000 + Math.floor(node.timestamp.nanoseconds / 1e6)).toISOString(),
        rootId: node.rootId,
        generation: 1 + Math.max(0, ...parents.map((p) => p!.generation)),
      });
    }
    await this.meta.addCommits(repo.id, [...records.values()]);
    return records.get(id)!;
  }

  /**
   * Checks the part of a pushed tree that differs from its first parent's: each new directory and
   * vnode is stored and decodes, occurs once (no cycles), and matches the copy of it its parent
   * holds; its entry counts add up; each entry sits in the vnode its full
   * path hashes to; the repository holds every new file's blob, with the size the tree gives it.
   */
  private async verifyTree(repo: RepoRecord, source: NodeSource, commitId: string, parentRootId: string | null, rootId: string): Promise<void> {
    const problem = (text: string) => new BadRequest(`Commit ${commitId} cannot be adopted: ${text}`, { type: 'incomplete_push' });
    const load = async <T>(what: string, read: () => Promise<T>): Promise<T> => {
      try {
        return await read();
      } catch (err) {
        throw problem(`${what}: ${(err as Error).message}`);
      }
    };
    let blobs: Array<{ hash: string; size: number; path: string }> = [];
    const checkBlobs = async () => {
      const held = await this.meta.findRepoBlobs(repo.id, blobs.map((b) => b.hash));
      for (const blob of blobs) {
        const size = held.get(blob.hash);
        if (size === undefined) throw problem(`the bytes of '${blob.path}' (version ${blob.hash}) were not uploaded`);
        if (size !== blob.size) throw problem(`'${blob.path}' is said to have ${blob.size} bytes, its version ${blob.hash} has ${size}`);
      }
      blobs = [];
    };
    const walked = new Set<string>();
    const walk = async (path: string, dirId: string, oldId: string | null, entryPayload: Buffer | null): Promise<void> => {
      if (dirId === oldId) return;
      const where = `'${path || '/'}'`;
      if (walked.has(dirId)) throw problem(`directory ${dirId} occurs twice in the tree (again at ${where})`);
      walked.add(dirId);
      const dir = await load(`directory ${where} (${dirId})`, () => loadDir(source, dirId));
      if (entryPayload && !entryPayload.equals(dir.payload)) throw problem(`the entry for ${where} differs from its directory record ${dirId}`);
      const old: DirNode | null = oldId === null ? null : await loadDir(source, oldId);
      // The count starts from the parent's version when the partition is the same, so that only the
      // vnodes that changed are read.
      const sameSplit = old !== null && old.vnodes.length === dir.vnodes.length;
      let entries = sameSplit ? old.entries : 0;
      for (let index = 0; index < dir.vnodes.length; index++) {
        const vnodeId = dir.vnodes[index];
        if (sameSplit && old.vnodes[index] === vnodeId) continue;
        const declared = (decodeOxenNode('VNode', dir.vnodePayloads[index]) as { numEntries: number }).numEntries;
        const vnode = await load(`vnode ${vnodeId} of ${where}`, () => loadVnode(source, vnodeId));
        if (vnode.length !== declared) throw problem(`vnode ${vnodeId} of ${where} says it has ${declared} entries, it holds ${vnode.length}`);
        if (sameSplit) entries -= (await loadVnode(source, old.vnodes[index])).length;
        entries += vnode.length;
        for (const entry of vnode) {
          const entryPath = joinRepoPath(path, entry.name);
          if (oxenVnodeIndex(entryPath, dir.vnodes.length) !== index) throw problem(`'${entryPath}' is in vnode ${index} of ${dir.vnodes.length}, not where its path hashes to`);
          if (entry.kind === 'file') {
            blobs.push({ hash: entry.hash, size: entry.size, path: entryPath });
            if (blobs.length >= 1000) await checkBlobs();
          } else {
            const before = old ? await findChild(source, old, entryPath) : undefined;
            await walk(entryPath, entry.id, before?.kind === 'dir' ? before.id : null, entry.payload);
          }
        }
      }
      if (entries !== dir.entries) throw problem(`directory ${where} says it has ${dir.entries} entries, its vnodes hold ${entries}`);
      // Totals by data type and bytes are not checked: Oxen's client (0.65) writes stale ones for the
      // directories above a modified file. Yoke's tree writer never lets them go below zero.
    };
    await walk('', rootId, parentRootId, null);
    await checkBlobs();
  }

  /**
   * Oxen's `dir_hashes` of a commit: every directory's path ('' for the root) → its id. Built from
   * the first parent's when that is at hand, reading only the directories that changed.
   */
  async dirHashes(repo: RepoRecord, commit: CommitRecord, previous?: { commit: CommitRecord; dirs: Map<string, string> }): Promise<Map<string, string>> {
    const key = `${repo.id}:${commit.id}`;
    const hit = this.dirHashCache.get(key);
    if (hit) return hit;
    const source = this.nodes.forRepo(repo.id);
    // The caller's map of the first parent (a download going oldest first): the cache may not hold
    // maps as large as a big repository's.
    if (previous && previous.commit.id === commit.parentIds[0]) {
      const next = new Map(previous.dirs);
      await updateDirHashes(source, next, '', previous.commit.rootId, commit.rootId);
      this.dirHashCache.set(key, next, next.size);
      return next;
    }
    // Walk back along first parents to one whose map is cached (or the root), then forward.
    const chain: CommitRecord[] = [commit];
    let base: Map<string, string> | null = null;
    let baseRoot: string | null = null;
    for (;;) {
      const [parentId] = chain[chain.length - 1].parentIds;
      if (parentId === undefined || chain.length > 1000) break;
      const parent = await this.meta.getCommit(repo.id, parentId);
      if (!parent) break;
      const cached = this.dirHashCache.get(`${repo.id}:${parent.id}`);
      if (cached) {
        base = cached;
        baseRoot = parent.rootId;
        break;
      }
      chain.push(parent);
    }
    let map = base ?? new Map<string, string>();
    let fromRoot = baseRoot;
    if (!base) {
      // Nothing cached: start from the oldest commit of the chain, whole.
      const oldest = chain.pop()!;
      map = new Map();
      await updateDirHashes(source, map, '', null, oldest.rootId);
      this.dirHashCache.set(`${repo.id}:${oldest.id}`, map, map.size);
      fromRoot = oldest.rootId;
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      const next = new Map(map);
      await updateDirHashes(source, next, '', fromRoot, chain[i].rootId);
      this.dirHashCache.set(`${repo.id}:${chain[i].id}`, next, next.size);
      map = next;
      fromRoot = chain[i].rootId;
    }
    return map;
  }
}

/** Brings `map` from the tree at `oldId` to the tree at `newId` (either null: absent), for the directory at `path`. */
async function updateDirHashes(source: NodeSource, map: Map<string, string>, path: string, oldId: string | null, newId: string | null): Promise<void> {
  if (oldId === newId) return;
  if (newId === null) {
    // Walk the removed directory's own subdirectories rather than scanning every path of the map.
    map.delete(path);
    for (const vnode of (await loadDir(source, oldId!)).vnodes) {
      for (const e of await loadVnode(source, vnode)) if (e.kind === 'dir') await updateDirHashes(source, map, joinRepoPath(path, e.name), e.id, null);
    }
    return;
  }
  map.set(path, newId);
  const [mine, theirs] = await Promise.all([loadDir(source, newId), oldId === null ? null : loadDir(source, oldId)]);
  const subdirs = (entries: Entry[]) => new Map(entries.filter((e) => e.kind === 'dir').map((e) => [e.name, (e as { id: string }).id]));
  const compare = async (before: Entry[], after: Entry[]) => {
    const was = subdirs(before);
    for (const [name, id] of subdirs(after)) {
      await updateDirHashes(source, map, joinRepoPath(path, name), was.get(name) ?? null, id);
      was.delete(name);
    }
    for (const [name, id] of was) await updateDirHashes(source, map, joinRepoPath(path, name), id, null);
  };
  if (theirs && theirs.vnodes.length === mine.vnodes.length) {
    for (let i = 0; i < mine.vnodes.length; i++) {
      if (mine.vnodes[i] !== theirs.vnodes[i]) await compare(await loadVnode(source, theirs.vnodes[i]), await loadVnode(source, mine.vnodes[i]));
    }
  } else {
    const all = async (dir: DirNode | null) => (dir ? (await Promise.all(dir.vnodes.map((v) => loadVnode(source, v)))).flat() : []);
    await compare(await all(theirs), await all(mine));
  }
}

/**
 * Oxen's dir_hashes download: per commit, `history/{commit}/dir_hashes/` holding a RocksDB of the
 * commit's directory paths → ids, gzip'd tar. Each database is written to a scratch directory,
 * streamed out and removed before the next, so disk and memory hold one commit's at a time; the
 * scratch directory goes when the archive ends, fails or its reader goes away.
 */
export function dirHashesTarGz(commits: AsyncIterable<{ id: string; dirs: Map<string, string> }>, scratchRoot: string, onFailure: (err: Error, consumerGone: boolean) => void): Readable {
  async function* members(): AsyncGenerator<TarMember> {
    await mkdir(scratchRoot, { recursive: true });
    // Named by this process, so that a later start can remove what a killed one left.
    const scratch = await mkdtemp(join(scratchRoot, `dir-hashes-${process.pid}-`));
    try {
      for await (const { id, dirs } of commits) {
        const db = join(scratch, id);
        await writeDirHashesDb(db, dirs);
        yield { name: `history/${id}/` };
        yield { name: `history/${id}/dir_hashes/` };
        for (const name of (await readdir(db)).sort()) yield { name: `history/${id}/dir_hashes/${name}`, data: await readFile(join(db, name)) };
        await rm(db, { recursive: true, force: true });
      }
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }
  return tarGzStream(members(), onFailure);
}

/** A name one entry of a directory can have: what Yoke's own paths allow in a segment. */
function isEntryName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !/[/\\\0]/.test(name);
}

async function readEntry(entry: AsyncIterable<Buffer>, name: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of entry) {
    size += chunk.length;
    if (size > MAX_NODE_FILE_BYTES) throw new BadRequest(`Tar entry '${name}' is larger than a node record can be`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/**
 * A pushed record, checked and in stored form: it decodes, its payload names its own id, and a
 * vnode's entries are sorted by name (re-sorted if a client wrote them otherwise: order carries no
 * meaning, and Yoke's and Oxen's readers search vnodes by name).
 */
function checkedRecord(id: string, node: Buffer, children: Buffer): Buffer {
  let raw;
  try {
    raw = decodeNodeRecord(node, children);
    if (raw.type === 'File') throw new Error('file nodes travel inside their vnode, not as records');
    const own = decodeOxenNode(raw.type, raw.payload) as { hash: string; name?: string };
    if (own.hash !== id) throw new Error(`its payload names ${own.hash}`);
    if (raw.type === 'Dir' && own.name !== '' && !isEntryName(own.name!)) throw new Error(`directory name ${JSON.stringify(own.name)} is not a path segment`);
    // A child row and the payload it points at must name the same node: readers go by either.
    for (const child of raw.children) {
      const payload = decodeOxenNode(child.type, child.payload) as { hash: string; name?: string };
      if (payload.hash !== child.hash) throw new Error(`a child row names ${child.hash}, its payload ${payload.hash}`);
      if (raw.type === 'VNode' && !isEntryName(payload.name!)) throw new Error(`entry name ${JSON.stringify(payload.name)} is not a path segment`);
    }
    if (raw.type === 'VNode') {
      const named = raw.children.map((c) => ({ ...c, name: (decodeOxenNode(c.type, c.payload) as { name?: string }).name ?? '' }));
      const sorted = [...named].sort((a, b) => compareNames(a.name, b.name));
      if (sorted.some((c, i) => c !== named[i])) {
        const rebuilt = encodeNodeRecord(id, 'VNode', raw.parentId, raw.payload, sorted.map(({ type, hash, payload }) => ({ type: type as OxenNodeType, hash, payload })));
        node = rebuilt.node;
        children = rebuilt.children;
      }
    }
    decodeRecord(id, node, children);
  } catch (err) {
    throw new BadRequest(`Node ${id} is malformed: ${(err as Error).message}`, { type: 'bad_node' });
  }
  return frameRecord({ node, children });
}
