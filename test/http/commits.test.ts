import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AUTHOR, assertEnvelope, createRepo, putFiles, startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let counter = 0;

before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.stop();
});

async function freshRepo(): Promise<string> {
  const name = `commits-${++counter}`;
  await createRepo(server, 'ns', name);
  return `ns/${name}`;
}

async function upload(repo: string, resource: string, content: string, message: string): Promise<any> {
  const name = resource.split('/').pop()!;
  const { status, body } = await putFiles(server, repo, resource, [{ name, content }], { ...AUTHOR, message });
  assert.equal(status, 200, JSON.stringify(body));
  return body.commit;
}

async function ok(path: string, init?: RequestInit) {
  const { status, body } = await server.json(path, init);
  assert.equal(status, 200, `${path}: ${JSON.stringify(body)}`);
  assertEnvelope(body, 'success');
  return body;
}

function assertCommitShape(c: any) {
  assert.equal(typeof c.id, 'string');
  assert.match(c.id, /^[0-9a-f]{1,32}$/);
  assert.ok(Array.isArray(c.parent_ids));
  assert.equal(typeof c.message, 'string');
  assert.equal(c.author, AUTHOR.name);
  assert.equal(c.email, AUTHOR.email);
  assert.equal(typeof c.timestamp, 'string');
  assert.ok(!Number.isNaN(Date.parse(c.timestamp)), c.timestamp);
}

/** Five commits on main, one file per request: f0.txt … f4.txt. Returns them oldest first. */
async function chainOfFive(repo: string) {
  const commits = [];
  for (let i = 0; i < 5; i++) commits.push(await upload(repo, `main/f${i}.txt`, `file ${i}`, `commit ${i}`));
  return commits;
}

