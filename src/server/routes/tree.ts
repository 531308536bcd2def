import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequest, NotFound } from '../../core/errors.js';
import { normalizeRepoPath } from '../../core/paths.js';
import { nodeRecordsTarGz, type TreeDownloadOptions } from '../../services/oxen-tree.js';
import type { Yoke } from '../../services/yoke.js';
import { ok } from '../envelope.js';
import { sendTarGz } from '../stream-reply.js';
import { downloadTree, nodeAtPath } from '../schemas/sync.js';
import { REPO, type RepoParams, type RepoWildcardParams } from './params.js';

interface DownloadQuery {
  depth?: string;
  subtrees?: string;
  is_download?: string;
}

/**
 * Oxen's merkle-tree routes that read (COMPAT: oxen-api §1.7), serving Yoke's trees as Oxen node
 * records: a directory download with Oxen's client asks `tree/download/{commit}?subtrees=…` for the
 * nodes, then `tree/nodes/resource/{commit}/{path}` for the id to start reading from.
 */
export function treeRoutes(app: FastifyInstance, yoke: Yoke) {
  const tags = ['tree'];
  const { oxenTree } = yoke;

  app.get(
    `${REPO}/tree/download/:base_head`,
    {
      schema: {
        tags,
        summary:
          'Merkle node records as a tar.gz (tree/nodes/{3 hex}/{rest}/node|children): of {commit} and its history, ' +
          'of {commit} under ?subtrees=a,b only (?depth=-1, ?is_download=true skips the nodes above them), or what {base}..{head} adds',
        ...downloadTree,
      },
    },
    async (request: FastifyRequest<{ Params: RepoParams & { base_head: string }; Querystring: DownloadQuery }>, reply) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const options = downloadOptions(request.query);
      const spec = request.params.base_head;
      const parts = spec.split('..');
      if (spec.includes('...') || parts.length > 2) throw new BadRequest(`Expected {commit} or {base}..{head}, got ${spec}`);
      const [baseSpec, headSpec] = parts;
      const base = await yoke.revisions.resolveCommit(repo, baseSpec);
      const records =
        headSpec === undefined
          ? oxenTree.commitRecords(repo, base, options)
          : oxenTree.rangeRecords(repo, base, await yoke.revisions.resolveCommit(repo, headSpec), options);
      return sendTarGz(request, reply, 'tree download', (onFailure) => nodeRecordsTarGz(records, onFailure));
    },
  );

  app.get(
    `${REPO}/tree/nodes/resource/*`,
    { schema: { tags, summary: 'Id of the merkle node at {revision}/{path}: a directory id, or a file content hash', ...nodeAtPath } },
    async (request: FastifyRequest<{ Params: RepoWildcardParams }>) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const resolved = await yoke.revisions.resolve(repo, request.params['*']);
      const hash = await oxenTree.nodeHashAt(repo, resolved.commit, resolved.path);
      if (hash === null) throw new NotFound(`Nothing at '${resolved.path}' in commit ${resolved.commit.id}`);
      return ok('resource_found', { hash });
    },
  );
}

function downloadOptions(query: DownloadQuery): TreeDownloadOptions {
  let depth = -1;
  if (query.depth !== undefined && query.depth !== '') {
    if (!/^-?\d{1,9}$/.test(query.depth) || Number(query.depth) < -1) throw new BadRequest(`depth must be -1 or a non-negative integer, got ${query.depth}`);
    depth = Number(query.depth);
  }
  // `subtrees=` (empty) is how Oxen's client asks for the root directory alone.
  const subtrees =
    query.subtrees === undefined
      ? null
      : query.subtrees === ''
        ? ['']
        : [...new Set(query.subtrees.split(',').map((p) => normalizeRepoPath(p.trim(), { allowRoot: true })))];
  const flag = query.is_download;
  if (flag !== undefined && flag !== 'true' && flag !== 'false') throw new BadRequest(`is_download must be true or false, got ${flag}`);
  return { subtrees, depth, isDownload: flag === 'true' };
}
