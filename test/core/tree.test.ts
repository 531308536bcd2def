import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyChanges,
  bucketCount,
  bucketOf,
  decodeNode,
  EMPTY_DIR,
  encodeNode,
  findChild,
  listDir,
  lookup,
  nodeId,
  PathConflict,
  sameEntry,
  walkFiles,
  type ApplyResult,
  type ChangeSet,
  type DirNode,
  type Entry,
  type FileLeaf,
  type NodeSource,
  type TreeNode,
  type VNode,
} from '../../src/core/tree.js';
import { computeCommitId, type CommitContent } from '../../src/core/commit.js';
import { hashBuffer } from '../../src/core/hash.js';
import { BadRequest } from '../../src/core/errors.js';

// ---- helpers --------------------------------------------------------------------------------

/** In-memory node store; counts reads so tests can assert how much of the tree a change touched. */
class MemSource implements NodeSource {
  readonly nodes = new Map<string, Uint8Array>();
  reads = 0;
  readIds: string[] = [];

  async getNode(id: string): Promise<TreeNode> {
    this.reads++;
    this.readIds.push(id);
    const bytes = this.nodes.get(id);
    if (!bytes) throw new Error(`MemSource: missing node ${String(id)}`);
    return decodeNode(bytes);
  }

  resetReads(): void {
    this.reads = 0;
    this.readIds = [];
  }

  /** applyChanges, then store the nodes it produced (what a real commit would land). */
  async apply(rootId: string | null, changes: ChangeSet | Array<[string, FileLeaf | null]>, bucketSize?: number): Promise<ApplyResult> {
    const set = changes instanceof Map ? changes : new Map(changes);
    const result = await applyChanges(this, rootId, set, bucketSize);
    for (const [id, bytes] of result.nodes) this.nodes.set(id, bytes);
    return result;
  }
}

function leaf(content: string): FileLeaf {
  return { hash: hashBuffer(content), size: Buffer.byteLength(content) };
}

function changes(entries: Record<string, string | null>): ChangeSet {
  const out: ChangeSet = new Map();
  for (const [path, content] of Object.entries(entries)) out.set(path, content === null ? null : leaf(content));
  return out;
}

async function collect(source: NodeSource, rootId: string): Promise<Array<{ path: string; hash: string; size: number }>> {
  const out = [];
  for await (const f of walkFiles(source, rootId)) out.push(f);
  return out;
}

/** Compares paths as git/our tree orders them: segment by segment. */
function comparePaths(a: string, b: string): number {
  const as = a.split('/');
  const bs = b.split('/');
  for (let i = 0; i < Math.min(as.length, bs.length); i++) {
    if (as[i] !== bs[i]) return as[i] < bs[i] ? -1 : 1;
  }
  return as.length - bs.length;
}

function decodedNodes(result: ApplyResult): Array<{ id: string; node: TreeNode }> {
  return [...result.nodes].map(([id, bytes]) => ({ id, node: decodeNode(bytes) }));
}

/**
 * Recursively checks every directory's totals against its contents and every dir entry's
 * cached size/files against the child node; returns the recomputed totals.
 */
async function checkTotals(source: MemSource, dirId: string, path = ''): Promise<{ size: number; files: number }> {
  const dir = (await source.getNode(dirId)) as DirNode;
  assert.equal(dir.kind, 'dir');
  const entries = await listDir(source, dirId);
  let size = 0;
  let files = 0;
  for (const e of entries) {
    if (e.kind === 'file') {
      size += e.size;
      files += 1;
    } else {
      const sub = await checkTotals(source, e.id, path ? `${path}/${e.name}` : e.name);
      assert.equal(e.size, sub.size, `entry size of ${path}/${e.name}`);
      assert.equal(e.files, sub.files, `entry files of ${path}/${e.name}`);
      assert.ok(sub.files > 0, `empty directory ${path}/${e.name} left in tree`);
      size += sub.size;
      files += sub.files;
    }
  }
  assert.equal(dir.entries, entries.length, `entries of '${path}'`);
  assert.equal(dir.size, size, `size of '${path}'`);
  assert.equal(dir.files, files, `files of '${path}'`);
  if (dir.entries === 0) assert.deepEqual(dir.buckets, [], `empty dir '${path}' must have no buckets`);
  return { size, files };
}

/** Checks the whole tree against an expected path → content model. */
async function assertTreeMatches(source: MemSource, rootId: string, model: Map<string, string>): Promise<void> {
  const files = await collect(source, rootId);
  const expected = [...model.entries()]
    .sort(([a], [b]) => comparePaths(a, b))
    .map(([path, content]) => ({ path, ...leaf(content) }));
  assert.deepEqual(files, expected);
  const totals = await checkTotals(source, rootId);
  assert.equal(totals.files, model.size);
}

