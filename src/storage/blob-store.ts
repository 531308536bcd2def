import type { Readable } from 'node:stream';

/** Inclusive byte range, as HTTP `Range` expresses it. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface PutOptions {
  /** If given, the bytes must hash to this (canonical) value or nothing is stored. */
  expectedHash?: string;
  /** Refuse (PayloadTooLarge) once more than this many bytes arrive. */
  maxBytes?: number;
  /**
   * Defer the final durability barrier to `batch.commit()`. The blob is complete and verified
   * when `put` returns either way; a crash before the commit can only lose it, never expose part.
   */
  batch?: WriteBatch;
}

/** Puts whose durability barrier is taken once for all of them (many small files per request). */
export interface WriteBatch {
  commit(): Promise<void>;
}

export interface StoredBlob {
  hash: string;
  size: number;
  /** Last write, or last put that found it already stored (ms since the epoch). */
  touchedAt: number;
}

export interface PutResult {
  hash: string;
  size: number;
  /** False when the blob was already present (deduplicated). */
  created: boolean;
}

/**
 * Content-addressed file bytes keyed by canonical xxh3-128 hex. Writes are atomic and verified:
 * a blob is visible only once complete and hashed; a failed or mismatching write leaves nothing.
 */
export interface BlobStore {
  put(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options?: PutOptions): Promise<PutResult>;
  createBatch(): WriteBatch;
  /**
   * Bytes that new blobs can still take where they land (free space of the local file system), or
   * null when the store has no fixed bound (an object store).
   */
  availableBytes(): Promise<number | null>;
  /** Size in bytes, or null when absent. */
  stat(hash: string): Promise<number | null>;
  /** Every stored blob with its size and when it was last written or reused by a put, in no set order. */
  list(): AsyncIterable<StoredBlob>;
  /**
   * Removes a blob unless a put wrote or reused it at or after `idleSince` (ms since the epoch),
   * also when that put races this call: gc's way to delete only what nobody is storing again. True if removed.
   */
  deleteIfIdle(hash: string, idleSince: number): Promise<boolean>;
  /** Throws NotFound when absent. `range` is inclusive and must lie within the blob. */
  get(hash: string, range?: ByteRange): Promise<Readable>;
  delete(hash: string): Promise<void>;

  /**
   * Staging for uploads that arrive in parts (chunked and resumable uploads). A part is stored
   * atomically: whole or absent, and a re-sent part replaces the earlier one. `part` is a decimal
   * number (a chunk index or a byte offset); `uploadId` is chosen by the server.
   */
  putPart(uploadId: string, part: number, source: AsyncIterable<Uint8Array>, options?: { maxBytes?: number }): Promise<number>;
  /** Streams one stored part. */
  getPart(uploadId: string, part: number): Promise<Readable>;
  /**
   * Writes bytes at `offset` of an upload assembled in place (resumable uploads by byte offset).
   * Durable when it returns; a re-sent range simply overwrites. Returns the bytes written.
   */
  writeAt(uploadId: string, offset: number, source: AsyncIterable<Uint8Array>, options?: { maxBytes?: number }): Promise<number>;
  /** Streams bytes [start, end) written with `writeAt` (NotFound if nothing was). */
  readAt(uploadId: string, start: number, end: number): Promise<Readable>;
  /**
   * Turns the first `size` bytes written with `writeAt` into a blob, verified against
   * `expectedHash` (HashMismatch otherwise, and nothing becomes visible). The staging is consumed;
   * after a failure it stays. Writes still under way are cut off (they fail; a stream source is
   * destroyed) and writes that start meanwhile are refused with Conflict, so no byte lands in the
   * file once it is verified.
   */
  commitUpload(uploadId: string, size: number, expectedHash: string): Promise<PutResult>;
  /** Removes every part and in-place write of an upload (idempotent). */
  deleteParts(uploadId: string): Promise<void>;
  /** Uploads that have staged parts or in-place writes, with the time of their last write (ms). */
  listStagedUploads(): AsyncIterable<{ uploadId: string; touchedAt: number }>;

  close(): Promise<void>;
}
