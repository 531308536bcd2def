import type { FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify';
import { BadRequest, NotFound, PayloadTooLarge, shown } from '../../core/errors.js';
import { normalizeHash } from '../../core/hash.js';
import { MAX_HASH_LIST_BODY_BYTES, parseHashList } from '../../services/version-download.js';
import type { RepoRecord } from '../../services/records.js';
import type { Yoke } from '../../services/yoke.js';
import { errorBody, ok } from '../envelope.js';
import { jsonValue } from '../json-body.js';
import { downloadFile } from '../schemas/files.js';
import { downloadBlobs, fileChunk, missingVersions, versionMetadata } from '../schemas/versions.js';
import { committedFileHandler, sendBlob } from './files.js';
import { REPO, type RepoParams, type RepoWildcardParams } from './params.js';

/** Most hashes one `versions/missing` request may ask about. */
export const MAX_MISSING_QUERY_HASHES = 100_000;
/** Oxen's default `chunk_size` (the CLI pulls files over 10 MiB in chunks of this size). */
const DEFAULT_CHUNK_SIZE = 10 * 1024 * 1024;

type WildcardReq = FastifyRequest<{ Params: RepoWildcardParams }>;
type HashReq = FastifyRequest<{ Params: RepoParams & { hash: string } }>;

/**
 * Read side of the content-addressed version store: batch download (POST `versions/batch-download`
 * as documented, and `QUERY versions` as Oxen clients send it), blob metadata, a batch
 * "which hashes are missing" check, byte-range chunks of committed files, and the `versions/{rev}/{path}`
 * alias of GET file. Blob existence is always answered from the repository's blob record
 * (`MetaStore.findRepoBlobs`), never by listing the blob store.
 */
export function versionReadRoutes(app: FastifyInstance, yoke: Yoke) {
  const tags = ['versions'];

  // The hash list arrives gzip'd or plain, under any Content-Type or none (the Oxen client sends
  // none with QUERY, which Fastify otherwise rejects per RFC 10008). In this encapsulated scope
  // every body is read as raw bytes, capped; the parsers outside are untouched.
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_HASH_LIST_BODY_BYTES }, (_request, body, done) => done(null, body));
    const options: RouteShorthandOptions = {
      bodyLimit: MAX_HASH_LIST_BODY_BYTES,
      onRequest: (request, _reply, done) => {
        if (request.headers['content-type'] === undefined) request.raw.headers['content-type'] = 'application/octet-stream';
        done();
      },
    };
    const handler = (request: FastifyRequest, reply: FastifyReply) => batchDownload(yoke, request as FastifyRequest<{ Params: RepoParams }>, reply);

    scope.post(
      `${REPO}/versions/batch-download`,
      {
        ...options,
        schema: {
          tags,
          summary:
            'Batch download blobs as a tar.gz (body: newline-separated hashes, gzip or plain). ' +
            'Also served as `QUERY …/versions`, the method Oxen clients use.',
          ...downloadBlobs,
        },
      },
      handler,
    );
    // @fastify/swagger publishes this as a `query` operation (OpenAPI 3.2's field for the method).
    scope.route({
      method: 'QUERY',
      url: `${REPO}/versions`,
      ...options,
      schema: { tags, summary: 'Batch download blobs as a tar.gz (the form Oxen clients send; same as POST versions/batch-download)', ...downloadBlobs },
      handler,
    });
  });

  app.get(
    `${REPO}/versions/:hash/metadata`,
    { schema: { tags, summary: 'Size of a content blob the repository holds (404 if it does not)', ...versionMetadata } },
    async (request: HashReq, reply) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const param = request.params.hash;
      const hash = normalizeHash(param);
      const size = hash === null ? null : await yoke.versions.sizeOf(repo, hash);
      if (hash !== null && size !== null) {
        return ok('resource_found', { version: { hash, size }, exists: true });
      }
      // `versions/{rev}/{path}` downloads a file, and `{rev}/metadata` looks just like this route:
      // when the segment names a revision, serve the file rather than answer for a blob.
      const asFile = await tryRevisionFile(yoke, repo, `${param}/metadata`);
      if (asFile) return sendBlob(yoke, request, reply, asFile.entry, asFile.resolved.commit.id);
      if (hash === null) throw new BadRequest(`Not a content hash: ${param}`);
      throw new NotFound(`Version ${hash} not found in ${repo.namespace}/${repo.name}`);
    },
  );

  app.post(
    `${REPO}/versions/missing`,
    {
      bodyLimit: 8 * 1024 * 1024,
      schema: { tags, summary: `Which of {hashes} (JSON, at most ${MAX_MISSING_QUERY_HASHES}) the repository does not hold`, ...missingVersions },
    },
    async (request: FastifyRequest<{ Params: RepoParams }>) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const body = request.body === undefined ? undefined : jsonValue(request.body);
      const list = Array.isArray(body) ? body : (body as { hashes?: unknown } | undefined)?.hashes;
      if (!Array.isArray(list)) throw new BadRequest('Expected a JSON body {"hashes": [string, …]}');
      if (list.length > MAX_MISSING_QUERY_HASHES) throw new PayloadTooLarge(`At most ${MAX_MISSING_QUERY_HASHES} hashes per request`);
      const asked = list.map((value, i) => {
        const hash = typeof value === 'string' ? normalizeHash(value.trim()) : null;
        if (hash === null) throw new BadRequest(`hashes[${i}] is not a content hash: ${shown(value)}`, { index: i });
        return { sent: value as string, hash };
      });
      const held = await yoke.versions.heldSizes(repo, asked.map((a) => a.hash));
      const missing = [...new Set(asked.filter((a) => !held.has(a.hash)).map((a) => a.sent))];
      return ok('resource_found', { missing, hashes: missing });
    },
  );

  app.get(
    `${REPO}/chunk/*`,
    { schema: { tags, summary: 'Byte range [chunk_start, chunk_start+chunk_size) of a committed file at {revision}/{path}', ...fileChunk } },
    async (request: FastifyRequest<{ Params: RepoWildcardParams; Querystring: Record<string, unknown> }>, reply) => {
      const start = byteParam(request.query.chunk_start, 'chunk_start', 0);
      const length = byteParam(request.query.chunk_size, 'chunk_size', DEFAULT_CHUNK_SIZE);
      if (length === 0) throw new BadRequest('chunk_size must be at least 1');
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const { resolved, entry } = await yoke.files.findCommitted(repo, request.params['*']);
      reply.header('oxen-revision-id', resolved.commit.id).header('access-control-expose-headers', 'content-length, oxen-revision-id');
      if (start > 0 && start >= entry.size) {
        reply.header('content-range', `bytes */${entry.size}`);
        return reply
          .status(416)
          .send(errorBody(416, 'range_not_satisfiable', 'Range Not Satisfiable', `chunk_start ${start} is past the end of a ${entry.size}-byte file`));
      }
      // Oxen answers 500 for a range past the end; the last chunk is simply shorter here.
      const end = Math.min(start + length, entry.size);
      reply.header('content-type', 'application/octet-stream').header('content-length', end - start);
      if (end === start) return reply.send('');
      return reply.send(await yoke.versions.readCommitted(entry.hash, { start, end: end - 1 }));
    },
  );

  // Oxen's alias of GET file: `versions/{rev}/{path}`. `versions/{hash}/metadata` above wins
  // for that one shape; every other path falls through to here.
  app.route({
    method: ['GET', 'HEAD'],
    url: `${REPO}/versions/*`,
    exposeHeadRoute: false,
    schema: { tags, summary: 'Download a file at {revision}/{path} (alias of GET file/…; supports Range)', ...downloadFile },
    handler: committedFileHandler(yoke),
  });
}

async function batchDownload(yoke: Yoke, request: FastifyRequest<{ Params: RepoParams }>, reply: FastifyReply) {
  const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
  const requested = await parseHashList(Buffer.isBuffer(request.body) ? request.body : undefined);
  const body = await yoke.versions.batchDownload(repo, requested, (err, clientGone) => {
    if (clientGone) {
      request.log.info({ err: err.message }, 'batch download: client went away');
      return;
    }
    // Headers (and maybe bytes) are out: all we can do is cut the body short so the client retries.
    request.log.error({ err }, 'batch download failed mid-stream; the response is truncated');
    reply.raw.destroy();
  });
  return reply.header('content-type', 'application/gzip').send(body);
}

/** A non-negative integer query parameter (digits only), or `fallback` when absent. */
function byteParam(value: unknown, name: string, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  if (typeof value !== 'string' || !/^\d{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new BadRequest(`${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/** The file at `resource` if its revision part names a commit or branch of `repo`, else null. */
async function tryRevisionFile(yoke: Yoke, repo: RepoRecord, resource: string) {
  try {
    await yoke.revisions.resolve(repo, resource);
  } catch (err) {
    if (err instanceof NotFound) return null;
    throw err;
  }
  return yoke.files.findCommitted(repo, resource);
}
