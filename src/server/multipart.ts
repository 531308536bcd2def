import type { FastifyRequest } from 'fastify';
import type { Multipart, MultipartFile } from '@fastify/multipart';
import { BadRequest, PayloadTooLarge, YokeError } from '../core/errors.js';
import type { PutResult } from '../services/records.js';
import type { BlobWrites } from '../services/versions.js';
import { multipartBoundary, PartHeaderScanner } from './part-headers.js';

export interface UploadedPart {
  field: string;
  filename: string | undefined;
  hash: string;
  size: number;
}

export interface UploadForm {
  fields: Map<string, string>;
  files: UploadedPart[];
}

/** The parser's limits on a multipart body (the largest file part is the server's `maxFileBytes`). */
export const MULTIPART_LIMITS = {
  /** Text fields: no route takes more than a handful. */
  fields: 1000,
  fieldSize: 1024 * 1024,
  /** File parts, and parts of any kind: a batch upload may carry as many blobs as a download batch names. */
  files: 1_000_000,
  parts: 1_000_000,
} as const;

/**
 * `request.parts()`, guarded: every part's header block is checked as the body arrives (see
 * ./part-headers.ts), and the iteration fails with that 4xx as soon as a block is refused, where
 * busboy would go on with a silently truncated part or stall without ever ending the iteration.
 * Use it for every multipart body.
 */
export async function* multipartParts(request: FastifyRequest, options?: Parameters<FastifyRequest['parts']>[0]): AsyncGenerator<Multipart> {
  const boundary = multipartBoundary(request.headers['content-type']);
  let refused: Error | null = null;
  // Fails the `next` being awaited. (Not one long-lived promise raced against every `next`: each
  // race would leave it a reaction, a million of them for a million parts.)
  let interrupt: ((err: Error) => void) | null = null;
  const refuse = (err: Error) => {
    refused ??= err;
    interrupt?.(err);
  };
  const raw = request.raw;
  let onData: ((chunk: Buffer) => void) | null = null;
  const stop = () => {
    if (onData) raw.removeListener('data', onData);
    onData = null;
  };
  if (boundary !== null) {
    const scanner = new PartHeaderScanner(boundary, (err) => refuse(err));
    onData = (chunk) => {
      try {
        scanner.push(chunk);
      } catch (err) {
        // A fault of the scanner must never break the upload: busboy alone decides then.
        request.log.warn({ err }, 'multipart part header scanner failed');
        stop();
      }
      if (scanner.done) stop();
    };
    // Attached before busboy's pipe, so a refused block is seen before busboy hands its part over.
    raw.on('data', onData);
  }
  // No read-ahead per part: busboy goes on to the next chunk of the body only once the parts it holds are being read.
  // With its default (16 KiB per part), every part smaller than that counted as consumed, and a body of small files
  // was parsed as fast as it arrived, all of it queued in memory ahead of the writes.
  const parts = request.parts({ fileHwm: 0, ...options })[Symbol.asyncIterator]();
  let waiting = false;
  try {
    for (;;) {
      if (refused) throw refused;
      waiting = true;
      const next = await new Promise<IteratorResult<Multipart>>((resolve, reject) => {
        interrupt = reject;
        parts.next().then(resolve, reject);
      });
      interrupt = null;
      waiting = false;
      if (next.done) return;
      // @fastify/multipart also files every part under its field name in one object kept for the whole request
      // (`part.fields`), stream and all, so a body of a million parts held a million. Nothing here reads it.
      delete (next.value.fields as Record<string, unknown>)[next.value.fieldname];
      yield next.value;
    }
  } finally {
    stop();
    // Left early (the caller failed): let the parser clean up, unless it is stuck mid-`next`.
    if (!waiting) void Promise.resolve(parts.return?.(undefined)).catch(() => {});
  }
}

/** Parts up to this size are buffered and written in the background while parsing continues. */
export const SMALL_PART_BYTES = 512 * 1024;
/** At most this many buffered parts are being written at once (bounds memory to ~32 MiB; fsyncs of concurrent writes share journal commits). */
export const MAX_WRITES_IN_FLIGHT = 64;

/** A counting semaphore: `acquire` waits while `limit` holders are active. */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}
  async acquire(): Promise<void> {
    if (this.active < this.limit) {
      this.active += 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active -= 1;
  }
}

/**
 * Reads a part's chunks until more than `limit` bytes have arrived or the part ends (`finished`).
 * The iterator is left where it stopped, so the caller can go on reading the rest.
 */
