import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyChanges,
  chooseVnodeCount,
  commitNodeBytes,
  DEFAULT_VNODE_SIZE,
  decodeStoredNode,
  findChild,
  frameRecord,
  listDir,
  lookup,
  PathConflict,
  sameEntry,
  unframeRecord,
  UNCOMMITTED,
  walkFiles,
  type ApplyOptions,
  type ApplyResult,
  type ChangeSet,
  type DirEntry,
  type DirNode,
  type Entry,
  type FileEntry,
  type FileLeaf,
  type NodeSource,
  type TreeNode,
  type VNode,
} from '../../src/core/tree.js';
import {
  compareNames,
  decodeNodeRecord,
  decodeOxenNode,
  encodeNodeRecord,
  encodeOxenNode,
  NO_PARENT,
  oxenVnodeIndex,
  type OxenDirNode,
  type OxenFileNode,
  type OxenVNode,
} from '../../src/core/oxen-nodes.js';
import { computeCommitId, type CommitContent } from '../../src/core/commit.js';
import { hashBuffer } from '../../src/core/hash.js';
import { BadRequest } from '../../src/core/errors.js';
import { basename, joinRepoPath } from '../../src/core/paths.js';

// ---- helpers --------------------------------------------------------------------------------

/** A commit id for tests: any 128-bit hex works, and a label keeps assertions readable. */
const commitId = (label: string) => hashBuffer(`commit ${label}`);

/**
 * In-memory node store over the stored (framed) bytes, as the real stores keep them; counts reads
 * so tests can assert how much of the tree a change touched.
 */
class MemSource implements NodeSource {
  readonly nodes = new Map<string, Uint8Array>();
  readIds: string[] = [];
  private applies = 0;

  async getNode(id: string): Promise<TreeNode> {
    this.readIds.push(id);
    const bytes = this.nodes.get(id);
    if (!bytes) throw new Error(`MemSource: missing node ${id}`);
    return decodeStoredNode(id, bytes, (chunk) => this.nodes.get(chunk));
  }

  get reads(): number {
    return this.readIds.length;
  }

  resetReads(): void {
    this.readIds = [];
  }

  /** applyChanges, then store the nodes it produced (what a real commit would land). Each call is a new commit unless told otherwise. */
  async apply(rootId: string | null, changes: ChangeSet | Record<string, string | null>, options: Partial<ApplyOptions> = {}): Promise<ApplyResult> {
    const set = changes instanceof Map ? changes : changeSet(changes);
    const result = await applyChanges(this, rootId, set, { commitId: options.commitId ?? commitId(`apply ${++this.applies}`), vnodeSize: options.vnodeSize });
    for (const [id, bytes] of result.nodes) this.nodes.set(id, bytes);
    return result;
  }

  async dir(rootId: string, path: string): Promise<DirNode> {
    if (path === '') return (await this.getNode(rootId)) as DirNode;
    const entry = await lookup(this, rootId, path);
    assert.ok(entry?.kind === 'dir', `'${path}' is a directory`);
    const node = await this.getNode(entry.id);
    assert.equal(node.kind, 'dir');
    return node as DirNode;
  }

  async file(rootId: string, path: string): Promise<FileEntry> {
    const entry = await lookup(this, rootId, path);
    assert.ok(entry?.kind === 'file', `'${path}' is a file`);
    return entry;
  }
}

function leaf(content: string): FileLeaf {
  return { hash: hashBuffer(content), size: Buffer.byteLength(content) };
}

function changeSet(entries: Record<string, string | null>): ChangeSet {
  return new Map(Object.entries(entries).map(([path, content]) => [path, content === null ? null : leaf(content)]));
}

async function collect(source: NodeSource, rootId: string): Promise<Array<{ path: string; hash: string; size: number }>> {
  const out = [];
  for await (const { path, entry } of walkFiles(source, rootId)) out.push({ path, hash: entry.hash, size: entry.size });
  return out;
}

/** Orders paths as the tree walks them: segment by segment, names in UTF-8 byte order. */
function comparePaths(a: string, b: string): number {
  const as = a.split('/');
  const bs = b.split('/');
  for (let i = 0; i < Math.min(as.length, bs.length); i++) {
    const order = compareNames(as[i], bs[i]);
    if (order !== 0) return order;
  }
  return as.length - bs.length;
}

type Counts = Record<string, number>;

function addCount(into: Counts, key: string, n: number): void {
  into[key] = (into[key] ?? 0) + n;
}

const sum = (counts: Counts) => Object.values(counts).reduce((a, b) => a + b, 0);

/**
 * Walks a tree and checks every invariant that a reader (Yoke's or Oxen's) relies on, using only
 * the stored nodes: each entry sits in the vnode oxenVnodeIndex names and vnodes are sorted by
 * compareNames; the directory record's vnode rows are the vnodes' payloads; totals (entries,
 * files, bytes, per data type) equal a recount of the contents; a directory entry in its parent
 * is the child's own payload; no directory below the root is empty; the vnode count is a power of
 * two within chooseVnodeCount's band. Returns every directory by path.
 */
