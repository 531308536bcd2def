import type { FastifyInstance, FastifyRequest } from 'fastify';
import { NotFound } from '../../core/errors.js';
import { basename, normalizeRepoPath } from '../../core/paths.js';
import { listDir, lookup } from '../../core/tree.js';
import type { Yoke } from '../../services/yoke.js';
import type { ResolvedRevision } from '../../services/revisions.js';
import type { RepoRecord } from '../../storage/meta-store.js';
import { ok } from '../envelope.js';
import { branchView, commitView, entryView, pageParams, pageView, type PageQuery } from '../views.js';
import { REPO, type RepoWildcardParams } from './params.js';

type Req = FastifyRequest<{ Params: RepoWildcardParams; Querystring: PageQuery }>;

export function resourceView(resolved: ResolvedRevision) {
  return {
    workspace: null,
    commit: commitView(resolved.commit),
    branch: resolved.branch ? branchView(resolved.branch) : null,
    path: resolved.path,
    version: resolved.version,
    resource: resolved.resource,
  };
}

/**
 * `{rev}/{path}` as a tree to read: a commit or branch (see RevisionResolver), or else — as Oxen
 * resolves last — a workspace by id or name, seen with its staged changes applied.
 */
async function resolveTree(yoke: Yoke, repo: RepoRecord, resource: string) {
  try {
    const resolved = await yoke.revisions.resolve(repo, resource);
    return { source: yoke.nodes.forRepo(repo.id), rootId: resolved.commit.rootId, path: resolved.path, version: resolved.version };
  } catch (err) {
    if (!(err instanceof NotFound)) throw err;
    const [first, ...rest] = resource.split('/');
    const workspace = await yoke.meta.getWorkspace(repo.id, first);
    if (!workspace) throw err;
    const view = await yoke.workspaces.view(workspace);
    return { source: view.source, rootId: view.rootId, path: normalizeRepoPath(rest.join('/'), { allowRoot: true }), version: workspace.id };
  }
}

export function dirRoutes(app: FastifyInstance, yoke: Yoke) {
  const tags = ['files'];

  app.get(`${REPO}/dir/*`, { schema: { tags, summary: 'List a directory at {revision}/{path} (paginated; directories first, then by name)' } }, async (request: Req) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    const resolved = await resolveTree(yoke, repo, request.params['*']);
    const { source } = resolved;
    const dir = await lookup(source, resolved.rootId, resolved.path);
    if (!dir || dir.kind !== 'dir') throw new NotFound(`Directory not found: ${resolved.path || '/'} at ${resolved.version}`);
    const entries = await listDir(source, dir.id);
    const ordered = [...entries.filter((e) => e.kind === 'dir'), ...entries.filter((e) => e.kind === 'file')];
    const { page, pageSize, offset } = pageParams(request.query);
    return ok('resource_found', {
      dir: entryView({ ...dir, name: basename(resolved.path) }),
      entries: ordered.slice(offset, offset + pageSize).map((e) => entryView(e)),
      resource: { path: resolved.path, version: resolved.version },
      metadata: null,
      ...pageView(page, pageSize, ordered.length),
    });
  });

  app.get(`${REPO}/meta/*`, { schema: { tags, summary: 'Metadata of one file or directory at {revision}/{path}' } }, async (request: Req) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    const resolved = await yoke.revisions.resolve(repo, request.params['*']);
    const entry = await lookup(yoke.nodes.forRepo(repo.id), resolved.commit.rootId, resolved.path);
    if (!entry) throw new NotFound(`Could not find path: ${resolved.path} at ${resolved.version}`);
    const latest = await yoke.history.lastChange(repo, resolved.commit, resolved.path);
    return ok('resource_found', { entry: { ...entryView({ ...entry, name: basename(resolved.path) }, latest), resource: resourceView(resolved) } });
  });

  app.get(`${REPO}/revisions/*`, { schema: { tags, summary: 'Resolve {revision}/{path} to a commit, branch and path' } }, async (request: Req) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    return ok('resource_found', { resource: resourceView(await yoke.revisions.resolve(repo, request.params['*'])) });
  });
}
