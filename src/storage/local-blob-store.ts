import { createReadStream } from 'node:fs';
import { constants } from 'node:fs';
import { link, mkdir, open, readdir, rename, rm, stat, statfs, utimes, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { createStreamHasher, hashBuffer, type StreamHasher } from '../core/hash.js';
import { BadRequest, Conflict, HashMismatch, NotFound, PayloadTooLarge } from '../core/errors.js';
import { normalizeHash } from '../core/hash.js';
import type { BlobStore, ByteRange, PutOptions, PutResult, StoredBlob, WriteBatch } from './blob-store.js';
import { hashFilePrefix, hashFileRange, streamToFile } from './file-writes.js';
import { PrefixHasher } from './prefix-hasher.js';

const STALE_TEMP_MS = 24 * 60 * 60 * 1000;

/** Whether a process with this id runs on this machine (signal 0 only asks). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
/** The file an in-place (offset-addressed) upload is assembled in. */
const IN_PLACE_FILE = 'in-place';
/** Present in an upload's directory once a process that did not create its file wrote to it. */
const SHARED_MARKER = 'shared';
/** Most uploads hashed ahead at once in one process. */
const MAX_HASH_AHEAD = 64;

/** This process's view of an in-place upload. */
interface InPlaceUpload {
  /** Writes under way, and completions waiting for them to end. */
  writers: number;
  idle: Array<() => void>;
  /** Cut off the writes under way (a completion does, rather than wait for a stalled request). */
  aborts: Set<() => void>;
  /** A completion is verifying the file: new writes are refused. */
  completing: boolean;
  /** Settles once the staged file exists (see prepareStaged); `discards` counts deleteParts calls. */
  ready: Promise<void> | null;
  discards: number;
  /** This process created the staged file (no other can have opened it without leaving the shared marker). */
  created: boolean;
  /** Hash of the bytes so far, when this process created the file (see PrefixHasher). */
  hashing: PrefixHasher | null;
}

/**
 * On the local filesystem the durability barrier of a put is the fsync of the shard directory
 * after the rename. A batch collects those directories and syncs each once: thousands of small
 * files then cost at most 256 directory syncs instead of one each.
 */
class DirectorySyncBatch implements WriteBatch {
  readonly dirs = new Set<string>();
  async commit(): Promise<void> {
    const dirs = [...this.dirs];
    this.dirs.clear();
    for (let i = 0; i < dirs.length; i += 64) await Promise.all(dirs.slice(i, i + 64).map(fsyncDir));
  }
}

/**
 * Blobs on the local filesystem: `<root>/objects/<h[0..2]>/<h[2..]>`. Each write goes to
 * `<root>/tmp/`, is hashed while streaming, fsynced, verified, then renamed into place and the
 * shard directory fsynced, so a crash leaves either no object or a complete one.
 */
export class LocalBlobStore implements BlobStore {
  private readonly objectsDir: string;
  private readonly tmpDir: string;

  private readonly uploadsDir: string;

  private constructor(root: string) {
    this.objectsDir = join(root, 'objects');
    this.tmpDir = join(root, 'tmp');
    this.uploadsDir = join(root, 'uploads');
  }

  static async open(root: string): Promise<LocalBlobStore> {
    const store = new LocalBlobStore(root);
    await mkdir(store.tmpDir, { recursive: true });
    await mkdir(store.uploadsDir, { recursive: true });
    await store.removeStaleTempFiles();
    await mkdir(store.objectsDir, { recursive: true });
    // Pre-create the 256 shard directories so a write never races a mkdir.
    const existing = new Set(await readdir(store.objectsDir));
    for (let i = 0; i < 256; i++) {
      const shard = i.toString(16).padStart(2, '0');
      if (!existing.has(shard)) await mkdir(join(store.objectsDir, shard), { recursive: true });
    }
    return store;
  }

  /** A fresh temp file name, led by this process's id so that a later start can tell whose it was. */
  private tempPath(): string {
    return join(this.tmpDir, `${process.pid}-${randomUUID()}`);
  }

  /**
   * Temp files belong to writes in progress or to writes a crash interrupted; they are never
   * visible as blobs. One whose process is gone (a kill) is removed at once; any other only once old,
   * since another live process may share this directory.
   */
  private async removeStaleTempFiles(maxAgeMs = STALE_TEMP_MS): Promise<void> {
    const cutoff = Date.now() - maxAgeMs;
    for (const name of await readdir(this.tmpDir)) {
      const path = join(this.tmpDir, name);
      const owner = /^(\d+)-/.exec(name);
      if (owner && Number(owner[1]) !== process.pid && !processAlive(Number(owner[1]))) {
        await rm(path, { force: true });
        continue;
      }
      const info = await stat(path).catch(() => null);
      if (info && info.mtimeMs < cutoff) await rm(path, { force: true });
    }
  }

  private pathOf(hash: string): string {
    const canonical = normalizeHash(hash);
    if (canonical === null) throw new BadRequest(`Invalid hash: ${hash}`);
    // Short hashes (leading zeros stripped) are padded for sharding only.
    const padded = canonical.padStart(32, '0');
    return join(this.objectsDir, padded.slice(0, 2), padded.slice(2));
  }

  async put(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    const expected = options.expectedHash === undefined ? undefined : normalizeHash(options.expectedHash);
    if (expected === null) throw new BadRequest(`Invalid hash: ${options.expectedHash}`);
    const batch = options.batch instanceof DirectorySyncBatch ? options.batch : undefined;
    if (Array.isArray(source) && source.length === 1) return this.putBuffer(source[0], expected, options.maxBytes, batch);
    // A blob already stored under the expected hash is verified but not written again.
    const writing = expected === undefined || (await this.stat(expected)) === null;
    const tmpPath = this.tempPath();
    const handle = writing ? await open(tmpPath, 'wx') : null;
    try {
      const hasher = await createStreamHasher();
      // Pieces are hashed as they arrive and written a batch later: sources must not reuse their
      // buffers (HTTP bodies, file streams, gunzip and tar entries do not).
      const size = await streamToFile(source, handle, {
        maxBytes: options.maxBytes,
        tooLarge: (limit) => new PayloadTooLarge(`Content exceeds the limit of ${limit} bytes`),
        onPiece: (piece) => hasher.update(piece),
      });
      const hash = hasher.digest();
      if (expected !== undefined && expected !== hash) throw new HashMismatch(expected, hash);
      if (await this.alreadyStored(hash, batch)) return { hash, size, created: false };
      if (!handle) throw new Error(`Blob ${hash} was deleted while being verified; retry`);
      await handle.sync();
      await handle.close();
      await this.publish(tmpPath, hash, batch);
      return { hash, size, created: true };
    } finally {
      if (handle) {
        await handle.close().catch(() => {});
        await rm(tmpPath, { force: true });
      }
    }
  }

  /** Small blobs arrive whole: hash natively, and skip the write entirely when already stored. */
  private async putBuffer(
    data: Uint8Array,
    expected: string | undefined,
    maxBytes: number | undefined,
    batch: DirectorySyncBatch | undefined,
  ): Promise<PutResult> {
    if (maxBytes !== undefined && data.byteLength > maxBytes) {
      throw new PayloadTooLarge(`Content exceeds the limit of ${maxBytes} bytes`);
    }
    const hash = hashBuffer(data);
    if (expected !== undefined && expected !== hash) throw new HashMismatch(expected, hash);
    const size = data.byteLength;
    if (await this.alreadyStored(hash, batch)) return { hash, size, created: false };
    const tmpPath = this.tempPath();
    try {
      const handle = await open(tmpPath, 'wx');
      try {
        await handle.writeFile(data);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await this.publish(tmpPath, hash, batch);
      return { hash, size, created: true };
    } catch (err) {
      await rm(tmpPath, { force: true });
      throw err;
    }
  }

  /**
   * Whether the blob exists, marking it as just reused (its mtime) so that gc leaves it alone (see
   * deleteIfIdle). Another request may have renamed it into place without its directory sync yet;
   * take that barrier here too, so a deduplicated put is as durable as a written one.
   */
  private async alreadyStored(hash: string, batch: DirectorySyncBatch | undefined): Promise<boolean> {
    const path = this.pathOf(hash);
    const now = new Date();
    try {
      await utimes(path, now, now);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    const dir = dirname(path);
    if (batch) batch.dirs.add(dir);
    else await fsyncDir(dir);
    return true;
  }

  /** Renames a complete, synced temp file into place and makes the rename itself durable. */
  private async publish(tmpPath: string, hash: string, batch: DirectorySyncBatch | undefined): Promise<void> {
    const target = this.pathOf(hash);
    await rename(tmpPath, target);
    if (batch) batch.dirs.add(dirname(target));
    else await fsyncDir(dirname(target));
  }

  createBatch(): WriteBatch {
    return new DirectorySyncBatch();
  }

  async availableBytes(): Promise<number> {
    // bavail, not bfree: blocks reserved for root are not ours to promise.
    const fs = await statfs(this.objectsDir);
    return fs.bavail * fs.bsize;
  }

  async stat(hash: string): Promise<number | null> {
    try {
      return (await stat(this.pathOf(hash))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async get(hash: string, range?: ByteRange): Promise<Readable> {
    const path = this.pathOf(hash);
    // Open first so a missing blob is an error here, not inside the stream.
    const handle = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new NotFound(`Blob not found: ${hash}`);
      throw err;
    });
    return createReadStream('', { fd: handle, start: range?.start, end: range?.end, autoClose: true, highWaterMark: 1 << 20 });
  }

  async delete(hash: string): Promise<void> {
    await rm(this.pathOf(hash), { force: true });
  }

  async *list(): AsyncGenerator<StoredBlob> {
    for (const shard of (await readdir(this.objectsDir)).sort()) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue;
      for (const rest of await readdir(join(this.objectsDir, shard)).catch(() => [] as string[])) {
        const info = await stat(join(this.objectsDir, shard, rest)).catch(() => null);
        // Short hashes are stored padded with zeros; the canonical form drops them again.
        const hash = normalizeHash(shard + rest);
        if (info?.isFile() && hash !== null) yield { hash, size: info.size, touchedAt: info.mtimeMs };
      }
    }
  }

  /**
   * Moves the blob aside first, then looks at its time: a put that reused it before the move has
   * touched it (and it goes back), and a put after the move finds nothing and writes it anew.
   */
  async deleteIfIdle(hash: string, idleSince: number): Promise<boolean> {
    const path = this.pathOf(hash);
    const before = await stat(path).catch(() => null);
    if (before === null || before.mtimeMs >= idleSince) return false;
    const aside = join(this.tmpDir, `${process.pid}-gc-${randomUUID()}`);
    try {
      await rename(path, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    if ((await stat(aside)).mtimeMs >= idleSince) {
      // EEXIST: a put wrote the same bytes anew meanwhile; either copy will do.
      await link(aside, path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
      await rm(aside, { force: true });
      await fsyncDir(dirname(path));
      return false;
    }
    await rm(aside, { force: true });
    await fsyncDir(dirname(path));
    return true;
  }

  private uploadDir(uploadId: string): string {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(uploadId)) throw new BadRequest(`Invalid upload id: ${uploadId}`);
    return join(this.uploadsDir, uploadId);
  }

  private partPath(uploadId: string, part: number): string {
    if (!Number.isSafeInteger(part) || part < 0) throw new BadRequest(`Invalid part number: ${part}`);
    return join(this.uploadDir(uploadId), String(part));
  }

  async putPart(uploadId: string, part: number, source: AsyncIterable<Uint8Array>, options: { maxBytes?: number } = {}): Promise<number> {
    const target = this.partPath(uploadId, part);
    await mkdir(dirname(target), { recursive: true });
    const tmpPath = this.tempPath();
    const handle = await open(tmpPath, 'wx');
    try {
      const size = await streamToFile(source, handle, {
        maxBytes: options.maxBytes,
        tooLarge: (limit) => new PayloadTooLarge(`Part exceeds the limit of ${limit} bytes`),
      });
      await handle.sync();
      await handle.close();
      await rename(tmpPath, target);
      await fsyncDir(dirname(target));
      return size;
    } finally {
      await handle.close().catch(() => {});
      await rm(tmpPath, { force: true });
    }
  }

  async getPart(uploadId: string, part: number): Promise<Readable> {
    const handle = await open(this.partPath(uploadId, part), 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new NotFound(`Part ${part} of upload ${uploadId} not found`);
      throw err;
    });
    return createReadStream('', { fd: handle, highWaterMark: 1 << 20 });
  }

  /** In-place uploads this process is writing, completing or hashing ahead. */
  private readonly inPlace = new Map<string, InPlaceUpload>();

  private inPlaceUpload(uploadId: string): InPlaceUpload {
    let upload = this.inPlace.get(uploadId);
    if (!upload) this.inPlace.set(uploadId, (upload = { writers: 0, idle: [], aborts: new Set(), completing: false, ready: null, discards: 0, created: false, hashing: null }));
    return upload;
  }

  /** Forgets an upload once nothing of it is under way here (the hash-ahead state stays while it is useful). */
  private releaseInPlace(uploadId: string, upload: InPlaceUpload): void {
    if (upload.writers === 0 && !upload.completing && upload.hashing === null && this.inPlace.get(uploadId) === upload) this.inPlace.delete(uploadId);
  }

  writeAt(uploadId: string, offset: number, source: AsyncIterable<Uint8Array>, options: { maxBytes?: number } = {}): Promise<number> {
    // Registered before the first await: a completion that starts after this call cuts this write off
    // and waits for it to end, and a write that starts after a completion is refused, so no byte can
    // land in the file while it is verified and published as a blob.
    const upload = this.inPlaceUpload(uploadId);
    if (upload.completing) return Promise.reject(new Conflict(`Upload ${uploadId} is being completed`));
    upload.writers += 1;
    // Most recently written last: limitHashAhead stops the least recently written first.
    this.inPlace.delete(uploadId);
    this.inPlace.set(uploadId, upload);
    return this.writeInPlace(uploadId, upload, offset, source, options).finally(() => {
      upload.writers -= 1;
      if (upload.writers === 0) {
        for (const wake of upload.idle.splice(0)) wake();
        this.releaseInPlace(uploadId, upload);
      }
    });
  }

  private async writeInPlace(uploadId: string, upload: InPlaceUpload, offset: number, source: AsyncIterable<Uint8Array>, options: { maxBytes?: number }): Promise<number> {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new BadRequest(`Invalid offset: ${offset}`);
    const staged = join(this.uploadDir(uploadId), IN_PLACE_FILE);
    upload.ready ??= this.prepareStaged(uploadId, upload).catch((err) => {
      upload.ready = null;
      throw err;
    });
    await upload.ready;
    // Read-write, without creating: a file completed or discarded meanwhile is not brought back.
    const handle = await open(staged, constants.O_RDWR).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new Conflict(`Upload ${uploadId} was completed or discarded`);
      throw err;
    });
    const hashing = upload.hashing;
    const write = hashing?.begin(offset);
    const abort = new AbortController();
    const cutOff = () => abort.abort(new Conflict(`Upload ${uploadId} is being completed`));
    upload.aborts.add(cutOff);
    if (upload.completing) cutOff(); // a completion began while this write was getting ready
    let written: number | null = null;
    try {
      const length = await streamToFile(abortable(source, abort.signal), handle, {
        position: offset,
        maxBytes: options.maxBytes,
        tooLarge: (limit) => new PayloadTooLarge(`Chunk exceeds the limit of ${limit} bytes`),
      });
      await handle.datasync();
      written = length;
      return length;
    } finally {
      upload.aborts.delete(cutOff);
      await handle.close();
      if (write) hashing!.end(write, written);
    }
  }

  /**
   * Runs once per upload in this process, before its first write: creates the staged file, and
   * with it the hash-ahead state, or, if the file exists already (another process or an earlier
   * run made it), marks the upload shared, so no process trusts what it hashed ahead.
   */
  private async prepareStaged(uploadId: string, upload: InPlaceUpload): Promise<void> {
    const dir = this.uploadDir(uploadId);
    const staged = join(dir, IN_PLACE_FILE);
    const discards = upload.discards;
    await mkdir(dir, { recursive: true });
    const hasher = await createStreamHasher();
    try {
      await (await open(staged, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o644)).close();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      await writeFile(join(dir, SHARED_MARKER), '');
      return;
    }
    if (upload.discards !== discards) return; // deleteParts ran meanwhile
    upload.created = true;
    upload.hashing = new PrefixHasher(hasher, (start, end, into) => hashStagedRange(staged, start, end, into));
    this.limitHashAhead(uploadId);
  }

  /** Keeps at most MAX_HASH_AHEAD uploads hashed ahead (abandoned uploads wait for expiry); the oldest idle ones stop. */
  private limitHashAhead(current: string): void {
    const hashed = [...this.inPlace].filter(([, upload]) => upload.hashing !== null);
    for (const [id, upload] of hashed.slice(0, Math.max(0, hashed.length - MAX_HASH_AHEAD))) {
      if (id === current || upload.writers > 0 || upload.completing) continue;
      upload.hashing!.abandon();
      upload.hashing = null;
      this.releaseInPlace(id, upload);
    }
  }

  async readAt(uploadId: string, start: number, end: number): Promise<Readable> {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) throw new BadRequest(`Invalid range: ${start}-${end}`);
    const handle = await open(join(this.uploadDir(uploadId), IN_PLACE_FILE), 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new NotFound(`Upload ${uploadId} has no data`);
      throw err;
    });
    return readRange(handle, start, end);
  }

  async commitUpload(uploadId: string, size: number, expectedHash: string): Promise<PutResult> {
    const expected = normalizeHash(expectedHash);
    if (expected === null) throw new BadRequest(`Invalid hash: ${expectedHash}`);
    const dir = this.uploadDir(uploadId);
    const staged = join(dir, IN_PLACE_FILE);
    const upload = this.inPlaceUpload(uploadId);
    if (upload.completing) throw new Conflict(`Upload ${uploadId} is being completed`);
    upload.completing = true;
    try {
      // Writes still arriving are cut off rather than waited for: a stalled request would hold the
      // completion forever. What they wrote is verified with the rest.
      for (const cutOff of upload.aborts) cutOff();
      if (upload.writers > 0) await new Promise<void>((resolve) => upload.idle.push(resolve));
      const hashing = upload.hashing;
      upload.hashing = null;
      const ahead = hashing === null ? null : await hashing.settle();
      const createdHere = upload.created;
      // Take the file out of every writer's reach before looking at it. A writer of another process
      // writes the shared marker before it opens a file it did not create, so if this process created
      // the file and there is no marker after this rename, no other process holds, or can get, a
      // handle on these bytes; otherwise they are copied.
      const taken = join(dir, `completing-${randomUUID()}`);
      await rename(staged, taken).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') throw new NotFound(`Upload ${uploadId} has no data`);
        throw err;
      });
      try {
        if (!createdHere || (await exists(join(dir, SHARED_MARKER)))) return await this.copyVerified(taken, size, expected);
        return await this.publishTaken(taken, size, expected, ahead);
      } catch (err) {
        // Staged as before, for the caller to discard or retry. Another process may have created a new
        // staged file meanwhile: it is not replaced, and the marker keeps anyone from trusting its hash.
        await writeFile(join(dir, SHARED_MARKER), '').catch(() => {});
        await link(taken, staged).catch(() => {});
        throw err;
      } finally {
        await rm(taken, { force: true });
      }
    } finally {
      upload.completing = false;
      this.releaseInPlace(uploadId, upload);
    }
  }

  /** Verifies a staged file only this process can reach (resuming the hash computed ahead) and renames it into place. */
  private async publishTaken(path: string, size: number, expected: string, ahead: { hasher: StreamHasher; length: number } | null): Promise<PutResult> {
    const handle = await open(path, 'r+');
    try {
      await handle.truncate(size);
      let hash: string;
      if (ahead !== null && ahead.length <= size) {
        await hashFileRange(handle, ahead.length, size, ahead.hasher);
        hash = ahead.hasher.digest();
      } else {
        hash = await hashFilePrefix(handle, size);
      }
      if (hash !== expected) throw new HashMismatch(expected, hash);
      if (await this.alreadyStored(hash, undefined)) return { hash, size, created: false };
      await handle.sync();
      await handle.close();
      await this.publish(path, hash, undefined);
      return { hash, size, created: true };
    } finally {
      await handle.close().catch(() => {});
    }
  }

  /** A staged file another process may still write to becomes a blob of its own, verified as it is copied. */
  private async copyVerified(path: string, size: number, expected: string): Promise<PutResult> {
    const source = readRange(await open(path, 'r'), 0, size);
    try {
      const result = await this.put(source, { expectedHash: expected });
      if (result.size !== size) throw new HashMismatch(expected, `${result.hash} (${result.size} of ${size} bytes)`);
      return result;
    } finally {
      source.destroy();
    }
  }

  async deleteParts(uploadId: string): Promise<void> {
    const upload = this.inPlace.get(uploadId);
    if (upload) {
      upload.hashing?.abandon();
      upload.hashing = null;
      upload.ready = null;
      upload.created = false;
      upload.discards += 1;
      this.releaseInPlace(uploadId, upload);
    }
    await rm(this.uploadDir(uploadId), { recursive: true, force: true });
  }

  async *listStagedUploads(): AsyncGenerator<{ uploadId: string; touchedAt: number }> {
    for (const uploadId of await readdir(this.uploadsDir)) {
      const dir = join(this.uploadsDir, uploadId);
      const info = await stat(dir).catch(() => null);
      if (!info?.isDirectory()) continue;
      // Writes in place change the file, not the directory.
      let touchedAt = info.mtimeMs;
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        const file = await stat(join(dir, name)).catch(() => null);
        if (file) touchedAt = Math.max(touchedAt, file.mtimeMs);
      }
      yield { uploadId, touchedAt };
    }
  }

  async close(): Promise<void> {
    for (const upload of this.inPlace.values()) {
      upload.hashing?.abandon();
      await upload.hashing?.settle();
    }
  }
}

