import { decodeOxenNode, oxenVnodeIndex, type OxenVNode } from '../core/oxen-nodes.js';
import { joinRepoPath } from '../core/paths.js';
import { decodeStoredNode, type DirNode, type FileEntry, type TreeNode } from '../core/tree.js';
import type { MetaStore, RepoRecord } from '../storage/meta-store.js';

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
  nodes: Set<string>;
}

export interface WalkVisitor {
  /** A file entry of a reachable tree (every occurrence: the same blob may sit at many paths). */
  file(entry: FileEntry, path: string): void;
  problem(problem: Problem): void;
}

const COMMIT_BATCH = 500;

/**
 * Walks from `heads` (commit ids, each with a label saying where it came from) to every ancestor,
 * each commit's node record and tree, and every file entry in them, skipping what `reached` holds
 * already. Reads the store directly (not the server's node cache: a walk of everything would flush it).
 * Missing and undecodable objects are reported, never thrown; store failures are thrown.
 */
export async function walkRepository(meta: MetaStore, repo: RepoRecord, heads: Array<{ id: string; where: string }>, reached: Reached, visitor: WalkVisitor): Promise<void> {
  const name = `${repo.namespace}/${repo.name}`;
  const report = (kind: Problem['kind'], id: string, where: string, detail: string) => visitor.problem({ kind, repo: name, id, where, detail });

  const readNode = async (id: string, where: string): Promise<TreeNode | null> => {
    const bytes = await meta.getNode(repo.id, id);
    if (bytes === null) {
      report('missing_node', id, where, 'the node is not stored');
      return null;
    }
    try {
      return decodeStoredNode(id, bytes);
    } catch (err) {
      report('corrupt_node', id, where, (err as Error).message);
      return null;
    }
  };

  const walkDir = async (dirId: string, path: string): Promise<void> => {
    if (reached.nodes.has(dirId)) return;
    reached.nodes.add(dirId);
    const where = path === '' ? '/' : path;
    const dir = await readNode(dirId, where);
    if (dir === null) return;
    if (dir.kind !== 'dir') return report('corrupt_node', dirId, where, `expected a directory, found a ${dir.kind}`);
    await walkVnodes(dir, path, where);
  };

  const walkVnodes = async (dir: DirNode, path: string, where: string): Promise<void> => {
    let entries = 0;
    for (let index = 0; index < dir.vnodes.length; index++) {
      const vnodeId = dir.vnodes[index];
      // Counted as the directory declares it; checked against what the vnode holds when it is first read.
      const declared = (decodeOxenNode('VNode', dir.vnodePayloads[index]) as OxenVNode).numEntries;
      entries += declared;
      if (reached.nodes.has(vnodeId)) continue;
      reached.nodes.add(vnodeId);
      const vnode = await readNode(vnodeId, where);
      if (vnode === null) continue;
      if (vnode.kind !== 'vnode') {
        report('corrupt_node', vnodeId, where, `expected a vnode, found a ${vnode.kind}`);
        continue;
      }
      if (vnode.entries.length !== declared) report('corrupt_node', vnodeId, where, `the vnode holds ${vnode.entries.length} entries, its directory says ${declared}`);
      for (const entry of vnode.entries) {
        const entryPath = joinRepoPath(path, entry.name);
        if (oxenVnodeIndex(entryPath, dir.vnodes.length) !== index) {
          report('corrupt_node', vnodeId, where, `'${entryPath}' is in vnode ${index} of ${dir.vnodes.length}, not where its path hashes to`);
        }
        if (entry.kind === 'file') visitor.file(entry, entryPath);
        else await walkDir(entry.id, entryPath);
      }
    }
    if (entries !== dir.entries) report('corrupt_node', dir.id, where, `the directory says it has ${dir.entries} entries, its vnodes hold ${entries}`);
  };

  let frontier = heads.filter((h) => !reached.commits.has(h.id));
  while (frontier.length > 0) {
    const batch = frontier.slice(0, COMMIT_BATCH);
    frontier = frontier.slice(COMMIT_BATCH);
    const found = new Map((await meta.getCommits(repo.id, batch.map((h) => h.id))).map((c) => [c.id, c]));
    for (const head of batch) {
      if (reached.commits.has(head.id)) continue;
      reached.commits.add(head.id);
      const commit = found.get(head.id);
      if (!commit) {
        report('missing_commit', head.id, head.where, 'the commit is not stored');
        continue;
      }
      for (const parent of commit.parentIds) if (!reached.commits.has(parent)) frontier.push({ id: parent, where: `parent of commit ${commit.id}` });
      // The commit's own node record (Oxen's clients download it with the tree).
      reached.nodes.add(commit.id);
      const node = await readNode(commit.id, `commit ${commit.id}`);
      if (node !== null && (node.kind !== 'commit' || node.rootId !== commit.rootId)) {
        report('corrupt_node', commit.id, `commit ${commit.id}`, `the commit's node does not name root ${commit.rootId}`);
      }
      await walkDir(commit.rootId, '');
    }
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
  }
  return { heads, staged };
}

/** Every repository, namespace by namespace. */
export async function allRepositories(meta: MetaStore): Promise<RepoRecord[]> {
  const repos: RepoRecord[] = [];
  for (const namespace of await meta.listNamespaces()) repos.push(...(await meta.listRepos(namespace)));
  return repos;
}
