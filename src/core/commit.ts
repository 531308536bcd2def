import { hashBuffer } from './hash.js';

export interface CommitContent {
  parentIds: string[];
  message: string;
  author: string;
  email: string;
  timestamp: string;
  rootId: string;
}

/**
 * A commit id is the xxh3-128 of its canonical content, the root tree id included, so a commit
 * and everything below it can be re-verified from the bytes alone.
 */
export function computeCommitId(c: CommitContent): string {
  const canonical = JSON.stringify(['commit', c.parentIds, c.message, c.author, c.email, c.timestamp, c.rootId]);
  return hashBuffer(canonical);
}
