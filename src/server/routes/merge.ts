import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequest, YokeError } from '../../core/errors.js';
import { parseFrameOptions, type FrameQuery } from '../../core/frame-options.js';
import { basename, dirname, normalizeRepoPath } from '../../core/paths.js';
import type { FileChange } from '../../core/diff.js';
import { parseRange } from '../../services/merge.js';
import type { Yoke } from '../../services/yoke.js';
import { ok } from '../envelope.js';
import { jsonObject } from '../json-body.js';
import { compareCommits, compareDirTree, compareEntries, compareFile, mergeability, mergeBranch } from '../schemas/merge.js';
import { commitView, entryView, pageParams, pageView, type PageQuery } from '../views.js';
import { tabularFileDiffView } from './compare-data-frames.js';
import { requireAuthor } from './repos.js';
import { REPO, type RepoWildcardParams } from './params.js';

/** Subdirectories listed per parent in `compare/dir_tree` (Oxen shows 10 and says whether more exist). */
const MAX_DIR_TREE_CHILDREN = 10;

const CHANGE_TYPE = { added: 'Added', removed: 'Removed', unchanged: 'Unchanged' } as const;

type Req = FastifyRequest<{ Params: RepoWildcardParams; Querystring: PageQuery }>;

function diffEntryView(change: FileChange) {
  return {
    status: change.status,
    path: change.path,
    filename: basename(change.path),
    is_dir: false,
    size: (change.after ?? change.before)!.size,
    base_entry: change.before && { hash: change.before.hash, size: change.before.size },
    head_entry: change.after && { hash: change.after.hash, size: change.after.size },
  };
}

/** Why a tabular file gets its line diff instead: it cannot be read as a data frame, or not within the engine's limits. */
const UNUSABLE_FRAME = new Set(['data_frame_error', 'query_timeout', 'query_too_large', 'result_too_large']);

/**
 * Oxen's tabular diff of a data frame in `compare/file` (rows and columns one revision has and the other
 * lacks, paged with the data-frame view options); null, leaving the line diff, when the file cannot be read
 * as a data frame.
 */
async function tabularDiffOf(yoke: Yoke, result: Awaited<ReturnType<Yoke['merges']['compareFile']>>, query: unknown) {
  const options = parseFrameOptions((query ?? {}) as FrameQuery);
  const side = (entry: { hash: string } | null, commitId: string) => entry && { hash: entry.hash, commitId };
  try {
    const diff = await yoke.frameCompare.fileDiff(result.path, side(result.before, result.base.id), side(result.after, result.head.id), options);
    return diff && tabularFileDiffView(diff, options);
  } catch (error) {
    if (error instanceof YokeError && error.httpStatus === 400 && UNUSABLE_FRAME.has(String(error.extra.type))) return null;
    throw error;
  }
}

