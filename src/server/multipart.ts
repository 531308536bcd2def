import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequest, PayloadTooLarge } from '../core/errors.js';
import type { PutResult } from '../services/records.js';
import type { BlobWrites } from '../services/versions.js';
import { isMultipartType, multipartBoundary } from './multipart-headers.js';
import { type FilePart, type IsFilePart, type MultipartLimits, MultipartReader, type Part } from './multipart-reader.js';

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

/** The reader's limits on a multipart body (the largest file part is the server's `maxFileBytes`). */
export const MULTIPART_LIMITS = {
  /** Text fields: no route takes more than a handful. */
  fields: 1000,
  fieldSize: 1024 * 1024,
  /** File parts, and parts of any kind: a batch upload may carry as many blobs as a download batch names. */
  files: 1_000_000,
  parts: 1_000_000,
} as const;

declare module 'fastify' {
  interface FastifyInstance {
    multipartLimits: MultipartLimits;
  }
}

/** Lets multipart bodies through unread (the routes read them as they stream), within these limits. */
export function registerMultipart(app: FastifyInstance, maxFileBytes: number): void {
  app.decorate('multipartLimits', { ...MULTIPART_LIMITS, fileSize: maxFileBytes });
  app.addContentTypeParser('multipart/form-data', (_request, _payload, done) => done(null));
}

export function isMultipart(request: FastifyRequest): boolean {
  return isMultipartType(request.headers['content-type']);
}

/**
 * The parts of a request's multipart body, one at a time (see ./multipart-reader.ts). A body that
 * cannot be read whole fails the iteration with a 4xx.
 */
export async function* multipartParts(request: FastifyRequest, isFile?: IsFilePart): AsyncGenerator<Part> {
  const boundary = multipartBoundary(request.headers['content-type']);
  if (boundary === null) throw new BadRequest('Expected a multipart/form-data body with a boundary');
  const reader = new MultipartReader(request.raw, boundary, request.server.multipartLimits, isFile);
  try {
    for (let part = await reader.nextPart(); part !== null; part = await reader.nextPart()) yield part;
  } finally {
    reader.release();
  }
}

/** Parts up to this size are buffered and written in the background while parsing continues. */
export const SMALL_PART_BYTES = 512 * 1024;
/** At most this many buffered parts are being written at once (bounds memory to ~32 MiB; fsyncs of concurrent writes share journal commits). */
const MAX_WRITES_IN_FLIGHT = 64;

/** A counting semaphore: `acquire` waits while `limit` holders are active. */
class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly whenIdle: Array<() => void> = [];
  constructor(private readonly limit: number) {}
  /** Resolves once no holder is active and none is waiting. */
  async idle(): Promise<void> {
    if (this.active === 0) return;
    await new Promise<void>((resolve) => this.whenIdle.push(resolve));
  }
  async acquire(): Promise<void> {
    if (this.active < this.limit) {
      this.active += 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) return next();
    this.active -= 1;
    if (this.active === 0) for (const resolve of this.whenIdle.splice(0)) resolve();
  }
}

/**
 * Writes of buffered parts, run in the background while the reader moves on: at most
 * MAX_WRITES_IN_FLIGHT at once, the first failure kept for `finish`. Each write hands its result to
 * its own callback as it ends, so a request keeps no promise per part to its end (issue 15).
 */
export class BackgroundWrites {
  private readonly slots = new Semaphore(MAX_WRITES_IN_FLIGHT);
  private failure: { error: unknown } | null = null;

  /** Waits for a free slot, then starts `work` without waiting for it; its result goes to `done`. */
  async start<T>(work: () => Promise<T>, done: (result: T) => void): Promise<void> {
    await this.slots.acquire();
    void work()
      .then(done, (error) => {
        this.failure ??= { error };
      })
      .finally(() => this.slots.release());
  }

  /** Resolves once every write started has ended. */
  idle(): Promise<void> {
    return this.slots.idle();
  }

  /** Waits for every write, then throws the first failure, if any. */
  async finish(): Promise<void> {
    await this.idle();
    if (this.failure) throw this.failure.error;
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
 * Stores one file part and hands what was stored to `done`. Small parts are read whole and their
 * write runs in the background (this resolves first), so the reader moves on to the next part while
 * fsyncs run in parallel; larger parts stream straight into the blob store (never buffered whole).
 */
async function storePart(file: FilePart, blobs: BlobWrites, background: BackgroundWrites, done: (stored: PutResult) => void): Promise<void> {
  const tooLarge = () => new PayloadTooLarge(`File part '${file.filename ?? file.name}' is too large`);
  const { head, finished } = await readHead(file, SMALL_PART_BYTES);
  if (file.truncated) throw tooLarge();
  if (!finished) {
    async function* all() {
      yield* head;
      yield* file;
      // Throwing here, before the source ends, makes the blob store discard what it received.
      if (file.truncated) throw tooLarge();
    }
    return done(await blobs.put(all()));
  }
  await background.start(() => blobs.put([head.length === 1 ? head[0] : Buffer.concat(head)]), done);
}

/**
 * Reads a multipart form, storing every file part in the blob store (hashed and verified on the
 * way). Text fields may come before or after the files. File parts under other field names are
 * skipped, as Oxen does.
 */
export async function readUploadForm(request: FastifyRequest, blobs: BlobWrites, fileFields: ReadonlySet<string>): Promise<UploadForm> {
  if (!isMultipart(request)) throw new BadRequest('Expected a multipart/form-data body');
  const fields = new Map<string, string>();
  // Filled in as writes finish (no promise per part kept to the end: see receiveBlobParts).
  const files: UploadedPart[] = [];
  const background = new BackgroundWrites();
  try {
    for await (const part of multipartParts(request)) {
      if (part.type === 'field') fields.set(part.name, part.value);
      // File parts under other names are skipped by the reader.
      else if (fileFields.has(part.name)) {
        const file: UploadedPart = { field: part.name, filename: part.filename || undefined, hash: '', size: 0 };
        files.push(file);
        await storePart(part, blobs, background, (stored) => Object.assign(file, { hash: stored.hash, size: stored.size }));
      }
    }
  } finally {
    await background.idle();
  }
  await background.finish();
  await blobs.commit();
  return { fields, files };
}

/** Reads only the text fields of an optional multipart body (file parts are drained). */
export async function readFormFields(request: FastifyRequest): Promise<Map<string, string>> {
  const fields = new Map<string, string>();
  if (!isMultipart(request)) return fields;
  for await (const part of multipartParts(request)) if (part.type === 'field') fields.set(part.name, part.value);
  return fields;
}
