import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { diffTrees } from '../../src/core/diff.js';
import { hashBuffer } from '../../src/core/hash.js';
import { lowestCommonAncestor, threeWayMerge } from '../../src/core/merge.js';
import { applyChanges, decodeNode, type ChangeSet, type NodeSource, type TreeNode } from '../../src/core/tree.js';

/** An in-memory node store that counts reads. */
class MemorySource implements NodeSource {
  readonly nodes = new Map<string, Uint8Array>();
  reads = 0;
  async getNode(id: string): Promise<TreeNode> {
    this.reads += 1;
    const bytes = this.nodes.get(id);
    if (!bytes) throw new Error(`missing node ${id}`);
    return decodeNode(bytes);
  }
  async apply(root: string | null, changes: ChangeSet, bucketSize = 16) {
    const result = await applyChanges(this, root, changes, bucketSize);
    for (const [id, bytes] of result.nodes) this.nodes.set(id, bytes);
    return result.rootId;
  }
}

const leaf = (s: string) => ({ hash: hashBuffer(s), size: s.length });

describe('diffTrees', () => {
  it('finds added, removed and modified files, reading only the subtrees that differ', async () => {
    const source = new MemorySource();
    const files: ChangeSet = new Map(Array.from({ length: 2000 }, (_, i) => [`d${i % 10}/f${i}.txt`, leaf(`v1 ${i}`)]));
    const a = await source.apply(null, files);
    const b = await source.apply(a, new Map([['d3/f3.txt', leaf('v2')], ['d5/f5.txt', null], ['d9/new.txt', leaf('new')]]));
    source.reads = 0;
    const changes = await diffTrees(source, a, b);
    assert.deepEqual(
      changes.map((c) => `${c.status} ${c.path}`),
      ['modified d3/f3.txt', 'removed d5/f5.txt', 'added d9/new.txt'],
    );
    assert.deepEqual(changes[0].before, leaf('v1 3'));
    assert.deepEqual(changes[0].after, leaf('v2'));
    // root, its bucket and three directories with one bucket each, on both sides.
    assert.ok(source.reads <= 16, `read ${source.reads} nodes`);
    assert.deepEqual(await diffTrees(source, a, a), []);
  });

  it('stays correct when a directory changes its bucket count, and against an empty tree', async () => {
    const source = new MemorySource();
    const small = await source.apply(null, new Map(Array.from({ length: 10 }, (_, i) => [`f${i}`, leaf(`${i}`)])));
    const big = await source.apply(small, new Map(Array.from({ length: 100 }, (_, i) => [`g${i}`, leaf(`g${i}`)])));
    const changes = await diffTrees(source, small, big);
    assert.equal(changes.length, 100);
    assert.ok(changes.every((c) => c.status === 'added' && c.path.startsWith('g')));
    assert.equal((await diffTrees(source, null, small)).length, 10);
    assert.ok((await diffTrees(source, small, null)).every((c) => c.status === 'removed'));
  });
});

describe('threeWayMerge and lowestCommonAncestor', () => {
  it('applies one-sided changes, keeps equal ones, reports the rest with all three hashes', () => {
    const change = (path: string, before: string | null, after: string | null) => ({
      path,
      status: (before === null ? 'added' : after === null ? 'removed' : 'modified') as 'added' | 'removed' | 'modified',
      before: before === null ? null : leaf(before),
      after: after === null ? null : leaf(after),
    });
    const { apply, conflicts } = threeWayMerge(
      [change('same', 'x', 'y'), change('clash', 'x', 'y'), change('mine', 'x', 'y')],
      [change('same', 'x', 'y'), change('clash', 'x', 'z'), change('theirs', 'x', null)],
    );
    assert.deepEqual([...apply], [['theirs', null]]);
    assert.deepEqual(conflicts, [{ path: 'clash', base: hashBuffer('x'), ours: hashBuffer('y'), theirs: hashBuffer('z') }]);
  });

  it('picks the deepest common ancestor, newest on ties, and null without one', () => {
    const c = (id: string, generation: number, timestamp: string) => ({ id, generation, timestamp });
    const root = c('r', 1, '2026-01-01');
    const x = c('x', 2, '2026-01-02');
    const y = c('y', 2, '2026-01-03');
    assert.equal(lowestCommonAncestor([x, y, root], [y, x, root])?.id, 'y');
    assert.equal(lowestCommonAncestor([x, root], [root])?.id, 'r');
    assert.equal(lowestCommonAncestor([x], [y]), null);
  });
});
