import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BadRequest, NotFound } from '../../core/errors.js';
import { describeFile } from '../../core/mime.js';
import { basename, joinRepoPath, normalizeRepoPath } from '../../core/paths.js';
import { lookup, type ChangeSet, type Entry } from '../../core/tree.js';
import type { Author } from '../../services/commits.js';
import type { Yoke } from '../../services/yoke.js';
import type { RepoRecord } from '../../storage/meta-store.js';
import { errorBody, ok } from '../envelope.js';
import { jsonObject } from '../json-body.js';
import { readFormFields, readUploadForm, type UploadedPart } from '../multipart.js';
import { parseRange } from '../range.js';
import { commitView } from '../views.js';
import { requireAuthor } from './repos.js';
import { REPO, type RepoWildcardParams } from './params.js';

const FILE_FIELDS = new Set(['file', 'files[]', 'file[]']);
const DEFAULT_AUTHOR: Author = { name: 'Yoke', email: 'yoke@localhost' };

type Req = FastifyRequest<{ Params: RepoWildcardParams }>;

/**
 * Where each uploaded part lands (COMPAT: `PUT …/file`). One `file` part goes to exactly `{path}`
 * unless `{path}` is the root or an existing directory; several parts, or any `files[]` part, make
 * `{path}` a directory and each part keeps its (normalised) filename.
 */
function placeParts(parts: UploadedPart[], target: string, targetEntry: Entry | null): Map<string, UploadedPart> {
  if (parts.length === 0) throw new BadRequest('Missing file data: expected a `file` or `files[]` part');
  const single = parts.length === 1 && parts[0].field === 'file';
  const intoDirectory = !single || target === '' || targetEntry?.kind === 'dir';
  if (!intoDirectory) return new Map([[target, parts[0]]]);
  if (targetEntry?.kind === 'file') throw new BadRequest(`Target path must be a directory: ${target}`);
  const placed = new Map<string, UploadedPart>();
  for (const part of parts) {
    if (!part.filename) throw new BadRequest('Every file part needs a filename when uploading into a directory');
    const path = joinRepoPath(target, normalizeRepoPath(part.filename));
    if (placed.has(path)) throw new BadRequest(`Two parts target the same path: ${path}`);
    placed.set(path, part);
  }
  return placed;
}

function optionalAuthor(fields: { name?: unknown; email?: unknown }): Author {
  const name = typeof fields.name === 'string' && fields.name.trim() !== '' ? fields.name : DEFAULT_AUTHOR.name;
  const email = typeof fields.email === 'string' && fields.email.trim() !== '' ? fields.email : DEFAULT_AUTHOR.email;
  return { name, email };
}

export function fileRoutes(app: FastifyInstance, yoke: Yoke) {
  const tags = ['files'];
  const url = `${REPO}/file/*`;

  app.put(url, { schema: { tags, summary: 'Upload one or more files (multipart) to {branch}/{path} as one commit' } }, async (request: Req) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    const target = await yoke.revisions.resolveWrite(repo, request.params['*']);
    const form = await readUploadForm(request, yoke.versions.startWrites(), FILE_FIELDS);
    const author = requireAuthor(form.fields.get('name'), form.fields.get('email'));
    const targetEntry = target.head ? await lookup(yoke.nodes.forRepo(repo.id), target.head.rootId, target.path) : null;
    const placed = placeParts(form.files, target.path, targetEntry);
    const changes: ChangeSet = new Map([...placed].map(([path, part]) => [path, { hash: part.hash, size: part.size }]));
    const message = form.fields.get('message') || (target.head ? `Auto-commit files to ${target.path || '/'}` : 'Initial commit');
    const { commit, created } = await yoke.commits.commit({
      repo, branch: target.branch, base: target.head, changes, blobs: form.files, author, message, allowNoChanges: true,
    });
    const files = [...placed].map(([path, part]) => ({ path, size: part.size, hash: part.hash }));
    return ok(created ? 'resource_created' : 'resource_found', {
      commit: commitView(commit),
      files,
      ...(files.length === 1 ? { file: files[0] } : {}),
      ...(created ? {} : { no_changes: true }),
    });
  });

  // GET and HEAD share one handler; HEAD answers the real Content-Length without reading the blob.
  app.route({
    method: ['GET', 'HEAD'],
    url,
    exposeHeadRoute: false,
    schema: { tags, summary: 'Download a file at {revision}/{path} (supports Range; HEAD for headers only)' },
    handler: committedFileHandler(yoke),
  });

  app.delete(url, { schema: { tags, summary: 'Delete a file or directory at {branch}/{path} as one commit' } }, async (request: Req) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    const target = await yoke.revisions.resolveWrite(repo, request.params['*']);
    const fields = request.isMultipart() ? Object.fromEntries(await readFormFields(request)) : jsonObject(request.body, { optional: true });
    if (!target.head) throw new NotFound(`Branch '${target.branch}' does not exist`);
    if (target.path === '') throw new BadRequest('Refusing to delete the repository root');
    const entry = await lookup(yoke.nodes.forRepo(repo.id), target.head.rootId, target.path);
    if (!entry) throw new NotFound(`Could not find path: ${target.path} on ${target.branch}`);
    const message = typeof fields.message === 'string' && fields.message !== '' ? fields.message : `Delete ${target.path}`;
    const { commit } = await yoke.commits.commit({
      repo, branch: target.branch, base: target.head, changes: new Map([[target.path, null]]), blobs: [], author: optionalAuthor(fields), message,
    });
    return ok('resource_deleted', { commit: commitView(commit) });
  });

  app.patch(url, { schema: { tags, summary: 'Move or rename a file ({new_path}) as one commit' } }, async (request: Req) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    const target = await yoke.revisions.resolveWrite(repo, request.params['*']);
    const body = jsonObject(request.body, { optional: true });
    if (typeof body.new_path !== 'string' || body.new_path.trim() === '') throw new BadRequest('new_path is required');
    const newPath = normalizeRepoPath(body.new_path);
    if (!target.head) throw new NotFound(`Branch '${target.branch}' does not exist`);
    const source = yoke.nodes.forRepo(repo.id);
    const entry = await lookup(source, target.head.rootId, target.path);
    if (!entry) throw new NotFound(`Could not find path: ${target.path} on ${target.branch}`);
    if (entry.kind !== 'file') throw new BadRequest(`Only files can be moved: ${target.path} is a directory`);
    if (await lookup(source, target.head.rootId, newPath)) throw new BadRequest(`new_path already exists: ${newPath}`);
    const changes: ChangeSet = new Map([[target.path, null], [newPath, { hash: entry.hash, size: entry.size }]]);
    const message = typeof body.message === 'string' && body.message !== '' ? body.message : `Move ${target.path} to ${newPath}`;
    const { commit } = await yoke.commits.commit({ repo, branch: target.branch, base: target.head, changes, blobs: [], author: optionalAuthor(body), message });
    return ok('resource_updated', { commit: commitView(commit), file: { path: newPath, size: entry.size, hash: entry.hash } });
  });
}

