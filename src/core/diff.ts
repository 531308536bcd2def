import { joinRepoPath } from './paths.js';
import { runInRounds, type WalkStep } from './rounds.js';
import { asDir, asVnode, readNodes, type DirNode, type Entry, type FileEntry, type NodeSource, type TreeNode } from './tree.js';

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
  return (await diffTreesMany(source, [{ fromId, toId, prefix }]))[0];
}

/**
 * `diffTrees` of several pairs of trees at once (a commit and its parent, for many commits): the
 * walks go down together, reading the directories of a level of every tree in one call, then their vnodes.
 */
export async function diffTreesMany(source: NodeSource, pairs: Array<{ fromId: string | null; toId: string | null; prefix?: string }>): Promise<FileChange[][]> {
  const outs = pairs.map((): FileChange[] => []);
  await runInRounds(
    (ids) => readNodes(source, ids),
    pairs.flatMap((pair, i) => diffDirs(outs[i], pair.prefix ?? '', pair.fromId, pair.toId)),
  );
  return outs.map((out) => out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)));
}

type Step = WalkStep<TreeNode>;

/**
 * The vnodes whose entries can differ between two versions of a directory (null: absent), as groups to
 * compare: with the same partition a name lives in the same vnode on both sides, so each differing pair
 * alone; otherwise all of one side against all of the other.
 */
export function vnodesToCompare(from: DirNode | null, to: DirNode | null): Array<[before: string[], after: string[]]> {
  if (from && to && from.vnodes.length === to.vnodes.length) {
    return from.vnodes.flatMap((v, i): Array<[string[], string[]]> => (v === to.vnodes[i] ? [] : [[[v], [to.vnodes[i]]]]));
  }
  return [[from?.vnodes ?? [], to?.vnodes ?? []]];
}

/** The steps that compare directory `fromId` with `toId` (null: absent) at `prefix`. */
function diffDirs(out: FileChange[], prefix: string, fromId: string | null, toId: string | null): Step[] {
  if (fromId === toId) return [];
  const ids = [fromId, toId].filter((id): id is string => id !== null);
  return [
    {
      ids,
      then: (nodes) => {
        const from = fromId === null ? null : asDir(nodes[0]);
        const to = toId === null ? null : asDir(nodes[nodes.length - 1]);
        return vnodesToCompare(from, to).map(([before, after]) => ({
          ids: [...before, ...after],
          then: (vnodes: TreeNode[]) => {
            const entries = vnodes.map(asVnode);
            return diffEntries(out, prefix, entries.slice(0, before.length).flat(), entries.slice(before.length).flat());
          },
        }));
      },
    },
  ];
}

function diffEntries(out: FileChange[], prefix: string, before: Entry[], after: Entry[]): Step[] {
  const byName = new Map(after.map((e) => [e.name, e]));
  const next: Step[] = [];
  for (const old of before) {
    const now = byName.get(old.name);
    byName.delete(old.name);
    next.push(...diffEntry(out, joinRepoPath(prefix, old.name), old, now ?? null));
  }
  for (const added of byName.values()) next.push(...diffEntry(out, joinRepoPath(prefix, added.name), null, added));
  return next;
}

function diffEntry(out: FileChange[], path: string, before: Entry | null, after: Entry | null): Step[] {
  const beforeFile = before?.kind === 'file' ? leaf(before) : null;
  const afterFile = after?.kind === 'file' ? leaf(after) : null;
  if (beforeFile && afterFile) {
    if (beforeFile.hash !== afterFile.hash) out.push({ path, status: 'modified', before: beforeFile, after: afterFile });
  } else if (beforeFile) {
    out.push({ path, status: 'removed', before: beforeFile, after: null });
  } else if (afterFile) {
    out.push({ path, status: 'added', before: null, after: afterFile });
  }
  return diffDirs(out, path, before?.kind === 'dir' ? before.id : null, after?.kind === 'dir' ? after.id : null);
}
