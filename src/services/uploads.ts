import { hostname } from 'node:os';
import { Readable } from 'node:stream';
import { hashStream, normalizeHash } from '../core/hash.js';
import { dirHashesMemberCommit } from '../core/oxen-nodes.js';
import { BadRequest, Conflict, HashMismatch, NotFound, PayloadTooLarge } from '../core/errors.js';
import type { BlobStore } from '../storage/blob-store.js';
import { processAlive } from '../storage/local-blob-store.js';
import type { MetaStore, RepoRecord, UploadPart, UploadRecord } from '../storage/meta-store.js';
import { readTarGz } from './tar-gz.js';

export interface UploadOptions {
  /** Cap on the bytes a compressed upload may unpack to (gzip bombs). */
  maxDecompressedBytes: number;
  /** Uploads idle for longer than this are discarded. */
  idleTtlMs: number;
}

/** Who holds an assembly: this machine and process, so that a later start can tell a dead claimant. */
const THIS_PROCESS = `${hostname()}:${process.pid}`;

export const DEFAULT_UPLOAD_OPTIONS: UploadOptions = {
  maxDecompressedBytes: 64 * 1024 ** 3,
  idleTtlMs: 24 * 60 * 60 * 1000,
};

/** `commits/upload_chunk` query, parsed. */
export interface ChunkRequest {
  hash: string;
  chunkNum: number;
  totalChunks: number;
  totalSize: number;
  isCompressed: boolean;
  filename: string | null;
  /** The body's length as the request declared it (Content-Length), when it did. */
  declaredBytes: number | null;
}

export interface ChunkOutcome {
  /** True once every chunk is present and the upload was assembled (by this request). */
  complete: boolean;
  /** Blobs the assembled upload stored (the file, or every file of a tarball). */
  hashes: string[];
}

/** Parts of a `versions/uploads` upload: 16 MiB, so a 10 GiB file is 640 requests. */
const PART_SIZE = 16 * 1024 * 1024;
/** Parts a client may keep in flight (all are written in place, so any order is accepted). */
const PART_WINDOW = 4;
/** How long a part whose upload another request is completing waits for that outcome. */
const COMPLETION_WAIT_MS = 120_000;

/** Where a finished numbered-part upload is staged. */
export interface PartDestination {
  workspace_id: string;
  path: string;
}

function destinationsOf(details: Record<string, unknown>): PartDestination[] {
  return Array.isArray(details.destinations) ? (details.destinations as PartDestination[]) : [];
}

export interface PartUploadPlan {
  upload: UploadRecord;
  partSize: number;
  numParts: number;
  partWindow: number;
}

function partPlan(upload: UploadRecord, size: number): PartUploadPlan {
  // An upload begun by `versions/{hash}/create` has no part size of its own; its parts are ours.
  const partSize = typeof upload.details.part_size === 'number' ? upload.details.part_size : PART_SIZE;
  return { upload, partSize, numParts: Math.max(1, Math.ceil(size / partSize)), partWindow: PART_WINDOW };
}

const TAR_VERSION_ENTRY = /^versions\/files\/([0-9a-fA-F]{2})\/([0-9a-fA-F]{1,30})\/data$/;
const TAR_VERSION_DIRS = /^versions(\/files(\/[0-9a-fA-F]{2}(\/[0-9a-fA-F]{1,30})?)?)?\/?$/;

/**
 * Uploads that arrive in parts. Parts are staged in the blob store and recorded in the metadata
 * store (so any server process can take any part); one request claims a complete upload and
 * assembles it exactly once, verifying the bytes against the declared hash before anything
 * becomes visible to the repository.
 */
export class UploadService {
  constructor(
    private readonly meta: MetaStore,
    private readonly blobs: BlobStore,
    private readonly options: UploadOptions = DEFAULT_UPLOAD_OPTIONS,
  ) {}

  /** Refuses (413) an upload of `size` bytes that the blob store has no room for, before a byte is sent. */
  async assertRoomFor(size: number): Promise<void> {
    const available = await this.blobs.availableBytes();
    if (available !== null && size > available) {
      throw new PayloadTooLarge(`Not enough space for ${size} bytes: the server has ${available} bytes free`);
    }
  }

  get idleTtlMs(): number {
    return this.options.idleTtlMs;
  }

  // ---- commits/upload_chunk ------------------------------------------------------------------

