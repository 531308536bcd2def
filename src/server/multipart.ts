import type { FastifyRequest } from 'fastify';
import { BadRequest, PayloadTooLarge, YokeError } from '../core/errors.js';
import type { BlobStore } from '../storage/blob-store.js';

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

/**
 * Reads a multipart form, streaming each file part straight into the blob store (hashed and
 * verified on the way; never buffered whole). Text fields may come before or after the files.
 * File parts under other field names are drained and ignored, as Oxen does.
 */
export async function readUploadForm(request: FastifyRequest, blobs: BlobStore, fileFields: ReadonlySet<string>): Promise<UploadForm> {
  if (!request.isMultipart()) throw new BadRequest('Expected a multipart/form-data body');
  const fields = new Map<string, string>();
  const files: UploadedPart[] = [];
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        if (!fileFields.has(part.fieldname)) {
          for await (const _ of part.file);
          continue;
        }
        const stored = await blobs.put(part.file);
        if (part.file.truncated) throw new PayloadTooLarge(`File part '${part.filename ?? part.fieldname}' is too large`);
        files.push({ field: part.fieldname, filename: part.filename || undefined, hash: stored.hash, size: stored.size });
      } else {
        fields.set(part.fieldname, String(part.value));
      }
    }
  } catch (err) {
    throw asClientError(err);
  }
  return { fields, files };
}

/** Reads only the text fields of an optional multipart body (file parts are drained). */
export async function readFormFields(request: FastifyRequest): Promise<Map<string, string>> {
  const fields = new Map<string, string>();
  if (!request.isMultipart()) return fields;
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') for await (const _ of part.file);
      else fields.set(part.fieldname, String(part.value));
    }
  } catch (err) {
    throw asClientError(err);
  }
  return fields;
}

/** Parser failures on a client's body are the client's mistake: 400 unless they carry a 4xx. */
function asClientError(err: unknown): Error {
  if (err instanceof YokeError) return err;
  // A failing disk is ours, not the client's.
  if ((err as NodeJS.ErrnoException).syscall !== undefined) return err as Error;
  const status = (err as { statusCode?: number }).statusCode;
  if (status !== undefined && status >= 400 && status < 500) return err as Error;
  return new BadRequest(`Malformed multipart body: ${(err as Error).message}`);
}
