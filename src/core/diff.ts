import { joinRepoPath } from './paths.js';
import { loadDir, loadVnode, walkFiles, type Entry, type FileEntry, type NodeSource } from './tree.js';

/** A file that differs between two trees. `before`/`after` are null where the file is absent. */
export interface FileChange {
  path: string;
  status: 'added' | 'removed' | 'modified';
  before: FileSide | null;
  after: FileSide | null;
}

/** One side of a change; `carry` is the tree entry itself, so a merge can take it over as it is (last commit and all). */
export interface FileSide {
  hash: string;
  size: number;
  carry?: FileEntry;
}

const leaf = (e: FileEntry): FileSide => ({ hash: e.hash, size: e.size, carry: e });

/**
 * Every file that differs between the trees rooted at `fromId` and `toId`, sorted by path. Only
 * subtrees whose ids differ are read: equal directory ids are skipped whole, and within two
 * versions of a directory with the same vnode count only the vnodes whose ids differ are compared
 * (both sides partition by the same paths). So two
 * commits of a large repository that differ in a few files cost a handful of node reads.
 */
export async function diffTrees(source: NodeSource, fromId: string | null, toId: string | null, prefix = ''): Promise<FileChange[]> {
  const out: FileChange[] = [];
  await diffDirs(source, fromId, toId, prefix, out);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function diffDirs(source: NodeSource, fromId: string | null, toId: string | null, prefix: string, out: FileChange[]): Promise<void> {
  if (fromId === toId) return;
  if (fromId === null || toId === null) {
    const side = (fromId ?? toId)!;
    for await (const file of walkFiles(source, side, prefix)) {
      const value = leaf(file.entry);
      out.push(fromId === null ? { path: file.path, status: 'added', before: null, after: value } : { path: file.path, status: 'removed', before: value, after: null });
    }
    return;
  }
  const [from, to] = await Promise.all([loadDir(source, fromId), loadDir(source, toId)]);
  if (from.vnodes.length === to.vnodes.length) {
    // Same partition: a name lives in the same vnode on both sides, so equal vnodes are skipped.
    for (let i = 0; i < from.vnodes.length; i++) {
      if (from.vnodes[i] === to.vnodes[i]) continue;
      await diffEntries(source, await loadVnode(source, from.vnodes[i]), await loadVnode(source, to.vnodes[i]), prefix, out);
    }
  } else {
    await diffEntries(source, await allEntries(source, from.vnodes), await allEntries(source, to.vnodes), prefix, out);
  }
}

async function allEntries(source: NodeSource, vnodes: string[]): Promise<Entry[]> {
  const all: Entry[] = [];
  for (const vnode of vnodes) all.push(...(await loadVnode(source, vnode)));
  return all;
}

async function diffEntries(source: NodeSource, before: Entry[], after: Entry[], prefix: string, out: FileChange[]): Promise<void> {
  const byName = new Map(after.map((e) => [e.name, e]));
  for (const old of before) {
    const path = joinRepoPath(prefix, old.name);
    const next = byName.get(old.name);
    byName.delete(old.name);
    await diffEntry(source, path, old, next ?? null, out);
  }
  for (const added of byName.values()) await diffEntry(source, joinRepoPath(prefix, added.name), null, added, out);
}

async function diffEntry(source: NodeSource, path: string, before: Entry | null, after: Entry | null, out: FileChange[]): Promise<void> {
  const beforeDir = before?.kind === 'dir' ? before.id : null;
  const afterDir = after?.kind === 'dir' ? after.id : null;
  if (beforeDir !== null || afterDir !== null) await diffDirs(source, beforeDir, afterDir, path, out);
  const beforeFile = before?.kind === 'file' ? leaf(before) : null;
  const afterFile = after?.kind === 'file' ? leaf(after) : null;
  if (beforeFile && afterFile) {
    if (beforeFile.hash !== afterFile.hash) out.push({ path, status: 'modified', before: beforeFile, after: afterFile });
  } else if (beforeFile) {
    out.push({ path, status: 'removed', before: beforeFile, after: null });
  } else if (afterFile) {
    out.push({ path, status: 'added', before: null, after: afterFile });
  }
}
