import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { BadRequest, NotFound } from '../core/errors.js';
import { diffTreesMany, vnodesToCompare } from '../core/diff.js';
import { normalizeHash } from '../core/hash.js';
import { compareNames, decodeNodeRecord, dirHashesMemberCommit, decodeOxenNode, encodeNodeRecord, oxenVnodeIndex, type OxenNodeType } from '../core/oxen-nodes.js';
import { joinRepoPath } from '../core/paths.js';
import { runInRounds, type WalkStep } from '../core/rounds.js';
import { storedRowsOfBlobs } from '../core/stored-records.js';
import { asDir, asVnode, decodeRecord, readNodes, type CommitNode, type DirNode, type Entry, type FileEntry, type NodeSource, type TreeNode } from '../core/tree.js';
import { writeDirHashesDb } from '../storage/dir-hashes-db.js';
import type { CommitRecord, MetaStore, RepoRecord } from '../storage/meta-store.js';
import { allAncestors, commitsBetween, firstParents } from './history.js';
import type { CachedNode, NodeCache } from './node-cache.js';
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
/** Commits diffed against their parents together (see diffTreesMany, dirHashesOf). */
const DIFF_BATCH = 500;
/** Ancestors read at a time when following first parents back. */
const CHAIN_PAGE = 200;

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
      // A record and its chunks go in one batch: a stored record always has its chunks.
      for (const row of checkedRecord(id, parts.node, parts.children)) {
        batch.push(row);
        batched += row[1].length;
      }
      stored += 1;
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
    const parents = await firstParents(this.meta, repo.id, commits);
    const wanted = new Map<string, { commitId: string; path: string; hash: string; size: number }>();
    // Each commit against its first parent, a batch of commits diffed together.
    for (let i = 0; i < commits.length; i += DIFF_BATCH) {
      const batch = commits.slice(i, i + DIFF_BATCH);
      const pairs = batch.map((c, j) => ({ fromId: parents[i + j]?.rootId ?? null, toId: c.rootId }));
      for (const [j, changes] of (await diffTreesMany(source, pairs)).entries()) {
        for (const change of changes) {
          if (change.after && !wanted.has(change.after.hash)) wanted.set(change.after.hash, { commitId: batch[j].id, path: change.path, hash: change.after.hash, size: change.after.size });
        }
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
    const { pushed, held } = await this.pushedCommits(repo, id);
    if (pushed.size === 0) return held.get(id)!;
    const records = new Map<string, CommitRecord>();
    for (const commitId of parentsFirst(pushed, id)) {
      const node = pushed.get(commitId)!;
      const parents = node.parentIds.map((p) => records.get(p) ?? held.get(p));
      if (parents.some((p) => p === undefined)) throw new BadRequest(`Commit ${commitId} names a parent the repository does not hold`);
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
    const ordered = [...records.values()];
    const problems = await this.verifyTrees(
      repo,
      ordered.map((c) => ({ commitId: c.id, rootId: c.rootId, parentRootId: c.parentIds[0] === undefined ? null : (records.get(c.parentIds[0]) ?? held.get(c.parentIds[0]))!.rootId })),
    );
    const failed = ordered.find((c) => problems.has(c.id));
    if (failed) {
      // Ask the client for this commit again on its next push.
      await this.meta.markCommitsReceived(repo.id, [failed.id], false);
      throw problems.get(failed.id)!;
    }
    await this.meta.addCommits(repo.id, ordered);
    return records.get(id)!;
  }

  /**
   * The pushed commits `id` leads to that are not part of the history yet (their nodes), and the commits of
   * the history they build on (`id` itself when it is one), read a generation of parents at a time.
   */
  private async pushedCommits(repo: RepoRecord, id: string): Promise<{ pushed: Map<string, CommitNode>; held: Map<string, CommitRecord> }> {
    const pushed = new Map<string, CommitNode>();
    const held = new Map<string, CommitRecord>();
    for (let generation = [id]; generation.length > 0; ) {
      for (const commit of await this.meta.getCommits(repo.id, generation)) held.set(commit.id, commit);
      const unknown = generation.filter((c) => !held.has(c));
      const nodes = await this.nodes.lookup(repo.id, unknown);
      const parents = new Set<string>();
      unknown.forEach((commitId, i) => {
        const node = nodes[i]?.node;
        if (node === undefined) {
          if (commitId === id) throw new NotFound(`Commit '${commitId}' not found`);
          throw new BadRequest(`Commit ${commitId}, a parent of what is being pushed, is missing: push it first`);
        }
        if (node.kind !== 'commit') throw new BadRequest(`Node ${commitId} is not a commit, but a ${node.kind}`);
        pushed.set(commitId, node);
        for (const parent of node.parentIds) if (!pushed.has(parent) && !held.has(parent)) parents.add(parent);
      });
      generation = [...parents];
    }
    return { pushed, held };
  }

  /**
   * Checks the part of each pushed tree that differs from its first parent's: each new directory and
   * vnode is stored and decodes, occurs once (no cycles), and matches the copy of it its parent
   * holds; its entry counts add up; each entry sits in the vnode its full
   * path hashes to; the repository holds every new file's blob, with the size the tree gives it.
   * The trees are walked together, a level at a time; returns the first problem found in each commit that has one.
   */
  private async verifyTrees(repo: RepoRecord, trees: Array<{ commitId: string; rootId: string; parentRootId: string | null }>): Promise<Map<string, BadRequest>> {
    const problems = new Map<string, BadRequest>();
    let blobs: Array<{ commitId: string; hash: string; size: number; path: string }> = [];
    const fail = (commitId: string, text: string) => {
      if (!problems.has(commitId)) problems.set(commitId, new BadRequest(`Commit ${commitId} cannot be adopted: ${text}`, { type: 'incomplete_push' }));
    };
    const checkBlobs = async () => {
      const held = await this.meta.findRepoBlobs(repo.id, blobs.map((b) => b.hash));
      for (const blob of blobs) {
        const size = held.get(blob.hash);
        if (size === undefined) fail(blob.commitId, `the bytes of '${blob.path}' (version ${blob.hash}) were not uploaded`);
        else if (size !== blob.size) fail(blob.commitId, `'${blob.path}' is said to have ${blob.size} bytes, its version ${blob.hash} has ${size}`);
      }
      blobs = [];
    };
    const steps = trees.flatMap(({ commitId, rootId, parentRootId }) =>
      treeChecks(rootId, parentRootId, {
        failed: () => problems.has(commitId),
        fail: (text) => fail(commitId, text),
        file: async (path, entry) => {
          blobs.push({ commitId, hash: entry.hash, size: entry.size, path });
          if (blobs.length >= 1000) await checkBlobs();
        },
      }),
    );
    await runInRounds((ids) => this.nodes.lookup(repo.id, ids), steps);
    await checkBlobs();
    return problems;
  }

  /**
   * Oxen's `dir_hashes` of each of `commits`, one after the other (oldest first, so that each is usually
   * the next one's first parent). The directories that differ between a commit and its parent are read
   * for a window of commits together, a level of all their trees a round; each map is then its parent's
   * with those changes.
   */
  async *dirHashesOf(repo: RepoRecord, commits: CommitRecord[]): AsyncGenerator<{ id: string; dirs: Map<string, string> }> {
    const source = this.nodes.forRepo(repo.id);
    let previous: { commit: CommitRecord; dirs: Map<string, string> } | undefined;
    for (let i = 0; i < commits.length; i += DIFF_BATCH) {
      const window = commits.slice(i, i + DIFF_BATCH);
      // The parent of each commit, when it is the commit just before it.
      const parents = window.map((c, j) => {
        const before = j > 0 ? window[j - 1] : previous?.commit;
        return before !== undefined && c.parentIds[0] === before.id ? before : null;
      });
      const changes = window.map((): Array<[path: string, id: string | null]> => []);
      const steps = window.flatMap((c, j) => {
        const parent = parents[j];
        if (parent === null) return [];
        const record = { set: (path: string, id: string) => changes[j].push([path, id]), delete: (path: string) => changes[j].push([path, null]) };
        return dirHashSteps(record, '', parent.rootId, c.rootId);
      });
      await runInRounds((ids) => readNodes(source, ids), steps);
      for (const [j, commit] of window.entries()) {
        const key = `${repo.id}:${commit.id}`;
        let dirs = this.dirHashCache.get(key);
        if (!dirs && parents[j] !== null && previous) {
          dirs = new Map(previous.dirs);
          for (const [path, id] of changes[j]) {
            if (id === null) dirs.delete(path);
            else dirs.set(path, id);
          }
          this.dirHashCache.set(key, dirs, dirs.size);
        }
        dirs ??= await this.dirHashes(repo, commit, previous);
        previous = { commit, dirs };
        yield { id: commit.id, dirs };
      }
    }
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
      await updateDirHashes(source, next, previous.commit.rootId, commit.rootId);
      this.dirHashCache.set(key, next, next.size);
      return next;
    }
    // Walk back along first parents to one whose map is cached (or the root), then forward. The parents
    // come from pages of the commit's ancestors (which hold its first parents, newest first).
    const chain: CommitRecord[] = [commit];
    let base: Map<string, string> | null = null;
    let baseRoot: string | null = null;
    const ancestors = new Map<string, CommitRecord>();
    let listed = 1;
    for (;;) {
      const [parentId] = chain[chain.length - 1].parentIds;
      if (parentId === undefined || chain.length > 1000) break;
      const cached = this.dirHashCache.get(`${repo.id}:${parentId}`);
      if (cached) {
        base = cached;
        baseRoot = cached.get('') ?? null;
        break;
      }
      while (!ancestors.has(parentId)) {
        const page = await this.meta.listAncestors(repo.id, commit.id, { offset: listed, limit: CHAIN_PAGE });
        if (page.length === 0) break;
        listed += page.length;
        for (const ancestor of page) ancestors.set(ancestor.id, ancestor);
      }
      const parent = ancestors.get(parentId);
      if (!parent) break;
      chain.push(parent);
    }
    let map = base ?? new Map<string, string>();
    let fromRoot = baseRoot;
    if (!base) {
      // Nothing cached: start from the oldest commit of the chain, whole.
      const oldest = chain.pop()!;
      map = new Map();
      await updateDirHashes(source, map, null, oldest.rootId);
      this.dirHashCache.set(`${repo.id}:${oldest.id}`, map, map.size);
      fromRoot = oldest.rootId;
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      const next = new Map(map);
      await updateDirHashes(source, next, fromRoot, chain[i].rootId);
      this.dirHashCache.set(`${repo.id}:${chain[i].id}`, next, next.size);
      map = next;
      fromRoot = chain[i].rootId;
    }
    return map;
  }
}