async function checkTree(source: NodeSource, rootId: string, vnodeSize = DEFAULT_VNODE_SIZE): Promise<Map<string, DirNode>> {
  const dirs = new Map<string, DirNode>();
  const visit = async (dirId: string, path: string): Promise<DirNode> => {
    const dir = await source.getNode(dirId);
    assert.equal(dir.kind, 'dir', `'${path}' is a dir node`);
    assert.equal(dir.id, dirId);
    assert.equal(dir.name, basename(path));
    dirs.set(path, dir);

    const count = dir.vnodes.length;
    assert.equal(dir.vnodePayloads.length, count);
    if (count > 0) {
      assert.equal(count & (count - 1), 0, `vnode count of '${path}' is a power of two`);
      assert.ok(dir.entries <= 2 * count * vnodeSize, `'${path}': ${dir.entries} entries overfill ${count} vnodes`);
      if (count > 1) assert.ok(dir.entries > (count * vnodeSize) / 4, `'${path}': ${dir.entries} entries underfill ${count} vnodes`);
    }
    if (path !== '') assert.ok(dir.entries > 0, `empty directory '${path}' left in the tree`);
    if (dir.entries === 0) assert.equal(count, 0, `empty '${path}' has no vnodes`);

    let entries = 0;
    const counts: Counts = {};
    const sizes: Counts = {};
    for (let i = 0; i < count; i++) {
      const vnode = await source.getNode(dir.vnodes[i]);
      assert.equal(vnode.kind, 'vnode');
      const meta = decodeOxenNode('VNode', dir.vnodePayloads[i]) as OxenVNode;
      assert.equal(meta.hash, dir.vnodes[i], 'the vnode row names the vnode');
      assert.equal(meta.numEntries, (vnode as VNode).entries.length);
      const list = (vnode as VNode).entries;
      for (let k = 1; k < list.length; k++) assert.ok(compareNames(list[k - 1].name, list[k].name) < 0, `vnode of '${path}' sorted`);
      for (const e of list) {
        const full = joinRepoPath(path, e.name);
        assert.equal(oxenVnodeIndex(full, count), i, `'${full}' sits in vnode ${i} of ${count}`);
        entries++;
        if (e.kind === 'file') {
          addCount(counts, e.dataType, 1);
          addCount(sizes, e.dataType, e.size);
        } else {
          const child = await visit(e.id, full);
          assert.deepEqual(e.payload, child.payload, `entry of '${full}' is the child's payload`);
          assert.equal(e.size, child.size);
          assert.equal(e.files, child.files);
          assert.equal(e.lastCommitId, child.lastCommitId);
          for (const type of Object.keys(child.counts)) {
            addCount(counts, type, child.counts[type]);
            addCount(sizes, type, child.sizes[type]);
          }
        }
      }
    }
    assert.equal(dir.entries, entries, `entries of '${path}'`);
    assert.deepEqual(dir.counts, counts, `data type counts of '${path}'`);
    assert.deepEqual(dir.sizes, sizes, `data type sizes of '${path}'`);
    assert.equal(dir.files, sum(counts), `files of '${path}'`);
    assert.equal(dir.size, sum(sizes), `size of '${path}'`);
    const own = decodeOxenNode('Dir', dir.payload) as OxenDirNode;
    assert.deepEqual(
      [own.hash, own.numEntries, own.numBytes, own.lastCommitId, own.dataTypeCounts, own.dataTypeSizes],
      [dir.id, dir.entries, dir.size, dir.lastCommitId, dir.counts, dir.sizes],
    );
    return dir;
  };
  await visit(rootId, '');
  return dirs;
}

