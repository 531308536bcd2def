import type { Readable } from 'node:stream';
import { NotFound, YokeError } from '../core/errors.js';
import { hashBuffer } from '../core/hash.js';
import { SMALL_READ_BYTES, type BlobStore, type ByteRange, type PutResult } from '../storage/blob-store.js';
import type { MetaStore, RepoRecord } from '../storage/meta-store.js';
import { chooseGzipLevel, findRepoBlobSizes, resolveBatch, versionBlobsMissing, versionsTarGz, type RequestedVersion } from './version-download.js';
import { WeightedLru } from './weighted-lru.js';

/** Bytes of small whole blobs kept in memory for repeated GETs (each at most SMALL_READ_BYTES). */
export const SMALL_BLOB_CACHE_BYTES = 32 * 1024 * 1024;
/** What an entry of it costs beyond the bytes (its key, map entry and buffer object), counted in its weight. */
const CACHE_ENTRY_OVERHEAD = 200;

/**
 * The blob writes of one request. They share one durability barrier, taken by `commit` once every
 * write is done (a crash before it can only lose blobs, never expose part of one).
 */
export interface BlobWrites {
  put(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options?: { expectedHash?: string; maxBytes?: number }): Promise<PutResult>;
  commit(): Promise<void>;
}

/**
 * Content blobs ("versions", as Oxen calls them) as a repository sees them: stored by requests
 * that carry them, held by a repository once recorded, read back whole, by range or in batches.
 * What a repository holds is answered from its record (`repo_blobs`), never by listing the store.
 */
export class VersionService {
  /**
   * Small blobs read whole, verified against their hash: a GET of a small file costs three thread-pool trips
   * (open, read, close), more CPU than the rest of the request. A blob's bytes never change, so a copy
   * stays right on every backend and across processes.
   */
  private readonly smallBlobs = new WeightedLru<Buffer>(SMALL_BLOB_CACHE_BYTES);

  constructor(
    private readonly meta: MetaStore,
    private readonly blobs: BlobStore,
  ) {}

  /** Starts the blob writes of one request (multipart parts are stored as they arrive). */
  startWrites(): BlobWrites {
    const batch = this.blobs.createBatch();
    return {
      put: (source, options) => this.blobs.put(source, { ...options, batch }),
      commit: () => batch.commit(),
    };
  }

  /** Records blobs as held by the repository (each hash once). */
  async recordHeld(repo: RepoRecord, blobs: Array<{ hash: string; size: number }>): Promise<void> {
    const unique = new Map(blobs.map((b) => [b.hash, b.size]));
    if (unique.size > 0) await this.meta.addRepoBlobs(repo.id, [...unique].map(([hash, size]) => ({ hash, size })));
  }

  /** Sizes of the blobs among `hashes` that the repository holds. */
  heldSizes(repo: RepoRecord, hashes: string[]): Promise<Map<string, number>> {
    return findRepoBlobSizes(this.meta, repo.id, hashes);
  }

  /** The size of a blob the repository holds and whose bytes are there; null otherwise (a recorded blob whose bytes are gone must be re-uploaded). */
  async sizeOf(repo: RepoRecord, hash: string): Promise<number | null> {
    const size = (await this.heldSizes(repo, [hash])).get(hash);
    return size !== undefined && (await this.blobs.stat(hash)) === size ? size : null;
  }

  /**
   * The tar.gz of a batch download, streamed; 404 naming the missing blobs before any byte is sent.
   * `onFailure` hears of a failure mid-stream (see `versionsTarGz`).
   */
  async batchDownload(repo: RepoRecord, requested: RequestedVersion[], onFailure: (err: Error, consumerGone: boolean) => void): Promise<Readable> {
    const { entries, missing } = await resolveBatch(this.meta, this.blobs, repo.id, requested);
    if (missing.length > 0) throw versionBlobsMissing(missing);
    const level = await chooseGzipLevel(this.blobs, entries);
    return versionsTarGz(this.blobs, entries, level, onFailure);
  }

  /**
   * The bytes of a committed file; a small range as one buffer, anything else streamed. Missing bytes are
   * server-side damage (500), not a missing file (404).
   */
  readCommitted(hash: string): Promise<Readable>;
  readCommitted(hash: string, range: ByteRange): Promise<Readable | Buffer>;
  async readCommitted(hash: string, range?: ByteRange): Promise<Readable | Buffer> {
    try {
      if (range && range.end - range.start < SMALL_READ_BYTES) return await this.readSmall(hash, range);
      return await this.blobs.get(hash, range);
    } catch (err) {
      if (err instanceof NotFound) {
        throw new YokeError(500, 'internal_server_error', 'Version blob missing', `The bytes of ${hash} are missing from the blob store`, { type: 'version_blob_missing', hash });
      }
      throw err;
    }
  }

  /** A small range from the cache of whole small blobs; a read from the start that hashes to `hash` was the whole blob and is kept. */
  private async readSmall(hash: string, range: ByteRange): Promise<Buffer> {
    const whole = this.smallBlobs.get(hash);
    if (whole && range.end < whole.length) return whole.subarray(range.start, range.end + 1);
    const bytes = await this.blobs.read(hash, range);
    if (range.start === 0 && hashBuffer(bytes) === hash) {
      // A small buffer may be a slice of Node's shared 8 KiB pool, which it would keep alive: keep a copy of its own.
      const own = bytes.byteLength === bytes.buffer.byteLength ? bytes : Buffer.allocUnsafeSlow(bytes.length);
      if (own !== bytes) bytes.copy(own);
      this.smallBlobs.set(hash, own, own.length + CACHE_ENTRY_OVERHEAD);
    }
    return bytes;
  }
}