/** Small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], rand: () => number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const EMPTY_ID = nodeId(encodeNode(EMPTY_DIR));

function assertPathConflict(err: unknown): boolean {
  return err instanceof PathConflict && err instanceof BadRequest && err.httpStatus === 400 && err.code === 'bad_request';
}

// ---- tests ----------------------------------------------------------------------------------

describe('encoding and node ids', () => {
  test('encode/decode round-trips dir and vnode nodes', () => {
    const dir: DirNode = { kind: 'dir', entries: 3, size: 1234, files: 7, buckets: ['abc', null, 'def', '0'] };
    const vnode: VNode = {
      kind: 'vnode',
      entries: [
        { kind: 'dir', name: 'd', id: 'f00', size: 10, files: 2 },
        { kind: 'file', name: 'f', hash: 'abc', size: 3 },
        { kind: 'file', name: 'ü "quoted"\n', hash: '1', size: 0 },
      ],
    };
    for (const node of [dir, vnode, EMPTY_DIR, { kind: 'vnode', entries: [] } as VNode]) {
      const bytes = encodeNode(node);
      assert.deepEqual(decodeNode(bytes), node);
      assert.deepEqual(Buffer.from(encodeNode(decodeNode(bytes))), Buffer.from(bytes));
    }
  });

  test('decodeNode accepts a view into a larger buffer', () => {
    const bytes = encodeNode(EMPTY_DIR);
    const backing = Buffer.concat([Buffer.from('garbage'), bytes, Buffer.from('trailer')]);
    const view = backing.subarray(7, 7 + bytes.length);
    assert.deepEqual(decodeNode(view), EMPTY_DIR);
  });

  test('decodeNode rejects unknown node types', () => {
    assert.throws(() => decodeNode(Buffer.from('["blob",1]')), /Unknown tree node type/);
  });

  test('every node written by applyChanges is addressed by the hash of its bytes', async () => {
    const source = new MemSource();
    const files: Record<string, string> = {};
    for (let i = 0; i < 60; i++) files[`d${i % 5}/sub${i % 3}/f${i}.txt`] = `content ${i}`;
    for (let i = 0; i < 10; i++) files[`top${i}`] = `top ${i}`;
    const r1 = await source.apply(null, changes(files), 4);
    const r2 = await source.apply(r1.rootId, changes({ 'd1/sub0/f1.txt': 'changed', top3: null, 'new/x': 'x' }), 4);
    for (const r of [r1, r2]) {
      assert.ok(r.nodes.size > 0);
      assert.ok(r.nodes.has(r.rootId));
      assert.deepEqual(decodeNode(r.nodes.get(r.rootId)!), r.root);
      for (const [id, bytes] of r.nodes) {
        assert.equal(nodeId(bytes), id);
        const decoded = decodeNode(bytes);
        assert.deepEqual(Buffer.from(encodeNode(decoded)), Buffer.from(bytes));
        assert.deepEqual(decodeNode(encodeNode(decoded)), decoded);
      }
    }
  });

  test('vnode entries are stored sorted by name', async () => {
    const source = new MemSource();
    const r = await source.apply(null, changes({ c: '1', a: '2', 'b/x': '3', B: '4', 'a.txt': '5' }));
    for (const { node } of decodedNodes(r)) {
      if (node.kind !== 'vnode') continue;
      const names = node.entries.map((e) => e.name);
      assert.deepEqual(names, names.slice().sort());
    }
  });
});

describe('bucket helpers', () => {
  test('bucketCount is the smallest power of two that fits', () => {
    assert.equal(bucketCount(0, 16), 0);
    assert.equal(bucketCount(1, 16), 1);
    assert.equal(bucketCount(16, 16), 1);
    assert.equal(bucketCount(17, 16), 2);
    assert.equal(bucketCount(32, 16), 2);
    assert.equal(bucketCount(33, 16), 4);
    assert.equal(bucketCount(1000, 16), 64);
    assert.equal(bucketCount(1024, 16), 64);
    assert.equal(bucketCount(1025, 16), 128);
  });

  test('bucketOf is stable and in range', () => {
    for (const n of [0, 1, 2, 8, 64]) {
      for (let i = 0; i < 100; i++) {
        const b = bucketOf(`name${i}`, n);
        assert.equal(b, bucketOf(`name${i}`, n));
        assert.ok(b >= 0 && b < Math.max(n, 1));
      }
    }
  });
});

describe('reading', () => {
  test('lookup, listDir and walkFiles over nested adds', async () => {
    const source = new MemSource();
    const model = new Map<string, string>([
      ['README.md', '# hi'],
      ['a', 'file named a'],
      ['a.txt', 'file a.txt'],
      ['data/train/0.png', 'zero'],
      ['data/train/1.png', 'one!'],
      ['data/test/0.png', 'test zero'],
      ['data/labels.csv', 'id,label\n0,cat\n'],
      ['deep/er/and/deeper/file.bin', ''],
      ['Zed', 'capital'],
    ]);
    const r = await source.apply(null, [...model].map(([p, c]) => [p, leaf(c)] as [string, FileLeaf]));

    for (const [path, content] of model) {
      const e = await lookup(source, r.rootId, path);
      assert.ok(e, path);
      assert.equal(e.kind, 'file');
      assert.equal(e.name, path.split('/').pop());
      if (e.kind === 'file') {
        assert.equal(e.hash, hashBuffer(content));
        assert.equal(e.size, Buffer.byteLength(content));
      }
    }

    const rootEntry = await lookup(source, r.rootId, '');
    assert.deepEqual(rootEntry, { kind: 'dir', name: '', id: r.rootId, size: r.root.size, files: 9 });

    const data = await lookup(source, r.rootId, 'data');
    assert.ok(data && data.kind === 'dir');
    assert.equal(data.files, 4);
    assert.equal(data.size, ['zero', 'one!', 'test zero', 'id,label\n0,cat\n'].reduce((s, c) => s + c.length, 0));

    assert.equal(await lookup(source, r.rootId, 'missing'), null);
    assert.equal(await lookup(source, r.rootId, 'data/missing'), null);
    assert.equal(await lookup(source, r.rootId, 'data/train/0.png/inside'), null, 'path through a file');
    assert.equal(await lookup(source, r.rootId, 'a/b'), null, 'path through a file');
    assert.equal(await lookup(source, r.rootId, 'nope/deeper'), null);

    const rootList = await listDir(source, r.rootId);
    assert.deepEqual(
      rootList.map((e) => [e.name, e.kind]),
      [
        ['README.md', 'file'],
        ['Zed', 'file'],
        ['a', 'file'],
        ['a.txt', 'file'],
        ['data', 'dir'],
        ['deep', 'dir'],
      ],
    );
    assert.deepEqual(
      (await listDir(source, data.id)).map((e) => e.name),
      ['labels.csv', 'test', 'train'],
    );

    await assertTreeMatches(source, r.rootId, model);
  });

  test('findChild reads only the one bucket holding the name', async () => {
    const source = new MemSource();
    const files: Record<string, string> = {};
    for (let i = 0; i < 200; i++) files[`f${i}`] = `c${i}`;
    const r = await source.apply(null, changes(files), 8);
    assert.ok(r.root.buckets.length > 1);
    source.resetReads();
    const e = await findChild(source, r.root, 'f123');
    assert.equal(source.reads, 1);
    assert.deepEqual(e, { kind: 'file', name: 'f123', ...leaf('c123') });
    assert.equal(await findChild(source, r.root, 'nope'), undefined);
    assert.equal(await findChild(source, EMPTY_DIR, 'f1'), undefined);
  });

  test('listDir over many buckets is sorted; walkFiles yields every file', async () => {
    const source = new MemSource();
    const model = new Map<string, string>();
    for (let i = 0; i < 300; i++) model.set(`flat/${String(i).padStart(4, '0')}-${(i * 7919) % 1000}`, `v${i}`);
    for (let i = 0; i < 50; i++) model.set(`flat/sub${i % 7}/x${i}`, `w${i}`);
    const r = await source.apply(null, [...model].map(([p, c]) => [p, leaf(c)] as [string, FileLeaf]), 16);
    const flat = await lookup(source, r.rootId, 'flat');
    assert.ok(flat && flat.kind === 'dir');
    const list = await listDir(source, flat.id);
    assert.equal(list.length, 307);
    const names = list.map((e) => e.name);
    assert.deepEqual(names, names.slice().sort());
    await assertTreeMatches(source, r.rootId, model);
  });

  test('an empty change set on an empty tree yields the empty directory', async () => {
    const source = new MemSource();
    const r = await source.apply(null, new Map());
    assert.equal(r.rootId, EMPTY_ID);
    assert.deepEqual(r.root, EMPTY_DIR);
    assert.deepEqual(await listDir(source, r.rootId), []);
    assert.deepEqual(await collect(source, r.rootId), []);
    assert.equal(await lookup(source, r.rootId, 'x'), null);
  });
});

describe('determinism', () => {
  for (const bucketSize of [undefined, 4, 16]) {
    test(`same file set, different orders and batches → same root (bucketSize ${bucketSize ?? 'default'})`, async () => {
      const rand = prng(42 + (bucketSize ?? 0));
      const model = new Map<string, string>();
      for (let i = 0; i < 400; i++) {
        const depth = i % 4;
        const parts = Array.from({ length: depth }, (_, d) => `d${(i >> (d + 1)) % 3}`);
        model.set([...parts, `file-${i}`].join('/'), `content ${i}`);
      }
      const paths = [...model.keys()];

      // A: everything at once.
      const a = new MemSource();
      const ra = await a.apply(null, changes(Object.fromEntries(model)), bucketSize);

      // B: shuffled, in random-size batches.
      const b = new MemSource();
      let rootB: string | null = null;
      const shuffled = shuffle(paths, rand);
      for (let i = 0; i < shuffled.length; ) {
        const n = 1 + Math.floor(rand() * 60);
        const batch = shuffled.slice(i, i + n);
        i += n;
        rootB = (await b.apply(rootB, changes(Object.fromEntries(batch.map((p) => [p, model.get(p)!]))), bucketSize)).rootId;
      }

      // C: one by one in reverse, with detours: wrong contents first, extra files later deleted.
      const c = new MemSource();
      let rootC: string | null = null;
      for (const p of paths.slice().reverse()) {
        rootC = (await c.apply(rootC, changes({ [p]: 'wrong', [`extra/${p}`]: 'tmp' }), bucketSize)).rootId;
      }
      rootC = (await c.apply(rootC, changes({ extra: null }), bucketSize)).rootId;
      rootC = (await c.apply(rootC, changes(Object.fromEntries(model)), bucketSize)).rootId;

      assert.equal(rootB, ra.rootId);
      assert.equal(rootC, ra.rootId);
      await assertTreeMatches(b, rootB!, model);
      await assertTreeMatches(c, rootC!, model);
    });
  }

  test('growing past and shrinking back below a bucket boundary is history-independent', async () => {
    const bucketSize = 16;
    const source = new MemSource();
    const files = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`dir/f${i}`, `c${i}`]));

    const direct64 = await source.apply(null, changes(files(64)), bucketSize);
    const grown = await source.apply(direct64.rootId, changes({ 'dir/f64': 'c64', 'dir/f65': 'c65' }), bucketSize);
    const dirGrown = (await lookup(source, grown.rootId, 'dir'))!;
    assert.equal(dirGrown.kind, 'dir');
    assert.equal(((await source.getNode((dirGrown as { id: string }).id)) as DirNode).buckets.length, 8);
    const direct66 = await source.apply(null, changes(files(66)), bucketSize);
    assert.equal(grown.rootId, direct66.rootId);

    const shrunk = await source.apply(grown.rootId, changes({ 'dir/f64': null, 'dir/f65': null }), bucketSize);
    assert.equal(shrunk.rootId, direct64.rootId);

    const model = new Map(Object.entries(files(66)));
    await assertTreeMatches(source, grown.rootId, model);
  });

  test('the bucket size is part of the tree shape', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 40; i++) files[`f${i}`] = `${i}`;
    const a = await new MemSource().apply(null, changes(files), 8);
    const b = await new MemSource().apply(null, changes(files), 16);
    const c = await new MemSource().apply(null, changes(files), 64);
    assert.notEqual(a.rootId, b.rootId);
    assert.notEqual(b.rootId, c.rootId);
    assert.equal(c.root.buckets.length, 1);
  });
});

describe('structural sharing', () => {
  test('changing a file in a/ leaves sibling b/ untouched and unwritten', async () => {
    const source = new MemSource();
    const r1 = await source.apply(null, changes({ 'a/x': '1', 'a/y': '2', 'b/p': '3', 'b/q/r': '4', 'b/q/s': '5', top: '6' }));
    const b1 = (await lookup(source, r1.rootId, 'b'))!;
    const bq1 = (await lookup(source, r1.rootId, 'b/q'))!;
    assert.equal(b1.kind, 'dir');
    assert.equal(bq1.kind, 'dir');
    const bIds = new Set<string>();
    for (const id of [(b1 as { id: string }).id, (bq1 as { id: string }).id]) {
      bIds.add(id);
      for (const bucket of ((await source.getNode(id)) as DirNode).buckets) if (bucket) bIds.add(bucket);
    }

    source.resetReads();
    const r2 = await source.apply(r1.rootId, changes({ 'a/x': 'changed' }));
    assert.notEqual(r2.rootId, r1.rootId);
    for (const id of source.readIds) assert.ok(!bIds.has(id), 'b/ must not even be read');
    for (const id of r2.nodes.keys()) assert.ok(!bIds.has(id), 'no node of b/ rewritten');
    for (const { node } of decodedNodes(r2)) {
      if (node.kind === 'vnode') for (const e of node.entries) assert.ok(!['p', 'q', 'r', 's'].includes(e.name));
    }
    // a's vnode, a's dir node, root's vnode, root dir node.
    assert.equal(r2.nodes.size, 4);

    const b2 = (await lookup(source, r2.rootId, 'b'))!;
    const bq2 = (await lookup(source, r2.rootId, 'b/q'))!;
    assert.deepEqual(b2, b1);
    assert.deepEqual(bq2, bq1);
    const a1 = (await lookup(source, r1.rootId, 'a'))! as Entry & { id: string };
    const a2 = (await lookup(source, r2.rootId, 'a'))! as Entry & { id: string };
    assert.notEqual(a2.id, a1.id);
    assert.equal((await lookup(source, r1.rootId, 'a/x') as { hash: string }).hash, hashBuffer('1'), 'old root still readable');
  });

  test('re-applying an identical file is a no-op on the root id', async () => {
    const source = new MemSource();
    const r1 = await source.apply(null, changes({ 'a/x': '1', 'b/y': '2' }));
    const r2 = await source.apply(r1.rootId, changes({ 'a/x': '1' }));
    assert.equal(r2.rootId, r1.rootId);
  });
});

describe('bucketing', () => {
  const bucketSize = 16;
  const N = 1000;
  const flatFiles = (prefix: string) => {
    const out: Record<string, string> = {};
    for (let i = 0; i < N; i++) out[`${prefix}file-${i}.dat`] = `payload ${i}`;
    return out;
  };

  async function checkBuckets(source: MemSource, dir: DirNode, expectedEntries: number) {
    const n = dir.buckets.length;
    assert.ok(n > 1, 'more than one bucket');
    assert.equal(n & (n - 1), 0, 'bucket count is a power of two');
    assert.equal(n, bucketCount(expectedEntries, bucketSize));
    let total = 0;
    for (let i = 0; i < n; i++) {
      const id = dir.buckets[i];
      if (id === null) continue;
      const vnode = (await source.getNode(id)) as VNode;
      assert.equal(vnode.kind, 'vnode');
      assert.ok(vnode.entries.length > 0, 'no empty vnodes are stored');
      assert.ok(vnode.entries.length <= 2 * bucketSize, `bucket ${i} holds ${vnode.entries.length}`);
      for (const e of vnode.entries) assert.equal(bucketOf(e.name, n), i, `${e.name} in the wrong bucket`);
      total += vnode.entries.length;
    }
    assert.equal(total, expectedEntries);
  }

  test('a flat directory at the root: one change writes one vnode and the dir node', async () => {
    const source = new MemSource();
    const r1 = await source.apply(null, changes(flatFiles('')), bucketSize);
    assert.equal(r1.root.entries, N);
    assert.equal(r1.root.files, N);
    await checkBuckets(source, r1.root, N);

    source.resetReads();
    const r2 = await source.apply(r1.rootId, changes({ 'file-500.dat': 'new payload' }), bucketSize);
    const kinds = decodedNodes(r2).map(({ node }) => node.kind).sort();
    assert.deepEqual(kinds, ['dir', 'vnode']);
    assert.equal(r2.nodes.size, 2);
    assert.equal(source.reads, 2, `reads: root + one bucket, got ${source.reads}`);
    assert.equal(source.readIds[0], r1.rootId);
    assert.equal(source.readIds[1], r1.root.buckets[bucketOf('file-500.dat', r1.root.buckets.length)]);
    // Only that one bucket id changed.
    const changed = r2.root.buckets.filter((id, i) => id !== r1.root.buckets[i]);
    assert.equal(changed.length, 1);
    assert.ok(r2.nodes.has(changed[0]!));

    const e = await lookup(source, r2.rootId, 'file-500.dat');
    assert.deepEqual(e, { kind: 'file', name: 'file-500.dat', ...leaf('new payload') });
    assert.equal(r2.root.size, r1.root.size - 'payload 500'.length + 'new payload'.length);

    // Adding and deleting a name without crossing a bucket boundary is equally local.
    source.resetReads();
    const r3 = await source.apply(r2.rootId, changes({ 'file-1000.dat': 'added' }), bucketSize);
    assert.equal(r3.root.buckets.length, r1.root.buckets.length);
    assert.equal(r3.nodes.size, 2);
    assert.equal(source.reads, 2);
    source.resetReads();
    const r4 = await source.apply(r3.rootId, changes({ 'file-3.dat': null }), bucketSize);
    assert.equal(r4.nodes.size <= 2, true);
    assert.equal(source.reads, 2);
    assert.equal(r4.root.entries, N);
    await checkBuckets(source, r4.root, N);
  });

  test('a big nested directory: one change writes exactly 4 nodes', async () => {
    const source = new MemSource();
    const r1 = await source.apply(null, changes({ ...flatFiles('big/'), 'small/x': 'x', 'root.txt': 'r' }), bucketSize);
    const big1 = (await lookup(source, r1.rootId, 'big')) as Entry & { id: string };
    assert.equal(big1.kind, 'dir');
    assert.equal(big1.files, N);
    const bigNode1 = (await source.getNode(big1.id)) as DirNode;
    await checkBuckets(source, bigNode1, N);
    assert.equal(r1.root.buckets.length, 1);

    source.resetReads();
    const r2 = await source.apply(r1.rootId, changes({ 'big/file-123.dat': 'changed' }), bucketSize);
    assert.equal(r2.nodes.size, 4);
    const decoded = decodedNodes(r2);
    const dirs = decoded.filter(({ node }) => node.kind === 'dir');
    const vnodes = decoded.filter(({ node }) => node.kind === 'vnode');
    assert.equal(dirs.length, 2);
    assert.equal(vnodes.length, 2);
    const big2 = (await lookup(source, r2.rootId, 'big')) as Entry & { id: string };
    assert.ok(r2.nodes.has(big2.id), "big's dir node");
    assert.ok(r2.nodes.has(r2.rootId), 'root dir node');
    assert.ok(r2.nodes.has(r2.root.buckets[0]!), "root's vnode");
    const bigNode2 = (await source.getNode(big2.id)) as DirNode;
    const idx = bucketOf('file-123.dat', bigNode2.buckets.length);
    assert.ok(r2.nodes.has(bigNode2.buckets[idx]!), "big's changed vnode");
    assert.equal(bigNode2.buckets.filter((id, i) => id !== bigNode1.buckets[i]).length, 1);

    // Reads: root, root's bucket, big's dir node, one bucket of big.
    const readsDuringApply = source.readIds.slice(0, 4);
    assert.deepEqual(readsDuringApply, [r1.rootId, r1.root.buckets[0], big1.id, bigNode1.buckets[idx]]);

    const small1 = await lookup(source, r1.rootId, 'small');
    const small2 = await lookup(source, r2.rootId, 'small');
    assert.deepEqual(small2, small1);
    await checkTotals(source, r2.rootId);
  });

  test('the bucket count follows the entry count in both directions', async () => {
    const source = new MemSource();
    const r1 = await source.apply(null, changes(flatFiles('')), bucketSize);
    assert.equal(r1.root.buckets.length, 64);
    const more: Record<string, string> = {};
    for (let i = N; i < 1100; i++) more[`file-${i}.dat`] = `payload ${i}`;
    const r2 = await source.apply(r1.rootId, changes(more), bucketSize);
    assert.equal(r2.root.buckets.length, 128);
    await checkBuckets(source, r2.root, 1100);
    const model = new Map(Object.entries({ ...flatFiles(''), ...more }));
    await assertTreeMatches(source, r2.rootId, model);

    const less: Record<string, null> = {};
    for (let i = 0; i < 1090; i++) less[`file-${i}.dat`] = null;
    const r3 = await source.apply(r2.rootId, changes(less), bucketSize);
    assert.equal(r3.root.buckets.length, 1);
    assert.deepEqual(
      (await listDir(source, r3.rootId)).map((e) => e.name),
      Array.from({ length: 10 }, (_, i) => `file-${1090 + i}.dat`).sort(),
    );
    await checkTotals(source, r3.rootId);
  });
});

describe('deletes', () => {
  test('removing a file, the last file of a directory, and a whole directory', async () => {
    const source = new MemSource();
    const model = new Map<string, string>([
      ['keep.txt', 'keep'],
      ['a/one', '1'],
      ['a/two', '22'],
      ['a/b/c/only', 'deep'],
      ['x/y/z/1', 'xyz1'],
      ['x/y/z/2', 'xyz22'],
      ['x/y/w', 'w'],
      ['x/v', 'vv'],
    ]);
    let r = await source.apply(null, [...model].map(([p, c]) => [p, leaf(c)] as [string, FileLeaf]));
    await assertTreeMatches(source, r.rootId, model);

    // Plain file removal.
    r = await source.apply(r.rootId, changes({ 'a/one': null }));
    model.delete('a/one');
    assert.equal(await lookup(source, r.rootId, 'a/one'), null);
    await assertTreeMatches(source, r.rootId, model);

    // Removing the last file removes the emptied directories up the chain (a/b/c and a/b), but not a/.
    r = await source.apply(r.rootId, changes({ 'a/b/c/only': null }));
    model.delete('a/b/c/only');
    assert.equal(await lookup(source, r.rootId, 'a/b/c'), null);
    assert.equal(await lookup(source, r.rootId, 'a/b'), null);
    assert.ok(await lookup(source, r.rootId, 'a'));
    assert.deepEqual((await listDir(source, (await lookup(source, r.rootId, 'a') as { id: string }).id)).map((e) => e.name), ['two']);
    await assertTreeMatches(source, r.rootId, model);

    // Removing a directory path removes its whole subtree.
    r = await source.apply(r.rootId, changes({ 'x/y': null }));
    for (const p of ['x/y/z/1', 'x/y/z/2', 'x/y/w']) model.delete(p);
    assert.equal(await lookup(source, r.rootId, 'x/y'), null);
    assert.equal(await lookup(source, r.rootId, 'x/y/z/1'), null);
    assert.ok(await lookup(source, r.rootId, 'x/v'));
    await assertTreeMatches(source, r.rootId, model);

    // Removing everything leaves the canonical empty root.
    r = await source.apply(r.rootId, changes({ x: null, a: null, 'keep.txt': null }));
    assert.equal(r.rootId, EMPTY_ID);
    assert.deepEqual(r.root, EMPTY_DIR);
  });

  test('the tree after deletes equals the tree built without those files', async () => {
    const source = new MemSource();
    const all: Record<string, string> = {};
    for (let i = 0; i < 120; i++) all[`d${i % 4}/e${i % 3}/f${i}`] = `c${i}`;
    const full = await source.apply(null, changes(all), 4);
    const removed: Record<string, null> = {};
    const kept: Record<string, string> = {};
    for (const [p, c] of Object.entries(all)) {
      if (p.startsWith('d1/') || p.endsWith('7')) removed[p] = null;
      else kept[p] = c;
    }
    const afterDelete = await source.apply(full.rootId, changes(removed), 4);
    const direct = await source.apply(null, changes(kept), 4);
    assert.equal(afterDelete.rootId, direct.rootId);
    assert.equal(await lookup(source, afterDelete.rootId, 'd1'), null);
  });

  test('removing a path that does not exist changes nothing', async () => {
    const source = new MemSource();
    const r1 = await source.apply(null, changes({ 'a/x': '1', 'b/y': '2' }));
    for (const missing of ['nope', 'a/nope', 'nope/deeper', 'a/deeper/still']) {
      const r = await source.apply(r1.rootId, changes({ [missing]: null }));
      assert.equal(r.rootId, r1.rootId, missing);
    }
    const fromEmpty = await source.apply(null, changes({ nope: null, 'no/pe': null }));
    assert.equal(fromEmpty.rootId, EMPTY_ID);
    assert.deepEqual(fromEmpty.root, EMPTY_DIR);
  });

  test('totals stay right through a random sequence of adds, modifies and deletes', async () => {
    const rand = prng(7);
    const source = new MemSource();
    const model = new Map<string, string>();
    let rootId: string | null = null;
    for (let step = 0; step < 40; step++) {
      const batch: Record<string, string | null> = {};
      const existing = [...model.keys()];
      for (let k = 0; k < 1 + Math.floor(rand() * 12); k++) {
        const roll = rand();
        if (roll < 0.5 || existing.length === 0) {
          const path = `p${Math.floor(rand() * 3)}/q${Math.floor(rand() * 3)}/f${Math.floor(rand() * 40)}`;
          if (batch[path] === undefined) batch[path] = 'x'.repeat(Math.floor(rand() * 50));
        } else if (roll < 0.75) {
          const path = existing[Math.floor(rand() * existing.length)];
          if (batch[path] === undefined) batch[path] = `modified ${step} ${'y'.repeat(Math.floor(rand() * 30))}`;
        } else {
          const path = existing[Math.floor(rand() * existing.length)];
          if (batch[path] === undefined) batch[path] = null;
        }
      }
      const r: ApplyResult = await source.apply(rootId, changes(batch), 4);
      rootId = r.rootId;
      for (const [p, c] of Object.entries(batch)) {
        if (c === null) model.delete(p);
        else model.set(p, c);
      }
      await assertTreeMatches(source, rootId, model);
      assert.equal(r.root.files, model.size);
      assert.equal(r.root.size, [...model.values()].reduce((s, c) => s + c.length, 0));
    }
  });
});

describe('conflicts', () => {
  test("adding 'a/b' when 'a' is a file throws PathConflict (400)", async () => {
    const source = new MemSource();
    const r = await source.apply(null, changes({ a: 'file', 'c/d': 'file' }));
    await assert.rejects(source.apply(r.rootId, changes({ 'a/b': 'x' })), assertPathConflict);
    await assert.rejects(source.apply(r.rootId, changes({ 'a/b/c': 'x' })), assertPathConflict);
    await assert.rejects(source.apply(r.rootId, changes({ 'c/d/e': 'x' })), assertPathConflict);
    // Deleting below a file is a conflict too: 'a' is not a directory.
    await assert.rejects(source.apply(r.rootId, changes({ 'a/b': null })), assertPathConflict);
  });

  test('adding a file where a directory is throws PathConflict (400)', async () => {
    const source = new MemSource();
    const r = await source.apply(null, changes({ 'dir/f': 'x', 'p/q/r': 'y' }));
    await assert.rejects(source.apply(r.rootId, changes({ dir: 'now a file' })), assertPathConflict);
    await assert.rejects(source.apply(r.rootId, changes({ 'p/q': 'now a file' })), assertPathConflict);
  });

  test("a change set with both 'x' (file) and 'x/y' throws, in either order", async () => {
    const source = new MemSource();
    const orders: Array<Array<[string, FileLeaf]>> = [
      [['x', leaf('1')], ['x/y', leaf('2')]],
      [['x/y', leaf('2')], ['x', leaf('1')]],
      [['x/y/z', leaf('2')], ['x', leaf('1')]],
      [['x', leaf('1')], ['x/y/z', leaf('2')]],
      [['a/x', leaf('1')], ['a/x/y', leaf('2')]],
    ];
    for (const order of orders) {
      await assert.rejects(source.apply(null, order), assertPathConflict, order.map(([p]) => p).join(' + '));
    }
  });

  test('replacing the root is refused', async () => {
    const source = new MemSource();
    await assert.rejects(source.apply(null, changes({ '': 'x' })), assertPathConflict);
  });

  test('a delete plus nested adds replaces the path wholesale', async () => {
    const source = new MemSource();
    const r1 = await source.apply(null, changes({ 'd/old1': '1', 'd/old2': '2', f: 'file' }));

    // Directory 'd' removed and re-created with new content.
    const r2 = await source.apply(r1.rootId, changes({ d: null, 'd/new': 'n' }));
    await assertTreeMatches(source, r2.rootId, new Map([['d/new', 'n'], ['f', 'file']]));

    // File 'f' replaced by a directory 'f/'.
    const r3 = await source.apply(r2.rootId, changes({ f: null, 'f/inner': 'i' }));
    await assertTreeMatches(source, r3.rootId, new Map([['d/new', 'n'], ['f/inner', 'i']]));

    // Same outcome as building it directly.
    const direct = await source.apply(null, changes({ 'd/new': 'n', 'f/inner': 'i' }));
    assert.equal(r3.rootId, direct.rootId);
  });

  test('a failed apply leaves the previous root intact', async () => {
    const source = new MemSource();
    const r = await source.apply(null, changes({ a: '1', 'b/c': '2' }));
    const before = new Map(source.nodes);
    await assert.rejects(source.apply(r.rootId, changes({ 'a/b': 'x', 'b/d': 'y' })), PathConflict);
    assert.deepEqual(source.nodes, before);
    await assertTreeMatches(source, r.rootId, new Map([['a', '1'], ['b/c', '2']]));
  });
});

describe('sameEntry', () => {
  test('compares files by hash and directories by id', () => {
    const f = (name: string, hash: string, size = 1): Entry => ({ kind: 'file', name, hash, size });
    const d = (name: string, id: string, size = 1, files = 1): Entry => ({ kind: 'dir', name, id, size, files });
    assert.ok(sameEntry(null, null));
    assert.ok(!sameEntry(null, f('a', '1')));
    assert.ok(!sameEntry(f('a', '1'), null));
    assert.ok(sameEntry(f('a', '1'), f('a', '1')));
    assert.ok(!sameEntry(f('a', '1'), f('a', '2')));
    assert.ok(sameEntry(d('a', 'x'), d('a', 'x', 5, 5)));
    assert.ok(!sameEntry(d('a', 'x'), d('a', 'y')));
    assert.ok(!sameEntry(f('a', 'x'), d('a', 'x')));
  });
});

describe('computeCommitId', () => {
  const base: CommitContent = {
    parentIds: ['abc', 'def'],
    message: 'Add data',
    author: 'Ada',
    email: 'ada@example.com',
    timestamp: '2024-01-02T03:04:05.000Z',
    rootId: 'f00d',
  };

  test('is deterministic and canonical', () => {
    const id = computeCommitId(base);
    assert.equal(computeCommitId({ ...base, parentIds: [...base.parentIds] }), id);
    assert.match(id, /^[1-9a-f][0-9a-f]{0,31}$/);
  });

  test('changes when any field changes', () => {
    const id = computeCommitId(base);
    const variants: Array<[string, CommitContent]> = [
      ['no parents', { ...base, parentIds: [] }],
      ['one parent', { ...base, parentIds: ['abc'] }],
      ['parent order', { ...base, parentIds: ['def', 'abc'] }],
      ['parent changed', { ...base, parentIds: ['abc', 'dee'] }],
      ['parents merged', { ...base, parentIds: ['abcdef'] }],
      ['message', { ...base, message: 'Add data!' }],
      ['empty message', { ...base, message: '' }],
      ['author', { ...base, author: 'Bob' }],
      ['email', { ...base, email: 'ada@example.org' }],
      ['timestamp', { ...base, timestamp: '2024-01-02T03:04:05.001Z' }],
      ['rootId', { ...base, rootId: 'f00e' }],
      ['message/author boundary', { ...base, message: 'Add dataA', author: 'da' }],
    ];
    const seen = new Set([id]);
    for (const [label, content] of variants) {
      const other = computeCommitId(content);
      assert.notEqual(other, id, label);
      seen.add(other);
    }
    assert.equal(seen.size, variants.length + 1, 'all variants distinct');
  });
});
