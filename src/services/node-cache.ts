import { decodeStoredNode, unframeRecord, type NodeSource, type TreeNode } from '../core/tree.js';
import type { MetaStore } from '../storage/meta-store.js';
import { WeightedLru } from './weighted-lru.js';

/**
 * Decoded tree nodes, cached by (repo, id). A node id names one record for good, so a cached node
 * never goes stale; the cache is bounded by the encoded size of what it holds.
 */
export class NodeCache {
  private readonly entries: WeightedLru<TreeNode>;

  constructor(
    private readonly meta: MetaStore,
    maxBytes = 64 * 1024 * 1024,
  ) {
    this.entries = new WeightedLru(maxBytes);
  }

  forRepo(repoId: string): NodeSource {
    return { getNode: (id) => this.get(repoId, id) };
  }

  /** A record's `node` and `children` blobs as stored, to send as they are. */
  async record(repoId: string, id: string): Promise<{ node: Buffer; children: Buffer }> {
    return unframeRecord(await this.bytes(repoId, id));
  }

  private async get(repoId: string, id: string): Promise<TreeNode> {
    const key = `${repoId}:${id}`;
    const hit = this.entries.get(key);
    if (hit) return hit;
    const bytes = await this.bytes(repoId, id);
    const node = decodeStoredNode(id, bytes);
    this.entries.set(key, node, bytes.byteLength);
    return node;
  }

  private async bytes(repoId: string, id: string): Promise<Uint8Array> {
    const bytes = await this.meta.getNode(repoId, id);
    if (bytes === null) throw new Error(`Tree node ${id} is missing from repository ${repoId}`);
    return bytes;
  }
}
