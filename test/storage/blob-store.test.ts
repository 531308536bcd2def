import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { LocalBlobStore } from '../../src/storage/local-blob-store.js';
import { hashBuffer } from '../../src/core/hash.js';
import { blobStoreConformance, chunksOf, failingSource, isYokeError, readAll } from './blob-store-conformance.js';

const freshRoot = () => mkdtemp(join(tmpdir(), 'yoke-blobs-'));

async function inFreshRoot(work: (root: string) => Promise<void>): Promise<void> {
  const root = await freshRoot();
  try {
    await work(root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

blobStoreConformance('LocalBlobStore', async () => {
  const root = await freshRoot();
  const store = await LocalBlobStore.open(root);
  return { store, cleanup: () => rm(root, { recursive: true, force: true }) };
});

describe('LocalBlobStore specifics', () => {
  it('leaves no temp files behind after failed puts', () =>
    inFreshRoot(async (root) => {
      const store = await LocalBlobStore.open(root);
      const tmp = join(root, 'tmp');
      const data = randomBytes(4_096);

      await assert.rejects(
        store.put(chunksOf(data, 1_000), { expectedHash: hashBuffer(randomBytes(8)) }),
        isYokeError('HashMismatch', 400),
      );
      assert.deepEqual(await readdir(tmp), []);

      await assert.rejects(store.put(chunksOf(data, 1_000), { maxBytes: 100 }), isYokeError('PayloadTooLarge', 413));
      assert.deepEqual(await readdir(tmp), []);

      await assert.rejects(store.put(failingSource([data])), /source failed midway/);
      assert.deepEqual(await readdir(tmp), []);

      // Successful, deduplicated and concurrent puts leave nothing either.
      await store.put(chunksOf(data, 1_000));
      await store.put(chunksOf(data, 1_000));
      const other = randomBytes(64 * 1024);
      await Promise.all(Array.from({ length: 20 }, () => store.put(chunksOf(other, 4_096))));
      assert.deepEqual(await readdir(tmp), []);
      await store.close();
    }));

  it('reopening the store on the same root clears stale temp files, keeps fresh ones (another process may own them) and keeps blobs', () =>
    inFreshRoot(async (root) => {
      const first = await LocalBlobStore.open(root);
      const data = randomBytes(2_000);
      const { hash } = await first.put(chunksOf(data, 700));
      await first.close();

      const tmp = join(root, 'tmp');
      await writeFile(join(tmp, 'leftover-1'), randomBytes(100));
      await writeFile(join(tmp, 'leftover-2'), randomBytes(100));
      await writeFile(join(tmp, 'in-progress'), randomBytes(100));
      const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000);
      await utimes(join(tmp, 'leftover-1'), twoDaysAgo, twoDaysAgo);
      await utimes(join(tmp, 'leftover-2'), twoDaysAgo, twoDaysAgo);
      assert.equal((await readdir(tmp)).length, 3);

      // Left by a process that is gone (a kill): removed at once, however fresh. One of a live process stays.
      const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
      await writeFile(join(tmp, `${dead}-interrupted`), randomBytes(100));
      await writeFile(join(tmp, `${process.ppid}-live`), randomBytes(100));

      const reopened = await LocalBlobStore.open(root);
      assert.deepEqual((await readdir(tmp)).sort(), [`${process.ppid}-live`, 'in-progress']);
      assert.equal(await reopened.stat(hash), 2_000);
      assert.deepEqual(await readAll(await reopened.get(hash)), data);
      await reopened.close();
    }));

  it('an in-place write the filesystem refuses while the request still streams is reported by writeAt, not left unhandled', () =>
    inFreshRoot(async (root) => {
      const store = await LocalBlobStore.open(root);
      const piece = randomBytes(1024 * 1024);
      async function* stillStreaming() {
        yield piece; // one full batch: its write starts (and fails: past the largest file size) …
        await new Promise((resolve) => setTimeout(resolve, 100)); // … while the request is still arriving
        yield piece;
      }
      await assert.rejects(store.writeAt('u1', 2 ** 50, stillStreaming()), (err: NodeJS.ErrnoException) => ['EFBIG', 'EINVAL'].includes(err.code ?? ''));
      await store.close();
    }));

  describe('in-place uploads hashed ahead', () => {
    const settleHashing = () => new Promise((resolve) => setTimeout(resolve, 50));
    const MiB = 1024 * 1024;

    it('a chunk resent with other bytes over hashed ones is caught: completion verifies the bytes on disk', () =>
      inFreshRoot(async (root) => {
        const store = await LocalBlobStore.open(root);
        const data = randomBytes(3 * MiB);
        const other = randomBytes(MiB);
        await store.writeAt('u1', 0, chunksOf(data.subarray(0, MiB), 64 * 1024));
        await store.writeAt('u1', MiB, chunksOf(data.subarray(MiB), 64 * 1024));
        await settleHashing(); // the first 3 MiB are hashed ahead by now
        await store.writeAt('u1', 0, chunksOf(other, 64 * 1024));
        await assert.rejects(store.commitUpload('u1', data.length, hashBuffer(data)), isYokeError('HashMismatch', 400));
        const onDisk = Buffer.concat([other, data.subarray(MiB)]);
        assert.equal((await store.commitUpload('u1', data.length, hashBuffer(onDisk))).hash, hashBuffer(onDisk));
        await store.close();
      }));

    it('bytes written by another process (another store on the same directory) are caught too', () =>
      inFreshRoot(async (root) => {
        const first = await LocalBlobStore.open(root);
        const second = await LocalBlobStore.open(root);
        const data = randomBytes(2 * MiB);
        const other = randomBytes(2 * MiB);
        await first.writeAt('u2', 0, chunksOf(data, 64 * 1024));
        await settleHashing();
        await second.writeAt('u2', 0, chunksOf(other, 64 * 1024));
        await assert.rejects(first.commitUpload('u2', data.length, hashBuffer(data)), isYokeError('HashMismatch', 400));
        assert.equal((await first.commitUpload('u2', other.length, hashBuffer(other))).hash, hashBuffer(other));
        await first.close();
        await second.close();
      }));

    it('a completion cuts off a write whose request stalled (409) instead of waiting for it', () =>
      inFreshRoot(async (root) => {
        const store = await LocalBlobStore.open(root);
        // The completion starts once the stalled write is under way, or while it is still getting ready.
        for (const [id, started] of [['u5', true], ['u5b', false]] as const) {
          const data = randomBytes(2 * MiB);
          await store.writeAt(id, 0, chunksOf(data, 64 * 1024));
          const stalled = new PassThrough(); // a request body: a resend of the same bytes whose client went silent
          stalled.write(data.subarray(0, 1000));
          const resend = assert.rejects(store.writeAt(id, 0, stalled), isYokeError('Conflict', 409));
          if (started) await settleHashing();
          assert.deepEqual(await store.commitUpload(id, data.length, hashBuffer(data)), { hash: hashBuffer(data), size: data.length, created: true });
          await resend;
          assert.equal(stalled.destroyed, true, 'the stalled body was closed');
        }
        await store.close();
      }));

    it('bytes another process writes after a completion began never reach the published blob, whichever process created the file', () =>
      inFreshRoot(async (root) => {
        // Completed by the creator (published in place), or by the other process (a verified copy).
        for (const [id, completerCreated] of [['u6', true], ['u7', false]] as const) {
          const creator = await LocalBlobStore.open(root);
          const other = await LocalBlobStore.open(root);
          const [completer, lateWriter] = completerCreated ? [creator, other] : [other, creator];
          const data = randomBytes(2 * MiB);
          await creator.writeAt(id, 0, chunksOf(data, 64 * 1024));
          let release!: () => void;
          const gate = new Promise<void>((resolve) => (release = resolve));
          async function* lateBytes() {
            await gate; // the writer has opened the file and waits for its client …
            yield randomBytes(MiB); // … whose bytes arrive after the completion
          }
          const late = lateWriter.writeAt(id, 0, lateBytes());
          await settleHashing();
          const result = await completer.commitUpload(id, data.length, hashBuffer(data));
          release();
          await late.catch(() => {});
          assert.equal(result.hash, hashBuffer(data));
          assert.deepEqual(await readAll(await completer.get(result.hash)), data);
          await creator.close();
          await other.close();
        }
      }));

    it('a failed completion puts the file back without replacing one another process created meanwhile, and marks it shared', () =>
      inFreshRoot(async (root) => {
        const first = await LocalBlobStore.open(root);
        const second = await LocalBlobStore.open(root);
        const data = randomBytes(32 * MiB);
        await first.writeAt('u8', 0, chunksOf(data, MiB));
        const staged = join(root, 'uploads', 'u8', 'in-place');
        const failing = assert.rejects(first.commitUpload('u8', data.length, hashBuffer(randomBytes(3))), isYokeError('HashMismatch', 400));
        while ((await readdir(join(root, 'uploads', 'u8'))).includes('in-place')) await new Promise((resolve) => setImmediate(resolve));
        const theirs = randomBytes(1000);
        await second.writeAt('u8', 0, chunksOf(theirs, 1000)); // creates a new staged file while the first verifies
        await failing;
        assert.deepEqual((await readFile(staged)).subarray(0, 1000), theirs);
        assert.ok((await readdir(join(root, 'uploads', 'u8'))).includes('shared'));
        await first.close();
        await second.close();
      }));

    it('a write that starts while the upload is being completed is refused (409), and the completion is intact', () =>
      inFreshRoot(async (root) => {
        const store = await LocalBlobStore.open(root);
        const data = randomBytes(2 * MiB);
        await store.writeAt('u3', 0, chunksOf(data, 64 * 1024));
        const completing = store.commitUpload('u3', data.length, hashBuffer(data));
        await assert.rejects(store.writeAt('u3', 0, chunksOf(randomBytes(10), 10)), isYokeError('Conflict', 409));
        assert.deepEqual(await completing, { hash: hashBuffer(data), size: data.length, created: true });
        assert.deepEqual(await readAll(await store.get(hashBuffer(data))), data);
        await store.close();
      }));
  });

  it('stores objects sharded by the zero-padded hash', () =>
    inFreshRoot(async (root) => {
      const store = await LocalBlobStore.open(root);
      const data = randomBytes(10);
      const { hash } = await store.put(chunksOf(data, 10));
      const padded = hash.padStart(32, '0');
      assert.deepEqual(await readdir(join(root, 'objects', padded.slice(0, 2))), [padded.slice(2)]);
      await store.close();
    }));
});
