import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BadRequest, NotFound, shown } from '../../core/errors.js';
import { joinRepoPath, normalizeRepoPath } from '../../core/paths.js';
import type { RepoRecord, WorkspaceRecord } from '../../services/records.js';
import { normalizeHash } from '../../core/hash.js';
import type { PartDestination } from '../../services/uploads.js';
import type { Yoke } from '../../services/yoke.js';
import { ok } from '../envelope.js';
import { jsonObject } from '../json-body.js';
import { beginPartUpload, completeVersionUpload, createVersionUpload, putUploadPart, putVersionChunk, uploadChunk, versionUploadStatus } from '../schemas/uploads.js';
import { booleanQuery, REPO, type RepoParams } from './params.js';

type HashParams = RepoParams & { hash: string };
type Query = Record<string, string | undefined>;

function integerParam(query: Query, name: string, fallback?: number): number {
  const raw = query[name];
  if (raw === undefined || raw === '') {
    if (fallback !== undefined) return fallback;
    throw new BadRequest(`Missing query parameter ${name}`);
  }
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value)) throw new BadRequest(`Query parameter ${name} must be a non-negative integer: ${raw}`);
  return value;
}

function hashParam(raw: string | undefined, name = 'hash'): string {
  const hash = raw === undefined ? null : normalizeHash(raw);
  if (hash === null) throw new BadRequest(`Invalid ${name}: ${raw ?? '(missing)'}`);
  return hash;
}

/**
 * Uploads that arrive in parts: Oxen's `commits/upload_chunk` (chunks by index, assembled when all
 * are present) and `versions/{hash}/create | chunks | complete` (chunks by byte offset, assembled
 * on request), plus `GET versions/{hash}/chunks` to resume.
 */