/** Checks the files of a tree against a path → content model, and the tree's own invariants. */
async function assertTreeMatches(source: NodeSource, rootId: string, model: Map<string, string>, vnodeSize?: number): Promise<void> {
  const expected = [...model.entries()].sort(([a], [b]) => comparePaths(a, b)).map(([path, content]) => ({ path, ...leaf(content) }));
  assert.deepEqual(await collect(source, rootId), expected);
  const dirs = await checkTree(source, rootId, vnodeSize);
  assert.equal(dirs.get('')!.files, model.size);
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

function assertPathConflict(err: unknown): boolean {
  return err instanceof PathConflict && err instanceof BadRequest && err.httpStatus === 400 && err.code === 'bad_request';
}

/** A file payload as some other writer (an Oxen client) made it: metadata hash, its own mtime and commit. */
function foreignFileEntry(name: string, content: string, lastCommitId: string): FileEntry {
  const { hash, size } = leaf(content);
  const node: OxenFileNode = {
    type: 'File',
    name,
    metadataHash: 'abc123',
    hash,
    combinedHash: hashBuffer(`${content} with metadata`),
    numBytes: size,
    lastCommitId,
    lastModifiedSeconds: 1_600_000_000,
    lastModifiedNanoseconds: 123_456_789,
    dataType: 'image',
    metadata: null,
    mimeType: 'image/jpeg',
    extension: 'jpg',
    chunkHashes: [hash],
    chunkType: 'SingleFile',
    storageBackend: 'Disk',
  };
  return { kind: 'file', name, hash, size, lastCommitId, dataType: 'image', payload: encodeOxenNode(node) };
}

// ---- stored form ----------------------------------------------------------------------------

describe('stored nodes are Oxen records', () => {
  test('every node applyChanges writes decodes, and its record round-trips byte for byte', async () => {
    const source = new MemSource();
    const files: Record<string, string> = {};
    for (let i = 0; i < 60; i++) files[`d${i % 5}/sub${i % 3}/f${i}.txt`] = `content ${i}`;
    for (let i = 0; i < 10; i++) files[`top${i}.png`] = `top ${i}`;
    // vnodeSize 2 splits most directories, so vnode records of several sizes (empty ones too) appear.
    const r1 = await source.apply(null, files, { vnodeSize: 2 });
    const r2 = await source.apply(r1.rootId, { 'd1/sub0/f1.txt': 'changed', 'top3.png': null, 'new/x.csv': 'x' }, { vnodeSize: 2 });
    const seen = { Dir: 0, VNode: 0, emptyVNode: 0 };
    for (const r of [r1, r2]) {
      assert.ok(r.nodes.has(r.rootId));
      assert.deepEqual(decodeStoredNode(r.rootId, r.nodes.get(r.rootId)!), r.root);
      for (const [id, bytes] of r.nodes) {
        const { node, children } = unframeRecord(bytes);
        const record = decodeNodeRecord(node, children);
        assert.equal(record.parentId, NO_PARENT);
        assert.deepEqual(frameRecord(encodeNodeRecord(id, record.type, record.parentId, record.payload, record.children)), Buffer.from(bytes));
        const decoded = decodeStoredNode(id, bytes);
        if (record.type === 'VNode') {
          seen.VNode++;
          if (record.children.length === 0) seen.emptyVNode++;
          const payload = decodeOxenNode('VNode', record.payload) as OxenVNode;
          assert.equal(payload.hash, id, 'a vnode payload names its own record');
          assert.equal(payload.numEntries, record.children.length);
          const names: string[] = [];
          for (const child of record.children) {
            assert.ok(child.type === 'File' || child.type === 'Dir');
            const entry = decodeOxenNode(child.type, child.payload) as OxenFileNode | OxenDirNode;
            assert.equal(child.hash, entry.hash, 'a child row carries the entry’s hash');
            names.push(entry.name);
          }
          for (let k = 1; k < names.length; k++) assert.ok(compareNames(names[k - 1], names[k]) < 0);
          assert.equal(decoded.kind, 'vnode');
          assert.deepEqual((decoded as VNode).entries.map((e) => e.name), names);
        } else {
          assert.equal(record.type, 'Dir');
          seen.Dir++;
          const payload = decodeOxenNode('Dir', record.payload) as OxenDirNode;
          assert.equal(payload.hash, id);
          assert.ok(record.children.every((c) => c.type === 'VNode'));
          assert.equal(decoded.kind, 'dir');
          assert.deepEqual((decoded as DirNode).vnodes, record.children.map((c) => c.hash));
          assert.deepEqual((decoded as DirNode).vnodePayloads, record.children.map((c) => c.payload));
        }
      }
    }
    assert.ok(seen.Dir > 0 && seen.VNode > seen.Dir && seen.emptyVNode > 0, JSON.stringify(seen));
    await checkTree(source, r2.rootId, 2);
  });

  test('names are ordered by UTF-8 bytes: above U+FFFF after U+E000–U+FFFF', async () => {
    const names = ['z', 'a', '😀', '\u{1D11E}', 'ﬁ', '\uE000', '\uFFFD', 'é'];
    const expected = ['a', 'z', 'é', '\uE000', 'ﬁ', '\uFFFD', '\u{1D11E}', '😀'];
    // UTF-16 order disagrees, so a tree sorted the JavaScript way would fail this test.
    assert.notDeepEqual(names.slice().sort(), expected);
    for (const vnodeSize of [DEFAULT_VNODE_SIZE, 1]) {
      const source = new MemSource();
      const r = await source.apply(null, Object.fromEntries(names.map((n) => [`d/${n}`, n])), { vnodeSize });
      const d = await source.dir(r.rootId, 'd');
      assert.equal(d.vnodes.length > 1, vnodeSize === 1);
      assert.deepEqual((await listDir(source, d.id)).map((e) => e.name), expected);
      assert.deepEqual((await collect(source, r.rootId)).map((f) => f.path), expected.map((n) => `d/${n}`));
      for (const n of names) assert.equal((await source.file(r.rootId, `d/${n}`)).hash, hashBuffer(n));
      await checkTree(source, r.rootId, vnodeSize);
    }
  });

  test('decodeStoredNode reads a view into a larger buffer, and refuses bad frames and bare file records', async () => {
    const source = new MemSource();
    const r = await source.apply(null, { 'a.txt': 'a' });
    const bytes = Buffer.from(r.nodes.get(r.rootId)!);
    const backing = Buffer.concat([Buffer.from('garbage'), bytes, Buffer.from('x')]);
    assert.deepEqual(decodeStoredNode(r.rootId, backing.subarray(7, 7 + bytes.length)), r.root);

    assert.throws(() => unframeRecord(bytes.subarray(0, 3)), /shorter than its frame/);
    const tooLong = Buffer.from(bytes);
    tooLong.writeUInt32LE(bytes.length, 0);
    assert.throws(() => unframeRecord(tooLong), /longer than the record/);

    // A file lives inside its vnode; a record of its own is not a tree node.
    const file = (await source.file(r.rootId, 'a.txt')).payload;
    assert.throws(() => decodeStoredNode('1', frameRecord(encodeNodeRecord('1', 'File', NO_PARENT, file, []))), /stored inside their vnode/);
  });

  test('commitNodeBytes decodes back to the commit with its root', async () => {
    const source = new MemSource();
    const r = await source.apply(null, { 'a.txt': 'a', 'b/c.txt': 'c' });
    const fields = {
      parentIds: [commitId('p1'), commitId('p2')],
      message: 'Merge ✓',
      author: 'Ada',
      email: 'ada@example.com',
      timestamp: '2024-03-01T12:34:56.789Z',
    };
    const id = computeCommitId({ ...fields, changes: changeSet({ 'a.txt': 'a' }) });
    const bytes = commitNodeBytes({ id, ...fields }, r.root);
    assert.deepEqual(decodeStoredNode(id, bytes), {
      kind: 'commit',
      id,
      parentIds: fields.parentIds,
      message: fields.message,
      author: fields.author,
      email: fields.email,
      timestamp: { seconds: Math.floor(Date.parse(fields.timestamp) / 1000), nanoseconds: 789_000_000 },
      rootId: r.rootId,
    });
    const { node, children } = unframeRecord(bytes);
    const record = decodeNodeRecord(node, children);
    assert.equal(record.type, 'Commit');
    assert.equal(record.parentId, fields.parentIds[0]);
    assert.deepEqual(record.children.map((c) => [c.type, c.hash, c.payload]), [['Dir', r.rootId, r.root.payload]]);

    // A first commit has no parent, and its tree may be empty.
    const empty = await source.apply(null, {});
    const firstBytes = commitNodeBytes({ id, ...fields, parentIds: [] }, empty.root);
    const first = decodeStoredNode(id, firstBytes);
    assert.deepEqual(first.kind === 'commit' && [first.parentIds, first.rootId], [[], empty.rootId]);
    const firstRecord = unframeRecord(firstBytes);
    assert.equal(decodeNodeRecord(firstRecord.node, firstRecord.children).parentId, NO_PARENT);
  });
});

// ---- reading --------------------------------------------------------------------------------

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
    const r = await source.apply(null, Object.fromEntries(model));

    for (const [path, content] of model) {
      const e = await source.file(r.rootId, path);
      assert.equal(e.name, basename(path));
      assert.equal(e.hash, hashBuffer(content));
      assert.equal(e.size, Buffer.byteLength(content));
    }

    const rootEntry = await lookup(source, r.rootId, '');
    assert.deepEqual(rootEntry, { kind: 'dir', name: '', id: r.rootId, size: r.root.size, files: 9, lastCommitId: r.root.lastCommitId, payload: r.root.payload });

    const data = await lookup(source, r.rootId, 'data');
    assert.ok(data && data.kind === 'dir');
    assert.equal(data.files, 4);
    assert.equal(data.size, ['zero', 'one!', 'test zero', 'id,label\n0,cat\n'].reduce((s, c) => s + c.length, 0));

    assert.equal(await lookup(source, r.rootId, 'missing'), null);
    assert.equal(await lookup(source, r.rootId, 'data/missing'), null);
    assert.equal(await lookup(source, r.rootId, 'data/train/0.png/inside'), null, 'path through a file');
    assert.equal(await lookup(source, r.rootId, 'a/b'), null, 'path through a file');
    assert.equal(await lookup(source, r.rootId, 'nope/deeper'), null);

    assert.deepEqual(
      (await listDir(source, r.rootId)).map((e) => [e.name, e.kind]),
      [
        ['README.md', 'file'],
        ['Zed', 'file'],
        ['a', 'file'],
        ['a.txt', 'file'],
        ['data', 'dir'],
        ['deep', 'dir'],
      ],
    );
    assert.deepEqual((await listDir(source, data.id)).map((e) => e.name), ['labels.csv', 'test', 'train']);

    await assertTreeMatches(source, r.rootId, model);
  });

  test('findChild reads only the one vnode holding the path', async () => {
    const source = new MemSource();
    const files: Record<string, string> = {};
    for (let i = 0; i < 200; i++) files[`sub/f${i}`] = `c${i}`;
    const r = await source.apply(null, files, { vnodeSize: 8 });
    const sub = await source.dir(r.rootId, 'sub');
    assert.equal(sub.vnodes.length, 32);
    source.resetReads();
    const e = await findChild(source, sub, 'sub/f123');
    assert.deepEqual(source.readIds, [sub.vnodes[oxenVnodeIndex('sub/f123', 32)]]);
    assert.ok(e?.kind === 'file');
    assert.deepEqual([e.name, e.hash, e.size], ['f123', hashBuffer('c123'), 4]);
    assert.equal(await findChild(source, sub, 'sub/nope'), undefined);

    // An empty root has no vnodes to read.
    const empty = await source.apply(null, {});
    source.resetReads();
    assert.equal(await findChild(source, empty.root, 'f1'), undefined);
    assert.equal(source.reads, 0);
  });

  test('listDir over many vnodes is sorted; walkFiles yields every file', async () => {
    const source = new MemSource();
    const model = new Map<string, string>();
    for (let i = 0; i < 300; i++) model.set(`flat/${String(i).padStart(4, '0')}-${(i * 7919) % 1000}`, `v${i}`);
    for (let i = 0; i < 50; i++) model.set(`flat/sub${i % 7}/x${i}`, `w${i}`);
    const r = await source.apply(null, Object.fromEntries(model), { vnodeSize: 16 });
    const flat = await source.dir(r.rootId, 'flat');
    assert.ok(flat.vnodes.length > 1);
    const names = (await listDir(source, flat.id)).map((e) => e.name);
    assert.equal(names.length, 307);
    assert.deepEqual(names, names.slice().sort(compareNames));
    await assertTreeMatches(source, r.rootId, model, 16);
  });

  test('an empty change set on an empty tree yields an empty root without vnodes', async () => {
    const source = new MemSource();
    const r = await source.apply(null, new Map());
    assert.deepEqual([r.root.entries, r.root.files, r.root.size, r.root.vnodes, r.root.counts], [0, 0, 0, [], {}]);
    assert.deepEqual([...r.nodes.keys()], [r.rootId]);
    assert.deepEqual(await listDir(source, r.rootId), []);
    assert.deepEqual(await collect(source, r.rootId), []);
    assert.equal(await lookup(source, r.rootId, 'x'), null);
  });
});

