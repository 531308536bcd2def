/** Schemas of the content-blob routes (../routes/versions-upload.ts, ../routes/versions-read.ts). */
import { arrayOf, binary, boolean, bytesReply, envelope, integer, multipartBody, object, query, replies, repoParams, repoWildcardParams, tarGzReply, text, type JsonSchema } from './common.js';

export const uploadVersions = {
  params: repoParams(),
  streamedBody: multipartBody(
    {
      'file[]': arrayOf(binary('A blob; its filename is its content hash'), 'Blobs (a part with Content-Type: application/gzip is gunzipped first)'),
      file: binary('One blob; its filename is its content hash'),
    },
    { description: 'Parts in field `file[]` or `file`, each named by the content hash of its (decompressed) bytes' },
  ),
  response: replies(
    envelope({
      err_files: arrayOf(object({ hash: text('The part\'s filename'), path: { type: 'null' }, error: text() }, { required: 'all' }), 'Parts that were not stored'),
      files: arrayOf(object({ hash: text(), size: integer() }, { required: 'all' }), 'Parts stored (and verified)'),
    }),
  ),
};

/** The body of a batch download: hashes one per line, plain or gzip'd, under any Content-Type. */
const HASH_LIST = {
  content: {
    'text/plain': { schema: text('Content hashes, one per line') },
    'application/gzip': { schema: binary('The same list, gzip\'d (as Oxen\'s client sends it)') },
  },
};

export const downloadBlobs = {
  params: repoParams(),
  streamedBody: HASH_LIST,
  response: replies(tarGzReply('A gzip\'d tar with one entry per requested hash, named by it (404 with `missing_hashes` if the repository lacks any)')),
};

const VERSION = object({ hash: text(), size: integer() }, { required: 'all' });

export const versionMetadata = {
  params: repoParams({ hash: text('A content hash (or a revision: then versions/{revision}/metadata is a file download)') }),
  response: replies({
    description: 'The blob\'s size; or, when {hash} names a revision, the file at {revision}/metadata',
    content: {
      'application/json': { schema: envelope({ version: VERSION, exists: boolean() }) },
      '*/*': { schema: binary() },
    },
  }),
};

export const missingVersions = {
  params: repoParams(),
  body: {
    type: ['object', 'array'],
    description: '{hashes: [content hash, …]} or the list itself',
    properties: { hashes: arrayOf(text()) },
    items: text(),
  } satisfies JsonSchema,
  response: replies(envelope({ missing: arrayOf(text(), 'The hashes (as sent) the repository does not hold'), hashes: arrayOf(text(), 'The same list') })),
};

export const fileChunk = {
  params: repoWildcardParams('{revision}/{path} of a committed file'),
  querystring: query({ chunk_start: 'First byte (default 0)', chunk_size: 'Bytes (default 10 MiB); the last chunk may be shorter' }),
  response: replies(bytesReply('The bytes [chunk_start, chunk_start + chunk_size) of the file', 'application/octet-stream')),
};