export function uploadRoutes(app: FastifyInstance, yoke: Yoke) {
  const tags = ['versions'];

  // Chunk bodies are raw bytes of any (or no) content type, streamed straight to staging.
  app.register(async (raw) => {
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_request, _payload, done) => done(null));

    raw.post<{ Params: RepoParams; Querystring: Query }>(
      `${REPO}/commits/upload_chunk`,
      { schema: { tags, summary: 'Upload chunk `chunk_num` of `total_chunks` (query: hash, chunk_num, total_chunks, total_size, is_compressed, filename)', ...uploadChunk } },
      async (request) => {
        const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
        const q = request.query;
        const outcome = await yoke.uploads.uploadChunk(
          repo,
          {
            hash: hashParam(q.hash),
            chunkNum: integerParam(q, 'chunk_num'),
            totalChunks: integerParam(q, 'total_chunks'),
            totalSize: integerParam(q, 'total_size'),
            isCompressed: booleanQuery('is_compressed', q.is_compressed),
            filename: q.filename ?? null,
            declaredBytes: declaredLength(request.headers['content-length']),
          },
          request.raw,
        );
        return ok('resource_created', outcome);
      },
    );

    raw.put<{ Params: RepoParams & { upload_id: string; part: string } }>(
      `${REPO}/versions/uploads/:upload_id/parts/:part`,
      { schema: { tags, summary: 'Send part {part} (1-based, `part_size` bytes but the last) of an upload begun with POST versions/uploads; the part that makes it whole verifies and stores the file (`completed: true`)', ...putUploadPart } },
      async (request) => {
        const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
        if (!/^\d{1,9}$/.test(request.params.part)) throw new BadRequest(`Invalid part number: ${request.params.part}`);
        const outcome = await yoke.uploads.putNumberedPart(repo, request.params.upload_id, Number(request.params.part), declaredLength(request.headers['content-length']), request.raw);
        if (outcome.completed) await stageAtDestinations(yoke, repo, outcome.destinations, outcome.stored);
        return ok('resource_created', { completed: outcome.completed });
      },
    );

    raw.put<{ Params: HashParams; Querystring: Query }>(
      `${REPO}/versions/:hash/chunks`,
      { schema: { tags, summary: 'Upload the bytes at `offset` of a large file (64-bit offsets; re-sending a chunk replaces it)', ...putVersionChunk } },
      async (request) => {
        const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
        const offset = integerParam(request.query, 'offset');
        const part = await yoke.uploads.putVersionChunk(repo, hashParam(request.params.hash), offset, request.raw);
        return ok('resource_created', { chunk: { offset: part.part, size: part.size } });
      },
    );
  });

  app.post<{ Params: RepoParams }>(
    `${REPO}/versions/uploads`,
    { schema: { tags, summary: 'Begin a large-file upload in numbered parts: {hash, size, destination?: {workspace_id, path}}; answers the parts to send, or `already_stored` (then staged at the destination at once)', ...beginPartUpload } },
    async (request) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const body = jsonObject(request.body);
      const size = body.size;
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new BadRequest(`Invalid size: ${shown(size)} (expected a byte count)`);
      const destination = await parseDestination(yoke, repo, body.destination);
      const plan = await yoke.uploads.beginPartUpload(repo, hashParam(typeof body.hash === 'string' ? body.hash : undefined), size, destination);
      if ('stored' in plan) {
        if (destination) await stageAtDestinations(yoke, repo, [destination], plan.stored);
        return ok('resource_found', { file: 'already_stored' });
      }
      return ok('resource_created', { file: 'awaiting_parts', upload_id: plan.upload.key, part_size: plan.partSize, num_parts: plan.numParts, part_window: plan.partWindow });
    },
  );

  app.post<{ Params: HashParams }>(
    `${REPO}/versions/:hash/create`,
    { schema: { tags, summary: 'Start a large-file upload (optional; body {size?, file_name?, dst_dir?})', ...createVersionUpload } },
    async (request) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const body = jsonObject(request.body, { optional: true });
      const size = body.size === undefined || body.size === null ? null : typeof body.size === 'number' || typeof body.size === 'string' ? Number(body.size) : NaN;
      if (size !== null && (!Number.isSafeInteger(size) || size < 0)) throw new BadRequest(`Invalid size: ${shown(body.size)}`);
      const details = { file_name: body.file_name ?? null, dst_dir: body.dst_dir ?? null };
      const upload = await yoke.uploads.createVersionUpload(repo, hashParam(request.params.hash), size, details);
      return ok('resource_found', { upload: { hash: upload.key, size: upload.totalSize, created_at: upload.createdAt } });
    },
  );

  app.get<{ Params: HashParams }>(
    `${REPO}/versions/:hash/chunks`,
    { schema: { tags, summary: 'The chunks the server already holds for a large-file upload, to resume it', ...versionUploadStatus } },
    async (request) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const hash = hashParam(request.params.hash);
      const { upload, parts, stored } = await yoke.uploads.versionUploadStatus(repo, hash);
      return ok('resource_found', {
        hash,
        stored,
        size: upload?.totalSize ?? null,
        received_bytes: parts.reduce((n, p) => n + p.size, 0),
        chunks: parts.map((p) => ({ offset: p.part, size: p.size })),
      });
    },
  );

  app.post<{ Params: HashParams }>(
    `${REPO}/versions/:hash/complete`,
    { schema: { tags, summary: 'Assemble and verify a large-file upload (body {files:[{hash, file_name, dst_dir?}], workspace_id?}); with workspace_id, stage it at dst_dir/file_name', ...completeVersionUpload } },
    async (request) => {
      const repo = await yoke.repos.require(request.params.namespace, request.params.repo_name);
      const hash = hashParam(request.params.hash);
      const body = jsonObject(request.body, { optional: true });
      if (body.files !== undefined && (!Array.isArray(body.files) || body.files.length !== 1)) {
        throw new BadRequest('Expected a single file in the request');
      }
      // With a workspace, the assembled file is also staged there at `dst_dir/file_name`.
      let staging: { workspace: WorkspaceRecord; path: string } | null = null;
      if (body.workspace_id !== undefined && body.workspace_id !== null) {
        const id = body.workspace_id;
        if (typeof id !== 'string' && typeof id !== 'number') throw new BadRequest(`Invalid workspace_id: ${shown(id)}`);
        const workspace = await yoke.workspaces.require(repo, String(id));
        const file = (Array.isArray(body.files) ? body.files[0] : undefined) as { file_name?: unknown; dst_dir?: unknown } | undefined;
        if (typeof file?.file_name !== 'string' || file.file_name === '') throw new BadRequest('files[0].file_name is required to stage into a workspace');
        const dir = typeof file.dst_dir === 'string' ? normalizeRepoPath(file.dst_dir, { allowRoot: true }) : '';
        staging = { workspace, path: joinRepoPath(dir, normalizeRepoPath(file.file_name)) };
      }
      const { hash: storedHash, size: storedSize } = await yoke.uploads.completeVersionUpload(repo, hash);
      const version = { hash: storedHash, size: storedSize };
      if (staging) await yoke.workspaces.stageFiles(staging.workspace, [{ path: staging.path, hash: version.hash, size: version.size }]);
      return ok('resource_found', { version, ...(staging ? { path: staging.path } : {}) });
    },
  );
}

/**
 * `{workspace_id, path}`: where a finished upload is staged. Checked before any byte is sent: the
 * workspace exists and a file can be staged at the path (no file where a directory is needed).
 */
async function parseDestination(yoke: Yoke, repo: RepoRecord, raw: unknown): Promise<PartDestination | null> {
  if (raw === undefined || raw === null) return null;
  const value = raw as { workspace_id?: unknown; path?: unknown };
  if (typeof value !== 'object' || typeof value.workspace_id !== 'string' || typeof value.path !== 'string') {
    throw new BadRequest('destination must be {workspace_id, path}');
  }
  const workspace = await yoke.workspaces.require(repo, value.workspace_id);
  const path = normalizeRepoPath(value.path);
  await yoke.workspaces.assertCanStageFile(workspace, path);
  return { workspace_id: workspace.id, path };
}

/** Stages a finished upload at each destination its begins named; a workspace deleted meanwhile is skipped. */
async function stageAtDestinations(yoke: Yoke, repo: RepoRecord, destinations: PartDestination[], stored: { hash: string; size: number }) {
  for (const { workspace_id: id, path } of destinations) {
    const workspace = await yoke.workspaces.require(repo, id).catch((err) => (err instanceof NotFound ? null : Promise.reject(err)));
    if (workspace) await yoke.workspaces.stageFiles(workspace, [{ path, hash: stored.hash, size: stored.size }]);
  }
}

/** A request's Content-Length, if it declared a valid one. */
function declaredLength(header: string | undefined): number | null {
  if (header === undefined || !/^\d{1,15}$/.test(header)) return null;
  return Number(header);
}