// ---- vnode partition ------------------------------------------------------------------------

describe('vnodes', () => {
  test('entries sit in the vnode oxenVnodeIndex(full path, count) names, in every directory', async () => {
    const source = new MemSource();
    const model = new Map<string, string>();
    for (let i = 0; i < 150; i++) model.set(`d${i % 3}/e${i % 5}/f${i}.txt`, `c${i}`);
    for (let i = 0; i < 20; i++) model.set(`top${i}.txt`, `t${i}`);
    for (const vnodeSize of [2, 4]) {
      const r = await source.apply(null, Object.fromEntries(model), { vnodeSize });
      const dirs = await checkTree(source, r.rootId, vnodeSize);
      // Split directories are what makes the partition check (in checkTree) mean something.
      assert.ok([...dirs.values()].filter((d) => d.vnodes.length > 1).length >= 10);
      await assertTreeMatches(source, r.rootId, model, vnodeSize);
    }
  });

  test('chooseVnodeCount: powers of two aiming at vnodeSize, changed only when the entries double or halve', () => {
    assert.equal(chooseVnodeCount(0, 0, 16), 0);
    assert.equal(chooseVnodeCount(4, 0, 16), 0);
    assert.deepEqual([1, 16, 17, 32, 33, 1000, 1024, 1025].map((n) => chooseVnodeCount(0, n, 16)), [1, 1, 2, 2, 4, 64, 64, 128]);
    // Hysteresis: with 4 vnodes of size 16, anything in (16, 128] keeps them.
    assert.deepEqual([17, 64, 128].map((n) => chooseVnodeCount(4, n, 16)), [4, 4, 4]);
    assert.equal(chooseVnodeCount(4, 129, 16), 16);
    assert.equal(chooseVnodeCount(4, 16, 16), 1);
    assert.equal(chooseVnodeCount(1, 32, 16), 1);
    assert.equal(chooseVnodeCount(1, 33, 16), 4);

    for (const size of [1, 2, 4, 16, 256]) {
      for (let n = 1; n <= 3000; n += n < 100 ? 1 : 37) {
        const count = chooseVnodeCount(0, n, size);
        assert.equal(count & (count - 1), 0, 'a power of two');
        assert.ok(count * size >= n && (count === 1 || (count / 2) * size < n), `fresh count for ${n}: ${count}`);
        // From there, every size between half and double keeps the count.
        for (const m of [Math.ceil(n / 2), n - 1, n + 1, 2 * n]) {
          if (m >= 1) assert.equal(chooseVnodeCount(count, m, size), count, `${n} → ${m} (size ${size})`);
        }
      }
    }
  });

  test('the vnode count follows one-file adds and removes, and only at the hysteresis bounds', async () => {
    const source = new MemSource();
    const vnodeSize = 4;
    let rootId: string | null = null;
    const growth: Array<[number, number]> = [];
    let last = 0;
    for (let i = 1; i <= 40; i++) {
      const r: ApplyResult = await source.apply(rootId, { [`f${i}.txt`]: `${i}` }, { vnodeSize });
      rootId = r.rootId;
      const count = r.root.vnodes.length;
      if (count !== last) growth.push([i, count]);
      // Within a stretch, one add rewrites one vnode and the root; a new count rewrites every vnode.
      else assert.equal(r.nodes.size, 2, `add #${i}`);
      last = count;
    }
    assert.deepEqual(growth, [[1, 1], [9, 4], [33, 16]]);

    const shrinking: Array<[number, number]> = [];
    for (let i = 40; i >= 1; i--) {
      const r: ApplyResult = await source.apply(rootId, { [`f${i}.txt`]: null }, { vnodeSize });
      rootId = r.rootId;
      const count = r.root.vnodes.length;
      if (count !== last) shrinking.push([r.root.entries, count]);
      else assert.equal(r.nodes.size, 2, `remove #${i}`);
      last = count;
      await checkTree(source, rootId, vnodeSize);
    }
    assert.deepEqual(shrinking, [[16, 4], [4, 1], [0, 0]]);
  });

  test('one file changed in a directory of thousands rewrites one vnode and the directories on its path', async () => {
    const source = new MemSource();
    const N = 3000;
    const big: Record<string, string> = {};
    for (let i = 0; i < N; i++) big[`big/file-${i}.dat`] = `payload ${i}`;
    const r1 = await source.apply(null, { ...big, 'small/x.txt': 'x', 'root.txt': 'r' });
    const big1 = await source.dir(r1.rootId, 'big');
    assert.equal(big1.entries, N);
    assert.equal(big1.vnodes.length, chooseVnodeCount(0, N, DEFAULT_VNODE_SIZE));
    assert.ok(big1.vnodes.length >= 8);

    for (const [label, change] of [
      ['modify', { 'big/file-123.dat': 'changed' }],
      ['add', { 'big/new-file.dat': 'new' }],
      ['remove', { 'big/file-7.dat': null }],
    ] as const) {
      const path = Object.keys(change)[0];
      source.resetReads();
      const r2 = await source.apply(r1.rootId, change);
      const index = oxenVnodeIndex(path, big1.vnodes.length);
      // Reads: root, root's vnode, big's dir node, the one vnode of big holding the path.
      assert.deepEqual(source.readIds, [r1.rootId, r1.root.vnodes[0], big1.id, big1.vnodes[index]], label);
      const big2 = await source.dir(r2.rootId, 'big');
      // Writes: that vnode, big's dir node, root's vnode, the root (and chunks: stored-records.test.ts).
      assert.equal(r2.records.size, 4, label);
      assert.deepEqual(new Set(r2.records.keys()), new Set([big2.vnodes[index], big2.id, r2.root.vnodes[0], r2.rootId]), label);
      assert.equal(big2.vnodes.length, big1.vnodes.length, label);
      assert.deepEqual(
        big2.vnodes.map((id, i) => (id === big1.vnodes[i] ? '=' : i)),
        big1.vnodes.map((_, i) => (i === index ? i : '=')),
        `${label}: only vnode ${index} changed`,
      );
      assert.deepEqual(await lookup(source, r2.rootId, 'small'), await lookup(source, r1.rootId, 'small'));
    }
  });
});

