import { decodeNode, type NodeSource, type TreeNode } from '../core/tree.js';
import type { MetaStore } from '../storage/meta-store.js';

/**
 * Decoded tree nodes, cached by (repo, id). Nodes are immutable and content-addressed, so a cached
 * node never goes stale; the cache is bounded by the encoded size of what it holds.
 */
export class NodeCache {
  private readonly entries = new Map<string, { node: TreeNode; weight: number }>();
  private weight = 0;

  constructor(
    private readonly meta: MetaStore,
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {}

  forRepo(repoId: string): NodeSource {
    return { getNode: (id) => this.get(repoId, id) };
  }

  private async get(repoId: string, id: string): Promise<TreeNode> {
    const key = `${repoId}:${id}`;
    const hit = this.entries.get(key);
    if (hit) {
      // Re-insert to mark as most recently used.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit.node;
    }
    const bytes = await this.meta.getNode(repoId, id);
    if (bytes === null) throw new Error(`Tree node ${id} is missing from repository ${repoId}`);
    const node = decodeNode(bytes);
    this.entries.set(key, { node, weight: bytes.byteLength });
    this.weight += bytes.byteLength;
    for (const [oldest, value] of this.entries) {
      if (this.weight <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.weight -= value.weight;
    }
    return node;
  }
}
