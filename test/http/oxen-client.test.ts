import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { hashBuffer } from '../../src/core/hash.js';
import { AUTHOR, assertEnvelope, blobsInS3, createRepo, putFiles, startTestServer, type TestServer } from '../helpers/server.js';

/** The fields of Oxen's MetadataEntry, which its client decodes with `deny_unknown_fields`. */
const METADATA_ENTRY_FIELDS = ['data_type', 'extension', 'filename', 'hash', 'is_dir', 'is_queryable', 'latest_commit', 'metadata', 'mime_type', 'resource', 'size'];

function assertMetadataEntry(entry: Record<string, unknown>) {
  const keys = Object.keys(entry).filter((k) => k !== 'children').sort();
  assert.deepEqual(keys, METADATA_ENTRY_FIELDS, `not an Oxen MetadataEntry: ${JSON.stringify(entry)}`);
}

/** The routes and reply shapes Oxen's own clients (oxenai 0.65) depend on, over plain HTTP. */
describe('Oxen client routes', () => {
  let server: TestServer;
  const R = 'oxc/repo';
  const api = (path: string) => `/api/repos/${R}${path}`;
  const json = (method: string, body: unknown) => ({ method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  /** A JSON body with no Content-Type at all, as Oxen's client sends several. */
  const bare = (method: string, path: string, body: unknown) => {
    const bytes = Buffer.from(JSON.stringify(body));
    return server.raw(method, path, bytes, { 'content-length': String(bytes.length) });
  };
  const head = async (branch = 'main') => (await server.json(api(`/branches/${branch}`))).body.branch.commit_id as string;
  const workspace = (id: string, extra: Record<string, unknown> = {}) => server.json(api('/workspaces'), json('PUT', { workspace_id: id, branch_name: 'main', ...extra }));
  const stage = (id: string, dir: string, name: string, data: Buffer) => {
    const form = new FormData();
    form.append('file[]', new Blob([new Uint8Array(data)]), name);
    return server.json(api(`/workspaces/${id}/files/${dir}`), { method: 'POST', body: form });
  };

  let first: string;
  let second: string;

  before(async () => {
    server = await startTestServer();
    await createRepo(server, 'oxc', 'repo');
    await putFiles(server, R, 'main/data', [{ name: 'old.txt', content: 'old', field: 'files[]' }]);
    first = await head();
    await new Promise((resolve) => setTimeout(resolve, 5));
    await putFiles(server, R, 'main/data', [{ name: 'new.txt', content: 'new', field: 'files[]' }], { ...AUTHOR, message: 'second' });
    second = await head();
  });
  after(() => server.stop());

  it('takes JSON bodies sent without a Content-Type (or as text/plain)', async () => {
    const created = await bare('POST', api('/branches'), { new_name: 'no-type', from_name: 'main' });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    assert.equal(created.body.branch.commit_id, second);
    const moved = await bare('PUT', api('/branches/no-type'), { commit_id: first, force: true });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.equal(await head('no-type'), first);
    const plain = await server.json(api('/branches'), { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ new_name: 'plain', commit_id: first }) });
    assert.equal(plain.status, 200, JSON.stringify(plain.body));
    const malformed = await server.raw('POST', api('/branches'), Buffer.from('{not json'));
    assert.equal(malformed.status, 400);
    assertEnvelope(malformed.body, 'error');
  });

  it('names what is missing when new_name is absent, and refuses to delete the default branch', async () => {
    const missing = await server.json(api('/branches'), json('POST', { from_name: 'main' }));
    assert.equal(missing.status, 400);
    assert.match(missing.body.status_description, /new_name is required/);
    const refused = await server.json(api('/branches/main'), { method: 'DELETE' });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error.type, 'default_branch');
    assert.equal(await head(), second);
    await server.json(api('/branches'), json('POST', { new_name: 'doomed', from_name: 'main' }));
    assert.equal((await server.json(api('/branches/doomed'), { method: 'DELETE' })).status, 200);
  });

  it('validates a workspace upload: 200 when it fits, 413 beyond free space, 404 for an unknown workspace, 400 for a bad size', async () => {
    await workspace('w-validate');
    const fits = await bare('POST', api('/workspaces/w-validate/validate'), { size: 1024 });
    assert.equal(fits.status, 200, JSON.stringify(fits.body));
    // An object store has no free space to run out of (availableBytes is null): any size fits there.
    assert.equal((await bare('POST', api('/workspaces/w-validate/validate'), { size: Number.MAX_SAFE_INTEGER })).status, blobsInS3 ? 200 : 413);
    assert.equal((await bare('POST', api('/workspaces/nobody/validate'), { size: 1 })).status, 404);
    assert.equal((await bare('POST', api('/workspaces/w-validate/validate'), { size: -1 })).status, 400);
  });

  it("answers workspace status in Oxen's shape: added_dirs and MetadataEntry pages per status", async () => {
    await workspace('w-status');
    const staged = await stage('w-status', 'fresh/deep', 'a.txt', Buffer.from('a'));
    assert.equal(staged.status, 200, JSON.stringify(staged.body));
    assert.equal((await stage('w-status', 'data', 'old.txt', Buffer.from('changed'))).status, 200);
    const moved = await bare('PATCH', api('/workspaces/w-status/files/data/new.txt'), { new_path: 'data/renamed.txt' });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    const { status, body } = await server.json(api('/workspaces/w-status/changes'));
    assert.equal(status, 200);
    const { added_dirs, added_files, modified_files, removed_files } = body.staged;
    assert.deepEqual(added_dirs.paths, {
      fresh: [
        { path: 'fresh', num_files_staged: 1, total_files: 1, status: 'Added' },
        { path: 'fresh/deep', num_files_staged: 1, total_files: 1, status: 'Added' },
      ],
    });
    assert.deepEqual(added_files.entries.map((e: { filename: string }) => e.filename).sort(), ['data/renamed.txt', 'fresh/deep/a.txt']);
    assert.deepEqual(modified_files.entries.map((e: { filename: string }) => e.filename), ['data/old.txt']);
    assert.deepEqual(removed_files.entries.map((e: { filename: string }) => e.filename), ['data/new.txt']);
    for (const entry of [...added_files.entries, ...modified_files.entries, ...removed_files.entries]) assertMetadataEntry(entry);
    assert.equal(modified_files.entries[0].hash, hashBuffer('changed'));
    assert.equal(added_files.total_entries, 2);
    // Read back through the workspace, as the client's `file/` and `meta/` calls do.
    assert.equal(await (await server.fetch(api('/file/w-status/data/old.txt'))).text(), 'changed');
    const meta = await server.json(api('/meta/w-status/fresh/deep/a.txt'));
    assert.equal(meta.status, 200, JSON.stringify(meta.body));
    assertMetadataEntry(meta.body.entry);
    assert.equal(meta.body.entry.latest_commit, null);
    const unchanged = await server.json(api('/meta/w-status/data'));
    assert.equal(unchanged.body.entry.is_dir, true);
    // Unstaging through Oxen's older `staged` route.
    const unstaged = await bare('DELETE', api('/workspaces/w-status/staged'), ['fresh/deep/a.txt']);
    assert.equal(unstaged.status, 200, JSON.stringify(unstaged.body));
    assert.equal((await server.json(api('/workspaces/w-status/changes'))).body.staged.added_files.total_entries, 1);
  });

  it('lists directories with latest commits, sort_by name or date, reverse and depth', async () => {
    const listing = await server.json(api('/dir/main/data'));
    assert.equal(listing.status, 200);
    assert.deepEqual(listing.body.entries.map((e: { filename: string }) => e.filename), ['new.txt', 'old.txt']);
    for (const entry of listing.body.entries) assertMetadataEntry(entry);
    assertMetadataEntry(listing.body.dir);
    const latest = Object.fromEntries(listing.body.entries.map((e: { filename: string; latest_commit: { id: string } }) => [e.filename, e.latest_commit.id]));
    assert.deepEqual(latest, { 'new.txt': second, 'old.txt': first });
    assert.equal(listing.body.dir.latest_commit.id, second);

    const byDate = await server.json(api('/dir/main/data?sort_by=date'));
    assert.deepEqual(byDate.body.entries.map((e: { filename: string }) => e.filename), ['old.txt', 'new.txt']);
    const newestFirst = await server.json(api('/dir/main/data?sort_by=date&reverse=true'));
    assert.deepEqual(newestFirst.body.entries.map((e: { filename: string }) => e.filename), ['new.txt', 'old.txt']);
    const reversedNames = await server.json(api('/dir/main/?reverse=true'));
    // Directories stay first whatever the order.
    assert.deepEqual(reversedNames.body.entries.map((e: { filename: string }) => e.filename), ['data', 'README.md'].filter((n) => reversedNames.body.entries.some((e: { filename: string }) => e.filename === n)));

    const shallow = await server.json(api('/dir/main/'));
    assert.equal(shallow.body.entries.find((e: { filename: string }) => e.filename === 'data').children, undefined);
    const deep = await server.json(api('/dir/main/?depth=1'));
    const data = deep.body.entries.find((e: { filename: string }) => e.filename === 'data');
    assert.deepEqual(data.children.map((c: { filename: string }) => c.filename), ['new.txt', 'old.txt']);
    assert.equal(data.children[1].latest_commit.id, first);
    assert.equal(data.latest_commit.id, second);

    assert.equal((await server.json(api('/dir/main/data?sort_by=size'))).status, 400);
    assert.equal((await server.json(api('/dir/main/data?depth=x'))).status, 400);
  });

  it('pages history of a range base..head, and still reads a path whose name contains ..', async () => {
    const range = await server.json(api(`/commits/history/${first}..${second}`));
    assert.equal(range.status, 200, JSON.stringify(range.body));
    assert.deepEqual(range.body.commits.map((c: { id: string }) => c.id), [second]);
    assert.equal(range.body.total_entries, 1);
    assert.equal(range.body.has_more, false);
    // A path's history says whether more pages follow (oxenai 0.65 reads `has_more`).
    const firstPage = await server.json(api('/commits/history/main/data?page_size=1'));
    assert.deepEqual([firstPage.body.commits.length, firstPage.body.has_more], [1, true]);
    const lastPage = await server.json(api('/commits/history/main/data?page_size=1&page=2'));
    assert.deepEqual([lastPage.body.commits[0].id, lastPage.body.has_more], [first, false]);
    await putFiles(server, R, 'main/odd/a..b.txt', [{ name: 'a..b.txt', content: 'dots' }]);
    const dotted = await server.json(api('/commits/history/main/odd/a..b.txt'));
    assert.equal(dotted.status, 200, JSON.stringify(dotted.body));
    assert.equal(dotted.body.total_entries, 1);
    assert.equal((await server.json(api(`/commits/history/${first}..nowhere`))).status, 404);
  });

  it('lists the directories that changed between two revisions (compare/dir_tree)', async () => {
    await server.json(api('/branches'), json('POST', { new_name: 'tree-base', from_name: 'main' }));
    await putFiles(server, R, 'main/images/train/cat.jpg', [{ name: 'cat.jpg', content: 'cat' }]);
    await putFiles(server, R, 'main/data/third.txt', [{ name: 'third.txt', content: '3' }]);
    const { status, body } = await server.json(api('/compare/dir_tree/tree-base..main'));
    assert.equal(status, 200, JSON.stringify(body));
    const byName = Object.fromEntries(body.dirs.map((d: { name: string }) => [d.name, d]));
    assert.deepEqual(byName[''].children, [
      { name: 'data', status: 'modified' },
      { name: 'images', status: 'added' },
    ]);
    assert.deepEqual(byName.images.children, [{ name: 'images/train', status: 'added' }]);
    assert.equal(byName.images.status, 'added');
    assert.equal(byName[''].num_subdirs, 2);
  });

  it('accepts Oxen clients from 0.36.0 on and answers older ones 426 update_required, as oxen-server does', async () => {
    const asClient = (agent: string) => server.raw('GET', api('/branches'), undefined, { 'user-agent': agent });
    for (const agent of ['Oxen/0.36.0', 'Oxen/0.54.0', 'Oxen/0.65.1', 'oxen/1.0.0', 'curl/8.5.0', 'Mozilla/5.0']) {
      assert.equal((await asClient(agent)).status, 200, agent);
    }
    for (const agent of ['Oxen/0.35.9', 'Oxen/0.9.12', 'Oxen']) {
      const refused = await asClient(agent);
      assert.equal(refused.status, 426, agent);
      assertEnvelope(refused.body, 'error');
      assert.equal(refused.body.error.type, 'update_required');
    }
    // The version routes stay open so an old client can learn what it needs.
    const min = await server.raw('GET', '/api/min_version', undefined, { 'user-agent': 'Oxen/0.20.0' });
    assert.equal(min.status, 200);
    assert.equal(min.body.version, '0.36.0');
  });

  it('acknowledges commits/{id}/complete and the action hooks; 404 for unknown ones', async () => {
    const done = await server.json(api(`/commits/${second}/complete`), { method: 'POST' });
    assert.equal(done.status, 200);
    assert.equal(done.body.commit.id, second);
    assert.equal((await server.json(api('/commits/abc123/complete'), { method: 'POST' })).status, 404);
    assert.equal((await server.json(api('/action/started/push'), { method: 'POST' })).status, 200);
    assert.equal((await server.json(api('/action/completed/clone'))).status, 200);
    assert.equal((await server.json(api('/action/paused/push'), { method: 'POST' })).status, 404);
    assert.equal((await server.json('/api/repos/oxc/missing/action/started/push', { method: 'POST' })).status, 404);
  });

  it('answers an up-to-date merge with the unchanged head as the merge commit', async () => {
    await server.json(api('/branches'), json('POST', { new_name: 'behind', commit_id: first }));
    const res = await server.json(api('/merge/main..behind'), json('POST', { name: AUTHOR.name, email: AUTHOR.email }));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.commits.merge.id, await head());
  });

  it('dates an entry by its latest change along first parents, not by a change undone on a merged branch', async () => {
    const put = (branch: string, content: string, message: string) => putFiles(server, R, `${branch}/fp/y.txt`, [{ name: 'y.txt', content }], { ...AUTHOR, message });
    await put('main', 'v1', 'm0');
    await server.json(api('/branches'), json('POST', { new_name: 'fp-side', from_name: 'main' }));
    await put('fp-side', 'v2', 's1');
    await put('fp-side', 'v1', 's2 revert');
    await put('main', 'v3', 'm1');
    const m1 = await head();
    const merged = await server.json(api('/merge/main..fp-side'), json('POST', { name: AUTHOR.name, email: AUTHOR.email }));
    assert.equal(merged.status, 200, JSON.stringify(merged.body));
    assert.equal(await (await server.fetch(api('/file/main/fp/y.txt'))).text(), 'v3');
    const meta = await server.json(api('/meta/main/fp'));
    assert.equal(meta.body.entry.latest_commit.id, m1);
    const listing = await server.json(api('/dir/main/fp'));
    assert.equal(listing.body.entries[0].latest_commit.id, m1);
  });

  it('transfers a repository to another namespace', async () => {
    await createRepo(server, 'oxc', 'moving');
    await createRepo(server, 'taken', 'moving');
    assert.equal((await server.json('/api/repos/oxc/moving/transfer', json('PATCH', { namespace: 'taken' }))).status, 409);
    assert.equal((await server.json('/api/repos/oxc/moving/transfer', json('PATCH', { namespace: '../x' }))).status, 400);
    const moved = await server.json('/api/repos/oxc/moving/transfer', json('PATCH', { namespace: 'elsewhere' }));
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.equal(moved.body.repository.namespace, 'elsewhere');
    assert.equal((await server.json('/api/repos/oxc/moving')).status, 404);
    assert.equal((await server.json('/api/repos/elsewhere/moving')).status, 200);
  });

  describe('versions/uploads (large files in numbered parts)', () => {
    const PART = 16 * 1024 * 1024;
    const sendPart = (uploadId: string, n: number, bytes: Buffer) =>
      server.raw('PUT', api(`/versions/uploads/${uploadId}/parts/${n}`), bytes, { 'content-length': String(bytes.length) });

    it('takes parts in any order, completes on the part that makes the file whole, and stages it at the destination', async () => {
      await workspace('w-big');
      const data = randomBytes(2 * PART + 12345);
      const hash = hashBuffer(data);
      const begun = await bare('POST', api('/versions/uploads'), { hash, size: data.length, destination: { workspace_id: 'w-big', path: 'models/big.bin' } });
      assert.equal(begun.status, 200, JSON.stringify(begun.body));
      assert.equal(begun.body.file, 'awaiting_parts');
      assert.equal(begun.body.num_parts, 3);
      assert.equal(begun.body.part_size, PART);
      assert.ok(begun.body.part_window >= 1);
      const id = begun.body.upload_id;
      const part = (n: number) => data.subarray((n - 1) * PART, Math.min(n * PART, data.length));
      assert.deepEqual((await sendPart(id, 3, part(3))).body.completed, false);
      assert.deepEqual((await sendPart(id, 1, part(1))).body.completed, false);
      const last = await sendPart(id, 2, part(2));
      assert.equal(last.status, 200, JSON.stringify(last.body));
      assert.equal(last.body.completed, true);
      // The upload is gone once complete: a late part learns it with 404 and begins again.
      assert.equal((await sendPart(id, 1, part(1))).status, 404);
      const again = await bare('POST', api('/versions/uploads'), { hash, size: data.length });
      assert.equal(again.body.file, 'already_stored');
      assert.deepEqual(Buffer.from(await (await server.fetch(api('/file/w-big/models/big.bin'))).arrayBuffer()), data);
      const committed = await server.json(api('/workspaces/w-big/commit/main'), json('POST', { message: 'big', author: AUTHOR.name, email: AUTHOR.email }));
      assert.equal(committed.status, 200, JSON.stringify(committed.body));
      assert.equal((await server.fetch(api('/file/main/models/big.bin'))).headers.get('etag'), `"${hash}"`);
    });

    it('stages the file at the destination of every begin (a client that restarted, another workspace)', async () => {
      await workspace('w-first');
      await workspace('w-second');
      const data = randomBytes(PART + 10);
      const hash = hashBuffer(data);
      const first = await bare('POST', api('/versions/uploads'), { hash, size: data.length, destination: { workspace_id: 'w-first', path: 'a/big.bin' } });
      assert.equal((await sendPart(first.body.upload_id, 1, data.subarray(0, PART))).body.completed, false);
      // The first client is gone; another begins the same file for another workspace and finishes it.
      const second = await bare('POST', api('/versions/uploads'), { hash, size: data.length, destination: { workspace_id: 'w-second', path: 'b/big.bin' } });
      assert.equal(second.body.upload_id, first.body.upload_id);
      assert.equal((await sendPart(second.body.upload_id, 1, data.subarray(0, PART))).body.completed, false);
      assert.equal((await sendPart(second.body.upload_id, 2, data.subarray(PART))).body.completed, true);
      for (const [ws, path] of [['w-second', 'b/big.bin'], ['w-first', 'a/big.bin']]) {
        const res = await server.fetch(api(`/file/${ws}/${path}`));
        assert.equal(res.status, 200, `${ws}/${path}`);
        assert.equal(res.headers.get('etag'), `"${hash}"`);
      }
    });

    it('adopts the size of an upload opened without one (versions/{hash}/create), and caps a part at its own length', async () => {
      const data = randomBytes(PART + 300);
      const hash = hashBuffer(data);
      assert.equal((await bare('POST', api(`/versions/${hash}/create`), {})).status, 200);
      const begun = await bare('POST', api('/versions/uploads'), { hash, size: data.length });
      assert.equal(begun.status, 200, JSON.stringify(begun.body));
      assert.equal(begun.body.num_parts, 2);
      const id = begun.body.upload_id;
      assert.equal((await sendPart(id, 2, data.subarray(PART))).body.completed, false);
      // Part 1 sent without Content-Length and with extra bytes: refused, and part 2 is untouched.
      const tooLong = await server.raw('PUT', api(`/versions/uploads/${id}/parts/1`), Buffer.concat([data.subarray(0, PART), Buffer.alloc(100, 7)]), { 'transfer-encoding': 'chunked' });
      assert.equal(tooLong.status, 400, JSON.stringify(tooLong.body));
      const done = await sendPart(id, 1, data.subarray(0, PART));
      assert.equal(done.status, 200, JSON.stringify(done.body));
      assert.equal(done.body.completed, true);
      assert.equal((await bare('POST', api('/versions/uploads'), { hash, size: data.length })).body.file, 'already_stored');
    });

    it('refuses parts of the wrong size or number and bytes that do not match the hash', async () => {
      const data = randomBytes(1000);
      const wrong = hashBuffer(Buffer.from('something else'));
      const begun = await bare('POST', api('/versions/uploads'), { hash: wrong, size: data.length });
      assert.equal(begun.body.num_parts, 1);
      const id = begun.body.upload_id;
      assert.equal((await sendPart(id, 2, data)).status, 400);
      assert.equal((await sendPart(id, 1, data.subarray(0, 10))).status, 400);
      const mismatch = await sendPart(id, 1, data);
      assert.equal(mismatch.status, 400, JSON.stringify(mismatch.body));
      assert.equal(mismatch.body.error.type, 'hash_mismatch');
      assert.equal((await server.fetch(api(`/versions/${wrong}/metadata`))).status, 404);
      assert.equal((await sendPart('ffff', 1, data)).status, 404);
      assert.equal((await bare('POST', api('/versions/uploads'), { hash: 'zz', size: 1 })).status, 400);
      assert.equal((await bare('POST', api('/versions/uploads'), { hash: wrong, size: -5 })).status, 400);
      assert.equal((await bare('POST', api('/versions/uploads'), { hash: wrong, size: 5, destination: { workspace_id: 'nobody', path: 'x' } })).status, 404);
      await workspace('w-parts');
      await putFiles(server, R, 'main/taken.txt', [{ name: 'taken.txt', content: 'a file' }]);
      await workspace('w-clash');
      // A destination that cannot take a file is refused before a byte is sent.
      const clash = await bare('POST', api('/versions/uploads'), { hash: wrong, size: 5, destination: { workspace_id: 'w-clash', path: 'taken.txt/inner.bin' } });
      assert.equal(clash.status, 400, JSON.stringify(clash.body));
      assert.equal((await bare('POST', api('/versions/uploads'), { hash: wrong, size: 5, destination: { workspace_id: 'w-parts', path: '../x' } })).status, 400);
    });
  });
});

