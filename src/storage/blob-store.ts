import type { Readable } from 'node:stream';

/** Inclusive byte range, as HTTP `Range` expresses it. */
/** Ranges up to this length are read whole (`BlobStore.read`) rather than streamed: a small file's bytes are one chunk anyway. */
export const SMALL_READ_BYTES = 64 * 1024;

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

/** One stored part of a staged upload, as the metadata store records it. */
export interface StagedPart {
  /** Unique within its upload: a chunk index, or a byte offset for uploads addressed by offset. */
  part: number;
  /** Where its bytes begin in the assembled file, when known as it arrived; null: after the part before it. */
  offset: number | null;
  size: number;
  /** The backend's name for this stored attempt ('' when it needs none): a part sent again is a new object. */
  tag: string;
}

/** A hasher's saved state (`StreamHasher.save`) covering the assembled file's bytes [0, through). */
export interface HashFrontier {
  through: number;
  state: Uint8Array;
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
  /**
   * True when every `stat` is a network round trip (an object store): batch downloads then take sizes from
   * the metadata store instead of asking per blob, and a blob gone despite its record cuts the stream short.
   */
  readonly remote?: boolean;
  /** Every stored blob with its size and when it was last written or reused by a put, in no set order. */
  list(): AsyncIterable<StoredBlob>;
  /**
   * Removes a blob unless a put wrote or reused it at or after `idleSince` (ms since the epoch),
   * also when that put races this call: gc's way to delete only what nobody is storing again. True if removed.
   */
  deleteIfIdle(hash: string, idleSince: number): Promise<boolean>;
  /** Throws NotFound when absent. `range` is inclusive and must lie within the blob. */
  get(hash: string, range?: ByteRange): Promise<Readable>;
  /**
   * Bytes `range` of a blob in one buffer of their size, for small ranges (callers bound the length; see
   * SMALL_READ_BYTES): no stream to set up and tear down per file. Throws NotFound when absent.
   */
  read(hash: string, range: ByteRange): Promise<Buffer>;
  /**
   * Many whole small blobs in one call (callers bound the count and sizes), for batch downloads: cheaper than a
   * `read` each where every read costs round trips of its own. NotFound when one is absent. Optional.
   */
  readMany?(blobs: Array<{ hash: string; size: number }>): Promise<Buffer[]>;
  /** Sizes of many blobs (null when absent), cheaper than a `stat` each. Optional, as `readMany`. */
  statMany?(hashes: string[]): Promise<Array<number | null>>;
  /**
   * The blob's own file on this machine, for engines that read files in place (DuckDB), or null when the
   * store keeps no local file (an object store: callers copy the blob to a cache). Does not check presence.
   */
  localPath?(hash: string): string | null;
  delete(hash: string): Promise<void>;

  /**
   * Staging for uploads that arrive in parts, shaped like S3's multipart uploads (lakeFS's block
   * adapter is the model): parts are stored by number, and completion publishes them as one blob,
   * verified against its hash. A part is stored whole or not at all. `uploadId` is chosen by the
   * server; the metadata store records each stored part (`StagedPart`) and guarantees that a part is
   * written by one request at a time and that no part is written while its upload completes.
   *
   * `offset` says where the part's bytes lie in the assembled file, when that is known as it arrives:
   * a backend with in-place writes (the local file system) writes them there, so completion moves no
   * bytes; an object store keeps every part as an object of its own either way.
   */
  putPart(uploadId: string, part: number, offset: number | null, source: AsyncIterable<Uint8Array>, options?: { maxBytes?: number }): Promise<{ size: number; tag: string }>;
  /** Streams a stored part, or bytes [start, end) of it. NotFound when it is gone. */
  getPart(uploadId: string, part: StagedPart, range?: { start: number; end: number }): Promise<Readable>;
  /**
   * Publishes the upload's first `size` bytes, laid out from `parts` (see `layoutParts`), as the blob
   * `expectedHash`. The bytes are hashed from `frontier.through` on (from 0 without a frontier), the
   * frontier's state standing for the bytes before; HashMismatch when they do not hash to `expectedHash`,
   * and then nothing becomes visible. The staging is consumed on success and kept on failure.
   */
  completeParts(uploadId: string, parts: StagedPart[], size: number, expectedHash: string, frontier: HashFrontier | null): Promise<PutResult>;
  /** Removes every staged part of an upload (idempotent). */
  deleteParts(uploadId: string): Promise<void>;
  /** Uploads that have staged parts, with the time of their last write (ms). */
  listStagedUploads(): AsyncIterable<{ uploadId: string; touchedAt: number }>;

  close(): Promise<void>;
}
