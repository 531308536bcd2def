/**
 * Shared conformance suite for BlobStore backends (in the spirit of lakeFS's pkg/block/blocktest).
 * A backend's test file calls `blobStoreConformance(name, open)`; every case opens a fresh store
 * through `open` and releases it with the returned `cleanup`. Content is random per case, so the
 * suite also holds on a backend whose `open` hands out a shared, non-empty store.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { BlobStore, StagedPart } from '../../src/storage/blob-store.js';
import { createStreamHasher, hashBuffer } from '../../src/core/hash.js';
import { YokeError } from '../../src/core/errors.js';

export type OpenBlobStore = () => Promise<{ store: BlobStore; cleanup: () => Promise<void> }>;

export const EMPTY_HASH = '99aa06d3014798d86001c324468d497f';

/** Yields `data` in pieces of at most `chunkSize` bytes. */
export async function* chunksOf(data: Uint8Array, chunkSize: number): AsyncGenerator<Uint8Array> {
  if (data.byteLength === 0) return;
  for (let at = 0; at < data.byteLength; at += chunkSize) {
    yield data.subarray(at, Math.min(at + chunkSize, data.byteLength));
  }
}

/** Yields `before`, then throws — a client that disconnects mid-upload. */
export async function* failingSource(before: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const chunk of before) yield chunk;
  throw new Error('source failed midway');
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(parts);
}

/** Predicate for assert.rejects: a YokeError of the given class name and HTTP status. */
export function isYokeError(name: string, httpStatus: number): (err: unknown) => true {
  return (err: unknown) => {
    assert.ok(err instanceof YokeError, `expected a YokeError, got ${String(err)}`);
    assert.equal(err.name, name);
    assert.equal(err.httpStatus, httpStatus);
    return true;
  };
}

/** Content whose canonical hash is shorter than 32 digits (its padded form has leading zeros). */
function contentWithShortHash(): Buffer {
  const salt = randomBytes(8).toString('hex');
  for (let i = 0; ; i++) {
    const data = Buffer.from(`short-hash ${salt} ${i}`);
    if (hashBuffer(data).length < 32) return data;
  }
}

