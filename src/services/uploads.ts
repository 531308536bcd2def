import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { createStreamHasher, hashStream, normalizeHash } from '../core/hash.js';
import { dirHashesMemberCommit } from '../core/oxen-nodes.js';
import { BadRequest, Conflict, HashMismatch, NotFound, PayloadTooLarge } from '../core/errors.js';
import type { BlobStore } from '../storage/blob-store.js';
import { processAlive } from '../storage/local-blob-store.js';
import type { MetaStore, RepoRecord, UploadPart, UploadRecord } from '../storage/meta-store.js';
import { contiguousPrefix, hashAssembled, layoutParts } from '../storage/staging.js';
import { readTarGz } from './tar-gz.js';

export interface UploadOptions {
  /** Cap on the bytes a compressed upload may unpack to (gzip bombs). */
  maxDecompressedBytes: number;
  /** Uploads idle for longer than this are discarded. */
  idleTtlMs: number;
}

/** Who holds an assembly: this machine and process, so that a later start can tell a dead claimant. */
const THIS_PROCESS = `${hostname()}:${process.pid}`;

/** Part writers of this process under way (`<host>:<pid>:<id>`). */
const writersHere = new Set<string>();

/**
 * A writer that is gone: its process on this machine died (a kill), or it is this process's and no longer
 * under way (its write failed and even withdrawing it failed, on a full disk). What it held is taken over.
 */
function abandonedBy(holder: string): boolean {
  const [host, pid] = holder.split(':');
  if (host !== hostname()) return false;
  return Number(pid) === process.pid ? !writersHere.has(holder) : !processAlive(Number(pid));
}