/**
 * `source`, ending with the signal's reason once it is aborted, even while the source is stalled.
 * A stream (a request body, a file) is destroyed with that reason and iterated as it is; any other
 * iterable is wrapped, and closed when aborted.
 */
function abortable(source: AsyncIterable<Uint8Array>, signal: AbortSignal): AsyncIterable<Uint8Array> {
  if (source instanceof Readable) {
    const cut = () => source.destroy(signal.reason as Error);
    if (signal.aborted) cut();
    else signal.addEventListener('abort', cut, { once: true });
    return source;
  }
  return abortableIterable(source, signal);
}

async function* abortableIterable(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  const iterator = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
  // One listener rejects whichever piece is awaited (a promise raced against every piece would keep
  // each piece reachable through its reactions until the write ends).
  let rejectPending: ((reason: unknown) => void) | null = null;
  const onAbort = () => rejectPending?.(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      if (signal.aborted) throw signal.reason;
      const result = await new Promise<IteratorResult<Uint8Array>>((resolve, reject) => {
        rejectPending = reject;
        Promise.resolve(iterator.next()).then(resolve, reject);
      });
      rejectPending = null;
      if (result.done) return;
      yield result.value;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    // return() waits for a pending next(), which a stalled source may never settle: not awaited.
    void Promise.resolve(iterator.return?.()).catch(() => {});
  }
}

/** Streams bytes [start, end) of an open file, closing it when done (at once for an empty range). */
function readRange(handle: FileHandle, start: number, end: number): Readable {
  if (end === start) {
    void handle.close();
    return Readable.from([]);
  }
  return createReadStream('', { fd: handle, start, end: end - 1, highWaterMark: 1 << 20 });
}

async function hashStagedRange(path: string, start: number, end: number, hasher: StreamHasher): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await hashFileRange(handle, start, end, hasher);
  } finally {
    await handle.close();
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw err;
    },
  );
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
