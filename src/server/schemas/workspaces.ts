/** Schemas of the workspace routes (../routes/workspaces.ts). */
import { anyObject, arrayOf, binary, boolean, checkedByHandler, bytesReply, envelope, integer, multipartBody, nullable, object, PAGE_QUERY, query, replies, repoParams, text, type JsonSchema } from './common.js';
import { COMMIT, ENTRY, PAGE_FIELDS } from './views.js';

const WS_PARAMS = repoParams({ workspace_id: text('The workspace\'s id or name') });
const wsPathParams = (rest: string) => repoParams({ workspace_id: text('The workspace\'s id or name'), '*': text(rest) });

const WORKSPACE = object(
  {
    id: text(),
    name: nullable(text()),
    branch_name: text('The branch it was created from'),
    commit: { ...COMMIT, description: 'Its base commit' },
    created_at: text(),
    updated_at: text(),
  },
  { required: 'all' },
);

/** A list of paths: `{paths: […]}` or the list itself. */
const PATH_LIST: JsonSchema = { type: ['object', 'array'], description: '{paths: [path, …]} or the list itself', properties: { paths: arrayOf(text()) }, items: text() };

export const getOrCreateWorkspace = {
  params: repoParams(),
  body: object(
    {
      workspace_id: checkedByHandler('string', 'Up to 128 of [A-Za-z0-9_.-]'),
      branch_name: checkedByHandler('string', 'The branch to work on'),
      name: checkedByHandler('string', 'An optional unique name (same characters); a named workspace survives its commits'),
    },
    { required: ['workspace_id', 'branch_name'] },
  ),
  response: replies(envelope({ workspace: WORKSPACE })),
};

export const listWorkspaces = {
  params: repoParams(),
  querystring: query({ name: 'Only the workspace of this name' }),
  response: replies(envelope({ workspaces: arrayOf(WORKSPACE) })),
};

export const deleteAllWorkspaces = { params: repoParams(), response: replies(envelope({ deleted: integer('How many were deleted') })) };

export const getWorkspace = { params: WS_PARAMS, response: replies(envelope({ workspace: WORKSPACE })) };

export const validateUpload = {
  params: WS_PARAMS,
  body: nullable(object({ size: checkedByHandler('integer', 'Bytes about to be uploaded') })),
  response: replies(envelope({ workspace_id: text() })),
};

export const deleteWorkspace = { params: WS_PARAMS, response: replies(envelope({ workspace: WORKSPACE })) };

export const uploadToWorkspace = {
  params: wsPathParams('The directory to stage into (empty: the root)'),
  streamedBody: multipartBody(
    {
      'file[]': arrayOf(binary('A file; its filename is its destination below the directory'), 'Files (a part with Content-Type: application/gzip is gunzipped first)'),
      file: binary('One file; its filename is its destination below the directory'),
    },
    { description: 'Parts in field `file[]` or `file`, each named by where it goes' },
  ),
  response: replies(
    envelope({
      paths: arrayOf(text(), 'Where the files were staged'),
      err_files: arrayOf(object({ path: text(), hash: { type: 'null' }, error: text() }, { required: 'all' }), 'Parts that were not stored'),
    }),
  ),
};

export const downloadFromWorkspace = {
  params: wsPathParams('The file'),
  response: replies(bytesReply('The file as the workspace sees it (staged, or from its base commit)'), { 206: bytesReply('The requested byte range') }),
};

export const stageRemovals = {
  params: WS_PARAMS,
  body: PATH_LIST,
  response: replies(envelope({ paths: arrayOf(text(), 'The paths staged for removal') }), {
    206: envelope({ paths: arrayOf(text(), 'The paths that were not there'), removed: arrayOf(text(), 'The paths staged for removal') }, 'Some paths were not there (status_message: resource_not_found)'),
  }),
};

export const unstagePath = { params: wsPathParams('The path to unstage'), response: replies(envelope({ path: text() })) };

export const stageMove = {
  params: wsPathParams('The file to move'),
  body: object({ new_path: checkedByHandler('string') }, { required: ['new_path'] }),
  response: replies(envelope({ path: text(), new_path: text() })),
};

/** One status bucket: Oxen's PaginatedDirEntries of MetadataEntry, each named by its full path. */
const STATUS_BUCKET = object(
  { dir: nullable(anyObject()), entries: arrayOf(ENTRY), resource: nullable(anyObject()), metadata: nullable(anyObject()), ...PAGE_FIELDS },
  { required: 'all' },
);

const ADDED_DIR = object({ path: text(), num_files_staged: integer(), total_files: integer(), status: text('Added') }, { required: 'all' });

const STATUS_REPLY = replies(
  envelope({
    staged: object(
      {
        added_dirs: object(
          {
            num_files_staged: integer(),
            total_files: integer(),
            paths: { type: 'object', additionalProperties: arrayOf(ADDED_DIR), description: 'New directories, under their top-level directory' },
          },
          { required: 'all' },
        ),
        added_files: STATUS_BUCKET,
        modified_files: STATUS_BUCKET,
        removed_files: STATUS_BUCKET,
      },
      { required: 'all' },
    ),
    changes: arrayOf(
      object({ path: text(), status: text('added, modified or removed'), hash: nullable(text()), size: integer() }, { required: 'all' }),
      'Every change in path order, paginated',
    ),
    ...PAGE_FIELDS,
  }),
);

export const workspaceStatus = { params: WS_PARAMS, querystring: query(PAGE_QUERY), response: STATUS_REPLY };
export const workspaceStatusUnder = { params: wsPathParams('Only changes under this path'), querystring: query(PAGE_QUERY), response: STATUS_REPLY };

export const unstagePaths = { params: WS_PARAMS, body: PATH_LIST, response: replies(envelope({ unstaged: integer('Paths unstaged') })) };

export const unstageUnder = { params: wsPathParams('The path to unstage, with everything below it'), response: replies(envelope({ unstaged: integer() })) };

export const workspaceMergeability = {
  params: wsPathParams('The branch'),
  response: replies(
    envelope({
      is_mergeable: boolean(),
      conflicts: arrayOf(object({ path: text() }, { required: 'all' }), 'Staged paths the branch changed since the workspace\'s base'),
      commits: arrayOf(COMMIT, 'Commits on the branch since the base'),
    }),
  ),
};

export const commitWorkspace = {
  params: wsPathParams('The branch to commit onto'),
  body: object({ message: checkedByHandler('string'), author: checkedByHandler('string', 'Author name'), email: checkedByHandler('string', 'Author email') }, { required: ['message', 'author', 'email'] }),
  response: replies(envelope({ commit: COMMIT })),
};
