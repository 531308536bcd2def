import { finished, type Readable } from 'node:stream';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { promisify } from 'node:util';
import { createGzip, deflateRaw, gunzip } from 'node:zlib';
import { BadRequest, PayloadTooLarge, YokeError } from '../core/errors.js';
import { normalizeHash } from '../core/hash.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { MetaStore } from '../storage/meta-store.js';
import { drained, gzipFailure } from './gzip-failure.js';

/**
 * Batch download of content blobs (COMPAT: "Batch download"): a newline-separated hash list in,
 * a streamed tar.gz out with one regular-file entry per requested hash, named exactly as asked.
 */

/** Largest request body (gzip'd or plain) the batch-download routes read. */
export const MAX_HASH_LIST_BODY_BYTES = 64 * 1024 ** 2;
/** Largest hash list after decompression; a gzip bomb stops here (413). */
export const MAX_HASH_LIST_BYTES = 64 * 1024 ** 2;
/** Most hashes in one batch download (413 beyond). */
export const MAX_BATCH_HASHES = 1_000_000;

const gunzipAsync = promisify(gunzip);
const deflateRawAsync = promisify(deflateRaw);

/** One line of the request: the text as sent (entry name) and its canonical hash. */
export interface RequestedVersion {
  requested: string;
  hash: string;
}

/** A requested blob that is present, with the size its tar entry declares. */
export interface VersionEntry extends RequestedVersion {
  size: number;
}

const isGzip = (body: Buffer) => body.length >= 2 && body[0] === 0x1f && body[1] === 0x8b;

/**
 * Parses a hash-list body: gzip'd (detected by its magic bytes) or plain text. Lines are trimmed,
 * empty lines dropped, order and duplicates kept. A line that is not a hash is a 400 naming it
 * (Oxen drops such lines silently, which turns a client bug into missing files).
 */
export async function parseHashList(body: Buffer | undefined): Promise<RequestedVersion[]> {
  if (!body || body.length === 0) return [];
  let text: Buffer = body;
  if (isGzip(body)) {
    try {
      // maxOutputLength makes zlib stop (RangeError) once the output would pass the cap,
      // so a small bomb never inflates to more than MAX_HASH_LIST_BYTES in memory.
      text = await gunzipAsync(body, { maxOutputLength: MAX_HASH_LIST_BYTES });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError) {
        throw new PayloadTooLarge(`The decompressed hash list exceeds ${MAX_HASH_LIST_BYTES} bytes`);
      }
      throw new BadRequest(`The hash list looks gzip-compressed but cannot be decompressed: ${(err as Error).message}`);
    }
  } else if (body.length > MAX_HASH_LIST_BYTES) {
    throw new PayloadTooLarge(`The hash list exceeds ${MAX_HASH_LIST_BYTES} bytes`);
  }

  const out: RequestedVersion[] = [];
  let start = 0;
  let lineNumber = 0;
  while (start <= text.length) {
    let end = text.indexOf(0x0a, start);
    if (end === -1) end = text.length;
    lineNumber++;
    const line = text.toString('utf8', start, end).trim();
    start = end + 1;
    if (line === '') continue;
    const hash = normalizeHash(line);
    if (hash === null) {
      const shown = line.length > 80 ? `${line.slice(0, 80)}…` : line;
      throw new BadRequest(`Line ${lineNumber} of the hash list is not a content hash: ${JSON.stringify(shown)}`, { line: lineNumber });
    }
    if (out.length === MAX_BATCH_HASHES) throw new PayloadTooLarge(`A batch download may name at most ${MAX_BATCH_HASHES} hashes`);
    out.push({ requested: line, hash });
  }
  return out;
}

