import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequest, NotFound } from '../../core/errors.js';
import { basename, joinRepoPath } from '../../core/paths.js';
import { listDir, lookup, UNCOMMITTED, type Entry } from '../../core/tree.js';
import type { Yoke } from '../../services/yoke.js';
import type { ResolvedRevision } from '../../services/revisions.js';
import type { ResolvedTree } from '../../services/trees.js';
import type { CommitRecord, RepoRecord } from '../../storage/meta-store.js';
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

type SortBy = 'name' | 'date';
type ListQuery = PageQuery & { sort_by?: string; reverse?: string; depth?: string };

function listOptions(query: ListQuery) {
  const sortBy = query.sort_by ?? 'name';
  if (sortBy !== 'name' && sortBy !== 'date') throw new BadRequest('Invalid value for sort_by, valid options include: `name`, `date`.');
  const reverse = query.reverse === undefined ? false : query.reverse === 'true' || query.reverse === '1';
  if (query.reverse !== undefined && !reverse && query.reverse !== 'false' && query.reverse !== '0') throw new BadRequest(`Invalid reverse: ${query.reverse} (true or false)`);
  const depth = query.depth === undefined ? 0 : Number(query.depth);
  if (!Number.isInteger(depth)) throw new BadRequest(`Invalid depth: ${query.depth} (an integer; negative for unlimited)`);
  return { sortBy: sortBy as SortBy, reverse, depth: depth < 0 ? Infinity : depth };
}

/**
 * The commit that last changed each entry, as its node records it. An entry a workspace changed
 * records none yet (UNCOMMITTED), and neither does a commit the repository does not hold.
 */
async function latestCommits(yoke: Yoke, repo: RepoRecord, entries: Entry[]): Promise<Map<string, CommitRecord | null>> {
  const ids = [...new Set(entries.map((e) => e.lastCommitId).filter((id) => id !== UNCOMMITTED))];
  const commits = new Map((await yoke.meta.getCommits(repo.id, ids)).map((c) => [c.id, c]));
  return new Map(entries.map((e) => [e.name, commits.get(e.lastCommitId) ?? null]));
}

async function latestCommitOf(yoke: Yoke, repo: RepoRecord, entry: Entry): Promise<CommitRecord | null> {
  return (await latestCommits(yoke, repo, [entry])).get(entry.name) ?? null;
}

/** Directories first, then by name or by the date of their latest commit (`reverse` flips the second key only, as Oxen does). */
function sortEntries(entries: Entry[], latest: Map<string, CommitRecord | null>, sortBy: SortBy, reverse: boolean): Entry[] {
  const time = (e: Entry) => latest.get(e.name)?.timestamp ?? '';
  const key = (a: Entry, b: Entry) => {
    const [x, y] = sortBy === 'name' ? [a.name, b.name] : [time(a), time(b)];
    const order = x < y ? -1 : x > y ? 1 : 0;
    return reverse ? -order : order;
  };
  return [...entries].sort((a, b) => (a.kind === b.kind ? key(a, b) : a.kind === 'dir' ? -1 : 1));
}

type EntryWithChildren = ReturnType<typeof entryView> & { children?: EntryWithChildren[] };

/** Views of `entries` (inside `dirPath`) with their latest commits, and `depth` levels of children below each directory. */
async function describeEntries(yoke: Yoke, repo: RepoRecord, tree: ResolvedTree, dirPath: string, entries: Entry[], latest: Map<string, CommitRecord | null>, options: { sortBy: SortBy; reverse: boolean; depth: number }): Promise<EntryWithChildren[]> {
  const views: EntryWithChildren[] = [];
  for (const entry of entries) {
    const view: EntryWithChildren = entryView(entry, latest.get(entry.name) ?? null);
    if (entry.kind === 'dir' && options.depth > 0) {
      const path = joinRepoPath(dirPath, entry.name);
      const children = await listDir(tree.source, entry.id);
      const childLatest = await latestCommits(yoke, repo, children);
      const ordered = sortEntries(children, childLatest, options.sortBy, options.reverse);
      view.children = await describeEntries(yoke, repo, tree, path, ordered, childLatest, { ...options, depth: options.depth - 1 });
    }
    views.push(view);
  }
  return views;
}

export function dirRoutes(app: FastifyInstance, yoke: Yoke) {
  const tags = ['files'];

  app.get(
    `${REPO}/dir/*`,
    {
      schema: {
        tags,
        summary: 'List a directory at {revision}/{path} (or {workspace_id}/{path}), paginated: directories first, then by name or date (sort_by=name|date, reverse), with `depth` levels of children',
      },
    },
    async (request: FastifyRequest<{ Params: RepoWildcardParams; Querystring: ListQuery }>) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const options = listOptions(request.query);
      const tree = await yoke.trees.resolve(repo, request.params['*']);
      const dir = await lookup(tree.source, tree.rootId, tree.path);
      if (!dir || dir.kind !== 'dir') throw new NotFound(`Directory not found: ${tree.path || '/'} at ${tree.version}`);
      const entries = await listDir(tree.source, dir.id);
      const { page, pageSize, offset } = pageParams(request.query);
      // Sorting by name needs the page's commits only; by date, every entry's.
      let latest = options.sortBy === 'date' ? await latestCommits(yoke, repo, entries) : new Map<string, CommitRecord | null>();
      const pageEntries = sortEntries(entries, latest, options.sortBy, options.reverse).slice(offset, offset + pageSize);
      if (options.sortBy === 'name') latest = await latestCommits(yoke, repo, pageEntries);
      const named = { ...dir, name: basename(tree.path) };
      return ok('resource_found', {
        dir: entryView(named, await latestCommitOf(yoke, repo, named)),
        entries: await describeEntries(yoke, repo, tree, tree.path, pageEntries, latest, options),
        resource: { path: tree.path, version: tree.version },
        metadata: null,
        ...pageView(page, pageSize, entries.length),
      });
    },
  );

  app.get(`${REPO}/meta/*`, { schema: { tags, summary: 'Metadata of one file or directory at {revision}/{path} (or {workspace_id}/{path})' } }, async (request: Req) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    const tree = await yoke.trees.resolve(repo, request.params['*']);
    const entry = await lookup(tree.source, tree.rootId, tree.path);
    if (!entry) throw new NotFound(`Could not find path: ${tree.path} at ${tree.version}`);
    const named = { ...entry, name: basename(tree.path) };
    const latest = await latestCommitOf(yoke, repo, named);
    const resource = tree.resolved ? resourceView(tree.resolved) : { workspace: null, commit: commitView(tree.commit), branch: null, path: tree.path, version: tree.version, resource: request.params['*'] };
    return ok('resource_found', { entry: entryView(named, latest, resource) });
  });

  app.get(`${REPO}/revisions/*`, { schema: { tags, summary: 'Resolve {revision}/{path} to a commit, branch and path' } }, async (request: Req) => {
    const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
    return ok('resource_found', { resource: resourceView(await yoke.revisions.resolve(repo, request.params['*'])) });
  });
}