// ---- last commits ---------------------------------------------------------------------------

describe('last commit per entry', () => {
  test('a commit dates the entries it changes and the directories above them, and nothing else', async () => {
    const source = new MemSource();
    const [c1, c2, c3, c4] = ['one', 'two', 'three', 'four'].map(commitId);
    const r1 = await source.apply(null, { 'a/x.txt': '1', 'a/y.txt': '2', 'b/z.txt': '3', 'top.txt': 't' }, { commitId: c1 });
    for (const path of ['a/x.txt', 'a/y.txt', 'b/z.txt', 'top.txt', 'a', 'b']) assert.equal((await lookup(source, r1.rootId, path))!.lastCommitId, c1, path);
    assert.equal(r1.root.lastCommitId, c1);

    const r2 = await source.apply(r1.rootId, { 'a/x.txt': 'changed' }, { commitId: c2 });
    const dated = async (rootId: string, paths: string[]) => Promise.all(paths.map(async (p) => (await lookup(source, rootId, p))?.lastCommitId ?? null));
    assert.deepEqual(await dated(r2.rootId, ['a/x.txt', 'a/y.txt', 'b/z.txt', 'top.txt', 'a', 'b']), [c2, c1, c1, c1, c2, c1]);
    assert.equal(r2.root.lastCommitId, c2);
    assert.equal((await source.dir(r2.rootId, 'a')).lastCommitId, c2);
    // Untouched entries keep their payloads byte for byte, and untouched directories their ids.
    assert.deepEqual((await source.file(r2.rootId, 'a/y.txt')).payload, (await source.file(r1.rootId, 'a/y.txt')).payload);
    assert.equal((await source.dir(r2.rootId, 'b')).id, (await source.dir(r1.rootId, 'b')).id);
    assert.equal((decodeOxenNode('File', (await source.file(r2.rootId, 'a/x.txt')).payload) as OxenFileNode).lastCommitId, c2);

    // A removal dates the directories it changes; removing the last file removes the directory.
    const r3 = await source.apply(r2.rootId, { 'b/z.txt': null }, { commitId: c3 });
    assert.deepEqual(await dated(r3.rootId, ['a/x.txt', 'a', 'b', 'top.txt']), [c2, c2, null, c1]);
    assert.equal(r3.root.lastCommitId, c3);
    const r4 = await source.apply(r3.rootId, { 'a/y.txt': null }, { commitId: c4 });
    assert.deepEqual(await dated(r4.rootId, ['a/x.txt', 'a', 'a/y.txt', '']), [c2, c4, null, c4]);
    await checkTree(source, r4.rootId);
  });

  test('writing a file with the bytes it already has changes nothing', async () => {
    const source = new MemSource();
    const c1 = commitId('one');
    const r1 = await source.apply(null, { 'a/x.txt': '1', 'a/y.txt': '2', 'b/z.txt': '3' }, { commitId: c1 });
    const stored = new Map(source.nodes);

    const same = await source.apply(r1.rootId, { 'a/x.txt': '1', 'b/z.txt': '3', 'a/gone.txt': null, 'nope/x': null }, { commitId: commitId('two') });
    assert.equal(same.rootId, r1.rootId);
    assert.equal(same.nodes.size, 0);
    assert.deepEqual(same.root, r1.root);
    assert.deepEqual(source.nodes, stored);

    // Next to a real change, the unchanged file keeps its last commit and its directory is not rewritten.
    const a1 = await source.dir(r1.rootId, 'a');
    const mixed = await source.apply(r1.rootId, { 'a/x.txt': '1', 'b/z.txt': 'new' }, { commitId: commitId('three') });
    assert.equal((await source.dir(mixed.rootId, 'a')).id, a1.id);
    assert.equal((await source.file(mixed.rootId, 'a/x.txt')).lastCommitId, c1);
    assert.ok(!mixed.nodes.has(a1.id) && !a1.vnodes.some((id) => mixed.nodes.has(id)));
    assert.equal(mixed.nodes.size, 4);
  });

  test('a workspace view dates its entries UNCOMMITTED', async () => {
    const source = new MemSource();
    const r1 = await source.apply(null, { 'a/x.txt': '1', 'b/y.txt': '2' }, { commitId: commitId('one') });
    const r2 = await source.apply(r1.rootId, { 'a/x.txt': 'staged' }, { commitId: UNCOMMITTED });
    assert.deepEqual(
      [(await source.file(r2.rootId, 'a/x.txt')).lastCommitId, (await source.dir(r2.rootId, 'a')).lastCommitId, r2.root.lastCommitId, (await source.dir(r2.rootId, 'b')).lastCommitId],
      [UNCOMMITTED, UNCOMMITTED, UNCOMMITTED, commitId('one')],
    );
  });
});

