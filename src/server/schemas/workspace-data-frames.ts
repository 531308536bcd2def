/** Schemas of the workspace data-frame routes (../routes/workspace-data-frames.ts). */
import { anyObject, arrayOf, boolean, bytesReply, checkedByHandler, envelope, integer, nullable, object, PAGE_QUERY, query, replies, repoParams, text, type JsonSchema } from './common.js';
import { DF_QUERY, FRAME_SCHEMA, FRAME_VIEW, RESOURCE_VERSION, SIZE } from './data-frames.js';
import { ENTRY, PAGE_FIELDS } from './views.js';

const WORKSPACE_ID = text('The workspace\'s id or name');
const frameParams = (rest = 'The path of a tabular file (csv, tsv, jsonl, ndjson, json, parquet)') => repoParams({ workspace_id: WORKSPACE_ID, '*': text(rest) });
const rowParams = repoParams({ workspace_id: WORKSPACE_ID, row_id: text('The row\'s _oxen_id'), '*': text('The path of the data frame') });

const FRAME_VIEWS = object(
  {
    source: object({ schema: { ...FRAME_SCHEMA, description: 'Columns of the frame (with _oxen_id when indexed)' }, size: { ...SIZE, description: 'Rows and columns of the frame' } }, { required: 'all' }),
    view: FRAME_VIEW,
  },
  { required: 'all' },
);

/** Fields Oxen's replies carry that are always null here. */
const NULLS = {
  commit: nullable(anyObject('Always null: a workspace frame is not committed')),
  derived_resource: nullable(anyObject('Always null')),
};

/** Oxen's WorkspaceJsonDataFrameViewResponse. */
const FRAME_REPLY = envelope({
  data_frame: FRAME_VIEWS,
  resource: nullable({ ...RESOURCE_VERSION, description: 'The path and the workspace\'s base commit (null when not indexed)' }),
  is_indexed: boolean('Whether the frame is indexed for editing (else the page is of the workspace\'s file)'),
  ...NULLS,
});

/** Oxen's JsonDataFrameRowResponse. */
const ROW_REPLY = envelope({
  data_frame: { ...FRAME_VIEWS, description: 'The rows read or touched, as a frame of their own' },
  resource: nullable(anyObject('Always null')),
  row_id: nullable(text('The row\'s _oxen_id (of the first row added)')),
  ...NULLS,
});

/** Oxen's JsonDataFrameColumnResponse. */
const COLUMN_REPLY = envelope({ data_frame: { ...FRAME_VIEWS, description: 'The frame\'s first page after the edit' }, resource: nullable(anyObject('Always null')), ...NULLS });

const ROW_VALUES: JsonSchema = { type: ['object', 'array'], description: '{column: value}, {data: {column: value}}, or (adding) a list of them' };
const EMPTY_REPLY = replies(envelope({}));

export const getFrame = {
  params: frameParams(),
  querystring: query({
    ...DF_QUERY,
    sql: 'One read-only SELECT over the view `df` (the frame\'s rows with _oxen_id), run in the sandbox; the options above then apply to its result',
    find_embedding_where: 'With sort_by_similarity_to: a WHERE clause selecting the rows whose mean vector the page is sorted by similarity to (run in the sandbox)',
    sort_by_similarity_to: 'With find_embedding_where: the vector column to compare',
  }),
  response: replies(FRAME_REPLY),
};

export const putFrame = {
  params: frameParams(),
  body: object({ is_indexed: checkedByHandler('boolean', 'true: index for editing; false: drop the index and every edit') }, { required: ['is_indexed'] }),
  response: EMPTY_REPLY,
};

export const restoreFrame = { params: frameParams(), response: EMPTY_REPLY };

export const getSchema = {
  params: frameParams(),
  response: replies({ ...FRAME_SCHEMA, description: 'Oxen\'s Schema, as it is (no envelope): the columns without _oxen_id, with their metadata' }),
};

export const putSchemaMetadata = {
  params: frameParams(),
  body: object({ metadata: checkedByHandler('object', 'The schema\'s metadata (replaces it; null clears it)') }, { required: ['metadata'] }),
  response: EMPTY_REPLY,
};

