import { BadRequest } from '../core/errors.js';

/** Deepest nesting of arrays and objects a JSON body may have: serde_json's limit, which oxen-server applies. */
export const MAX_JSON_DEPTH = 128;

/**
 * Refuses (400) JSON text nested deeper than MAX_JSON_DEPTH before it is parsed: code that walks a
 * value recursively (JSON.stringify, String) overflows the stack on one nested thousands deep.
 */
export function assertJsonDepth(text: string): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_JSON_DEPTH) throw new BadRequest(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
}

/**
 * Oxen reads many JSON bodies as raw text whatever the Content-Type, so a body may arrive parsed
 * (application/json) or as a string (text/plain, none). Returns the parsed value.
 */
export function jsonValue(body: unknown): unknown {
  if (typeof body !== 'string') return body;
  assertJsonDepth(body);
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
