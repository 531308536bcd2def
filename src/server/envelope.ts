import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { YokeError } from '../core/errors.js';
import { acceptedMediaTypes } from './schemas/openapi.js';

/** The Oxen version we speak; clients compare it against their minimum. */
export const OXEN_VERSION = '0.54.0';
export const MIN_OXEN_CLIENT_VERSION = '0.36.0';

export type StatusMessage =
  | 'resource_found'
  | 'resource_created'
  | 'resource_updated'
  | 'resource_deleted';

/** Every JSON body carries `status`, `status_message` and `oxen_version` (COMPAT: envelope). */
export function ok<T extends object>(statusMessage: StatusMessage, body: T) {
  return { status: 'success' as const, status_message: statusMessage, oxen_version: OXEN_VERSION, ...body };
}

export const CODE_BY_STATUS: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'resource_not_found',
  405: 'method_not_allowed',
  406: 'bad_request',
  409: 'conflict',
  411: 'bad_request',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  416: 'range_not_satisfiable',
  417: 'expectation_failed',
  422: 'unprocessable',
  429: 'too_many_requests',
};

export function errorBody(status: number, code: string, title: string, detail: string, extra: Record<string, unknown> = {}) {
  const { type, ...rest } = extra;
  return {
    status: 'error' as const,
    status_message: code,
    status_description: detail,
    error: { type: typeof type === 'string' ? type : code, title, detail, ...rest },
    oxen_version: OXEN_VERSION,
  };
}

/** fastify's bare 415 (a Content-Type no parser takes, or not a media type at all), with what the route takes. */
function unsupportedMediaType(request: FastifyRequest): string {
  const given = request.headers['content-type'];
  const accepted = acceptedMediaTypes(request.routeOptions.schema);
  const takes = accepted.length > 0 ? accepted.join(' or ') : 'application/json';
  return `Unsupported Media Type: Content-Type ${JSON.stringify(given ?? '')} is not one this route reads (a media type is type/subtype); it takes ${takes}`;
}

/**
 * The single error mapper. Domain errors carry their status; framework and parser errors with a
 * 4xx status keep it; anything else is ours and answers 500 (and is logged).
 */
export function handleError(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof YokeError) {
    return reply.status(error.httpStatus).send(errorBody(error.httpStatus, error.code, error.title, error.message, error.extra));
  }
  const fastifyError = error as FastifyError;
  let status = fastifyError.statusCode ?? 500;
  if (fastifyError.validation) status = 400;
  // A multipart body that is not multipart is the client's mistake: 400, not 406.
  if (status === 406) status = 400;
  if (status >= 400 && status < 500) {
    const code = CODE_BY_STATUS[status] ?? 'bad_request';
    const title = code.split('_').map((w) => w[0].toUpperCase() + w.slice(1)).join(' ');
    return reply.status(status).send(errorBody(status, code, title, status === 415 ? unsupportedMediaType(request) : error.message));
  }
  const errno = (error as NodeJS.ErrnoException).code;
  // A write past the largest file the file system can hold comes from an offset the client chose.
  if (errno === 'EFBIG') return reply.status(400).send(errorBody(400, 'bad_request', 'Bad Request', 'The data would go past the largest file this server can store'));
  // SQLITE_FULL: SQLite's own report of ENOSPC (better-sqlite3 puts it in `code`), e.g. the WAL cannot grow.
  if (errno === 'ENOSPC' || errno === 'EDQUOT' || errno === 'SQLITE_FULL') {
    request.log.error({ err: error }, 'out of disk space');
    return reply.status(507).send(errorBody(507, 'insufficient_storage', 'Insufficient Storage', 'The server has no space left to store this'));
  }
  // PostgreSQL text cannot hold NUL (22021, character_not_in_repertoire): the NUL came from the client.
  if (errno === '22021') return reply.status(400).send(errorBody(400, 'bad_request', 'Bad Request', 'Names and text fields cannot contain the NUL character'));
  request.log.error({ err: error }, 'unhandled error');
  return reply.status(500).send(errorBody(500, 'internal_server_error', 'Internal Server Error', 'Internal server error'));
}
