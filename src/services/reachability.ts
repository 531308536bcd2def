import { decodeOxenNode, oxenVnodeIndex, type OxenVNode } from '../core/oxen-nodes.js';
import { indexedFileOf } from '../core/frame-edits.js';
import { decodeIndexNode, decodeIndexRoot, indexChildIds, indexRootId, type IndexNode } from '../core/name-index.js';
import { joinRepoPath } from '../core/paths.js';
import { runInRounds, type WalkStep } from '../core/rounds.js';
import { MissingChunk, storedChunkIds, type ChunkLookup } from '../core/stored-records.js';
import { decodeStoredNode, type DirNode, type FileEntry, type TreeNode } from '../core/tree.js';
import type { CommitRecord, MetaStore, RepoRecord } from '../storage/meta-store.js';
import { readStored } from './node-cache.js';

/** Something a walk found wrong: what kind, which object, where. */
export interface Problem {
  kind: 'missing_commit' | 'missing_node' | 'corrupt_node' | 'missing_blob' | 'blob_size_mismatch' | 'corrupt_blob';
  repo: string;
  /** Commit id, node id or blob hash. */
  id: string;
  /** Where it was needed: `branch main`, `commit …`, a file path. */
  where: string;
  detail: string;
}

/** What one repository reaches, kept across walks so that nothing is walked twice. */
export interface Reached {
  commits: Set<string>;
  /** Node records and the chunks their stored forms list. */
  nodes: Set<string>;
}

export interface WalkVisitor {
  /** A file entry of a reachable tree (every occurrence: the same blob may sit at many paths). */
  file(entry: FileEntry, path: string): void;
  problem(problem: Problem): void;
}

/** Most ancestors read at once; the first reads are smaller, since a branch often adds only a few commits to what is reached. */
const COMMIT_BATCH = 2000;
const FIRST_COMMIT_BATCH = 50;

/** A stored record and where its chunks are. */
type Stored = { bytes: Uint8Array; chunk: ChunkLookup };
type Step = WalkStep<Stored | undefined>;

/**
 * Walks from `heads` (commit ids, each with a label saying where it came from) to every ancestor,
 * each commit's node record and tree, and every file entry in them, skipping what `reached` holds
 * already. Reads the store directly (not the server's node cache: a walk of everything would flush it):
 * ancestors through the store's ancestor query, and the trees of a batch of commits together, a level at
 * a time. Missing and undecodable objects are reported, never thrown; store failures are thrown.
 */
