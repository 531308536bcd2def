import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BadRequest } from '../../core/errors.js';
import { describeFile } from '../../core/mime.js';
import { basename, normalizeRepoPath } from '../../core/paths.js';
import type { FileEntry } from '../../core/tree.js';
import type { Author } from '../../services/commits.js';
import type { Yoke } from '../../services/yoke.js';
import { errorBody, ok } from '../envelope.js';
import { jsonObject } from '../json-body.js';
import { isMultipart, readFormFields, readUploadForm } from '../multipart.js';
import { parseRange } from '../range.js';
import { deleteFile, downloadFile, fileLink, moveFile, uploadFiles } from '../schemas/files.js';
import { commitView } from '../views.js';
import { requireAuthor } from './repos.js';
import { REPO, type RepoWildcardParams } from './params.js';

const FILE_FIELDS = new Set(['file', 'files[]', 'file[]']);
const DEFAULT_AUTHOR: Author = { name: 'Yoke', email: 'yoke@localhost' };

type Req = FastifyRequest<{ Params: RepoWildcardParams }>;

function optionalAuthor(fields: { name?: unknown; email?: unknown }): Author {
  const name = typeof fields.name === 'string' && fields.name.trim() !== '' ? fields.name : DEFAULT_AUTHOR.name;
  const email = typeof fields.email === 'string' && fields.email.trim() !== '' ? fields.email : DEFAULT_AUTHOR.email;
  return { name, email };
}

/** A text field that counts only when non-empty. */
const optionalText = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

export function fileRoutes(app: FastifyInstance, yoke: Yoke, options: { auth?: boolean } = {}) {
  const tags = ['files'];
  const url = `${REPO}/file/*`;

  app.put(url, { schema: { tags, summary: 'Upload one or more files (multipart) to {branch}/{path} as one commit', ...uploadFiles } }, async (request: Req) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    const target = await yoke.revisions.resolveWrite(repo, request.params['*']);
    const form = await readUploadForm(request, yoke.versions.startWrites(), FILE_FIELDS);
    const author = requireAuthor(form.fields.get('name'), form.fields.get('email'));
    const { commit, created, files } = await yoke.files.upload(repo, target, form.files, author, form.fields.get('message'));
    return ok(created ? 'resource_created' : 'resource_found', {
      commit: commitView(commit),
      files,
      ...(files.length === 1 ? { file: files[0] } : {}),
      // Oxen's clients read status and commit only; a person reading the reply learns the message went unused.
      ...(created ? {} : { no_changes: true, status_description: `Nothing was committed: ${request.params['*']} already holds these bytes, so commit ${commit.id} stays the latest and the message was not used` }),
    });
  });

  // GET and HEAD share one handler; HEAD answers the real Content-Length without reading the blob.
  app.route({
    method: ['GET', 'HEAD'],
    url,
    exposeHeadRoute: false,
    schema: { tags, summary: 'Download a file at {revision}/{path} (supports Range; HEAD for headers only)', ...downloadFile },
    handler: committedFileHandler(yoke),
  });

  // A read-only, short-lived address of one committed file, for browser elements that cannot send a token
  // (media players, downloads): they then stream with Range instead of the page fetching the file whole.
  // Issued only to a bearer token (never a cookie), so another site cannot make a browser ask for one.
  app.post(`${REPO}/file_links/*`, { schema: { tags, summary: 'A short-lived link that reads one file at {revision}/{path} without a token header (docs/UI.md)', ...fileLink } }, async (request: Req) => {
    const { namespace, repo_name: repoName } = request.params;
    const repo = await yoke.repos.require(namespace, repoName);
    const { resolved } = await yoke.files.findCommitted(repo, request.params['*']);
    const resource = `${resolved.commit.id}/${resolved.path}`;
    const address = `/api/repos/${encodeURIComponent(namespace)}/${encodeURIComponent(repoName)}/file/${resource.split('/').map(encodeURIComponent).join('/')}`;
    if (!options.auth) return ok('resource_created', { link: { url: address, expires_at: null } });
    const link = await yoke.auth.signFileLink(request.headers.authorization, { namespace, repo: repoName }, resource);
    return ok('resource_created', { link: { url: `${address}?link=${link.param}`, expires_at: link.expiresAt } });
  });

  app.delete(url, { schema: { tags, summary: 'Delete a file or directory at {branch}/{path} as one commit', ...deleteFile } }, async (request: Req) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    const target = await yoke.revisions.resolveWrite(repo, request.params['*']);
    const fields = isMultipart(request) ? Object.fromEntries(await readFormFields(request)) : jsonObject(request.body, { optional: true });
    const commit = await yoke.files.remove(repo, target, optionalAuthor(fields), optionalText(fields.message));
    return ok('resource_deleted', { commit: commitView(commit) });
  });

  app.patch(url, { schema: { tags, summary: 'Move or rename a file ({new_path}) as one commit', ...moveFile } }, async (request: Req) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    const target = await yoke.revisions.resolveWrite(repo, request.params['*']);
    const body = jsonObject(request.body, { optional: true });
    if (typeof body.new_path !== 'string' || body.new_path.trim() === '') throw new BadRequest('new_path is required');
    const newPath = normalizeRepoPath(body.new_path);
    const { commit, file } = await yoke.files.move(repo, target, newPath, optionalAuthor(body), optionalText(body.message));
    return ok('resource_updated', { commit: commitView(commit), file });
  });
}

/** GET/HEAD of a committed file at `{rev}/{path}` (the wildcard), shared by `file/…` and `versions/…`. */
export function committedFileHandler(yoke: Yoke) {
  return async (request: FastifyRequest<{ Params: RepoWildcardParams }>, reply: FastifyReply) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    const { resolved, entry } = await yoke.files.findCommitted(repo, request.params['*']);
    return sendBlob(yoke, request, reply, entry, resolved.commit.id);
  };
}

/** Streams a committed file with its type, length, validators and byte-range support. */
export async function sendBlob(yoke: Yoke, request: FastifyRequest, reply: FastifyReply, entry: FileEntry, revisionId: string) {
  const range = parseRange(request.headers.range, entry.size);
  reply
    .header('content-type', describeFile(basename(entry.name)).mimeType)
    .header('accept-ranges', 'bytes')
    .header('etag', `"${entry.hash}"`)
    .header('oxen-revision-id', revisionId)
    // A repository's HTML or SVG opened straight from this origin must not run as the web interface (which keeps
    // a token in localStorage): browsers give a sandboxed response an opaque origin of its own.
    .header('content-security-policy', 'sandbox')
    .header('x-content-type-options', 'nosniff')
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
