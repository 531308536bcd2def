import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parseFrameOptions, type FrameQuery } from '../../core/frame-options.js';
import { oxenSchemaOf } from '../../core/tabular.js';
import type { FromDirectoryRequest } from '../../services/data-frames.js';
import type { Yoke } from '../../services/yoke.js';
import { ok } from '../envelope.js';
import { frameViews } from '../frame-views.js';
import { dataFrameFromDirectory, getDataFrame, indexDataFrame, listSchemas, listTabular } from '../schemas/data-frames.js';
import { commitView, entryView, pageParams, pageView, type PageQuery } from '../views.js';
import { REPO, type RepoWildcardParams } from './params.js';

type Req<Query = unknown, Body = unknown> = FastifyRequest<{ Params: RepoWildcardParams; Querystring: Query; Body: Body }>;

/** Committed tabular files: pages with Oxen's view options or SQL, indexing, listings of tabular files and schemas. */
export function dataFrameRoutes(app: FastifyInstance, yoke: Yoke) {
  const tags = ['data frames'];

  app.post(
    `${REPO}/data_frames/index/*`,
    { schema: { tags, summary: 'Index a tabular file at {revision}/{path} for queries (as Oxen does, in a workspace of its own); 400 dataset_already_indexed the second time', ...indexDataFrame } },
    async (request: Req) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      await yoke.dataFrames.index(repo, request.params['*']);
      return ok('resource_updated', {});
    },
  );

  app.post(
    `${REPO}/data_frames/from_directory/*`,
    { schema: { tags, summary: 'Commit a Parquet data frame listing the files of the directory at {branch}/{path}', ...dataFrameFromDirectory } },
    async (request: Req<unknown, FromDirectoryRequest>) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const commit = await yoke.dataFrames.fromDirectory(repo, request.params['*'], request.body ?? {});
      return ok('resource_created', { commit: commitView(commit) });
    },
  );

  app.get(
    `${REPO}/data_frames/*`,
    { schema: { tags, summary: 'A page of a tabular file at {revision}/{path}: filtered, sorted, sliced, or queried with SQL (the view df)', ...getDataFrame } },
    async (request: Req<FrameQuery>) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const options = parseFrameOptions(request.query);
      const frame = await yoke.dataFrames.view(repo, request.params['*'], options);
      return ok('resource_found', {
        data_frame: frameViews(frame),
        commit: commitView(frame.commit),
        resource: frame.resource,
        derived_resource: null,
      });
    },
  );

  app.get(`${REPO}/tabular/*`, { schema: { tags, summary: 'The tabular files of a revision (branch or commit id), by path, paginated', ...listTabular } }, async (request: Req<PageQuery>) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    const { page, pageSize, offset } = pageParams(request.query);
    const files = await yoke.dataFrames.tabularFiles(repo, request.params['*']);
    return ok('resource_found', {
      entries: files.slice(offset, offset + pageSize).map((f) => entryView({ ...f.entry, name: f.path }, f.latestCommit)),
      ...pageView(page, pageSize, files.length),
    });
  });

  app.get(`${REPO}/schemas/*`, { schema: { tags, summary: 'Schemas of the tabular files at {revision}, or of {revision}/{path}', ...listSchemas } }, async (request: Req) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    const { commit, resource, schemas } = await yoke.dataFrames.schemas(repo, request.params['*']);
    const listed = schemas.map((s) => ({ path: s.path, ...oxenSchemaOf(s.columns) })).sort((a, b) => a.hash.localeCompare(b.hash) || a.path.localeCompare(b.path));
    return ok('resource_found', { schemas: listed, commit: commitView(commit), resource });
  });
}
