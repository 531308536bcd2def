/** Schemas of the merge and compare routes (../routes/merge.ts). */
import { anyObject, arrayOf, boolean, envelope, integer, nullable, object, PAGE_QUERY, query, replies, repoWildcardParams, text } from './common.js';
import { COMMIT, COMMIT_FIELDS, ENTRY, PAGE_FIELDS } from './views.js';

const CONFLICT = object(
  { path: text(), base: nullable(text('Content hash in the common ancestor')), ours: nullable(text('…on the base branch')), theirs: nullable(text('…on head')) },
  { required: 'all' },
);

const MERGEABILITY = {
  is_mergeable: boolean(),
  conflicts: arrayOf(CONFLICT, 'Paths both sides changed differently'),
  commits: arrayOf(COMMIT, 'What head adds'),
};

export const mergeability = {
  params: repoWildcardParams('{base}..{head}: may head be merged into the branch base'),
  response: replies(envelope({ ...MERGEABILITY, mergeable: object(MERGEABILITY, { required: 'all', description: 'The same, as Oxen\'s client reads it' }) })),
};

export const mergeBranch = {
  params: repoWildcardParams('{base}..{head}: merge head into the branch base'),
  body: object({ name: text('Author of a merge commit'), email: text() }, { required: ['name', 'email'] }),
  response: replies(
    envelope({
      result: { type: 'string', enum: ['up_to_date', 'fast_forward', 'merge_commit'] },
      commits: object({ base: COMMIT, head: COMMIT, merge: { ...COMMIT, description: 'The branch\'s head now' } }, { required: 'all' }),
    }),
  ),
};

const COMPARED = { base_commit: COMMIT, head_commit: COMMIT };
const RANGE_QUERY = query(PAGE_QUERY);

export const compareCommits = {
  params: repoWildcardParams('{base}..{head} (what head adds) or {base}...{head} (both sides since the merge base)'),
  querystring: RANGE_QUERY,
  response: replies(
    envelope({
      compare: object(
        { ...COMPARED, commits: arrayOf(object({ ...COMMIT_FIELDS, side: text('base or head') }, { required: 'all' })) },
        { required: 'all' },
      ),
      ...PAGE_FIELDS,
    }),
  ),
};

const SIDE = nullable(object({ hash: text(), size: integer() }, { required: 'all' }));

export const compareEntries = {
  params: repoWildcardParams('{base}..{head}, or {base}..{head}/dir/{dir} for one directory'),
  querystring: RANGE_QUERY,
  response: replies(
    envelope({
      compare: object(
        {
          ...COMPARED,
          counts: object({ added: integer(), removed: integer(), modified: integer() }, { required: 'all' }),
          entries: arrayOf(
            object(
              { status: text('added, removed or modified'), path: text(), filename: text(), is_dir: boolean(), size: integer(), base_entry: SIDE, head_entry: SIDE },
              { required: 'all' },
            ),
          ),
        },
        { required: 'all' },
      ),
      ...PAGE_FIELDS,
    }),
  ),
};

export const compareDirTree = {
  params: repoWildcardParams('{base}..{head}'),
  response: replies(
    envelope({
      dirs: arrayOf(
        object(
          {
            name: text('A parent directory'),
            status: text(),
            num_subdirs: integer(),
            can_display: boolean('False when it has more changed subdirectories than are listed'),
            children: arrayOf(object({ name: text('A changed directory'), status: text() }, { required: 'all' })),
          },
          { required: 'all' },
        ),
      ),
    }),
  ),
};

const LINE = object({ modification: text('Added, Removed or Unchanged'), text: text() }, { required: 'all' });

export const compareFile = {
  params: repoWildcardParams('{base}..{head}/{path}'),
  response: replies(
    envelope({
      compare: object(
        {
          status: text('added, removed, modified or unchanged'),
          data_type: text(),
          filename: text(),
          is_dir: boolean(),
          size: integer(),
          base_resource: nullable(anyObject()),
          head_resource: nullable(anyObject()),
          base_entry: nullable(ENTRY),
          head_entry: nullable(ENTRY),
          diff_summary: nullable(anyObject('For a data frame: {tabular: {num_added_rows, num_added_cols, num_removed_rows, num_removed_cols, schema_has_changed}}')),
          diff: {
            anyOf: [
              object({ lines: arrayOf(LINE), filename1: text(), filename2: text() }, { required: 'all', description: 'A line diff, for text (and a tabular file that cannot be read as a data frame)' }),
              object({ tabular: anyObject('Oxen\'s TabularDiffView: summary, base_schema, head_schema, added_rows(_view), removed_rows(_view), added_cols(_view), removed_cols(_view)') }, { required: 'all', description: 'A data frame\'s diff' }),
              { type: 'null' },
            ],
          },
          path: text(),
          ...COMPARED,
        },
        { required: 'all' },
      ),
    }),
  ),
};
