import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DEFAULT_MAX_DECOMPRESSED_BYTES } from '../../config.js';
import { BadRequest } from '../../core/errors.js';
import { normalizeHash } from '../../core/hash.js';
import type { Yoke } from '../../services/yoke.js';
import { receiveBlobParts } from '../blob-parts.js';
import { isMultipart } from '../multipart.js';
import { ok } from '../envelope.js';
import { uploadVersions } from '../schemas/versions.js';
import { REPO, type RepoParams } from './params.js';

/**
 * `POST …/versions`: batch upload of content blobs (COMPAT: "Batch upload"; oxen-api.md §2.4).
 *
 * Each part's filename is its content hash. Every part is verified against its hash — also when
 * the blob is already stored, so a repository can only claim blobs whose bytes it actually sent.
 * Failures are per part (`err_files`, HTTP 200); only a malformed multipart body fails the request
 * (400). Part handling (gzip, caps, concurrency, durability) lives in ../blob-parts.ts.
 */

export interface VersionsUploadOptions {
  /** Largest decompressed size of one gzip part; larger parts fail (gzip bombs). */
  maxDecompressedBytes?: number;
}

export function versionsUploadRoutes(app: FastifyInstance, yoke: Yoke, options: VersionsUploadOptions = {}) {
  const maxDecompressedBytes = options.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES;

  app.post(
    `${REPO}/versions`,
    {
      schema: {
        tags: ['versions'],
        summary: 'Batch upload blobs (multipart parts `file`/`file[]`, filename = content hash, `Content-Type: application/gzip` = gunzip first)',
        description:
          'Every part is verified against its hash after decompression. Per-part failures are listed in `err_files` ' +
          '(`{hash, path: null, error}`) with HTTP 200; stored parts are listed in `files` (`{hash, size}`) and recorded for the repository. ' +
          `A gzip part may decompress to at most the server's limit (YOKE_MAX_DECOMPRESSED_BYTES).`,
        ...uploadVersions,
      },
    },
    async (request: FastifyRequest<{ Params: RepoParams }>) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      if (!isMultipart(request)) throw new BadRequest('Expected a multipart/form-data body');
      const outcomes = await receiveBlobParts(request, yoke.versions.startWrites(), {
        cap: maxDecompressedBytes,
        missingFilename: 'Missing hash in multipart request',
        accept: (filename) => {
          const expectedHash = normalizeHash(filename);
          return expectedHash === null ? { error: `Invalid hash '${filename}': expected 1-32 hex digits` } : { expectedHash };
        },
      });
      await yoke.versions.recordHeld(repo, outcomes.flatMap((o) => (o.ok ? [{ hash: o.hash, size: o.size }] : [])));
      return ok('resource_created', {
        err_files: outcomes.flatMap((o) => (o.ok ? [] : [{ hash: o.filename, path: null, error: o.error }])),
        files: outcomes.flatMap((o) => (o.ok ? [{ hash: o.hash, size: o.size }] : [])),
      });
    },
  );
}

