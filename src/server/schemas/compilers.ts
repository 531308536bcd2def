/**
 * fastify's own schema compilers (ajv for requests, fast-json-stringify for replies), with each compiled
 * function shared by every route and every app of the process whose schema is the same: the routes
 * repeat the error envelope, path parameters and views, and compiling every copy again made each start
 * of the server ~0.2 s slower.
 */
import { createRequire } from 'node:module';
import type { FastifyServerOptions } from 'fastify';

type RouteDefinition = { schema?: unknown; httpPart?: string; httpStatus?: string; contentType?: string };
type CompilerFactory = (externalSchemas: unknown, options: unknown) => (route: RouteDefinition) => unknown;

// The compilers fastify would load itself, resolved from fastify's own dependencies (same versions).
const fromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'));
const defaultValidators = (fromFastify('@fastify/ajv-compiler') as () => CompilerFactory)();
const defaultSerializers = (fromFastify('@fastify/fast-json-stringify-compiler') as () => CompilerFactory)();

function memoized(factory: CompilerFactory): CompilerFactory {
  const compiled = new Map<string, unknown>();
  return (externalSchemas, options) => {
    const compile = factory(externalSchemas, options);
    // What a compiled function depends on: the compiler's options and shared schemas, and the schema.
    const context = JSON.stringify([externalSchemas, options]);
    return (route) => {
      const key = `${context}\0${route.httpPart ?? ''}\0${JSON.stringify(route.schema)}`;
      if (!compiled.has(key)) compiled.set(key, compile(route));
      return compiled.get(key);
    };
  };
}

/** fastify's `schemaController.compilersFactory`. */
export const sharedCompilers = {
  buildValidator: memoized(defaultValidators),
  buildSerializer: memoized(defaultSerializers),
} as unknown as NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>;
