import type { FastifyRequest } from 'fastify';
import { createGunzip, gunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { HashMismatch } from '../core/errors.js';
import { hashStream } from '../core/hash.js';
import type { PutResult } from '../services/records.js';
import type { BlobWrites } from '../services/versions.js';
import { BackgroundWrites, multipartParts, readHead, SMALL_PART_BYTES } from './multipart.js';
import { defaultIsFilePart, type FilePart, type IsFilePart } from './multipart-reader.js';

/**
 * Multipart parts that each carry one blob, stored in the blob store with per-part outcomes:
 * `POST …/versions` (filename = content hash, verified) and workspace uploads (filename = path,
 * hashed by the server). Parts named `file` or `file[]`; a part `Content-Type` of
 * `application/gzip` (or `application/x-gzip`) means the bytes are gunzipped first, within a cap.
 *
 * Memory stays flat: a part of up to SMALL_PART_BYTES (compressed) is buffered and stored in the
 * background, at most MAX_WRITES_IN_FLIGHT at once, while parsing continues; a larger part is
 * streamed (gunzip → hash → temp file) before the parser moves on. All writes of a request share
 * one WriteBatch, so durability costs one barrier per request.
 */

const FILE_FIELDS = new Set(['file', 'file[]']);
const GZIP_TYPES = new Set(['application/gzip', 'application/x-gzip']);
/** A gzip part whose decompressed bytes fit in this is decompressed into memory and stored as one buffer. */
const SMALL_DECOMPRESSED_BYTES = 512 * 1024;
/** zlib output chunk size for streamed decompression (fewer, larger writes than the 16 KiB default). */
const GUNZIP_CHUNK_BYTES = 64 * 1024;

const gunzipBuffer = promisify(gunzip);

export interface ReceiveOptions {
  /** Largest decompressed size of one gzip part; larger parts fail (gzip bombs). */
  cap: number;
  /** Decides from a part's filename whether to store it, and what hash its bytes must have. */
  accept(filename: string): { expectedHash?: string } | { error: string };
  /** The failure reported for a part without a filename. */
  missingFilename: string;
}

export type PartOutcome =
  | { ok: true; filename: string; hash: string; size: number; created: boolean }
  | { ok: false; filename: string; error: string };

/** A problem with one part: reported in its outcome, the rest of the request carries on. */
class PartFailure extends Error {}

/** A `file`/`file[]` part is a file even without a filename (it then fails alone). */
const isFilePart: IsFilePart = (name, contentType, filename) => FILE_FIELDS.has(name) || defaultIsFilePart(name, contentType, filename);

/**
 * Reads every part and stores the blobs. Resolves with one outcome per `file`/`file[]` part, in
 * order, once every write is done and the batch is committed. A malformed body rejects (400) after
 * all writes in flight have settled, so nothing is left in the blob store's temp directory.
 */
export async function receiveBlobParts(request: FastifyRequest, blobs: BlobWrites, options: ReceiveOptions): Promise<PartOutcome[]> {
  // Filled in as writes finish. Not one promise per part: kept to the request's end, 10,000 of them (and what
  // they hold) reached the old generation in every large request.
  const outcomes: Array<PartOutcome | undefined> = [];
  const background = new BackgroundWrites();
  try {
    for await (const part of multipartParts(request, isFilePart)) {
      // Parts under other names are skipped by the reader.
      if (!FILE_FIELDS.has(part.name)) continue;
      if (part.type !== 'file') {
        outcomes.push({ ok: false, filename: '', error: options.missingFilename });
        continue;
      }
      const index = outcomes.push(undefined) - 1;
      await receivePart(part, blobs, options, background, (outcome) => (outcomes[index] = outcome));
    }
  } catch (err) {
    await background.idle();
    // Blobs already published stay (harmless orphans); make them durable like any other.
    await blobs.commit().catch(() => {});
    throw err;
  }
  await background.idle();
  await blobs.commit();
  // A write's failure that is not the part's own (a failing disk, a bug): ours, and the whole request fails.
  await background.finish();
  return outcomes as PartOutcome[];
}

/**
 * Stores one part and hands its outcome to `done`. A small part is read whole and its write runs in
 * the background (this resolves before `done` is called); a large one is streamed to the end before
 * this resolves, so the parser can move on to the next part either way. Per-part problems become a
 * failed outcome; failures that are not the part's reject (the body) or are kept by `background`.
 */
async function receivePart(
  file: FilePart,
  blobs: BlobWrites,
  options: ReceiveOptions,
  background: BackgroundWrites,
  done: (outcome: PartOutcome) => void,
): Promise<void> {
  const { cap } = options;
  const sent = file.filename ?? '';
  const fail = (error: string): PartOutcome => ({ ok: false, filename: sent, error });
  const accepted = sent === '' ? { error: options.missingFilename } : options.accept(sent);
  if ('error' in accepted) return done(fail(accepted.error));
  const expected = accepted.expectedHash;
  const gzip = GZIP_TYPES.has(file.contentType);
  const tooLarge = () => new PartFailure(`File part ${sent} exceeds the server's size limit`);

  const { head, finished } = await readHead(file, SMALL_PART_BYTES);
  if (finished) {
    if (file.truncated) return done(fail(tooLarge().message));
    const bytes = head.length === 1 ? head[0] : Buffer.concat(head);
    return background.start(() => settle(sent, storeBuffered(bytes, gzip, expected, blobs, cap)), done);
  }

  // Streamed. After a failure, what is left of the part is skipped by the reader.
  async function* body(): AsyncGenerator<Buffer> {
    yield* head;
    yield* file;
    if (file.truncated) throw tooLarge();
  }
  // The blob store verifies without rewriting when the blob is already stored.
  done(await settle(sent, blobs.put(gzip ? capped(gunzipChunks(body()), cap) : body(), { expectedHash: expected })));
}

/** Turns a part's store result into an outcome; errors that are not the part's own are rethrown. */
async function settle(sent: string, store: Promise<PutResult>): Promise<PartOutcome> {
  try {
    const { hash, size, created } = await store;
    return { ok: true, filename: sent, hash, size, created };
  } catch (err) {
    const error = partError(err);
    if (error === null) throw err;
    return { ok: false, filename: sent, error };
  }
}

function partError(err: unknown): string | null {
  if (err instanceof PartFailure) return err.message;
  if (err instanceof HashMismatch) return `Failed to store version: ${err.message}`;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('Z_')) return `Failed to decompress version: not gzip (${(err as Error).message})`;
  return null;
}