/** Brings `map` (directory path → id) from the tree rooted at `oldRootId` to the one at `newRootId` (either null: absent), reading only the directories that differ, a level at a time. */
async function updateDirHashes(source: NodeSource, map: Map<string, string>, oldRootId: string | null, newRootId: string | null): Promise<void> {
  await runInRounds((ids) => readNodes(source, ids), dirHashSteps(map, '', oldRootId, newRootId));
}

/** What dirHashSteps changes: a map, or a record of the changes. */
interface DirHashChanges {
  set(path: string, id: string): unknown;
  delete(path: string): unknown;
}

function dirHashSteps(map: DirHashChanges, path: string, oldId: string | null, newId: string | null): Array<WalkStep<TreeNode>> {
  if (oldId === newId) return [];
  if (newId === null) map.delete(path);
  else map.set(path, newId);
  const ids = [oldId, newId].filter((id): id is string => id !== null);
  const subdirs = (entries: Entry[]) => new Map(entries.flatMap((e) => (e.kind === 'dir' ? [[e.name, e.id] as const] : [])));
  return [
    {
      ids,
      then: (nodes) => {
        const theirs = oldId === null ? null : asDir(nodes[0]);
        const mine = newId === null ? null : asDir(nodes[nodes.length - 1]);
        return vnodesToCompare(theirs, mine).map(([before, after]) => ({
          ids: [...before, ...after],
          then: (vnodes: TreeNode[]) => {
            const entries = vnodes.map(asVnode);
            const was = subdirs(entries.slice(0, before.length).flat());
            const next: Array<WalkStep<TreeNode>> = [];
            for (const [name, id] of subdirs(entries.slice(before.length).flat())) {
              next.push(...dirHashSteps(map, joinRepoPath(path, name), was.get(name) ?? null, id));
              was.delete(name);
            }
            for (const [name, id] of was) next.push(...dirHashSteps(map, joinRepoPath(path, name), id, null));
            return next;
          },
        }));
      },
    },
  ];
}

