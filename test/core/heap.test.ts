import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { collectEvery, fullGarbageCollection } from '../../src/server/heap.js';

describe('garbage collection paced by multipart parts (src/server/heap.ts)', () => {
  it('collects once every n parts', () => {
    let collections = 0;
    const partTakenIn = collectEvery(3, () => collections++);
    for (let i = 0; i < 10; i++) partTakenIn();
    assert.equal(collections, 3);
  });

  it('really collects: an object only weakly held is gone after it', async () => {
    let target: object | null = { payload: new Array(1000).fill('x') };
    const ref = new WeakRef(target);
    target = null;
    // A WeakRef keeps its target until the end of the job that made it.
    await new Promise((resolve) => setImmediate(resolve));
    fullGarbageCollection();
    assert.equal(ref.deref(), undefined);
  });
});
