import type { FileChange } from './diff.js';
import type { ChangeSet } from './tree.js';

/** A path both sides changed differently since their common ancestor. Hashes are null where absent. */
export interface MergeConflict {
  path: string;
  base: string | null;
  ours: string | null;
  theirs: string | null;
}

/**
 * File-level three-way merge (Oxen's rules, oxen-internals §6.3). Given what changed from the
 * common ancestor to ours and to theirs: a path only theirs changed takes theirs (added, modified
 * or removed); a path only ours changed keeps ours; a path both changed to the same result stays;
 * anything else — modified differently, added differently, modified on one side and removed on
 * the other — is a conflict.
 */
export function threeWayMerge(ours: FileChange[], theirs: FileChange[]): { apply: ChangeSet; conflicts: MergeConflict[] } {
  const oursByPath = new Map(ours.map((c) => [c.path, c]));
  const apply: ChangeSet = new Map();
  const conflicts: MergeConflict[] = [];
  for (const change of theirs) {
    const mine = oursByPath.get(change.path);
    if (!mine) {
      apply.set(change.path, change.after);
      continue;
    }
    if ((mine.after?.hash ?? null) === (change.after?.hash ?? null)) continue;
    conflicts.push({ path: change.path, base: change.before?.hash ?? null, ours: mine.after?.hash ?? null, theirs: change.after?.hash ?? null });
  }
  return { apply, conflicts };
}

export interface AncestorInfo {
  id: string;
  generation: number;
  timestamp: string;
}

/**
 * The lowest common ancestor of two commits, given each one's ancestors (itself included): the
 * common ancestor with the highest generation, newest first on ties, then by id. Null when the
 * histories share nothing.
 */
export function lowestCommonAncestor<T extends AncestorInfo>(ancestorsOfA: T[], ancestorsOfB: T[]): T | null {
  const inB = new Set(ancestorsOfB.map((c) => c.id));
  let best: T | null = null;
  for (const c of ancestorsOfA) {
    if (!inB.has(c.id)) continue;
    if (
      !best ||
      c.generation > best.generation ||
      (c.generation === best.generation && (c.timestamp > best.timestamp || (c.timestamp === best.timestamp && c.id < best.id)))
    ) {
      best = c;
    }
  }
  return best;
}
