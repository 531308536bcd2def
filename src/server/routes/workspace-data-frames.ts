import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BadRequest } from '../../core/errors.js';
import { parseFrameOptions, type FrameQuery } from '../../core/frame-options.js';
import { normalizeRepoPath } from '../../core/paths.js';
import { tabularFormatOf, type TabularFormat } from '../../core/tabular.js';
import type { RepoRecord, WorkspaceRecord } from '../../services/records.js';
import type { FrameRowsResult, WorkspaceFramePage } from '../../services/workspace-frames.js';
import type { Yoke } from '../../services/yoke.js';
import { ok } from '../envelope.js';
import { frameViews, schemaView } from '../frame-views.js';
import { jsonObject, jsonValue } from '../json-body.js';
import * as schemas from '../schemas/workspace-data-frames.js';
import { entryView, pageParams, pageView, type PageQuery } from '../views.js';
import { REPO, type RepoParams } from './params.js';

type WsParams = RepoParams & { workspace_id: string };
type WsPathParams = WsParams & { '*': string };
type RowParams = WsPathParams & { row_id: string };
type Req<Params = WsPathParams, Query = unknown> = FastifyRequest<{ Params: Params; Querystring: Query }>;
const DF = `${REPO}/workspaces/:workspace_id/data_frames`;

/** The page a row or column reply shows (Oxen's empty options: the first 100 rows). */
const DEFAULT_OPTIONS = parseFrameOptions({});

const CONTENT_TYPES: Record<TabularFormat, string> = {
  csv: 'text/csv',
  tsv: 'text/tab-separated-values',
  jsonl: 'application/x-ndjson',
  ndjson: 'application/x-ndjson',
  json: 'application/json',
  parquet: 'application/vnd.apache.parquet',
};

/** Oxen's WorkspaceJsonDataFrameViewResponse. */
function frameReply(page: WorkspaceFramePage, resource: { path: string; version: string } | null) {
  return ok('resource_found', {
    data_frame: frameViews(page, page.indexed ? page.metadata : undefined),
    commit: null,
    resource: page.indexed ? resource : null,
    derived_resource: null,
    is_indexed: page.indexed,
  });
}

/** Oxen's JsonDataFrameRowResponse: the rows a request read or touched, as a frame of their own. */
function rowsReply(status: 'resource_found' | 'resource_updated' | 'resource_deleted' | 'resource_created', result: FrameRowsResult) {
  const rows = { columns: result.columns, height: result.rows.length };
  return ok(status, {
    data_frame: frameViews({ source: rows, view: { columns: result.columns, rows: result.rows, totalEntries: result.rows.length }, options: DEFAULT_OPTIONS }, result.metadata),
    commit: null,
    resource: null,
    derived_resource: null,
    row_id: result.rowId,
  });
}

/** Oxen's JsonDataFrameColumnResponse: the frame's first page after a column edit. */
function columnReply(page: WorkspaceFramePage) {
  return ok('resource_found', { data_frame: frameViews(page, page.metadata), commit: null, resource: null, derived_resource: null });
}

/**
 * `{column_name}/resource/{path}` (Oxen's column routes; its pattern joins the scope without a slash, so
 * the name is whatever comes before the first `/resource/`).
 */
function columnAndPath(rest: string): { column: string; path: string } {
  const at = rest.indexOf('/resource/');
  if (at <= 0) throw new BadRequest('Expected columns/{column_name}/resource/{path}');
  return { column: rest.slice(0, at), path: rest.slice(at + '/resource/'.length) };
}

function optionalText(value: unknown, name: string): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string') throw new BadRequest(`${name} must be given once`);
  return value;
}

/**
 * Workspace data frames: index a tabular file of a workspace for editing, read it with Oxen's view
 * options or SQL, edit rows and columns, search it by embedding, download and rename it. Edits are
 * committed with the workspace (POST workspaces/{id}/commit/{branch}).
 */
