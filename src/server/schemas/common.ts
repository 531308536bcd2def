/**
 * Building blocks of the route schemas. One schema per route does three jobs:
 * - fastify validates `params`, `querystring` and `body` with it (ajv, set in app.ts never to coerce or
 *   rewrite a request: query and path parameters are described as the strings they arrive as, and the
 *   handlers parse them);
 * - fastify serializes the reply with `response` (fast-json-stringify, which drops every property a schema
 *   does not name and coerces a value to the named type, `null` to `""` under `string`): so each reply
 *   shape is described exactly, nullable where null occurs, and open (`additionalProperties: true`) only
 *   where it varies;
 * - @fastify/swagger publishes all of it as the OpenAPI document.
 * Bodies a handler streams itself (multipart, raw bytes) are described for the document only: `streamedBody`.
 */
import { OXEN_VERSION } from '../envelope.js';

export type JsonSchema = Record<string, unknown>;

declare module 'fastify' {
  interface FastifySchema {
    /**
     * A body the handler reads itself, as a stream (multipart forms, raw bytes): published in the OpenAPI
     * document beside any JSON `body`, never validated (see `documentRoute` in openapi.ts).
     */
    streamedBody?: { content: Record<string, { schema: JsonSchema }> };
  }
}

const described = (schema: JsonSchema, description?: string): JsonSchema => (description === undefined ? schema : { ...schema, description });

export const text = (description?: string) => described({ type: 'string' }, description);
export const integer = (description?: string) => described({ type: 'integer' }, description);
export const number = (description?: string) => described({ type: 'number' }, description);
export const boolean = (description?: string) => described({ type: 'boolean' }, description);
/**
 * A field a domain rule reads from any JSON value and refuses with a message saying exactly what is wrong
 * (branch, repository and workspace names, sizes, durations, scopes): ajv leaves it to that rule, and the
 * document shows the type it should have (`documentedType` becomes `type` there, see openapi.ts).
 */
export const checkedByHandler = (type: string, description?: string) => described({ documentedType: type }, description);
/** Bytes in the OpenAPI document (Swagger UI offers a file picker for them). */
export const binary = (description?: string) => described({ type: 'string', format: 'binary' }, description);

/** The same schema, also allowing `null`. */
export function nullable(schema: JsonSchema): JsonSchema {
  return { ...schema, type: [schema.type, 'null'].flat() };
}

export function arrayOf(items: JsonSchema, description?: string): JsonSchema {
  return described({ type: 'array', items }, description);
}

/**
 * An object with these properties. `required: 'all'` for shapes built with every property set (a missing
 * one then fails loudly instead of vanishing); `open` keeps properties the schema does not name.
 */
export function object(properties: Record<string, JsonSchema>, options: { required?: string[] | 'all'; open?: boolean; description?: string } = {}): JsonSchema {
  const required = options.required === 'all' ? Object.keys(properties) : options.required;
  return described(
    { type: 'object', properties, ...(required?.length ? { required } : {}), ...(options.open ? { additionalProperties: true } : {}) },
    options.description,
  );
}

/** Any JSON object: shapes that are wide or vary (reports, Oxen's fields Yoke leaves null). */
export const anyObject = (description?: string) => described({ type: 'object', additionalProperties: true }, description);

/** The success envelope every JSON reply carries (`ok` in ../envelope.ts), around the route's own fields. */
export function envelope(properties: Record<string, JsonSchema>, description = 'Success'): JsonSchema {
  return object(
    {
      status: { type: 'string', enum: ['success'] },
      status_message: text('resource_found, resource_created, resource_updated or resource_deleted'),
      oxen_version: text(`The Oxen API version the server speaks (${OXEN_VERSION})`),
      ...properties,
    },
    { required: ['status', 'status_message', 'oxen_version'], description },
  );
}

/** The error envelope (`errorBody` in ../envelope.ts). Some errors add fields to `error` (conflicts, missing_hashes, …). */
function errorEnvelope(description: string): JsonSchema {
  return object(
    {
      status: { type: 'string', enum: ['error'] },
      status_message: text('The error code: bad_request, resource_not_found, conflict, payload_too_large, …'),
      status_description: text('What went wrong'),
      error: object(
        { type: text('The error type: the code, or a particular case such as merge_conflict or version_blobs_missing'), title: text(), detail: text() },
        { required: 'all', open: true },
      ),
      oxen_version: text(),
    },
    { required: 'all', description },
  );
}

const CLIENT_ERROR = errorEnvelope('The request was refused: the error envelope');
const SERVER_ERROR = errorEnvelope('The server failed (500) or has no space left (507): the error envelope');

/** A route's `response`: its 200 reply, any others it sends, and the error envelope for every 4xx and 5xx. */
export function replies(success: JsonSchema, others: Record<number, JsonSchema> = {}): Record<string, JsonSchema> {
  return { 200: success, ...others, '4xx': CLIENT_ERROR, '5xx': SERVER_ERROR };
}

/** A reply of raw bytes (fastify never serializes a stream; the schema is for the document). */
export function bytesReply(description: string, mediaType = '*/*'): JsonSchema {
  return { description, content: { [mediaType]: { schema: binary() } } };
}

export const tarGzReply = (description: string) => bytesReply(description, 'application/gzip');

/** A multipart form, for `streamedBody`. */
export function multipartBody(fields: Record<string, JsonSchema>, options: { required?: string[]; description?: string } = {}) {
  return { content: { 'multipart/form-data': { schema: object(fields, options) } } };
}

/** A raw body, for `streamedBody`. */
export function rawBody(description: string, mediaType = 'application/octet-stream') {
  return { content: { [mediaType]: { schema: binary(description) } } };
}

/** The path parameters of a repository route, plus the route's own. */
export function repoParams(extra: Record<string, JsonSchema> = {}): JsonSchema {
  return object({ namespace: text('Namespace'), repo_name: text('Repository name'), ...extra }, { required: 'all' });
}

/** A repository route ending in a wildcard: what the rest of the path names. */
export const repoWildcardParams = (rest: string) => repoParams({ '*': text(rest) });

/**
 * Query parameters, all optional strings (as they arrive) unless listed in `required`; the description
 * says what the handler accepts.
 */
export function query(parameters: Record<string, string>, required: string[] = []): JsonSchema {
  return object(Object.fromEntries(Object.entries(parameters).map(([name, description]) => [name, text(description)])), { required });
}

export const PAGE_QUERY = {
  page: 'Page number, from 1 (0 is read as 1; default 1)',
  page_size: 'Entries per page (default 100, at most 10000)',
};
