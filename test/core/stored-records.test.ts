import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { hashBuffer } from '../../src/core/hash.js';
import { encodeNodeRecord, encodeOxenNode, NO_PARENT, type RecordChild } from '../../src/core/oxen-nodes.js';
import { frameRecord, MIN_CHUNKED_CHILDREN, MissingChunk, storedBlobs, storedChunkIds, storedRowsOfBlobs } from '../../src/core/stored-records.js';
import { applyChanges, decodeRecord, decodeStoredNode, type ApplyResult, type ChangeSet, type NodeSource, type TreeNode } from '../../src/core/tree.js';

/** Stored rows in memory, as a MetaStore keeps them; it knows the chunks each record lists, as NodeCache does. */
class RowSource implements NodeSource {
  readonly rows = new Map<string, Uint8Array>();
  private commits = 0;

  async getNode(id: string): Promise<TreeNode> {
    const bytes = this.rows.get(id);
    if (!bytes) throw new Error(`missing node ${id}`);
    return decodeStoredNode(id, bytes, (chunk) => this.rows.get(chunk));
  }

  storedChunks(id: string): string[] | undefined {
    const bytes = this.rows.get(id);
    return bytes && storedChunkIds(bytes);
  }

  async apply(rootId: string | null, changes: Record<string, string | null>, vnodeSize?: number): Promise<ApplyResult & { written: number }> {
    const set: ChangeSet = new Map(Object.entries(changes).map(([path, text]) => [path, text === null ? null : { hash: hashBuffer(text), size: text.length }]));
    const result = await applyChanges(this, rootId, set, { commitId: hashBuffer(`commit ${++this.commits}`), vnodeSize });
    let written = 0;
    for (const [id, bytes] of result.nodes) {
      if (!this.rows.has(id)) written += bytes.length;
      this.rows.set(id, bytes);
    }
    return { ...result, written };
  }
}

const files = (n: number, dir = 'big') => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${dir}/file-${i}.dat`, `payload ${i}`]));

describe('stored records: large ones in content-defined chunks', () => {
  test('every record a change writes reads back as Oxen blobs byte for byte, chunked or plain', async () => {
    const source = new RowSource();
    const r1 = await source.apply(null, { ...files(3000), 'small/x.txt': 'x' });
    const r2 = await source.apply(r1.rootId, { 'big/file-5.dat': 'changed', 'big/new.dat': 'new' });
    let chunked = 0;
    for (const r of [r1, r2]) {
      for (const [id, record] of r.records) {
        const stored = source.rows.get(id)!;
        if (storedChunkIds(stored).length > 0) chunked++;
        const blobs = storedBlobs(stored, (chunk) => source.rows.get(chunk));
        assert.deepEqual(blobs.node, record.node, `node blob of ${id}`);
        assert.deepEqual(blobs.children, record.children, `children blob of ${id}`);
      }
    }
    assert.ok(chunked >= 2, 'the big directory and its vnodes are chunked');
    // Small records stay plain (as every record before chunking): the root holds two entries.
    assert.deepEqual(source.rows.get(r1.rootId), frameRecord(r1.records.get(r1.rootId)!));
  });

  test('a one-file change in a large directory stores a few chunks, not the whole vnode and directory', async () => {
    const source = new RowSource();
    let root: string | null = null;
    for (let part = 0; part < 4; part++) {
      const batch = Object.fromEntries(Object.entries(files(20000)).slice(part * 5000, (part + 1) * 5000));
      root = (await source.apply(root, batch, 64)).rootId;
    }
    for (const change of [{ 'big/file-123.dat': 'changed' }, { 'big/added.dat': 'new' }, { 'big/file-7.dat': null }] as Array<Record<string, string | null>>) {
      const r = await source.apply(root, change, 64);
      const recordBytes = [...r.records.values()].reduce((sum, rec) => sum + rec.node.length + rec.children.length, 0);
      // As whole records: a vnode of about 40 entries and a directory of 512 vnode rows, over 40 KB.
      assert.ok(recordBytes > 40_000, `records ${recordBytes}`);
      assert.ok(r.written < 8_000, `stored ${r.written} bytes for ${JSON.stringify(change)}`);
    }
  });

  test('a missing chunk and a damaged one are refused; plain records (as stored before chunking) read as they are', async () => {
    const source = new RowSource();
    const r = await source.apply(null, files(400), 4);
    const rootVnode = (await source.getNode(r.root.vnodes[0])) as Extract<TreeNode, { kind: 'vnode' }>;
    const bigId = rootVnode.entries[0].kind === 'dir' ? rootVnode.entries[0].id : '';
    const stored = source.rows.get(bigId)!;
    const [first] = storedChunkIds(stored);
    assert.ok(first, 'the big directory is chunked');
    assert.throws(() => decodeStoredNode(bigId, stored, (id) => (id === first ? undefined : source.rows.get(id))), (err) => err instanceof MissingChunk && err.chunkId === first);
    const damaged = Buffer.from(source.rows.get(first)!);
    damaged[damaged.length - 1] ^= 1;
    assert.throws(() => decodeStoredNode(bigId, stored, (id) => (id === first ? damaged : source.rows.get(id))), /does not match its hash/);
    const record = r.records.get(bigId)!;
    assert.deepEqual(decodeStoredNode(bigId, frameRecord(record)), decodeRecord(bigId, record.node, record.children));
  });

  test("a client's record is chunked when reassembly gives its blobs back, else kept plain", () => {
    const children: RecordChild[] = Array.from({ length: MIN_CHUNKED_CHILDREN * 3 }, (_, i) => {
      const hash = hashBuffer(`blob ${i}`);
      const payload = encodeOxenNode({
        type: 'File', name: `f${String(i).padStart(3, '0')}.txt`, metadataHash: null, hash, combinedHash: hash, numBytes: i,
        lastCommitId: hashBuffer('c'), lastModifiedSeconds: 1, lastModifiedNanoseconds: 0, dataType: 'text', metadata: null,
        mimeType: 'text/plain', extension: 'txt', chunkHashes: [hash], chunkType: 'SingleFile', storageBackend: 'Disk',
      });
      return { type: 'File', hash, payload };
    });
    const id = hashBuffer('client vnode');
    const record = encodeNodeRecord(id, 'VNode', NO_PARENT, encodeOxenNode({ type: 'VNode', hash: id, numEntries: children.length }), children);
    const names = children.map((_, i) => `f${String(i).padStart(3, '0')}.txt`);
    const rows = new Map(storedRowsOfBlobs(id, record.node, record.children, names));
    assert.ok(rows.size > 2, 'head and chunks');
    assert.deepEqual(storedBlobs(rows.get(id)!, (chunk) => rows.get(chunk)), { node: record.node, children: record.children });
    // A row pointing back at another's payload: reassembly (payloads end to end) could not give these blobs back.
    const reused = Buffer.from(record.node);
    reused.writeBigUInt64LE(0n, reused.length - 33 * children.length + 33 + 17);
    assert.deepEqual(storedRowsOfBlobs(id, reused, record.children, names), [[id, frameRecord({ node: reused, children: record.children })]]);
  });
});
