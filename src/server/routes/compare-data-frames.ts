import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { DisplayColumn } from '../../core/frame-compare.js';
import { parseFrameOptions, type FrameOptions, type FrameQuery } from '../../core/frame-options.js';
import { oxenDtypeOf, oxenSchemaOf } from '../../core/tabular.js';
import type { Comparison, PinnedFile, TabularFileDiff } from '../../services/frame-compare.js';
import type { PageView } from '../../services/frame-pages.js';
import type { Yoke } from '../../services/yoke.js';
import { ok } from '../envelope.js';
import { frameViews } from '../frame-views.js';
import { jsonObject } from '../json-body.js';
import { createComparison, deleteComparison, derivedFrame, getComparison, getComparisonByPost, updateComparison } from '../schemas/compare-data-frames.js';
import { REPO, type RepoParams } from './params.js';

type FrameColumn = PageView['columns'][number];
type CompareParams = RepoParams & { compare_id: string };
type Req<Params = CompareParams, Query = unknown> = FastifyRequest<{ Params: Params; Querystring: Query; Body: unknown }>;

const pinnedView = (file: PinnedFile) => ({ path: file.path, version: file.version, commit_id: file.commitId });

/** Display columns as Oxen lists them: one entry per column, naming each side it is shown from. */
function displayView(display: DisplayColumn[]) {
  const byColumn = new Map<string, { left: string | null; right: string | null; compare_method: null }>();
  for (const { column, side } of display) {
    const entry = byColumn.get(column) ?? { left: null, right: null, compare_method: null };
    entry[side] = column;
    byColumn.set(column, entry);
  }
  return [...byColumn.values()];
}

/** Oxen's CompareTabularResponse (its `dfs` and `messages`), with the comparison's id and the commits it reads. */
function comparisonReply(comparison: Comparison) {
  const { plan, counts, dupes } = comparison;
  const has = { left: new Set(plan.left.map((c) => c.name)), right: new Set(plan.right.map((c) => c.name)) };
  const schemaColumn = (change: 'added' | 'removed') => (c: { name: string; type: string }) => ({ name: c.name, key: `${c.name}.${change}`, dtype: oxenDtypeOf(c.type) });
  const messages =
    dupes.left > 0 || dupes.right > 0
      ? [
          {
            level: 'Warning',
            title: 'Duplicate keys',
            description:
              'This compare contains rows with duplicate keys: rows sharing a key are paired in the order of their compared values, and the rest count as added or removed.\n' +
              `Left df duplicates: ${dupes.left}\nRight df duplicates: ${dupes.right}\n`,
          },
        ]
      : [];
  return ok('resource_found', {
    dfs: {
      dupes,
      summary: {
        modifications: { added_rows: counts.added, removed_rows: counts.removed, modified_rows: counts.modified },
        schema: oxenSchemaOf(comparison.columns),
      },
      schema_diff: {
        added_cols: plan.added.map(schemaColumn('added')),
        removed_cols: plan.removed.map(schemaColumn('removed')),
        retyped_cols: plan.retyped
          .filter((c) => oxenDtypeOf(c.left) !== oxenDtypeOf(c.right))
          .map((c) => ({ name: c.name, key: `${c.name}.retyped`, dtype: oxenDtypeOf(c.right), previous_dtype: oxenDtypeOf(c.left) })),
      },
      source_schemas: { left: oxenSchemaOf(plan.left), right: oxenSchemaOf(plan.right) },
      keys: plan.keys.map((key) => ({ left: key, right: key, alias_as: null, compare_method: null })),
      targets: plan.targets.map((target) => ({ left: has.left.has(target) ? target : null, right: has.right.has(target) ? target : null, compare_method: null })),
      display: displayView(plan.display),
    },
    messages,
    compare_id: comparison.id,
    left: pinnedView(comparison.definition.left),
    right: pinnedView(comparison.definition.right),
  });
}

/** Oxen's JsonDataFrameView of a page: `size` is the whole view's (after filter or sql), as Oxen's derived frames and diffs have it. */
export function frameViewOf(page: PageView, options: FrameOptions) {
  const { view } = frameViews({ source: { columns: page.columns, height: page.totalEntries }, view: page, options });
  return { ...view, size: { height: page.totalEntries, width: page.columns.length } };
}

/** Oxen's older JsonDataFrame of a page (`added_rows` and friends of a tabular file diff). */
function jsonDataFrameOf(page: PageView, frameColumns: FrameColumn[]) {
  return {
    schema: oxenSchemaOf(frameColumns),
    view_schema: oxenSchemaOf(page.columns),
    view_size: { height: page.rows.length, width: page.columns.length },
    full_size: { height: page.totalEntries, width: frameColumns.length },
    data: page.rows,
  };
}

/**
 * Oxen's `diff_summary` and `diff` (TabularDiffView) of a tabular file in `compare/file`: as Oxen has them, the
 * rows of an unchanged schema come both as JsonDataFrame (`added_rows`) and as JsonDataFrameView
 * (`added_rows_view`), those of a changed schema as views only, beside the columns one revision alone has.
 */
