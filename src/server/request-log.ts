import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';

/** A signed file link's credential is its `link` query parameter (docs/UI.md): it never reaches a log. */
const LINK_PARAM = /([?&]link=)[^&#\s"]*/g;

export function redactLinks(text: string): string {
  return text.replace(LINK_PARAM, '$1[redacted]');
}

/** fastify's own `req` log fields, with a signed link's credential taken out of the URL. */
export function requestLogFields(request: FastifyRequest) {
  return {
    method: request.method,
    url: redactLinks(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

/** Why a request was refused (its 4xx error envelope), kept from onSend until the request is logged. */
const refusals = new WeakMap<FastifyReply, { type: string; message: string }>();

/** Largest 4xx body read for its reason: error envelopes are small; anything larger is not one. */
const MAX_REASON_BODY = 64 * 1024;

/** onSend hook: notes the type and message of a 4xx error envelope, whichever code sent it. */
export async function noteRefusal(_request: FastifyRequest, reply: FastifyReply, payload: unknown) {
  if (reply.statusCode < 400 || reply.statusCode >= 500 || typeof payload !== 'string' || payload.length > MAX_REASON_BODY) return;
  try {
    const body = JSON.parse(payload);
    const type = body?.error?.type ?? body?.status_message;
    const message = body?.error?.detail ?? body?.status_description;
    if (typeof type === 'string' && typeof message === 'string') refusals.set(reply, { type, message: redactLinks(message) });
  } catch {
    // Not an error envelope: the status alone is logged.
  }
}

/**
 * fastify's request log lines, with two changes: a 4xx names its reason (`error.type`, `error.message`;
 * never a header, and a link's credential redacted), and a reply stream cut off by the client reads as
 * aborted only when its body had not all been handed over.
 */
export class RequestLogController extends LogController {
  /** Replies already logged as finished (a close and a finish may both report one). */
  private readonly logged = new WeakSet<FastifyReply>();

  requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request) || this.logged.has(reply)) return;
    this.logged.add(reply);
    const refusal = refusals.get(reply);
    if (error) reply.log.error({ res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored');
    else if (refusal) reply.log.info({ res: reply, error: refusal, responseTime: reply.elapsedTime }, `request refused: ${refusal.message}`);
    else reply.log.info({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }

  streamError(error: Error, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    if ((error as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') return super.streamError(error, request, reply);
    // Every byte was handed to the kernel (the body ended, nothing is left in Node's buffers): the client
    // was sent it all, whichever of the connection's close and the response's finish is reported first.
    const res = reply.raw;
    if (res.writableEnded && res.writableLength === 0) return this.requestCompleted(null, request, reply);
    if (this.logged.has(reply)) return;
    this.logged.add(reply);
    reply.log.info({ res: reply, responseTime: reply.elapsedTime }, 'response aborted: the client closed the connection before the whole body was sent');
  }
}
