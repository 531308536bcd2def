import type { FastifyInstance } from 'fastify';
import { DEFAULT_GC_GRACE_MS, parseGrace } from '../../services/gc.js';
import type { Yoke } from '../../services/yoke.js';
import { ok } from '../envelope.js';
import { checkIntegrity, collectGarbage } from '../schemas/server.js';
import { booleanQuery } from './params.js';

/** Maintenance (admin scope on the whole server): the same checks and collection as `yoke fsck` and `yoke gc`. */
export function adminRoutes(app: FastifyInstance, yoke: Yoke) {
  const tags = ['admin'];

  app.get<{ Querystring: { repo?: string; content?: string } }>(
    '/api/admin/fsck',
    { schema: { tags, summary: 'Check integrity: refs → commits → trees → blobs, re-hashing blobs unless content=false; `repo=namespace/name` for one repository', ...checkIntegrity } },
    async (request) => {
      const { repo, content } = request.query;
      const record = repo === undefined ? undefined : await yoke.repos.requireByPath(repo);
      return ok('resource_found', { fsck: await yoke.fsck.check({ repo: record, verifyContent: booleanQuery('content', content, true) }) });
    },
  );

  app.post<{ Querystring: { grace?: string; dry_run?: string } }>(
    '/api/admin/gc',
    { schema: { tags, summary: 'Remove what no branch, workspace or open upload reaches and nothing stored within `grace` (default 24h) touched; dry_run=true only reports', ...collectGarbage } },
    async (request) => {
      const { grace, dry_run } = request.query;
      const graceMs = grace === undefined ? DEFAULT_GC_GRACE_MS : parseGrace(grace);
      return ok('resource_deleted', { gc: await yoke.gc.run({ graceMs, dryRun: booleanQuery('dry_run', dry_run, false) }) });
    },
  );
}
