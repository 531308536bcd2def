import { spawn, spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { LocalBlobStore } from '../../src/storage/local-blob-store.js';
import { hashBuffer } from '../../src/core/hash.js';
import { blobStoreConformance, chunksOf, failingSource, isYokeError, readAll } from './blob-store-conformance.js';

const MiB = 1024 * 1024;
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

  it('an in-place write the filesystem refuses while the request still streams is reported by putPart, not left unhandled', () =>
    inFreshRoot(async (root) => {
      const store = await LocalBlobStore.open(root);
      const piece = randomBytes(1024 * 1024);
      async function* stillStreaming() {
        yield piece; // one full batch: its write starts (and fails: past the largest file size) …
        await new Promise((resolve) => setTimeout(resolve, 100)); // … while the request is still arriving
        yield piece;
      }
      await assert.rejects(store.putPart('u1', 2 ** 50, 2 ** 50, stillStreaming()), (err: NodeJS.ErrnoException) => ['EFBIG', 'EINVAL'].includes(err.code ?? ''));
      await store.close();
    }));

  it('parts with offsets land in one in-place file that completion renames: no byte is copied', () =>
    inFreshRoot(async (root) => {
      const store = await LocalBlobStore.open(root);
      const data = randomBytes(3 * MiB);
      const parts = [];
      for (const offset of [2 * MiB, 0, MiB]) parts.push({ part: offset, offset, ...(await store.putPart('u2', offset, offset, chunksOf(data.subarray(offset, offset + MiB), 64 * 1024))) });
      assert.deepEqual(await readdir(join(root, 'uploads', 'u2')), ['in-place']);
      const staged = await stat(join(root, 'uploads', 'u2', 'in-place'));
      await store.completeParts('u2', parts, data.length, hashBuffer(data), null);
      const padded = hashBuffer(data).padStart(32, '0');
      assert.equal((await stat(join(root, 'objects', padded.slice(0, 2), padded.slice(2)))).ino, staged.ino);
      await store.close();
    }));

  it('small whole blobs (written on the worker thread): many at once, one already stored touched and not rewritten, nothing left in tmp', () =>
    inFreshRoot(async (root) => {
      const store = await LocalBlobStore.open(root);
      const present = randomBytes(4_096);
      const { hash: presentHash } = await store.put([present]);
      const presentPath = join(root, 'objects', presentHash.padStart(32, '0').slice(0, 2), presentHash.padStart(32, '0').slice(2));
      const long = new Date(Date.now() - 3_600_000);
      await utimes(presentPath, long, long);
      const inode = (await stat(presentPath)).ino;

      const batch = store.createBatch();
      const blobs = Array.from({ length: 300 }, (_, i) => randomBytes(1 + ((i * 97) % 8_192)));
      const results = await Promise.all([store.put([present], { batch, expectedHash: presentHash }), ...blobs.map((b) => store.put([b], { batch }))]);
      await batch.commit();
      assert.deepEqual(results[0], { hash: presentHash, size: 4_096, created: false });
      assert.equal((await stat(presentPath)).ino, inode, 'a stored blob is not written again');
      assert.ok((await stat(presentPath)).mtimeMs > long.getTime() + 1_000, 'a reused blob is marked as reused for gc');
      for (const [i, b] of blobs.entries()) {
        assert.deepEqual(results[i + 1], { hash: hashBuffer(b), size: b.length, created: true });
        assert.deepEqual(await readAll(await store.get(hashBuffer(b))), b);
      }
      assert.deepEqual(await readdir(join(root, 'tmp')), []);
      await store.close();
    }));

  it('a small write the file system refuses rejects with its error code and leaves no temp file', () =>
    inFreshRoot(async (root) => {
      const store = await LocalBlobStore.open(root);
      const data = randomBytes(100);
      const padded = hashBuffer(data).padStart(32, '0');
      await rm(join(root, 'objects', padded.slice(0, 2)), { recursive: true });
      await assert.rejects(store.put([data]), (err: NodeJS.ErrnoException) => err.code === 'ENOENT' && err.syscall === 'rename');
      assert.deepEqual(await readdir(join(root, 'tmp')), []);
      await store.close();
    }));

  it('a process killed mid-batch leaves no half-visible blob: every object holds the bytes its name says, and its temp files go at the next open', () =>
    inFreshRoot(async (root) => {
      // A child writes small blobs 64 at a time, in batches of 500, until it is killed.
      const script = `
        import { randomBytes } from 'node:crypto';
        import { LocalBlobStore } from ${JSON.stringify(new URL('../../src/storage/local-blob-store.ts', import.meta.url).pathname)};
        const store = await LocalBlobStore.open(${JSON.stringify(root)});
        for (let round = 0; ; round++) {
          const batch = store.createBatch();
          await Promise.all(Array.from({ length: 64 }, async () => {
            for (let i = 0; i < 8; i++) await store.put([randomBytes(1 + Math.floor(Math.random() * 16384))], { batch });
          }));
          await batch.commit();
          if (round === 0) console.log('writing');
        }`;
      const scriptPath = join(root, 'writer.mts');
      await writeFile(scriptPath, script);
      const child = spawn(process.execPath, ['--import', 'tsx', scriptPath], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve, reject) => {
        child.stdout!.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`writer exited (${code}) before writing`)));
      });
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 300));
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      let objects = 0;
      for (const shard of await readdir(join(root, 'objects'))) {
        for (const name of await readdir(join(root, 'objects', shard))) {
          const bytes = await readFile(join(root, 'objects', shard, name));
          assert.equal(hashBuffer(bytes).padStart(32, '0'), shard + name, `object ${shard}/${name} holds other bytes than its name says`);
          objects += 1;
        }
      }
      assert.ok(objects >= 500, `the writer stored ${objects} blobs before the kill`);
      const reopened = await LocalBlobStore.open(root);
      assert.deepEqual(await readdir(join(root, 'tmp')), [], "the killed process's temp files are removed");
      await reopened.close();
    }));

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