/**
 * A buffered part. Plain bytes go to the blob store whole (it hashes first and skips the write when
 * the blob exists). Gzip bytes are decompressed in memory when small; otherwise they are first
 * decompressed only to hash them (no disk write for a bomb or a wrong hash, no rewrite of a stored
 * blob), then — only if verified and new — decompressed again into the blob store.
 */
async function storeBuffered(bytes: Buffer, gzip: boolean, expected: string | undefined, blobs: BlobWrites, cap: number): Promise<PutResult> {
  if (!gzip) return blobs.put([bytes], { expectedHash: expected });
  const inMemory = Math.min(SMALL_DECOMPRESSED_BYTES, cap);
  let data: Buffer | null = null;
  try {
    data = await gunzipBuffer(bytes, { maxOutputLength: inMemory });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_BUFFER_TOO_LARGE') throw err;
    if (inMemory === cap) throw decompressedTooLarge(cap);
  }
  if (data !== null) return blobs.put([data], { expectedHash: expected });
  if (expected === undefined) return blobs.put(capped(gunzipChunks([bytes]), cap));
  const { hash } = await hashStream(capped(gunzipChunks([bytes]), cap));
  if (hash !== expected) throw new HashMismatch(expected, hash);
  return blobs.put(gunzipChunks([bytes]), { expectedHash: expected, maxBytes: cap });
}



/** Decompresses a gzip stream chunk by chunk (zlib runs on the thread pool; backpressure keeps memory flat). */
async function* gunzipChunks(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Buffer> {
  const inflate = createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES });
  // A source failure destroys `inflate` with that error, which the loop below rethrows.
  const feeding = pipeline(source, inflate).catch(() => {});
  try {
    for await (const chunk of inflate) yield chunk as Buffer;
  } finally {
    inflate.destroy();
    await feeding;
  }
}

/** Passes chunks through, failing the part once more than `cap` bytes have come out. */
async function* capped(source: AsyncIterable<Buffer>, cap: number): AsyncGenerator<Buffer> {
  let size = 0;
  for await (const chunk of source) {
    size += chunk.byteLength;
    if (size > cap) throw decompressedTooLarge(cap);
    yield chunk;
  }
}

function decompressedTooLarge(cap: number): PartFailure {
  return new PartFailure(`Failed to decompress: decompressed size exceeds the limit of ${cap} bytes`);
}