/** What a tree check reports to: whether its commit failed already, a problem, and each new file. */
interface TreeCheck {
  failed(): boolean;
  fail(text: string): void;
  file(path: string, entry: FileEntry): Promise<void>;
}

/** The steps of checking the tree at `rootId` against its first parent's (`parentRootId`); see SyncService.verifyTrees. */
function treeChecks(rootId: string, parentRootId: string | null, check: TreeCheck): Array<WalkStep<CachedNode | null>> {
  const walked = new Set<string>();
  const expect = <T>(what: string, record: CachedNode | null, as: (node: TreeNode) => T): T | null => {
    if (record === null) {
      check.fail(`${what}: the node was not pushed`);
      return null;
    }
    try {
      return as(record.node);
    } catch (err) {
      check.fail(`${what}: ${(err as Error).message}`);
      return null;
    }
  };
  const dir = (path: string, dirId: string, oldId: string | null, entryPayload: Buffer | null): Array<WalkStep<CachedNode | null>> => {
    if (dirId === oldId) return [];
    const where = `'${path || '/'}'`;
    if (walked.has(dirId)) {
      check.fail(`directory ${dirId} occurs twice in the tree (again at ${where})`);
      return [];
    }
    walked.add(dirId);
    return [
      {
        ids: oldId === null ? [dirId] : [dirId, oldId],
        then: ([record, oldRecord]) => {
          if (check.failed()) return;
          const node = expect(`directory ${where} (${dirId})`, record, asDir);
          if (node === null) return;
          if (entryPayload && !entryPayload.equals(node.payload)) return check.fail(`the entry for ${where} differs from its directory record ${dirId}`);
          const old = oldId === null ? null : expect(`directory ${where} (${oldId})`, oldRecord, asDir);
          if (oldId !== null && old === null) return;
          return vnodes(path, where, node, old);
        },
      },
    ];
  };
  // The vnodes that changed, and the parent's version of the directory's entries to compare subdirectories with.
  const vnodes = (path: string, where: string, node: DirNode, old: DirNode | null): Array<WalkStep<CachedNode | null>> => {
    // With the same partition, only the vnodes that changed are read (and the count starts from the parent's).
    const sameSplit = old !== null && old.vnodes.length === node.vnodes.length;
    const changed = [...node.vnodes.keys()].filter((i) => !sameSplit || old.vnodes[i] !== node.vnodes[i]);
    const oldVnodes = old === null ? [] : sameSplit ? changed.map((i) => old.vnodes[i]) : old.vnodes;
    return [
      {
        ids: [...changed.map((i) => node.vnodes[i]), ...oldVnodes],
        then: async (records) => {
          if (check.failed()) return;
          const before = new Map<string, Entry>();
          let entries = sameSplit ? old.entries : 0;
          for (const [k, oldId] of oldVnodes.entries()) {
            const oldEntries = expect(`vnode ${oldId} of ${where}`, records[changed.length + k], asVnode);
            if (oldEntries === null) return;
            if (sameSplit) entries -= oldEntries.length;
            for (const e of oldEntries) before.set(e.name, e);
          }
          const next: Array<WalkStep<CachedNode | null>> = [];
          for (const [k, index] of changed.entries()) {
            const vnodeId = node.vnodes[index];
            const declared = (decodeOxenNode('VNode', node.vnodePayloads[index]) as { numEntries: number }).numEntries;
            const vnode = expect(`vnode ${vnodeId} of ${where}`, records[k], asVnode);
            if (vnode === null) return;
            if (vnode.length !== declared) return check.fail(`vnode ${vnodeId} of ${where} says it has ${declared} entries, it holds ${vnode.length}`);
            entries += vnode.length;
            for (const entry of vnode) {
              const entryPath = joinRepoPath(path, entry.name);
              if (oxenVnodeIndex(entryPath, node.vnodes.length) !== index) return check.fail(`'${entryPath}' is in vnode ${index} of ${node.vnodes.length}, not where its path hashes to`);
              if (entry.kind === 'file') await check.file(entryPath, entry);
              else {
                const was = before.get(entry.name);
                next.push(...dir(entryPath, entry.id, was?.kind === 'dir' ? was.id : null, entry.payload));
              }
            }
          }
          if (entries !== node.entries) return check.fail(`directory ${where} says it has ${node.entries} entries, its vnodes hold ${entries}`);
          // Totals by data type and bytes are not checked: Oxen's client (0.65) writes stale ones for the
          // directories above a modified file. Yoke's tree writer never lets them go below zero.
          return next;
        },
      },
    ];
  };
  return dir('', rootId, parentRootId, null);
}

/** The pushed commits, each after its parents (the oldest first). */
function parentsFirst(pushed: Map<string, CommitNode>, head: string): string[] {
  const order = new Set<string>();
  const stack: Array<{ id: string; expanded: boolean }> = [{ id: head, expanded: false }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.expanded || order.has(top.id)) {
      stack.pop();
      order.add(top.id);
      continue;
    }
    top.expanded = true;
    for (const parent of pushed.get(top.id)!.parentIds) if (pushed.has(parent) && !order.has(parent)) stack.push({ id: parent, expanded: false });
  }
  return [...order];
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
 * A pushed record, checked, as the rows that store it (core/stored-records.ts): it decodes, its payload names its own id, and a
 * vnode's entries are sorted by name (re-sorted if a client wrote them otherwise: order carries no
 * meaning, and Yoke's and Oxen's readers search vnodes by name).
 */
function checkedRecord(id: string, node: Buffer, children: Buffer): Array<[string, Uint8Array]> {
  let raw;
  // Where the stored form cuts the children into chunks: entries' names (a vnode), else positions.
  let keys: string[] | 'position' = 'position';
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
      keys = sorted.map((c) => c.name);
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
  return storedRowsOfBlobs(id, node, children, keys);
}
