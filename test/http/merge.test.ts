import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { hashBuffer } from '../../src/core/hash.js';
import { AUTHOR, assertEnvelope, createRepo, putFiles, startTestServer, type TestServer } from '../helpers/server.js';

/** undefined: leave the file alone; null: delete it; a string: write that content. */
type Side = string | null | undefined;

describe('merge', () => {
  let server: TestServer;
  let n = 0;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  const json = (method: string, body: unknown) => ({ method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  async function freshRepo() {
    const name = `merge-${++n}`;
    await createRepo(server, 'mg', name);
    await putFiles(server, `mg/${name}`, 'main/README.md', [{ name: 'README.md', content: 'start' }]);
    return `mg/${name}`;
  }
  async function write(repo: string, branch: string, path: string, side: Side) {
    if (side === undefined) return;
    if (side === null) {
      const res = await server.json(`/api/repos/${repo}/file/${branch}/${path}`, { method: 'DELETE' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    } else {
      const res = await putFiles(server, repo, `${branch}/${path}`, [{ name: 'f', content: side }]);
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }
  }
  const read = async (repo: string, rev: string, path: string) => {
    const res = await server.fetch(`/api/repos/${repo}/file/${rev}/${path}`);
    return res.status === 200 ? await res.text() : null;
  };
  const head = async (repo: string, branch: string) => (await server.json(`/api/repos/${repo}/branches/${branch}`)).body.branch.commit_id as string;
  const merge = (repo: string, range: string) => server.json(`/api/repos/${repo}/merge/${range}`, json('POST', AUTHOR));

  /** Builds LCA → ours (main) and LCA → theirs (feature) for file `f.txt`, each side also touching a file of its own. */
  async function scenario(lca: string | null, ours: Side, theirs: Side) {
    const repo = await freshRepo();
    if (lca !== null) await write(repo, 'main', 'f.txt', lca);
    await server.json(`/api/repos/${repo}/branches`, json('POST', { new_name: 'feature', from_name: 'main' }));
    await write(repo, 'main', 'f.txt', ours);
    await write(repo, 'main', 'main-only.txt', 'ours');
    await write(repo, 'feature', 'f.txt', theirs);
    await write(repo, 'feature', 'feature-only.txt', 'theirs');
    return repo;
  }

  const rows: Array<{ lca: string | null; ours: Side; theirs: Side; expect: string | null | 'conflict'; label: string }> = [
    { label: 'X X Y → take theirs', lca: 'X', ours: undefined, theirs: 'Y', expect: 'Y' },
    { label: 'X Y X → keep ours', lca: 'X', ours: 'Y', theirs: undefined, expect: 'Y' },
    { label: 'X Y Y → same change', lca: 'X', ours: 'Y', theirs: 'Y', expect: 'Y' },
    { label: 'X Y Z → conflict', lca: 'X', ours: 'Y', theirs: 'Z', expect: 'conflict' },
    { label: '– Y Z → add/add conflict', lca: null, ours: 'Y', theirs: 'Z', expect: 'conflict' },
    { label: '– – Y → added by theirs', lca: null, ours: undefined, theirs: 'Y', expect: 'Y' },
    { label: 'X deleted X → stays deleted', lca: 'X', ours: null, theirs: undefined, expect: null },
    { label: 'X deleted Y → modify/delete conflict', lca: 'X', ours: null, theirs: 'Y', expect: 'conflict' },
    { label: 'X X deleted → deleted', lca: 'X', ours: undefined, theirs: null, expect: null },
    { label: 'X Y deleted → delete/modify conflict', lca: 'X', ours: 'Y', theirs: null, expect: 'conflict' },
  ];
  for (const row of rows) {
    it(`conflict table: ${row.label}`, async () => {
      const repo = await scenario(row.lca, row.ours, row.theirs);
      const before = await head(repo, 'main');
      const check = await server.json(`/api/repos/${repo}/merge/main..feature`);
      assert.equal(check.status, 200);
      assert.equal(check.body.is_mergeable, row.expect !== 'conflict');
      const res = await merge(repo, 'main..feature');
      if (row.expect === 'conflict') {
        assert.equal(res.status, 409, JSON.stringify(res.body));
        assertEnvelope(res.body, 'error');
        const hashOf = (s: Side) => (typeof s === 'string' ? hashBuffer(s) : null);
        assert.deepEqual(res.body.error.conflicts, [{ path: 'f.txt', base: hashOf(row.lca), ours: hashOf(row.ours), theirs: hashOf(row.theirs) }]);
        assert.deepEqual(check.body.conflicts.map((c: { path: string }) => c.path), ['f.txt']);
        assert.equal(await head(repo, 'main'), before, 'a conflict leaves the branch untouched');
        return;
      }
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.result, 'merge_commit');
      assert.deepEqual(res.body.commits.merge.parent_ids, [before, await head(repo, 'feature')]);
      assert.equal(await read(repo, 'main', 'f.txt'), row.expect);
      assert.equal(await read(repo, 'main', 'main-only.txt'), 'ours');
      assert.equal(await read(repo, 'main', 'feature-only.txt'), 'theirs');
    });
  }

  it('merges branches that both added many files; the merge commit has both parents in history; a repeat is a no-op', async () => {
    const repo = await freshRepo();
    await server.json(`/api/repos/${repo}/branches`, json('POST', { new_name: 'feature', from_name: 'main' }));
    const many = (prefix: string) => Array.from({ length: 200 }, (_, i) => ({ name: `${prefix}-${i}.txt`, content: `${prefix} ${i}` }));
    await putFiles(server, repo, 'main/ours', many('ours'));
    await putFiles(server, repo, 'feature/theirs', many('theirs'));
    const ours = await head(repo, 'main');
    const theirs = await head(repo, 'feature');
    const res = await merge(repo, 'main..feature');
    assert.equal(res.status, 200);
    const history = (await server.json(`/api/repos/${repo}/commits/history/main`)).body;
    assert.equal(history.commits[0].id, res.body.commits.merge.id);
    assert.deepEqual(history.commits[0].parent_ids, [ours, theirs]);
    assert.ok(history.commits.some((c: { id: string }) => c.id === theirs), 'the merged branch is in main history');
    assert.equal((await server.json(`/api/repos/${repo}/dir/main/ours`)).body.total_entries, 200);
    assert.equal((await server.json(`/api/repos/${repo}/dir/main/theirs`)).body.total_entries, 200);
    const again = await merge(repo, 'main..feature');
    assert.equal(again.status, 200);
    assert.equal(again.body.result, 'up_to_date');
    assert.equal(await head(repo, 'main'), res.body.commits.merge.id);
  });

  it('finds the merge base through an earlier merge commit (no false conflicts on a second merge)', async () => {
    // main: f=A ─┬─ g=1 ──── merge(M1) ── g=2 ── merge(M2)
    // feature:   └─ f=B ────┘ ── f=C ──────────┘
    const repo = await freshRepo();
    await write(repo, 'main', 'f.txt', 'A');
    await server.json(`/api/repos/${repo}/branches`, json('POST', { new_name: 'feature', from_name: 'main' }));
    await write(repo, 'main', 'g.txt', '1');
    await write(repo, 'feature', 'f.txt', 'B');
    assert.equal((await merge(repo, 'main..feature')).body.result, 'merge_commit');
    await write(repo, 'feature', 'f.txt', 'C');
    await write(repo, 'main', 'g.txt', '2');
    // Measured from the true merge base (feature's f=B), f changed only on feature and g only on main.
    const second = await merge(repo, 'main..feature');
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.equal(second.body.result, 'merge_commit');
    assert.equal(await read(repo, 'main', 'f.txt'), 'C');
    assert.equal(await read(repo, 'main', 'g.txt'), '2');
  });

  it('fast-forwards when the base has not moved, and reports the commits head brings', async () => {
    const repo = await freshRepo();
    await server.json(`/api/repos/${repo}/branches`, json('POST', { new_name: 'ff', from_name: 'main' }));
    await write(repo, 'ff', 'a.txt', 'a');
    await write(repo, 'ff', 'b.txt', 'b');
    const check = await server.json(`/api/repos/${repo}/merge/main..ff`);
    assert.equal(check.body.commits.length, 2);
    const res = await merge(repo, 'main..ff');
    assert.equal(res.body.result, 'fast_forward');
    assert.equal(await head(repo, 'main'), await head(repo, 'ff'));
  });

  it('answers 404 for unknown revisions, 400 for three dots or a missing author', async () => {
    const repo = await freshRepo();
    assert.equal((await merge(repo, 'main..nope')).status, 404);
    assert.equal((await merge(repo, 'nope..main')).status, 404);
    assert.equal((await merge(repo, 'main...main')).status, 400);
    assert.equal((await server.json(`/api/repos/${repo}/merge/main..main`, json('POST', { name: 'x' }))).status, 400);
    assert.equal((await server.json(`/api/repos/${repo}/merge/main`)).status, 400);
  });

  it("merges a client's commit into a branch with PUT branches/{name}/merge, and answers the head unchanged on a conflict", async () => {
    const repo = await freshRepo();
    await server.json(`/api/repos/${repo}/branches`, json('POST', { new_name: 'feature', from_name: 'main' }));
    await write(repo, 'feature', 'theirs.txt', 'theirs');
    await write(repo, 'main', 'ours.txt', 'ours');
    const [client, server_] = [await head(repo, 'feature'), await head(repo, 'main')];
    const merged = await server.json(`/api/repos/${repo}/branches/main/merge`, json('PUT', { client_commit_id: client, server_commit_id: server_ }));
    assert.equal(merged.status, 200, JSON.stringify(merged.body));
    assertEnvelope(merged.body, 'success');
    assert.deepEqual(merged.body.commit.parent_ids, [server_, client]);
    assert.equal(await head(repo, 'main'), merged.body.commit.id);
    assert.equal(await read(repo, 'main', 'theirs.txt'), 'theirs');
    assert.equal(await read(repo, 'main', 'ours.txt'), 'ours');

    await write(repo, 'feature', 'clash.txt', 'feature side');
    await write(repo, 'main', 'clash.txt', 'main side');
    const before = await head(repo, 'main');
    const clash = await server.json(`/api/repos/${repo}/branches/main/merge`, json('PUT', { client_commit_id: await head(repo, 'feature'), server_commit_id: before }));
    assert.equal(clash.status, 200);
    assert.equal(clash.body.commit.id, before);
    assert.equal(await head(repo, 'main'), before);

    const bad = await server.json(`/api/repos/${repo}/branches/main/merge`, json('PUT', { client_commit_id: 'zz', server_commit_id: before }));
    assert.equal(bad.status, 400);
    const unknown = await server.json(`/api/repos/${repo}/branches/main/merge`, json('PUT', { client_commit_id: 'abc123', server_commit_id: before }));
    assert.equal(unknown.status, 404);
  });
});

describe('compare', () => {
  let server: TestServer;
  const R = 'cmp/repo';
  before(async () => {
    server = await startTestServer();
    await createRepo(server, 'cmp', 'repo');
    await putFiles(server, R, 'main/docs', [{ name: 'a.txt', content: 'one\ntwo\nthree\n' }, { name: 'b.txt', content: 'b' }, { name: 'c.bin', content: 'binary-1' }]);
    await server.json(`/api/repos/${R}/branches`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ new_name: 'dev', from_name: 'main' }) });
    await putFiles(server, R, 'dev/docs/a.txt', [{ name: 'a.txt', content: 'one\n2\nthree\nfour\n' }]);
    await putFiles(server, R, 'dev/docs/c.bin', [{ name: 'c.bin', content: 'binary-22' }]);
    await server.json(`/api/repos/${R}/file/dev/docs/b.txt`, { method: 'DELETE' });
    await putFiles(server, R, 'dev/new/n.txt', [{ name: 'n.txt', content: 'n' }]);
    await putFiles(server, R, 'main/main-only.txt', [{ name: 'main-only.txt', content: 'm' }]);
  });
  after(() => server.stop());

  it('compares entries with counts, pagination and a directory filter', async () => {
    const all = await server.json(`/api/repos/${R}/compare/entries/main..dev`);
    assert.equal(all.status, 200);
    assert.deepEqual(all.body.compare.counts, { added: 1, removed: 2, modified: 2 });
    assert.deepEqual(all.body.compare.entries.map((e: { status: string; path: string }) => `${e.status} ${e.path}`), [
      'modified docs/a.txt', 'removed docs/b.txt', 'modified docs/c.bin', 'removed main-only.txt', 'added new/n.txt',
    ]);
    const page = await server.json(`/api/repos/${R}/compare/entries/main..dev?page_size=2&page=2`);
    assert.equal(page.body.total_entries, 5);
    assert.equal(page.body.compare.entries.length, 2);
    const dir = await server.json(`/api/repos/${R}/compare/entries/main..dev/dir/docs`);
    assert.deepEqual(dir.body.compare.counts, { added: 0, removed: 1, modified: 2 });
    const threeDot = await server.json(`/api/repos/${R}/compare/entries/main...dev`);
    assert.deepEqual(threeDot.body.compare.counts, { added: 1, removed: 1, modified: 2 }, 'measured from the merge base, main-only.txt is not a change');
    const same = await server.json(`/api/repos/${R}/compare/entries/main..main`);
    assert.deepEqual(same.body.compare.entries, []);
    assert.equal(same.body.total_entries, 0);
  });

  it('compares commits: what head adds, and both sides with `...`', async () => {
    const two = await server.json(`/api/repos/${R}/compare/commits/main..dev`);
    assert.equal(two.body.total_entries, 4);
    assert.ok(two.body.compare.commits.every((c: { side: string }) => c.side === 'head'));
    const three = await server.json(`/api/repos/${R}/compare/commits/main...dev`);
    assert.equal(three.body.total_entries, 5);
    assert.equal(three.body.compare.commits.filter((c: { side: string }) => c.side === 'base').length, 1);
    assert.equal((await server.json(`/api/repos/${R}/compare/commits/dev..dev`)).body.total_entries, 0);
    assert.equal((await server.json(`/api/repos/${R}/compare/commits/main..nope`)).status, 404);
  });

  it('answers 400 for `...` between histories with no merge base', async () => {
    const repo = await server.yoke.repos.require('cmp', 'repo');
    const blob = await server.yoke.blobs.put([Buffer.from('orphan')]);
    await server.yoke.commits.commit({
      repo, branch: 'orphan', base: null, changes: new Map([['o.txt', blob]]), blobs: [blob], author: AUTHOR, message: 'unrelated root',
    });
    assert.equal((await server.json(`/api/repos/${R}/compare/commits/main...orphan`)).status, 400);
    assert.equal((await server.json(`/api/repos/${R}/compare/entries/main...orphan`)).status, 400);
    assert.equal((await server.json(`/api/repos/${R}/compare/commits/main..orphan`)).status, 200);
  });

  it('compares one file: a line diff for text, hashes and sizes otherwise', async () => {
    const text = await server.json(`/api/repos/${R}/compare/file/main..dev/docs/a.txt`);
    assert.equal(text.status, 200, JSON.stringify(text.body));
    assert.equal(text.body.compare.status, 'modified');
    assert.deepEqual(text.body.compare.diff.lines, [
      { modification: 'Unchanged', text: 'one' },
      { modification: 'Removed', text: 'two' },
      { modification: 'Added', text: '2' },
      { modification: 'Unchanged', text: 'three' },
      { modification: 'Added', text: 'four' },
    ]);
    const binary = await server.json(`/api/repos/${R}/compare/file/main..dev/docs/c.bin`);
    assert.equal(binary.body.compare.diff, null);
    assert.deepEqual([binary.body.compare.base_entry.hash, binary.body.compare.base_entry.size], [hashBuffer('binary-1'), 8]);
    assert.deepEqual([binary.body.compare.head_entry.hash, binary.body.compare.head_entry.size], [hashBuffer('binary-22'), 9]);
    assert.equal(binary.body.compare.head_entry.filename, 'c.bin');
    assert.equal((await server.json(`/api/repos/${R}/compare/file/main..dev/nowhere.txt`)).status, 404);
  });

  it('lists the versions of one file on a branch', async () => {
    const res = await server.json(`/api/repos/${R}/branches/dev/versions/docs/a.txt`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.total_entries, 2);
    assert.equal(res.body.versions[0].resource.path, 'docs/a.txt');
    assert.equal((await server.json(`/api/repos/${R}/branches/dev`)).body.branch.name, 'dev');
  });
});