describe('commit history', () => {
  let repo: string;
  let chain: any[];

  before(async () => {
    repo = await freshRepo();
    chain = await chainOfFive(repo);
  });

  test('history of main is newest first with pagination totals', async () => {
    const body = await ok(`/api/repos/${repo}/commits/history/main`);
    assert.equal(body.total_entries, 5);
    assert.equal(body.page_number, 1);
    assert.equal(body.page_size, 100);
    assert.equal(body.total_pages, 1);
    assert.deepEqual(body.commits.map((c: any) => c.id), [...chain].reverse().map((c) => c.id));
    assert.deepEqual(body.commits.map((c: any) => c.message), ['commit 4', 'commit 3', 'commit 2', 'commit 1', 'commit 0']);
    for (const c of body.commits) assertCommitShape(c);

    // Linear parent chain: each commit's first parent is the next older one; the root has none.
    for (let i = 0; i < body.commits.length - 1; i++) {
      assert.deepEqual(body.commits[i].parent_ids, [body.commits[i + 1].id]);
    }
    assert.deepEqual(body.commits.at(-1).parent_ids, []);
  });

  test('page_size and page select the right slice; past the end is empty with totals', async () => {
    const page2 = await ok(`/api/repos/${repo}/commits/history/main?page_size=2&page=2`);
    assert.equal(page2.page_number, 2);
    assert.equal(page2.page_size, 2);
    assert.equal(page2.total_pages, 3);
    assert.equal(page2.total_entries, 5);
    assert.deepEqual(page2.commits.map((c: any) => c.id), [chain[2].id, chain[1].id]);

    const page3 = await ok(`/api/repos/${repo}/commits/history/main?page_size=2&page=3`);
    assert.deepEqual(page3.commits.map((c: any) => c.id), [chain[0].id]);

    const past = await ok(`/api/repos/${repo}/commits/history/main?page_size=2&page=9`);
    assert.deepEqual(past.commits, []);
    assert.equal(past.page_number, 9);
    assert.equal(past.total_entries, 5);
    assert.equal(past.total_pages, 3);
  });

  test('history at a commit id starts at that commit', async () => {
    const body = await ok(`/api/repos/${repo}/commits/history/${chain[2].id}`);
    assert.equal(body.total_entries, 3);
    assert.deepEqual(body.commits.map((c: any) => c.id), [chain[2].id, chain[1].id, chain[0].id]);
    const upper = await ok(`/api/repos/${repo}/commits/history/${chain[2].id.toUpperCase()}`);
    assert.deepEqual(upper.commits.map((c: any) => c.id), body.commits.map((c: any) => c.id));
  });

  test('GET commits/{id}, unknown ids, root and all', async () => {
    const one = await ok(`/api/repos/${repo}/commits/${chain[3].id}`);
    assert.equal(one.commit.id, chain[3].id);
    assert.deepEqual(one.commit.parent_ids, [chain[2].id]);
    assert.equal(one.commit.message, 'commit 3');
    assertCommitShape(one.commit);

    for (const unknown of ['abcdef0123456789abcdef0123456789', 'not-a-commit', 'main']) {
      const res = await server.json(`/api/repos/${repo}/commits/${unknown}`);
      assert.equal(res.status, 404, unknown);
      assertEnvelope(res.body, 'error');
    }

    const root = await ok(`/api/repos/${repo}/commits/root`);
    assert.equal(root.commit.id, chain[0].id);
    assert.deepEqual(root.commit.parent_ids, []);

    const all = await ok(`/api/repos/${repo}/commits/all`);
    assert.equal(all.total_entries, 5);
    assert.deepEqual(all.commits.map((c: any) => c.id).sort(), chain.map((c) => c.id).sort());
    const allPaged = await ok(`/api/repos/${repo}/commits/all?page_size=2&page=3`);
    assert.equal(allPaged.commits.length, 1);
    assert.equal(allPaged.total_pages, 3);
    assert.equal(allPaged.total_entries, 5);
  });

  test('commits/{revision}/parents lists the ancestors and the direct parents', async () => {
    const byBranch = await ok(`/api/repos/${repo}/commits/main/parents`);
    assert.deepEqual(byBranch.commits.map((c: any) => c.id), [chain[3].id, chain[2].id, chain[1].id, chain[0].id]);
    assert.deepEqual(byBranch.parents.map((c: any) => c.id), [chain[3].id]);

    const byId = await ok(`/api/repos/${repo}/commits/${chain[1].id}/parents`);
    assert.deepEqual(byId.commits.map((c: any) => c.id), [chain[0].id]);
    assert.deepEqual(byId.parents.map((c: any) => c.id), [chain[0].id]);

    const ofRoot = await ok(`/api/repos/${repo}/commits/${chain[0].id}/parents`);
    assert.deepEqual(ofRoot.commits, []);
    assert.deepEqual(ofRoot.parents, []);

    const unknown = await server.json(`/api/repos/${repo}/commits/nope/parents`);
    assert.equal(unknown.status, 404);
    assertEnvelope(unknown.body, 'error');
  });

  test('commits/all includes commits of other branches', async () => {
    const other = await freshRepo();
    const [c0] = [await upload(other, 'main/a.txt', 'a', 'main 0')];
    const created = await server.json(`/api/repos/${other}/branches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ new_name: 'side', from_name: 'main' }),
    });
    assert.equal(created.status, 200);
    const s1 = await upload(other, 'side/s.txt', 's', 'side 1');
    const m1 = await upload(other, 'main/b.txt', 'b', 'main 1');
    const all = await ok(`/api/repos/${other}/commits/all`);
    assert.equal(all.total_entries, 3);
    assert.deepEqual(all.commits.map((c: any) => c.id).sort(), [c0.id, s1.id, m1.id].sort());
    const mainHistory = await ok(`/api/repos/${other}/commits/history/main`);
    assert.deepEqual(mainHistory.commits.map((c: any) => c.id), [m1.id, c0.id]);
    const sideHistory = await ok(`/api/repos/${other}/commits/history/side`);
    assert.deepEqual(sideHistory.commits.map((c: any) => c.id), [s1.id, c0.id]);
  });
});

describe('path history', () => {
  test('history of one path lists only the commits that changed it', async () => {
    const repo = await freshRepo();
    const c0 = await upload(repo, 'main/data/x.csv', 'v1', 'x v1');
    await upload(repo, 'main/other.txt', 'o1', 'other 1');
    const c2 = await upload(repo, 'main/data/x.csv', 'v2', 'x v2');
    await upload(repo, 'main/data/y.csv', 'y', 'y');
    const c4 = await upload(repo, 'main/data/x.csv', 'v3', 'x v3');
    await upload(repo, 'main/other.txt', 'o2', 'other 2');

    const x = await ok(`/api/repos/${repo}/commits/history/main/data/x.csv`);
    assert.deepEqual(x.commits.map((c: any) => c.id), [c4.id, c2.id, c0.id]);
    assert.equal(x.total_entries, 3);
    assert.equal(x.total_pages, 1);

    const paged = await ok(`/api/repos/${repo}/commits/history/main/data/x.csv?page_size=2&page=2`);
    assert.deepEqual(paged.commits.map((c: any) => c.id), [c0.id]);
    assert.equal(paged.total_entries, 3);
    assert.equal(paged.total_pages, 2);

    const other = await ok(`/api/repos/${repo}/commits/history/main/other.txt`);
    assert.deepEqual(other.commits.map((c: any) => c.message), ['other 2', 'other 1']);

    // A directory's history: every commit that changed something below it.
    const dir = await ok(`/api/repos/${repo}/commits/history/main/data`);
    assert.deepEqual(dir.commits.map((c: any) => c.message), ['x v3', 'y', 'x v2', 'x v1']);

    // At a commit id, with a path.
    const atC2 = await ok(`/api/repos/${repo}/commits/history/${c2.id}/data/x.csv`);
    assert.deepEqual(atC2.commits.map((c: any) => c.id), [c2.id, c0.id]);
  });
});

describe('history edge cases', () => {
  test('empty repository: history is an empty page, as Oxen answers', async () => {
    const repo = await freshRepo();
    const res = await server.json(`/api/repos/${repo}/commits/history/main`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assertEnvelope(res.body, 'success');
    assert.deepEqual(res.body.commits, []);
    assert.equal(res.body.total_entries, 0);
    assert.equal(res.body.total_pages, 1);
    assert.equal(res.body.page_number, 1);

    const all = await ok(`/api/repos/${repo}/commits/all`);
    assert.deepEqual(all.commits, []);
    assert.equal(all.total_entries, 0);
    const root = await ok(`/api/repos/${repo}/commits/root`);
    assert.equal(root.commit, null);
  });

  test('unknown revision or repository answers a 404 JSON envelope', async () => {
    const repo = await freshRepo();
    await upload(repo, 'main/a.txt', 'a', 'a');
    for (const path of [
      `/api/repos/${repo}/commits/history/nope`,
      `/api/repos/${repo}/commits/history/abcdef0123456789abcdef0123456789`,
      '/api/repos/ns/no-such-repo/commits/history/main',
      '/api/repos/ns/no-such-repo/commits/all',
      '/api/repos/ns/no-such-repo/commits/root',
    ]) {
      const res = await server.json(path);
      assert.equal(res.status, 404, `${path}: ${JSON.stringify(res.body)}`);
      assertEnvelope(res.body, 'error');
    }
    const bad = await server.json(`/api/repos/${repo}/commits/history/main//a.txt`);
    assert.ok(bad.status >= 400 && bad.status < 500, String(bad.status));
    assertEnvelope(bad.body, 'error');
  });
});

describe('delete and move create one commit each', () => {
  test('DELETE file and PATCH (move) each add exactly one commit with the right tree', async () => {
    const repo = await freshRepo();
    await upload(repo, 'main/keep.txt', 'keep', 'keep');
    await upload(repo, 'main/gone.txt', 'gone', 'gone');
    const c2 = await upload(repo, 'main/dir/old.txt', 'moving bytes', 'old');
    const before = await ok(`/api/repos/${repo}/commits/history/main`);
    assert.equal(before.total_entries, 3);

    const del = await ok(`/api/repos/${repo}/file/main/gone.txt`, { method: 'DELETE' });
    assert.equal(del.status_message, 'resource_deleted');
    assert.deepEqual(del.commit.parent_ids, [c2.id]);
    const afterDelete = await ok(`/api/repos/${repo}/commits/history/main`);
    assert.equal(afterDelete.total_entries, 4);
    assert.equal(afterDelete.commits[0].id, del.commit.id);
    assert.equal((await server.json(`/api/repos/${repo}/file/main/gone.txt`)).status, 404);
    assert.equal(await (await server.fetch(`/api/repos/${repo}/file/main/keep.txt`)).text(), 'keep');
    // The deleted file is still there in the older commit.
    assert.equal(await (await server.fetch(`/api/repos/${repo}/file/${c2.id}/gone.txt`)).text(), 'gone');

    const move = await ok(`/api/repos/${repo}/file/main/dir/old.txt`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ new_path: 'moved/new.txt', message: 'rename it' }),
    });
    assert.equal(move.status_message, 'resource_updated');
    assert.deepEqual(move.commit.parent_ids, [del.commit.id]);
    assert.equal(move.commit.message, 'rename it');
    const afterMove = await ok(`/api/repos/${repo}/commits/history/main`);
    assert.equal(afterMove.total_entries, 5);
    assert.deepEqual(afterMove.commits.slice(0, 2).map((c: any) => c.id), [move.commit.id, del.commit.id]);

    const oldPath = await server.json(`/api/repos/${repo}/file/main/dir/old.txt`);
    assert.equal(oldPath.status, 404);
    assertEnvelope(oldPath.body, 'error');
    const newPath = await server.fetch(`/api/repos/${repo}/file/main/moved/new.txt`);
    assert.equal(newPath.status, 200);
    assert.equal(await newPath.text(), 'moving bytes');

    // Path histories see the delete and the move.
    const goneHistory = await ok(`/api/repos/${repo}/commits/history/main/gone.txt`);
    assert.deepEqual(goneHistory.commits.map((c: any) => c.id), [del.commit.id, before.commits[1].id]);
    const newHistory = await ok(`/api/repos/${repo}/commits/history/main/moved/new.txt`);
    assert.deepEqual(newHistory.commits.map((c: any) => c.id), [move.commit.id]);
  });
});