export async function readHead(iterator: AsyncIterator<Buffer>, limit: number): Promise<{ head: Buffer[]; size: number; finished: boolean }> {
  const head: Buffer[] = [];
  let size = 0;
  while (size <= limit) {
    const next = await iterator.next();
    if (next.done) return { head, size, finished: true };
    head.push(next.value);
    size += next.value.byteLength;
  }
  return { head, size, finished: false };
}

/**
 * Stores one file part. Small parts are read whole and their write is started without waiting, so
 * the parser moves on to the next part while fsyncs run in parallel; larger parts stream straight
 * into the blob store (never buffered whole).
 */
async function startStoring(file: MultipartFile, blobs: BlobWrites, writes: Semaphore): Promise<{ write: Promise<PutResult> }> {
  const stream = file.file;
  const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const { head, finished } = await readHead(iterator, SMALL_PART_BYTES);
  if (stream.truncated) throw new PayloadTooLarge(`File part '${file.filename ?? file.fieldname}' is too large`);
  if (!finished) {
    const rest = { [Symbol.asyncIterator]: () => iterator };
    async function* all() {
      yield* head;
      yield* rest;
      // Throwing here, before the source ends, makes the blob store discard what it received.
      if (stream.truncated) throw new PayloadTooLarge(`File part '${file.filename ?? file.fieldname}' is too large`);
    }
    return { write: Promise.resolve(await blobs.put(all())) };
  }
  await writes.acquire();
  const write = blobs.put([head.length === 1 ? head[0] : Buffer.concat(head)]).finally(() => writes.release());
  // Rejections are collected by the caller; keep Node from reporting them as unhandled meanwhile.
  write.catch(() => {});
  // Wrapped: returning the promise itself from an async function would wait for it.
  return { write };
}

/**
 * Reads a multipart form, storing every file part in the blob store (hashed and verified on the
 * way). Text fields may come before or after the files. File parts under other field names are
 * drained and ignored, as Oxen does.
 */
export async function readUploadForm(request: FastifyRequest, blobs: BlobWrites, fileFields: ReadonlySet<string>): Promise<UploadForm> {
  if (!request.isMultipart()) throw new BadRequest('Expected a multipart/form-data body');
  const fields = new Map<string, string>();
  const pending: Array<{ field: string; filename: string | undefined; write: Promise<PutResult> }> = [];
  const writes = new Semaphore(MAX_WRITES_IN_FLIGHT);
  try {
    for await (const part of multipartParts(request)) {
      if (part.type === 'file') {
        if (!fileFields.has(part.fieldname)) {
          for await (const _ of part.file);
          continue;
        }
        pending.push({ field: part.fieldname, filename: part.filename || undefined, ...(await startStoring(part, blobs, writes)) });
      } else {
        fields.set(part.fieldname, String(part.value));
      }
    }
  } catch (err) {
    await Promise.allSettled(pending.map((p) => p.write));
    throw asClientError(err);
  }
  const settled = await Promise.allSettled(pending.map((p) => p.write));
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) throw asClientError(failure.reason);
  await blobs.commit();
  const files = pending.map((p, i) => {
    const stored = (settled[i] as PromiseFulfilledResult<PutResult>).value;
    return { field: p.field, filename: p.filename, hash: stored.hash, size: stored.size };
  });
  return { fields, files };
}

/** Reads only the text fields of an optional multipart body (file parts are drained). */
export async function readFormFields(request: FastifyRequest): Promise<Map<string, string>> {
  const fields = new Map<string, string>();
  if (!request.isMultipart()) return fields;
  try {
    for await (const part of multipartParts(request)) {
      if (part.type === 'file') for await (const _ of part.file);
      else fields.set(part.fieldname, String(part.value));
    }
  } catch (err) {
    throw asClientError(err);
  }
  return fields;
}

/** Parser failures on a client's body are the client's mistake: 400 unless they carry a 4xx. */
export function asClientError(err: unknown): Error {
  if (err instanceof YokeError) return err;
  const code = (err as { code?: unknown }).code;
  if (code === 'FST_FIELDS_LIMIT') return new PayloadTooLarge(`Too many fields in the multipart body: at most ${MULTIPART_LIMITS.fields}`);
  if (code === 'FST_FILES_LIMIT') return new PayloadTooLarge(`Too many file parts in the multipart body: at most ${MULTIPART_LIMITS.files}`);
  if (code === 'FST_PARTS_LIMIT') return new PayloadTooLarge(`Too many parts in the multipart body: at most ${MULTIPART_LIMITS.parts}`);
  // A failing disk is ours, not the client's.
  if ((err as NodeJS.ErrnoException).syscall !== undefined) return err as Error;
  const status = (err as { statusCode?: number }).statusCode;
  if (status !== undefined && status >= 400 && status < 500) return err as Error;
  return new BadRequest(`Malformed multipart body: ${(err as Error).message}`);
}
