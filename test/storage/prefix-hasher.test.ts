import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createStreamHasher, hashBuffer, type StreamHasher } from '../../src/core/hash.js';
import { PrefixHasher } from '../../src/storage/prefix-hasher.js';

/** A PrefixHasher over an in-memory "file", with a log of the ranges it read and an optional gate on reads. */
async function setup(size: number) {
  const file = Buffer.alloc(size);
  const reads: Array<[number, number]> = [];
  let gate: Promise<void> | null = null;
  const hashing = new PrefixHasher(await createStreamHasher(), async (start: number, end: number, hasher: StreamHasher) => {
    reads.push([start, end]);
    if (gate) await gate;
    hasher.update(file.subarray(start, end));
  });
  const write = (offset: number, bytes: Buffer) => {
    const w = hashing.begin(offset);
    bytes.copy(file, offset);
    return () => hashing.end(w, bytes.length);
  };
  const hold = () => {
    let release!: () => void;
    gate = new Promise((resolve) => (release = resolve));
    return () => {
      gate = null;
      release();
    };
  };
  return { file, reads, hashing, write, hold };
}

async function digestOf(hashing: PrefixHasher, file: Buffer) {
  const ahead = await hashing.settle();
  if (ahead === null) return null;
  ahead.hasher.update(file.subarray(ahead.length));
  return { length: ahead.length, hash: ahead.hasher.digest() };
}

describe('PrefixHasher', () => {
  it('hashes writes that arrive in order as they finish', async () => {
    const data = randomBytes(3000);
    const { file, hashing, write, reads } = await setup(3000);
    for (let at = 0; at < 3000; at += 1000) write(at, data.subarray(at, at + 1000))();
    assert.deepEqual(await digestOf(hashing, file), { length: 3000, hash: hashBuffer(data) });
    // Read back in order, each byte once (ranges that ended meanwhile are read together).
    assert.equal(reads[0][0], 0);
    for (let i = 1; i < reads.length; i++) assert.equal(reads[i][0], reads[i - 1][1]);
    assert.equal(reads[reads.length - 1][1], 3000);
  });

  it('waits for a gap to be filled, then hashes everything contiguous', async () => {
    const data = randomBytes(3000);
    const { file, hashing, write, reads } = await setup(3000);
    write(2000, data.subarray(2000))();
    write(1000, data.subarray(1000, 2000))();
    assert.deepEqual(reads, []);
    write(0, data.subarray(0, 1000))();
    assert.deepEqual(await digestOf(hashing, file), { length: 3000, hash: hashBuffer(data) });
    assert.deepEqual(reads, [[0, 3000]]);
  });

  it('does not read into a write still under way, nor past a failed one', async () => {
    const data = randomBytes(3000);
    const { hashing, write } = await setup(3000);
    write(1000, data.subarray(1000, 2000)); // begun, never ended
    write(2000, data.subarray(2000))();
    write(0, data.subarray(0, 1000))();
    const failed = hashing.begin(1000); // a resend of the same range …
    hashing.end(failed, null); // … that failed
    const ahead = await hashing.settle();
    assert.equal(ahead?.length, 1000);
  });

  it('gives up when a write begins below the hashed frontier (a resent chunk could change hashed bytes)', async () => {
    const data = randomBytes(2000);
    const { file, hashing, write } = await setup(2000);
    write(0, data.subarray(0, 1000))();
    write(1000, data.subarray(1000))();
    await new Promise((resolve) => setImmediate(resolve));
    write(500, randomBytes(10))();
    assert.equal(await digestOf(hashing, file), null);
  });

  it('gives up when a write begins inside the range being read', async () => {
    const data = randomBytes(2000);
    const { file, hashing, write, hold, reads } = await setup(2000);
    const release = hold();
    write(0, data.subarray(0, 2000))();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(reads, [[0, 2000]]);
    write(1500, randomBytes(10))(); // lands while [0, 2000) is being read
    release();
    assert.equal(await digestOf(hashing, file), null);
  });

  it('a write above the range being read does not disturb it', async () => {
    const data = randomBytes(3000);
    const { file, hashing, write, hold } = await setup(3000);
    const release = hold();
    write(0, data.subarray(0, 1000))();
    await new Promise((resolve) => setImmediate(resolve));
    write(1000, data.subarray(1000))();
    release();
    assert.deepEqual(await digestOf(hashing, file), { length: 3000, hash: hashBuffer(data) });
  });

  it('is finished with once settled or abandoned', async () => {
    const { file, hashing, write } = await setup(10);
    write(0, randomBytes(10))();
    hashing.abandon();
    assert.equal(await digestOf(hashing, file), null);
  });
});
