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
import type { BlobStore } from '../../src/storage/blob-store.js';
import { hashBuffer } from '../../src/core/hash.js';
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
        }
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
          await store.putPart(uploadId, 0, chunksOf(randomBytes(100), 50));
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

    describe('upload parts', () => {
      const uploadId = () => `up-${randomBytes(6).toString('hex')}`;

      it('stores parts, replaces a re-sent part, reads them back and deletes them all', () =>
        withStore(async (store) => {
          const id = uploadId();
          const first = randomBytes(3000);
          assert.equal(await store.putPart(id, 0, chunksOf(first, 1000)), 3000);
          assert.equal(await store.putPart(id, 3000, chunksOf(randomBytes(10), 10)), 10);
          const resent = randomBytes(2500);
          assert.equal(await store.putPart(id, 0, chunksOf(resent, 700)), 2500);
          assert.deepEqual(await readAll(await store.getPart(id, 0)), resent);
          await store.deleteParts(id);
          await assert.rejects(store.getPart(id, 0), isYokeError('NotFound', 404));
          await store.deleteParts(id);
        }));

      it('a failing or oversized part leaves no part behind (and keeps an earlier copy)', () =>
        withStore(async (store) => {
          const id = uploadId();
          const good = randomBytes(100);
          await store.putPart(id, 5, chunksOf(good, 100));
          await assert.rejects(store.putPart(id, 5, failingSource([randomBytes(50)])));
          assert.deepEqual(await readAll(await store.getPart(id, 5)), good);
          await assert.rejects(store.putPart(id, 6, chunksOf(randomBytes(200), 50), { maxBytes: 100 }), isYokeError('PayloadTooLarge', 413));
          await assert.rejects(store.getPart(id, 6), isYokeError('NotFound', 404));
          await store.deleteParts(id);
        }));

      it('part numbers above 4 GiB (64-bit offsets) work', () =>
        withStore(async (store) => {
          const id = uploadId();
          const offset = 5 * 1024 ** 3 + 123;
          await store.putPart(id, offset, chunksOf(Buffer.from('far'), 3));
          assert.equal((await readAll(await store.getPart(id, offset))).toString(), 'far');
          await store.deleteParts(id);
        }));

      it('assembles in place: writes at offsets in any order, overwrites resent ranges, commits verified', () =>
        withStore(async (store) => {
          const id = uploadId();
          const data = randomBytes(10_000);
          assert.equal(await store.writeAt(id, 6000, chunksOf(data.subarray(6000), 1000)), 4000);
          assert.equal(await store.writeAt(id, 0, chunksOf(randomBytes(3000), 1000)), 3000);
          await store.writeAt(id, 0, chunksOf(data.subarray(0, 3000), 512));
          await store.writeAt(id, 2500, chunksOf(data.subarray(2500, 6500), 777));
          const result = await store.commitUpload(id, data.length, hashBuffer(data).toUpperCase());
          assert.deepEqual(result, { hash: hashBuffer(data), size: data.length, created: true });
          assert.deepEqual(await readAll(await store.get(result.hash)), data);
          await store.deleteParts(id);
        }));

      it('in-place writes of many uneven pieces land byte-exact (more pieces and bytes than one batched write)', () =>
        withStore(async (store) => {
          const id = uploadId();
          const data = randomBytes(3 * 1024 * 1024 + 12_345);
          async function* uneven() {
            let at = 0;
            for (let i = 0; at < data.length; i++) {
              const size = 1 + ((i * 7919) % 3000);
              yield data.subarray(at, at + size);
              at += size;
            }
          }
          assert.equal(await store.writeAt(id, 0, uneven()), data.length);
          assert.deepEqual(await store.commitUpload(id, data.length, hashBuffer(data)), { hash: hashBuffer(data), size: data.length, created: true });
          assert.deepEqual(await readAll(await store.get(hashBuffer(data))), data);
          await store.deleteParts(id);
        }));

      it('an in-place write whose source fails midway rejects, and the upload can still be completed', () =>
        withStore(async (store) => {
          const id = uploadId();
          const data = randomBytes(3 * 1024 * 1024);
          async function* broken() {
            yield data.subarray(0, 2 * 1024 * 1024);
            throw new Error('client went away');
          }
          await assert.rejects(store.writeAt(id, 0, broken()), /client went away/);
          await store.writeAt(id, 0, chunksOf(data, 64 * 1024));
          assert.deepEqual(await store.commitUpload(id, data.length, hashBuffer(data)), { hash: hashBuffer(data), size: data.length, created: true });
          await store.deleteParts(id);
        }));

      it('reads back ranges written in place', () =>
        withStore(async (store) => {
          const id = uploadId();
          await assert.rejects(store.readAt(id, 0, 1), isYokeError('NotFound', 404));
          const data = randomBytes(5000);
          await store.writeAt(id, 1000, chunksOf(data.subarray(1000), 700));
          await store.writeAt(id, 0, chunksOf(data.subarray(0, 1000), 300));
          assert.deepEqual(await readAll(await store.readAt(id, 0, 5000)), data);
          assert.deepEqual(await readAll(await store.readAt(id, 999, 2001)), data.subarray(999, 2001));
          assert.equal((await readAll(await store.readAt(id, 4000, 4000))).length, 0);
          await store.deleteParts(id);
        }));

      it('an in-place upload whose bytes do not match is refused and nothing becomes visible', () =>
        withStore(async (store) => {
          const id = uploadId();
          const data = randomBytes(500);
          await store.writeAt(id, 0, chunksOf(data, 100));
          await assert.rejects(store.commitUpload(id, data.length, hashBuffer(randomBytes(3))), isYokeError('HashMismatch', 400));
          assert.equal(await store.stat(hashBuffer(data)), null);
          await assert.rejects(store.writeAt(id, 0, chunksOf(randomBytes(300), 100), { maxBytes: 200 }), isYokeError('PayloadTooLarge', 413));
          await store.deleteParts(id);
          await assert.rejects(store.commitUpload(id, 1, hashBuffer('x')), isYokeError('NotFound', 404));
        }));

      it('commitUpload cuts off an in-place write still under way (Conflict), so nothing lands in a published blob', () =>
        withStore(async (store) => {
          const id = uploadId();
          const data = randomBytes(4000);
          await store.writeAt(id, 0, chunksOf(data, 1000));
          let release!: () => void;
          const gate = new Promise<void>((resolve) => (release = resolve));
          async function* slow() {
            yield data.subarray(3000, 3500); // a resend of the same bytes, whose client stalls
            await gate;
            yield randomBytes(500);
          }
          const late = assert.rejects(store.writeAt(id, 3000, slow()), isYokeError('Conflict', 409));
          await new Promise((resolve) => setTimeout(resolve, 50));
          assert.deepEqual(await store.commitUpload(id, data.length, hashBuffer(data)), { hash: hashBuffer(data), size: data.length, created: true });
          await late;
          release();
          assert.deepEqual(await readAll(await store.get(hashBuffer(data))), data);
          await store.deleteParts(id);
        }));

      it('rejects upload ids and part numbers that could escape the staging area', () =>
        withStore(async (store) => {
          await assert.rejects(store.putPart('../x', 0, chunksOf(Buffer.from('x'), 1)), isYokeError('BadRequest', 400));
          await assert.rejects(store.putPart(uploadId(), -1, chunksOf(Buffer.from('x'), 1)), isYokeError('BadRequest', 400));
          await assert.rejects(store.putPart(uploadId(), 1.5, chunksOf(Buffer.from('x'), 1)), isYokeError('BadRequest', 400));
        }));
    });
  });
}
