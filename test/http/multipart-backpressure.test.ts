import { strict as assert } from 'node:assert';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { multipartParts, registerMultipart } from '../../src/server/multipart.js';

/**
 * A body of many small parts is read only as fast as its parts are consumed (issue 15, ingest): busboy used to
 * parse a body of small files as fast as it arrived and queue every part, so a slow consumer (writes waiting for
 * the disk) held the whole body in memory.
 */

const BOUNDARY = 'BackpressureBoundary';
const PARTS = 5_000;
const PART_BYTES = 4096;

function body(): Buffer {
  const pieces: Buffer[] = [];
  for (let i = 0; i < PARTS; i++) {
    pieces.push(Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file[]"; filename="f${i}"\r\n\r\n`), Buffer.alloc(PART_BYTES, i % 251), Buffer.from('\r\n'));
  }
  pieces.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(pieces);
}

describe('multipart bodies of many small parts', () => {
  let app: FastifyInstance;
  let url: string;

  before(async () => {
    app = Fastify();
    registerMultipart(app, 1024 ** 3);
    // Consumes slowly, and notes how far the body has been read beyond the parts consumed.
    app.post('/parts', async (request) => {
      let received = 0;
      request.raw.on('data', (chunk: Buffer) => (received += chunk.length));
      let consumed = 0;
      let count = 0;
      let aheadMost = 0;
      for await (const part of multipartParts(request)) {
        if (part.type !== 'file') continue;
        for await (const chunk of part) consumed += chunk.length;
        count += 1;
        aheadMost = Math.max(aheadMost, received - consumed);
        if (count % 50 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      return { count, consumed, aheadMost };
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/parts`;
  });

  after(() => app.close());

  it('the body is read at most a little ahead of the parts consumed', async () => {
    const sent = body();
    const reply = await new Promise<{ count: number; consumed: number; aheadMost: number }>((resolve, reject) => {
      const req = request(url, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`${res.statusCode}: ${text}`))));
      });
      req.on('error', reject);
      req.end(sent);
    });
    assert.equal(reply.count, PARTS);
    assert.equal(reply.consumed, PARTS * PART_BYTES);
    // The body is 20 MiB; a few socket reads (64 KiB each) of read-ahead are expected, not the whole of it.
    assert.ok(reply.aheadMost < 1024 * 1024, `the body was read ${reply.aheadMost} bytes ahead of the parts consumed`);
  });
});