  async uploadChunk(repo: RepoRecord, request: ChunkRequest, body: AsyncIterable<Uint8Array>): Promise<ChunkOutcome> {
    const { chunkNum, totalChunks, totalSize } = request;
    if (totalChunks < 1) throw new BadRequest('total_chunks must be at least 1');
    if (chunkNum >= totalChunks) throw new BadRequest(`chunk_num ${chunkNum} is not below total_chunks ${totalChunks}`);
    if (!request.isCompressed && !request.filename) throw new BadRequest('filename is required when is_compressed=false');
    // The request that opens a raw upload fixes its stride, if it is not the last chunk and declares
    // its length: clients cut equal chunks, so chunk i then lives at i × stride of one in-place file
    // and assembly copies only the last chunk (see inPlaceOffset).
    const stride = !request.isCompressed && chunkNum < totalChunks - 1 && request.declaredBytes ? request.declaredBytes : undefined;
    const upload = await this.meta.openUpload(repo.id, 'chunked', request.hash, {
      totalSize,
      totalChunks,
      details: { is_compressed: request.isCompressed, filename: request.filename, ...(stride ? { stride } : {}) },
    });
    if (upload.totalSize !== totalSize || upload.totalChunks !== totalChunks || upload.details.is_compressed !== request.isCompressed) {
      throw new Conflict(
        `Upload ${request.hash} is already in progress with total_size=${upload.totalSize}, total_chunks=${upload.totalChunks}, is_compressed=${String(upload.details.is_compressed)}`,
      );
    }
    this.assertOpen(upload);
    const others = (await this.meta.listUploadParts(upload.id)).filter((p) => p.part !== chunkNum);
    const room = totalSize - sum(others);
    const pastTotal = (err: unknown) => {
      if (err instanceof PayloadTooLarge) {
        throw new BadRequest(`Chunk ${chunkNum} goes past total_size ${totalSize} (${room} bytes left for it)`);
      }
      throw err;
    };
    const offset = request.declaredBytes === null ? null : inPlaceOffset(upload, chunkNum, request.declaredBytes);
    let size: number;
    if (offset !== null) {
      size = await this.blobs.writeAt(upload.id, offset, body, { maxBytes: Math.min(room, request.declaredBytes!) }).catch(pastTotal);
      if (size !== request.declaredBytes) throw new BadRequest(`Chunk ${chunkNum} has ${size} bytes, not the ${request.declaredBytes} its Content-Length declares`);
    } else {
      size = await this.blobs.putPart(upload.id, chunkNum, body, { maxBytes: room }).catch(pastTotal);
      // A full-stride chunk that came without a declared length moves into place too, so that every
      // recorded full-stride chunk is in place.
      const late = inPlaceOffset(upload, chunkNum, size);
      if (late !== null) await this.blobs.writeAt(upload.id, late, this.partBytes(upload.id, chunkNum));
    }
    if (!(await this.meta.recordUploadPart(upload.id, chunkNum, size))) throw await this.arrivedTooLate(upload);
    const parts = await this.meta.listUploadParts(upload.id);
    if (parts.length < totalChunks || sum(parts) < totalSize) return { complete: false, hashes: [] };
    // Of several requests that see the upload complete, exactly one assembles it.
    if (!(await this.meta.claimUpload(upload.id, THIS_PROCESS))) return { complete: false, hashes: [] };
    const hashes = await this.finish(repo, upload, async () => {
      if (request.isCompressed) return this.unpackVersions(repo, () => this.concat(upload, parts), request.hash);
      if (everyChunkButLastInPlace(upload, parts)) return this.completeInPlace(upload, parts[parts.length - 1]);
      return this.storeWhole(this.concat(upload, parts), request.hash);
    });
    return { complete: true, hashes };
  }

  // ---- versions/{hash}/create | chunks | complete ---------------------------------------------

  async createVersionUpload(repo: RepoRecord, hash: string, size: number | null, details: Record<string, unknown>): Promise<UploadRecord> {
    return this.meta.openUpload(repo.id, 'version', canonical(hash), { totalSize: size, totalChunks: null, details });
  }

  async putVersionChunk(repo: RepoRecord, hash: string, offset: number, body: AsyncIterable<Uint8Array>): Promise<UploadPart> {
    // Oxen's `create` is optional; the first chunk opens the upload too.
    const upload = await this.createVersionUpload(repo, hash, null, {});
    return this.writeInPlace(upload, offset, body, upload.totalSize === null ? undefined : upload.totalSize - offset);
  }

