/** Schemas of the listing and metadata routes (../routes/dirs.ts). */
import { anyObject, arrayOf, bytesReply, envelope, nullable, object, PAGE_QUERY, query, replies, repoWildcardParams, text } from './common.js';
import { ENTRY, PAGE_FIELDS, RESOURCE } from './views.js';

export const listDir = {
  params: repoWildcardParams('{revision}/{path} (a branch or commit id), or {workspace_id}/{path}'),
  querystring: query({
    ...PAGE_QUERY,
    sort_by: 'name (default) or date (of each entry\'s latest commit); directories always come first',
    reverse: 'true: reverse the order within directories and within files',
    depth: 'Levels of children to include under each directory (default 0; negative: all)',
  }),
  response: replies(
    envelope({
      dir: { ...ENTRY, description: 'The directory itself' },
      entries: arrayOf(ENTRY),
      resource: object({ path: text(), version: text() }, { required: 'all' }),
      metadata: nullable(anyObject()),
      ...PAGE_FIELDS,
    }),
  ),
};

export const listEveryEntry = {
  params: repoWildcardParams('{revision}/{path} (a branch or commit id), or {workspace_id}/{path}'),
  querystring: query({ recursive: 'true: each directory is followed by the entries below it (default false)' }),
  response: replies(
    bytesReply(
      'One JSON object per line, in name order (directories first): {"path", "type": "dir" or "file", "hash", "size", "last_commit_id"}; ' +
        'path is below the listed directory, hash a file\'s content hash or a directory\'s node id, last_commit_id null for a change not yet committed',
      'application/x-ndjson',
    ),
  ),
};

export const entryMetadata = {
  params: repoWildcardParams('{revision}/{path}, or {workspace_id}/{path}'),
  response: replies(envelope({ entry: ENTRY })),
};

export const resolveRevision = {
  params: repoWildcardParams('{revision}/{path}'),
  response: replies(envelope({ resource: RESOURCE })),
};
