import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  buildIndex,
  compareKeys,
  decodeIndexNode,
  decodeIndexRoot,
  encodeIndexRoot,
  entryKey,
  indexChildIds,
  indexCount,
  readIndexRange,
  updateIndex,
  type IndexChange,
  type IndexItem,
  type IndexRoot,
} from '../../src/core/name-index.js';

/** Index rows in memory, counting what each change writes. */
class Rows {
  readonly stored = new Map<string, Buffer>();
  written: Array<[string, Buffer]> = [];
  reads = 0;
  async read(ids: string[]): Promise<Uint8Array[]> {
    this.reads += ids.length;
    return ids.map((id) => this.stored.get(id) ?? assert.fail(`index node ${id} is not stored`));
  }
  readonly nodes = async (ids: string[]) => (await this.read(ids)).map(decodeIndexNode);
  write(id: string, bytes: Buffer): void {
    this.stored.set(id, bytes);
    this.written.push([id, bytes]);
  }
}

/** A deterministic stream of numbers in [0, 1). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const item = (key: string, version = 0): IndexItem => ({ key, count: 1, value: Buffer.from(`${key}@${version}`) });
const ordered = (model: Map<string, IndexItem>) => [...model.values()].sort(compareKeys);

/** How many leaves an index has, read a level at a time. */
async function leafCount(root: IndexRoot, rows: Rows): Promise<number> {
  let level = [root.top];
  while (level[0].height > 0) level = await rows.nodes(level.flatMap(indexChildIds));
  return level.length;
}
const fileName = (i: number) => entryKey('file', `f${String(i).padStart(7, '0')}.txt`);

async function assertHolds(root: IndexRoot, model: Map<string, IndexItem>, rows: Rows): Promise<void> {
  const expected = ordered(model);
  assert.equal(indexCount(root.top), expected.length);
  assert.equal(root.dirCount, expected.filter((e) => e.key.startsWith('d')).length);
  const all = await readIndexRange(root, 0, expected.length, rows.nodes);
  assert.deepEqual(
    all.map((e) => [e.key, e.value.toString()]),
    expected.map((e) => [e.key, e.value.toString()]),
  );
}

describe('name index', () => {
  it('reads any range of a built index, and its root survives encoding', async () => {
    const rows = new Rows();
    const model = new Map<string, IndexItem>();
    for (let i = 0; i < 5000; i++) model.set(fileName(i), item(fileName(i)));
    for (let i = 0; i < 300; i++) model.set(entryKey('dir', `d${i}`), item(entryKey('dir', `d${i}`)));
    const root = decodeIndexRoot(encodeIndexRoot(buildIndex(ordered(model), rows)));
    assert.ok(root.top.height >= 2, `5,300 entries make a tree of height ${root.top.height}`);
    await assertHolds(root, model, rows);
    const expected = ordered(model);
    for (const [from, to] of [
      [0, 100],
      [299, 301],
      [4000, 4100],
      [5250, 5300],
      [5299, 5300],
      [17, 17],
    ]) {
      const got = await readIndexRange(root, from, to, rows.nodes);
      assert.deepEqual(
        got.map((e) => e.key),
        expected.slice(from, to).map((e) => e.key),
        `range ${from}..${to}`,
      );
    }
  });

  it('reads a first page with one node per level and the leaves it shows', async () => {
    const rows = new Rows();
    const entries = Array.from({ length: 100_000 }, (_, i) => item(fileName(i)));
    const root = buildIndex(entries, rows);
    rows.reads = 0;
    const page = await readIndexRange(root, 0, 100, rows.nodes);
    assert.equal(page.length, 100);
    assert.ok(rows.reads < 40, `the first page of 100,000 entries read ${rows.reads} nodes`);
  });

  it('stays equal to its entries through random changes, and a one-entry change writes a few small nodes', async () => {
    const next = random(7);
    const rows = new Rows();
    const model = new Map<string, IndexItem>();
    for (let i = 0; i < 20_000; i++) model.set(fileName(i * 2), item(fileName(i * 2)));
    let root: IndexRoot | null = buildIndex(ordered(model), rows);
    for (let round = 0; round < 30; round++) {
      const changes = new Map<string, IndexChange>();
      const size = round % 3 === 0 ? 1 : Math.floor(next() * 300);
      for (let k = 0; k < size; k++) {
        const n = Math.floor(next() * 40_000);
        const key = next() < 0.1 ? entryKey('dir', `d${n}`) : fileName(n);
        const remove = model.has(key) && next() < 0.5;
        if (remove) {
          model.delete(key);
          changes.set(key, { key, value: null });
        } else {
          const entry = item(key, round + 1);
          model.set(key, entry);
          changes.set(key, { key, value: entry.value });
        }
      }
      rows.written = [];
      root = await updateIndex(root!, [...changes.values()], rows);
      assert.ok(root);
      await assertHolds(root, model, rows);
      if (size === 1) {
        const bytes = rows.written.reduce((sum, [, b]) => sum + b.length, 0) + encodeIndexRoot(root).length;
        assert.ok(rows.written.length <= 6 && bytes < 8_000, `a one-entry change wrote ${rows.written.length} nodes, ${bytes} bytes`);
      }
    }
  });

  it('keeps its nodes full while most entries are removed one change at a time', async () => {
    const rows = new Rows();
    const model = new Map<string, IndexItem>();
    for (let i = 0; i < 4000; i++) model.set(fileName(i), item(fileName(i)));
    let root: IndexRoot | null = buildIndex(ordered(model), rows);
    for (let i = 0; i < 4000; i++) {
      if (i % 10 === 0) continue;
      model.delete(fileName(i));
      root = await updateIndex(root!, [{ key: fileName(i), value: null }], rows);
    }
    await assertHolds(root!, model, rows);
    const freshRows = new Rows();
    const fresh = buildIndex(ordered(model), freshRows);
    const kept = await leafCount(root!, rows);
    const rebuilt = await leafCount(fresh, freshRows);
    assert.ok(kept <= Math.max(4, rebuilt * 3), `400 entries left in ${kept} leaves (a fresh index: ${rebuilt})`);
  });

  it('gives up nothing when every entry goes, and refuses a malformed node', async () => {
    const rows = new Rows();
    const keys = Array.from({ length: 50 }, (_, i) => fileName(i));
    const root = buildIndex(keys.map((k) => item(k)), rows);
    assert.equal(
      await updateIndex(
        root,
        keys.map((key) => ({ key, value: null })),
        rows,
      ),
      null,
    );
    assert.throws(() => decodeIndexNode(Buffer.from([0, 1, 0, 0, 0, 9])), /malformed/);
  });
});
