/** Schemas of the committed data-frame routes (../routes/data-frames.ts): Oxen's JsonDataFrameViewResponse and friends. */
import { anyObject, arrayOf, checkedByHandler, envelope, integer, nullable, object, PAGE_QUERY, query, replies, repoWildcardParams, text } from './common.js';
import { COMMIT, ENTRY, PAGE_FIELDS } from './views.js';

/** Oxen's `Schema`: fields with Oxen's dtype names (`str`, `i64`, `list[str]`, `struct`…), hashed over names and dtypes. */
export const FRAME_SCHEMA = object(
  {
    hash: text('xxh3-128 of the fields\' names and dtypes'),
    fields: arrayOf(
      object(
        { name: text(), dtype: text('Oxen\'s type name: str, i64, f64, bool, date, datetime, list[…], struct, …'), metadata: nullable(anyObject()), changes: nullable(anyObject()) },
        { required: 'all' },
      ),
    ),
    metadata: nullable(anyObject()),
  },
  { required: 'all' },
);

export const SIZE = object({ height: integer('Rows'), width: integer('Columns') }, { required: 'all' });

export const RESOURCE_VERSION = object({ path: text(), version: text('The branch name or commit id the request named') }, { required: 'all' });

export const FRAME_VIEW = object(
  {
    schema: { ...FRAME_SCHEMA, description: 'Columns of the view' },
    size: { ...SIZE, description: 'Rows and columns of this page' },
    data: arrayOf(anyObject('A row: column name → value (nested types as JSON arrays and objects)')),
    pagination: object(PAGE_FIELDS, { required: 'all', description: 'total_entries: rows of the view (after filter or sql), or of the file' }),
    opts: arrayOf(object({ name: text(), value: { description: 'The option as applied (null when not given)' } }, { required: ['name'] }), 'The view options, as Oxen lists them'),
  },
  { required: 'all' },
);

export const DF_QUERY = {
  ...PAGE_QUERY,
  page_size: 'Rows per page (default 100, at most 10000)',
  columns: 'Columns to return, comma-separated, in that order',
  filter: "Rows to keep: `column op value` (op: == != > < >= <=), joined left to right by && or ||",
  sort_by: 'A column to sort by (nulls first)',
  reverse: 'true: reverse the order (of the sort, or of the file)',
  randomize: 'true: rows in random order',
  take: 'Row positions to return, comma-separated, in that order (at most 10000)',
  slice: "Rows start..end (end exclusive, at most 10000 rows) instead of the page; 'all' or empty: the page",
  row: 'One row by position, instead of the page',
  sql: 'One read-only SELECT over the view `df`; the options above then apply to its result',
  delimiter: 'Field separator of a csv/tsv file (one character), when not the format\'s own',
  output: 'Accepted and ignored (Oxen\'s CLI option)',
  output_column: 'Accepted and ignored',
  find_embedding_where: 'Accepted and ignored (embeddings are a workspace feature)',
  sort_by_similarity_to: 'Accepted and ignored (embeddings are a workspace feature)',
};

export const getDataFrame = {
  params: repoWildcardParams('{revision}/{path} of a tabular file (csv, tsv, jsonl, ndjson, json, parquet), or {workspace_id}/{path}'),
  querystring: query(DF_QUERY),
  response: replies(
    envelope({
      data_frame: object(
        {
          source: object({ schema: { ...FRAME_SCHEMA, description: 'Columns of the file' }, size: { ...SIZE, description: 'Rows and columns of the file' } }, { required: 'all' }),
          view: FRAME_VIEW,
        },
        { required: 'all' },
      ),
      commit: COMMIT,
      resource: RESOURCE_VERSION,
      derived_resource: nullable(anyObject('Always null here')),
    }),
  ),
};

export const indexDataFrame = {
  params: repoWildcardParams('{revision}/{path} of a tabular file'),
  body: nullable(anyObject('Nothing is read from the body')),
  response: replies(envelope({})),
};

export const dataFrameFromDirectory = {
  params: repoWildcardParams('{branch}/{path} of a directory'),
  body: object(
    {
      output_path: checkedByHandler('string', 'Where to commit the listing (a Parquet file: another extension is replaced by .parquet)'),
      extra_columns: checkedByHandler('array', 'Empty columns to add: [{name, data_type}] with Oxen\'s type names (str, i64, f64, float, bool, …)'),
      commit_message: checkedByHandler('string', 'The commit message'),
      user_name: checkedByHandler('string', 'The commit\'s author'),
      user_email: checkedByHandler('string', 'The author\'s email'),
      recursive: checkedByHandler('boolean', 'true: every file below the directory; default: the files directly in it'),
    },
    { required: ['output_path', 'user_name', 'user_email'] },
  ),
  response: replies(envelope({ commit: COMMIT })),
};

export const listTabular = {
  params: repoWildcardParams('A revision: branch name or commit id'),
  querystring: query(PAGE_QUERY),
  response: replies(envelope({ entries: arrayOf({ ...ENTRY, description: 'A tabular file; filename is its full path' }), ...PAGE_FIELDS })),
};

export const listSchemas = {
  params: repoWildcardParams('{revision} (every tabular file\'s schema), or {revision}/{path} (that file\'s, or those of the tabular files below a directory)'),
  response: replies(
    envelope({
      schemas: arrayOf(object({ path: text(), ...(FRAME_SCHEMA.properties as Record<string, never>) }, { required: 'all' }), 'Sorted by schema hash, as Oxen sorts them'),
      commit: COMMIT,
      resource: nullable(RESOURCE_VERSION),
    }),
  ),
};
