import { hashBuffer } from './hash.js';
import type { ChangeSet } from './tree.js';

export interface CommitContent {
  parentIds: string[];
  message: string;
  author: string;
  email: string;
  timestamp: string;
  /** What the commit changes on top of its first parent. */
  changes: ChangeSet;
}

/**
 * A commit id is fixed before its tree is built, since every entry the commit changes records the
 * commit as its last one (as in Oxen, whose ids hash parents, message, author and time). Yoke also
 * hashes the change set, so two commits with the same parents, message and millisecond but
 * different content never share an id.
 */
export function computeCommitId(c: CommitContent): string {
  const changes = [...c.changes].map(([path, leaf]) => `${path}\0${leaf === null ? '-' : `${leaf.hash}:${leaf.size}`}`).sort();
  return hashBuffer(JSON.stringify(['commit', c.parentIds, c.message, c.author, c.email, c.timestamp, changes]));
}