  /** Writes bytes at `offset` of an open in-place upload and records them; at most `maxBytes` (400 beyond). */
  private async writeInPlace(upload: UploadRecord, offset: number, body: AsyncIterable<Uint8Array>, maxBytes: number | undefined): Promise<UploadPart> {
    this.assertOpen(upload);
    if (upload.totalSize !== null && offset > upload.totalSize) {
      throw new BadRequest(`offset ${offset} is past the declared size ${upload.totalSize}`);
    }
    const size = await this.blobs.writeAt(upload.id, offset, body, { maxBytes }).catch((err) => {
      if (err instanceof PayloadTooLarge) throw new BadRequest(`The bytes at offset ${offset} go past the ${maxBytes} expected there`);
      throw err;
    });
    if (!(await this.meta.recordUploadPart(upload.id, offset, size))) throw await this.arrivedTooLate(upload);
    return { part: offset, size };
  }

  /** What the server holds of an upload, so a client resumes instead of restarting. */
  async versionUploadStatus(repo: RepoRecord, hash: string) {
    const key = canonical(hash);
    const upload = await this.meta.getUpload(repo.id, 'version', key);
    const stored = (await this.meta.findRepoBlobs(repo.id, [key])).has(key);
    const parts = upload ? await this.meta.listUploadParts(upload.id) : [];
    return { upload, parts, stored };
  }

  /** Assembles and verifies an in-place upload; `details` as they stood once it was claimed (no begin changes them after). */
  async completeVersionUpload(repo: RepoRecord, hash: string): Promise<{ hash: string; size: number; details: Record<string, unknown> }> {
    const key = canonical(hash);
    const found = await this.meta.getUpload(repo.id, 'version', key);
    if (!found) {
      const held = await this.heldBlob(repo, key);
      if (held) return { ...held, details: {} };
      throw new NotFound(`No upload in progress for ${key}`);
    }
    this.assertOpen(found);
    if (!(await this.meta.claimUpload(found.id, THIS_PROCESS))) throw new Conflict(`Upload ${key} is being assembled by another request`);
    const upload = (await this.meta.getUpload(repo.id, 'version', key)) ?? found;
    const parts = await this.meta.listUploadParts(upload.id);
    const plan = coverage(parts, upload.totalSize);
    if ('gap' in plan) {
      await this.meta.releaseUpload(upload.id);
      throw new BadRequest(`Upload ${key} is missing bytes at offset ${plan.gap}`, { missing_offset: plan.gap });
    }
    let stored;
    try {
      stored = await this.commitInPlace(upload, plan.size);
    } catch (err) {
      if (err instanceof HashMismatch) {
        await this.discard(upload);
        throw assembledMismatch(err.expected, err.actual);
      }
      await this.meta.releaseUpload(upload.id);
      throw err;
    }
    await this.meta.addRepoBlobs(repo.id, [stored]);
    await this.discard(upload);
    return { hash: stored.hash, size: stored.size, details: upload.details };
  }

  // ---- versions/uploads: numbered parts (Oxen 0.65's large-file protocol) -----------------------

  /**
   * Begins (or resumes) the upload of the file `hash` of `size` bytes in numbered parts. The upload
   * is the same in-place upload that `versions/{hash}/chunks` writes, named by the hash, so parts are
   * written at `(n - 1) × partSize` and hashed ahead as they arrive. `stored` when the repository
   * already holds the bytes: nothing needs to be sent.
   */
  async beginPartUpload(repo: RepoRecord, hash: string, size: number, destination: PartDestination | null): Promise<PartUploadPlan | { stored: { hash: string; size: number } }> {
    const key = canonical(hash);
    for (let attempt = 0; attempt < 3; attempt++) {
      const held = await this.heldBlob(repo, key);
      if (held) return { stored: held };
      await this.assertRoomFor(size);
      const opened = await this.meta.openUpload(repo.id, 'version', key, { totalSize: size, totalChunks: null, details: { part_size: PART_SIZE, destinations: [] } });
      // The same file may be begun again (a client that restarted, another workspace): every begin's
      // destination is kept, and an upload opened without a size (versions/{hash}/create) adopts this one.
      const upload = await this.meta.updateUpload(opened.id, (current) => {
        if (current.totalSize !== null && current.totalSize !== size) {
          throw new Conflict(`An upload of ${key} with ${current.totalSize} bytes is in progress; this one declares ${size}`);
        }
        const destinations = (current.details.destinations as PartDestination[] | undefined) ?? [];
        const known = destination === null || destinations.some((d) => d.workspace_id === destination.workspace_id && d.path === destination.path);
        return { totalSize: size, details: { ...current.details, destinations: known ? destinations : [...destinations, destination] } };
      });
      if (upload) return partPlan(upload, size);
      // Being completed right now: its outcome decides (stored, or open again for this begin).
      await this.awaitCompletion(repo, key);
    }
    throw new Conflict(`The upload of ${key} keeps changing state; begin it again`);
  }

