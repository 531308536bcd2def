/** How requests meet their schemas: text bodies parsed first, violations answered as readable 400s. */
import type { FastifyRequest, FastifySchemaValidationError } from 'fastify';
import { BadRequest } from '../../core/errors.js';
import { jsonValue } from '../json-body.js';

/**
 * Oxen's clients send many JSON bodies with no Content-Type or as text/plain, which the catch-all parser
 * keeps as text: a route with a body schema gets such a body parsed here (preValidation), so its schema
 * checks the JSON either way. A callback hook, not async: it runs on every request.
 */
export function parseTextBody(request: FastifyRequest, _reply: unknown, done: (err?: Error) => void): void {
  if (typeof request.body !== 'string' || request.routeOptions.schema?.body === undefined) return done();
  try {
    request.body = jsonValue(request.body);
  } catch (err) {
    return done(err as Error);
  }
  done();
}

/**
 * fastify's ajv options. Schemas check requests and never rewrite them (fastify's defaults coerce types,
 * fill in defaults and strip properties): query and path parameters are described as the strings they
 * are, and handlers parse them. `documentedType` is an annotation (common.ts: checkedByHandler).
 */
export const AJV_OPTIONS = { coerceTypes: false, useDefaults: false, removeAdditional: false, allowUnionTypes: true, keywords: ['documentedType'] };

const TYPE_NAMES: Record<string, string> = {
  object: 'a JSON object',
  array: 'an array',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  null: 'null',
};

function typeNames(type: unknown): string {
  const names = [type].flat().flatMap((t) => String(t).split(',')).map((t) => TYPE_NAMES[t] ?? t);
  return names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
}

/** `/files/0/path` → `files[0].path` */
function fieldName(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, segment) => (/^\d+$/.test(segment) ? `${path}[${segment}]` : path === '' ? segment : `${path}.${segment}`), '');
}

/**
 * fastify's `schemaErrorFormatter`: the first violation as a 400 in the project's envelope, named the way
 * a client wrote it (`Invalid request body: new_name is required`, `Invalid request body: files[0].path
 * must be a string`, `Query parameter offset is required`).
 */
export function validationError(errors: FastifySchemaValidationError[], part: string): Error {
  const [first] = errors;
  const field = fieldName(first.instancePath);
  const named = (name: string) => (part === 'querystring' ? `Query parameter ${name}` : part === 'params' ? `Path parameter ${name}` : name);
  const prefix = part === 'body' ? 'Invalid request body: ' : '';
  const problem = first.keyword === 'type' ? `must be ${typeNames(first.params.type)}` : first.message ?? 'is invalid';
  if (first.keyword === 'required') {
    const missing = String(first.params.missingProperty);
    return new BadRequest(`${prefix}${named(field === '' ? missing : `${field}.${missing}`)} is required`);
  }
  if (field === '') return new BadRequest(part === 'body' && first.keyword === 'type' ? `${prefix}expected ${typeNames(first.params.type)}` : `Invalid ${part}: ${problem}`);
  return new BadRequest(`${prefix}${named(field)} ${problem}`);
}
