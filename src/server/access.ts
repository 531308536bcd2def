import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AccessLevel } from '../core/scopes.js';
import type { AccessTarget } from '../services/auth.js';
import type { Yoke } from '../services/yoke.js';

/** Routes anyone may call: load balancers and clients learning what the server needs. */
const OPEN = new Set(['/api/version', '/api/min_version', '/api/health']);

/**
 * What a request needs, from its method and URL alone (it runs before the body is read):
 * - admin: creating a repository (`POST /api/repos`), deleting or moving one, managing tokens,
 *   maintenance (`/api/admin/…`: fsck, gc);
 * - read: GET, HEAD, QUERY and the batch download;
 * - write: everything else (uploads, commits, branches, workspaces, merges, pushes).
 * The target is the repository or namespace the path names; `POST /api/repos` and the token routes
 * concern the server as a whole, so only an unrestricted scope covers them.
 */
export function requiredAccess(method: string, url: string): { level: AccessLevel; target: AccessTarget } | null {
  const path = url.split('?')[0];
  if (OPEN.has(path) || method === 'OPTIONS' || !path.startsWith('/api/') || path.startsWith('/api/_spec')) return null;
  const segments = path.split('/').slice(2).map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  const [area, namespace = null, repo = null, ...rest] = segments;
  const target: AccessTarget =
    area === 'repos' ? { namespace, repo } : area === 'namespaces' ? { namespace, repo: null } : { namespace: null, repo: null };
  if (area === 'tokens' || area === 'admin') return { level: 'admin', target };
  if (area === 'repos' && method === 'POST' && namespace === null) return { level: 'admin', target: { namespace: null, repo: null } };
  if (area === 'repos' && repo !== null && rest.length === 0 && method === 'DELETE') return { level: 'admin', target };
  if (area === 'repos' && rest[0] === 'transfer') return { level: 'admin', target };
  if (method === 'GET' || method === 'HEAD' || method === 'QUERY') return { level: 'read', target };
  if (method === 'POST' && rest.join('/') === 'versions/batch-download') return { level: 'read', target };
  // Issuing a file link grants nothing the token does not have: reading.
  if (method === 'POST' && rest[0] === 'file_links') return { level: 'read', target };
  return { level: 'write', target };
}

/**
 * The file a signed link may read (`GET`/`HEAD …/file/{commit}/{path}?link=…` without an Authorization
 * header): its repository and `{commit}/{path}`, decoded as the route decodes them; null for any other request.
 */
function fileLinkRequest(method: string, url: string): { link: string; target: { namespace: string; repo: string }; resource: string } | null {
  if ((method !== 'GET' && method !== 'HEAD') || !url.includes('link=')) return null;
  const [path, query] = url.split('?', 2);
  const link = new URLSearchParams(query).get('link');
  const match = /^\/api\/repos\/([^/]+)\/([^/]+)\/file\/(.+)$/.exec(path);
  if (!link || !match) return null;
  try {
    const [namespace, repo, resource] = [match[1], match[2], match[3]].map(decodeURIComponent);
    return { link, target: { namespace, repo }, resource };
  } catch {
    return null;
  }
}

/** The onRequest hook: 401/403 (JSON) unless the request's token (or a file link) grants what it needs. */
export async function authorizeRequest(yoke: Yoke, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const needed = requiredAccess(request.method, request.url);
  if (needed === null) return;
  const linked = request.headers.authorization === undefined ? fileLinkRequest(request.method, request.url) : null;
  if (linked) {
    const token = await yoke.auth.authorizeFileLink(linked.link, linked.target, linked.resource);
    // The address is the credential: it must not travel on in a Referer, nor stay in a shared cache.
    reply.header('referrer-policy', 'no-referrer').header('cache-control', 'private, no-store');
    request.log.debug({ token: token.id, level: 'read', link: true }, 'authorized');
    return;
  }
  const token = await yoke.auth.authorize(request.headers.authorization, needed.level, needed.target);
  // Who did it, never the secret.
  request.log.debug({ token: token.id, level: needed.level }, 'authorized');
}