  /**
   * Stores part `partNumber` (1-based) of an upload begun with `beginPartUpload`. The part that
   * makes the upload whole completes it: the bytes are verified against the hash and become a
   * blob of the repository (`completed`, with every destination the upload's begins named).
   * NotFound when the upload is gone (completed or expired), which tells the client to begin again.
   */
  async putNumberedPart(repo: RepoRecord, uploadId: string, partNumber: number, declaredBytes: number | null, body: AsyncIterable<Uint8Array>): Promise<{ completed: false } | { completed: true; stored: { hash: string; size: number }; destinations: PartDestination[] }> {
    const key = normalizeHash(uploadId);
    const upload = key === null ? null : await this.meta.getUpload(repo.id, 'version', key);
    if (!upload || upload.totalSize === null) throw new NotFound(`No upload ${uploadId} in progress`);
    const plan = partPlan(upload, upload.totalSize);
    if (!Number.isSafeInteger(partNumber) || partNumber < 1 || partNumber > plan.numParts) {
      throw new BadRequest(`Part ${partNumber} is not between 1 and ${plan.numParts}`);
    }
    const offset = (partNumber - 1) * plan.partSize;
    const expected = Math.min(plan.partSize, upload.totalSize - offset);
    if (declaredBytes !== null && declaredBytes !== expected) throw new BadRequest(`Part ${partNumber} must be ${expected} bytes, not ${declaredBytes}`);
    try {
      const written = await this.writeInPlace(upload, offset, body, expected);
      if (written.size !== expected) throw new BadRequest(`Part ${partNumber} must be ${expected} bytes, got ${written.size}`);
    } catch (err) {
      // Being completed by another request: a resent part's bytes are already there.
      if (!(err instanceof Conflict)) throw err;
    }
    const parts = await this.meta.listUploadParts(upload.id);
    if ('gap' in coverage(parts, upload.totalSize)) return { completed: false };
    try {
      const { hash, size, details } = await this.completeVersionUpload(repo, key!);
      return { completed: true, stored: { hash, size }, destinations: destinationsOf(details) };
    } catch (err) {
      if (!(err instanceof Conflict || err instanceof NotFound)) throw err;
    }
    // Another request holds the completion (two last parts at once): its outcome is this one's too
    // (that request stages the destinations).
    const stored = await this.awaitCompletion(repo, key!);
    if (stored) return { completed: true, stored, destinations: [] };
    if (await this.meta.getUpload(repo.id, 'version', key!)) return { completed: false };
    throw new NotFound(`Upload ${uploadId} ended without storing its file; begin it again`);
  }

  /** The blob `key` (canonical) if the repository holds it. */
  private async heldBlob(repo: RepoRecord, key: string): Promise<{ hash: string; size: number } | null> {
    const size = (await this.meta.findRepoBlobs(repo.id, [key])).get(key);
    return size === undefined ? null : { hash: key, size };
  }

