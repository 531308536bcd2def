import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { assertEnvelope, createRepo, putFiles, startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let counter = 0;

before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.stop();
});

/** A fresh repository `ns/<name>`; returns its `ns/name` path. */
async function freshRepo(): Promise<string> {
  const name = `branches-${++counter}`;
  await createRepo(server, 'ns', name);
  return `ns/${name}`;
}

async function upload(repo: string, resource: string, name: string, content: string): Promise<string> {
  const { status, body } = await putFiles(server, repo, resource, [{ name, content }]);
  assert.equal(status, 200, JSON.stringify(body));
  assertEnvelope(body, 'success');
  return body.commit.id as string;
}

function send(method: string, path: string, body: unknown, contentType = 'application/json') {
  return server.json(path, {
    method,
    headers: { 'content-type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function getBranch(repo: string, name: string) {
  return server.json(`/api/repos/${repo}/branches/${name}`);
}

function assertError(res: { status: number; body: any }, status: number) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assertEnvelope(res.body, 'error');
}

describe('branches: list and create', () => {
  test('after the first upload, main exists and points at the upload commit', async () => {
    const repo = await freshRepo();
    const empty = await server.json(`/api/repos/${repo}/branches`);
    assert.equal(empty.status, 200);
    assert.deepEqual(empty.body.branches, []);

    const commitId = await upload(repo, 'main/a.txt', 'a.txt', 'a');
    const { status, body } = await server.json(`/api/repos/${repo}/branches`);
    assert.equal(status, 200);
    assertEnvelope(body, 'success');
    assert.equal(body.branches.length, 1);
    assert.equal(body.branches[0].name, 'main');
    assert.equal(body.branches[0].commit_id, commitId);
  });

  test('POST {new_name, from_name} creates a branch at the source head', async () => {
    const repo = await freshRepo();
    const commitId = await upload(repo, 'main/a.txt', 'a.txt', 'a');
    const { status, body } = await send('POST', `/api/repos/${repo}/branches`, { new_name: 'dev', from_name: 'main' });
    assert.equal(status, 200, JSON.stringify(body));
    assertEnvelope(body, 'success');
    assert.equal(body.status_message, 'resource_created');
    assert.equal(body.branch.name, 'dev');
    assert.equal(body.branch.commit_id, commitId);
    assert.equal(body.name, 'dev');
    assert.equal(body.commit_id, commitId);
    assert.equal(typeof body.created_at, 'string');
    assert.ok(!Number.isNaN(Date.parse(body.created_at)));

    const listed = await server.json(`/api/repos/${repo}/branches`);
    assert.deepEqual(listed.body.branches.map((b: any) => b.name).sort(), ['dev', 'main']);
  });

  test('POST {new_name, commit_id} accepts canonical, upper-case and zero-padded ids', async () => {
    const repo = await freshRepo();
    const first = await upload(repo, 'main/a.txt', 'a.txt', 'a');
    await upload(repo, 'main/b.txt', 'b.txt', 'b');

    const canonical = await send('POST', `/api/repos/${repo}/branches`, { new_name: 'at-first', commit_id: first });
    assert.equal(canonical.status, 200, JSON.stringify(canonical.body));
    assert.equal(canonical.body.branch.commit_id, first);
    assert.equal(canonical.body.commit_id, first);

    const upper = await send('POST', `/api/repos/${repo}/branches`, { new_name: 'upper', commit_id: first.toUpperCase() });
    assert.equal(upper.status, 200, JSON.stringify(upper.body));
    assert.equal(upper.body.branch.commit_id, first, 'the stored id is canonical (lower-case)');

    // Ids have no leading zeros; one shorter than 32 digits can be zero-padded (about 1 in 16).
    if (first.length < 32) {
      const zero = await send('POST', `/api/repos/${repo}/branches`, { new_name: 'padded', commit_id: first.padStart(32, '0').toUpperCase() });
      assert.equal(zero.status, 200, JSON.stringify(zero.body));
      assert.equal(zero.body.branch.commit_id, first);
    }
    const fetched = await getBranch(repo, 'upper');
    assert.equal(fetched.status, 200);
    assert.equal(fetched.body.branch.commit_id, first);
  });

  test('creating an existing name answers 409 and does not move the branch', async () => {
    const repo = await freshRepo();
    const first = await upload(repo, 'main/a.txt', 'a.txt', 'a');
    const second = await upload(repo, 'main/b.txt', 'b.txt', 'b');
    assert.equal((await send('POST', `/api/repos/${repo}/branches`, { new_name: 'dev', commit_id: first })).status, 200);

    const fromBranch = await send('POST', `/api/repos/${repo}/branches`, { new_name: 'dev', from_name: 'main' });
    assertError(fromBranch, 409);
    assert.equal(fromBranch.body.status_message, 'conflict');
    const fromCommit = await send('POST', `/api/repos/${repo}/branches`, { new_name: 'dev', commit_id: second });
    assertError(fromCommit, 409);

    const dev = await getBranch(repo, 'dev');
    assert.equal(dev.body.branch.commit_id, first);
  });

  test('unknown from_name or commit_id answers 404', async () => {
    const repo = await freshRepo();
    await upload(repo, 'main/a.txt', 'a.txt', 'a');
    const noBranch = await send('POST', `/api/repos/${repo}/branches`, { new_name: 'dev', from_name: 'nope' });
    assertError(noBranch, 404);
    const noCommit = await send('POST', `/api/repos/${repo}/branches`, { new_name: 'dev', commit_id: 'abcdef0123456789abcdef0123456789' });
    assertError(noCommit, 404);
    const notHex = await send('POST', `/api/repos/${repo}/branches`, { new_name: 'dev', commit_id: 'not-a-commit' });
    assertError(notHex, 404);
    assertError(await getBranch(repo, 'dev'), 404);
  });

  test('invalid branch names answer 400', async () => {
    const repo = await freshRepo();
    await upload(repo, 'main/a.txt', 'a.txt', 'a');
    for (const name of ['a..b', 'has space', 'x~1', 'q?', 'c:d', 'end.', '@', 'x/', '/x', 'a//b', '']) {
      const res = await send('POST', `/api/repos/${repo}/branches`, { new_name: name, from_name: 'main' });
      assertError(res, 400);
      assert.equal(res.body.status_message, 'bad_request', name);
    }
    const notString = await send('POST', `/api/repos/${repo}/branches`, { new_name: 42, from_name: 'main' });
    assertError(notString, 400);
    const listed = await server.json(`/api/repos/${repo}/branches`);
    assert.deepEqual(listed.body.branches.map((b: any) => b.name), ['main']);
  });

  test('bad bodies answer 400 JSON; a JSON string sent as text/plain is accepted', async () => {
    const repo = await freshRepo();
    const commitId = await upload(repo, 'main/a.txt', 'a.txt', 'a');
    const url = `/api/repos/${repo}/branches`;

    assertError(await send('POST', url, '{"new_name": "dev", '), 400);
    assertError(await send('POST', url, '{"new_name": "dev", ', 'text/plain'), 400);
    assertError(await send('POST', url, '[1,2]'), 400);
    assertError(await send('POST', url, '"just a string"', 'text/plain'), 400);
    assertError(await send('POST', url, { new_name: 'dev' }), 400);
    const empty = await server.json(url, { method: 'POST', headers: { 'content-type': 'application/json' } });
    assertError(empty, 400);
    const noBody = await server.json(url, { method: 'POST' });
    assertError(noBody, 400);

    const text = await send('POST', url, JSON.stringify({ new_name: 'dev', from_name: 'main' }), 'text/plain');
    assert.equal(text.status, 200, JSON.stringify(text.body));
    assert.equal(text.body.branch.name, 'dev');
    assert.equal(text.body.branch.commit_id, commitId);
    const textUtf8 = await send('POST', url, JSON.stringify({ new_name: 'dev2', commit_id: commitId }), 'text/plain; charset=utf-8');
    assert.equal(textUtf8.status, 200, JSON.stringify(textUtf8.body));
  });

  test('unknown repository answers 404 for list and create', async () => {
    assertError(await server.json('/api/repos/ns/no-such-repo/branches'), 404);
    assertError(await send('POST', '/api/repos/ns/no-such-repo/branches', { new_name: 'dev', from_name: 'main' }), 404);
    assertError(await getBranch('ns/no-such-repo', 'main'), 404);
  });
});

describe('branches: names with slashes', () => {
  test("create 'feature/x', GET it, and upload through it", async () => {
    const repo = await freshRepo();
    const base = await upload(repo, 'main/a.txt', 'a.txt', 'main-a');
    const created = await send('POST', `/api/repos/${repo}/branches`, { new_name: 'feature/x', from_name: 'main' });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    assert.equal(created.body.branch.name, 'feature/x');

    const got = await getBranch(repo, 'feature/x');
    assert.equal(got.status, 200);
    assertEnvelope(got.body, 'success');
    assert.equal(got.body.branch.name, 'feature/x');
    assert.equal(got.body.branch.commit_id, base);

    const commitId = await upload(repo, 'feature/x/dir/a.txt', 'ignored.txt', 'on the feature');
    const after = await getBranch(repo, 'feature/x');
    assert.equal(after.body.branch.commit_id, commitId);
    assert.equal((await getBranch(repo, 'main')).body.branch.commit_id, base, 'main did not move');

    const file = await server.fetch(`/api/repos/${repo}/file/feature/x/dir/a.txt`);
    assert.equal(file.status, 200);
    assert.equal(await file.text(), 'on the feature');
    const onMain = await server.json(`/api/repos/${repo}/file/main/dir/a.txt`);
    assertError(onMain, 404);
    const byCommit = await server.fetch(`/api/repos/${repo}/file/${commitId}/dir/a.txt`);
    assert.equal(await byCommit.text(), 'on the feature');
    // The path must not have leaked the branch name into the tree.
    assertError(await server.json(`/api/repos/${repo}/file/feature/x/feature/x/dir/a.txt`), 404);
  });

  test("longest prefix: with branches 'a' and 'a/b', file/a/b/c.txt is path c.txt on a/b", async () => {
    const repo = await freshRepo();
    await upload(repo, 'main/seed.txt', 'seed.txt', 'seed');
    assert.equal((await send('POST', `/api/repos/${repo}/branches`, { new_name: 'a', from_name: 'main' })).status, 200);
    assert.equal((await send('POST', `/api/repos/${repo}/branches`, { new_name: 'a/b', from_name: 'main' })).status, 200);

    await upload(repo, 'a/b/c.txt', 'c.txt', 'on a/b');
    await upload(repo, 'a/b/c.txt', 'c.txt', 'on a/b again');
    const onAB = await server.fetch(`/api/repos/${repo}/file/a/b/c.txt`);
    assert.equal(onAB.status, 200);
    assert.equal(await onAB.text(), 'on a/b again');
    // Branch `a` got nothing: b/c.txt does not exist there, and nor does c.txt.
    const branchA = (await getBranch(repo, 'a')).body.branch.commit_id;
    assertError(await server.json(`/api/repos/${repo}/file/${branchA}/b/c.txt`), 404);
    assertError(await server.json(`/api/repos/${repo}/file/${branchA}/c.txt`), 404);
    assert.equal((await getBranch(repo, 'a/b')).body.branch.name, 'a/b');
  });

  test('GET of an unknown branch answers 404 JSON', async () => {
    const repo = await freshRepo();
    await upload(repo, 'main/a.txt', 'a.txt', 'a');
    const res = await getBranch(repo, 'nope');
    assertError(res, 404);
    assert.equal(res.body.status_message, 'resource_not_found');
    assertError(await getBranch(repo, 'main/nope'), 404);
  });
});

describe('branches: move and delete', () => {
  async function chain(repo: string) {
    const c1 = await upload(repo, 'main/a.txt', 'a.txt', 'one');
    const c2 = await upload(repo, 'main/b.txt', 'b.txt', 'two');
    return { c1, c2 };
  }

  test('PUT fast-forwards to a descendant', async () => {
    const repo = await freshRepo();
    const { c1, c2 } = await chain(repo);
    await send('POST', `/api/repos/${repo}/branches`, { new_name: 'ff', commit_id: c1 });
    const res = await send('PUT', `/api/repos/${repo}/branches/ff`, { commit_id: c2 });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assertEnvelope(res.body, 'success');
    assert.equal(res.body.status_message, 'resource_updated');
    assert.equal(res.body.branch.name, 'ff');
    assert.equal(res.body.branch.commit_id, c2);
    assert.equal((await getBranch(repo, 'ff')).body.branch.commit_id, c2);
    // Moving to the commit it is already on is fine too.
    assert.equal((await send('PUT', `/api/repos/${repo}/branches/ff`, { commit_id: c2 })).status, 200);
  });

  test('PUT to a non-descendant answers 409 and leaves the branch; force moves it', async () => {
    const repo = await freshRepo();
    const { c1, c2 } = await chain(repo);
    await send('POST', `/api/repos/${repo}/branches`, { new_name: 'side', commit_id: c1 });
    const s1 = await upload(repo, 'side/s.txt', 's.txt', 'side');

    const backwards = await send('PUT', `/api/repos/${repo}/branches/main`, { commit_id: c1 });
    assertError(backwards, 409);
    const diverged = await send('PUT', `/api/repos/${repo}/branches/main`, { commit_id: s1 });
    assertError(diverged, 409);
    assert.equal((await getBranch(repo, 'main')).body.branch.commit_id, c2);

    const forced = await send('PUT', `/api/repos/${repo}/branches/main`, { commit_id: s1, force: true });
    assert.equal(forced.status, 200, JSON.stringify(forced.body));
    assert.equal(forced.body.branch.commit_id, s1);
    assert.equal((await getBranch(repo, 'main')).body.branch.commit_id, s1);
    const file = await server.fetch(`/api/repos/${repo}/file/main/s.txt`);
    assert.equal(await file.text(), 'side');
  });

  test('PUT on a missing branch creates it; unknown commit is 404; bad body is 400', async () => {
    const repo = await freshRepo();
    const { c1 } = await chain(repo);
    const created = await send('PUT', `/api/repos/${repo}/branches/release/v1`, { commit_id: c1.toUpperCase() });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    assert.equal(created.body.branch.name, 'release/v1');
    assert.equal(created.body.branch.commit_id, c1);
    assert.equal((await getBranch(repo, 'release/v1')).body.branch.commit_id, c1);

    assertError(await send('PUT', `/api/repos/${repo}/branches/main`, { commit_id: 'abcdef0123456789abcdef0123456789' }), 404);
    assertError(await send('PUT', `/api/repos/${repo}/branches/ghost`, { commit_id: 'abcdef0123456789abcdef0123456789' }), 404);
    assertError(await getBranch(repo, 'ghost'), 404);
    assertError(await send('PUT', `/api/repos/${repo}/branches/main`, {}), 400);
    assertError(await send('PUT', `/api/repos/${repo}/branches/main`, '{oops'), 400);
    assertError(await send('PUT', `/api/repos/${repo}/branches/bad..name`, { commit_id: c1 }), 400);
  });

  test('DELETE removes the branch; unknown branch is 404', async () => {
    const repo = await freshRepo();
    const { c1 } = await chain(repo);
    await send('POST', `/api/repos/${repo}/branches`, { new_name: 'feature/gone', commit_id: c1 });
    const res = await server.json(`/api/repos/${repo}/branches/feature/gone`, { method: 'DELETE' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assertEnvelope(res.body, 'success');
    assert.equal(res.body.status_message, 'resource_deleted');
    assert.equal(res.body.branch.name, 'feature/gone');
    assertError(await getBranch(repo, 'feature/gone'), 404);
    assertError(await server.json(`/api/repos/${repo}/branches/feature/gone`, { method: 'DELETE' }), 404);
    assertError(await server.json(`/api/repos/${repo}/branches/never`, { method: 'DELETE' }), 404);
    // The commit survives: it can still be branched from.
    assert.equal((await send('POST', `/api/repos/${repo}/branches`, { new_name: 'again', commit_id: c1 })).status, 200);
  });
});
