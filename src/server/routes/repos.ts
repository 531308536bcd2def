import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequest, NotFound } from '../../core/errors.js';
import { normalizeRepoPath } from '../../core/paths.js';
import type { RepoRecord } from '../../services/records.js';
import type { CreateRepoInput, InitialFiles } from '../../services/repositories.js';
import type { Yoke } from '../../services/yoke.js';
import { ok } from '../envelope.js';
import { assertJsonDepth, jsonObject } from '../json-body.js';
import { isMultipart, readUploadForm } from '../multipart.js';
import { createRepo, deleteRepo, getRepo, listRepos, repoAction, transferRepo } from '../schemas/repos.js';
import { repoView } from '../views.js';
import { REPO, type RepoParams } from './params.js';

export function repoRoutes(app: FastifyInstance, yoke: Yoke) {
  const tags = ['repositories'];

  app.post('/api/repos', { schema: { tags, summary: 'Create a repository (JSON or multipart with initial files)', ...createRepo } }, async (request) => {
    let input: CreateRepoInput;
    let initial: InitialFiles | null = null;
    if (isMultipart(request)) {
      const form = await readUploadForm(request, yoke.versions.startWrites(), new Set(['file', 'file[]']));
      const raw = form.fields.get('new_repo');
      if (raw === undefined) throw new BadRequest('Missing new_repo field');
      input = jsonObject(parseJson(raw, 'new_repo')) as unknown as CreateRepoInput;
      if (form.files.length > 0) {
        const files = form.files.map((file) => {
          if (!file.filename) throw new BadRequest('Every file part needs a filename');
          return { path: normalizeRepoPath(file.filename), hash: file.hash, size: file.size };
        });
        initial = { files, author: requireAuthor(form.fields.get('name'), form.fields.get('email')) };
      }
    } else {
      const body = jsonObject(request.body);
      input = body as unknown as CreateRepoInput;
      initial = jsonInitialFiles(body as { files?: unknown; user?: { name?: unknown; email?: unknown } });
    }
    const repo = await yoke.repos.create(input, initial);
    const view = await describe(yoke, repo);
    return ok('resource_created', {
      repository: view,
      namespace: repo.namespace,
      name: repo.name,
      description: repo.description,
      created_at: repo.createdAt,
    });
  });

  app.get<{ Params: { namespace: string } }>(
    '/api/repos/:namespace',
    { schema: { tags, summary: 'List repositories in a namespace', ...listRepos } },
    async (request) => {
      const repos = await yoke.repos.list(request.params.namespace);
      return ok('resource_found', { repositories: await Promise.all(repos.map((r) => describe(yoke, r))) });
    },
  );

  app.get<{ Params: RepoParams }>(REPO, { schema: { tags, summary: 'Repository details', ...getRepo } }, async (request) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    return ok('resource_found', { repository: await describe(yoke, repo) });
  });

  app.patch<{ Params: RepoParams }>(`${REPO}/transfer`, { schema: { tags, summary: 'Move the repository to another namespace: {namespace}', ...transferRepo } }, async (request) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    const moved = await yoke.repos.transfer(repo, jsonObject(request.body).namespace);
    return ok('resource_updated', { repository: await describe(yoke, moved) });
  });

  // Oxen's clients announce the start and end of a push, clone or download here; nothing is kept.
  const action = async (request: FastifyRequest<{ Params: RepoParams & { state: string; action: string } }>) => {
    await yoke.repos.require(request.params.namespace, request.params.repo_name);
    if (request.params.state !== 'started' && request.params.state !== 'completed') throw new NotFound(`Unknown action state '${request.params.state}' (started or completed)`);
    return ok('resource_found', { action: request.params.action, state: request.params.state });
  };
  const actionSchema = { schema: { tags, summary: "A client's push/clone/download started or completed (acknowledged, not stored)", ...repoAction } };
  app.get(`${REPO}/action/:state/:action`, actionSchema, action);
  app.post(`${REPO}/action/:state/:action`, actionSchema, action);

  app.delete<{ Params: RepoParams }>(REPO, { schema: { tags, summary: 'Delete a repository', ...deleteRepo } }, async (request) => {
    const repo = await yoke.repos.delete(request.params.namespace, request.params.repo_name);
    return ok('resource_deleted', { repository: { namespace: repo.namespace, name: repo.name } });
  });
}

async function describe(yoke: Yoke, repo: RepoRecord) {
  return repoView(repo, await yoke.repos.summary(repo));
}

function parseJson(raw: string, field: string): unknown {
  assertJsonDepth(raw);
  try {
    return JSON.parse(raw);
  } catch {
    throw new BadRequest(`Field ${field} is not valid JSON`);
  }
}

export function requireAuthor(name: unknown, email: unknown): { name: string; email: string } {
  if (typeof name !== 'string' || name.trim() === '') throw new BadRequest('Name is required');
  if (typeof email !== 'string' || email.trim() === '') throw new BadRequest('Email is required');
  return { name, email };
}

/** Oxen's JSON variant may seed text files: `files: [{path, contents, user:{name,email}}]`. */
function jsonInitialFiles(body: { files?: unknown; user?: { name?: unknown; email?: unknown } }): InitialFiles | null {
  if (body.files === undefined || body.files === null) return null;
  if (!Array.isArray(body.files)) throw new BadRequest('files must be an array');
  if (body.files.length === 0) return null;
  const specs = body.files.map((f: { path?: unknown; contents?: unknown; user?: { name?: unknown; email?: unknown } }) => {
    if (typeof f?.path !== 'string' || typeof f.contents !== 'string') throw new BadRequest('Each file needs a string path and contents');
    return { path: normalizeRepoPath(f.path), contents: f.contents, user: f.user };
  });
  const first = specs[0].user ?? body.user;
  const author = requireAuthor(first?.name, first?.email);
  return { files: specs.map((spec) => ({ path: spec.path, text: spec.contents })), author };
}
