import type { FastifyInstance } from 'fastify';
import { BadRequest } from '../../core/errors.js';
import { normalizeHash } from '../../core/hash.js';
import { assertBranchName } from '../../core/names.js';
import { normalizeRepoPath } from '../../core/paths.js';
import type { BranchWithHead } from '../../services/branches.js';
import type { Yoke } from '../../services/yoke.js';
import { ok } from '../envelope.js';
import { jsonObject } from '../json-body.js';
import { createBranch, deleteBranch, getBranch, listBranches, updateBranch } from '../schemas/branches.js';
import { branchView, commitView, pageParams, pageView, type PageQuery } from '../views.js';
import { REPO, type RepoParams, type RepoWildcardParams } from './params.js';

export function branchRoutes(app: FastifyInstance, yoke: Yoke) {
  const tags = ['branches'];

  const withCommit = ({ branch, head }: BranchWithHead) => ({ ...branchView(branch), commit: head ? commitView(head) : null });

  app.get<{ Params: RepoParams }>(`${REPO}/branches`, { schema: { tags, summary: 'List branches', ...listBranches } }, async (request) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    return ok('resource_found', { branches: (await yoke.branches.list(repo)).map(withCommit) });
  });

  app.post<{ Params: RepoParams }>(
    `${REPO}/branches`,
    { schema: { tags, summary: 'Create a branch from a branch ({new_name, from_name}) or a commit ({new_name, commit_id})', ...createBranch } },
    async (request) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const body = jsonObject(request.body);
      if (body.new_name === undefined || body.new_name === null || body.new_name === '') throw new BadRequest('new_name is required: {new_name, from_name} or {new_name, commit_id}');
      const name = assertBranchName(body.new_name);
      let from: { branch: string } | { commitId: string };
      if (typeof body.from_name === 'string') from = { branch: body.from_name };
      else if (typeof body.commit_id === 'string') from = { commitId: body.commit_id };
      else throw new BadRequest('Invalid request body: expected {new_name, from_name} or {new_name, commit_id}');
      const created = await yoke.branches.create(repo, name, from);
      return ok('resource_created', { branch: withCommit(created), name, commit_id: created.commitId, created_at: created.branch.createdAt });
    },
  );

  app.get<{ Params: RepoWildcardParams; Querystring: PageQuery }>(
    `${REPO}/branches/*`,
    { schema: { tags, summary: 'Get a branch; or the history of one file on it: {branch}/versions/{path} (paginated)', ...getBranch } },
    async (request) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const rest = request.params['*'];
      const exact = await yoke.branches.find(repo, rest);
      const marker = rest.indexOf('/versions/');
      if (exact || marker < 0) return ok('resource_found', { branch: withCommit(await yoke.branches.withHead(repo, exact ?? (await yoke.branches.require(repo, rest)))) });
      const branch = await yoke.branches.require(repo, rest.slice(0, marker));
      const path = normalizeRepoPath(rest.slice(marker + '/versions/'.length));
      const { page, pageSize, offset } = pageParams(request.query);
      const { commits, total } = await yoke.branches.pathHistory(repo, branch, path, offset, pageSize);
      return ok('resource_found', {
        branch: branchView(branch),
        path,
        versions: commits.map((c) => ({ commit: commitView(c), resource: { path, version: c.id } })),
        ...pageView(page, pageSize, total),
      });
    },
  );

  app.put<{ Params: RepoWildcardParams }>(
    `${REPO}/branches/*`,
    {
      schema: {
        tags,
        summary:
          'Move (or create) a branch to {commit_id}; only fast-forward unless {force: true}. ' +
          '{branch}/merge with {client_commit_id, server_commit_id}: merge a pushed commit into the branch (answers the branch head unchanged on a conflict, as oxen-server)',
        ...updateBranch,
      },
    },
    async (request) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const body = jsonObject(request.body);
      const rest = request.params['*'];
      if (rest.endsWith('/merge') && body.client_commit_id !== undefined) {
        const { commit, created } = await yoke.branches.mergePushed(repo, rest.slice(0, -'/merge'.length), body.client_commit_id, body.server_commit_id);
        return ok(created ? 'resource_created' : 'resource_found', { commit: commitView(commit) });
      }
      const name = assertBranchName(rest);
      const id = typeof body.commit_id === 'string' ? normalizeHash(body.commit_id) : null;
      if (id === null) throw new BadRequest('Invalid request body: expected {commit_id}');
      const force = body.force === true || body.force === 'true';
      return ok('resource_updated', { branch: withCommit(await yoke.branches.move(repo, name, id, force)) });
    },
  );

  app.delete<{ Params: RepoWildcardParams }>(`${REPO}/branches/*`, { schema: { tags, summary: 'Delete a branch', ...deleteBranch } }, async (request) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    const branch = await yoke.branches.delete(repo, request.params['*']);
    return ok('resource_deleted', { branch: branchView(branch) });
  });
}
