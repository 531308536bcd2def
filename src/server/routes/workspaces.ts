import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DEFAULT_MAX_DECOMPRESSED_BYTES } from '../../config.js';
import { BadRequest, NotFound, shown } from '../../core/errors.js';
import { joinRepoPath, normalizeRepoPath } from '../../core/paths.js';
import type { Yoke } from '../../services/yoke.js';
import type { ClassifiedChange } from '../../services/workspaces.js';
import type { CommitRecord, RepoRecord, WorkspaceRecord } from '../../services/records.js';
import { receiveBlobParts } from '../blob-parts.js';
import { isMultipart } from '../multipart.js';
import { ok } from '../envelope.js';
import {
  commitWorkspace,
  deleteAllWorkspaces,
  deleteWorkspace,
  downloadFromWorkspace,
  getOrCreateWorkspace,
  getWorkspace,
  listWorkspaces,
  stageMove,
  stageRemovals,
  unstagePath,
  unstagePaths,
  unstageUnder,
  uploadToWorkspace,
  validateUpload,
  workspaceMergeability,
  workspaceStatus,
  workspaceStatusUnder,
} from '../schemas/workspaces.js';
import { jsonObject, jsonValue } from '../json-body.js';
import { commitView, pageParams, pageView, stagedEntryView, type PageQuery } from '../views.js';
import { sendBlob } from './files.js';
import { REPO, type RepoParams } from './params.js';

type WsParams = RepoParams & { workspace_id: string };
type WsPathParams = WsParams & { '*': string };
const WS = `${REPO}/workspaces/:workspace_id`;

function workspaceView(workspace: WorkspaceRecord, base: CommitRecord) {
  return {
    id: workspace.id,
    name: workspace.name,
    branch_name: workspace.branch,
    commit: commitView(base),
    created_at: workspace.createdAt,
    updated_at: workspace.updatedAt,
  };
}

/** A list of paths: a JSON array, or `{paths: [...]}`. */
function pathList(body: unknown): string[] {
  const value = jsonValue(body);
  const list = Array.isArray(value) ? value : (value as { paths?: unknown } | null)?.paths;
  if (!Array.isArray(list) || !list.every((p) => typeof p === 'string')) throw new BadRequest('Expected a JSON list of paths');
  return list;
}

/** One status bucket as Oxen's PaginatedDirEntries of MetadataEntry (filename = the full path). */
function changesByStatus(changes: ClassifiedChange[], status: ClassifiedChange['status'], page: { offset: number; pageSize: number; page: number }) {
  const matching = changes.filter((c) => c.status === status);
  return {
    dir: null,
    entries: matching.slice(page.offset, page.offset + page.pageSize).map((c) => stagedEntryView(c.path, c.hash ?? '', c.size)),
    resource: null,
    metadata: null,
    ...pageView(page.page, page.pageSize, matching.length),
  };
}

/**
 * Oxen's `added_dirs`: directories that do not exist in the base commit and hold staged additions,
 * rolled up under their top-level directory.
 */
