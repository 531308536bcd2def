import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { hashBuffer } from '../../src/core/hash.js';
import { createRepo, startTestServer, type TestServer } from '../helpers/server.js';

/** Sends a request head, then the body in `pieces` one `everyMs` apart; resolves with the status line, or 'closed' if the server hung up first. */
function drip(server: TestServer, path: string, pieces: Buffer[], everyMs: number): Promise<{ outcome: string; ms: number }> {
  const url = new URL(server.url);
  const length = pieces.reduce((n, p) => n + p.length, 0);
  const started = Date.now();
  return new Promise((resolve) => {
    let answer = '';
    let timer: NodeJS.Timeout | undefined;
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(`PUT ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\n\r\n`);
      let next = 0;
      timer = setInterval(() => {
        if (next === pieces.length || socket.destroyed) return clearInterval(timer);
        socket.write(pieces[next++]);
      }, everyMs);
    });
    socket.on('data', (c) => (answer += c.toString()));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ outcome: answer === '' ? 'closed' : answer.split('\r\n')[0], ms: Date.now() - started });
    });
    socket.on('end', () => socket.end());
    // A complete answer on a keep-alive connection: hang up ourselves.
    socket.on('data', () => {
      if (/\r\n\r\n[\s\S]*\}$/.test(answer)) socket.end();
    });
  });
}

describe('a request body that trickles in below the minimum rate is cut off (issue 11)', () => {
  let server: TestServer;
  before(async () => {
    // 2,000 bytes/s over 300 ms windows: at least 600 bytes per window.
    server = await startTestServer({ minBodyRate: { bytesPerSecond: 2000, windowMs: 300 } });
    await createRepo(server, 'drip', 'repo');
  });
  after(() => server.stop());

  it('closes a slow-drip chunk upload that never goes quite silent, and keeps serving', async () => {
    // 10 bytes every 50 ms: never idle, 60 bytes per window.
    const data = randomBytes(4000);
    const pieces = Array.from({ length: 400 }, (_, i) => data.subarray(i * 10, i * 10 + 10));
    const { outcome, ms } = await drip(server, `/api/repos/drip/repo/versions/${hashBuffer(data)}/chunks?offset=0`, pieces, 50);
    assert.equal(outcome, 'closed');
    assert.ok(ms >= 250 && ms < 3000, `closed after ${ms} ms`);
    const status = await server.json(`/api/repos/drip/repo/versions/${hashBuffer(data)}/chunks`);
    assert.equal(status.body.received_bytes, 0, 'the cut-off chunk is not recorded');
    assert.equal((await server.json('/api/version')).status, 200);
  });

  it('lets a slow but steady upload through, however long it takes', async () => {
    // 2,000 bytes every 100 ms (20 KB/s) for 1.5 s: five windows, each well above the minimum.
    const data = randomBytes(30_000);
    const pieces = Array.from({ length: 15 }, (_, i) => data.subarray(i * 2000, i * 2000 + 2000));
    const { outcome } = await drip(server, `/api/repos/drip/repo/versions/${hashBuffer(data)}/chunks?offset=0`, pieces, 100);
    assert.equal(outcome, 'HTTP/1.1 200 OK');
  });
});

describe('closing the server does not wait out keep-alive connections', () => {
  it('closes a connection that drains a body answered early as soon as it is idle (75 s keep-alive otherwise)', { timeout: 20_000 }, async () => {
    const server = await startTestServer();
    await createRepo(server, 'closing', 'repo');
    const url = new URL(server.url);
    const agent = new Agent({ keepAlive: true });
    const body = randomBytes(16 * 1024 * 1024);
    // An unknown upload: 404 before the 16 MiB body is read; Node then drains it on the kept-alive connection.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ agent, host: url.hostname, port: url.port, method: 'PUT', path: '/api/repos/closing/repo/versions/uploads/ffff/parts/1', headers: { 'content-length': String(body.length) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(status, 404);
    const started = Date.now();
    await server.stop();
    const ms = Date.now() - started;
    agent.destroy();
    assert.ok(ms < 5000, `close() took ${ms} ms`);
  });

  it('closes a connection that has not sent a byte yet (Node counts it idle only after its headers timeout, 60 s)', { timeout: 20_000 }, async () => {
    const server = await startTestServer();
    const url = new URL(server.url);
    const socket = connect(Number(url.port), url.hostname);
    await new Promise((resolve) => socket.once('connect', resolve));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    const started = Date.now();
    await server.stop();
    const ms = Date.now() - started;
    await closed;
    assert.ok(ms < 5000, `close() took ${ms} ms`);
  });
});