export async function walkRepository(meta: MetaStore, repo: RepoRecord, heads: Array<{ id: string; where: string }>, reached: Reached, visitor: WalkVisitor): Promise<void> {
  const name = `${repo.namespace}/${repo.name}`;
  const report = (kind: Problem['kind'], id: string, where: string, detail: string) => visitor.problem({ kind, repo: name, id, where, detail });
  const read = async (ids: string[]) => {
    const { stored, chunk } = await readStored(meta, repo.id, ids);
    return ids.map((id) => {
      const bytes = stored.get(id);
      return bytes === undefined ? undefined : { bytes, chunk };
    });
  };

  const decode = (id: string, found: Stored | undefined, where: string): TreeNode | null => {
    if (found === undefined) {
      report('missing_node', id, where, 'the node is not stored');
      return null;
    }
    try {
      for (const chunkId of storedChunkIds(found.bytes)) reached.nodes.add(chunkId);
      return decodeStoredNode(id, found.bytes, found.chunk);
    } catch (err) {
      if (err instanceof MissingChunk) report('missing_node', err.chunkId, where, `a chunk of node ${id} is not stored`);
      else report('corrupt_node', id, where, (err as Error).message);
      return null;
    }
  };

  /** The nodes of a directory's name index below `node` (name-index.ts), a level at a time. */
  const walkIndex = (node: IndexNode, dirId: string, where: string): Step[] => {
    const unread = indexChildIds(node).filter((id) => !reached.nodes.has(id));
    if (unread.length === 0) return [];
    for (const id of unread) reached.nodes.add(id);
    return [
      {
        ids: unread,
        then: (records) =>
          records.flatMap((found, i) => {
            try {
              if (found !== undefined) return walkIndex(decodeIndexNode(found.bytes), dirId, where);
              report('missing_node', unread[i], where, `a node of the name index of directory ${dirId} is not stored`);
            } catch (err) {
              report('corrupt_node', unread[i], where, `name index of directory ${dirId}: ${(err as Error).message}`);
            }
            return [];
          }),
      },
    ];
  };

  /** The steps for a directory not reached yet (none if it was): its record, then its vnodes, and its name index if it has one. */
  const walkDir = (dirId: string, path: string): Step[] => {
    if (reached.nodes.has(dirId)) return [];
    reached.nodes.add(dirId);
    const where = path === '' ? '/' : path;
    const index: Step = {
      ids: [indexRootId(dirId)],
      then: ([found]) => {
        if (found === undefined) return;
        reached.nodes.add(indexRootId(dirId));
        try {
          return walkIndex(decodeIndexRoot(found.bytes).top, dirId, where);
        } catch (err) {
          report('corrupt_node', indexRootId(dirId), where, `name index of directory ${dirId}: ${(err as Error).message}`);
        }
      },
    };
    return [
      index,
      {
        ids: [dirId],
        then: ([bytes]) => {
          const dir = decode(dirId, bytes, where);
          if (dir === null) return;
          if (dir.kind !== 'dir') return report('corrupt_node', dirId, where, `expected a directory, found a ${dir.kind}`);
          return walkVnodes(dir, path, where);
        },
      },
    ];
  };

  const walkVnodes = (dir: DirNode, path: string, where: string): Step[] => {
    // Counted as the directory declares it; checked against what each vnode holds when it is first read.
    const declared = dir.vnodePayloads.map((payload) => (decodeOxenNode('VNode', payload) as OxenVNode).numEntries);
    const entries = declared.reduce((a, b) => a + b, 0);
    if (entries !== dir.entries) report('corrupt_node', dir.id, where, `the directory says it has ${dir.entries} entries, its vnodes hold ${entries}`);
    const unread = [...dir.vnodes.entries()].filter(([, id]) => !reached.nodes.has(id));
    if (unread.length === 0) return [];
    for (const [, id] of unread) reached.nodes.add(id);
    return [
      {
        ids: unread.map(([, id]) => id),
        then: (records) => {
          const next: Step[] = [];
          unread.forEach(([index, vnodeId], i) => {
            const vnode = decode(vnodeId, records[i], where);
            if (vnode === null) return;
            if (vnode.kind !== 'vnode') return report('corrupt_node', vnodeId, where, `expected a vnode, found a ${vnode.kind}`);
            if (vnode.entries.length !== declared[index]) report('corrupt_node', vnodeId, where, `the vnode holds ${vnode.entries.length} entries, its directory says ${declared[index]}`);
            for (const entry of vnode.entries) {
              const entryPath = joinRepoPath(path, entry.name);
              if (oxenVnodeIndex(entryPath, dir.vnodes.length) !== index) {
                report('corrupt_node', vnodeId, where, `'${entryPath}' is in vnode ${index} of ${dir.vnodes.length}, not where its path hashes to`);
              }
              if (entry.kind === 'file') visitor.file(entry, entryPath);
              else next.push(...walkDir(entry.id, entryPath));
            }
          });
          return next;
        },
      },
    ];
  };

  /** A commit's own node record (Oxen's clients download it with the tree), and its tree. */
  const walkCommit = (commit: CommitRecord): Step[] => {
    reached.nodes.add(commit.id);
    const where = `commit ${commit.id}`;
    const record: Step = {
      ids: [commit.id],
      then: ([bytes]) => {
        const node = decode(commit.id, bytes, where);
        if (node !== null && (node.kind !== 'commit' || node.rootId !== commit.rootId)) report('corrupt_node', commit.id, where, `the commit's node does not name root ${commit.rootId}`);
      },
    };
    return [record, ...walkDir(commit.rootId, '')];
  };

  // Parents named by a reached commit and not reached (yet): what is left of them at the end is missing.
  const named = new Map<string, string>();
  const listed = new Set<string>();
  const fresh = heads.filter((h) => !reached.commits.has(h.id) && !listed.has(h.id) && listed.add(h.id));
  const stored = new Set((await meta.getCommits(repo.id, fresh.map((h) => h.id))).map((c) => c.id));
  for (const head of fresh) {
    if (reached.commits.has(head.id)) continue;
    if (!stored.has(head.id)) {
      reached.commits.add(head.id);
      report('missing_commit', head.id, head.where, 'the commit is not stored');
      continue;
    }
    // Ancestors come newest first, each after its children; once none of this head's walk is open, the rest is reached.
    const open = new Set<string>();
    for (let offset = 0, limit = FIRST_COMMIT_BATCH; ; offset += limit, limit = Math.min(COMMIT_BATCH, limit * 4)) {
      const page = await meta.listAncestors(repo.id, head.id, { offset, limit });
      const steps: Step[] = [];
      for (const commit of page) {
        open.delete(commit.id);
        if (reached.commits.has(commit.id)) continue;
        reached.commits.add(commit.id);
        for (const parent of commit.parentIds) {
          if (reached.commits.has(parent)) continue;
          open.add(parent);
          if (!named.has(parent)) named.set(parent, `parent of commit ${commit.id}`);
        }
        steps.push(...walkCommit(commit));
      }
      await runInRounds(read, steps);
      if (page.length < limit || open.size === 0) break;
    }
  }
  for (const [id, where] of named) {
    if (reached.commits.has(id)) continue;
    reached.commits.add(id);
    report('missing_commit', id, where, 'the commit is not stored');
  }
}

/** What a repository keeps alive: its branches' and workspaces' commits, and the files staged in its workspaces. */
export interface RepositoryRoots {
  heads: Array<{ id: string; where: string }>;
  staged: Array<{ hash: string; size: number; where: string }>;
}

export async function repositoryRoots(meta: MetaStore, repo: RepoRecord): Promise<RepositoryRoots> {
  const heads = (await meta.listBranches(repo.id)).map((b) => ({ id: b.commitId, where: `branch ${b.name}` }));
  const staged: RepositoryRoots['staged'] = [];
  for (const w of await meta.listWorkspaces(repo.id)) {
    heads.push({ id: w.baseCommitId, where: `workspace ${w.id}` });
    for (const change of await meta.listStagedChanges(w.uid)) {
      if (change.hash !== null) staged.push({ hash: change.hash, size: change.size, where: `${change.path} (staged in workspace ${w.id})` });
    }
    // A data frame's edits are replayed on the file it was indexed from, which may be staged no longer.
    for (const log of await meta.listFrameLogs(w.uid)) {
      const [first] = await meta.listFrameOps(w.uid, log.path, 0, 1);
      const file = first ? indexedFileOf(first.op) : null;
      if (file) staged.push({ hash: file.hash, size: file.size, where: `${log.path} (a data frame indexed in workspace ${w.id} from ${file.path})` });
    }
  }
  return { heads, staged };
}

/** Every repository, namespace by namespace. */
export async function allRepositories(meta: MetaStore): Promise<RepoRecord[]> {
  const repos: RepoRecord[] = [];
  for (const namespace of await meta.listNamespaces()) repos.push(...(await meta.listRepos(namespace)));
  return repos;
}
