import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { createStreamHasher, hashBuffer, normalizeHash } from '../core/hash.js';
import { BadRequest, HashMismatch, NotFound, PayloadTooLarge } from '../core/errors.js';
import type { BlobStore, ByteRange, HashFrontier, PutOptions, PutResult, StagedPart, StoredBlob, WriteBatch } from './blob-store.js';
import { hashAssembled, layoutParts, type Segment } from './staging.js';

export interface S3Settings {
  bucket: string;
  /** A custom endpoint (radosgw, MinIO, …); path-style addressing is used with one. */
  endpoint: string | null;
  region: string;
  /** Prepended to every key, so several deployments can share a bucket. */
  prefix: string;
  /** Credentials; null takes the SDK's default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, …). */
  credentials: { accessKeyId: string; secretAccessKey: string } | null;
}

/** Bodies up to this size are buffered, hashed and sent in one PutObject; larger ones go multipart. */
const PART_BYTES = 8 * 1024 * 1024;
/** S3's smallest part (all but the last) and largest single copy. */
const MIN_PART_BYTES = 5 * 1024 * 1024;
const MAX_COPY_BYTES = 1024 * 1024 * 1024;

const NO_BATCH: WriteBatch = { commit: async () => {} };

/**
 * Blobs in an S3-compatible bucket: `<prefix>blobs/<32 hex>`. A blob is visible only once complete and
 * verified: small ones are hashed before the PutObject, large ones go to a multipart upload that is
 * completed only after the streamed hash matched (aborted otherwise). Staged parts are objects of their own,
 * `<prefix>staging/<upload>/<part>.<tag>`, a fresh tag per attempt; completion copies them into the blob on
 * the server side when S3's part sizes allow, and streams them otherwise.
 */
export class S3BlobStore implements BlobStore {
  readonly remote = true;

