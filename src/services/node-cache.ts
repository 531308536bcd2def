import { storedBlobs, storedChunkIds, type ChunkLookup } from '../core/stored-records.js';
import { decodeRecord, type NodeSource, type TreeNode } from '../core/tree.js';
import type { MetaStore } from '../storage/meta-store.js';
import { WeightedLru } from './weighted-lru.js';

/** A node, decoded and as Oxen's blobs (what a download sends). */
export interface CachedNode {
  node: TreeNode;
  blobs: { node: Buffer; children: Buffer };
  /** The chunks its stored form lists (none if plain: see core/stored-records.ts). */
  chunks: string[];
}

/**
 * The stored forms of those of `ids` the store holds, and a lookup of the chunks the chunked ones list
 * (read in a second query, only when there are any).
 */
export async function readStored(meta: MetaStore, repoId: string, ids: string[]): Promise<{ stored: Map<string, Uint8Array>; chunk: ChunkLookup }> {
  const stored = await meta.getNodes(repoId, ids);
  const chunkIds = new Set<string>();
  for (const bytes of stored.values()) for (const id of storedChunkIds(bytes)) chunkIds.add(id);
  const chunks = chunkIds.size === 0 ? new Map<string, Uint8Array>() : await meta.getNodes(repoId, [...chunkIds]);
  return { stored, chunk: (id) => chunks.get(id) };
}

/** Memory a cached node takes, as a multiple of its size as Oxen's blobs. */
const DECODED_COST_FACTOR = 3;

/**
 * Tree nodes, cached by (repo, id), decoded and as Oxen's blobs (reassembled from chunks once): a
 * download sends the blobs of the nodes it walks, and a decoded node's payloads are views of those
 * bytes anyway, so keeping both costs nothing and reads each node once. The chunk ids of a cached
 * node's stored form tell a commit rewriting it which chunks are stored already. A node id names one record for good, so a cached node
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
    return {
      // A hit takes no arrays, Set or second key: a small GET reads four nodes this way (issue 15).
      getNode: async (id) => this.entries.get(`${repoId}:${id}`)?.node ?? (await nodes([id]))[0],
      getNodes: nodes,
      storedChunks: (id) => this.entries.get(`${repoId}:${id}`)?.chunks,
      // Index nodes (name-index.ts) are read a few per page and are not kept: their bytes are what a page decodes.
      readRows: (ids) => this.meta.getNodes(repoId, ids),
    };
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
    const { stored, chunk } = await readStored(this.meta, repoId, misses);
    const read = new Map<string, CachedNode>();
    for (const [id, bytes] of stored) {
      const blobs = storedBlobs(bytes, chunk);
      const entry = { node: decodeRecord(id, blobs.node, blobs.children), blobs, chunks: storedChunkIds(bytes) };
      // Weighed by what it costs in memory, not on disk: the blobs plus the decoded entries
      // (strings, objects), about twice their size again (measured under the load benchmark).
      this.entries.set(`${repoId}:${id}`, entry, (blobs.node.length + blobs.children.length) * DECODED_COST_FACTOR);
      read.set(id, entry);
    }
    return found.map((entry, i) => entry ?? read.get(ids[i]) ?? null);
  }
}
