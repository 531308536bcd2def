/** Schemas of the shapes in ../views.ts, shared by the routes that answer them. */
import { anyObject, arrayOf, boolean, integer, nullable, object, text } from './common.js';

export const COMMIT_FIELDS = {
  id: text('Commit id (xxh3-128, hex)'),
  parent_ids: arrayOf(text()),
  message: text(),
  author: text(),
  email: text(),
  timestamp: text('RFC 3339, UTC'),
  root_hash: text('Id of the root directory node'),
};

export const COMMIT = object(COMMIT_FIELDS, { required: 'all', description: 'A commit' });

export const BRANCH = object(
  {
    name: text(),
    commit_id: text('The commit the branch points at'),
    created_at: text(),
    updated_at: text(),
    commit: nullable({ ...COMMIT, description: 'The head commit (where a route includes it)' }),
  },
  { required: ['name', 'commit_id', 'created_at', 'updated_at'], description: 'A branch' },
);

export const REPOSITORY = object(
  {
    namespace: text(),
    name: text(),
    description: nullable(text()),
    min_version: text('The oldest Oxen client the server accepts'),
    is_empty: boolean('True until the repository has a commit'),
    storage_kind: text(),
    latest_commit: nullable({ ...COMMIT, description: 'Head of the default branch' }),
    branch_count: integer(),
    created_at: text(),
    repo_uuid: text(),
  },
  { required: 'all', description: 'A repository' },
);

/** What a `{revision}/{path}` resolved to (`resourceView` in ../routes/dirs.ts). */
export const RESOURCE = object(
  {
    workspace: nullable(anyObject()),
    commit: COMMIT,
    branch: nullable(BRANCH),
    path: text(),
    version: text('The branch name or commit id the resource named'),
    resource: text('The resource as given'),
  },
  { required: 'all' },
);

const ENTRY_FIELDS = {
  filename: text('The name (in a workspace status: the full path)'),
  latest_commit: nullable({ ...COMMIT, description: 'The commit that last changed the entry (null when it is uncommitted)' }),
  resource: nullable({ ...RESOURCE, description: 'What the request resolved to (meta/ only)' }),
  metadata: nullable(anyObject()),
  is_queryable: nullable(boolean()),
  hash: text('Content hash of a file, node id of a directory'),
  is_dir: boolean(),
  size: integer('Bytes (of a directory: of everything below it)'),
  data_type: text(),
  mime_type: text(),
  extension: text(),
};

/**
 * Oxen's MetadataEntry. Its client decodes it with `deny_unknown_fields`, so it has exactly these fields;
 * a listing with `depth` adds `children` (entries of the same shape).
 */
export const ENTRY = object(
  { ...ENTRY_FIELDS, children: arrayOf(anyObject('A MetadataEntry'), 'Entries of a directory listed with depth') },
  { required: Object.keys(ENTRY_FIELDS), description: 'A file or directory (Oxen\'s MetadataEntry)' },
);

/** Oxen's pagination fields (`pageView` in ../views.ts). */
export const PAGE_FIELDS = {
  page_number: integer(),
  page_size: integer(),
  total_pages: integer(),
  total_entries: integer(),
};
