import type { FileHandle } from 'node:fs/promises';
import type { StreamHasher } from '../core/hash.js';

/**
 * Streamed bytes are gathered into one positional writev of up to this many bytes: a request
 * delivers ~64 KiB pieces and every write is a thread-pool round trip. On the 2 GiB chunked bench,
 * 1 MiB batches cut the server's CPU time roughly in half against one write per piece.
 */
const WRITE_BATCH_BYTES = 1 << 20;
/** Linux's IOV_MAX: the most pieces one writev takes. */
const MAX_IOVECS = 1024;
/** Read size when hashing a file back from disk. */
const HASH_READ_BYTES = 1 << 20;

export interface StreamToFileOptions {
  /** File offset of the first byte. */
  position?: number;
  /** Stop with `tooLarge()` before more than this many bytes are taken. */
  maxBytes?: number;
  tooLarge?: (maxBytes: number) => Error;
  /** Sees every piece, in order, before it is written (hashing). */
  onPiece?: (piece: Uint8Array) => void;
}

/**
 * Copies `source` into `handle` (or only through `onPiece` when `handle` is null), one batch
 * written while the next arrives. Pieces are kept until written, so the source must not reuse
 * them (Node streams never do). Returns the bytes taken; once it settles, no write is under way.
 */
export async function streamToFile(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  handle: FileHandle | null,
  options: StreamToFileOptions = {},
): Promise<number> {
  const { position = 0, maxBytes, onPiece } = options;
  let batch: Uint8Array[] = [];
  let batchBytes = 0;
  let received = 0;
  let writing: Promise<void> = Promise.resolve();
  const flush = async () => {
    if (batchBytes === 0 || handle === null) return;
    const pieces = batch;
    const at = position + received - batchBytes;
    batch = [];
    batchBytes = 0;
    await writing;
    writing = writeAllAt(handle, pieces, at);
    // A failure is reported where `writing` is next awaited, not as an unhandled rejection meanwhile.
    writing.catch(() => {});
  };
  try {
    for await (const piece of source) {
      if (maxBytes !== undefined && received + piece.byteLength > maxBytes) {
        throw (options.tooLarge ?? defaultTooLarge)(maxBytes);
      }
      received += piece.byteLength;
      onPiece?.(piece);
      if (handle === null) continue;
      batch.push(piece);
      batchBytes += piece.byteLength;
      if (batchBytes >= WRITE_BATCH_BYTES || batch.length >= MAX_IOVECS) await flush();
    }
    await flush();
    await writing;
    return received;
  } finally {
    await writing.catch(() => {});
  }
}

function defaultTooLarge(maxBytes: number): Error {
  return new RangeError(`More than ${maxBytes} bytes`);
}

/** Writes every byte of `pieces` at `position`, continuing after short writes. */
async function writeAllAt(handle: FileHandle, pieces: Uint8Array[], position: number): Promise<void> {
  let rest = pieces;
  let at = position;
  while (rest.length > 0) {
    const { bytesWritten } = await handle.writev(rest, at);
    if (bytesWritten === 0 && rest.some((piece) => piece.byteLength > 0)) throw new Error(`writev at ${at} made no progress`);
    at += bytesWritten;
    let skip = bytesWritten;
    let first = 0;
    while (first < rest.length && skip >= rest[first].byteLength) skip -= rest[first++].byteLength;
    rest = rest.slice(first);
    if (skip > 0) rest[0] = rest[0].subarray(skip);
  }
}

/** Feeds bytes [start, end) of an open file to `hasher`. */
export async function hashFileRange(handle: FileHandle, start: number, end: number, hasher: StreamHasher): Promise<void> {
  const buffer = Buffer.allocUnsafe(Math.min(HASH_READ_BYTES, Math.max(end - start, 1)));
  for (let at = start; at < end; ) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, end - at), at);
    if (bytesRead === 0) throw new Error(`File ends at ${at} bytes, expected ${end}`);
    hasher.update(buffer.subarray(0, bytesRead));
    at += bytesRead;
  }
}
