import { joinRepoPath } from './paths.js';
import { loadBucket, loadDir, walkFiles, type Entry, type NodeSource } from './tree.js';

/** A file that differs between two trees. `before`/`after` are null where the file is absent. */
export interface FileChange {
  path: string;
  status: 'added' | 'removed' | 'modified';
  before: { hash: string; size: number } | null;
  after: { hash: string; size: number } | null;
}

const leaf = (e: Entry & { kind: 'file' }) => ({ hash: e.hash, size: e.size });

/**
 * Every file that differs between the trees rooted at `fromId` and `toId`, sorted by path. Only
 * subtrees whose ids differ are read: equal directory ids are skipped whole, and within two
 * directories with the same bucket layout only the buckets whose ids differ are compared. So two
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
      const value = { hash: file.hash, size: file.size };
      out.push(fromId === null ? { path: file.path, status: 'added', before: null, after: value } : { path: file.path, status: 'removed', before: value, after: null });
    }
    return;
  }
  const [from, to] = await Promise.all([loadDir(source, fromId), loadDir(source, toId)]);
  if (from.buckets.length === to.buckets.length) {
    // Same layout: a name lives in the same bucket on both sides, so equal buckets are skipped.
    for (let i = 0; i < from.buckets.length; i++) {
      if (from.buckets[i] === to.buckets[i]) continue;
      await diffEntries(source, await loadBucket(source, from.buckets[i]), await loadBucket(source, to.buckets[i]), prefix, out);
    }
  } else {
    await diffEntries(source, await allEntries(source, from.buckets), await allEntries(source, to.buckets), prefix, out);
  }
}

async function allEntries(source: NodeSource, buckets: Array<string | null>): Promise<Entry[]> {
  const all: Entry[] = [];
  for (const bucket of buckets) all.push(...(await loadBucket(source, bucket)));
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
