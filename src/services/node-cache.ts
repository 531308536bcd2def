import { decodeStoredNode, type NodeSource, type TreeNode } from '../core/tree.js';
import type { MetaStore } from '../storage/meta-store.js';
import { WeightedLru } from './weighted-lru.js';

/** A node, decoded and as stored. */
export interface CachedNode {
  node: TreeNode;
  bytes: Uint8Array;
}

/** Memory a cached node takes, as a multiple of its stored size. */
const DECODED_COST_FACTOR = 3;

/**
 * Tree nodes, cached by (repo, id), decoded and as stored: a download sends the stored bytes of the
 * nodes it walks, and a decoded node's payloads are views of those bytes anyway, so keeping both
 * costs nothing and reads each node once. A node id names one record for good, so a cached node
 * never goes stale; the cache is bounded by an estimate of the memory what it holds takes.
 */
export class NodeCache {
  private readonly entries: WeightedLru<CachedNode>;

  constructor(
    private readonly meta: MetaStore,
    maxBytes = 96 * 1024 * 1024,
  ) {
    this.entries = new WeightedLru<CachedNode>(maxBytes);
  }

  forRepo(repoId: string): NodeSource {
    const nodes = async (ids: string[]) => (await this.records(repoId, ids)).map((entry) => entry.node);
    return { getNode: async (id) => (await nodes([id]))[0], getNodes: nodes };
  }

  /** The nodes `ids` name, in that order; one that is not stored is an error (the trees Yoke serves are complete). */
  async records(repoId: string, ids: string[]): Promise<CachedNode[]> {
    return (await this.lookup(repoId, ids)).map((entry, i) => {
      if (entry === null) throw new Error(`Tree node ${ids[i]} is missing from repository ${repoId}`);
      return entry;
    });
  }

  /**
   * The nodes `ids` name, in that order (null: not stored): the cached ones, and the others in one read
   * of the store. Throws what the store throws, or if a stored record does not decode.
   */
  async lookup(repoId: string, ids: string[]): Promise<Array<CachedNode | null>> {
    const found = ids.map((id) => this.entries.get(`${repoId}:${id}`) ?? null);
    const misses = [...new Set(ids.filter((_, i) => found[i] === null))];
    if (misses.length === 0) return found;
    const stored = await this.meta.getNodes(repoId, misses);
    const read = new Map<string, CachedNode>();
    for (const [id, bytes] of stored) {
      const entry = { node: decodeStoredNode(id, bytes), bytes };
      // Weighed by what it costs in memory, not on disk: the stored bytes plus the decoded entries
      // (strings, objects), about twice the stored size again (measured under the load benchmark).
      this.entries.set(`${repoId}:${id}`, entry, bytes.byteLength * DECODED_COST_FACTOR);
      read.set(id, entry);
    }
    return found.map((entry, i) => entry ?? read.get(ids[i]) ?? null);
  }
}