/** Server-side merge of branches, and comparisons of revisions (commits, entries, one file). */
export function mergeRoutes(app: FastifyInstance, yoke: Yoke) {
  const repoOf = (request: Req) => yoke.repos.require(request.params.namespace, request.params.repo_name);

  app.get(`${REPO}/merge/*`, { schema: { tags: ['merge'], summary: 'Can {head} be merged into branch {base}: {base}..{head}', ...mergeability } }, async (request: Req) => {
    const repo = await repoOf(request);
    const result = await yoke.merges.check(repo, parseRange(request.params['*']));
    const body = { is_mergeable: result.isMergeable, conflicts: result.conflicts, commits: result.commits.map(commitView) };
    return ok('resource_found', { ...body, mergeable: body });
  });

  app.post(
    `${REPO}/merge/*`,
    { schema: { tags: ['merge'], summary: 'Merge {head} into branch {base}: {base}..{head}, body {name, email}; fast-forward, merge commit, or 409 with the conflicts', ...mergeBranch } },
    async (request: Req) => {
      const repo = await repoOf(request);
      const body = jsonObject(request.body);
      const author = requireAuthor(body.name, body.email);
      const outcome = await yoke.merges.merge(repo, parseRange(request.params['*']), author);
      // Oxen's clients read `merge` as a commit: the branch's new head, or its unchanged head when up to date.
      const merge = outcome.kind === 'merge_commit' ? outcome.merge : outcome.kind === 'fast_forward' ? outcome.head : outcome.base;
      return ok(outcome.kind === 'merge_commit' ? 'resource_created' : 'resource_found', {
        result: outcome.kind,
        commits: { base: commitView(outcome.base), head: commitView(outcome.head), merge: commitView(merge) },
      });
    },
  );

  app.get(`${REPO}/compare/commits/*`, { schema: { tags: ['compare'], summary: 'Commits {head} adds ({base}..{head}), or both sides since the merge base ({base}...{head}), paginated', ...compareCommits } }, async (request: Req) => {
    const repo = await repoOf(request);
    const { base, head, commits } = await yoke.merges.compareCommits(repo, parseRange(request.params['*']));
    const { page, pageSize, offset } = pageParams(request.query);
    return ok('resource_found', {
      compare: {
        base_commit: commitView(base),
        head_commit: commitView(head),
        commits: commits.slice(offset, offset + pageSize).map((c) => ({ ...commitView(c.commit), side: c.side })),
      },
      ...pageView(page, pageSize, commits.length),
    });
  });

  app.get(
    `${REPO}/compare/entries/*`,
    { schema: { tags: ['compare'], summary: 'Files added, removed and modified between revisions: {base}..{head}[/dir/{dir}], with counts, paginated', ...compareEntries } },
    async (request: Req) => {
      const repo = await repoOf(request);
      const spec = request.params['*'];
      const split = spec.indexOf('/dir/');
      const range = parseRange(split < 0 ? spec : spec.slice(0, split));
      const dir = split < 0 ? '' : normalizeRepoPath(spec.slice(split + '/dir/'.length), { allowRoot: true });
      const { base, head, changes } = await yoke.merges.compareEntries(repo, range, dir);
      const { page, pageSize, offset } = pageParams(request.query);
      const count = (status: FileChange['status']) => changes.filter((c) => c.status === status).length;
      return ok('resource_found', {
        compare: {
          base_commit: commitView(base),
          head_commit: commitView(head),
          counts: { added: count('added'), removed: count('removed'), modified: count('modified') },
          entries: changes.slice(offset, offset + pageSize).map(diffEntryView),
        },
        ...pageView(page, pageSize, changes.length),
      });
    },
  );

  app.get(`${REPO}/compare/dir_tree/*`, { schema: { tags: ['compare'], summary: 'Directories that changed between revisions ({base}..{head}), grouped under their parent directory', ...compareDirTree } }, async (request: Req) => {
    const repo = await repoOf(request);
    const changed = await yoke.merges.changedDirs(repo, parseRange(request.params['*']));
    const statusOf = new Map(changed.map((d) => [d.path, d.status]));
    const byParent = new Map<string, Array<{ name: string; status: string }>>();
    for (const dir of changed) {
      const parent = dirname(dir.path);
      if (!byParent.has(parent)) byParent.set(parent, []);
      byParent.get(parent)!.push({ name: dir.path, status: dir.status });
    }
    // Oxen's shape: one summary per parent directory, its changed subdirectories as children.
    const dirs = [...byParent].map(([name, children]) => ({
      name,
      status: statusOf.get(name) ?? 'modified',
      num_subdirs: children.length,
      can_display: children.length <= MAX_DIR_TREE_CHILDREN,
      children: children.slice(0, MAX_DIR_TREE_CHILDREN),
    }));
    return ok('resource_found', { dirs });
  });

  app.get(`${REPO}/compare/file/*`, { schema: { tags: ['compare'], summary: 'One file in two revisions: {base}..{head}/{path}; a line diff for text', ...compareFile } }, async (request: Req) => {
    const repo = await repoOf(request);
    const spec = request.params['*'];
    const range = parseRange(spec);
    if (range.threeDot) throw new BadRequest('compare/file takes a two-dot range: base..head/path');
    const result = await yoke.merges.compareFile(repo, range.base, range.head);
    const name = basename(result.path);
    const entry = (e: { hash: string; size: number } | null) => e && entryView({ kind: 'file', name, hash: e.hash, size: e.size });
    const tabular = result.dataType === 'tabular' ? await tabularDiffOf(yoke, result, request.query) : null;
    // Oxen's DiffEntry (its client decodes entries as MetadataEntry and line changes by variant
    // name), plus Yoke's `path` and the two commits.
    return ok('resource_found', {
      compare: {
        status: result.status,
        data_type: result.dataType,
        filename: result.path,
        is_dir: false,
        size: (result.after ?? result.before)!.size,
        base_resource: null,
        head_resource: null,
        base_entry: entry(result.before),
        head_entry: entry(result.after),
        diff_summary: tabular?.diff_summary ?? null,
        diff: tabular?.diff ??
          (result.lines && {
            lines: result.lines.map((l) => ({ modification: CHANGE_TYPE[l.modification], text: l.text })),
            filename1: result.path,
            filename2: result.path,
          }),
        path: result.path,
        base_commit: commitView(result.base),
        head_commit: commitView(result.head),
      },
    });
  });
}
