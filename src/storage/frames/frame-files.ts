/**
 * Version files as local paths DuckDB can read in place. A local blob store's own file is used as it is; a
 * blob held only remotely (S3) is copied once into `<scratchDir>/blobs/`, verified against its hash while it
 * streams, and renamed into place, so a half-copied file is never read. Copies are a cache: `evict` or
 * deleting the directory loses nothing.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomUUID } from 'node:crypto';
import { createStreamHasher, normalizeHash } from '../../core/hash.js';
import { BadRequest, NotFound } from '../../core/errors.js';
import type { BlobStore } from '../blob-store.js';

export class FrameFiles {
  private readonly cacheDir: string;
  private readonly copying = new Map<string, Promise<string>>();

  constructor(private readonly blobs: BlobStore, scratchDir: string) {
    this.cacheDir = join(scratchDir, 'blobs');
  }

  /** A local file holding the blob's bytes (NotFound from the store when it has no such blob). */
  async pathOf(hash: string): Promise<string> {
    const canonical = normalizeHash(hash);
    if (canonical === null) throw new BadRequest(`Invalid hash: ${hash}`);
    const own = this.blobs.localPath?.(canonical);
    if (own) {
      if ((await this.blobs.stat(canonical)) === null) throw new NotFound(`No version file ${canonical}`);
      return own;
    }
    const cached = join(this.cacheDir, canonical);
    if (await stat(cached).catch(() => null)) return cached;
    let copy = this.copying.get(canonical);
    if (!copy) {
      copy = this.copy(canonical, cached).finally(() => this.copying.delete(canonical));
      this.copying.set(canonical, copy);
    }
    return copy;
  }

  private async copy(hash: string, target: string): Promise<string> {
    await mkdir(this.cacheDir, { recursive: true });
    const temporary = `${target}.${randomUUID()}.part`;
    const hasher = await createStreamHasher();
    try {
      const hashing = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          hasher.update(chunk);
          done(null, chunk);
        },
      });
      await pipeline(await this.blobs.get(hash), hashing, createWriteStream(temporary));
      const actual = hasher.digest();
      // The store's own bytes are wrong: a server fault (fsck reports it), not the client's.
      if (actual !== hash) throw new Error(`stored blob ${hash} reads back as ${actual}`);
      await rename(temporary, target);
      return target;
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
  }
}
