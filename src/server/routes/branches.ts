import type { FastifyInstance } from 'fastify';
import { BadRequest, Conflict, NotFound } from '../../core/errors.js';
import { normalizeHash } from '../../core/hash.js';
import { assertBranchName } from '../../core/names.js';
import { normalizeRepoPath } from '../../core/paths.js';
import type { BranchRecord, RepoRecord } from '../../storage/meta-store.js';
import { defaultBranchOf } from '../../services/repositories.js';
import type { Yoke } from '../../services/yoke.js';
import { ok } from '../envelope.js';
import { jsonObject } from '../json-body.js';
import { branchView, commitView, pageParams, pageView, type PageQuery } from '../views.js';
import { REPO, type RepoParams, type RepoWildcardParams } from './params.js';

export function branchRoutes(app: FastifyInstance, yoke: Yoke) {
  const tags = ['branches'];

  const withCommit = async (repo: RepoRecord, branch: BranchRecord) => {
    const commit = await yoke.meta.getCommit(repo.id, branch.commitId);
    return { ...branchView(branch), commit: commit ? commitView(commit) : null };
  };
  const requireBranch = async (repo: RepoRecord, name: string) => {
    const [branch] = await yoke.meta.findBranches(repo.id, [name]);
    if (!branch) throw new NotFound(`Branch '${name}' does not exist`);
    return branch;
  };

  app.get<{ Params: RepoParams }>(`${REPO}/branches`, { schema: { tags, summary: 'List branches' } }, async (request) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    const branches = await yoke.meta.listBranches(repo.id);
    return ok('resource_found', { branches: await Promise.all(branches.map((b) => withCommit(repo, b))) });
  });

  app.post<{ Params: RepoParams }>(
    `${REPO}/branches`,
    { schema: { tags, summary: 'Create a branch from a branch ({new_name, from_name}) or a commit ({new_name, commit_id})' } },
    async (request) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const body = jsonObject(request.body);
      if (body.new_name === undefined || body.new_name === null || body.new_name === '') throw new BadRequest('new_name is required: {new_name, from_name} or {new_name, commit_id}');
      const name = assertBranchName(body.new_name);
      let commitId: string;
      if (typeof body.from_name === 'string') {
        commitId = (await requireBranch(repo, body.from_name)).commitId;
      } else if (typeof body.commit_id === 'string') {
        const id = normalizeHash(body.commit_id);
        if (id === null) throw new NotFound(`Commit '${body.commit_id}' not found`);
        // A commit a client pushed joins the history here, once its tree checks out.
        commitId = (await yoke.sync.adoptCommit(repo, id)).id;
      } else {
        throw new BadRequest('Invalid request body: expected {new_name, from_name} or {new_name, commit_id}');
      }
      if (!(await yoke.meta.createBranch(repo.id, name, commitId))) throw new Conflict(`Branch '${name}' already exists`);
      const branch = await requireBranch(repo, name);
      return ok('resource_created', { branch: await withCommit(repo, branch), name, commit_id: commitId, created_at: branch.createdAt });
    },
  );

  app.get<{ Params: RepoWildcardParams; Querystring: PageQuery }>(
    `${REPO}/branches/*`,
    { schema: { tags, summary: 'Get a branch; or the history of one file on it: {branch}/versions/{path} (paginated)' } },
    async (request) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const rest = request.params['*'];
      const [exact] = await yoke.meta.findBranches(repo.id, [rest]);
      const marker = rest.indexOf('/versions/');
      if (exact || marker < 0) return ok('resource_found', { branch: await withCommit(repo, exact ?? (await requireBranch(repo, rest))) });
      const branch = await requireBranch(repo, rest.slice(0, marker));
      const path = normalizeRepoPath(rest.slice(marker + '/versions/'.length));
      const head = (await yoke.meta.getCommit(repo.id, branch.commitId))!;
      const { page, pageSize, offset } = pageParams(request.query);
      const { commits, total } = await yoke.history.pathPage(repo, head, path, offset, pageSize);
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
      },
    },
    async (request) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const body = jsonObject(request.body);
      const rest = request.params['*'];
      if (rest.endsWith('/merge') && body.client_commit_id !== undefined) return mergePushed(repo, rest.slice(0, -'/merge'.length), body);
      const name = assertBranchName(rest);
      const id = typeof body.commit_id === 'string' ? normalizeHash(body.commit_id) : null;
      if (id === null) throw new BadRequest('Invalid request body: expected {commit_id}');
      const target = await yoke.sync.adoptCommit(repo, id);
      const force = body.force === true || body.force === 'true';
      const [current] = await yoke.meta.findBranches(repo.id, [name]);
      if (current && current.commitId !== target.id && !force && !(await yoke.meta.isAncestor(repo.id, current.commitId, target.id))) {
        throw new Conflict(`Commit ${target.id} does not descend from the head of '${name}' (${current.commitId}); pass force to move it anyway`);
      }
      const moved = await yoke.meta.compareAndSwapBranch(repo.id, name, current?.commitId ?? null, target.id);
      if (!moved) throw new Conflict(`Branch '${name}' moved while updating it; retry`);
      return ok('resource_updated', { branch: await withCommit(repo, await requireBranch(repo, name)) });
    },
  );

  /** Oxen's `PUT branches/{name}/merge`: the client's commit merged into the branch on the server. */
  const mergePushed = async (repo: RepoRecord, branchName: string, body: Record<string, unknown>) => {
    const ids = [body.client_commit_id, body.server_commit_id].map((v) => (typeof v === 'string' ? normalizeHash(v) : null));
    if (ids.some((id) => id === null)) throw new BadRequest('Invalid request body: expected {client_commit_id, server_commit_id}');
    const branch = await requireBranch(repo, assertBranchName(branchName));
    const incoming = await yoke.sync.adoptCommit(repo, ids[0]!);
    const current = await yoke.meta.getCommit(repo.id, ids[1]!);
    if (!current) throw new NotFound(`Commit '${String(body.server_commit_id)}' not found`);
    try {
      const outcome = await yoke.merges.merge(repo, { base: branch.name, head: incoming.id, threeDot: false }, { name: incoming.author, email: incoming.email });
      const commit = outcome.kind === 'merge_commit' ? outcome.merge : outcome.kind === 'fast_forward' ? outcome.head : outcome.base;
      return ok(outcome.kind === 'up_to_date' ? 'resource_found' : 'resource_created', { commit: commitView(commit) });
    } catch (err) {
      // As oxen-server: on a conflict the branch stays where it was and the answer is its head.
      if (err instanceof Conflict && err.extra.type === 'merge_conflict') {
        const now = await requireBranch(repo, branch.name);
        return ok('resource_found', { commit: commitView((await yoke.meta.getCommit(repo.id, now.commitId)) ?? current) });
      }
      throw err;
    }
  };

  app.delete<{ Params: RepoWildcardParams }>(`${REPO}/branches/*`, { schema: { tags, summary: 'Delete a branch' } }, async (request) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    const branch = await requireBranch(repo, request.params['*']);
    // As oxen-server refuses to delete its checked-out branch: without it the repository would look empty.
    if (defaultBranchOf(await yoke.meta.listBranches(repo.id))?.name === branch.name) {
      throw new BadRequest(`Cannot delete '${branch.name}': it is the repository's default branch`, { type: 'default_branch' });
    }
    if (!(await yoke.meta.deleteBranch(repo.id, branch.name))) throw new NotFound(`Branch '${branch.name}' does not exist`);
    return ok('resource_deleted', { branch: branchView(branch) });
  });
}
