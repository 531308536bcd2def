import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { FILE_LINK_SECONDS } from '../../src/services/auth.js';
import { AUTHOR, assertEnvelope, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * File links (POST …/file_links/{rev}/{path}): a short-lived address that reads one committed file without
 * an Authorization header, so the web interface's players and downloads stream instead of fetching whole.
 */

describe('file links with authentication on', () => {
  let server: TestServer;
  let admin: string;
  let reader: { id: string; secret: string };
  const bearer = (secret: string, init: RequestInit = {}): RequestInit => ({ ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${secret}` } });
  const issue = (secret: string | null, resource: string, repo = 'team/data') =>
    server.json(`/api/repos/${repo}/file_links/${resource}`, secret ? bearer(secret, { method: 'POST' }) : { method: 'POST' });
  const put = async (repo: string, path: string, content: string) => {
    const form = new FormData();
    form.append('files[]', new Blob([content]), path.split('/').pop()!);
    for (const [k, v] of Object.entries({ ...AUTHOR, message: `put ${path}` })) form.append(k, v);
    const res = await server.json(`/api/repos/${repo}/file/main/${path.split('/').slice(0, -1).join('/')}`, bearer(admin, { method: 'PUT', body: form }));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.commit.id as string;
  };

  before(async () => {
    server = await startTestServer({ auth: true });
    admin = (await server.yoke.auth.create({ name: 'Root', email: 'root@example.com', scopes: ['admin'] })).secret;
    for (const [namespace, name] of [['team', 'data'], ['other', 'data']]) {
      const created = await server.json('/api/repos', bearer(admin, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace, name, user: AUTHOR }) }));
      assert.equal(created.status, 200);
    }
    await put('team/data', 'media/clip.bin', '0123456789');
    await put('team/data', 'media/other.bin', 'secret neighbour');
    await put('other/data', 'media/clip.bin', 'another repository');
    const made = await server.yoke.auth.create({ name: 'Reader', email: 'r@example.com', scopes: ['read:team'] });
    reader = { id: made.token.id, secret: made.secret };
  });
  after(() => server.stop());

  it('issues a read token a link to one file at its commit, which streams with Range and HEAD and no header', async () => {
    const head = (await server.json('/api/repos/team/data/branches/main', bearer(admin))).body.branch.commit_id;
    const res = await issue(reader.secret, 'main/media/clip.bin');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assertEnvelope(res.body, 'success');
    const { url, expires_at: expiresAt } = res.body.link;
    assert.ok(url.startsWith(`/api/repos/team/data/file/${head}/media/clip.bin?link=${reader.id}.`), url);
    const lifetime = Date.parse(expiresAt) - Date.now();
    assert.ok(lifetime > (FILE_LINK_SECONDS - 60) * 1000 && lifetime <= FILE_LINK_SECONDS * 1000, `expires in ${lifetime} ms`);
    const whole = await server.fetch(url);
    assert.equal(whole.status, 200);
    assert.equal(await whole.text(), '0123456789');
    assert.equal(whole.headers.get('referrer-policy'), 'no-referrer');
    assert.match(whole.headers.get('cache-control') ?? '', /no-store/);
    const part = await server.fetch(url, { headers: { range: 'bytes=2-4' } });
    assert.equal(part.status, 206);
    assert.equal(await part.text(), '234');
    const onlyHeaders = await server.fetch(url, { method: 'HEAD' });
    assert.equal(onlyHeaders.headers.get('content-length'), '10');
    // The link names bytes: after the branch moves on it still reads what it was issued for.
    await put('team/data', 'media/clip.bin', 'changed');
    assert.equal(await (await server.fetch(url)).text(), '0123456789');
  });

  it('reads nothing else: another file, repository or method, a changed signature or expiry', async () => {
    const { url } = (await issue(reader.secret, 'main/media/clip.bin')).body.link as { url: string };
    const [address, query] = url.split('?');
    const param = new URLSearchParams(query).get('link')!;
    const [id, expires, signature] = param.split('.');
    const refused = [
      `${address.replace('clip.bin', 'other.bin')}?${query}`,
      `${address.replace('/team/', '/other/')}?${query}`,
      `${address.replace(/file\/[0-9a-f]+\//, 'file/main/')}?${query}`,
      `${address.replace('/file/', '/versions/')}?${query}`,
      `${address.replace('/file/', '/meta/')}?${query}`,
      `${address}?link=${id}.${Number(expires) + 3600}.${signature}`,
      `${address}?link=${id}.${expires}.${signature.slice(0, -2)}AA`,
      `${address}?link=${admin}.${expires}.${signature}`,
      `${address}?link=garbage`,
      `${address}?link=${id}.${expires}.${signature}.extra`,
      `${address}?link=${id}.99999999999999999999.${signature}`,
    ];
    for (const target of refused) {
      const res = await server.json(target);
      assert.equal(res.status, 401, `${target}: ${res.status}`);
      assertEnvelope(res.body, 'error');
    }
    for (const method of ['PUT', 'DELETE', 'PATCH']) assert.equal((await server.fetch(url, { method })).status, 401, method);
    // A header, when sent, is what counts: a link does not lift a bad one.
    assert.equal((await server.fetch(url, { headers: { authorization: 'Bearer yoke_unknown' } })).status, 401);
  });

  it('is issued only to a bearer that may read there, and dies with its token or its time', async () => {
    assert.equal((await issue(null, 'main/media/clip.bin')).status, 401);
    assert.equal((await issue(reader.secret, 'main/media/clip.bin', 'other/data')).status, 403);
    assert.equal((await issue(reader.secret, 'main/media/missing.bin')).status, 404);
    assert.equal((await issue(reader.secret, 'main/media')).status, 400, 'a directory has no bytes to link');
    // Issued ten minutes and one second ago: expired.
    const head = (await server.json('/api/repos/team/data/branches/main', bearer(admin))).body.branch.commit_id;
    const old = await server.yoke.auth.signFileLink(`Bearer ${reader.secret}`, { namespace: 'team', repo: 'data' }, `${head}/media/clip.bin`, new Date(Date.now() - (FILE_LINK_SECONDS + 1) * 1000));
    const expired = await server.json(`/api/repos/team/data/file/${head}/media/clip.bin?link=${old.param}`);
    assert.equal(expired.status, 401);
    assert.match(expired.body.status_description, /expired/);
    const temporary = await server.yoke.auth.create({ name: 'Temp', email: 't@example.com', scopes: ['read'] });
    const { url } = (await issue(temporary.secret, 'main/media/clip.bin')).body.link as { url: string };
    assert.equal((await server.fetch(url)).status, 200);
    await server.yoke.auth.revoke(temporary.token.id);
    assert.equal((await server.fetch(url)).status, 401);
  });
});

describe('file links with authentication off', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('answer the plain address of the file at its commit', async () => {
    const created = await server.json('/api/repos', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'open', name: 'data', user: AUTHOR }) });
    assert.equal(created.status, 200);
    const form = new FormData();
    form.append('files[]', new Blob(['hello']), 'a b.txt');
    for (const [k, v] of Object.entries({ ...AUTHOR, message: 'add' })) form.append(k, v);
    const put = await server.json('/api/repos/open/data/file/main/dir', { method: 'PUT', body: form });
    assert.equal(put.status, 200);
    const res = await server.json('/api/repos/open/data/file_links/main/dir/a%20b.txt', { method: 'POST' });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.link, { url: `/api/repos/open/data/file/${put.body.commit.id}/dir/a%20b.txt`, expires_at: null });
    assert.equal(await (await server.fetch(res.body.link.url)).text(), 'hello');
  });
});
