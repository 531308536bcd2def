import type { Socket } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions, type RouteOptions } from 'fastify';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { BadRequest } from '../core/errors.js';
import type { Yoke } from '../services/yoke.js';
import { CODE_BY_STATUS, errorBody, handleError, MIN_OXEN_CLIENT_VERSION, OXEN_VERSION } from './envelope.js';
import { branchRoutes } from './routes/branches.js';
import { commitRoutes } from './routes/commits.js';
import { dirRoutes } from './routes/dirs.js';
import { fileRoutes } from './routes/files.js';
import { metaRoutes } from './routes/meta.js';
import { namespaceRoutes } from './routes/namespaces.js';
import { repoRoutes } from './routes/repos.js';
import { versionsUploadRoutes } from './routes/versions-upload.js';
import { uploadRoutes } from './routes/uploads.js';
import { workspaceRoutes } from './routes/workspaces.js';
import { mergeRoutes } from './routes/merge.js';
import { versionReadRoutes } from './routes/versions-read.js';
import { treeRoutes } from './routes/tree.js';
import { syncRoutes } from './routes/sync.js';
import { tokenRoutes } from './routes/tokens.js';
import { adminRoutes } from './routes/admin.js';
import { uiRoutes } from './routes/ui.js';
import { dataFrameRoutes } from './routes/data-frames.js';
import { workspaceDataFrameRoutes } from './routes/workspace-data-frames.js';
import { compareDataFrameRoutes } from './routes/compare-data-frames.js';
import { authorizeRequest } from './access.js';
import { assertJsonDepth } from './json-body.js';
import { registerMultipart } from './multipart.js';
import { noteRefusal, RequestLogController } from './request-log.js';
import { sharedCompilers } from './schemas/compilers.js';
import { documentRoute, markOptionalBodies } from './schemas/openapi.js';
import { AJV_OPTIONS, parseTextBody, validationError } from './schemas/validation.js';
import { tmpdir } from 'node:os';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';

export interface AppOptions {
  logger?: FastifyServerOptions['logger'];
  /** Largest single file accepted in a multipart upload. */
  maxFileBytes?: number;
  /** Largest decompressed size of one gzip part in a batch upload (default 1 GiB). */
  maxDecompressedBytes?: number;
  /** Directory whose filesystem /api/health reports on. */
  dataDir?: string;
  /** Require a token with a fitting scope on every route but the open ones. */
  auth?: boolean;
  /** Origins allowed to call the API from a browser (`*`: any). */
  corsOrigins?: string[];
  /** Cut off a request whose connection is silent this long (default 5 minutes). */
  idleTimeoutMs?: number;
  /**
   * Cut off a request whose body arrives slower than this on average over a window (slow-drip
   * clients that never go quite silent); 0 turns the check off. Default 1 KiB/s over 60 s.
   */
  minBodyRate?: { bytesPerSecond: number; windowMs: number };
  /** Called for every route as it is registered (tests use it to list the routes). */
  onRoute?: (route: RouteOptions) => void;
}

/**
 * An Oxen client (User-Agent `Oxen/<x.y.z>`, in any case) older than the minimum, or whose version
 * cannot be read. Other agents (curl, browsers, Postman) are not gated.
 */
export function clientIsOutOfDate(userAgent: string | undefined): boolean {
  if (!userAgent || !/oxen/i.test(userAgent) || userAgent.includes('Postman')) return false;
  const version = /^[^/]*\/(\d+)\.(\d+)\.(\d+)/.exec(userAgent);
  if (!version) return true;
  const [major, minor, patch] = MIN_OXEN_CLIENT_VERSION.split('.').map(Number);
  const [a, b, c] = version.slice(1).map(Number);
  return a !== major ? a < major : b !== minor ? b < minor : c < patch;
}

