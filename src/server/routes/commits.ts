import type { FastifyInstance, FastifyRequest } from 'fastify';
import { NotFound } from '../../core/errors.js';
import type { Yoke } from '../../services/yoke.js';
import { ok } from '../envelope.js';
import { allCommits, completeCommit, getCommit, history, rootCommit } from '../schemas/commits.js';
import { commitView, pageParams, pageView, type PageQuery } from '../views.js';
import { REPO, type RepoParams, type RepoWildcardParams } from './params.js';

/** Oxen's pagination fields plus `has_more`, which its client (≥ 0.65) reads for a path's history. */
function historyPage(page: number, pageSize: number, offset: number, total: number) {
  return { ...pageView(page, pageSize, total), has_more: offset + pageSize < total };
}

type Req = FastifyRequest<{ Params: RepoWildcardParams; Querystring: PageQuery }>;

export function commitRoutes(app: FastifyInstance, yoke: Yoke) {
  const tags = ['commits'];

  app.get(
    `${REPO}/commits/history/*`,
    { schema: { tags, summary: 'History of a revision, of one path ({revision}/{path}), or what {head} adds to {base} ({base}..{head}); paginated, newest first', ...history } },
    async (request: Req) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const { page, pageSize, offset } = pageParams(request.query);
      const { commits, total } = await yoke.commitLog.history(repo, request.params['*'], offset, pageSize);
      return ok('resource_found', { commits: commits.map(commitView), ...historyPage(page, pageSize, offset, total) });
    },
  );

  app.get<{ Params: RepoParams; Querystring: PageQuery }>(
    `${REPO}/commits/all`,
    { schema: { tags, summary: 'Every commit in the repository (paginated, newest first)', ...allCommits } },
    async (request) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const { page, pageSize, offset } = pageParams(request.query);
      const { commits, total } = await yoke.commitLog.all(repo, offset, pageSize);
      return ok('resource_found', { commits: commits.map(commitView), ...pageView(page, pageSize, total) });
    },
  );

  app.get<{ Params: RepoParams }>(`${REPO}/commits/root`, { schema: { tags, summary: 'The root (first) commit', ...rootCommit } }, async (request) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    const root = await yoke.commitLog.root(repo);
    return ok('resource_found', { commit: root ? commitView(root) : null });
  });

  // Oxen's clients call this after a workspace commit or a push; the commit must exist, nothing else happens.
  app.post<{ Params: RepoParams & { commit_id: string } }>(
    `${REPO}/commits/:commit_id/complete`,
    { schema: { tags, summary: 'Acknowledge that a commit is complete (Oxen clients send it after committing)', ...completeCommit } },
    async (request) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const commit = await yoke.commitLog.find(repo, request.params.commit_id);
      if (!commit) throw new NotFound(`Commit '${request.params.commit_id}' not found`);
      return ok('resource_created', { commit: commitView(commit) });
    },
  );

  app.get(
    `${REPO}/commits/*`,
    { schema: { tags, summary: 'One commit by id: {commit_id}; or the ancestors of a revision: {revision}/parents', ...getCommit } },
    async (request: Req) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const rest = request.params['*'];
      if (rest.endsWith('/parents')) {
        // Oxen answers the whole ancestry under `commits`; `parents` holds the direct parents.
        const { ancestors, parents } = await yoke.commitLog.ancestry(repo, rest.slice(0, -'/parents'.length));
        return ok('resource_found', { commits: ancestors.map(commitView), parents: parents.map(commitView) });
      }
      const commit = await yoke.commitLog.find(repo, rest);
      if (!commit) throw new NotFound(`Revision not found: ${rest}`);
      return ok('resource_found', { commit: commitView(commit) });
    },
  );
}
