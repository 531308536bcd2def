import { BadRequest } from '../core/errors.js';

/**
 * Oxen reads many JSON bodies as raw text whatever the Content-Type, so a body may arrive parsed
 * (application/json) or as a string (text/plain, none). Returns the parsed value.
 */
export function jsonValue(body: unknown): unknown {
  if (typeof body !== 'string') return body;
  try {
    return JSON.parse(body);
  } catch {
    throw new BadRequest('Invalid request body: not JSON');
  }
}

/** A JSON object body; with `optional`, an absent or empty body is `{}`. */
export function jsonObject(body: unknown, { optional = false } = {}): Record<string, unknown> {
  if (optional && (body === undefined || body === null || body === '')) return {};
  const value = jsonValue(body);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new BadRequest('Invalid request body: expected a JSON object');
  return value as Record<string, unknown>;
}
