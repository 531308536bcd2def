import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { AUTHOR, assertEnvelope, createRepo, putFiles, startTestServer, type TestServer } from '../helpers/server.js';

describe('server and repositories', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  it('answers version, min_version and health with the envelope', async () => {
    for (const path of ['/api/version', '/api/min_version', '/api/health']) {
      const { status, body } = await server.json(path);
      assert.equal(status, 200);
      assertEnvelope(body, 'success');
    }
    const health = await server.json('/api/health');
    assert.ok(health.body.disk_usage.total_gb > 0);
    const res = await server.fetch('/api/version');
    assert.equal(res.headers.get('oxen-version'), '0.54.0');
  });

  it("reports the data directory's disk use as df does (used ÷ (used + available), root's reserve left out)", async () => {
    const { disk_usage: disk } = (await server.json('/api/health')).body;
    // df -P -k: 1024-byte blocks; Used, Available, Capacity (rounded up).
    const row = execFileSync('df', ['-P', '-k', server.dataDir], { encoding: 'utf8' }).trim().split('\n')[1].split(/\s+/);
    const [usedKb, availableKb, capacity] = [Number(row[2]), Number(row[3]), Number(row[4].replace('%', ''))];
    const kb = 1024 ** 3 / 1024;
    // Others write to the same file system meanwhile: allow 64 MiB of drift.
    assert.ok(Math.abs(disk.used_gb * kb - usedKb) < 64 * 1024, `used ${disk.used_gb * kb} KiB, df ${usedKb} KiB`);
    assert.ok(Math.abs(disk.free_gb * kb - availableKb) < 64 * 1024, `free ${disk.free_gb * kb} KiB, df ${availableKb} KiB`);
    assert.ok(Math.abs(Math.ceil(disk.percent_used) - capacity) <= 1, `percent ${disk.percent_used}, df ${capacity}%`);
  });

  it('keeps idle connections open for as long as its Keep-Alive header announces (no earlier cut by the headers timeout)', async () => {
    const res = await server.fetch('/api/version');
    const announced = Number(/timeout=(\d+)/.exec(res.headers.get('keep-alive') ?? '')?.[1]);
    assert.ok(announced >= 60, `announced ${announced} s`);
    assert.ok(server.app.server.headersTimeout > announced * 1000, `headersTimeout ${server.app.server.headersTimeout} ms closes idle connections before ${announced} s`);
  });

  it('answers unknown routes and wrong methods with a JSON 404', async () => {
    const { status, body } = await server.json('/api/nope');
    assert.equal(status, 404);
    assertEnvelope(body, 'error');
    assert.equal(body.status_message, 'resource_not_found');
  });

  it('creates a repository from JSON, with or without a charset parameter', async () => {
    const created = await createRepo(server, 'alice', 'cats');
    assertEnvelope(created, 'success');
    assert.equal(created.repository.namespace, 'alice');
    assert.equal(created.repository.is_empty, true);
    assert.equal(created.name, 'cats');
    assert.equal(created.description, 'repo cats');
    assert.ok(Date.parse(created.created_at));
    const { status } = await server.json('/api/repos', {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ namespace: 'alice', name: 'dogs' }),
    });
    assert.equal(status, 200);
  });

  it('refuses a duplicate with 409 and keeps the original', async () => {
    await createRepo(server, 'bob', 'dup');
    await putFiles(server, 'bob/dup', 'main/a.txt', [{ name: 'a.txt', content: 'a' }]);
    const { status, body } = await server.json('/api/repos', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ namespace: 'bob', name: 'dup' }),
    });
    assert.equal(status, 409);
    assertEnvelope(body, 'error');
    const repo = await server.json('/api/repos/bob/dup');
    assert.equal(repo.body.repository.is_empty, false);
  });

  it('rejects invalid names, missing fields and malformed JSON with 400', async () => {
    for (const payload of [{ namespace: 'a', name: 'ok-name' }, { namespace: 'ns', name: '../x' }, { namespace: 'ns', name: 'has space' }, { namespace: 'ns' }, { name: 'x1' }]) {
      const { status, body } = await server.json('/api/repos', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(payload),
      });
      assert.equal(status, 400, JSON.stringify(payload));
      assertEnvelope(body, 'error');
    }
    const bad = await server.json('/api/repos', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"namespace":' });
    assert.equal(bad.status, 400);
    assertEnvelope(bad.body, 'error');
    const namespaces = await server.json('/api/namespaces');
    assert.ok(!namespaces.body.namespaces.some((n: { namespace: string }) => n.namespace === 'ns'));
  });

  it('creates a repository from multipart with initial files in one commit', async () => {
    const form = new FormData();
    form.append('new_repo', JSON.stringify({ namespace: 'carol', name: 'seeded' }));
    form.append('name', AUTHOR.name);
    form.append('email', AUTHOR.email);
    form.append('file', new Blob(['one']), 'one.txt');
    form.append('file[]', new Blob(['two']), 'two.txt');
    const { status, body } = await server.json('/api/repos', { method: 'POST', body: form });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.repository.is_empty, false);
    assert.equal(body.repository.latest_commit.message, 'Initial commit');
    const file = await server.fetch('/api/repos/carol/seeded/file/main/two.txt');
    assert.equal(await file.text(), 'two');
    for (const value of ['null', '[1]', '"carol"', '7']) {
      const odd = new FormData();
      odd.append('new_repo', value);
      const res = await server.json('/api/repos', { method: 'POST', body: odd });
      assert.equal(res.status, 400, `new_repo=${value}: ${JSON.stringify(res.body)}`);
      assertEnvelope(res.body, 'error');
    }
    const missing = new FormData();
    missing.append('name', AUTHOR.name);
    const noRepo = await server.json('/api/repos', { method: 'POST', body: missing });
    assert.equal(noRepo.status, 400);
  });

  it('seeds text files from the JSON variant', async () => {
    const { status } = await server.json('/api/repos', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ namespace: 'dave', name: 'texts', files: [{ path: 'README.md', contents: '# hi', user: AUTHOR }] }),
    });
    assert.equal(status, 200);
    assert.equal(await (await server.fetch('/api/repos/dave/texts/file/main/README.md')).text(), '# hi');
  });

  it('does not keep a repository whose initial commit fails', async () => {
    const files = [{ path: 'a', contents: 'file' }, { path: 'a/b', contents: 'under the file' }];
    const { status, body } = await server.json('/api/repos', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ namespace: 'dave', name: 'clash', files, user: AUTHOR }),
    });
    assert.equal(status, 400, JSON.stringify(body));
    assertEnvelope(body, 'error');
    assert.equal((await server.json('/api/repos/dave/clash')).status, 404);
  });

  it('lists, gets and deletes repositories and namespaces', async () => {
    await createRepo(server, 'erin', 'r1');
    await createRepo(server, 'erin', 'r2');
    const list = await server.json('/api/repos/erin');
    assert.deepEqual(list.body.repositories.map((r: { name: string }) => r.name), ['r1', 'r2']);
    const namespaces = await server.json('/api/namespaces');
    assert.ok(namespaces.body.namespaces.some((n: { namespace: string }) => n.namespace === 'erin'));
    assert.equal((await server.json('/api/namespaces/erin')).status, 200);
    assert.equal((await server.json('/api/namespaces/nobody-here')).status, 404);
    const got = await server.json('/api/repos/erin/r1');
    assert.equal(got.body.repository.name, 'r1');
    assert.equal(got.body.repository.storage_kind, 'local');
    const deleted = await server.json('/api/repos/erin/r1', { method: 'DELETE' });
    assert.equal(deleted.status, 200);
    assert.equal(deleted.body.status_message, 'resource_deleted');
    assert.equal((await server.json('/api/repos/erin/r1')).status, 404);
    assert.equal((await server.json('/api/repos/erin/r1', { method: 'DELETE' })).status, 404);
    // The name is free again, and the new repository starts empty.
    const again = await createRepo(server, 'erin', 'r1');
    assert.equal(again.repository.is_empty, true);
  });

  it('answers 404 for an unknown repository everywhere', async () => {
    for (const path of ['/api/repos/zed/none', '/api/repos/zed/none/branches', '/api/repos/zed/none/file/main/a.txt', '/api/repos/zed/none/dir/main', '/api/repos/zed/none/commits/history/main']) {
      const { status, body } = await server.json(path);
      assert.equal(status, 404, path);
      assertEnvelope(body, 'error');
    }
  });
});
