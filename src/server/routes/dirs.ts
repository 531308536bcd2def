import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { BadRequest } from '../../core/errors.js';
import { UNCOMMITTED, type Entry } from '../../core/tree.js';
import type { ListedEntry, ListOptions } from '../../services/directories.js';
import type { Yoke } from '../../services/yoke.js';
import type { ResolvedRevision } from '../../services/revisions.js';
import { ok } from '../envelope.js';
import { entryMetadata, listDir, listEveryEntry, resolveRevision } from '../schemas/dirs.js';
import { branchView, commitView, entryView, pageParams, pageView, type PageQuery } from '../views.js';
import { booleanQuery, REPO, type RepoWildcardParams } from './params.js';

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

type ListQuery = PageQuery & { sort_by?: string; reverse?: string; depth?: string };

function listOptions(query: ListQuery): ListOptions {
  const sortBy = query.sort_by ?? 'name';
  if (sortBy !== 'name' && sortBy !== 'date') throw new BadRequest('Invalid value for sort_by, valid options include: `name`, `date`.');
  const reverse = booleanQuery('reverse', query.reverse, false);
  const depth = query.depth === undefined ? 0 : Number(query.depth);
  if (!Number.isInteger(depth)) throw new BadRequest(`Invalid depth: ${query.depth} (an integer; negative for unlimited)`);
  return { sortBy, reverse, depth: depth < 0 ? Infinity : depth };
}

type EntryWithChildren = ReturnType<typeof entryView> & { children?: EntryWithChildren[] };

function listedView(listed: ListedEntry): EntryWithChildren {
  const view: EntryWithChildren = entryView(listed.entry, listed.latestCommit);
  if (listed.children) view.children = listed.children.map(listedView);
  return view;
}

/** One line of `ls`: built as text, since a listing may hold millions of them. */
function entryLine({ path, entry }: { path: string; entry: Entry }): string {
  const hash = entry.kind === 'dir' ? entry.id : entry.hash;
  const commit = entry.lastCommitId === UNCOMMITTED ? 'null' : `"${entry.lastCommitId}"`;
  return `{"path":${JSON.stringify(path)},"type":"${entry.kind}","hash":"${hash}","size":${entry.size},"last_commit_id":${commit}}\n`;
}

async function* ndjson(batches: AsyncIterable<Array<{ path: string; entry: Entry }>>): AsyncGenerator<string> {
  for await (const batch of batches) {
    let text = '';
    for (const item of batch) text += entryLine(item);
    yield text;
  }
}

export function dirRoutes(app: FastifyInstance, yoke: Yoke) {
  const tags = ['files'];

  app.get(
    `${REPO}/dir/*`,
    {
      schema: {
        tags,
        summary: 'List a directory at {revision}/{path} (or {workspace_id}/{path}), paginated: directories first, then by name or date (sort_by=name|date, reverse), with `depth` levels of children',
        ...listDir,
      },
    },
    async (request: FastifyRequest<{ Params: RepoWildcardParams; Querystring: ListQuery }>) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const options = listOptions(request.query);
      const open = await yoke.dirs.open(repo, request.params['*']);
      const { page, pageSize, offset } = pageParams(request.query);
      const { dir, entries } = await yoke.dirs.page(repo, open, options, offset, pageSize);
      return ok('resource_found', {
        dir: listedView(dir),
        entries: entries.map(listedView),
        resource: { path: open.tree.path, version: open.tree.version },
        metadata: null,
        ...pageView(page, pageSize, open.count),
      });
    },
  );

  // A Yoke extension: every entry in one streamed reply, for tools that want a whole directory (as `git ls-tree`
  // gives it) without paging through Oxen's entries of ~500 bytes each.
  app.get(
    `${REPO}/ls/*`,
    { schema: { tags, summary: 'Every entry of the directory at {revision}/{path} (or {workspace_id}/{path}), streamed as JSON lines', ...listEveryEntry } },
    async (request: FastifyRequest<{ Params: RepoWildcardParams; Querystring: { recursive?: string } }>, reply) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const recursive = booleanQuery('recursive', request.query.recursive, false);
      const open = await yoke.dirs.open(repo, request.params['*']);
      return reply.header('content-type', 'application/x-ndjson').send(Readable.from(ndjson(yoke.dirs.entries(repo, open, recursive))));
    },
  );

  app.get(`${REPO}/meta/*`, { schema: { tags, summary: 'Metadata of one file or directory at {revision}/{path} (or {workspace_id}/{path})', ...entryMetadata } }, async (request: Req) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    const { tree, entry } = await yoke.dirs.describe(repo, request.params['*']);
    const resource = tree.resolved ? resourceView(tree.resolved) : { workspace: null, commit: commitView(tree.commit), branch: null, path: tree.path, version: tree.version, resource: request.params['*'] };
    return ok('resource_found', { entry: entryView(entry.entry, entry.latestCommit, resource) });
  });

  app.get(`${REPO}/revisions/*`, { schema: { tags, summary: 'Resolve {revision}/{path} to a commit, branch and path', ...resolveRevision } }, async (request: Req) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    return ok('resource_found', { resource: resourceView(await yoke.revisions.resolve(repo, request.params['*'])) });
  });
}
