import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';

/**
 * Sends a generated tar.gz. Its status is out before the last byte is made, so a failure while
 * producing it can only cut the body short (the client then sees a broken archive); a client
 * that goes away is logged as such, not as an error.
 */
export function sendTarGz(request: FastifyRequest, reply: FastifyReply, what: string, make: (onFailure: (err: Error, consumerGone: boolean) => void) => Readable) {
  const body = make((err, consumerGone) => {
    if (consumerGone) {
      request.log.info({ err: err.message }, `${what}: client went away`);
      return;
    }
    request.log.error({ err }, `${what} failed mid-stream; the response is truncated`);
    reply.raw.destroy();
  });
  return reply.header('content-type', 'application/gzip').send(body);
}