/** Sizes of the blobs a repository holds, asked in batches so a long list never blocks the loop for long. */
export async function findRepoBlobSizes(meta: MetaStore, repoId: string, hashes: string[]): Promise<Map<string, number>> {
  const unique = [...new Set(hashes)];
  const sizes = new Map<string, number>();
  const BATCH = 2000;
  for (let i = 0; i < unique.length; i += BATCH) {
    if (i > 0) await yieldToLoop();
    for (const [hash, size] of await meta.findRepoBlobs(repoId, unique.slice(i, i + BATCH))) sizes.set(hash, size);
  }
  return sizes;
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Checks every requested hash against the repository's blob record and the blob store. A hash the
 * repository does not hold, or whose bytes are gone or have another size on disk, is missing.
 * A remote blob store (S3) is not asked: a HEAD per blob would cost more than the download of small
 * ones, so the recorded sizes are trusted there (versionsTarGz cuts the stream if a blob is gone).
 * Returns the entries to stream, or the missing hashes as the client spelled them (de-duplicated).
 */
export async function resolveBatch(
  meta: MetaStore,
  blobs: BlobStore,
  repoId: string,
  requested: RequestedVersion[],
): Promise<{ entries: VersionEntry[]; missing: string[] }> {
  const recorded = await findRepoBlobSizes(meta, repoId, requested.map((r) => r.hash));
  const onDisk = new Map<string, number | null>();
  if (!blobs.remote && blobs.statMany) {
    const hashes = [...recorded.keys()];
    const sizes = await blobs.statMany(hashes);
    hashes.forEach((hash, i) => onDisk.set(hash, sizes[i]));
  } else if (!blobs.remote) {
    await forEachLimited([...recorded.keys()], 32, async (hash) => {
      onDisk.set(hash, await blobs.stat(hash));
    });
  }
  const entries: VersionEntry[] = [];
  const missing = new Set<string>();
  for (const r of requested) {
    const size = recorded.get(r.hash);
    if (size === undefined || (!blobs.remote && onDisk.get(r.hash) !== size)) missing.add(r.requested);
    else entries.push({ ...r, size });
  }
  return { entries, missing: [...missing] };
}

/** The 404 a batch with missing blobs gets, before any byte is streamed (Oxen's `version_blobs_missing`). */
export function versionBlobsMissing(missing: string[]): YokeError {
  const shown = missing.length > 20 ? `${missing.slice(0, 20).join(', ')}, … (${missing.length - 20} more)` : missing.join(', ');
  return new YokeError(
    404,
    'resource_not_found',
    'Version blobs missing on server',
    `Server is missing ${missing.length} content blob(s) for this batch download. Missing hashes: ${shown}`,
    { type: 'version_blobs_missing', missing_hashes: missing },
  );
}

const SAMPLE_BYTES = 64 * 1024;

/**
 * Gzip level for the reply. Level 1 is nearly free and still shrinks text, CSV and JSON well;
 * already-compressed data (images, parquet, archives) would only burn CPU, so it is stored
 * (level 0). To decide cheaply, deflate up to 64 KiB from each of the first two non-empty blobs
 * at level 1: if that saves less than 10%, use level 0. An unreadable sample falls back to level 1
 * (the stream itself will report the failure).
 */
export async function chooseGzipLevel(blobs: BlobStore, entries: VersionEntry[]): Promise<0 | 1> {
  const samples: Buffer[] = [];
  const seen = new Set<string>();
  try {
    for (const e of entries) {
      if (samples.length === 2) break;
      if (e.size === 0 || seen.has(e.hash)) continue;
      seen.add(e.hash);
      const stream = await blobs.get(e.hash, { start: 0, end: Math.min(e.size, SAMPLE_BYTES) - 1 });
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      samples.push(Buffer.concat(chunks));
    }
  } catch {
    return 1;
  }
  const sample = Buffer.concat(samples);
  if (sample.length === 0) return 1;
  const deflated = await deflateRawAsync(sample, { level: 1 });
  return deflated.length > sample.length * 0.9 ? 0 : 1;
}

/** Blobs up to this size are read whole (one read into a buffer) and read ahead; larger ones are streamed on their turn. */
const SMALL_BLOB_BYTES = 256 * 1024;
/** Read-ahead window: at most this many entries ahead of the one being written (refilled when half of it is left)… */
const READ_AHEAD_ENTRIES = 256;
/** …and at most this many bytes of small blobs read but not yet written. */
const READ_AHEAD_BYTES = 16 * 1024 ** 2;
/** Consecutive small blobs are read in batches of at most this many entries and bytes (one `readMany` each). */
const READ_BATCH_ENTRIES = 64;
const READ_BATCH_BYTES = 1024 ** 2;
/**
 * Tar bytes are gathered into batches of about this size before they reach gzip: every write
 * into a zlib stream is a thread-pool round trip, which per 512-byte header or 4 KiB blob costs
 * far more than the compression itself.
 */
const OUTPUT_BATCH_BYTES = 64 * 1024;

/**
 * A ustar header (as tar-stream writes it: mode 0644, uid/gid 0, mtime 0, type file), encoded
 * in place at `at`. Only the name and size vary; the rest comes from a template.
 */
const TAR_BLOCK = 512;
const HEADER_TEMPLATE = (() => {
  const h = Buffer.alloc(TAR_BLOCK);
  h.write('000644 ', 100, 'latin1'); // mode
  h.write('000000 ', 108, 'latin1'); // uid
  h.write('000000 ', 116, 'latin1'); // gid
  h.write('00000000000 ', 136, 'latin1'); // mtime
  h[156] = 0x30; // typeflag '0': regular file
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  h.write('000000 ', 329, 'latin1'); // devmajor
  h.write('000000 ', 337, 'latin1'); // devminor
  return h;
})();
const MAX_OCTAL_SIZE = 8 ** 11 - 1;

function encodeTarHeader(out: Buffer, at: number, name: string, size: number): void {
  // Entry names are hash spellings (at most 32 hex digits); anything else never gets here.
  if (name.length > 100 || Buffer.byteLength(name) !== name.length) throw new Error(`Cannot name a tar entry ${JSON.stringify(name)}`);
  HEADER_TEMPLATE.copy(out, at);
  out.write(name, at, 'latin1');
  if (size <= MAX_OCTAL_SIZE) {
    out.write(`${size.toString(8).padStart(11, '0')} `, at + 124, 'latin1');
  } else {
    // GNU base-256 for sizes of 8 GiB and more.
    out[at + 124] = 0x80;
    let n = size;
    for (let i = 11; i > 0; i--) {
      out[at + 124 + i] = n % 256;
      n = Math.floor(n / 256);
    }
  }
  let sum = 8 * 0x20; // the checksum field counts as spaces
  for (let i = at; i < at + 148; i++) sum += out[i];
  for (let i = at + 156; i < at + TAR_BLOCK; i++) sum += out[i];
  out.write(`${sum.toString(8).padStart(6, '0')} `, at + 148, 'latin1');
}

/**
 * Whole small blobs, each in a buffer of its size, without a stream per blob: in one call where the store
 * reads many at once, else one read each, all in flight. A blob shorter than its record is refused.
 */
function readWhole(blobs: BlobStore, batch: VersionEntry[]): Promise<Buffer[]> {
  if (blobs.readMany) return blobs.readMany(batch);
  return Promise.all(batch.map((e) => blobs.read(e.hash, { start: 0, end: e.size - 1 })));
}

/**
 * The reply body: a gzip'd tar with one regular file (mode 0644, uid/gid 0, mtime 0) per entry, in
 * order, named exactly as requested. Small blobs are read whole, several at a time ahead of the
 * writer (bounded by entry count and bytes); larger ones are opened on their turn and streamed with
 * backpressure, so memory stays bounded whatever the number and sizes of blobs. If a blob cannot be
 * read, or the consumer goes away (it destroys the returned stream), the output is destroyed and
 * `onFailure` is told which of the two happened; the client sees a truncated body.
 */
export function versionsTarGz(
  blobs: BlobStore,
  entries: VersionEntry[],
  level: number,
  onFailure: (err: Error, consumerGone: boolean) => void,
): Readable {
  // A larger output chunk than zlib's 16 KiB default: one round trip per input batch, not four.
  const gzip = createGzip({ level, chunkSize: OUTPUT_BATCH_BYTES });
  const { fail, failed } = gzipFailure(gzip, onFailure);
  finished(gzip, (err) => {
    if (err) fail(err);
  });

  // Output batching with backpressure.
  let batch = Buffer.allocUnsafe(OUTPUT_BATCH_BYTES);
  let used = 0;
  // Stop feeding once the output is gone: failed here, or destroyed by its consumer (the finished()
  // callback above then reports it).
  const stopped = () => failed() || gzip.destroyed;
  const write = async (chunk: Buffer) => {
    if (stopped()) return;
    if (!gzip.write(chunk)) await drained(gzip);
  };
  const flush = async () => {
    if (used === 0) return;
    const full = batch.subarray(0, used);
    batch = Buffer.allocUnsafe(OUTPUT_BATCH_BYTES);
    used = 0;
    await write(full);
  };
  /** Appends bytes; big chunks go out directly (after what is batched), small ones are copied. */
  const put = async (chunk: Buffer) => {
    if (chunk.length >= OUTPUT_BATCH_BYTES / 2) {
      await flush();
      await write(chunk);
      return;
    }
    if (used + chunk.length > OUTPUT_BATCH_BYTES) await flush();
    chunk.copy(batch, used);
    used += chunk.length;
  };
  const header = async (e: VersionEntry) => {
    if (used + TAR_BLOCK > OUTPUT_BATCH_BYTES) await flush();
    encodeTarHeader(batch, used, e.requested, e.size);
    used += TAR_BLOCK;
  };
  const zeros = Buffer.alloc(TAR_BLOCK * 2);
  const padding = (size: number) => (size % TAR_BLOCK === 0 ? null : zeros.subarray(0, TAR_BLOCK - (size % TAR_BLOCK)));

  // Read-ahead of small blobs: by entry index, the pending read of its batch and its place in it.
  const isSmall = (e: VersionEntry) => e.size > 0 && e.size <= SMALL_BLOB_BYTES;
  const ahead = new Map<number, { reading: Promise<Buffer[]>; at: number }>();
  let nextAhead = 0;
  let aheadBytes = 0;
  const startReading = (indexes: number[]) => {
    if (indexes.length === 0) return;
    const reading = readWhole(blobs, indexes.map((i) => entries[i]));
    reading.catch(() => {}); // awaited on its turn; never unhandled if we stop before then
    indexes.forEach((index, at) => ahead.set(index, { reading, at }));
  };
  const readAhead = (current: number) => {
    // Refilled only once half the window is used, so that reads go out in whole batches.
    if (ahead.size > 0 && nextAhead - current > READ_AHEAD_ENTRIES / 2 && aheadBytes < READ_AHEAD_BYTES / 2) return;
    let batch: number[] = [];
    let batchBytes = 0;
    while (nextAhead < entries.length && nextAhead - current < READ_AHEAD_ENTRIES) {
      const e = entries[nextAhead];
      if (isSmall(e)) {
        if (aheadBytes + e.size > READ_AHEAD_BYTES && (ahead.size > 0 || batch.length > 0)) break;
        if (batch.length === READ_BATCH_ENTRIES || batchBytes + e.size > READ_BATCH_BYTES) {
          startReading(batch);
          batch = [];
          batchBytes = 0;
        }
        aheadBytes += e.size;
        batchBytes += e.size;
        batch.push(nextAhead);
      }
      nextAhead++;
    }
    startReading(batch);
  };

  const feed = async () => {
    for (let i = 0; i < entries.length; i++) {
      if (stopped()) return;
      readAhead(i);
      const e = entries[i];
      if (e.size === 0) {
        await header(e);
      } else if (isSmall(e)) {
        const { reading, at } = ahead.get(i)!;
        const data = (await reading)[at];
        ahead.delete(i);
        aheadBytes -= e.size;
        if (stopped()) return;
        await header(e);
        await put(data);
      } else {
        // Open the blob before starting its entry, so a failure leaves no half-made entry behind.
        const source = await blobs.get(e.hash, { start: 0, end: e.size - 1 });
        if (stopped()) {
          source.destroy();
          return;
        }
        await header(e);
        let sent = 0;
        for await (const chunk of source) {
          if (stopped()) return; // leaving the loop destroys the source
          sent += (chunk as Buffer).length;
          await put(chunk as Buffer);
        }
        if (sent !== e.size) throw new Error(`Blob ${e.hash} has ${sent} bytes, expected ${e.size}`);
      }
      const pad = padding(e.size);
      if (pad) await put(pad);
    }
    if (stopped()) return;
    await put(zeros); // end of archive: two zero blocks
    await flush();
    if (!stopped()) gzip.end();
  };
  feed().catch((err: Error) => fail(err));
  return gzip;
}
