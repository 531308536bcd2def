/** Schemas of the data frame comparison routes (../routes/compare-data-frames.ts): Oxen's CompareTabularResponse and the derived frame. */
import { anyObject, arrayOf, checkedByHandler, envelope, integer, nullable, object, query, replies, repoParams, text } from './common.js';
import { DF_QUERY, FRAME_SCHEMA } from './data-frames.js';
import { PAGE_FIELDS } from './views.js';

const COMPARE_ID = text('The comparison\'s id, chosen by the client (Oxen\'s clients use a UUID)');
const compareParams = repoParams({ compare_id: COMPARE_ID });

const SIDE_COLUMN = object(
  { left: nullable(text('The column of the left file (null: only the right file has it)')), right: nullable(text('The column of the right file (null: only the left file has it)')), compare_method: nullable(text('Always null')) },
  { required: 'all' },
);
const SCHEMA_COLUMN = object({ name: text(), key: text('name.added or name.removed'), dtype: text('Oxen\'s type name') }, { required: 'all' });
const PINNED = object(
  { path: text(), version: text('The revision the request named'), commit_id: text('The commit it resolved to when the comparison was saved: the comparison shows the file as it was then') },
  { required: 'all' },
);

const COMPARE_TABULAR = object(
  {
    dupes: object({ left: integer(), right: integer() }, { required: 'all', description: 'Rows of each file whose keys another row of that file also has; duplicates are paired occurrence by occurrence' }),
    summary: object(
      {
        modifications: object({ added_rows: integer(), removed_rows: integer(), modified_rows: integer() }, { required: 'all' }),
        schema: { ...FRAME_SCHEMA, description: 'Columns of the derived frame' },
      },
      { required: 'all' },
    ),
    schema_diff: object(
      {
        added_cols: arrayOf(SCHEMA_COLUMN, 'Columns only the right file has'),
        removed_cols: arrayOf(SCHEMA_COLUMN, 'Columns only the left file has'),
        retyped_cols: arrayOf(
          object({ name: text(), key: text('name.retyped'), dtype: text('The right file\'s type'), previous_dtype: text('The left file\'s type') }, { required: 'all' }),
          'Columns whose type differs (Yoke\'s addition): compared at a type both convert to',
        ),
      },
      { required: 'all' },
    ),
    source_schemas: object({ left: FRAME_SCHEMA, right: FRAME_SCHEMA }, { required: 'all' }),
    keys: arrayOf(object({ left: text(), right: text(), alias_as: nullable(text()), compare_method: nullable(text()) }, { required: 'all' }), 'Columns that match rows'),
    targets: arrayOf(SIDE_COLUMN, 'Columns compared: a matched row differing in one is modified'),
    display: arrayOf(SIDE_COLUMN, 'Columns shown beside them'),
  },
  { required: 'all' },
);

const COMPARISON_REPLY = envelope({
  dfs: COMPARE_TABULAR,
  messages: arrayOf(object({ level: text('Warning'), title: text(), description: text() }, { required: 'all' }), 'A warning when keys repeat'),
  compare_id: COMPARE_ID,
  left: PINNED,
  right: PINNED,
});

/** Oxen's TabularCompareBody: fields the handler checks itself (core/frame-compare.ts), with messages that say what is wrong. */
const COMPARE_BODY = object(
  {
    compare_id: checkedByHandler('string', 'The comparison\'s id (on update, the URL\'s wins)'),
    left: checkedByHandler('object', '{path, version}: the left file and the revision (branch or commit id) it is read at'),
    right: checkedByHandler('object', '{path, version}: the right file'),
    keys: checkedByHandler('array', '[{left, right, alias_as, compare_method}]: columns that match rows, the same column named on both sides; none: every column both files have (rows compared whole)'),
    compare: checkedByHandler('array', '[{left, right, compare_method}]: columns compared (left or right alone: a column one file has); none: every other column both files have'),
    display: checkedByHandler('array', '[{left, right}]: columns shown from each side; none: every column neither a key nor compared'),
  },
  { description: 'Oxen\'s TabularCompareBody', open: true },
);

export const createComparison = { params: repoParams(), body: COMPARE_BODY, response: replies(COMPARISON_REPLY) };
export const updateComparison = { params: compareParams, body: COMPARE_BODY, response: replies(COMPARISON_REPLY) };
export const getComparison = { params: compareParams, response: replies(COMPARISON_REPLY) };
export const getComparisonByPost = { params: compareParams, body: nullable(anyObject('Accepted and not needed: the stored comparison is returned')), response: replies(COMPARISON_REPLY) };
export const deleteComparison = { params: compareParams, response: replies(envelope({})) };

export const derivedFrame = {
  params: repoParams({ compare_id: COMPARE_ID, '*': text('{path}/{base}..{head}, as Oxen\'s client sends them (`diff/main..main`): accepted and not needed, the comparison names its files') }),
  querystring: query(DF_QUERY),
  response: replies(
    envelope({
      data_frame: object(
        {
          source: object({ schema: { ...FRAME_SCHEMA, description: 'Columns of the derived frame' }, size: object({ height: integer('Changed rows'), width: integer() }, { required: 'all' }) }, { required: 'all' }),
          view: object(
            {
              schema: { ...FRAME_SCHEMA, description: 'Columns of the view' },
              size: object({ height: integer('Rows of the view (after filter or sql)'), width: integer() }, { required: 'all' }),
              data: arrayOf(anyObject('A changed row: key columns, name.left / name.right values, _oxen_diff_status (added, removed or modified)')),
              pagination: object(PAGE_FIELDS, { required: 'all' }),
              opts: arrayOf(object({ name: text(), value: { description: 'The option as applied' } }, { required: ['name'] })),
            },
            { required: 'all' },
          ),
        },
        { required: 'all' },
      ),
      commit: { type: 'null' },
      resource: { type: 'null' },
      derived_resource: object({ resource_id: text(), path: text(), resource_type: text('compare') }, { required: 'all' }),
    }),
  ),
};
