import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createStreamHasher } from '../core/hash.js';
import { HashMismatch, NotFound, PayloadTooLarge, BadRequest } from '../core/errors.js';
import { normalizeHash } from '../core/hash.js';
import type { BlobStore, ByteRange, PutOptions, PutResult } from './blob-store.js';

/**
 * Blobs on the local filesystem: `<root>/objects/<h[0..2]>/<h[2..]>`. Each write goes to
 * `<root>/tmp/`, is hashed while streaming, fsynced, verified, then renamed into place and the
 * shard directory fsynced, so a crash leaves either no object or a complete one.
 */
export class LocalBlobStore implements BlobStore {
  private readonly objectsDir: string;
  private readonly tmpDir: string;

  private constructor(root: string) {
    this.objectsDir = join(root, 'objects');
    this.tmpDir = join(root, 'tmp');
  }

  static async open(root: string): Promise<LocalBlobStore> {
    const store = new LocalBlobStore(root);
    // Leftover temp files belong to writes that never completed; they are never visible.
    await rm(store.tmpDir, { recursive: true, force: true });
    await mkdir(store.tmpDir, { recursive: true });
    await mkdir(store.objectsDir, { recursive: true });
    // Pre-create the 256 shard directories so a write never races a mkdir.
    const existing = new Set(await readdir(store.objectsDir));
    for (let i = 0; i < 256; i++) {
      const shard = i.toString(16).padStart(2, '0');
      if (!existing.has(shard)) await mkdir(join(store.objectsDir, shard), { recursive: true });
    }
    return store;
  }

  private pathOf(hash: string): string {
    const canonical = normalizeHash(hash);
    if (canonical === null) throw new BadRequest(`Invalid hash: ${hash}`);
    // Short hashes (leading zeros stripped) are padded for sharding only.
    const padded = canonical.padStart(32, '0');
    return join(this.objectsDir, padded.slice(0, 2), padded.slice(2));
  }

  async put(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    const expected = options.expectedHash === undefined ? undefined : normalizeHash(options.expectedHash);
    if (expected === null) throw new BadRequest(`Invalid hash: ${options.expectedHash}`);
    const tmpPath = join(this.tmpDir, randomUUID());
    const handle = await open(tmpPath, 'wx');
    let size = 0;
    let committed = false;
    try {
      const hasher = await createStreamHasher();
      for await (const chunk of source) {
        size += chunk.byteLength;
        if (options.maxBytes !== undefined && size > options.maxBytes) {
          throw new PayloadTooLarge(`Content exceeds the limit of ${options.maxBytes} bytes`);
        }
        hasher.update(chunk);
        await handle.write(chunk);
      }
      const hash = hasher.digest();
      if (expected !== undefined && expected !== hash) throw new HashMismatch(expected, hash);
      const target = this.pathOf(hash);
      if ((await this.stat(hash)) !== null) {
        return { hash, size, created: false };
      }
      await handle.sync();
      await handle.close();
      await rename(tmpPath, target);
      committed = true;
      await fsyncDir(join(target, '..'));
      return { hash, size, created: true };
    } finally {
      await handle.close().catch(() => {});
      if (!committed) await rm(tmpPath, { force: true });
    }
  }

  async stat(hash: string): Promise<number | null> {
    try {
      return (await stat(this.pathOf(hash))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async get(hash: string, range?: ByteRange): Promise<Readable> {
    const path = this.pathOf(hash);
    // Open first so a missing blob is an error here, not inside the stream.
    const handle = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new NotFound(`Blob not found: ${hash}`);
      throw err;
    });
    return createReadStream('', { fd: handle, start: range?.start, end: range?.end, autoClose: true, highWaterMark: 1 << 20 });
  }

  async delete(hash: string): Promise<void> {
    await rm(this.pathOf(hash), { force: true });
  }

  async close(): Promise<void> {}
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
