import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { hashBuffer } from '../../src/core/hash.js';
import { AUTHOR, assertEnvelope, blobsInS3, createRepo, putFiles, startTestServer, type TestServer } from '../helpers/server.js';

const COMMIT = { message: 'from workspace', author: AUTHOR.name, email: AUTHOR.email };

interface Part {
  filename: string;
  data: Buffer;
  gzip?: boolean;
  field?: string;
  /** Overrides the part's Content-Type (e.g. to label plain bytes as gzip). */
  type?: string;
}

/** A multipart body with per-part Content-Type, as the seed document and the Oxen client send it. */
function multipart(parts: Part[], boundary = 'WSBOUNDARY'): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const type = p.type ?? (p.gzip ? 'application/gzip' : 'application/octet-stream');
    chunks.push(
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.field ?? 'file[]'}"; filename="${p.filename}"\r\nContent-Type: ${type}\r\n\r\n`),
      p.gzip ? gzipSync(p.data) : p.data,
      Buffer.from('\r\n'),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

describe('workspaces', () => {
  let server: TestServer;
  const R = 'ws/repo';
  const api = (path: string) => `/api/repos/${R}${path}`;
  const json = (method: string, body: unknown) => ({ method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const upload = (id: string, dir: string, parts: Part[]) =>
    server.raw('POST', api(`/workspaces/${id}/files/${dir}`), multipart(parts), { 'content-type': 'multipart/form-data; boundary=WSBOUNDARY' });
  const create = (id: string, extra: Record<string, unknown> = {}) => server.json(api('/workspaces'), json('PUT', { workspace_id: id, branch_name: 'main', ...extra }));
  const head = async () => (await server.json(api('/branches/main'))).body.branch.commit_id as string;
  const file = async (rev: string, path: string) => {
    const res = await server.fetch(api(`/file/${rev}/${path}`));
    return res.status === 200 ? Buffer.from(await res.arrayBuffer()) : res.status;
  };

  before(async () => {
    server = await startTestServer();
    await createRepo(server, 'ws', 'repo');
  });
  after(() => server.stop());

  it('get-or-create on an empty repository creates the branch with an initial commit; PUT, POST and get_or_create agree', async () => {
    const first = await create('w-empty');
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.status_message, 'resource_created');
    assert.equal(first.body.workspace.id, 'w-empty');
    const history = await server.json(api('/commits/history/main'));
    assert.equal(history.body.total_entries, 1);
    assert.equal(first.body.workspace.commit.id, history.body.commits[0].id);
    for (const [method, path] of [['PUT', '/workspaces'], ['POST', '/workspaces'], ['PUT', '/workspaces/get_or_create']]) {
      const again = await server.json(api(path), json(method, { workspace_id: 'w-empty', branch_name: 'main' }));
      assert.equal(again.status, 200);
      assert.equal(again.body.status_message, 'resource_found');
      assert.equal(again.body.workspace.id, 'w-empty');
    }
    assert.equal((await server.json(api('/workspaces'), json('PUT', { workspace_id: 'w-x', branch_name: 'nope' }))).status, 404);
    assert.equal((await server.json(api('/workspaces'), json('PUT', { workspace_id: '../bad', branch_name: 'main' }))).status, 400);
    assert.equal((await server.json(api('/workspaces'), json('PUT', { branch_name: 'main' }))).status, 400);
  });

  it("stages the seed's multipart shape (gzip and plain parts, filename = destination), commits it, and deletes the unnamed workspace", async () => {
    await create('w-seed');
    const a = randomBytes(3000);
    const b = Buffer.from('plain text\n');
    const c = randomBytes(10);
    const res = await upload('w-seed', 'data/train', [
      { filename: 'a.png', data: a, gzip: true },
      { filename: 'sub/b.txt', data: b },
      { filename: './c.bin', data: c, gzip: true, field: 'file' },
    ]);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assertEnvelope(res.body, 'success');
    assert.deepEqual(res.body.paths, ['data/train/a.png', 'data/train/sub/b.txt', 'data/train/c.bin']);
    assert.deepEqual(res.body.err_files, []);

    const status = await server.json(api('/workspaces/w-seed/changes'));
    assert.deepEqual(status.body.changes.map((ch: { path: string; status: string }) => `${ch.status} ${ch.path}`).sort(), [
      'added data/train/a.png', 'added data/train/c.bin', 'added data/train/sub/b.txt',
    ]);
    assert.equal(status.body.staged.added_files.total_entries, 3);
    const staged = await server.fetch(api('/workspaces/w-seed/files/data/train/a.png'));
    assert.deepEqual(Buffer.from(await staged.arrayBuffer()), a);
    const listing = await server.json(api('/dir/w-seed/data/train'));
    assert.deepEqual(listing.body.entries.map((e: { filename: string }) => e.filename), ['sub', 'a.png', 'c.bin']);
    // The workspace's view line by line: staged entries name no commit yet.
    const lines = (await (await server.fetch(api('/ls/w-seed/data/train?recursive=true'))).text()).trim().split('\n').map((line) => JSON.parse(line));
    assert.deepEqual(lines.map((l) => `${l.path} ${l.type} ${l.size} ${l.last_commit_id}`), ['sub dir 11 null', 'sub/b.txt file 11 null', 'a.png file 3000 null', 'c.bin file 10 null']);
    assert.equal(await file('main', 'data/train/a.png'), 404, 'nothing lands before the commit');

    const done = await server.json(api('/workspaces/w-seed/commit/main'), json('POST', COMMIT));
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.equal(done.body.commit.message, 'from workspace');
    assert.equal(await head(), done.body.commit.id);
    assert.deepEqual(await file('main', 'data/train/a.png'), a);
    assert.deepEqual(await file('main', 'data/train/sub/b.txt'), b);
    assert.equal((await server.json(api('/workspaces/w-seed'))).status, 404, 'an unnamed workspace is deleted after its commit');
  });

  it('rejects a traversing or absolute destination with 400 and stages nothing', async () => {
    await create('w-evil');
    for (const filename of ['../x', '/etc/x', 'a/../../x', 'a\\b']) {
      const res = await upload('w-evil', 'data', [{ filename: 'ok.txt', data: Buffer.from('ok') }, { filename, data: Buffer.from('evil') }]);
      assert.equal(res.status, 400, filename);
      assertEnvelope(res.body, 'error');
    }
    assert.equal((await upload('w-evil', '../outside', [{ filename: 'ok.txt', data: Buffer.from('ok') }])).status, 400);
    assert.deepEqual((await server.json(api('/workspaces/w-evil/changes'))).body.changes, []);
  });

  it('reports a failing part instead of dropping it silently', async () => {
    await create('w-fail');
    const res = await upload('w-fail', 'd', [
      { filename: 'good.txt', data: Buffer.from('good') },
      { filename: 'bad.gz', data: Buffer.from('not gzip at all'), type: 'application/gzip' },
    ]);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.paths, ['d/good.txt']);
    assert.equal(res.body.err_files.length, 1);
    assert.equal(res.body.err_files[0].path, 'bad.gz');
  });

  // Through radosgw each small blob is a round trip or two (bench/RESULTS.md): fewer files there, the same race.
  const perClient = blobsInS3 ? 100 : 500;
  it(`commits the exact union of 8 concurrent clients × ${perClient} files`, async () => {
    await create('w-many');
    const clients = Array.from({ length: 8 }, (_, c) => Array.from({ length: perClient }, (_, i) => ({ filename: `c${c}/f${i}.txt`, data: Buffer.from(`client ${c} file ${i}`) })));
    const results = await Promise.all(clients.map((parts) => upload('w-many', 'many', parts)));
    for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
    assert.equal((await server.json(api('/workspaces/w-many/changes?page_size=1'))).body.total_entries, 8 * perClient);
    const done = await server.json(api('/workspaces/w-many/merge/main'), json('POST', COMMIT));
    assert.equal(done.status, 200, JSON.stringify(done.body));
    const dir = await server.json(api('/dir/main/many'));
    assert.equal(dir.body.total_entries, 8);
    const meta = await server.json(api('/meta/main/many'));
    assert.equal(meta.body.entry.size, clients.flat().reduce((sum, part) => sum + part.data.length, 0));
    assert.equal(meta.body.entry.latest_commit.id, done.body.commit.id);
    assert.equal((await file('main', `many/c7/f${perClient - 1}.txt`))!.toString(), `client 7 file ${perClient - 1}`);
    assert.equal((await file('main', 'many/c0/f0.txt'))!.toString(), 'client 0 file 0');
  });

  it('keeps staged changes across a server restart', async () => {
    await create('w-durable', { name: 'durable' });
    await upload('w-durable', 'kept', [{ filename: 'x.txt', data: Buffer.from('survives') }]);
    const dataDir = server.dataDir;
    await server.close();
    server = await startTestServer({ dataDir });
    const status = await server.json(api('/workspaces/durable/changes'));
    assert.deepEqual(status.body.changes.map((c: { path: string }) => c.path), ['kept/x.txt']);
    const done = await server.json(api('/workspaces/durable/commit/main'), json('POST', COMMIT));
    assert.equal(done.status, 200);
    assert.equal((await file('main', 'kept/x.txt'))!.toString(), 'survives');
    const named = await server.json(api('/workspaces/durable'));
    assert.equal(named.status, 200, 'a named workspace survives its commit');
    assert.equal(named.body.workspace.commit.id, done.body.commit.id, '…and moves to the new commit');
    assert.deepEqual((await server.json(api('/workspaces/durable/changes'))).body.changes, []);
  });

  it('answers 409 naming the paths when a staged path changed on the branch, leaving the branch untouched; rebases otherwise', async () => {
    await putFiles(server, R, 'main/shared/doc.txt', [{ name: 'doc.txt', content: 'v1' }]);
    await create('w-conflict');
    await create('w-rebase');
    await upload('w-conflict', 'shared', [{ filename: 'doc.txt', data: Buffer.from('workspace edit') }]);
    await upload('w-rebase', 'elsewhere', [{ filename: 'new.txt', data: Buffer.from('rebased') }]);
    await putFiles(server, R, 'main/shared/doc.txt', [{ name: 'doc.txt', content: 'branch edit' }]);
    const before = await head();

    const check = await server.json(api('/workspaces/w-conflict/merge/main'));
    assert.equal(check.body.is_mergeable, false);
    assert.deepEqual(check.body.conflicts, [{ path: 'shared/doc.txt' }]);
    assert.ok(check.body.commits.length >= 1);
    const refused = await server.json(api('/workspaces/w-conflict/merge/main'), json('POST', COMMIT));
    assert.equal(refused.status, 409);
    assert.deepEqual(refused.body.error.conflicts, [{ path: 'shared/doc.txt' }]);
    assert.equal(await head(), before);
    assert.equal((await file('main', 'shared/doc.txt'))!.toString(), 'branch edit');

    assert.equal((await server.json(api('/workspaces/w-rebase/merge/main'))).body.is_mergeable, true);
    const rebased = await server.json(api('/workspaces/w-rebase/commit/main'), json('POST', COMMIT));
    assert.equal(rebased.status, 200);
    assert.deepEqual(rebased.body.commit.parent_ids, [before]);
    assert.equal((await file('main', 'shared/doc.txt'))!.toString(), 'branch edit');
    assert.equal((await file('main', 'elsewhere/new.txt'))!.toString(), 'rebased');
  });

  it('stages removals, moves and unstaging; answers 422 when nothing is staged', async () => {
    await putFiles(server, R, 'main/edit', [{ name: 'keep.txt', content: 'k' }, { name: 'drop.txt', content: 'd' }, { name: 'move.txt', content: 'm' }]);
    await create('w-edit', { name: 'editor' });
    assert.equal((await server.json(api('/workspaces/editor/commit/main'), json('POST', COMMIT))).status, 422);
    const removal = await server.json(api('/workspaces/editor/files'), json('DELETE', ['edit/drop.txt']));
    assert.equal(removal.status, 200);
    const partial = await server.json(api('/workspaces/editor/files'), json('DELETE', ['edit/nope.txt']));
    assert.equal(partial.status, 206);
    assert.deepEqual(partial.body.paths, ['edit/nope.txt']);
    const moved = await server.json(api('/workspaces/editor/files/edit/move.txt'), json('PATCH', { new_path: 'edit/moved.txt' }));
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.equal((await server.json(api('/workspaces/editor/files/edit/keep.txt'), json('PATCH', { new_path: '../escape' }))).status, 400);
    await upload('w-edit', 'edit', [{ filename: 'temp.txt', data: Buffer.from('t') }]);
    assert.equal((await server.json(api('/workspaces/editor/changes/edit/temp.txt'), { method: 'DELETE' })).status, 200);
    assert.equal((await server.json(api('/workspaces/editor/changes/edit/temp.txt'), { method: 'DELETE' })).status, 404);
    const status = await server.json(api('/workspaces/editor/changes/edit'));
    assert.deepEqual(status.body.changes.map((c: { path: string; status: string }) => `${c.status} ${c.path}`), [
      'removed edit/drop.txt', 'added edit/moved.txt', 'removed edit/move.txt',
    ].sort((x, y) => (x.split(' ')[1] < y.split(' ')[1] ? -1 : 1)));
    assert.equal((await server.fetch(api('/workspaces/editor/files/edit/drop.txt'))).status, 404);
    assert.equal(await (await server.fetch(api('/workspaces/editor/files/edit/keep.txt'))).text(), 'k');
    const done = await server.json(api('/workspaces/editor/commit/main'), json('POST', COMMIT));
    assert.equal(done.status, 200);
    assert.equal(await file('main', 'edit/drop.txt'), 404);
    assert.equal((await file('main', 'edit/moved.txt'))!.toString(), 'm');
    assert.equal(await file('main', 'edit/move.txt'), 404);
  });

  it('lists, filters by name, deletes one and all; unknown workspace → 404', async () => {
    await create('w-list-1', { name: 'listed' });
    const all = await server.json(api('/workspaces'));
    assert.ok(all.body.workspaces.some((w: { id: string }) => w.id === 'w-list-1'));
    const named = await server.json(api('/workspaces?name=listed'));
    assert.deepEqual(named.body.workspaces.map((w: { id: string }) => w.id), ['w-list-1']);
    assert.equal((await server.json(api('/workspaces/w-list-1'), { method: 'DELETE' })).status, 200);
    assert.equal((await server.json(api('/workspaces/w-list-1'))).status, 404);
    assert.equal((await upload('nope', 'x', [{ filename: 'a', data: Buffer.from('a') }])).status, 404);
    await create('w-list-2');
    assert.equal((await server.json(api('/workspaces'), { method: 'DELETE' })).status, 200);
    assert.deepEqual((await server.json(api('/workspaces'))).body.workspaces, []);
  });

  it('records workspace blobs for the repository (batch download can serve them)', async () => {
    await create('w-blobs');
    const data = randomBytes(100);
    await upload('w-blobs', 'b', [{ filename: 'x.bin', data }]);
    const repo = await server.yoke.repos.require('ws', 'repo');
    assert.equal((await server.yoke.meta.findRepoBlobs(repo.id, [hashBuffer(data)])).get(hashBuffer(data)), 100);
  });
});
