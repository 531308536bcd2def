import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { diffTrees, type FileSide } from '../../src/core/diff.js';
import { hashBuffer } from '../../src/core/hash.js';
import { lowestCommonAncestor, threeWayMerge } from '../../src/core/merge.js';
import { applyChanges, decodeStoredNode, lookup, type ChangeSet, type NodeSource, type TreeNode } from '../../src/core/tree.js';

/** An in-memory store of framed node records that counts reads; each apply is a new commit. */
class MemorySource implements NodeSource {
  readonly nodes = new Map<string, Uint8Array>();
  reads = 0;
  commits = 0;
  async getNode(id: string): Promise<TreeNode> {
    this.reads += 1;
    const bytes = this.nodes.get(id);
    if (!bytes) throw new Error(`missing node ${id}`);
    return decodeStoredNode(id, bytes, (chunk) => this.nodes.get(chunk));
  }
  async apply(root: string | null, changes: ChangeSet, vnodeSize = 16) {
    const result = await applyChanges(this, root, changes, { commitId: hashBuffer(`commit ${++this.commits}`), vnodeSize });
    for (const [id, bytes] of result.nodes) this.nodes.set(id, bytes);
    return result.rootId;
  }
}

const leaf = (s: string) => ({ hash: hashBuffer(s), size: s.length });
/** A diff side without the carried entry, for comparing content. */
const content = (side: FileSide | null) => side && { hash: side.hash, size: side.size };

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
    assert.deepEqual(content(changes[0].before), leaf('v1 3'));
    assert.deepEqual(content(changes[0].after), leaf('v2'));
    assert.deepEqual([changes[1].after, content(changes[2].after)], [null, leaf('new')]);
    // Root and its one vnode, then three directories with one vnode each (of 16), on both sides.
    assert.equal(source.reads, 16);
    // Each side carries its tree entry as it is, so a merge can take it over (last commit and all).
    assert.deepEqual(changes[0].before?.carry, await lookup(source, a, 'd3/f3.txt'));
    assert.deepEqual(changes[0].after?.carry, await lookup(source, b, 'd3/f3.txt'));
    source.reads = 0;
    assert.deepEqual(await diffTrees(source, a, a), []);
    assert.equal(source.reads, 0);
  });

  it('stays correct when a directory changes its vnode count, and against an empty tree', async () => {
    const source = new MemorySource();
    const small = await source.apply(null, new Map(Array.from({ length: 10 }, (_, i) => [`f${i}`, leaf(`${i}`)])));
    const big = await source.apply(small, new Map(Array.from({ length: 100 }, (_, i) => [`g${i}`, leaf(`g${i}`)])));
    const [smallRoot, bigRoot] = [await source.getNode(small), await source.getNode(big)];
    assert.ok(smallRoot.kind === 'dir' && bigRoot.kind === 'dir' && smallRoot.vnodes.length !== bigRoot.vnodes.length);
    const changes = await diffTrees(source, small, big);
    assert.equal(changes.length, 100);
    assert.ok(changes.every((c) => c.status === 'added' && c.path.startsWith('g')));
    assert.equal((await diffTrees(source, null, small)).length, 10);
    const removed = await diffTrees(source, small, null);
    assert.deepEqual(removed.map((c) => [c.status, c.path]), Array.from({ length: 10 }, (_, i) => ['removed', `f${i}`]));
  });

  it('compares content, not ids: the same bytes committed again are no change', async () => {
    // Entries record their last commit, so removing a file and adding it back gives new node ids.
    const source = new MemorySource();
    const a = await source.apply(null, new Map([['d/x.txt', leaf('x')], ['d/y.txt', leaf('y')]]));
    const gone = await source.apply(a, new Map([['d/x.txt', null]]));
    const back = await source.apply(gone, new Map([['d/x.txt', leaf('x')]]));
    assert.notEqual(back, a);
    assert.deepEqual(await diffTrees(source, a, back), []);
    assert.deepEqual((await diffTrees(source, a, gone)).map((c) => `${c.status} ${c.path}`), ['removed d/x.txt']);
  });

  it('walks a directory that became a file, and the reverse', async () => {
    const source = new MemorySource();
    const a = await source.apply(null, new Map([['p/q.txt', leaf('q')], ['p/r/s.txt', leaf('s')], ['t', leaf('t')]]));
    // A file cannot replace a directory within one change set, so the directory goes first.
    const between = await source.apply(a, new Map([['p', null], ['t', null], ['t/u.txt', leaf('u')]]));
    const b = await source.apply(between, new Map([['p', leaf('now a file')]]));
    assert.deepEqual(
      (await diffTrees(source, a, b)).map((c) => `${c.status} ${c.path}`),
      ['added p', 'removed p/q.txt', 'removed p/r/s.txt', 'removed t', 'added t/u.txt'],
    );
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