export function tabularFileDiffView(diff: TabularFileDiff, options: FrameOptions) {
  const { baseColumns, headColumns, addedRows, removedRows, addedColumns, removedColumns } = diff;
  const summary = {
    num_added_rows: addedRows?.totalEntries ?? 0,
    num_added_cols: baseColumns === null ? headColumns!.length : (addedColumns?.columns.length ?? 0),
    num_removed_rows: removedRows?.totalEntries ?? 0,
    num_removed_cols: headColumns === null ? baseColumns!.length : (removedColumns?.columns.length ?? 0),
    schema_has_changed: diff.schemaChanged,
  };
  const whole = baseColumns === null || headColumns === null || !diff.schemaChanged;
  const rows = (page: PageView | null, columns: FrameColumn[] | null) => (page && whole ? jsonDataFrameOf(page, columns!) : null);
  const columns = (page: PageView | null, frameColumns: FrameColumn[] | null) => (page && !whole ? jsonDataFrameOf(page, frameColumns!) : null);
  const view = (page: PageView | null) => page && frameViewOf(page, options);
  return {
    diff_summary: { tabular: summary },
    diff: {
      tabular: {
        summary,
        base_schema: baseColumns && oxenSchemaOf(baseColumns),
        head_schema: headColumns && oxenSchemaOf(headColumns),
        added_rows: rows(addedRows, headColumns),
        added_rows_view: view(addedRows),
        removed_rows: rows(removedRows, baseColumns),
        removed_rows_view: view(removedRows),
        added_cols: columns(addedColumns, headColumns),
        added_cols_view: view(addedColumns),
        removed_cols: columns(removedColumns, baseColumns),
        removed_cols_view: view(removedColumns),
      },
    },
  };
}

/**
 * Oxen's `compare/data_frames`: comparisons of two tabular files row by row, stored by an id the client
 * chooses, and the derived frame of their changed rows, paged like any data frame.
 */
export function compareDataFrameRoutes(app: FastifyInstance, yoke: Yoke) {
  const tags = ['compare'];
  const repoOf = (request: Req<RepoParams>) => yoke.repos.require(request.params.namespace, request.params.repo_name);

  app.post(
    `${REPO}/compare/data_frames`,
    { schema: { tags, summary: 'Compare two tabular files ({path, version} each) by key columns, and save the comparison as compare_id (replacing one of that id)', ...createComparison } },
    async (request: Req<RepoParams>) => comparisonReply(await yoke.frameCompare.create(await repoOf(request), jsonObject(request.body))),
  );

  app.put(
    `${REPO}/compare/data_frames/:compare_id`,
    { schema: { tags, summary: 'Replace a comparison with the body\'s files and columns (created if absent, as Oxen does)', ...updateComparison } },
    async (request: Req) => comparisonReply(await yoke.frameCompare.update(await repoOf(request), request.params.compare_id, jsonObject(request.body))),
  );

  app.get(
    `${REPO}/compare/data_frames/:compare_id`,
    { schema: { tags, summary: 'A saved comparison: counts of added, removed and modified rows, the schema diff, its columns', ...getComparison } },
    async (request: Req) => comparisonReply(await yoke.frameCompare.get(await repoOf(request), request.params.compare_id)),
  );

  app.post(
    `${REPO}/compare/data_frames/:compare_id`,
    { schema: { tags, summary: 'A saved comparison (Oxen\'s POST form of the GET; the body is not needed)', ...getComparisonByPost } },
    async (request: Req) => comparisonReply(await yoke.frameCompare.get(await repoOf(request), request.params.compare_id)),
  );

  app.delete(`${REPO}/compare/data_frames/:compare_id`, { schema: { tags, summary: 'Delete a saved comparison', ...deleteComparison } }, async (request: Req) => {
    await yoke.frameCompare.delete(await repoOf(request), request.params.compare_id);
    return ok('resource_deleted', {});
  });

  app.get(
    `${REPO}/compare/data_frames/:compare_id/*`,
    { schema: { tags, summary: 'The changed rows of a saved comparison as a data frame ({path}/{base}..{head} after the id, as Oxen\'s client sends them, are not needed): paged, filtered, sorted or queried like any data frame', ...derivedFrame } },
    async (request: Req<CompareParams & { '*': string }, FrameQuery>) => {
      const options = parseFrameOptions(request.query);
      const id = request.params.compare_id;
      const { comparison, view } = await yoke.frameCompare.derivedView(await repoOf(request), id, options);
      return ok('resource_found', {
        data_frame: { source: frameViews({ source: comparison, view, options }).source, view: frameViewOf(view, options) },
        commit: null,
        resource: null,
        derived_resource: { resource_id: id, path: `/compare/data_frames/${id}/diff`, resource_type: 'compare' },
      });
    },
  );
}
