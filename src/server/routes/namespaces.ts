import type { FastifyInstance } from 'fastify';
import { NotFound } from '../../core/errors.js';
import type { Yoke } from '../../services/yoke.js';
import { ok } from '../envelope.js';
import { getNamespace, listNamespaces } from '../schemas/server.js';

export function namespaceRoutes(app: FastifyInstance, yoke: Yoke) {
  const tags = ['namespaces'];
  app.get('/api/namespaces', { schema: { tags, summary: 'List namespaces', ...listNamespaces } }, async () => {
    const names = await yoke.repos.namespaces();
    return ok('resource_found', { namespaces: names.map((namespace) => ({ namespace, name: namespace })) });
  });

  app.get<{ Params: { namespace: string } }>(
    '/api/namespaces/:namespace',
    { schema: { tags, summary: 'Namespace details', ...getNamespace } },
    async (request) => {
      const { namespace } = request.params;
      const repos = await yoke.repos.list(namespace);
      if (repos.length === 0) throw new NotFound(`Namespace '${namespace}' not found`);
      return ok('resource_found', { namespace: { name: namespace, repository_count: repos.length } });
    },
  );
}
