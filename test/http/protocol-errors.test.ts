import { strict as assert } from 'node:assert';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { assertEnvelope, startTestServer, type TestServer } from '../helpers/server.js';

/** Sends raw bytes and reads everything until the server closes or goes quiet. */
function rawExchange(server: TestServer, request: string): Promise<string> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.write(request));
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk) => {
      text += chunk;
      // One complete response is enough (a keep-alive connection would not close).
      const [head, body = ''] = text.split('\r\n\r\n');
      const length = /content-length:\s*(\d+)/i.exec(head);
      if (length && body.length >= Number(length[1])) socket.destroy();
    });
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy());
  });
}

function parse(text: string): { status: number; body: any } {
  const [head, ...rest] = text.split('\r\n\r\n');
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), body: JSON.parse(rest.join('\r\n\r\n')) };
}

describe('requests the router or the HTTP parser refuses still get the JSON envelope (issue 11)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  const cases: Array<[string, string, number]> = [
    ['bad percent-encoding', 'GET /api/repos/%zz/r HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['a path segment over 4,096 characters', `GET /api/repos/${'a'.repeat(5000)}/r HTTP/1.1\r\nHost: x\r\n\r\n`, 414],
    ['an unknown method', 'FOO /api/version HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['headers too large', `GET /api/version HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`, 431],
    ['HTTP/1.1 without Host', 'GET /api/version HTTP/1.1\r\n\r\n', 400],
    ['a malformed request line', 'GARBAGE\r\n\r\n', 400],
  ];
  for (const [what, request, status] of cases) {
    it(what, async () => {
      const reply = parse(await rawExchange(server, request));
      assert.equal(reply.status, status);
      assertEnvelope(reply.body, 'error');
      assert.equal((await server.json('/api/version')).status, 200);
    });
  }
});

describe('a request whose connection goes silent is cut off (issue 11)', () => {
  it('closes a stalled upload after the idle timeout, keeps serving, and leaves quick keep-alive requests alone', async () => {
    const server = await startTestServer({ idleTimeoutMs: 400 });
    try {
      const url = new URL(server.url);
      await server.json('/api/repos', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'idle', name: 'repo' }) });
      const started = Date.now();
      const closed = await new Promise<number>((resolve, reject) => {
        const socket = connect(Number(url.port), url.hostname, () => {
          // Promises 1,000 bytes of a chunk, sends 10, then nothing.
          socket.write('PUT /api/repos/idle/repo/versions/abc123/chunks?offset=0 HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n0123456789');
        });
        socket.on('close', () => resolve(Date.now() - started));
        socket.on('error', () => {});
        setTimeout(() => reject(new Error('the stalled connection was never closed')), 10_000).unref();
      });
      assert.ok(closed >= 350 && closed < 5000, `closed after ${closed} ms`);
      assert.equal((await server.json('/api/version')).status, 200);
      // Several requests over one connection, each quicker than the timeout, with pauses between them shorter too.
      for (let i = 0; i < 3; i++) {
        assert.equal((await server.fetch('/api/namespaces')).status, 200);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await server.stop();
    }
  });
});
