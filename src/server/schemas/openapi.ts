/** Adjustments @fastify/swagger makes while it builds the OpenAPI document from the route schemas. */
import type { FastifySchema } from 'fastify';
import type { SwaggerTransform, SwaggerTransformObject } from '@fastify/swagger';

type MediaMap = Record<string, { schema: unknown }>;

const isMediaMap = (body: unknown): body is { content: MediaMap } => typeof body === 'object' && body !== null && 'content' in body;

/** A copy of a schema with each `documentedType` (a type left to the handler to check) as `type`. */
function withDocumentedTypes(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withDocumentedTypes);
  if (typeof schema !== 'object' || schema === null) return schema;
  return Object.fromEntries(Object.entries(schema).map(([key, value]) => [key === 'documentedType' ? 'type' : key, withDocumentedTypes(value)]));
}

/** The media types a route's schema says it takes (a JSON body, a streamed body), for a 415 to name. */
export function acceptedMediaTypes(schema: FastifySchema | undefined): string[] {
  const { streamedBody, body } = (schema ?? {}) as { streamedBody?: { content: MediaMap }; body?: unknown };
  const json = body === undefined ? [] : isMediaMap(body) ? Object.keys(body.content) : ['application/json'];
  return [...json, ...Object.keys(streamedBody?.content ?? {})];
}

/**
 * `transform`: a route's `streamedBody` (multipart, raw bytes) is published as its request body, beside the
 * JSON body it may also take (fastify itself never sees it, so it never validates a stream); the types
 * left to handlers are published as types.
 */
export const documentRoute: SwaggerTransform = ({ schema, url }) => {
  if (!schema) return { schema, url };
  const { streamedBody, body, ...rest } = schema;
  const json: MediaMap = body === undefined ? {} : isMediaMap(body) ? body.content : { 'application/json': { schema: body } };
  const content = { ...json, ...streamedBody?.content };
  const documented = Object.keys(content).length === 0 ? rest : { ...rest, body: { content: withDocumentedTypes(content) } };
  return { schema: documented as FastifySchema, url };
};

type Operation = { requestBody?: { required?: boolean; content?: Record<string, { schema?: { nullable?: boolean } }> } };

/**
 * `transformObject`: @fastify/swagger marks every request body required; a body whose schema also
 * accepts null (the route reads it as absent) is optional.
 */
export const markOptionalBodies: SwaggerTransformObject = (document) => {
  const spec = 'openapiObject' in document ? document.openapiObject : document.swaggerObject;
  for (const operations of Object.values((spec.paths ?? {}) as Record<string, Record<string, Operation>>)) {
    for (const operation of Object.values(operations)) {
      const media = Object.values(operation?.requestBody?.content ?? {});
      if (media.some((m) => m.schema?.nullable === true)) operation.requestBody!.required = false;
    }
  }
  return spec;
};
