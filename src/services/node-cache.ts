import { decodeStoredNode, unframeRecord, type NodeSource, type TreeNode } from '../core/tree.js';
import type { MetaStore } from '../storage/meta-store.js';
import { WeightedLru } from './weighted-lru.js';

/** Memory a cached node takes, as a multiple of its stored size. */
const DECODED_COST_FACTOR = 3;

/**
 * Tree nodes, cached by (repo, id), decoded and as stored: a download sends the stored bytes of the
 * nodes it walks, and a decoded node's payloads are views of those bytes anyway, so keeping both
 * costs nothing and reads each node once. A node id names one record for good, so a cached node
 * never goes stale; the cache is bounded by an estimate of the memory what it holds takes.
 */
export class NodeCache {
  private readonly entries: WeightedLru<{ node: TreeNode; bytes: Uint8Array }>;

  constructor(
    private readonly meta: MetaStore,
    maxBytes = 96 * 1024 * 1024,
  ) {
    this.entries = new WeightedLru(maxBytes);
  }

  forRepo(repoId: string): NodeSource {
    return { getNode: async (id) => (await this.entry(repoId, id)).node };
  }

  /** A record's `node` and `children` blobs as stored, to send as they are. */
  async record(repoId: string, id: string): Promise<{ node: Buffer; children: Buffer }> {
    return unframeRecord((await this.entry(repoId, id)).bytes);
  }

  private async entry(repoId: string, id: string): Promise<{ node: TreeNode; bytes: Uint8Array }> {
    const key = `${repoId}:${id}`;
    const hit = this.entries.get(key);
    if (hit) return hit;
    const bytes = await this.meta.getNode(repoId, id);
    if (bytes === null) throw new Error(`Tree node ${id} is missing from repository ${repoId}`);
    const entry = { node: decodeStoredNode(id, bytes), bytes };
    // Weighed by what it costs in memory, not on disk: the stored bytes plus the decoded entries
    // (strings, objects), about twice the stored size again (measured under the load benchmark).
    this.entries.set(key, entry, bytes.byteLength * DECODED_COST_FACTOR);
    return entry;
  }
}