// ---- structural sharing ---------------------------------------------------------------------

describe('structural sharing', () => {
  test('changing a file in a/ leaves sibling b/ unread and unwritten', async () => {
    const source = new MemSource();
    const r1 = await source.apply(null, { 'a/x': '1', 'a/y': '2', 'b/p': '3', 'b/q/r': '4', 'b/q/s': '5', top: '6' });
    const bIds = new Set<string>();
    for (const path of ['b', 'b/q']) {
      const dir = await source.dir(r1.rootId, path);
      bIds.add(dir.id);
      for (const vnode of dir.vnodes) bIds.add(vnode);
    }

    source.resetReads();
    const r2 = await source.apply(r1.rootId, { 'a/x': 'changed' });
    assert.notEqual(r2.rootId, r1.rootId);
    for (const id of source.readIds) assert.ok(!bIds.has(id), 'b/ must not even be read');
    for (const id of r2.nodes.keys()) assert.ok(!bIds.has(id), 'no node of b/ rewritten');
    // a's vnode, a's dir node, root's vnode, root dir node.
    assert.equal(r2.nodes.size, 4);

    assert.deepEqual(await lookup(source, r2.rootId, 'b'), await lookup(source, r1.rootId, 'b'));
    assert.deepEqual(await lookup(source, r2.rootId, 'b/q'), await lookup(source, r1.rootId, 'b/q'));
    assert.notEqual((await source.dir(r2.rootId, 'a')).id, (await source.dir(r1.rootId, 'a')).id);
    assert.equal((await source.file(r1.rootId, 'a/x')).hash, hashBuffer('1'), 'old root still readable');
  });

  test('directories with the same entries at different paths get different ids', async () => {
    // A vnode's id includes its directory's path: where an entry sits depends on its full path.
    const source = new MemSource();
    const shared = foreignFileEntry('f.jpg', 'same', commitId('elsewhere'));
    const carry: FileLeaf = { ...leaf('same'), carry: shared };
    const r = await source.apply(null, new Map([['a/f.jpg', carry], ['b/f.jpg', carry]]));
    const [a, b] = [await source.dir(r.rootId, 'a'), await source.dir(r.rootId, 'b')];
    assert.deepEqual((await source.file(r.rootId, 'a/f.jpg')).payload, (await source.file(r.rootId, 'b/f.jpg')).payload);
    assert.notEqual(a.vnodes[0], b.vnodes[0]);
    assert.notEqual(a.id, b.id);
  });
});

// ---- deletes --------------------------------------------------------------------------------

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
    let r = await source.apply(null, Object.fromEntries(model));
    await assertTreeMatches(source, r.rootId, model);

    r = await source.apply(r.rootId, { 'a/one': null });
    model.delete('a/one');
    assert.equal(await lookup(source, r.rootId, 'a/one'), null);
    await assertTreeMatches(source, r.rootId, model);

    // Removing the last file removes the emptied directories up the chain (a/b/c and a/b), but not a/.
    r = await source.apply(r.rootId, { 'a/b/c/only': null });
    model.delete('a/b/c/only');
    assert.equal(await lookup(source, r.rootId, 'a/b/c'), null);
    assert.equal(await lookup(source, r.rootId, 'a/b'), null);
    assert.deepEqual((await listDir(source, (await source.dir(r.rootId, 'a')).id)).map((e) => e.name), ['two']);
    await assertTreeMatches(source, r.rootId, model);

    // Removing a directory path removes its whole subtree.
    r = await source.apply(r.rootId, { 'x/y': null });
    for (const p of ['x/y/z/1', 'x/y/z/2', 'x/y/w']) model.delete(p);
    assert.equal(await lookup(source, r.rootId, 'x/y'), null);
    assert.equal(await lookup(source, r.rootId, 'x/y/z/1'), null);
    assert.ok(await lookup(source, r.rootId, 'x/v'));
    await assertTreeMatches(source, r.rootId, model);

    // Removing everything leaves the root, empty and without vnodes.
    r = await source.apply(r.rootId, { x: null, a: null, 'keep.txt': null });
    assert.deepEqual([r.root.entries, r.root.files, r.root.size, r.root.vnodes, r.root.counts, r.root.sizes], [0, 0, 0, [], {}, {}]);
    assert.deepEqual(await listDir(source, r.rootId), []);
    await checkTree(source, r.rootId);
  });

  test('removing a path that does not exist changes nothing', async () => {
    const source = new MemSource();
    const r1 = await source.apply(null, { 'a/x': '1', 'b/y': '2' });
    for (const missing of ['nope', 'a/nope', 'nope/deeper', 'a/deeper/still']) {
      const r = await source.apply(r1.rootId, { [missing]: null });
      assert.equal(r.rootId, r1.rootId, missing);
      assert.equal(r.nodes.size, 0, missing);
    }
    const fromEmpty = await source.apply(null, { nope: null, 'no/pe': null });
    assert.deepEqual([fromEmpty.root.entries, fromEmpty.root.vnodes], [0, []]);
  });
});

// ---- totals ---------------------------------------------------------------------------------

