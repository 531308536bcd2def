import type { FastifyInstance } from 'fastify';
import type { Yoke } from '../../services/yoke.js';
import { ok } from '../envelope.js';
import { jsonObject } from '../json-body.js';
import { createToken, listTokens, revokeToken } from '../schemas/server.js';

/** Token management over HTTP (admin scope on the whole server): the secret is in the creation reply only. */
export function tokenRoutes(app: FastifyInstance, yoke: Yoke) {
  const tags = ['tokens'];

  app.post('/api/tokens', { schema: { tags, summary: 'Create a token {name, email, scopes: ["read"|"write"|"admin"[:namespace[/repo]]], expires?: "30d"}; the secret is shown once', ...createToken } }, async (request) => {
    const body = jsonObject(request.body);
    const { token, secret } = await yoke.auth.create({ name: body.name, email: body.email, scopes: body.scopes, expires: body.expires });
    return ok('resource_created', { token: tokenView(token), secret });
  });

  app.get('/api/tokens', { schema: { tags, summary: 'List tokens (never their secrets)', ...listTokens } }, async () => ok('resource_found', { tokens: (await yoke.auth.list()).map(tokenView) }));

  app.delete<{ Params: { id: string } }>('/api/tokens/:id', { schema: { tags, summary: 'Revoke a token: it stops working at once', ...revokeToken } }, async (request) => {
    await yoke.auth.revoke(request.params.id);
    return ok('resource_deleted', { id: request.params.id });
  });
}

export function tokenView(t: { id: string; name: string; email: string; scopes: string[]; createdAt: string; expiresAt: string | null }) {
  return { id: t.id, name: t.name, email: t.email, scopes: t.scopes, created_at: t.createdAt, expires_at: t.expiresAt };
}