function addedDirs(newDirs: Map<string, number>) {
  const paths: Record<string, Array<{ path: string; num_files_staged: number; total_files: number; status: 'Added' }>> = {};
  let staged = 0;
  for (const [dir, count] of [...newDirs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const top = dir.split('/')[0];
    // Oxen's StagedEntryStatus is written by its variant name.
    (paths[top] ??= []).push({ path: dir, num_files_staged: count, total_files: count, status: 'Added' });
    if (top === dir) staged += count;
  }
  return { num_files_staged: staged, total_files: staged, paths };
}

/**
 * Workspaces (Oxen's server-side staging): get-or-create, list, delete; upload, remove, move and
 * unstage files; status; read files as the workspace sees them; check and commit onto a branch.
 */
export function workspaceRoutes(app: FastifyInstance, yoke: Yoke, options: { maxDecompressedBytes?: number } = {}) {
  const tags = ['workspaces'];
  const cap = options.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES;
  const context = async (params: WsParams): Promise<{ repo: RepoRecord; workspace: WorkspaceRecord }> => {
    const repo = await yoke.repos.require(params.namespace, params.repo_name);
    return { repo, workspace: await yoke.workspaces.require(repo, params.workspace_id) };
  };

  const getOrCreate = async (request: FastifyRequest<{ Params: RepoParams }>) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    const body = jsonObject(request.body);
    const { workspace, created } = await yoke.workspaces.getOrCreate(repo, { id: body.workspace_id, branch: body.branch_name, name: body.name });
    return ok(created ? 'resource_created' : 'resource_found', { workspace: workspaceView(workspace, await yoke.workspaces.baseCommit(workspace)) });
  };
  const getOrCreateSchema = { schema: { tags, summary: 'Get or create a workspace: {workspace_id, branch_name, name?}', ...getOrCreateWorkspace } };
  app.put(`${REPO}/workspaces`, getOrCreateSchema, getOrCreate);
  app.post(`${REPO}/workspaces`, getOrCreateSchema, getOrCreate);
  app.put(`${REPO}/workspaces/get_or_create`, getOrCreateSchema, getOrCreate);

  app.get<{ Params: RepoParams; Querystring: { name?: string } }>(
    `${REPO}/workspaces`,
    { schema: { tags, summary: 'List workspaces (?name= filters by name)', ...listWorkspaces } },
    async (request) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const list = await yoke.workspaces.list(repo, request.query.name);
      const views = await Promise.all(list.map(async (w) => workspaceView(w, await yoke.workspaces.baseCommit(w))));
      return ok('resource_found', { workspaces: views });
    },
  );

  app.delete<{ Params: RepoParams }>(`${REPO}/workspaces`, { schema: { tags, summary: 'Delete every workspace of the repository', ...deleteAllWorkspaces } }, async (request) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    return ok('resource_deleted', { deleted: await yoke.workspaces.deleteAll(repo) });
  });

  app.get<{ Params: WsParams }>(WS, { schema: { tags, summary: 'A workspace, by id or name', ...getWorkspace } }, async (request) => {
    const { workspace } = await context(request.params);
    return ok('resource_found', { workspace: workspaceView(workspace, await yoke.workspaces.baseCommit(workspace)) });
  });

  app.post<{ Params: WsParams }>(
    `${WS}/validate`,
    { schema: { tags, summary: 'Check before an upload that the workspace exists and can take {size} more bytes', ...validateUpload } },
    async (request) => {
      const { workspace } = await context(request.params);
      const size = jsonObject(request.body, { optional: true }).size;
      if (size !== undefined && (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)) {
        throw new BadRequest(`Invalid size: ${shown(size)} (expected a byte count)`);
      }
      await yoke.uploads.assertRoomFor(typeof size === 'number' ? size : 0);
      return ok('resource_found', { workspace_id: workspace.id });
    },
  );

  app.delete<{ Params: WsParams }>(WS, { schema: { tags, summary: 'Delete a workspace and everything staged in it', ...deleteWorkspace } }, async (request) => {
    const { workspace } = await context(request.params);
    const base = await yoke.workspaces.baseCommit(workspace);
    await yoke.workspaces.delete(workspace);
    return ok('resource_deleted', { workspace: workspaceView(workspace, base) });
  });

  app.post<{ Params: WsPathParams }>(
    `${WS}/files/*`,
    {
      schema: {
        tags,
        summary: 'Upload and stage files into directory {path} (multipart `file`/`file[]`; filename = destination relative to {path}; gzip parts allowed)',
        ...uploadToWorkspace,
      },
    },
    async (request) => {
      const { workspace } = await context(request.params);
      const dir = normalizeRepoPath(request.params['*'], { allowRoot: true });
      if (!isMultipart(request)) throw new BadRequest('Expected a multipart/form-data body');
      const invalid: Array<{ path: string; error: string }> = [];
      const outcomes = await receiveBlobParts(request, yoke.versions.startWrites(), {
        cap,
        missingFilename: 'Missing file name (the destination path) in multipart part',
        accept: (filename): { expectedHash?: string } | { error: string } => {
          try {
            normalizeRepoPath(filename);
            return {};
          } catch (err) {
            invalid.push({ path: filename, error: (err as Error).message });
            return { error: (err as Error).message };
          }
        },
      });
      // A traversing or malformed destination rejects the whole request: nothing is staged.
      if (invalid.length > 0) {
        throw new BadRequest(`Invalid destination path: ${invalid.map((i) => i.path).join(', ')}`, { paths: invalid });
      }
      const staged = new Map<string, { path: string; hash: string; size: number }>();
      for (const o of outcomes) {
        if (!o.ok) continue;
        const path = joinRepoPath(dir, normalizeRepoPath(o.filename));
        staged.set(path, { path, hash: o.hash, size: o.size });
      }
      const files = [...staged.values()];
      if (files.length > 0) await yoke.workspaces.stageUploads(workspace, files);
      return ok('resource_created', {
        paths: files.map((f) => f.path),
        err_files: outcomes.flatMap((o) => (o.ok ? [] : [{ path: o.filename, hash: null, error: o.error }])),
      });
    },
  );

  app.get<{ Params: WsPathParams }>(`${WS}/files/*`, { schema: { tags, summary: 'Download a file as the workspace sees it (staged, or from its base)', ...downloadFromWorkspace } }, async (request, reply) => {
    const { workspace } = await context(request.params);
    const path = normalizeRepoPath(request.params['*']);
    const entry = await yoke.workspaces.entryAt(workspace, path);
    if (!entry) throw new NotFound(`Could not find path: ${path} in workspace ${workspace.id}`);
    if (entry.kind !== 'file') throw new BadRequest(`Not a file: ${path}`, { type: 'not_a_file' });
    return sendBlob(yoke, request, reply, entry, workspace.id);
  });

  app.delete<{ Params: WsParams }>(`${WS}/files`, { schema: { tags, summary: 'Stage removals: a JSON list of paths (files or directories)', ...stageRemovals } }, async (request, reply) => {
    const { workspace } = await context(request.params);
    const { removed, missing } = await yoke.workspaces.stageRemovals(workspace, pathList(request.body));
    if (missing.length > 0) {
      // Oxen's partial-success answer: 206 naming the paths that were not there.
      return reply.status(206).send({ ...ok('resource_found', { paths: missing, removed }), status_message: 'resource_not_found' });
    }
    return ok('resource_deleted', { paths: removed });
  });

  app.delete<{ Params: WsPathParams }>(`${WS}/files/*`, { schema: { tags, summary: 'Unstage one path (Oxen\'s older form of DELETE …/changes/{path})', ...unstagePath } }, async (request) => {
    const { workspace } = await context(request.params);
    const path = normalizeRepoPath(request.params['*']);
    if ((await yoke.workspaces.unstage(workspace, path)) === 0) throw new NotFound(`Nothing staged at ${path}`);
    return ok('resource_deleted', { path });
  });

  app.patch<{ Params: WsPathParams }>(`${WS}/files/*`, { schema: { tags, summary: 'Stage a move of a file: {new_path}', ...stageMove } }, async (request) => {
    const { workspace } = await context(request.params);
    const from = normalizeRepoPath(request.params['*']);
    const to = await yoke.workspaces.stageMove(workspace, from, jsonObject(request.body).new_path);
    return ok('resource_updated', { path: from, new_path: to });
  });

  const status = async (request: FastifyRequest<{ Params: WsPathParams; Querystring: PageQuery }>) => {
    const { workspace } = await context(request.params);
    const prefix = normalizeRepoPath(request.params['*'] ?? '', { allowRoot: true });
    const page = pageParams(request.query);
    const { changes, newDirs } = await yoke.workspaces.status(workspace, prefix);
    return ok('resource_found', {
      staged: {
        added_dirs: addedDirs(newDirs),
        added_files: changesByStatus(changes, 'added', page),
        modified_files: changesByStatus(changes, 'modified', page),
        removed_files: changesByStatus(changes, 'removed', page),
      },
      // Yoke's flat list of every change, in path order, paginated like the buckets above.
      changes: changes.slice(page.offset, page.offset + page.pageSize).map((c) => ({ path: c.path, status: c.status, hash: c.hash, size: c.size })),
      ...pageView(page.page, page.pageSize, changes.length),
    });
  };
  const statusSummary = { tags, summary: 'Staged changes (added, modified, removed), paginated; optionally under {path}' };
  app.get(`${WS}/changes`, { schema: { ...statusSummary, ...workspaceStatus } }, status);
  app.get(`${WS}/changes/*`, { schema: { ...statusSummary, ...workspaceStatusUnder } }, status);

  const unstageMany = async (request: FastifyRequest<{ Params: WsParams }>) => {
    const { workspace } = await context(request.params);
    let unstaged = 0;
    for (const path of pathList(request.body)) unstaged += await yoke.workspaces.unstage(workspace, normalizeRepoPath(path));
    return ok('resource_deleted', { unstaged });
  };
  app.delete(`${WS}/changes`, { schema: { tags, summary: 'Unstage a JSON list of paths', ...unstagePaths } }, unstageMany);
  app.delete(`${WS}/staged`, { schema: { tags, summary: "Unstage a JSON list of paths (Oxen's older form of DELETE …/changes)", ...unstagePaths } }, unstageMany);

  app.delete<{ Params: WsPathParams }>(`${WS}/changes/*`, { schema: { tags, summary: 'Unstage one path (and everything staged below it)', ...unstageUnder } }, async (request) => {
    const { workspace } = await context(request.params);
    const path = normalizeRepoPath(request.params['*']);
    const unstaged = await yoke.workspaces.unstage(workspace, path);
    if (unstaged === 0) throw new NotFound(`Nothing staged at ${path}`);
    return ok('resource_deleted', { unstaged });
  });

  app.get<{ Params: WsPathParams }>(`${WS}/merge/*`, { schema: { tags, summary: 'Can the workspace be committed onto {branch}, and which paths conflict', ...workspaceMergeability } }, async (request) => {
    const { repo, workspace } = await context(request.params);
    const branch = request.params['*'];
    if (!(await yoke.branches.find(repo, branch))) throw new NotFound(`Branch '${branch}' not found`);
    const result = await yoke.workspaces.mergeability(workspace, branch);
    return ok('resource_found', {
      is_mergeable: result.isMergeable,
      conflicts: result.conflicts.map((path) => ({ path })),
      commits: result.commits.map(commitView),
    });
  });

  const commit = async (request: FastifyRequest<{ Params: WsPathParams }>) => {
    const { repo, workspace } = await context(request.params);
    const created = await yoke.workspaces.commit(repo, workspace, request.params['*'], jsonObject(request.body));
    return ok('resource_created', { commit: commitView(created) });
  };
  const commitSchema = { schema: { tags, summary: 'Commit everything staged onto {branch}: {message, author, email} (409 on conflicting paths, 422 if nothing is staged)', ...commitWorkspace } };
  app.post(`${WS}/merge/*`, commitSchema, commit);
  app.post(`${WS}/commit/*`, commitSchema, commit);
}
