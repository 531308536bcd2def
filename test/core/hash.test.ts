import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createStreamHasher, hashBuffer, isCanonicalHash, normalizeHash } from '../../src/core/hash.js';

/** Feeds `data` to a fresh stream hasher in uneven chunks (including empty ones). */
async function streamHash(data: Uint8Array, chunkSizes: number[]): Promise<string> {
  const hasher = await createStreamHasher();
  let offset = 0;
  let i = 0;
  while (offset < data.length) {
    const size = chunkSizes[i++ % chunkSizes.length];
    hasher.update(data.subarray(offset, offset + size));
    offset += size;
  }
  return hasher.digest();
}

const CHUNKINGS: number[][] = [
  [1],
  [3, 0, 7, 64, 1, 250],
  [17, 4096, 5, 65536, 2],
  [1 << 20],
];

const SIZES = [0, 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 100, 128, 129, 200, 240, 241, 1000, 4096, 65537, (1 << 20) + 7];

describe('hashBuffer', () => {
  test('golden vectors', () => {
    assert.equal(hashBuffer(''), '99aa06d3014798d86001c324468d497f');
    assert.equal(hashBuffer('hello world'), 'df8d09e93f874900a99b8775cc15b6c7');
  });

  test('strings hash as their UTF-8 bytes', () => {
    assert.equal(hashBuffer('hello world'), hashBuffer(Buffer.from('hello world')));
    assert.equal(hashBuffer('héllo ✓'), hashBuffer(new TextEncoder().encode('héllo ✓')));
    assert.equal(hashBuffer(new Uint8Array(0)), '99aa06d3014798d86001c324468d497f');
  });

  test('hashes a subarray view by its own bytes only', () => {
    const backing = Buffer.from('xxhello worldyy');
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 2, 11);
    assert.equal(hashBuffer(view), 'df8d09e93f874900a99b8775cc15b6c7');
  });

  test('output is canonical (lower-case hex, no leading zeros)', () => {
    for (let i = 0; i < 200; i++) {
      const h = hashBuffer(randomBytes(i));
      assert.match(h, /^[0-9a-f]{1,32}$/);
      assert.ok(isCanonicalHash(h), h);
    }
  });

  test('different inputs give different hashes', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) seen.add(hashBuffer(`input-${i}`));
    assert.equal(seen.size, 500);
  });
});

describe('createStreamHasher', () => {
  for (const size of SIZES) {
    test(`agrees with hashBuffer for ${size} random bytes`, async () => {
      const data = randomBytes(size);
      const expected = hashBuffer(data);
      for (const chunking of CHUNKINGS) {
        assert.equal(await streamHash(data, chunking), expected, `size ${size}, chunks ${chunking.join(',')}`);
      }
    });
  }

  test('empty stream (no update, or only empty updates) hashes like the empty buffer', async () => {
    const a = await createStreamHasher();
    assert.equal(a.digest(), '99aa06d3014798d86001c324468d497f');
    const b = await createStreamHasher();
    b.update(new Uint8Array(0));
    b.update(new Uint8Array(0));
    assert.equal(b.digest(), '99aa06d3014798d86001c324468d497f');
  });

  test('golden vector through the stream hasher', async () => {
    const h = await createStreamHasher();
    h.update(Buffer.from('hello '));
    h.update(Buffer.from('world'));
    assert.equal(h.digest(), 'df8d09e93f874900a99b8775cc15b6c7');
  });

  test('digest() twice throws', async () => {
    const h = await createStreamHasher();
    h.update(Buffer.from('abc'));
    h.digest();
    assert.throws(() => h.digest(), /twice/);
  });

  test('pooled hashers are reset between uses', async () => {
    for (let round = 0; round < 5; round++) {
      const h = await createStreamHasher();
      h.update(Buffer.from(`round ${round}`));
      assert.equal(h.digest(), hashBuffer(`round ${round}`));
    }
    // A hasher abandoned mid-stream must not leak state into the next one either.
    const abandoned = await createStreamHasher();
    abandoned.update(Buffer.from('left behind'));
    const fresh = await createStreamHasher();
    fresh.update(Buffer.from('hello world'));
    assert.equal(fresh.digest(), 'df8d09e93f874900a99b8775cc15b6c7');
  });

  test('interleaved hashers do not interfere', async () => {
    const inputs = Array.from({ length: 8 }, (_, i) => randomBytes(1000 + i * 37));
    const hashers = await Promise.all(inputs.map(() => createStreamHasher()));
    for (let offset = 0; offset < 2000; offset += 100) {
      inputs.forEach((data, i) => hashers[i].update(data.subarray(offset, offset + 100)));
    }
    inputs.forEach((data, i) => assert.equal(hashers[i].digest(), hashBuffer(data)));
  });

  test('leading zero nibbles are not printed (buffer and stream agree)', async () => {
    let found: { input: string; hash: string } | null = null;
    for (let i = 0; i < 5000 && !found; i++) {
      const input = `leading-zero-probe-${i}`;
      const hash = hashBuffer(input);
      if (hash.length < 32) found = { input, hash };
    }
    assert.ok(found, 'expected to find a hash with a leading zero nibble within 5000 tries');
    const { input, hash } = found;
    assert.notEqual(hash[0], '0');
    assert.equal(normalizeHash(hash.padStart(32, '0')), hash);
    assert.equal(normalizeHash(hash.padStart(32, '0').toUpperCase()), hash);
    const h = await createStreamHasher();
    h.update(Buffer.from(input));
    assert.equal(h.digest(), hash);
  });
});

describe('normalizeHash', () => {
  test('canonical input is returned unchanged', () => {
    assert.equal(normalizeHash('df8d09e93f874900a99b8775cc15b6c7'), 'df8d09e93f874900a99b8775cc15b6c7');
    assert.equal(normalizeHash('abc'), 'abc');
    assert.equal(normalizeHash('0'), '0');
  });

  test('upper-case and zero-padded input is canonicalised', () => {
    assert.equal(normalizeHash('DF8D09E93F874900A99B8775CC15B6C7'), 'df8d09e93f874900a99b8775cc15b6c7');
    assert.equal(normalizeHash('00000000000000000000000000000abc'), 'abc');
    assert.equal(normalizeHash('000ABC'), 'abc');
    assert.equal(normalizeHash('0aBc'), 'abc');
    assert.equal(normalizeHash('f'.padStart(32, '0')), 'f');
  });

  test('all zeros become "0"', () => {
    assert.equal(normalizeHash('000'), '0');
    assert.equal(normalizeHash('0'.repeat(32)), '0');
  });

  test('rejects non-hex, empty and over-long input', () => {
    for (const bad of ['', 'g', 'xyz', '12 34', ' abc', 'abc ', '0x12', '-1', 'abc\n', 'ab/c', '1'.repeat(33), '0'.repeat(33)]) {
      assert.equal(normalizeHash(bad), null, JSON.stringify(bad));
    }
    assert.equal(normalizeHash('f'.repeat(32)), 'f'.repeat(32));
  });

  test('rejects non-strings', () => {
    for (const bad of [undefined, null, 123, {}, ['abc']]) {
      assert.equal(normalizeHash(bad as unknown as string), null);
    }
  });

  test('isCanonicalHash', () => {
    assert.ok(isCanonicalHash('abc'));
    assert.ok(isCanonicalHash('0'));
    assert.ok(!isCanonicalHash('0abc'));
    assert.ok(!isCanonicalHash('ABC'));
    assert.ok(!isCanonicalHash('000'));
    assert.ok(!isCanonicalHash(''));
    assert.ok(!isCanonicalHash('xyz'));
  });
});
