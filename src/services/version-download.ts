import { pipeline } from 'node:stream/promises';
import { pipeline as pipelineCb, Readable } from 'node:stream';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { promisify } from 'node:util';
import { createGzip, deflateRaw, gunzip } from 'node:zlib';
import tar from 'tar-stream';
import { BadRequest, PayloadTooLarge, YokeError } from '../core/errors.js';
import { normalizeHash } from '../core/hash.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { MetaStore } from '../storage/meta-store.js';

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
  await forEachLimited([...recorded.keys()], 32, async (hash) => {
    onDisk.set(hash, await blobs.stat(hash));
  });
  const entries: VersionEntry[] = [];
  const missing = new Set<string>();
  for (const r of requested) {
    const size = recorded.get(r.hash);
    if (size === undefined || onDisk.get(r.hash) !== size) missing.add(r.requested);
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

/**
 * The reply body: a gzip'd tar with one regular file (mode 0644, uid/gid 0, mtime 0) per entry, in
 * order, named exactly as requested. Blobs are streamed one after another (each entry is awaited,
 * so memory stays at a few stream buffers whatever the sizes). If a blob cannot be read, or the
 * consumer goes away (it destroys the returned stream), the output is destroyed and `onFailure`
 * is told which of the two happened; the client sees a truncated body.
 */
export function versionsTarGz(
  blobs: BlobStore,
  entries: VersionEntry[],
  level: number,
  onFailure: (err: Error, consumerGone: boolean) => void,
): Readable {
  const pack = tar.pack();
  const gzip = createGzip({ level });
  let failed = false;
  const fail = (err: Error) => {
    if (failed) return;
    failed = true;
    // Destroyed before we failed: whoever reads the output (the HTTP response) went away first.
    const consumerGone = gzip.destroyed;
    pack.destroy(err);
    gzip.destroy();
    onFailure(err, consumerGone);
  };
  pipelineCb(pack, gzip, (err) => {
    if (err) fail(err);
  });

  const feed = async () => {
    for (const e of entries) {
      if (failed) return;
      // Open the blob before starting its entry, so a failure leaves no half-made entry behind.
      // An empty blob needs no read.
      const source = e.size === 0 ? Readable.from([]) : await blobs.get(e.hash);
      if (failed) {
        source.destroy();
        return;
      }
      const entry = pack.entry({ name: e.requested, size: e.size, mode: 0o644, type: 'file', mtime: new Date(0), uid: 0, gid: 0 });
      entry.on('error', () => {}); // reported through pipeline() or fail(); never unhandled
      await pipeline(source, entry);
    }
    pack.finalize();
  };
  feed().catch((err: Error) => fail(err));
  return gzip;
}
