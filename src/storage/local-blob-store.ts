import { close as closeFd, createReadStream, open as openFd, read as readFd } from 'node:fs';
import { constants } from 'node:fs';
import { link, mkdir, open, readdir, rename, rm, stat, statfs, utimes, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { createStreamHasher, hashBuffer } from '../core/hash.js';
import { BadRequest, HashMismatch, NotFound, PayloadTooLarge } from '../core/errors.js';
import { normalizeHash } from '../core/hash.js';
import { BlobFileReader, type FileReadError } from './blob-file-reader.js';
import { BlobFileWriter } from './blob-file-writer.js';
import type { BlobStore, ByteRange, HashFrontier, PutOptions, PutResult, StagedPart, StoredBlob, WriteBatch } from './blob-store.js';
import { hashFileRange, streamToFile } from './file-writes.js';
import { layoutParts } from './staging.js';

const STALE_TEMP_MS = 24 * 60 * 60 * 1000;
/**
 * Whole blobs up to this size are written by the worker (BlobFileWriter), which takes a copy of them; larger ones
 * from the main thread, where their trips cost little beside their bytes and no copy is made.
 */
const WORKER_WRITE_BYTES = 64 * 1024;

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
  /** Batch downloads' reads and stats of many small blobs (worker threads, synchronous calls). */
  private readonly reader = new BlobFileReader();
  /** Small whole blobs' writes (a worker thread; only fsync goes through the thread pool). */
  private readonly writer = new BlobFileWriter();

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

  localPath(hash: string): string {
    return this.pathOf(hash);
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
    if (size <= WORKER_WRITE_BYTES) {
      const target = this.pathOf(hash);
      // Written, or found and marked as reused (as alreadyStored does); either way the directory's sync is the barrier.
      const created = await this.writer.write(this.tempPath(), target, data);
      if (batch) batch.dirs.add(dirname(target));
      else await fsyncDir(dirname(target));
      return { hash, size, created };
    }
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

  async read(hash: string, range: ByteRange): Promise<Buffer> {
    // The callback API, not fs/promises: a FileHandle (its object, promises and close) cost more CPU than
    // the read of a small file itself.
    const fd = await new Promise<number>((resolve, reject) =>
      openFd(this.pathOf(hash), 'r', (err, fd) => (err ? reject(err.code === 'ENOENT' ? new NotFound(`Blob not found: ${hash}`) : err) : resolve(fd))),
    );
    try {
      const bytes = Buffer.allocUnsafe(range.end - range.start + 1);
      for (let filled = 0; filled < bytes.length; ) {
        const read = await new Promise<number>((resolve, reject) => readFd(fd, bytes, filled, bytes.length - filled, range.start + filled, (err, n) => (err ? reject(err) : resolve(n))));
        if (read === 0) throw new Error(`Blob ${hash} ends before byte ${range.end}`);
        filled += read;
      }
      return bytes;
    } finally {
      await new Promise<void>((resolve) => closeFd(fd, () => resolve()));
    }
  }

  async readMany(blobs: Array<{ hash: string; size: number }>): Promise<Buffer[]> {
    let bytes: Buffer;
    try {
      bytes = await this.reader.read(blobs.map((b) => this.pathOf(b.hash)), blobs.map((b) => b.size));
    } catch (err) {
      const { code, index } = err as FileReadError;
      const failed = index === undefined ? undefined : blobs[index];
      if (!failed) throw err;
      throw code === 'ENOENT' ? new NotFound(`Blob not found: ${failed.hash}`) : new Error(`Blob ${failed.hash} ${(err as Error).message}`);
    }
    let at = 0;
    return blobs.map((b) => bytes.subarray(at, (at += b.size)));
  }

  async statMany(hashes: string[]): Promise<Array<number | null>> {
    const sizes = await this.reader.stat(hashes.map((hash) => this.pathOf(hash)));
    return Array.from(sizes, (size) => (size < 0 ? null : size));
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

  /**
   * A part with an offset is written in place, into the one file its upload is assembled in, so that
   * completing a large upload moves no bytes (durable once `datasync` returns); a part without one is a
   * file of its own, renamed into place once complete.
   */
  async putPart(uploadId: string, part: number, offset: number | null, source: AsyncIterable<Uint8Array>, options: { maxBytes?: number } = {}): Promise<{ size: number; tag: string }> {
    const tooLarge = (limit: number) => new PayloadTooLarge(`Part exceeds the limit of ${limit} bytes`);
    if (offset !== null) {
      if (!Number.isSafeInteger(offset) || offset < 0) throw new BadRequest(`Invalid offset: ${offset}`);
      const dir = this.uploadDir(uploadId);
      await mkdir(dir, { recursive: true });
      const handle = await open(join(dir, IN_PLACE_FILE), constants.O_RDWR | constants.O_CREAT, 0o644);
      try {
        const size = await streamToFile(source, handle, { position: offset, maxBytes: options.maxBytes, tooLarge });
        await handle.datasync();
        return { size, tag: '' };
      } finally {
        await handle.close();
      }
    }
    const target = this.partPath(uploadId, part);
    await mkdir(dirname(target), { recursive: true });
    const tmpPath = this.tempPath();
    const handle = await open(tmpPath, 'wx');
    try {
      const size = await streamToFile(source, handle, { maxBytes: options.maxBytes, tooLarge });
      await handle.sync();
      await handle.close();
      await rename(tmpPath, target);
      await fsyncDir(dirname(target));
      return { size, tag: '' };
    } finally {
      await handle.close().catch(() => {});
      await rm(tmpPath, { force: true });
    }
  }

  async getPart(uploadId: string, part: StagedPart, range?: { start: number; end: number }): Promise<Readable> {
    const start = range?.start ?? 0;
    const end = range?.end ?? part.size;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) throw new BadRequest(`Invalid range: ${start}-${end}`);
    const inPlace = part.offset !== null;
    const path = inPlace ? join(this.uploadDir(uploadId), IN_PLACE_FILE) : this.partPath(uploadId, part.part);
    const handle = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new NotFound(`Part ${part.part} of upload ${uploadId} not found`);
      throw err;
    });
    const base = inPlace ? part.offset! : 0;
    return readRange(handle, base + start, base + end);
  }

  /**
   * Parts written in place are there already; parts of their own are copied into the in-place file
   * (an upload of one such part is published as that file). Then only the bytes after the frontier are
   * read back and hashed before the file is renamed into place.
   */
  async completeParts(uploadId: string, parts: StagedPart[], size: number, expectedHash: string, frontier: HashFrontier | null): Promise<PutResult> {
    const expected = normalizeHash(expectedHash);
    if (expected === null) throw new BadRequest(`Invalid hash: ${expectedHash}`);
    const layout = layoutParts(parts, size);
    if ('gap' in layout) throw new BadRequest(`Upload ${uploadId} is missing bytes at offset ${layout.gap}`, { missing_offset: layout.gap });
    const [first] = layout.segments;
    const whole = layout.segments.length === 1 && first.part.offset === null;
    const path = whole ? this.partPath(uploadId, first.part.part) : join(this.uploadDir(uploadId), IN_PLACE_FILE);
    const handle = await open(path, whole ? 'r+' : constants.O_RDWR | constants.O_CREAT, 0o644).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new NotFound(`Upload ${uploadId} has no data`);
      throw err;
    });
    try {
      if (!whole) {
        for (const segment of layout.segments) {
          if (segment.part.offset !== null) continue;
          await streamToFile(await this.getPart(uploadId, segment.part, segment), handle, { position: segment.at });
        }
      }
      const resumed = frontier !== null && frontier.through <= size ? await createStreamHasher(frontier.state).catch(() => null) : null;
      const hasher = resumed ?? (await createStreamHasher());
      await hashFileRange(handle, resumed ? frontier!.through : 0, size, hasher);
      const hash = hasher.digest();
      if (hash !== expected) throw new HashMismatch(expected, hash);
      let created = false;
      if (!(await this.alreadyStored(hash, undefined))) {
        await handle.truncate(size);
        await handle.sync();
        await handle.close();
        await this.publish(path, hash, undefined);
        created = true;
      }
      await this.deleteParts(uploadId);
      return { hash, size, created };
    } finally {
      await handle.close().catch(() => {});
    }
  }

  async deleteParts(uploadId: string): Promise<void> {
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
    await this.reader.close();
    await this.writer.close();
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

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