/** The hash frontier reads at most this much per step, so other uploads get their turn. */
const FRONTIER_STEP_BYTES = 64 << 20;

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
    // its length: clients cut equal chunks, so chunk i then lies at i × stride and is written in place
    // there, and assembly copies only the last chunk (see inPlaceOffset).
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
    const offset = request.declaredBytes === null ? null : inPlaceOffset(upload, chunkNum, request.declaredBytes);
    const maxBytes = offset === null ? room : Math.min(room, request.declaredBytes!);
    const stored = await this.storePart(upload, chunkNum, offset, body, maxBytes, (size) => {
      if (offset !== null && size !== request.declaredBytes) throw new BadRequest(`Chunk ${chunkNum} has ${size} bytes, not the ${request.declaredBytes} its Content-Length declares`);
    }).catch(async (err) => {
      if (err instanceof PayloadTooLarge) throw new BadRequest(`Chunk ${chunkNum} goes past total_size ${totalSize} (${room} bytes left for it)`);
      // A chunk sent again while the upload is assembled from the first copy: that assembly answers for it.
      if (err instanceof UploadClosed && (await this.assemblyEnded(repo, request.hash))) return null;
      throw err;
    });
    if (stored === null) return { complete: false, hashes: [] };
    const parts = await this.meta.listUploadParts(upload.id);
    if (parts.length < totalChunks || sum(parts) < totalSize) return { complete: false, hashes: [] };
    // Of several requests that see the upload complete, exactly one assembles it.
    if (!(await this.meta.claimUpload(upload.id, THIS_PROCESS, abandonedBy))) return { complete: false, hashes: [] };
    const hashes = await this.finish(repo, upload, async () => {
      if (request.isCompressed) return this.unpackVersions(repo, () => this.concat(upload, parts), request.hash);
      return [await this.publishParts(upload, parts, totalSize)];
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
    return this.writeAtOffset(upload, offset, body, upload.totalSize === null ? undefined : upload.totalSize - offset);
  }

  /** Writes bytes at `offset` of an open upload addressed by offset and records them; at most `maxBytes` (400 beyond). */
  private async writeAtOffset(upload: UploadRecord, offset: number, body: AsyncIterable<Uint8Array>, maxBytes: number | undefined, verify?: (size: number) => void): Promise<UploadPart> {
    this.assertOpen(upload);
    if (upload.totalSize !== null && offset > upload.totalSize) {
      throw new BadRequest(`offset ${offset} is past the declared size ${upload.totalSize}`);
    }
    return this.storePart(upload, offset, offset, body, maxBytes, verify).catch((err) => {
      if (err instanceof PayloadTooLarge) throw new BadRequest(`The bytes at offset ${offset} go past the ${maxBytes} expected there`);
      throw err;
    });
  }

  /**
   * Stores one part: announced first (one writer per part at a time, none once the upload is being
   * assembled), then written, then recorded; a failed write is withdrawn. `verify` sees the stored size
   * before it is recorded. The hash frontier then moves on in the background.
   */
  private async storePart(upload: UploadRecord, part: number, offset: number | null, body: AsyncIterable<Uint8Array>, maxBytes: number | undefined, verify?: (size: number) => void): Promise<UploadPart> {
    const writer = `${THIS_PROCESS}:${randomUUID()}`;
    writersHere.add(writer);
    try {
      return await this.storePartAs(writer, upload, part, offset, body, maxBytes, verify);
    } finally {
      writersHere.delete(writer);
    }
  }

  private async storePartAs(writer: string, upload: UploadRecord, part: number, offset: number | null, body: AsyncIterable<Uint8Array>, maxBytes: number | undefined, verify?: (size: number) => void): Promise<UploadPart> {
    // The same part sent twice at once (a client's retry, two clients): the later one waits its turn, then replaces it.
    let begun = await this.meta.beginUploadPart(upload.id, part, offset, writer, abandonedBy);
    for (let waited = 0; begun === 'busy' && waited < COMPLETION_WAIT_MS; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      begun = await this.meta.beginUploadPart(upload.id, part, offset, writer, abandonedBy);
    }
    if (begun === 'closed') throw new UploadClosed(`Upload ${upload.key} is being assembled, or was completed or discarded`);
    if (begun === 'busy') throw new Conflict(`Part ${part} of upload ${upload.key} is being written by another request`);
    let stored: UploadPart;
    try {
      const { size, tag } = await this.blobs.putPart(upload.id, part, offset, body, { maxBytes });
      verify?.(size);
      stored = { part, offset, size, tag };
    } catch (err) {
      await this.meta.abandonUploadPart(upload.id, part, writer);
      throw err;
    }
    if (!(await this.meta.recordUploadPart(upload.id, stored, writer))) throw await this.arrivedTooLate(upload);
    if (!upload.details.is_compressed) this.advanceFrontierSoon(upload);
    return stored;
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
    if (!(await this.meta.claimUpload(found.id, THIS_PROCESS, abandonedBy))) throw new Conflict(`Upload ${key} is being written or assembled by another request`);
    const upload = (await this.meta.getUpload(repo.id, 'version', key)) ?? found;
    const parts = await this.meta.listUploadParts(upload.id);
    const layout = layoutParts(parts, upload.totalSize);
    if ('gap' in layout) {
      await this.meta.releaseUpload(upload.id);
      throw new BadRequest(`Upload ${key} is missing bytes at offset ${layout.gap}`, { missing_offset: layout.gap });
    }
    let stored;
    try {
      stored = await this.publishParts(upload, parts, layout.size);
    } catch (err) {
      if (err instanceof BadRequest) await this.discard(upload);
      else await this.meta.releaseUpload(upload.id);
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
      await this.writeAtOffset(upload, offset, body, expected, (size) => {
        if (size !== expected) throw new BadRequest(`Part ${partNumber} must be ${expected} bytes, got ${size}`);
      });
    } catch (err) {
      // Being completed by another request: a resent part's bytes are already there.
      if (!(err instanceof Conflict)) throw err;
    }
    const parts = await this.meta.listUploadParts(upload.id);
    if ('gap' in layoutParts(parts, upload.totalSize)) return { completed: false };
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

  /** Waits while the chunked upload `key` is being assembled; true once it is gone (assembled or given up), false if it reopened. */
  private async assemblyEnded(repo: RepoRecord, key: string): Promise<boolean> {
    for (let waited = 0; waited < COMPLETION_WAIT_MS; waited += 50) {
      const now = await this.meta.getUpload(repo.id, 'chunked', key);
      if (now === null) return true;
      if (now.state === 'open') return false;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return false;
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

  /** Uploads whose hash frontier this process is moving, so a completion here waits for it rather than hash twice. */
  private readonly advancing = new Map<string, Promise<void>>();

  private advanceFrontierSoon(upload: UploadRecord): void {
    const next = (this.advancing.get(upload.id) ?? Promise.resolve()).then(() => this.advanceFrontier(upload)).catch(() => {
      // Only an optimisation: completion hashes whatever the frontier did not reach.
    });
    this.advancing.set(upload.id, next);
    void next.then(() => {
      if (this.advancing.get(upload.id) === next) this.advancing.delete(upload.id);
    });
  }

  /**
   * Hashes the upload's bytes that lie back to back after the frontier and records the new frontier, a
   * step at a time. Any process may do it; the metadata store's frontier generation makes a step whose
   * bytes were rewritten meanwhile fail instead of recording a wrong state.
   */
  private async advanceFrontier(upload: UploadRecord): Promise<void> {
    for (;;) {
      const frontier = await this.meta.getUploadFrontier(upload.id);
      if (frontier === null || (frontier.through > 0 && frontier.state === null)) return;
      const layout = contiguousPrefix(inOrder(upload, await this.meta.listUploadParts(upload.id)));
      const { through, generation } = frontier;
      const to = Math.min(layout.size, upload.totalSize ?? Infinity, through + FRONTIER_STEP_BYTES);
      if (to <= through || !(await this.meta.reserveUploadFrontier(upload.id, generation, through, to))) return;
      const hasher = await createStreamHasher(through > 0 ? frontier.state! : undefined);
      await hashAssembled(layout.segments, through, to, hasher, (part, range) => this.blobs.getPart(upload.id, part, range));
      if (!(await this.meta.advanceUploadFrontier(upload.id, generation, through, { through: to, state: hasher.save() }))) return;
    }
  }

  /** Publishes a claimed upload's parts as one verified blob, hashing only what the frontier has not. */
  private async publishParts(upload: UploadRecord, parts: UploadPart[], size: number): Promise<{ hash: string; size: number }> {
    await this.advancing.get(upload.id);
    const frontier = await this.meta.getUploadFrontier(upload.id);
    const hashed = frontier !== null && frontier.through > 0 && frontier.state !== null ? { through: frontier.through, state: frontier.state } : null;
    try {
      const result = await this.blobs.completeParts(upload.id, parts, size, upload.key, hashed);
      return { hash: result.hash, size: result.size };
    } catch (err) {
      if (err instanceof HashMismatch) throw assembledMismatch(err.expected, err.actual);
      // Gone: an earlier attempt may have published it and failed after (its request failed, the upload reopened).
      if (err instanceof NotFound) return this.publishedEarlier(upload.key, size);
      throw err;
    }
  }

  /** The chunks' bytes in order, read from the parts. */
  private async *concat(upload: UploadRecord, parts: UploadPart[]): AsyncGenerator<Uint8Array> {
    const layout = layoutParts(parts, upload.totalSize);
    if ('gap' in layout) throw new BadRequest(`Upload ${upload.key} is missing bytes at offset ${layout.gap}`);
    for (const segment of layout.segments) yield* (await this.blobs.getPart(upload.id, segment.part, segment)) as AsyncIterable<Uint8Array>;
  }

  /**
   * An upload whose staging is gone may have been published by an earlier attempt that failed
   * after publishing (its request then failed and the upload was reopened): the stored blob answers.
   */
  private async publishedEarlier(hash: string, size: number): Promise<{ hash: string; size: number }> {
    if ((await this.blobs.stat(hash)) === size) return { hash: canonical(hash), size };
    throw new NotFound(`Upload ${hash} has no data left to assemble`);
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


/** A part refused because its upload no longer takes parts (being assembled, completed or discarded). */
class UploadClosed extends Conflict {}

/** The client's fault: the bytes it sent do not hash to what it declared (the upload is discarded). */
function assembledMismatch(expected: string, actual: string): BadRequest {
  return new BadRequest(`Assembled bytes hash to ${actual}, not ${expected}`, { type: 'hash_mismatch' });
}

/**
 * Where a raw upload's chunk lies in the assembled file, when it can be written there as it arrives:
 * a chunk other than the last, exactly one stride long, that ends within the declared size.
 */
function inPlaceOffset(upload: UploadRecord, chunkNum: number, size: number): number | null {
  const stride = upload.details.stride;
  if (typeof stride !== 'number' || upload.details.is_compressed || size !== stride) return null;
  if (upload.totalChunks === null || upload.totalSize === null || chunkNum >= upload.totalChunks - 1) return null;
  const offset = chunkNum * stride;
  return offset + stride <= upload.totalSize ? offset : null;
}

/** The parts whose place is known: all of an upload by offset, the chunks before the first missing one of a chunked upload. */
function inOrder(upload: UploadRecord, parts: UploadPart[]): UploadPart[] {
  if (upload.kind !== 'chunked') return parts;
  const run = parts.findIndex((p, i) => p.part !== i);
  return run === -1 ? parts : parts.slice(0, run);
}

function sum(parts: UploadPart[]): number {
  return parts.reduce((total, p) => total + p.size, 0);
}

function canonical(hash: string): string {
  const normalized = normalizeHash(hash);
  if (normalized === null) throw new BadRequest(`Invalid hash: ${hash}`);
  return normalized;
}
