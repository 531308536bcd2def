import { strict as assert } from 'node:assert';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { AUTHOR, createRepo, putFiles, startTestServer, type TestServer } from '../helpers/server.js';

describe('concurrent writers on one branch', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
    await createRepo(server, 'race', 'repo');
    await putFiles(server, 'race/repo', 'main/README.md', [{ name: 'README.md', content: 'start' }]);
  });
  after(() => server.stop());

  it('lands all sixteen simultaneous PUTs as sixteen commits in one linear history', async () => {
    const clients = Array.from({ length: 16 }, (_, i) => i);
    const results = await Promise.all(
      clients.map((i) => putFiles(server, 'race/repo', `main/files/client-${i}.txt`, [{ name: `client-${i}.txt`, content: `from client ${i}` }])),
    );
    for (const { status, body } of results) assert.equal(status, 200, JSON.stringify(body));
    const ids = new Set(results.map((r) => r.body.commit.id as string));
    assert.equal(ids.size, 16);

    const { body } = await server.json('/api/repos/race/repo/commits/history/main?page_size=100');
    assert.equal(body.total_entries, 17);
    const commits = body.commits as Array<{ id: string; parent_ids: string[] }>;
    for (let i = 0; i < commits.length - 1; i++) assert.deepEqual(commits[i].parent_ids, [commits[i + 1].id], 'history must be one chain');
    assert.deepEqual(new Set(commits.slice(0, 16).map((c) => c.id)), ids);

    for (const i of clients) {
      const res = await server.fetch(`/api/repos/race/repo/file/main/files/client-${i}.txt`);
      assert.equal(await res.text(), `from client ${i}`);
    }
    const dir = await server.json('/api/repos/race/repo/dir/main/files');
    assert.equal(dir.body.total_entries, 16);
  });

  /**
   * A PUT of `file` whose body stalls halfway: the server resolves the branch head as soon as the
   * headers arrive; `meanwhile` runs before the rest of the body is sent.
   */
  function slowPut(file: string, content: string, meanwhile: () => Promise<void>) {
    const boundary = 'SLOWBOUNDARY';
    const half = Math.floor(content.length / 2);
    const head = [
      `--${boundary}`, 'Content-Disposition: form-data; name="name"', '', AUTHOR.name,
      `--${boundary}`, 'Content-Disposition: form-data; name="email"', '', AUTHOR.email,
      `--${boundary}`, `Content-Disposition: form-data; name="file"; filename="${file}"`, '', content.slice(0, half),
    ].join('\r\n');
    const tail = `${content.slice(half)}\r\n--${boundary}--\r\n`;
    const url = new URL(server.url);
    return new Promise<{ status: number; body: any }>((resolve, reject) => {
      const req = request(
        { host: url.hostname, port: url.port, method: 'PUT', path: `/api/repos/race/repo/file/main/${file}`, headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': Buffer.byteLength(head + tail) } },
        (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
        },
      );
      req.on('error', reject);
      req.write(head);
      setTimeout(() => meanwhile().then(() => req.end(tail), reject), 100);
    });
  }

  it('refuses (409) a slow write whose path was changed by another writer meanwhile, and keeps the other write', async () => {
    await putFiles(server, 'race/repo', 'main/shared.txt', [{ name: 'shared.txt', content: 'base' }]);
    const slow = slowPut('shared.txt', 'slow', async () => {
      const fast = await putFiles(server, 'race/repo', 'main/shared.txt', [{ name: 'shared.txt', content: 'fast' }]);
      assert.equal(fast.status, 200);
    });
    const { status, body } = await slow;
    assert.equal(status, 409, JSON.stringify(body));
    assert.deepEqual(body.error.conflicts, [{ path: 'shared.txt' }]);
    assert.equal(await (await server.fetch('/api/repos/race/repo/file/main/shared.txt')).text(), 'fast');
  });

  it('rebases a slow write onto a head that moved elsewhere', async () => {
    const slow = slowPut('mine.txt', 'mine', async () => {
      await putFiles(server, 'race/repo', 'main/theirs.txt', [{ name: 'theirs.txt', content: 'theirs' }]);
    });
    const { status, body } = await slow;
    assert.equal(status, 200, JSON.stringify(body));
    const history = (await server.json('/api/repos/race/repo/commits/history/main?page_size=2')).body.commits;
    assert.equal(history[0].id, body.commit.id);
    assert.deepEqual(body.commit.parent_ids, [history[1].id]);
    assert.equal(await (await server.fetch('/api/repos/race/repo/file/main/theirs.txt')).text(), 'theirs');
    assert.equal(await (await server.fetch('/api/repos/race/repo/file/main/mine.txt')).text(), 'mine');
  });
});