/** A whole HTTP response carrying the error envelope, for the few answers written straight to a socket. */
function rawErrorResponse(status: number, reason: string, detail: string): string {
  const body = JSON.stringify(errorBody(status, CODE_BY_STATUS[status] ?? 'bad_request', reason, detail));
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

export const SPEC_PATH = '/api/_spec/oxen_server_openapi.json';
/** How long an idle connection stays open, as announced in `Keep-Alive: timeout=…`. */
export const KEEP_ALIVE_MS = 75_000;

export async function buildApp(yoke: Yoke, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? false,
    logController: new RequestLogController(),
    // Oxen clients send many requests over one connection and large bodies; be generous.
    keepAliveTimeout: KEEP_ALIVE_MS,
    requestTimeout: 0,
    bodyLimit: 1024 * 1024,
    routerOptions: { maxParamLength: 4096, ignoreDuplicateSlashes: false },
    // Route schemas (schemas/*.ts) check requests without rewriting them; a violation is a 400 naming the field.
    ajv: { customOptions: AJV_OPTIONS },
    schemaErrorFormatter: validationError,
    schemaController: { compilersFactory: sharedCompilers },
    // Node answers an HTTP/1.1 request without Host itself, with an empty body; let it through to the
    // hook below, which answers it in JSON.
    http: { requireHostHeader: false },
    // A URL the router cannot take (bad percent-encoding, a segment over 4,096 characters) still gets
    // the JSON envelope, with the status fastify chose.
    frameworkErrors: (error, request, reply) => {
      const routerError = error as FastifyError;
      routerError.statusCode ??= 400;
      void handleError(routerError, request as FastifyRequest, reply as FastifyReply);
    },
    // What Node's HTTP parser refuses before fastify sees a request (an unknown method, headers too
    // large, no Host on HTTP/1.1, a bad Expect): answered in JSON too, then the connection closes.
    clientErrorHandler: (error, socket) => {
      if (!socket.writable) return socket.destroy();
      const code = (error as NodeJS.ErrnoException).code;
      const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'HPE_URI_TOO_LONG' ? 414 : 400;
      socket.end(rawErrorResponse(status, status === 431 ? 'Request Header Fields Too Large' : status === 414 ? 'URI Too Long' : 'Bad Request', `The request could not be read: ${error.message}`));
    },
    genReqId: (req) => {
      const inbound = req.headers['x-oxen-request-id'];
      return typeof inbound === 'string' && /^[A-Za-z0-9_-]{1,128}$/.test(inbound) ? inbound : crypto.randomUUID();
    },
  });

  // Node also closes an idle keep-alive connection once `headersTimeout` (60 s by default) passes
  // without a request, which would cut connections earlier than the `Keep-Alive: timeout=75` we
  // announce: a client reusing one at 60–75 s then races our close ("other side closed").
  app.server.headersTimeout = KEEP_ALIVE_MS + 5_000;
  // Two requests Node answers itself, outside fastify: a CONNECT (it would drop the connection without
  // a word) and an Expect other than 100-continue (an empty 417). Both get the envelope too.
  app.server.on('connect', (_request, socket: Duplex) => {
    socket.on('error', () => {});
    socket.end(rawErrorResponse(405, 'Method Not Allowed', 'CONNECT is not supported'));
  });
  app.server.on('checkExpectation', (request, response) => {
    const body = JSON.stringify(errorBody(417, 'expectation_failed', 'Expectation Failed', `Unsupported Expect: ${request.headers.expect}`));
    response.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' }).end(body);
  });

  if (options.onRoute) app.addHook('onRoute', options.onRoute);
  if (options.logger) app.addHook('onSend', noteRefusal);
  app.setErrorHandler(handleError);
  // Like Oxen, accept an empty body where JSON is optional (DELETE, PATCH) instead of failing.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    if (body === '') return done(null, undefined);
    let value: unknown;
    try {
      assertJsonDepth(body as string);
      value = JSON.parse(body as string);
    } catch (err) {
      return done(err instanceof BadRequest ? err : new BadRequest('Malformed JSON body'), undefined);
    }
    done(null, value);
  });
  // Oxen's client sends many JSON bodies with no Content-Type (or text/plain), and oxen-server reads
  // them as text: take any other body as a string, which the routes parse as JSON where they expect it.
  // Routes that stream raw bytes register their own parsers in their own scope.
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body === '' ? undefined : body));
  app.addHook('preValidation', parseTextBody);
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send(errorBody(404, 'resource_not_found', 'Not Found', `No route for ${request.method} ${request.url}`));
  });
  // The hooks every request runs take fastify's callback form: an async hook costs a promise and a
  // microtask turn per request, a measurable share of a small GET (issue 15).
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) return done(new BadRequest('An HTTP/1.1 request needs a Host header'));
    // A parameter given twice reaches the routes as an array where they take a string; oxen-server
    // (serde) refuses duplicates too.
    for (const [name, value] of Object.entries(request.query as Record<string, unknown>)) {
      if (Array.isArray(value)) return done(new BadRequest(`Query parameter ${name} is given more than once`));
    }
    done();
  });
  // Requests have no overall time limit (uploads of many gigabytes take long); a connection that goes
  // silent mid-request is cut off instead, so stalled bodies do not hold file handles for ever. Any
  // byte either way restarts the clock; between requests keepAliveTimeout applies.
  const idleMs = options.idleTimeoutMs ?? 5 * 60 * 1000;
  app.addHook('onRequest', (request, reply, done) => {
    const socket = request.raw.socket;
    const onIdle = () => {
      request.log.info({ idleMs }, 'connection silent mid-request; closed');
      socket.destroy();
    };
    socket.setTimeout(idleMs, onIdle);
    // Also takes the listener off again: a keep-alive connection serves many requests.
    reply.raw.once('finish', () => socket.setTimeout(0, onIdle));
    done();
  });
  // On close Node shuts the connections idle at that moment. One still draining a body answered early (a
  // refused upload part) or finishing a reply becomes idle later, and would hold close() for the whole
  // keep-alive time (75 s): close each as soon as it is idle. Node does not count a connection that has not
  // sent a byte yet as idle (it would wait for its headers timeout, 60 s and more): those are closed too.
  const silent = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    silent.add(socket);
    socket.once('data', () => silent.delete(socket));
    socket.once('close', () => silent.delete(socket));
  });
  app.addHook('preClose', (done) => {
    const sweep = setInterval(() => {
      app.server.closeIdleConnections();
      for (const socket of silent) socket.destroy();
    }, 50);
    app.server.once('close', () => clearInterval(sweep));
    done();
  });
  // A body that trickles in (a byte every few minutes keeps the idle clock from ever running out)
  // must still average a minimum rate over each window while it arrives. Once the body is complete
  // the server may work on it for long (assembling a large upload): that is not the client's delay.
  const { bytesPerSecond: minRate, windowMs: rateWindowMs } = options.minBodyRate ?? { bytesPerSecond: 1024, windowMs: 60_000 };
  if (minRate > 0) {
    const minBytes = (minRate * rateWindowMs) / 1000;
    app.addHook('onRequest', (request, reply, done) => {
      const raw = request.raw;
      const socket = raw.socket;
      if (raw.complete || (raw.headers['content-length'] === undefined && raw.headers['transfer-encoding'] === undefined)) return done();
      let readBefore = socket.bytesRead;
      const timer = setInterval(() => {
        if (raw.complete) return clearInterval(timer);
        const read = socket.bytesRead - readBefore;
        readBefore = socket.bytesRead;
        if (read >= minBytes) return;
        clearInterval(timer);
        request.log.info({ bytesRead: read, windowMs: rateWindowMs, minBytesPerSecond: minRate }, 'request body arriving below the minimum rate; connection closed');
        socket.destroy();
      }, rateWindowMs);
      timer.unref();
      reply.raw.once('close', () => clearInterval(timer));
      done();
    });
  }
  app.addHook('onRequest', (request, reply, done) => {
    if (!request.url.startsWith('/api/repos') || !clientIsOutOfDate(request.headers['user-agent'])) return done();
    // As oxen-server does: an Oxen client older than the minimum speaks a protocol we no longer serve
    // (a hook that answers does not call done).
    const detail = `Oxen client out of date: this server requires version >= ${MIN_OXEN_CLIENT_VERSION}.`;
    reply.status(426).send(errorBody(426, 'update_required', 'Update Required', detail));
  });
  // CORS first, so that a refused request still tells the browser why; preflights are answered there.
  if (options.corsOrigins && options.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: options.corsOrigins.includes('*') ? true : options.corsOrigins,
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'QUERY'],
      allowedHeaders: ['authorization', 'content-type', 'range', 'x-oxen-request-id'],
      exposedHeaders: ['oxen-version', 'x-oxen-request-id', 'content-range', 'oxen-revision-id'],
      maxAge: 600,
    });
  }
  // Before any body is read: a multipart upload stores blobs while it is parsed, so a request that may
  // not write must be stopped here, not in its route.
  if (options.auth) app.addHook('onRequest', async (request, reply) => authorizeRequest(yoke, request, reply));
  // One onSend hook for every reply (each hook is a dispatch per request on the hot path).
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('oxen-version', OXEN_VERSION);
    reply.header('x-oxen-request-id', request.id);
    // A reply sent once a handler began reading its request's body but stopped (an upload refused
    // part-way) leaves the rest unread: Node drains only bodies nobody began to read, so the next request
    // on the kept-alive connection would wait behind it for ever. As fastify does when a body parser
    // fails, close the connection after the reply instead.
    if (!request.raw.complete && request.raw.readableDidRead) reply.header('connection', 'close');
    done(null, payload);
  });

  await app.register(swagger, {
    openapi: {
      info: { title: 'Yoke (Oxen-compatible) API', version: '0.1.0', description: "Oxen's HTTP API as served by Yoke" },
      components: { securitySchemes: { token: { type: 'http', scheme: 'bearer', description: 'A token from `yoke token create` or POST /api/tokens' } } },
      ...(options.auth ? { security: [{ token: [] }] } : {}),
    },
    transform: documentRoute,
    transformObject: markOptionalBodies,
  });
  await app.register(swaggerUi, { routePrefix: '/swagger-ui' });
  app.get(SPEC_PATH, { schema: { hide: true } }, async () => app.swagger());

  registerMultipart(app, options.maxFileBytes ?? 64 * 1024 ** 3);

  metaRoutes(app, yoke, options.dataDir);
  namespaceRoutes(app, yoke);
  repoRoutes(app, yoke);
  branchRoutes(app, yoke);
  fileRoutes(app, yoke, { auth: options.auth });
  dirRoutes(app, yoke);
  commitRoutes(app, yoke);
  versionsUploadRoutes(app, yoke, { maxDecompressedBytes: options.maxDecompressedBytes });
  uploadRoutes(app, yoke);
  versionReadRoutes(app, yoke);
  dataFrameRoutes(app, yoke);
  workspaceDataFrameRoutes(app, yoke);
  workspaceRoutes(app, yoke, { maxDecompressedBytes: options.maxDecompressedBytes });
  mergeRoutes(app, yoke);
  compareDataFrameRoutes(app, yoke);
  treeRoutes(app, yoke);
  syncRoutes(app, yoke, { scratchDir: join(options.dataDir ?? tmpdir(), 'tmp') });
  tokenRoutes(app, yoke);
  adminRoutes(app, yoke);
  uiRoutes(app, { auth: options.auth });
  return app;
}