export function blobStoreConformance(name: string, open: OpenBlobStore): void {
  /** Runs `fn` against a freshly opened store, always cleaning up. */
  const withStore = async (fn: (store: BlobStore) => Promise<void>): Promise<void> => {
    const { store, cleanup } = await open();
    try {
      await fn(store);
    } finally {
      try {
        await store.close();
      } finally {
        await cleanup();
      }
    }
  };

  describe(`BlobStore conformance: ${name}`, () => {
    it('put from several chunks returns the canonical hash, size and created:true', () =>
      withStore(async (store) => {
        const data = randomBytes(10_000);
        const result = await store.put(chunksOf(data, 3_000));
        assert.deepEqual(result, { hash: hashBuffer(data), size: data.byteLength, created: true });
        assert.match(result.hash, /^[1-9a-f][0-9a-f]{0,31}$/);
      }));

    it('a second put of the same bytes deduplicates (created:false)', () =>
      withStore(async (store) => {
        const data = randomBytes(4_096);
        const first = await store.put(chunksOf(data, 1_000));
        const second = await store.put(chunksOf(data, 4_096));
        assert.equal(first.created, true);
        assert.deepEqual(second, { hash: first.hash, size: data.byteLength, created: false });
        assert.deepEqual(await readAll(await store.get(first.hash)), data);
      }));

    it('availableBytes is null (no bound) or a positive byte count', () =>
      withStore(async (store) => {
        // Other test files write and delete in parallel, so only the shape is stable here.
        const available = await store.availableBytes();
        assert.ok(available === null || (Number.isSafeInteger(available) && available > 0), `availableBytes: ${available}`);
      }));

    it('stat returns the size of a present blob and null for an absent one', () =>
      withStore(async (store) => {
        const data = randomBytes(1_234);
        const absent = hashBuffer(randomBytes(64));
        assert.equal(await store.stat(absent), null);
        const { hash } = await store.put(chunksOf(data, 500));
        assert.equal(await store.stat(hash), 1_234);
        assert.equal(await store.stat(absent), null);
      }));

    it('get streams the exact bytes', () =>
      withStore(async (store) => {
        const data = randomBytes(100_000);
        const { hash } = await store.put(chunksOf(data, 7_777));
        assert.deepEqual(await readAll(await store.get(hash)), data);
      }));

    it('get with an inclusive range returns exactly that slice', () =>
      withStore(async (store) => {
        const data = randomBytes(1_000);
        const { hash } = await store.put(chunksOf(data, 256));
        const cases: Array<[number, number]> = [
          [0, 0], // first byte
          [0, 99], // prefix
          [123, 456], // middle
          [500, 500], // a single middle byte
          [999, 999], // last byte
          [900, 999], // suffix
          [0, 999], // whole blob
        ];
        for (const [start, end] of cases) {
          const got = await readAll(await store.get(hash, { start, end }));
          assert.deepEqual(got, data.subarray(start, end + 1), `range ${start}-${end}`);
          const whole = await store.read(hash, { start, end });
          assert.deepEqual(whole, data.subarray(start, end + 1), `read ${start}-${end}`);
        }
      }));

    it('read of a range past the end of a blob rejects; of a missing blob, with NotFound (404)', () =>
      withStore(async (store) => {
        const { hash } = await store.put(chunksOf(randomBytes(100), 64));
        await assert.rejects(store.read(hash, { start: 50, end: 199 }));
        await assert.rejects(store.read(hashBuffer(randomBytes(32)), { start: 0, end: 9 }), isYokeError('NotFound', 404));
      }));

    it('readMany and statMany, where a store has them, answer as read and stat of each blob (issue 15)', () =>
      withStore(async (store) => {
        if (!store.readMany || !store.statMany) return;
        const blobs = [randomBytes(1), randomBytes(4_096), randomBytes(70_000), randomBytes(4_096)];
        const hashes = await Promise.all(blobs.map(async (data) => (await store.put(chunksOf(data, 1_000))).hash));
        const absent = hashBuffer(randomBytes(32));
        assert.deepEqual(await store.statMany([...hashes, absent, hashes[0]]), [1, 4_096, 70_000, 4_096, null, 1]);
        const read = await store.readMany(hashes.map((hash, i) => ({ hash, size: blobs[i].length })));
        assert.deepEqual(read, blobs);
        await assert.rejects(store.readMany([{ hash: hashes[1], size: 4_096 }, { hash: absent, size: 10 }]), isYokeError('NotFound', 404));
        await assert.rejects(store.readMany([{ hash: hashes[0], size: 2 }]), /has 1 bytes, not 2/);
      }));

    it('get of a missing blob rejects with NotFound (404)', () =>
      withStore(async (store) => {
        const missing = hashBuffer(randomBytes(32));
        await assert.rejects(store.get(missing), isYokeError('NotFound', 404));
        await assert.rejects(store.get(missing, { start: 0, end: 0 }), isYokeError('NotFound', 404));
      }));

    it('put with a matching expectedHash succeeds', () =>
      withStore(async (store) => {
        const data = randomBytes(2_048);
        const expected = hashBuffer(data);
        const result = await store.put(chunksOf(data, 1_000), { expectedHash: expected });
        assert.deepEqual(result, { hash: expected, size: 2_048, created: true });
        assert.equal(await store.stat(expected), 2_048);
      }));

    it('put with a wrong expectedHash rejects with HashMismatch (400) and stores nothing', () =>
      withStore(async (store) => {
        const data = randomBytes(2_048);
        const actual = hashBuffer(data);
        const wrong = hashBuffer(randomBytes(16));
        assert.equal(await store.stat(actual), null);
        await assert.rejects(store.put(chunksOf(data, 500), { expectedHash: wrong }), isYokeError('HashMismatch', 400));
        assert.equal(await store.stat(actual), null);
        assert.equal(await store.stat(wrong), null);
        await assert.rejects(store.get(actual), isYokeError('NotFound', 404));
        // The store is still usable for the same bytes afterwards.
        const retry = await store.put(chunksOf(data, 500), { expectedHash: actual });
        assert.equal(retry.created, true);
      }));

    it('expectedHash may be upper-case or zero-padded', () =>
      withStore(async (store) => {
        const upper = randomBytes(300);
        const upperHash = hashBuffer(upper);
        const r1 = await store.put(chunksOf(upper, 100), { expectedHash: upperHash.toUpperCase() });
        assert.equal(r1.hash, upperHash);

        // Content whose canonical hash is short: the 32-digit zero-padded form names it too,
        // and the returned hash is the canonical (unpadded) one.
        const short = contentWithShortHash();
        const shortHash = hashBuffer(short);
        const zeroPadded = shortHash.padStart(32, '0');
        assert.notEqual(zeroPadded, shortHash);
        const r3 = await store.put(chunksOf(short, 7), { expectedHash: zeroPadded.toUpperCase() });
        assert.deepEqual(r3, { hash: shortHash, size: short.byteLength, created: true });
        assert.equal(await store.stat(shortHash), short.byteLength);
        assert.equal(await store.stat(zeroPadded), short.byteLength);
        assert.deepEqual(await readAll(await store.get(zeroPadded)), short);
      }));

    it('exceeding maxBytes rejects with PayloadTooLarge (413) and stores nothing', () =>
      withStore(async (store) => {
        const data = randomBytes(10_000);
        const hash = hashBuffer(data);
        await assert.rejects(store.put(chunksOf(data, 1_000), { maxBytes: 9_999 }), isYokeError('PayloadTooLarge', 413));
        assert.equal(await store.stat(hash), null);
        // Exactly maxBytes is allowed.
        const ok = await store.put(chunksOf(data, 1_000), { maxBytes: 10_000 });
        assert.deepEqual(ok, { hash, size: 10_000, created: true });
      }));

    it('a source that throws midway rejects and leaves nothing visible', () =>
      withStore(async (store) => {
        const first = randomBytes(1_000);
        const second = randomBytes(1_000);
        const partial = hashBuffer(Buffer.concat([first, second]));
        await assert.rejects(store.put(failingSource([first, second])), /source failed midway/);
        assert.equal(await store.stat(partial), null);
        assert.equal(await store.stat(hashBuffer(first)), null);
      }));

    it('delete removes a blob (and is harmless when absent)', () =>
      withStore(async (store) => {
        const data = randomBytes(512);
        const { hash } = await store.put(chunksOf(data, 512));
        await store.delete(hash);
        assert.equal(await store.stat(hash), null);
        await assert.rejects(store.get(hash), isYokeError('NotFound', 404));
        await store.delete(hash);
        // Putting it again creates it anew.
        assert.equal((await store.put(chunksOf(data, 512))).created, true);
      }));

    it('the empty blob (0 bytes) works', () =>
      withStore(async (store) => {
        assert.equal(hashBuffer(new Uint8Array(0)), EMPTY_HASH);
        const before = await store.stat(EMPTY_HASH);
        const first = await store.put(chunksOf(new Uint8Array(0), 1));
        assert.deepEqual(first, { hash: EMPTY_HASH, size: 0, created: before === null });
        // An iterable yielding an empty chunk is the same blob.
        const second = await store.put((async function* () {
          yield new Uint8Array(0);
        })(), { expectedHash: EMPTY_HASH });
        assert.deepEqual(second, { hash: EMPTY_HASH, size: 0, created: false });
        assert.equal(await store.stat(EMPTY_HASH), 0);
        assert.equal((await readAll(await store.get(EMPTY_HASH))).byteLength, 0);
      }));

    it('20 concurrent puts of the same content all succeed and read back intact', () =>
      withStore(async (store) => {
        const data = randomBytes(256 * 1024);
        const hash = hashBuffer(data);
        const results = await Promise.all(Array.from({ length: 20 }, () => store.put(chunksOf(data, 16 * 1024))));
        for (const r of results) {
          assert.equal(r.hash, hash);
          assert.equal(r.size, data.byteLength);
        }
        assert.ok(results.some((r) => r.created), 'at least one put reports created');
        assert.equal(await store.stat(hash), data.byteLength);
        assert.deepEqual(await readAll(await store.get(hash)), data);
      }));

    it('a larger blob (8 MiB streamed in 64 KiB chunks) round-trips', () =>
      withStore(async (store) => {
        const data = randomBytes(8 * 1024 * 1024);
        const hash = hashBuffer(data);
        const result = await store.put(chunksOf(data, 64 * 1024), { expectedHash: hash });
        assert.deepEqual(result, { hash, size: data.byteLength, created: true });
        assert.equal(await store.stat(hash), data.byteLength);
        const back = await readAll(await store.get(hash));
        assert.equal(back.byteLength, data.byteLength);
        assert.ok(back.equals(data), 'bytes read back differ');
        const start = 3 * 1024 * 1024 + 17;
        const end = 5 * 1024 * 1024 + 3;
        assert.ok((await readAll(await store.get(hash, { start, end }))).equals(data.subarray(start, end + 1)));
      }));

    it('a put under an existing hash is verified, never trusted, and leaves the stored blob intact', () =>
      withStore(async (store) => {
        const data = randomBytes(300_000);
        const hash = hashBuffer(data);
        await store.put(chunksOf(data, 64 * 1024));
        const again = await store.put(chunksOf(data, 10_000), { expectedHash: hash });
        assert.deepEqual(again, { hash, size: data.byteLength, created: false });
        const impostor = randomBytes(300_000);
        await assert.rejects(store.put(chunksOf(impostor, 64 * 1024), { expectedHash: hash }), isYokeError('HashMismatch', 400));
        assert.deepEqual(await readAll(await store.get(hash)), data);
      }));

    it('batched puts are complete when put returns and durable after commit', () =>
      withStore(async (store) => {
        const batch = store.createBatch();
        const items = Array.from({ length: 20 }, () => randomBytes(100));
        const results = await Promise.all(items.map((data) => store.put([data], { batch })));
        await batch.commit();
        for (const [i, r] of results.entries()) assert.deepEqual(await readAll(await store.get(r.hash)), items[i]);
      }));

    describe('garbage collection', () => {
      it('list yields stored blobs with size and time of last write', () =>
        withStore(async (store) => {
          const before = Date.now() - 1000;
          const data = randomBytes(321);
          const { hash } = await store.put(chunksOf(data, 100));
          let found;
          for await (const blob of store.list()) if (blob.hash === hash) found = blob;
          assert.ok(found, 'the blob is listed');
          assert.equal(found.size, 321);
          assert.ok(found.touchedAt >= before && found.touchedAt <= Date.now() + 1000, `touchedAt ${found.touchedAt}`);
        }));

      it('deleteIfIdle removes a blob untouched since the time given, and spares one a put wrote or reused since', () =>
        withStore(async (store) => {
          const data = randomBytes(2_000);
          const { hash } = await store.put(chunksOf(data, 1_000));
          await new Promise((r) => setTimeout(r, 20));
          const since = Date.now();
          await new Promise((r) => setTimeout(r, 20));
          // Reused (deduplicated) after `since`: spared, still readable.
          assert.equal((await store.put([data])).created, false);
          assert.equal(await store.deleteIfIdle(hash, since), false);
          assert.deepEqual(await readAll(await store.get(hash)), data);
          // Nobody touched it after now: removed, and absent hashes are not an error.
          await new Promise((r) => setTimeout(r, 20));
          assert.equal(await store.deleteIfIdle(hash, Date.now()), true);
          assert.equal(await store.stat(hash), null);
          assert.equal(await store.deleteIfIdle(hash, Date.now()), false);
          // A put after the removal stores it anew.
          assert.equal((await store.put(chunksOf(data, 700))).created, true);
        }));

      it('listStagedUploads names uploads with staged parts; deleteParts removes them from the list', () =>
        withStore(async (store) => {
          const uploadId = `gc-${randomBytes(6).toString('hex')}`;
          const before = Date.now() - 1000;
          await store.putPart(uploadId, 0, null, chunksOf(randomBytes(100), 50));
          await store.putPart(uploadId, 100, 100, chunksOf(randomBytes(100), 50));
          const staged = async () => {
            for await (const s of store.listStagedUploads()) if (s.uploadId === uploadId) return s;
            return null;
          };
          const found = await staged();
          assert.ok(found && found.touchedAt >= before, `staged: ${JSON.stringify(found)}`);
          await store.deleteParts(uploadId);
          assert.equal(await staged(), null);
        }));
    });

    describe('staged uploads (S3-shaped multipart)', () => {
      const uploadId = () => `up-${randomBytes(6).toString('hex')}`;
      /** Stores `data` cut at `cuts` as parts, with offsets (in place) or without (after the part before). */
      const stage = async (store: BlobStore, id: string, data: Buffer, cuts: number[], withOffsets: boolean): Promise<StagedPart[]> => {
        const bounds = [0, ...cuts, data.length];
        const parts: StagedPart[] = [];
        // Sent last to first: the order of arrival must not matter.
        for (let i = bounds.length - 2; i >= 0; i--) {
          const offset = withOffsets ? bounds[i] : null;
          const part = withOffsets ? bounds[i] : i;
          const { size, tag } = await store.putPart(id, part, offset, chunksOf(data.subarray(bounds[i], bounds[i + 1]), 777));
          assert.equal(size, bounds[i + 1] - bounds[i]);
          parts.unshift({ part, offset, size, tag });
        }
        return parts;
      };

      for (const withOffsets of [true, false]) {
        it(`completes parts ${withOffsets ? 'with offsets' : 'by number'} into one verified blob and consumes the staging`, () =>
          withStore(async (store) => {
            const id = uploadId();
            const data = randomBytes(50_000);
            const parts = await stage(store, id, data, [10_000, 30_000], withOffsets);
            assert.deepEqual(await readAll(await store.getPart(id, parts[1])), data.subarray(10_000, 30_000));
            assert.deepEqual(await readAll(await store.getPart(id, parts[1], { start: 5, end: 105 })), data.subarray(10_005, 10_105));
            const result = await store.completeParts(id, parts, data.length, hashBuffer(data).toUpperCase(), null);
            assert.deepEqual(result, { hash: hashBuffer(data), size: data.length, created: true });
            assert.deepEqual(await readAll(await store.get(hashBuffer(data))), data);
            await assert.rejects(store.getPart(id, parts[0]), isYokeError('NotFound', 404));
          }));
      }

      it('one part is published as it is; the empty file too', () =>
        withStore(async (store) => {
          for (const data of [randomBytes(4000), Buffer.alloc(0)]) {
            const id = uploadId();
            const parts = await stage(store, id, data, [], false);
            const existed = (await store.stat(hashBuffer(data))) !== null;
            assert.deepEqual(await store.completeParts(id, parts, data.length, hashBuffer(data), null), { hash: hashBuffer(data), size: data.length, created: !existed });
            assert.deepEqual(await readAll(await store.get(hashBuffer(data))), data);
          }
        }));

      it('completion resumes from a hash frontier, reading only the bytes after it', () =>
        withStore(async (store) => {
          const id = uploadId();
          const data = randomBytes(60_000);
          const parts = await stage(store, id, data, [20_000, 40_000], true);
          const ahead = await createStreamHasher();
          ahead.update(data.subarray(0, 40_000));
          const frontier = { through: 40_000, state: ahead.save() };
          assert.equal((await store.completeParts(id, parts, data.length, hashBuffer(data), frontier)).hash, hashBuffer(data));
          // A frontier is trusted for the bytes it covers: one standing for other bytes makes the hash differ.
          const id2 = uploadId();
          const parts2 = await stage(store, id2, data, [20_000, 40_000], true);
          const wrong = await createStreamHasher();
          wrong.update(randomBytes(40_000));
          await assert.rejects(store.completeParts(id2, parts2, data.length, hashBuffer(data), { through: 40_000, state: wrong.save() }), isYokeError('HashMismatch', 400));
          await store.deleteParts(id2);
        }));

      it('overlapping parts (resent with another chunk size) and a re-sent part assemble byte-exact', () =>
        withStore(async (store) => {
          const id = uploadId();
          const data = randomBytes(30_000);
          const parts: StagedPart[] = [];
          for (const [offset, end] of [[0, 12_000], [10_000, 30_000], [0, 12_000]] as const) {
            const stored = await store.putPart(id, offset, offset, chunksOf(data.subarray(offset, end), 1000));
            const resent = parts.findIndex((p) => p.part === offset);
            if (resent >= 0) parts.splice(resent, 1);
            parts.push({ part: offset, offset, ...stored });
          }
          parts.sort((a, b) => a.part - b.part);
          assert.equal((await store.completeParts(id, parts, data.length, hashBuffer(data), null)).hash, hashBuffer(data));
          assert.deepEqual(await readAll(await store.get(hashBuffer(data))), data);
        }));

      it('bytes that do not hash to the name are refused, nothing becomes visible, and the staging stays for a retry', () =>
        withStore(async (store) => {
          const id = uploadId();
          const data = randomBytes(20_000);
          const parts = await stage(store, id, data, [8_000], true);
          const other = hashBuffer(randomBytes(20_000));
          await assert.rejects(store.completeParts(id, parts, data.length, other, null), isYokeError('HashMismatch', 400));
          assert.equal(await store.stat(other), null);
          assert.equal(await store.stat(hashBuffer(data)), null);
          assert.equal((await store.completeParts(id, parts, data.length, hashBuffer(data), null)).hash, hashBuffer(data));
        }));

      it('a failing or oversized part rejects, and an earlier copy of it stays readable', () =>
        withStore(async (store) => {
          const id = uploadId();
          const first = randomBytes(3000);
          const stored = await store.putPart(id, 0, null, chunksOf(first, 1000));
          await assert.rejects(store.putPart(id, 0, null, failingSource([randomBytes(500)])), /source failed midway/);
          await assert.rejects(store.putPart(id, 0, null, chunksOf(randomBytes(3000), 1000), { maxBytes: 2999 }), isYokeError('PayloadTooLarge', 413));
          assert.deepEqual(await readAll(await store.getPart(id, { part: 0, offset: null, ...stored })), first);
          await store.deleteParts(id);
        }));

      it('part numbers and offsets above 4 GiB (64-bit) work', () =>
        withStore(async (store) => {
          const id = uploadId();
          const data = randomBytes(100);
          const stored = await store.putPart(id, 2 ** 40, null, chunksOf(data, 100));
          assert.deepEqual(await readAll(await store.getPart(id, { part: 2 ** 40, offset: null, ...stored })), data);
          await store.deleteParts(id);
        }));

      it('rejects upload ids and part numbers that could escape the staging area', () =>
        withStore(async (store) => {
          await assert.rejects(store.putPart('../x', 0, null, chunksOf(Buffer.from('x'), 1)), isYokeError('BadRequest', 400));
          await assert.rejects(store.putPart(uploadId(), -1, null, chunksOf(Buffer.from('x'), 1)), isYokeError('BadRequest', 400));
          await assert.rejects(store.putPart(uploadId(), 1.5, null, chunksOf(Buffer.from('x'), 1)), isYokeError('BadRequest', 400));
        }));
    });
  });
}