describe('directory totals', () => {
  // The data type of each extension the test uses, written out so the expectation does not come from mime.ts.
  const TYPES: Record<string, string> = { txt: 'text', png: 'image', csv: 'tabular', mp3: 'audio', bin: 'binary', mp4: 'video' };
  const EXTENSIONS = Object.keys(TYPES);

  interface ModelFile {
    content: string;
    lastCommitId: string;
  }

  /** Every directory of the model (the root is ''), with the files below it counted from scratch. */
  function recount(model: Map<string, ModelFile>): Map<string, { counts: Counts; sizes: Counts; entries: Set<string> }> {
    const dirs = new Map<string, { counts: Counts; sizes: Counts; entries: Set<string> }>();
    const dir = (path: string) => {
      let d = dirs.get(path);
      if (!d) dirs.set(path, (d = { counts: {}, sizes: {}, entries: new Set() }));
      return d;
    };
    dir('');
    for (const [path, file] of model) {
      const segments = path.split('/');
      const type = TYPES[path.slice(path.lastIndexOf('.') + 1)];
      for (let i = 0; i < segments.length; i++) {
        const d = dir(segments.slice(0, i).join('/'));
        d.entries.add(segments[i]);
        addCount(d.counts, type, 1);
        addCount(d.sizes, type, Buffer.byteLength(file.content));
      }
    }
    return dirs;
  }

  for (const [seed, vnodeSize] of [[7, 2], [11, 4], [23, DEFAULT_VNODE_SIZE]] as const) {
    test(`counts, sizes and last commits match a recount through random adds and removes (seed ${seed}, vnodeSize ${vnodeSize})`, async () => {
      const rand = prng(seed);
      const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)];
      const source = new MemSource();
      const model = new Map<string, ModelFile>();
      const dirLastCommit = new Map<string, string>();
      let rootId: string | null = null;
      const steps = { unchanged: 0, dirRemovals: 0 };

      for (let step = 0; step < 60; step++) {
        const id = commitId(`step ${step}`);
        const batch = new Map<string, string | null>();
        const existing = [...model.keys()];
        if (step % 10 === 9 && existing.length > 0) {
          // A batch that changes nothing: the same bytes again, and removals of paths that are not there.
          for (const p of existing.slice(0, 5)) batch.set(p, model.get(p)!.content);
          batch.set('r0/missing.txt', null).set('missing', null);
        } else {
          for (let k = 1 + Math.floor(rand() * 10); k > 0; k--) {
            const roll = rand();
            if (roll < 0.5 || existing.length === 0) {
              // Directories have no dot and files always have one, so a batch never asks for a path conflict.
              const depth = Math.floor(rand() * 3);
              const dirs = Array.from({ length: depth }, (_, d) => `${'pqr'[d]}${Math.floor(rand() * 3)}`);
              batch.set([...dirs, `f${Math.floor(rand() * 25)}.${pick(EXTENSIONS)}`].join('/'), 'x'.repeat(Math.floor(rand() * 8)));
            } else if (roll < 0.65) {
              const path = pick(existing);
              batch.set(path, model.get(path)!.content); // the same bytes again: no change
            } else if (roll < 0.9) {
              batch.set(pick(existing), null);
            } else {
              const path = pick(existing);
              if (path.includes('/')) batch.set(path.slice(0, path.lastIndexOf('/')), null);
            }
          }
        }
        // A path under a directory the same batch removes would re-create the directory wholesale
        // (see the conflicts tests); this model knows only plain removals, so such paths are dropped.
        const removedDirs = [...batch].filter(([p, c]) => c === null && !p.includes('.')).map(([p]) => p);
        for (const p of batch.keys()) if (removedDirs.some((d) => p.startsWith(`${d}/`))) batch.delete(p);

        // The model: what the batch does, and which files and directories it changes.
        const next = new Map(model);
        for (const dir of removedDirs) for (const p of model.keys()) if (p.startsWith(`${dir}/`)) next.delete(p);
        for (const [p, content] of batch) {
          if (removedDirs.includes(p)) continue;
          if (content === null) next.delete(p);
          else if (next.get(p)?.content !== content) next.set(p, { content, lastCommitId: id });
        }
        const changed = new Set([...model.keys(), ...next.keys()].filter((p) => model.get(p)?.content !== next.get(p)?.content));
        for (const p of changed) {
          const segments = p.split('/');
          for (let i = 0; i < segments.length; i++) dirLastCommit.set(segments.slice(0, i).join('/'), id);
        }

        const r: ApplyResult = await source.apply(rootId, new Map([...batch].map(([p, c]) => [p, c === null ? null : leaf(c)])), { commitId: id, vnodeSize });
        if (changed.size === 0 && rootId !== null) {
          steps.unchanged++;
          assert.equal(r.rootId, rootId, `step ${step}: no change, same root`);
          assert.equal(r.nodes.size, 0);
        }
        if (removedDirs.some((d) => existing.some((p) => p.startsWith(`${d}/`)))) steps.dirRemovals++;
        rootId = r.rootId;
        model.clear();
        for (const [p, f] of next) model.set(p, f);

        // Files: paths, contents and last commits.
        const files: Array<[string, string, string]> = [];
        for await (const { path, entry } of walkFiles(source, rootId)) files.push([path, entry.hash, entry.lastCommitId]);
        const expected = [...model].sort(([a], [b]) => comparePaths(a, b)).map(([p, f]): [string, string, string] => [p, hashBuffer(f.content), f.lastCommitId]);
        assert.deepEqual(files, expected, `step ${step}: files`);

        // Directories: exactly the model's, with totals equal to the recount.
        const tree = await checkTree(source, rootId, vnodeSize);
        const want = recount(model);
        assert.deepEqual([...tree.keys()].sort(), [...want.keys()].sort(), `step ${step}: directories`);
        for (const [path, d] of want) {
          const node = tree.get(path)!;
          assert.deepEqual(node.counts, d.counts, `step ${step}: counts of '${path}'`);
          assert.deepEqual(node.sizes, d.sizes, `step ${step}: sizes of '${path}'`);
          assert.equal(node.files, sum(d.counts));
          assert.equal(node.size, sum(d.sizes));
          assert.equal(node.entries, d.entries.size);
          if (dirLastCommit.has(path)) assert.equal(node.lastCommitId, dirLastCommit.get(path), `step ${step}: last commit of '${path}'`);
        }
      }
      // The run exercised what it claims to.
      assert.ok(steps.unchanged > 0 && steps.dirRemovals > 0, JSON.stringify(steps));
    });
  }
});

// ---- conflicts ------------------------------------------------------------------------------

describe('conflicts', () => {
  test("adding 'a/b' when 'a' is a file throws PathConflict (400)", async () => {
    const source = new MemSource();
    const r = await source.apply(null, { a: 'file', 'c/d': 'file' });
    await assert.rejects(source.apply(r.rootId, { 'a/b': 'x' }), assertPathConflict);
    await assert.rejects(source.apply(r.rootId, { 'a/b/c': 'x' }), assertPathConflict);
    await assert.rejects(source.apply(r.rootId, { 'c/d/e': 'x' }), assertPathConflict);
    // Deleting below a file is a conflict too: 'a' is not a directory.
    await assert.rejects(source.apply(r.rootId, { 'a/b': null }), assertPathConflict);
  });

  test('adding a file where a directory is throws PathConflict (400)', async () => {
    const source = new MemSource();
    const r = await source.apply(null, { 'dir/f': 'x', 'p/q/r': 'y' });
    await assert.rejects(source.apply(r.rootId, { dir: 'now a file' }), assertPathConflict);
    await assert.rejects(source.apply(r.rootId, { 'p/q': 'now a file' }), assertPathConflict);
  });

  test("a change set with both 'x' (file) and 'x/y' throws, in either order", async () => {
    const source = new MemSource();
    const orders: Array<Array<[string, string]>> = [
      [['x', '1'], ['x/y', '2']],
      [['x/y', '2'], ['x', '1']],
      [['x/y/z', '2'], ['x', '1']],
      [['x', '1'], ['x/y/z', '2']],
      [['a/x', '1'], ['a/x/y', '2']],
    ];
    for (const order of orders) {
      const set: ChangeSet = new Map(order.map(([p, c]) => [p, leaf(c)]));
      await assert.rejects(source.apply(null, set), assertPathConflict, order.map(([p]) => p).join(' + '));
    }
  });

  test('replacing the root is refused', async () => {
    const source = new MemSource();
    await assert.rejects(source.apply(null, { '': 'x' }), assertPathConflict);
  });

  test('a delete plus nested adds replaces the path wholesale', async () => {
    const source = new MemSource();
    const r1 = await source.apply(null, { 'd/old1': '1', 'd/old2': '2', f: 'file' });

    // Directory 'd' removed and re-created with new content, in either order.
    const r2 = await source.apply(r1.rootId, { d: null, 'd/new': 'n' });
    await assertTreeMatches(source, r2.rootId, new Map([['d/new', 'n'], ['f', 'file']]));
    const r2b = await source.apply(r1.rootId, { 'd/new': 'n', d: null });
    await assertTreeMatches(source, r2b.rootId, new Map([['d/new', 'n'], ['f', 'file']]));

    // File 'f' replaced by a directory 'f/'.
    const r3 = await source.apply(r2.rootId, { f: null, 'f/inner': 'i' });
    await assertTreeMatches(source, r3.rootId, new Map([['d/new', 'n'], ['f/inner', 'i']]));
  });
});