describe('latest commits in a directory split into many buckets', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ vnodeSize: 2 });
    await createRepo(server, 'oxc', 'buckets');
  });
  after(() => server.stop());

  it('dates every entry by the commit that last changed it', async () => {
    const R = 'oxc/buckets';
    const heads: string[] = [];
    const headOf = async () => (await server.json(`/api/repos/${R}/branches/main`)).body.branch.commit_id as string;
    await putFiles(server, R, 'main/many', Array.from({ length: 12 }, (_, i) => ({ name: `f${i}.txt`, content: `v0 ${i}`, field: 'files[]' })));
    heads.push(await headOf());
    await putFiles(server, R, 'main/many/f3.txt', [{ name: 'f3.txt', content: 'v1' }]);
    heads.push(await headOf());
    await putFiles(server, R, 'main/other.txt', [{ name: 'other.txt', content: 'elsewhere' }]);
    await putFiles(server, R, 'main/many/f7.txt', [{ name: 'f7.txt', content: 'v2' }]);
    heads.push(await headOf());
    const listing = await server.json(`/api/repos/${R}/dir/main/many?page_size=100`);
    assert.equal(listing.body.total_entries, 12);
    const dated = Object.fromEntries(listing.body.entries.map((e: { filename: string; latest_commit: { id: string } }) => [e.filename, e.latest_commit.id]));
    for (let i = 0; i < 12; i++) {
      const expected = i === 3 ? heads[1] : i === 7 ? heads[2] : heads[0];
      assert.equal(dated[`f${i}.txt`], expected, `f${i}.txt`);
    }
    const byDate = await server.json(`/api/repos/${R}/dir/main/many?sort_by=date&reverse=true&page_size=2`);
    assert.deepEqual(byDate.body.entries.map((e: { filename: string }) => e.filename), ['f7.txt', 'f3.txt']);
  });
});
