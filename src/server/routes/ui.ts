import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { REPO } from './params.js';

/**
 * The web interface (web/, docs/UI.md): one HTML page for `/`, `/{namespace}/{repo}` and every address below
 * it, and the built scripts and styles under `/-/assets/`. `-` cannot start a namespace, so no repository
 * address is shadowed; a first segment naming the API's own areas (`api`, `swagger-ui`) is left to them and
 * answers the JSON 404 when nothing there matches. The page holds no data: everything comes from the API, with
 * the token the user gives when authentication is on.
 */

/** First path segments that are never repository namespaces. */
const RESERVED = new Set(['api', 'swagger-ui', '-']);

const ASSET_TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

/** Scripts and styles only from this server, nothing inline but style attributes; media and images from the API or blob: URLs. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  // WebAssembly (the content hash of large uploads) needs 'wasm-unsafe-eval'; no other eval is allowed.
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' blob: data:",
  "media-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** A small inline icon, so browsers do not ask for /favicon.ico. */
const ICON = `data:image/svg+xml,${encodeURIComponent('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#2456c7"/><path d="M4 4l4 5 4-5M8 9v4" stroke="#fff" stroke-width="2" fill="none"/></svg>')}`;

export interface UiOptions {
  auth?: boolean;
}

function pageHtml(manifest: { script: string; style: string }, body: { auth: boolean; features: string[] }): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Yoke</title>
<link rel="icon" href="${ICON}">
<link rel="stylesheet" href="/-/assets/${manifest.style}">
<script type="module" src="/-/assets/${manifest.script}"></script>
</head>
<body data-auth="${body.auth ? 'on' : 'off'}" data-features="${body.features.join(' ')}">
<div id="app"><noscript>Yoke's web interface needs JavaScript. The API is at <a href="/swagger-ui">/swagger-ui</a>.</noscript></div>
</body>
</html>
`;
}

export function uiRoutes(app: FastifyInstance, options: UiOptions = {}) {
  // Loaded on first use: the build module brings esbuild in only when it has to build.
  const build = () => import('../../../web/build.js');

  // The wildcard below takes any length, where the API's routes refuse a segment longer than this.
  const maxSegment = app.initialConfig.routerOptions?.maxParamLength ?? app.initialConfig.maxParamLength ?? 100;
  const page = async (request: FastifyRequest<{ Params: { namespace?: string } }>, reply: FastifyReply) => {
    if (request.params.namespace !== undefined && RESERVED.has(request.params.namespace)) {
      // What the router answers when no route matches: 414 for an overlong segment, else the JSON 404.
      if (request.url.split('?')[0].split('/').some((segment) => segment.length > maxSegment)) {
        throw Object.assign(new Error(`A path segment is longer than ${maxSegment} characters`), { statusCode: 414 });
      }
      return reply.callNotFound();
    }
    const manifest = await (await build()).ensureWebBuild();
    // Data-frame routes arrive with issue 13; tables are read from the files until then.
    const features = [
      ...(app.hasRoute({ method: 'GET', url: `${REPO}/data_frames/*` }) ? ['data_frames'] : []),
      ...(app.hasRoute({ method: 'PUT', url: `${REPO}/compare/data_frames/:compare_id` }) ? ['compare_data_frames'] : []),
    ];
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('content-security-policy', CONTENT_SECURITY_POLICY)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'same-origin')
      .send(pageHtml(manifest, { auth: options.auth ?? false, features }));
  };
  const hidden = { schema: { hide: true } };
  app.get('/', hidden, page);
  app.get('/:namespace/:repo', hidden, page);
  app.get('/:namespace/:repo/*', hidden, page);

  app.get<{ Params: { '*': string } }>('/-/assets/*', hidden, async (request, reply) => {
    const name = request.params['*'];
    const extension = /^[A-Za-z0-9_-]+\.(js|css)$/.exec(name)?.[1];
    if (!extension) return reply.callNotFound();
    const { ASSETS, ensureWebBuild } = await build();
    await ensureWebBuild();
    // Assets are built compressed; send the smallest form the browser takes.
    const accepts = String(request.headers['accept-encoding'] ?? '');
    const encoding = /\bbr\b/.test(accepts) ? 'br' : /\bgzip\b/.test(accepts) ? 'gzip' : null;
    const path = join(ASSETS, encoding === 'br' ? `${name}.br` : encoding === 'gzip' ? `${name}.gz` : name);
    const info = await stat(path).catch(() => null);
    if (!info) return reply.callNotFound();
    if (encoding) reply.header('content-encoding', encoding);
    return reply
      .type(ASSET_TYPES[extension])
      .header('vary', 'accept-encoding')
      .header('content-length', info.size)
      // The name carries the content hash: a changed asset is a new name.
      .header('cache-control', 'public, max-age=31536000, immutable')
      .header('x-content-type-options', 'nosniff')
      .send(createReadStream(path));
  });
}
