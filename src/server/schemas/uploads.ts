/** Schemas of the uploads in parts (../routes/uploads.ts). */
import { arrayOf, boolean, checkedByHandler, envelope, integer, nullable, object, query, rawBody, replies, repoParams, text } from './common.js';

const HASH_PARAMS = repoParams({ hash: text('Content hash of the whole file') });
const SEND_LENGTH = 'Send Content-Length';

export const uploadChunk = {
  params: repoParams(),
  querystring: query(
    {
      hash: 'Names the upload (the client\'s hash of the whole; checked against it for a raw file)',
      chunk_num: 'This chunk\'s index, from 0',
      total_chunks: 'How many chunks the upload has',
      total_size: 'Bytes of all chunks together',
      is_compressed: 'true: the chunks make a tar.gz of versions/files/… blobs; false: one raw file',
      filename: 'The file\'s name (required when is_compressed=false)',
    },
    ['hash', 'chunk_num', 'total_chunks', 'total_size', 'is_compressed'],
  ),
  streamedBody: rawBody(`The chunk's bytes (${SEND_LENGTH})`),
  response: replies(
    envelope({
      complete: boolean('True once this request found every chunk present and assembled the upload'),
      hashes: arrayOf(text(), 'Blobs the assembled upload stored'),
    }),
  ),
};

export const putUploadPart = {
  params: repoParams({ upload_id: text('From POST versions/uploads'), part: text('Part number, from 1') }),
  streamedBody: rawBody(`The part's bytes: exactly part_size, but the last (${SEND_LENGTH})`),
  response: replies(envelope({ completed: boolean('True when this part made the file whole, and it was verified and stored') })),
};

export const putVersionChunk = {
  params: HASH_PARAMS,
  querystring: query({ offset: 'Where the bytes go in the file' }, ['offset']),
  streamedBody: rawBody('The bytes at offset'),
  response: replies(envelope({ chunk: object({ offset: integer(), size: integer() }, { required: 'all' }) })),
};

export const beginPartUpload = {
  params: repoParams(),
  body: object(
    {
      hash: text('Content hash of the whole file'),
      size: integer('Its size in bytes'),
      destination: nullable(
        object({ workspace_id: text(), path: text() }, { required: 'all', description: 'Stage the finished file in this workspace, at this path' }),
      ),
    },
    { required: ['hash', 'size'] },
  ),
  response: replies(
    envelope({
      file: { type: 'string', enum: ['already_stored', 'awaiting_parts'] },
      upload_id: text('With awaiting_parts: where to PUT the parts'),
      part_size: integer('Bytes per part (the last may be shorter)'),
      num_parts: integer(),
      part_window: integer('Parts worth sending at once'),
    }),
  ),
};

export const createVersionUpload = {
  params: HASH_PARAMS,
  body: nullable(
    object({
      size: checkedByHandler('integer', 'The file\'s size in bytes, if known'),
      file_name: nullable(text()),
      dst_dir: nullable(text()),
    }),
  ),
  response: replies(envelope({ upload: object({ hash: text(), size: nullable(integer()), created_at: text() }, { required: 'all' }) })),
};

export const versionUploadStatus = {
  params: HASH_PARAMS,
  response: replies(
    envelope({
      hash: text(),
      stored: boolean('Whether the repository already holds the whole file'),
      size: nullable(integer('The declared size')),
      received_bytes: integer(),
      chunks: arrayOf(object({ offset: integer(), size: integer() }, { required: 'all' })),
    }),
  ),
};

export const completeVersionUpload = {
  params: HASH_PARAMS,
  body: nullable(
    object({
      files: arrayOf(
        object({ hash: nullable(text()), file_name: nullable(text()), dst_dir: nullable(text()) }),
        'Exactly one: where to stage the file (with workspace_id)',
      ),
      workspace_id: checkedByHandler('string', 'Stage the assembled file in this workspace, at files[0].dst_dir/file_name'),
    }),
  ),
  response: replies(envelope({ version: object({ hash: text(), size: integer() }, { required: 'all' }), path: text('Where it was staged') })),
};