export function workspaceDataFrameRoutes(app: FastifyInstance, yoke: Yoke) {
  const tags = ['workspace data frames'];
  const context = async (params: WsParams): Promise<{ repo: RepoRecord; workspace: WorkspaceRecord }> => {
    const repo = await yoke.repos.require(params.namespace, params.repo_name);
    return { repo, workspace: await yoke.workspaces.require(repo, params.workspace_id) };
  };
  const frames = yoke.workspaceFrames;

  app.get(`${DF}/resource/*`, { schema: { tags, summary: 'A page of the data frame at {path}: indexed, the workspace\'s edited frame (sql, find_embedding_where + sort_by_similarity_to allowed); else its file', ...schemas.getFrame } }, async (request: Req<WsPathParams, FrameQuery & Record<string, unknown>>) => {
    const { repo, workspace } = await context(request.params);
    const options = parseFrameOptions(request.query);
    const where = optionalText(request.query.find_embedding_where, 'find_embedding_where');
    const column = optionalText(request.query.sort_by_similarity_to, 'sort_by_similarity_to');
    const page = await frames.page(repo, workspace, request.params['*'], options, where !== null && column !== null ? { where, column } : undefined);
    return frameReply(page, { path: normalizeRepoPath(request.params['*']), version: workspace.baseCommitId });
  });

  app.put(`${DF}/resource/*`, { schema: { tags, summary: 'Index the data frame for editing ({is_indexed: true}), or drop its index and edits ({is_indexed: false})', ...schemas.putFrame } }, async (request: Req) => {
    const { workspace } = await context(request.params);
    const body = jsonObject(request.body);
    if (typeof body.is_indexed !== 'boolean') throw new BadRequest('is_indexed must be true or false');
    await frames.setIndexed(workspace, request.params['*'], body.is_indexed);
    return ok('resource_updated', {});
  });

  app.delete(`${DF}/resource/*`, { schema: { tags, summary: 'Restore the data frame: drop its edits and index it again from the workspace\'s file', ...schemas.restoreFrame } }, async (request: Req) => {
    const { workspace } = await context(request.params);
    await frames.restore(workspace, request.params['*']);
    return ok('resource_deleted', {});
  });

  app.get(`${DF}/schema/*`, { schema: { tags, summary: 'The data frame\'s schema (Oxen\'s Schema, without an envelope): its columns and metadata', ...schemas.getSchema } }, async (request: Req) => {
    const { repo, workspace } = await context(request.params);
    const { columns, metadata } = await frames.schema(repo, workspace, request.params['*']);
    return schemaView(columns, metadata);
  });

  app.put(`${DF}/schema/*`, { schema: { tags, summary: 'Set the metadata of the data frame\'s schema: {metadata}', ...schemas.putSchemaMetadata } }, async (request: Req) => {
    const { workspace } = await context(request.params);
    await frames.setSchemaMetadata(workspace, request.params['*'], jsonValue(request.body));
    return ok('resource_updated', {});
  });

  app.put(`${DF}/rename/*`, { schema: { tags, summary: 'Move the data frame, with its edits, to {new_path} (its extension names the format it is committed in)', ...schemas.renameFrame } }, async (request: Req) => {
    const { workspace } = await context(request.params);
    await frames.rename(workspace, request.params['*'], jsonObject(request.body).new_path);
    return ok('resource_updated', {});
  });

  app.get(
    `${DF}/download/*`,
    { schema: { tags, summary: 'The data frame as a file: in its own format, or that of ?output=name.ext; ?sql= a query\'s result', ...schemas.downloadFrame } },
    async (request: Req<WsPathParams, Record<string, unknown>>, reply: FastifyReply) => {
      const { workspace } = await context(request.params);
      const output = optionalText(request.query.output, 'output');
      const format = output === null ? null : tabularFormatOf(output);
      if (output !== null && format === null) throw new BadRequest(`output must name a tabular file (csv, tsv, jsonl, ndjson, json, parquet): ${output}`);
      const file = await frames.download(workspace, request.params['*'], { sql: optionalText(request.query.sql, 'sql'), format });
      const name = normalizeRepoPath(request.params['*']).split('/').pop()!;
      return reply
        .header('content-type', CONTENT_TYPES[file.format])
        .header('content-length', file.size)
        .header('content-disposition', `attachment; filename="${name.replace(/["\\\r\n]/g, '_')}"`)
        .send(file.stream);
    },
  );

  app.get(`${DF}/branch/*`, { schema: { tags, summary: 'The tabular files of {branch}\'s head that are indexed in this workspace, paginated', ...schemas.listIndexed } }, async (request: Req<WsPathParams, PageQuery>) => {
    const { repo, workspace } = await context(request.params);
    const { page, pageSize, offset } = pageParams(request.query);
    const files = await frames.indexedOn(repo, workspace, request.params['*']);
    return ok('resource_found', {
      entries: files.slice(offset, offset + pageSize).map((f) => entryView({ ...f.entry, name: f.path }, f.latestCommit)),
      ...pageView(page, pageSize, files.length),
    });
  });

  // Rows. Static segments win over `:row_id` in the router, so rows/resource/… is never a row id.
  app.post(`${DF}/rows/resource/*`, { schema: { tags, summary: 'Add a row ({column: value}, or {data: …}), or several (a list); each gets a new _oxen_id', ...schemas.addRows } }, async (request: Req) => {
    const { workspace } = await context(request.params);
    return rowsReply('resource_found', await frames.addRows(workspace, request.params['*'], jsonValue(request.body)));
  });

  app.put(`${DF}/rows/resource/*`, { schema: { tags, summary: 'Update several rows: [{row_id, value: {column: value}}] (or {data: […]})', ...schemas.updateRows } }, async (request: Req) => {
    const { workspace } = await context(request.params);
    const ids = await frames.updateRows(workspace, request.params['*'], jsonValue(request.body));
    return ok('resource_updated', { rows: ids.map((id) => ({ row_id: id, code: 200, error: null })) });
  });

  app.get(`${DF}/rows/:row_id/resource/*`, { schema: { tags, summary: 'One row, by _oxen_id', ...schemas.rowReply } }, async (request: Req<RowParams>) => {
    const { workspace } = await context(request.params);
    return rowsReply('resource_found', await frames.getRow(workspace, request.params['*'], request.params.row_id));
  });

  app.put(`${DF}/rows/:row_id/resource/*`, { schema: { tags, summary: 'Update one row: {column: value} (or {data: …}); other columns keep their values', ...schemas.updateRow } }, async (request: Req<RowParams>) => {
    const { workspace } = await context(request.params);
    return rowsReply('resource_updated', await frames.updateRow(workspace, request.params['*'], request.params.row_id, jsonValue(request.body)));
  });

  app.delete(`${DF}/rows/:row_id/resource/*`, { schema: { tags, summary: 'Delete one row; answers with it as it was', ...schemas.rowReply } }, async (request: Req<RowParams>) => {
    const { workspace } = await context(request.params);
    const result = await frames.deleteRow(workspace, request.params['*'], request.params.row_id);
    return rowsReply('resource_deleted', { ...result, rowId: null });
  });

  app.post(`${DF}/rows/:row_id/restore/*`, { schema: { tags, summary: 'Restore one row as the file has it (a row the workspace added is removed)', ...schemas.restoreRow } }, async (request: Req<RowParams>) => {
    const { workspace } = await context(request.params);
    return rowsReply('resource_updated', await frames.restoreRow(workspace, request.params['*'], request.params.row_id));
  });

  // Columns.
  app.post(`${DF}/columns/resource/*`, { schema: { tags, summary: 'Add a column: {name, data_type} (Oxen\'s type names: str, i64, f64, bool, list[…], …)', ...schemas.addColumn } }, async (request: Req) => {
    const { workspace } = await context(request.params);
    return columnReply(await frames.addColumn(workspace, request.params['*'], jsonValue(request.body)));
  });

  app.post(`${DF}/columns/schema/metadata/*`, { schema: { tags, summary: 'Set one column\'s metadata: {column_name, metadata}', ...schemas.columnMetadata } }, async (request: Req) => {
    const { workspace } = await context(request.params);
    await frames.setColumnMetadata(workspace, request.params['*'], jsonValue(request.body));
    return ok('resource_updated', {});
  });

  app.put(`${DF}/columns/*`, { schema: { tags, summary: 'columns/{column_name}/resource/{path}: rename, retype or annotate a column ({new_name?, new_data_type?, metadata?})', ...schemas.updateColumn } }, async (request: Req) => {
    const { workspace } = await context(request.params);
    const { column, path } = columnAndPath(request.params['*']);
    return columnReply(await frames.updateColumn(workspace, path, column, jsonValue(request.body)));
  });

  app.delete(`${DF}/columns/*`, { schema: { tags, summary: 'columns/{column_name}/resource/{path}: delete a column', ...schemas.deleteColumn } }, async (request: Req) => {
    const { workspace } = await context(request.params);
    const { column, path } = columnAndPath(request.params['*']);
    return columnReply(await frames.deleteColumn(workspace, path, column));
  });

  // Embeddings.
  const embeddingsReply = (columns: Array<{ name: string; vectorLength: number }>) =>
    ok('resource_found', { columns: columns.map((c) => ({ name: c.name, vector_length: c.vectorLength, status: 'complete' })) });

  app.get(`${DF}/embeddings/columns/*`, { schema: { tags, summary: 'The columns enabled for nearest-neighbour queries', ...schemas.embeddingColumns } }, async (request: Req) => {
    const { workspace } = await context(request.params);
    return embeddingsReply(await frames.embeddingColumns(workspace, request.params['*']));
  });

  app.post(`${DF}/embeddings/columns/*`, { schema: { tags, summary: 'Enable nearest-neighbour queries on a column of number vectors: {column}', ...schemas.enableEmbeddings } }, async (request: Req) => {
    const { workspace } = await context(request.params);
    return embeddingsReply(await frames.enableEmbeddings(workspace, request.params['*'], jsonValue(request.body)));
  });

  app.post(`${DF}/embeddings/neighbors/*`, { schema: { tags, summary: 'Rows by cosine similarity of {column} to {embedding}, most similar first: {column, embedding, page_size, page_num}', ...schemas.neighbors } }, async (request: Req) => {
    const { workspace } = await context(request.params);
    const page = await frames.neighbors(workspace, request.params['*'], jsonValue(request.body));
    return frameReply(page, { path: normalizeRepoPath(request.params['*']), version: workspace.baseCommitId });
  });
}