  /** Waits while another request completes the upload `key`; the blob if it was stored. */
  private async awaitCompletion(repo: RepoRecord, key: string): Promise<{ hash: string; size: number } | null> {
    for (let waited = 0; waited < COMPLETION_WAIT_MS; waited += 50) {
      const held = await this.heldBlob(repo, key);
      if (held) return held;
      const now = await this.meta.getUpload(repo.id, 'version', key);
      if (now === null || now.state === 'open') return null;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return null;
  }

  // ---- expiry -------------------------------------------------------------------------------

  /** Discards uploads idle for longer than the TTL; returns how many. */
  /**
   * Reopens uploads whose assembly a process on this machine held when it died (a kill mid-assembly
   * would otherwise leave them refusing chunks and completion until they expire). Run at start-up.
   */
  releaseAbandonedUploads(): Promise<number> {
    return this.meta.releaseAbandonedUploads((claimant) => {
      const [host, pid] = claimant.split(':');
      return host === hostname() && claimant !== THIS_PROCESS && !processAlive(Number(pid));
    });
  }

  async expireIdleUploads(now = Date.now()): Promise<number> {
    const idle = await this.meta.listUploadsIdleSince(new Date(now - this.options.idleTtlMs).toISOString());
    for (const upload of idle) await this.discard(upload);
    return idle.length;
  }

  // ---- assembly -----------------------------------------------------------------------------

  /** A chunk stored after its upload was completed or discarded: its staging would be left behind. */
  private async arrivedTooLate(upload: UploadRecord): Promise<Conflict> {
    await this.blobs.deleteParts(upload.id);
    return new Conflict(`Upload ${upload.key} was completed or discarded while this chunk arrived`);
  }

  private assertOpen(upload: UploadRecord) {
    if (upload.state !== 'open') throw new Conflict(`Upload ${upload.key} is being assembled`);
  }

  private async discard(upload: UploadRecord) {
    await this.blobs.deleteParts(upload.id);
    await this.meta.deleteUpload(upload.id);
  }

  /**
   * Runs `store` for a claimed upload. Bytes that fail verification end the upload (the client must
   * start again); other failures return it to 'open' for a retry.
   */
  private async finish(repo: RepoRecord, upload: UploadRecord, store: () => Promise<Array<{ hash: string; size: number }>>): Promise<string[]> {
    let stored: Array<{ hash: string; size: number }>;
    try {
      stored = await store();
    } catch (err) {
      if (err instanceof BadRequest || err instanceof PayloadTooLarge) {
        await this.discard(upload);
        throw err;
      }
      await this.meta.releaseUpload(upload.id);
      throw err;
    }
    await this.meta.addRepoBlobs(repo.id, stored);
    await this.discard(upload);
    return stored.map((s) => s.hash);
  }

  /** A part's bytes, opened only once read (a write refused before reading leaves no file open). */
  private async *partBytes(uploadId: string, part: number): AsyncGenerator<Uint8Array> {
    yield* (await this.blobs.getPart(uploadId, part)) as AsyncIterable<Uint8Array>;
  }

  /** The chunks in order, each from where it was staged: its place in the in-place file or its part file. */
  private async *concat(upload: UploadRecord, parts: UploadPart[]): AsyncGenerator<Uint8Array> {
    for (const { part, size } of parts) {
      const offset = inPlaceOffset(upload, part, size);
      yield* offset === null ? this.partBytes(upload.id, part) : ((await this.blobs.readAt(upload.id, offset, offset + size)) as AsyncIterable<Uint8Array>);
    }
  }

  /** Every chunk but the last is in place: copy the last one after them and publish the file as it is. */
  private async completeInPlace(upload: UploadRecord, last: UploadPart) {
    const stride = upload.details.stride as number;
    // The staged file must still be there: writing the last chunk would otherwise start a new one.
    const present = await this.blobs.readAt(upload.id, 0, 0).then(
      (empty) => (empty.destroy(), true),
      (err) => (err instanceof NotFound ? false : Promise.reject(err)),
    );
    if (!present) return [await this.publishedEarlier(upload.key, upload.totalSize!)];
    await this.blobs.writeAt(upload.id, last.part * stride, this.partBytes(upload.id, last.part));
    const result = await this.commitInPlace(upload, upload.totalSize!).catch((err) => {
      if (err instanceof HashMismatch) throw assembledMismatch(err.expected, err.actual);
      throw err;
    });
    return [{ hash: result.hash, size: result.size }];
  }

  /** Publishes an upload assembled in place, or, if its file is gone, what an earlier attempt published. */
  private async commitInPlace(upload: UploadRecord, size: number): Promise<{ hash: string; size: number }> {
    return this.blobs.commitUpload(upload.id, size, upload.key).catch((err) => {
      if (err instanceof NotFound) return this.publishedEarlier(upload.key, size);
      throw err;
    });
  }

  /**
   * An in-place upload whose file is gone may have been published by an earlier attempt that failed
   * after the rename (its request then failed and the upload was reopened): the stored blob answers.
   */
  private async publishedEarlier(hash: string, size: number): Promise<{ hash: string; size: number }> {
    if ((await this.blobs.stat(hash)) === size) return { hash: canonical(hash), size };
    throw new NotFound(`Upload ${hash} has no data left to assemble`);
  }

  private async storeWhole(source: AsyncIterable<Uint8Array>, hash: string) {
    const result = await this.blobs.put(source, { expectedHash: hash }).catch((err) => {
      if (err instanceof HashMismatch) throw assembledMismatch(err.expected, err.actual);
      throw err;
    });
    return [{ hash: result.hash, size: result.size }];
  }

  /**
   * A compressed upload is a tar.gz of `versions/files/<2>/<rest>/data` entries. The tarball's own
   * bytes are verified against `hash` first (one read pass); then every entry is stored and
   * verified against the hash its path names. Anything else in the archive (other paths, links,
   * devices) is refused, and the unpacked size is capped against gzip bombs.
   */
  private async unpackVersions(repo: RepoRecord, open: () => AsyncIterable<Uint8Array>, hash: string) {
    const { hash: actual } = await hashStream(open());
    if (actual !== hash) throw assembledMismatch(hash, actual);

    const batch = this.blobs.createBatch();
    const stored: Array<{ hash: string; size: number }> = [];
    const received = new Set<string>();
    await readTarGz(open(), this.options.maxDecompressedBytes, 'The assembled upload', async (entry, name) => {
      const type = entry.header.type;
      if (type === 'directory' && TAR_VERSION_DIRS.test(name)) return entry.resume();
      // A commit's dir_hashes too large for `commits/upload` comes this way (Oxen's client, over 10 MiB): read
      // as `commits/upload` reads it, the files dropped and the commit marked as completely sent.
      const commit = type === 'file' || type === 'directory' ? dirHashesMemberCommit(name) : null;
      if (commit !== null) {
        received.add(commit);
        return entry.resume();
      }
      const match = type === 'file' ? TAR_VERSION_ENTRY.exec(name) : null;
      if (!match) throw new BadRequest(`Refusing tar entry '${entry.header.name}' (${type}): only versions/files/<2>/<rest>/data files are accepted`);
      const expectedHash = `${match[1]}${match[2]}`;
      const result = await this.blobs.put(entry as AsyncIterable<Uint8Array>, { expectedHash, batch }).catch((err) => {
        if (err instanceof HashMismatch) throw new BadRequest(`Tar entry '${name}' hashes to ${err.actual}`, { type: 'hash_mismatch' });
        throw err;
      });
      stored.push({ hash: result.hash, size: result.size });
    });
    await batch.commit();
    if (received.size > 0) await this.meta.markCommitsReceived(repo.id, [...received]);
    return stored;
  }
}


/** The client's fault: the bytes it sent do not hash to what it declared (the upload is discarded). */
function assembledMismatch(expected: string, actual: string): BadRequest {
  return new BadRequest(`Assembled bytes hash to ${actual}, not ${expected}`, { type: 'hash_mismatch' });
}

/**
 * Where a raw upload's chunk lives in its in-place file, or null if it is staged as a part file:
 * a chunk other than the last, exactly one stride long, that ends within the declared size.
 */
function inPlaceOffset(upload: UploadRecord, chunkNum: number, size: number): number | null {
  const stride = upload.details.stride;
  if (typeof stride !== 'number' || upload.details.is_compressed || size !== stride) return null;
  if (upload.totalChunks === null || upload.totalSize === null || chunkNum >= upload.totalChunks - 1) return null;
  const offset = chunkNum * stride;
  return offset + stride <= upload.totalSize ? offset : null;
}

/** True when a complete raw upload's chunks other than the last all lie in place, back to back. */
function everyChunkButLastInPlace(upload: UploadRecord, parts: UploadPart[]): boolean {
  return parts.length > 1 && parts.slice(0, -1).every((p) => inPlaceOffset(upload, p.part, p.size) !== null);
}

function sum(parts: UploadPart[]): number {
  return parts.reduce((total, p) => total + p.size, 0);
}

function canonical(hash: string): string {
  const normalized = normalizeHash(hash);
  if (normalized === null) throw new BadRequest(`Invalid hash: ${hash}`);
  return normalized;
}

/**
 * The byte count covered from offset 0 without a gap by offset-keyed parts (they may overlap when
 * two clients resend with different chunk sizes; the bytes are written in place either way).
 */
function coverage(parts: UploadPart[], declaredSize: number | null): { size: number } | { gap: number } {
  let end = 0;
  for (const { part: offset, size } of parts) {
    if (offset > end) return { gap: end };
    end = Math.max(end, offset + size);
  }
  if (parts.length === 0 || (declaredSize !== null && end < declaredSize)) return { gap: end };
  return { size: end };
}