export const renameFrame = {
  params: frameParams(),
  body: object({ new_path: checkedByHandler('string', 'Where the frame goes (a path the workspace does not have)') }, { required: ['new_path'] }),
  response: EMPTY_REPLY,
};

export const downloadFrame = {
  params: frameParams(),
  querystring: query({ output: 'A file name whose extension chooses the format (default: the frame\'s own)', sql: 'One read-only SELECT over the view `df`: download its result instead' }),
  response: replies(bytesReply('The frame\'s rows (no _oxen_id) as a csv, tsv, jsonl, ndjson, json or parquet file')),
};

export const listIndexed = {
  params: repoParams({ workspace_id: WORKSPACE_ID, '*': text('A branch') }),
  querystring: query(PAGE_QUERY),
  response: replies(envelope({ entries: arrayOf({ ...ENTRY, description: 'An indexed tabular file; filename is its full path' }), ...PAGE_FIELDS })),
};

export const addRows = { params: frameParams('The path of the data frame'), body: ROW_VALUES, response: replies(ROW_REPLY) };

export const updateRows = {
  params: frameParams('The path of the data frame'),
  body: { type: ['object', 'array'], description: '[{row_id, value: {column: value}}], or {data: […]}' },
  response: replies(envelope({ rows: arrayOf(object({ row_id: text(), code: integer('200'), error: nullable(text()) }, { required: 'all' })) })),
};

export const rowReply = { params: rowParams, response: replies(ROW_REPLY) };

export const restoreRow = { ...rowReply, body: nullable(anyObject('Nothing is read from the body')) };

export const updateRow = { params: rowParams, body: ROW_VALUES, response: replies(ROW_REPLY) };

export const addColumn = {
  params: frameParams('The path of the data frame'),
  body: object({ name: checkedByHandler('string', 'The new column'), data_type: checkedByHandler('string', 'Oxen\'s type name (or dtype)') }),
  response: replies(COLUMN_REPLY),
};

export const columnMetadata = {
  params: frameParams('The path of the data frame'),
  body: object({ column_name: checkedByHandler('string', 'The column'), metadata: checkedByHandler('object', 'Its metadata (replaces it; null clears it)') }, { required: ['column_name', 'metadata'] }),
  response: EMPTY_REPLY,
};

const COLUMN_PATH = '{column_name}/resource/{path}';

export const updateColumn = {
  params: frameParams(COLUMN_PATH),
  body: object({
    new_name: checkedByHandler('string', 'A new name (or name)'),
    new_data_type: checkedByHandler('string', 'A new type, Oxen\'s name (or dtype); the values are converted'),
    metadata: checkedByHandler('object', 'The column\'s metadata'),
  }),
  response: replies(COLUMN_REPLY),
};

export const deleteColumn = { params: frameParams(COLUMN_PATH), response: replies(COLUMN_REPLY) };

const EMBEDDING_COLUMNS = envelope({
  columns: arrayOf(object({ name: text(), vector_length: integer(), status: text('complete') }, { required: 'all' }), 'The columns enabled for nearest-neighbour queries'),
});

export const embeddingColumns = { params: frameParams('The path of the data frame'), response: replies(EMBEDDING_COLUMNS) };

export const enableEmbeddings = {
  params: frameParams('The path of the data frame'),
  body: object({ column: checkedByHandler('string', 'A column of number vectors'), use_background_thread: checkedByHandler('boolean', 'Ignored: enabling is immediate') }, { required: ['column'] }),
  response: replies(EMBEDDING_COLUMNS),
};

export const neighbors = {
  params: frameParams('The path of the data frame'),
  body: object(
    {
      column: checkedByHandler('string', 'A column of number vectors'),
      embedding: checkedByHandler('array', 'The vector to compare with (numbers)'),
      page_size: checkedByHandler('integer', 'Rows per page (default 10, at most 10000)'),
      page_num: checkedByHandler('integer', 'Page, from 1'),
    },
    { required: ['column', 'embedding'] },
  ),
  response: replies(FRAME_REPLY),
};