  private constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
  ) {}

  /** Connects and makes sure the bucket exists (creating it if it does not). */
  static async open(settings: S3Settings): Promise<S3BlobStore> {
    const client = new S3Client({
      region: settings.region,
      ...(settings.endpoint ? { endpoint: settings.endpoint, forcePathStyle: true } : {}),
      ...(settings.credentials ? { credentials: settings.credentials } : {}),
      // The SDK's default flexible checksums send streamed bodies as aws-chunked with trailers, which
      // radosgw refuses (and some S3 servers store verbatim); Yoke verifies content by its own hash.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    try {
      await client.send(new HeadBucketCommand({ Bucket: settings.bucket }));
    } catch (err) {
      if (!isMissing(err)) throw err;
      await client.send(new CreateBucketCommand({ Bucket: settings.bucket }));
    }
    return new S3BlobStore(client, settings.bucket, settings.prefix);
  }

  private blobKey(hash: string): string {
    const canonical = normalizeHash(hash);
    if (canonical === null) throw new BadRequest(`Invalid hash: ${hash}`);
    return `${this.prefix}blobs/${canonical.padStart(32, '0')}`;
  }

  private stagingPrefix(uploadId: string): string {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(uploadId)) throw new BadRequest(`Invalid upload id: ${uploadId}`);
    return `${this.prefix}staging/${uploadId}/`;
  }

  private partKey(uploadId: string, part: number, tag: string): string {
    if (!Number.isSafeInteger(part) || part < 0) throw new BadRequest(`Invalid part number: ${part}`);
    return `${this.stagingPrefix(uploadId)}${part}.${tag}`;
  }

  async put(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: PutOptions = {}): Promise<PutResult> {
    const expected = options.expectedHash === undefined ? undefined : normalizeHash(options.expectedHash);
    if (expected === null) throw new BadRequest(`Invalid hash: ${options.expectedHash}`);
    const pieces = pieceReader(source, options.maxBytes);
    const first = await pieces.take(PART_BYTES);
    if (first.done) {
      const hash = hashBuffer(first.bytes);
      if (expected !== undefined && expected !== hash) throw new HashMismatch(expected, hash);
      return { hash, size: first.bytes.length, created: await this.putSmall(hash, first.bytes) };
    }
    // Already stored under the expected hash: the bytes are verified, not sent again.
    if (expected !== undefined && (await this.stat(expected)) !== null) {
      const hasher = await createStreamHasher();
      let size = 0;
      for (let next = first; ; next = await pieces.take(PART_BYTES)) {
        hasher.update(next.bytes);
        size += next.bytes.length;
        if (next.done) break;
      }
      const hash = hasher.digest();
      if (hash !== expected) throw new HashMismatch(expected, hash);
      await this.touch(hash);
      return { hash, size, created: false };
    }
    // Without an expected hash the final key is known only at the end: the bytes go to a scratch key first.
    const key = expected !== undefined ? this.blobKey(expected) : `${this.prefix}tmp/${randomUUID()}`;
    const { size, hash } = await this.multipartPut(key, first.bytes, pieces, (actual) => {
      if (expected !== undefined && actual !== expected) throw new HashMismatch(expected, actual);
    });
    if (expected !== undefined) return { hash, size, created: true };
    try {
      if (await this.touch(hash)) return { hash, size, created: false };
      await this.copyWhole(key, size, this.blobKey(hash));
      return { hash, size, created: true };
    } finally {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    }
  }

  /**
   * Streams `first` and the rest of `pieces` into a multipart upload of `key`, hashing as it goes; `check`
   * sees the hash before the upload is completed, and a throw aborts it (nothing becomes visible).
   */
  private async multipartPut(key: string, first: Buffer, pieces: PieceReader, check: (hash: string) => void): Promise<{ size: number; hash: string }> {
    const hasher = await createStreamHasher();
    const { UploadId } = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, Metadata: touchedNow() }));
    const parts: CompletedPart[] = [];
    let size = 0;
    try {
      let next: { bytes: Buffer; done: boolean } = { bytes: first, done: false };
      for (;;) {
        if (next.bytes.length > 0 || parts.length === 0) {
          hasher.update(next.bytes);
          size += next.bytes.length;
          const PartNumber = parts.length + 1;
          const { ETag } = await this.client.send(new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId, PartNumber, Body: next.bytes, ContentLength: next.bytes.length }));
          parts.push({ PartNumber, ETag });
        }
        if (next.done) break;
        next = await pieces.take(PART_BYTES);
      }
      const hash = hasher.digest();
      check(hash);
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
      return { size, hash };
    } catch (err) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId })).catch(() => {});
      throw err;
    }
  }

  /**
   * Stores a small verified blob in one request when it is new: a PutObject only if absent (`If-None-Match: *`,
   * which radosgw and AWS answer 412 when the key exists); an existing blob is then touched instead. Answers
   * whether it was created. A store that ignores the condition overwrites the same bytes: still correct.
   */
  private async putSmall(hash: string, bytes: Buffer): Promise<boolean> {
    for (;;) {
      try {
        await this.client.send(
          new PutObjectCommand({ Bucket: this.bucket, Key: this.blobKey(hash), Body: bytes, ContentLength: bytes.length, Metadata: touchedNow(), IfNoneMatch: '*' }),
        );
        return true;
      } catch (err) {
        if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 412) throw err;
      }
      if (await this.touch(hash)) return false;
      // Deleted between the two requests (gc after its grace period): store it again.
    }
  }

  /** True if the blob exists; it is then marked as just reused (its modification time), so gc spares it. */
  private async touch(hash: string): Promise<boolean> {
    const key = this.blobKey(hash);
    try {
      await this.client.send(
        new CopyObjectCommand({ Bucket: this.bucket, Key: key, CopySource: `${this.bucket}/${key}`, MetadataDirective: 'REPLACE', Metadata: touchedNow() }),
      );
      return true;
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  /** Server-side copy of a whole object of `size` bytes (multipart above S3's single-copy limit). */
  private async copyWhole(from: string, size: number, to: string): Promise<void> {
    if (size <= MAX_COPY_BYTES) {
      await this.client.send(new CopyObjectCommand({ Bucket: this.bucket, Key: to, CopySource: `${this.bucket}/${from}`, MetadataDirective: 'REPLACE', Metadata: touchedNow() }));
      return;
    }
    await this.copyRanges([{ key: from, start: 0, end: size }], to);
  }

  /** Publishes the concatenation of object ranges as `to`, copied on the server; every range but the last ≥ 5 MiB. */
  private async copyRanges(ranges: Array<{ key: string; start: number; end: number }>, to: string): Promise<void> {
    const { UploadId } = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: to, Metadata: touchedNow() }));
    try {
      const parts: CompletedPart[] = [];
      for (const range of ranges) {
        // Even pieces of at most 1 GiB, so that none but the very last falls below S3's smallest part.
        const count = Math.max(1, Math.ceil((range.end - range.start) / MAX_COPY_BYTES));
        const piece = Math.ceil((range.end - range.start) / count);
        for (let at = range.start; at < range.end; at += piece) {
          const end = Math.min(at + piece, range.end);
          const PartNumber = parts.length + 1;
          const { CopyPartResult } = await this.client.send(
            new UploadPartCopyCommand({ Bucket: this.bucket, Key: to, UploadId, PartNumber, CopySource: `${this.bucket}/${range.key}`, CopySourceRange: `bytes=${at}-${end - 1}` }),
          );
          parts.push({ PartNumber, ETag: CopyPartResult?.ETag });
        }
      }
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: to, UploadId, MultipartUpload: { Parts: parts } }));
    } catch (err) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: to, UploadId })).catch(() => {});
      throw err;
    }
  }

  createBatch(): WriteBatch {
    // A PutObject is durable once acknowledged: there is no barrier to defer.
    return NO_BATCH;
  }

  async availableBytes(): Promise<null> {
    return null;
  }

  async stat(hash: string): Promise<number | null> {
    try {
      return (await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.blobKey(hash) }))).ContentLength ?? 0;
    } catch (err) {
      if (isMissing(err)) return null;
      throw err;
    }
  }

  async *list(): AsyncGenerator<StoredBlob> {
    for await (const object of this.listKeys(`${this.prefix}blobs/`)) {
      const hash = normalizeHash(object.key.slice(this.prefix.length + 'blobs/'.length));
      // LastModified has whole seconds: rounded up, so gc never takes a blob for older than it is.
      if (hash !== null) yield { hash, size: object.size, touchedAt: object.modified + 999 };
    }
  }

  private async *listKeys(prefix: string): AsyncGenerator<{ key: string; size: number; modified: number }> {
    let ContinuationToken: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken }));
      for (const object of page.Contents ?? []) {
        if (object.Key) yield { key: object.Key, size: object.Size ?? 0, modified: object.LastModified?.getTime() ?? 0 };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  /**
   * S3 has no conditional delete that radosgw 16 honours: the time is checked, then the object deleted. A put
   * that reuses the blob between the two (milliseconds, after gc's grace period of not being referenced) would
   * find it gone afterwards — the race `docs/ARCHITECTURE.md` §4(l) names.
   */
  async deleteIfIdle(hash: string, idleSince: number): Promise<boolean> {
    const key = this.blobKey(hash);
    let modified: number;
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      modified = Number(head.Metadata?.touched) || (head.LastModified?.getTime() ?? 0) + 999;
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
    if (modified >= idleSince) return false;
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    return true;
  }

  async get(hash: string, range?: ByteRange): Promise<Readable> {
    return this.getObject(this.blobKey(hash), range ? { start: range.start, end: range.end + 1 } : undefined, `Blob not found: ${hash}`);
  }

  async read(hash: string, range: ByteRange): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.get(hash, range)) chunks.push(chunk as Buffer);
    const bytes = Buffer.concat(chunks);
    // S3 answers a range past the end with the bytes there are.
    if (bytes.length !== range.end - range.start + 1) throw new Error(`Blob ${hash} ends before byte ${range.end}`);
    return bytes;
  }

  /** `range` is [start, end); an empty range is an empty stream without a request. */
  private async getObject(key: string, range: { start: number; end: number } | undefined, missing: string): Promise<Readable> {
    if (range && range.end <= range.start) return Readable.from([]);
    try {
      const { Body } = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: range ? `bytes=${range.start}-${range.end - 1}` : undefined }));
      return Body as Readable;
    } catch (err) {
      if (isMissing(err)) throw new NotFound(missing);
      throw err;
    }
  }

  async delete(hash: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.blobKey(hash) }));
  }

  async putPart(uploadId: string, part: number, _offset: number | null, source: AsyncIterable<Uint8Array>, options: { maxBytes?: number } = {}): Promise<{ size: number; tag: string }> {
    const tag = randomUUID().slice(0, 8);
    const key = this.partKey(uploadId, part, tag);
    const pieces = pieceReader(source, options.maxBytes, (limit) => new PayloadTooLarge(`Part exceeds the limit of ${limit} bytes`));
    const first = await pieces.take(PART_BYTES);
    if (first.done) {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: first.bytes, ContentLength: first.bytes.length }));
      return { size: first.bytes.length, tag };
    }
    const { size } = await this.multipartPut(key, first.bytes, pieces, () => {});
    return { size, tag };
  }

  async getPart(uploadId: string, part: StagedPart, range?: { start: number; end: number }): Promise<Readable> {
    return this.getObject(this.partKey(uploadId, part.part, part.tag), range ?? { start: 0, end: part.size }, `Part ${part.part} of upload ${uploadId} not found`);
  }

  async completeParts(uploadId: string, parts: StagedPart[], size: number, expectedHash: string, frontier: HashFrontier | null): Promise<PutResult> {
    const expected = normalizeHash(expectedHash);
    if (expected === null) throw new BadRequest(`Invalid hash: ${expectedHash}`);
    const layout = layoutParts(parts, size);
    if ('gap' in layout) throw new BadRequest(`Upload ${uploadId} is missing bytes at offset ${layout.gap}`, { missing_offset: layout.gap });
    const resumed = frontier !== null && frontier.through <= size ? await createStreamHasher(frontier.state).catch(() => null) : null;
    const hasher = resumed ?? (await createStreamHasher());
    const read = (part: StagedPart, range: { start: number; end: number }) => this.getPart(uploadId, part, range);
    await hashAssembled(layout.segments, resumed ? frontier!.through : 0, size, hasher, read);
    const hash = hasher.digest();
    if (hash !== expected) throw new HashMismatch(expected, hash);
    let created = false;
    if (!(await this.touch(hash))) {
      await this.publishSegments(uploadId, layout.segments, this.blobKey(hash), read);
      created = true;
    }
    await this.deleteParts(uploadId);
    return { hash, size, created };
  }

  /** Server-side copies when every segment but the last is at least S3's smallest part; else the bytes are streamed. */
  private async publishSegments(uploadId: string, segments: Segment[], to: string, read: (part: StagedPart, range: { start: number; end: number }) => Promise<Readable>): Promise<void> {
    const copyable = segments.every((s, i) => i === segments.length - 1 || s.end - s.start >= MIN_PART_BYTES);
    if (copyable && segments.length > 0) {
      await this.copyRanges(segments.map((s) => ({ key: this.partKey(uploadId, s.part.part, s.part.tag), start: s.start, end: s.end })), to);
      return;
    }
    async function* assembled() {
      for (const s of segments) yield* (await read(s.part, s)) as AsyncIterable<Uint8Array>;
    }
    const pieces = pieceReader(assembled());
    const first = await pieces.take(PART_BYTES);
    if (first.done) {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: to, Body: first.bytes, ContentLength: first.bytes.length, Metadata: touchedNow() }));
      return;
    }
    // Verified already; multipartPut hashes what it sends again, which costs little beside the transfer.
    await this.multipartPut(to, first.bytes, pieces, () => {});
  }

  async deleteParts(uploadId: string): Promise<void> {
    const keys: string[] = [];
    for await (const object of this.listKeys(this.stagingPrefix(uploadId))) keys.push(object.key);
    for (let i = 0; i < keys.length; i += 1000) {
      await this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true } }));
    }
  }

  async *listStagedUploads(): AsyncGenerator<{ uploadId: string; touchedAt: number }> {
    const uploads = new Map<string, number>();
    const root = `${this.prefix}staging/`;
    for await (const object of this.listKeys(root)) {
      const uploadId = object.key.slice(root.length).split('/')[0];
      uploads.set(uploadId, Math.max(uploads.get(uploadId) ?? 0, object.modified));
    }
    for (const [uploadId, touchedAt] of uploads) yield { uploadId, touchedAt };
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

/**
 * When a put wrote or reused a blob (ms), kept as object metadata: S3's LastModified has whole seconds, too
 * coarse for gc's check against a time a few milliseconds old.
 */
function touchedNow(): Record<string, string> {
  return { touched: String(Date.now()) };
}

function isMissing(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.name === 'NoSuchBucket' || e?.$metadata?.httpStatusCode === 404;
}

interface PieceReader {
  /** Up to `bytes` bytes (fewer only at the end, `done`). */
  take(bytes: number): Promise<{ bytes: Buffer; done: boolean }>;
}

/** Reads a source in buffers of a chosen size, refusing more than `maxBytes` in all. */
function pieceReader(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, maxBytes?: number, tooLarge = (limit: number) => new PayloadTooLarge(`Content exceeds the limit of ${limit} bytes`)): PieceReader {
  const iterator = Symbol.asyncIterator in source ? (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]() : (source as Iterable<Uint8Array>)[Symbol.iterator]();
  let carry: Buffer | null = null;
  let ended = false;
  let total = 0;
  return {
    async take(bytes) {
      const pieces: Buffer[] = [];
      let length = 0;
      while (length < bytes) {
        let piece: Buffer;
        if (carry) {
          piece = carry;
          carry = null;
        } else {
          if (ended) break;
          const next = await iterator.next();
          if (next.done) {
            ended = true;
            break;
          }
          piece = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
          total += piece.length;
          if (maxBytes !== undefined && total > maxBytes) throw tooLarge(maxBytes);
        }
        if (length + piece.length > bytes) {
          carry = piece.subarray(bytes - length);
          piece = piece.subarray(0, bytes - length);
        }
        pieces.push(piece);
        length += piece.length;
      }
      // Done once nothing is left: peek one piece ahead so an exact multiple is not mistaken for more.
      if (!carry && !ended) {
        const next = await iterator.next();
        if (next.done) ended = true;
        else {
          carry = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
          total += carry.length;
          if (maxBytes !== undefined && total > maxBytes) throw tooLarge(maxBytes);
        }
      }
      return { bytes: pieces.length === 1 ? pieces[0] : Buffer.concat(pieces, length), done: ended && !carry };
    },
  };
}
