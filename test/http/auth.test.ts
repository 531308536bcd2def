import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { serverConfig } from '../../src/config.js';
import { AUTHOR, assertEnvelope, startTestServer, storedBlobHashes, type TestServer } from '../helpers/server.js';

describe('auth: scoped tokens', () => {
  let server: TestServer;
  let admin: string;
  before(async () => {
    server = await startTestServer({ auth: true });
    // The first token comes from the metadata store, as `yoke token create` makes it.
    admin = (await server.yoke.auth.create({ name: 'Root', email: 'root@example.com', scopes: ['admin'] })).secret;
  });
  after(() => server.stop());

  const as = (secret: string | null, init: RequestInit = {}): RequestInit => ({
    ...init,
    headers: { ...(init.headers as Record<string, string>), ...(secret ? { authorization: `Bearer ${secret}` } : {}) },
  });
  const json = (secret: string | null, method: string, body: unknown) => as(secret, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const token = async (scopes: string[], expires?: string) => {
    const { status, body } = await server.json('/api/tokens', json(admin, 'POST', { name: 'T', email: 't@example.com', scopes, expires }));
    assert.equal(status, 200, JSON.stringify(body));
    return body as { token: { id: string }; secret: string };
  };
  const upload = (secret: string | null, repo: string, path: string, content: string) => {
    const form = new FormData();
    form.append('file', new Blob([content]), path.split('/').pop()!);
    for (const [k, v] of Object.entries({ ...AUTHOR, message: 'up' })) form.append(k, v);
    return server.json(`/api/repos/${repo}/file/main/${path}`, as(secret, { method: 'PUT', body: form }));
  };

  it('leaves version, min_version and health open, and answers 401 JSON without a token or with an unknown one', async () => {
    for (const path of ['/api/version', '/api/min_version', '/api/health']) assert.equal((await server.fetch(path)).status, 200, path);
    for (const secret of [null, 'yoke_not-a-token']) {
      const res = await server.json('/api/repos/any/thing', as(secret));
      assert.equal(res.status, 401);
      assertEnvelope(res.body, 'error');
      assert.equal(res.body.status_message, 'unauthorized');
    }
    const basic = await server.json('/api/namespaces', { headers: { authorization: 'Basic abc' } });
    assert.equal(basic.status, 401);
  });

  it('grants by level and target: read, write on a namespace, admin on one repository', async () => {
    assert.equal((await server.json('/api/repos', json(admin, 'POST', { namespace: 'team', name: 'data' }))).status, 200);
    assert.equal((await server.json('/api/repos', json(admin, 'POST', { namespace: 'other', name: 'data' }))).status, 200);
    const reader = (await token(['read'])).secret;
    const writer = (await token(['write:team'])).secret;
    const owner = (await token(['admin:other/data'])).secret;

    assert.equal((await upload(writer, 'team/data', 'a.txt', 'a')).status, 200);
    assert.equal((await server.fetch('/api/repos/team/data/file/main/a.txt', as(reader))).status, 200);
    const refused = await upload(reader, 'team/data', 'b.txt', 'b');
    assert.equal(refused.status, 403);
    assertEnvelope(refused.body, 'error');
    assert.equal(refused.body.status_message, 'forbidden');
    assert.equal((await upload(writer, 'other/data', 'b.txt', 'b')).status, 403, 'write:team does not reach another namespace');
    assert.equal((await server.fetch('/api/repos/other/data/file/main/b.txt', as(writer))).status, 403, 'nor read it');
    assert.equal((await server.json('/api/repos', json(writer, 'POST', { namespace: 'team', name: 'new' }))).status, 403, 'creating repositories is admin');
    assert.equal((await server.json('/api/repos/team/data', as(writer, { method: 'DELETE' }))).status, 403);
    assert.equal((await server.json('/api/tokens', as(writer))).status, 403, 'managing tokens is admin');
    assert.equal((await server.json('/api/admin/fsck', as(reader))).status, 403, 'fsck is admin, though a GET');
    assert.equal((await server.json('/api/admin/gc?dry_run=true', as(owner, { method: 'POST' }))).status, 403, 'gc needs admin on the whole server');
    assert.equal((await server.json('/api/admin/fsck?content=false', as(admin))).status, 200);
    assert.equal((await upload(owner, 'other/data', 'c.txt', 'c')).status, 200, 'admin includes write');
    assert.equal((await server.json('/api/repos/team/data', as(owner, { method: 'DELETE' }))).status, 403);
    assert.equal((await server.json('/api/repos/other/data', as(owner, { method: 'DELETE' }))).status, 200);
    assert.equal((await server.json('/api/repos/team/data', as(reader))).status, 200);
  });

  it('refuses an upload before a byte of it is stored', async () => {
    assert.equal((await server.json('/api/repos', json(admin, 'POST', { namespace: 'team', name: 'quiet' }))).status, 200);
    const reader = (await token(['read:team'])).secret;
    const before = (await storedBlobHashes(server)).length;
    for (const secret of [null, reader]) {
      const res = await upload(secret, 'team/quiet', 'big.bin', 'x'.repeat(2 * 1024 * 1024));
      assert.ok(res.status === 401 || res.status === 403, String(res.status));
    }
    assert.equal((await storedBlobHashes(server)).length, before);
  });

  it('revocation and expiry take effect at once; the secret is shown once and listed nowhere', async () => {
    const { token: made, secret } = await token(['read']);
    assert.equal((await server.fetch('/api/namespaces', as(secret))).status, 200);
    const listed = await server.json('/api/tokens', as(admin));
    const entry = listed.body.tokens.find((t: { id: string }) => t.id === made.id);
    assert.deepEqual(Object.keys(entry).sort(), ['created_at', 'email', 'expires_at', 'id', 'name', 'scopes']);
    assert.ok(!JSON.stringify(listed.body).includes(secret));
    assert.equal((await server.json(`/api/tokens/${made.id}`, as(admin, { method: 'DELETE' }))).status, 200);
    assert.equal((await server.fetch('/api/namespaces', as(secret))).status, 401);
    assert.equal((await server.json(`/api/tokens/${made.id}`, as(admin, { method: 'DELETE' }))).status, 404);

    const old = await server.yoke.auth.create({ name: 'Old', email: 'o@example.com', scopes: ['read'], expires: '1s' }, new Date(Date.now() - 10_000));
    const expired = await server.json('/api/namespaces', as(old.secret));
    assert.equal(expired.status, 401);
    assert.match(expired.body.status_description, /expired/);
    assert.equal((await server.json('/api/tokens', json(admin, 'POST', { name: 'x', email: 'x@x', scopes: ['owner'] }))).status, 400);
    assert.equal((await server.json('/api/tokens', json(admin, 'POST', { name: 'x', email: 'x@x', scopes: ['read'], expires: '3w' }))).status, 400);
  });
});

describe('auth: when it is on', () => {
  it('is off on loopback, on beyond it unless turned off explicitly, and follows --auth / YOKE_AUTH', () => {
    assert.equal(serverConfig({ host: '127.0.0.1' }, {}).auth, false);
    assert.equal(serverConfig({ host: '0.0.0.0' }, {}).auth, true);
    assert.equal(serverConfig({ host: '10.1.2.3', auth: false }, {}).auth, false);
    assert.equal(serverConfig({ host: '10.1.2.3', auth: false }, {}).authOffOnNetwork, true);
    assert.equal(serverConfig({ host: '127.0.0.1' }, { YOKE_AUTH: '1' }).auth, true);
    assert.equal(serverConfig({ host: '0.0.0.0' }, { YOKE_AUTH: 'false' }).auth, false);
    assert.throws(() => serverConfig({}, { YOKE_AUTH: 'maybe' }));
  });

  it('leaves every route open on the embedded default', async () => {
    const server = await startTestServer();
    try {
      assert.equal((await server.fetch('/api/namespaces')).status, 200);
    } finally {
      await server.stop();
    }
  });
});

describe('auth: CORS for web pages on other origins', () => {
  it('answers preflights and marks responses, refusals included, for allowed origins only', async () => {
    const server = await startTestServer({ auth: true, corsOrigin: 'https://app.example.com' });
    try {
      const origin = 'https://app.example.com';
      const preflight = await server.fetch('/api/repos/team/data/file/main/a.txt', {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'authorization,content-type' },
      });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers.get('access-control-allow-origin'), origin);
      assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /PUT/);
      assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /authorization/);

      const refused = await server.fetch('/api/namespaces', { headers: { origin } });
      assert.equal(refused.status, 401);
      assert.equal(refused.headers.get('access-control-allow-origin'), origin, 'the page can read why it was refused');

      const { secret } = await server.yoke.auth.create({ name: 'Web', email: 'web@example.com', scopes: ['read'] });
      const allowed = await server.fetch('/api/namespaces', { headers: { origin, authorization: `Bearer ${secret}` } });
      assert.equal(allowed.status, 200);
      assert.equal(allowed.headers.get('access-control-allow-origin'), origin);

      const stranger = await server.fetch('/api/namespaces', { headers: { origin: 'https://evil.example.com', authorization: `Bearer ${secret}` } });
      assert.equal(stranger.headers.get('access-control-allow-origin'), null);
    } finally {
      await server.stop();
    }
    assert.throws(() => serverConfig({ corsOrigin: 'not a url' }, {}));
  });
});