/** GET/HEAD of a committed file at `{rev}/{path}` (the wildcard), shared by `file/…` and `versions/…`. */
export function committedFileHandler(yoke: Yoke) {
  return async (request: FastifyRequest<{ Params: RepoWildcardParams }>, reply: FastifyReply) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    const { resolved, entry } = await findCommittedFile(yoke, repo, request.params['*']);
    return sendBlob(yoke, request, reply, entry, resolved.commit.id);
  };
}

/**
 * Resolves `{rev}/{path}` (or, as Oxen does, `{workspace}/{path}`) to a file: 404 if nothing is
 * there, 400 `not_a_file` for a directory.
 */
export async function findCommittedFile(yoke: Yoke, repo: RepoRecord, resource: string) {
  const tree = await yoke.trees.resolve(repo, resource);
  const entry = await lookup(tree.source, tree.rootId, tree.path);
  if (!entry) throw new NotFound(`Could not find path: ${tree.path} at ${tree.version}`);
  if (entry.kind !== 'file') throw new BadRequest(`Not a file: ${tree.path}`, { type: 'not_a_file' });
  return { resolved: { commit: tree.commit, path: tree.path, version: tree.version }, entry };
}

/** Streams a committed file with its type, length, validators and byte-range support. */
export async function sendBlob(yoke: Yoke, request: FastifyRequest, reply: FastifyReply, entry: Entry & { kind: 'file' }, revisionId: string) {
  const range = parseRange(request.headers.range, entry.size);
  reply
    .header('content-type', describeFile(basename(entry.name)).mimeType)
    .header('accept-ranges', 'bytes')
    .header('etag', `"${entry.hash}"`)
    .header('oxen-revision-id', revisionId)
    .header('access-control-expose-headers', 'content-length, content-range, oxen-revision-id');
  if (range.kind === 'unsatisfiable') {
    reply.header('content-range', `bytes */${entry.size}`).header('content-type', 'application/json; charset=utf-8');
    return reply.status(416).send(errorBody(416, 'range_not_satisfiable', 'Range Not Satisfiable', `File has ${entry.size} bytes`));
  }
  if (range.kind === 'partial') {
    const { start, end } = range.range;
    reply.status(206).header('content-range', `bytes ${start}-${end}/${entry.size}`).header('content-length', end - start + 1);
    if (request.method === 'HEAD') return reply.send();
    return reply.send(await yoke.versions.readCommitted(entry.hash, range.range));
  }
  reply.header('content-length', entry.size);
  if (request.method === 'HEAD') return reply.send();
  // The end bounds the read: without it every download read into a fresh 1 MiB buffer, twice
  // (the bytes, then end of file), however small the file.
  return reply.send(entry.size === 0 ? '' : await yoke.versions.readCommitted(entry.hash, { start: 0, end: entry.size - 1 }));
}
