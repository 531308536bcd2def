/**
 * Domain errors. Each carries the HTTP status it maps to and an Oxen-style code, so the
 * server's single error mapper can produce the envelope without knowing every failure.
 */
export type ErrorCode =
  | 'bad_request'
  | 'resource_not_found'
  | 'conflict'
  | 'resource_already_exists'
  | 'payload_too_large'
  | 'unprocessable'
  | 'unauthorized'
  | 'forbidden'
  | 'internal_server_error';

export class YokeError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly code: ErrorCode,
    readonly title: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class BadRequest extends YokeError {
  constructor(message: string, extra: Record<string, unknown> = {}) {
    super(400, 'bad_request', 'Bad Request', message, extra);
  }
}

export class NotFound extends YokeError {
  constructor(message: string, extra: Record<string, unknown> = {}) {
    super(404, 'resource_not_found', 'Not Found', message, extra);
  }
}

export class Conflict extends YokeError {
  constructor(message: string, extra: Record<string, unknown> = {}) {
    super(409, 'conflict', 'Conflict', message, extra);
  }
}

export class Unprocessable extends YokeError {
  constructor(message: string, extra: Record<string, unknown> = {}) {
    super(422, 'unprocessable', 'Unprocessable Entity', message, extra);
  }
}

/** No token, or one that is unknown, revoked or expired. */
export class Unauthorized extends YokeError {
  constructor(message: string) {
    super(401, 'unauthorized', 'Unauthorized', message);
  }
}

/** A valid token whose scopes do not cover the request. */
export class Forbidden extends YokeError {
  constructor(message: string) {
    super(403, 'forbidden', 'Forbidden', message);
  }
}

export class PayloadTooLarge extends YokeError {
  constructor(message: string) {
    super(413, 'payload_too_large', 'Payload Too Large', message);
  }
}

/**
 * A client's value as an error message shows it: a string as it is, anything else as JSON, cut to
 * 200 characters. Never throws, where String() does (`{"toString": 1}` has no usable toString).
 */
export function shown(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** A path in a repository is malformed or escapes the repository root. */
export class InvalidPath extends BadRequest {}

/** A content hash did not match the bytes it names. */
export class HashMismatch extends BadRequest {
  constructor(readonly expected: string, readonly actual: string) {
    super(`Hash mismatch: expected ${expected}, bytes hash to ${actual}`, { expected, actual });
  }
}
