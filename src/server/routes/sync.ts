import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BadRequest, NotFound } from '../../core/errors.js';
import { normalizeHash } from '../../core/hash.js';
import { nodeRecordsTarGz } from '../../services/oxen-tree.js';
import type { CommitRecord, RepoRecord } from '../../services/records.js';
import { dirHashesTarGz } from '../../services/sync.js';
import type { Yoke } from '../../services/yoke.js';
import { ok } from '../envelope.js';
import { sendTarGz } from '../stream-reply.js';
import { jsonObject } from '../json-body.js';
import { downloadAllNodes, downloadCommitDb, downloadDirHashes, hasNode, missingCommits, missingFiles, missingNodes, pushDirHashes, pushNodes } from '../schemas/sync.js';
import { REPO, type RepoParams } from './params.js';

type SpecParams = RepoParams & { spec: string };

/** A JSON body's `hashes`: an array of hex ids (Oxen's MerkleHashes). */
function hashList(body: unknown): string[] {
  const { hashes } = jsonObject(body);
  if (!Array.isArray(hashes) || hashes.some((h) => typeof h !== 'string' || normalizeHash(h) === null)) {
    throw new BadRequest('Invalid request body: expected {"hashes": [hex ids]}');
  }
  return hashes as string[];
}

/**
 * Oxen's push, clone, pull and fetch (oxen-internals §4): nodes and directory indexes in, node
 * records and directory indexes out. File bytes travel through the versions routes; branches move
 * through the branches routes, which adopt a pushed commit only after verifying its tree.
 */
export function syncRoutes(app: FastifyInstance, yoke: Yoke, options: { scratchDir: string }) {
  const tags = ['sync'];
  const { sync } = yoke;
  const repoOf = (request: FastifyRequest<{ Params: RepoParams }>) => yoke.repos.require(request.params.namespace, request.params.repo_name);

  // Tarballs arrive as raw bodies of any (or no) content type, streamed as they come.
  app.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_request, _payload, done) => done(null));

    raw.post<{ Params: RepoParams }>(
      `${REPO}/tree/nodes`,
      { schema: { tags, summary: 'Push merkle node records: a tar.gz of {3 hex}/{rest}/node and children files; each record is checked, present ones are kept', ...pushNodes } },
      async (request) => {
        const repo = await repoOf(request);
        return ok('resource_created', { nodes: await sync.receiveNodes(repo, request.raw) });
      },
    );

    raw.post<{ Params: RepoParams }>(
      `${REPO}/commits/upload`,
      { schema: { tags, summary: "Push a commit's directory index: a tar.gz of history/{commit}/dir_hashes/ (marks the commit as completely sent)", ...pushDirHashes } },
      async (request) => {
        const repo = await repoOf(request);
        return ok('resource_created', { commits: await sync.receiveDirHashes(repo, request.raw) });
      },
    );
  });

  app.post<{ Params: RepoParams }>(
    `${REPO}/commits/missing`,
    { schema: { tags, summary: 'Which of {hashes} (commit ids) the repository does not hold completely', ...missingCommits } },
    async (request) => ok('resource_found', { hashes: await sync.missingCommits(await repoOf(request), hashList(request.body)) }),
  );

  app.post<{ Params: RepoParams }>(
    `${REPO}/tree/nodes/missing_node_hashes`,
    { schema: { tags, summary: 'Which of {hashes} (node ids) the repository does not hold', ...missingNodes } },
    async (request) => ok('resource_found', { hashes: await sync.missingNodes(await repoOf(request), hashList(request.body)) }),
  );

  app.get<{ Params: RepoParams & { hash: string } }>(
    `${REPO}/tree/nodes/hash/:hash`,
    { schema: { tags, summary: 'Whether the repository holds the node {hash} (200) or not (404)', ...hasNode } },
    async (request) => {
      const repo = await repoOf(request);
      const [missing] = await sync.missingNodes(repo, [request.params.hash]);
      if (missing !== undefined || normalizeHash(request.params.hash) === null) throw new NotFound(`Node ${request.params.hash} not found`);
      return ok('resource_found', { hash: request.params.hash });
    },
  );

  app.get<{ Params: RepoParams }>(
    `${REPO}/tree/download`,
    { schema: { tags, summary: 'Every node record of every commit in the repository, as a tar.gz (a clone with all=true)', ...downloadAllNodes } },
    async (request, reply) => {
      const repo = await repoOf(request);
      const records = yoke.oxenTree.recordsOf(repo, await yoke.commitLog.everyOldestFirst(repo));
      return sendTarGz(request, reply, 'tree download', (onFailure) => nodeRecordsTarGz(records, onFailure));
    },
  );

  const dirHashesReply = (request: FastifyRequest, reply: FastifyReply, repo: RepoRecord, commits: CommitRecord[]) => {
    // Oldest first: each commit's index is built from its parent's.
    return sendTarGz(request, reply, 'dir_hashes download', (onFailure) => dirHashesTarGz(sync.dirHashesOf(repo, commits), options.scratchDir, onFailure));
  };

  app.get<{ Params: SpecParams }>(
    `${REPO}/commits/:spec/download_dir_hashes_db`,
    { schema: { tags, summary: 'Directory indexes (history/{commit}/dir_hashes/, RocksDB) of {commit} and its ancestors, or of {base}, {head} and the commits between, as a tar.gz', ...downloadDirHashes } },
    async (request, reply) => {
      const repo = await repoOf(request);
      const parts = request.params.spec.split('..');
      if (parts.length > 2 || parts.some((p) => p === '')) throw new BadRequest(`Expected {commit} or {base}..{head}, got ${request.params.spec}`);
      const commits = await yoke.commitLog.lineage(repo, parts[parts.length - 1], parts.length === 2 ? parts[0] : undefined);
      return dirHashesReply(request, reply, repo, commits);
    },
  );

  app.get<{ Params: SpecParams }>(
    `${REPO}/commits/:spec/commit_db`,
    { schema: { tags, summary: 'The directory index of one commit (history/{commit}/…), as a tar.gz', ...downloadCommitDb } },
    async (request, reply) => {
      const repo = await repoOf(request);
      return dirHashesReply(request, reply, repo, [await yoke.revisions.resolveCommit(repo, request.params.spec)]);
    },
  );

  app.get<{ Params: RepoParams; Querystring: { base?: string; head?: string } }>(
    `${REPO}/commits/missing_files`,
    { schema: { tags, summary: 'Files that commits in {base}..{head} (or {head} and its ancestors) add and whose bytes the repository lacks', ...missingFiles } },
    async (request) => {
      const repo = await repoOf(request);
      if (!request.query.head) throw new BadRequest('Query parameter head is required');
      const head = await yoke.revisions.resolveCommit(repo, request.query.head);
      const base = request.query.base ? await yoke.revisions.resolveCommit(repo, request.query.base) : null;
      const entries = await sync.missingFiles(repo, base, head);
      return ok('resource_found', {
        entries: entries.map((e) => ({
          commit_id: e.commitId,
          path: e.path,
          hash: e.hash,
          num_bytes: e.size,
          last_modified_seconds: 0,
          last_modified_nanoseconds: 0,
        })),
      });
    },
  );
}