// ---- carried entries ------------------------------------------------------------------------

describe('carry', () => {
  test('a carried entry keeps its foreign payload byte for byte, last commit included', async () => {
    const source = new MemSource();
    const c1 = commitId('one');
    const theirs = foreignFileEntry('cat.jpg', 'meow', commitId('theirs'));
    const r = await source.apply(null, new Map([['pics/cat.jpg', { ...leaf('meow'), carry: theirs }]]), { commitId: c1 });
    const entry = await source.file(r.rootId, 'pics/cat.jpg');
    assert.deepEqual(entry.payload, theirs.payload);
    assert.equal(entry.lastCommitId, commitId('theirs'));
    // The stored vnode record holds those bytes, and the directory counts the entry by its data type.
    const pics = await source.dir(r.rootId, 'pics');
    const { node, children } = unframeRecord(source.nodes.get(pics.vnodes[0])!);
    assert.deepEqual(decodeNodeRecord(node, children).children.map((c) => c.payload), [theirs.payload]);
    assert.deepEqual([pics.counts, pics.sizes, pics.lastCommitId], [{ image: 1 }, { image: 4 }, c1]);

    // A carry that does not fit the path or the bytes is not used: the entry is written afresh.
    const other = await source.apply(r.rootId, new Map([['pics/dog.jpg', { ...leaf('meow'), carry: theirs }], ['pics/cat.jpg', { ...leaf('purr'), carry: theirs }]]), { commitId: commitId('two') });
    for (const path of ['pics/dog.jpg', 'pics/cat.jpg']) {
      const written = decodeOxenNode('File', (await source.file(other.rootId, path)).payload) as OxenFileNode;
      assert.deepEqual([written.name, written.lastCommitId, written.metadataHash], [basename(path), commitId('two'), null]);
    }
  });

  test('a tree rebuilt from its carried entries by the same commit is the same tree', async () => {
    // Ids are hashes of content, so equal content (here: every payload carried) means equal ids.
    const source = new MemSource();
    const files: Record<string, string> = {};
    for (let i = 0; i < 40; i++) files[`d${i % 3}/e${i % 2}/f${i}.txt`] = `c${i}`;
    const c1 = commitId('one');
    const a = await source.apply(null, files, { commitId: c1, vnodeSize: 2 });
    const carried: ChangeSet = new Map();
    for await (const { path, entry } of walkFiles(source, a.rootId)) carried.set(path, { hash: entry.hash, size: entry.size, carry: entry });
    const b = await applyChanges(source, null, carried, { commitId: c1, vnodeSize: 2 });
    assert.equal(b.rootId, a.rootId);
    assert.deepEqual(b.nodes, a.nodes);
  });
});

// ---- entries and commit ids -------------------------------------------------------------------

describe('sameEntry', () => {
  test('compares files by hash and directories by id', () => {
    const payload = Buffer.alloc(0);
    const f = (name: string, hash: string, lastCommitId = '1'): Entry => ({ kind: 'file', name, hash, size: 1, lastCommitId, dataType: 'text', payload });
    const d = (name: string, id: string, size = 1): DirEntry => ({ kind: 'dir', name, id, size, files: 1, lastCommitId: '1', payload });
    assert.ok(sameEntry(null, null));
    assert.ok(!sameEntry(null, f('a', '1')));
    assert.ok(!sameEntry(f('a', '1'), null));
    assert.ok(sameEntry(f('a', '1'), f('a', '1')));
    // The same bytes committed at another time are the same content.
    assert.ok(sameEntry(f('a', '1'), f('a', '1', '2')));
    assert.ok(!sameEntry(f('a', '1'), f('a', '2')));
    assert.ok(sameEntry(d('a', 'x'), d('a', 'x', 5)));
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
    changes: changeSet({ 'a.txt': 'a', 'b/c.txt': 'c', gone: null }),
  };

  test('is deterministic and canonical, whatever the order of the change set', () => {
    const id = computeCommitId(base);
    const reordered = new Map([...base.changes].reverse());
    assert.equal(computeCommitId({ ...base, parentIds: [...base.parentIds], changes: reordered }), id);
    assert.match(id, /^[1-9a-f][0-9a-f]{0,31}$/);
  });

  test('changes when any field changes, the change set alone included', () => {
    const id = computeCommitId(base);
    const withChanges = (entries: Record<string, string | null>) => ({ ...base, changes: changeSet(entries) });
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
      ['message/author boundary', { ...base, message: 'Add dataA', author: 'da' }],
      ['no changes', withChanges({})],
      ['other content', withChanges({ 'a.txt': 'A', 'b/c.txt': 'c', gone: null })],
      ['other path', withChanges({ 'a.txt': 'a', 'b/d.txt': 'c', gone: null })],
      ['one change fewer', withChanges({ 'a.txt': 'a', 'b/c.txt': 'c' })],
      ['a removal instead of an add', withChanges({ 'a.txt': null, 'b/c.txt': 'c', gone: null })],
      ['other size, same hash', { ...base, changes: new Map([...base.changes].map(([p, l]) => [p, l && p === 'a.txt' ? { ...l, size: l.size + 1 } : l])) }],
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
