/** Schemas of the file routes (../routes/files.ts) and of every download of a committed file. */
import { arrayOf, binary, boolean, bytesReply, envelope, integer, multipartBody, nullable, object, replies, repoWildcardParams, text } from './common.js';
import { COMMIT } from './views.js';

const FILE = object({ path: text(), size: integer(), hash: text('Content hash') }, { required: 'all' });

/** A file's bytes, whole (200) or a `Range` of them (206); 416 (the error envelope) for a range past the end. */
const FILE_DOWNLOAD = {
  200: bytesReply('The file (Content-Type from its extension; ETag: its hash; oxen-revision-id: the commit)'),
  206: bytesReply('The requested byte range (Content-Range)'),
};

export const fileLink = {
  params: repoWildcardParams('{revision}/{path}: a branch or commit id, then the file'),
  response: replies(
    envelope({
      link: object(
        {
          url: text('GET/HEAD (with Range) of the file at the commit the revision names, e.g. /api/repos/ns/repo/file/{commit}/{path}?link=…; with auth off, the plain address'),
          expires_at: nullable(text('When the link stops working (auth on); null with auth off')),
        },
        { required: 'all' },
      ),
    }),
  ),
};

export const uploadFiles = {
  params: repoWildcardParams('{branch}/{path}: the branch (created in an empty repository) and the file or directory to write'),
  streamedBody: multipartBody(
    {
      file: binary('One file: stored at {path} exactly (or under it, if {path} is a directory)'),
      'files[]': arrayOf(binary(), 'Files stored under the directory {path}, each at its filename'),
      name: text('Author name'),
      email: text('Author email'),
      message: text('Commit message (default: Auto-commit files to {path})'),
    },
    { required: ['name', 'email'] },
  ),
  response: replies(
    envelope({
      commit: COMMIT,
      files: arrayOf(FILE),
      file: { ...FILE, description: 'When one file was uploaded' },
      no_changes: boolean('True when the files were already there: no commit was made'),
      status_description: text('With no_changes: says that nothing was committed and the message was not used'),
    }),
  ),
};

export const downloadFile = {
  params: repoWildcardParams('{revision}/{path}: a branch or commit id, then the file'),
  response: replies(FILE_DOWNLOAD[200], { 206: FILE_DOWNLOAD[206] }),
};

const AUTHOR_FIELDS = {
  message: nullable(text('Commit message')),
  name: nullable(text('Author name (default: Yoke)')),
  email: nullable(text('Author email')),
};

export const deleteFile = {
  params: repoWildcardParams('{branch}/{path}: the file or directory to delete'),
  // Optional fields, as JSON (validated) or as a multipart form (read as it streams).
  body: { content: { 'application/json': { schema: nullable(object(AUTHOR_FIELDS)) } } },
  streamedBody: multipartBody({ message: text(), name: text(), email: text() }),
  response: replies(envelope({ commit: COMMIT })),
};

export const moveFile = {
  params: repoWildcardParams('{branch}/{path}: the file to move'),
  body: nullable(object({ new_path: text('Where the file goes'), ...AUTHOR_FIELDS }, { required: ['new_path'] })),
  response: replies(envelope({ commit: COMMIT, file: FILE })),
};
