import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { hashBuffer } from '../../src/core/hash.js';
import { blobPath, runYoke } from '../helpers/cli.js';
import { AUTHOR, createRepo, localStoresOnly, putFiles, startTestServer, type TestServer } from '../helpers/server.js';

const yoke = runYoke;

const json = (method: string, body: unknown): RequestInit => ({ method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function fsck(server: TestServer, query = '') {
  const { status, body } = await server.json(`/api/admin/fsck${query}`);
  assert.equal(status, 200, JSON.stringify(body));
  return body.fsck;
}

async function gc(server: TestServer, grace: string) {
  const { status, body } = await server.json(`/api/admin/gc?grace=${grace}`, { method: 'POST' });
  assert.equal(status, 200, JSON.stringify(body));
  return body.gc;
}

/** Uploads bytes as a version without committing them (as Oxen's client does before a push). */
async function uploadVersion(server: TestServer, repo: string, data: Buffer): Promise<string> {
  const form = new FormData();
  const hash = hashBuffer(data);
  form.append('file[]', new Blob([new Uint8Array(data)], { type: 'application/octet-stream' }), hash);
  const { status, body } = await server.json(`/api/repos/${repo}/versions`, { method: 'POST', body: form });
  assert.equal(status, 200, JSON.stringify(body));
  return hash;
}

async function commitFile(server: TestServer, repo: string, branch: string, path: string, content: string) {
  const { status, body } = await putFiles(server, repo, `${branch}/${path}`, [{ name: path.slice(path.lastIndexOf('/') + 1), content }]);
  assert.equal(status, 200, JSON.stringify(body));
  return body.commit.id as string;
}

async function fileAt(server: TestServer, repo: string, revision: string, path: string): Promise<{ status: number; text: string }> {
  const res = await server.fetch(`/api/repos/${repo}/file/${revision}/${path}`);
  return { status: res.status, text: await res.text() };
}

describe('yoke fsck', { skip: localStoresOnly }, () => {
  let server: TestServer;
  const repo = 'maint/fsck-repo';
  before(async () => {
    server = await startTestServer();
    await createRepo(server, 'maint', 'fsck-repo');
    await commitFile(server, repo, 'main', 'data/a.txt', 'alpha');
    await commitFile(server, repo, 'main', 'data/deep/b.txt', 'bravo');
  });
  after(() => server.stop());

  it('walks a sound repository and finds it clean, over HTTP and from the command line', async () => {
    const report = await fsck(server);
    assert.equal(report.clean, true, JSON.stringify(report.problems));
    assert.equal(report.repos, 1);
    assert.equal(report.commits, 2);
    assert.equal(report.blobs, 2);
    assert.equal(report.bytesVerified, 10);
    assert.ok(report.nodes >= 2 * 3, `nodes: ${report.nodes}`);
    const cli = await yoke(['fsck', '--data-dir', server.dataDir]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /^clean: 1 repositories, 2 commits, \d+ nodes, 2 blobs \(10 bytes re-hashed\)/);
    assert.equal((await server.json('/api/admin/fsck?repo=maint/nope')).status, 404);
    assert.equal((await server.json('/api/admin/fsck?repo=bad')).status, 400);
    assert.equal((await server.json('/api/admin/fsck?content=maybe')).status, 400);
  });

  it('reports a corrupt blob, a missing blob and a missing node by kind, id and path; exit status 1', async () => {
    const corrupt = blobPath(server.dataDir, hashBuffer('alpha'));
    const original = await readFile(corrupt);
    await writeFile(corrupt, 'alphx');
    try {
      const report = await fsck(server);
      assert.equal(report.clean, false);
      assert.deepEqual(
        report.problems.map((p: any) => [p.kind, p.repo, p.id, p.where]),
        [['corrupt_blob', 'maint/fsck-repo', hashBuffer('alpha'), 'data/a.txt']],
      );
      // Presence and size only: the same bytes count is not a problem then.
      assert.equal((await fsck(server, '?content=false')).clean, true);
      const cli = await yoke(['fsck', '--json', '--data-dir', server.dataDir]);
      assert.equal(cli.code, 1);
      assert.equal(JSON.parse(cli.stdout).problems[0].kind, 'corrupt_blob');
    } finally {
      await writeFile(corrupt, original);
    }

    const missing = blobPath(server.dataDir, hashBuffer('bravo'));
    const kept = await readFile(missing);
    await rm(missing);
    try {
      const report = await fsck(server);
      assert.deepEqual(report.problems.map((p: any) => [p.kind, p.where]), [['missing_blob', 'data/deep/b.txt']]);
    } finally {
      await writeFile(missing, kept);
    }

    // A node row removed behind the server's back (its cache may hold it: ask the CLI, a fresh process).
    const db = new Database(join(server.dataDir, 'meta.sqlite'));
    const { body } = await server.json(`/api/repos/${repo}/dir/main/data`);
    const deepId = body.entries.find((e: any) => e.filename === 'deep').hash;
    const row = db.prepare('SELECT * FROM tree_nodes WHERE id = ?').get(deepId) as Record<string, unknown>;
    db.prepare('DELETE FROM tree_nodes WHERE id = ?').run(deepId);
    try {
      const cli = await yoke(['fsck', '--json', '--data-dir', server.dataDir]);
      assert.equal(cli.code, 1);
      const problems = JSON.parse(cli.stdout).problems;
      assert.deepEqual(problems.map((p: any) => [p.kind, p.id, p.where]), [['missing_node', deepId, 'data/deep']]);
    } finally {
      db.prepare('INSERT INTO tree_nodes (repo_id, id, data, stored_at) VALUES (@repo_id, @id, @data, @stored_at)').run(row);
      db.close();
    }
    assert.equal((await yoke(['fsck', '--data-dir', server.dataDir])).code, 0);
    assert.equal((await yoke(['fsck', '--data-dir', join(server.dataDir, 'nothing-here')])).code, 1);
  });

  it('reports a missing parent commit and a branch on a missing commit, once each', async () => {
    const { body } = await server.json(`/api/repos/${repo}/commits/history/main`);
    const [head, first] = body.commits.map((c: any) => c.id);
    const ghost = 'f'.repeat(32);
    const db = new Database(join(server.dataDir, 'meta.sqlite'));
    const row = db.prepare('SELECT * FROM commits WHERE id = ?').get(first) as Record<string, unknown>;
    db.prepare('DELETE FROM commits WHERE id = ?').run(first);
    const repoId = row.repo_id;
    db.prepare("INSERT INTO branches (repo_id, name, commit_id, created_at, updated_at) VALUES (?, 'ghost', ?, '', '')").run(repoId, ghost);
    db.prepare("INSERT INTO branches (repo_id, name, commit_id, created_at, updated_at) VALUES (?, 'also-main', ?, '', '')").run(repoId, head);
    try {
      const cli = await yoke(['fsck', '--json', '--data-dir', server.dataDir]);
      assert.equal(cli.code, 1);
      const problems = JSON.parse(cli.stdout).problems.map((p: any) => [p.kind, p.id, p.where]);
      assert.deepEqual(problems.sort(), [
        ['missing_commit', first, `parent of commit ${head}`],
        ['missing_commit', ghost, 'branch ghost'],
      ]);
    } finally {
      db.prepare("DELETE FROM branches WHERE name IN ('ghost', 'also-main')").run();
      db.prepare(`INSERT INTO commits (${Object.keys(row).join(', ')}) VALUES (${Object.keys(row).map((k) => `@${k}`).join(', ')})`).run(row);
      db.close();
    }
    assert.equal((await yoke(['fsck', '--data-dir', server.dataDir])).code, 0);
  });
});

describe('yoke gc', { skip: localStoresOnly }, () => {
  let server: TestServer;
  const repo = 'maint/gc-repo';
  before(async () => {
    server = await startTestServer();
    await createRepo(server, 'maint', 'gc-repo');
  });
  after(() => server.stop());

  it('keeps history, branches and staged files; removes a deleted branch, stray uploads and orphan staging, after the grace period', async () => {
    const first = await commitFile(server, repo, 'main', 'data/a.txt', 'version one');
    await commitFile(server, repo, 'main', 'data/a.txt', 'version two');
    // A branch with a commit of its own, then deleted.
    assert.equal((await server.json(`/api/repos/${repo}/branches`, json('POST', { new_name: 'feature', from_name: 'main' }))).status, 200);
    const featureCommit = await commitFile(server, repo, 'feature', 'data/f.txt', 'only on feature');
    assert.equal((await server.json(`/api/repos/${repo}/branches/feature`, { method: 'DELETE' })).status, 200);
    // Bytes uploaded and never committed.
    const stray = await uploadVersion(server, repo, Buffer.from('uploaded, never committed'));
    // A workspace with a staged file.
    assert.equal((await server.json(`/api/repos/${repo}/workspaces`, json('PUT', { workspace_id: 'w-keep', branch_name: 'main' }))).status, 200);
    const form = new FormData();
    form.append('file', new Blob(['staged bytes']), 'st.txt');
    assert.equal((await server.json(`/api/repos/${repo}/workspaces/w-keep/files/data`, { method: 'POST', body: form })).status, 200);
    // Staging no upload owns (a crash between a part's write and its record).
    const orphan = join(server.dataDir, 'blobs', 'uploads', 'orphan-staging');
    await mkdir(orphan, { recursive: true });
    await writeFile(join(orphan, '0'), 'part');

    // Everything is fresh: the default grace period spares it all.
    assert.deepEqual({ ...(await gc(server, '24h')), durationMs: 0 }, { dryRun: false, commits: 0, nodes: 0, blobs: 0, blobBytes: 0, uploads: 0, stagings: 0, durationMs: 0 });
    const dry = (await server.json('/api/admin/gc?grace=0&dry_run=true', { method: 'POST' })).body.gc;
    assert.deepEqual([dry.dryRun, dry.commits, dry.blobs, dry.stagings], [true, 1, 2, 1]);
    assert.ok(existsSync(blobPath(server.dataDir, stray)), 'a dry run removes nothing');

    const report = await gc(server, '0');
    assert.equal(report.commits, 1, 'the deleted branch\'s commit');
    assert.equal(report.blobs, 2, 'f.txt and the stray upload');
    assert.equal(report.blobBytes, 'only on feature'.length + 'uploaded, never committed'.length);
    assert.ok(report.nodes >= 3, `nodes: ${report.nodes} (the commit's node, its root and data directories and their vnodes)`);
    assert.equal(report.stagings, 1);
    assert.equal(existsSync(orphan), false);
    assert.equal(existsSync(blobPath(server.dataDir, stray)), false);
    assert.equal(existsSync(blobPath(server.dataDir, hashBuffer('only on feature'))), false);
    assert.equal((await server.json(`/api/repos/${repo}/versions/${stray}/metadata`)).status, 404, 'the repository no longer claims the stray blob');
    assert.equal((await server.json(`/api/repos/${repo}/commits/${featureCommit}`)).status, 404);

    // What stays: history, the head, the staged file.
    assert.deepEqual(await fileAt(server, repo, first, 'data/a.txt'), { status: 200, text: 'version one' });
    assert.deepEqual(await fileAt(server, repo, 'main', 'data/a.txt'), { status: 200, text: 'version two' });
    assert.ok(existsSync(blobPath(server.dataDir, hashBuffer('staged bytes'))));
    const committed = await server.json(`/api/repos/${repo}/workspaces/w-keep/commit/main`, json('POST', { message: 'staged', author: AUTHOR.name, email: AUTHOR.email }));
    assert.equal(committed.status, 200, JSON.stringify(committed.body));
    assert.deepEqual(await fileAt(server, repo, 'main', 'data/st.txt'), { status: 200, text: 'staged bytes' });
    assert.equal((await fsck(server)).clean, true);

    // Nothing left to collect; the stray bytes can be uploaded again.
    const again = await gc(server, '0');
    assert.deepEqual([again.commits, again.nodes, again.blobs], [0, 0, 0]);
    await uploadVersion(server, repo, Buffer.from('uploaded, never committed'));
    assert.equal((await server.json(`/api/repos/${repo}/versions/${stray}/metadata`)).status, 200);
  });

  it('deleting a repository frees the blobs only it held, not those another repository shares', async () => {
    await createRepo(server, 'maint', 'gc-one');
    await createRepo(server, 'maint', 'gc-two');
    await commitFile(server, 'maint/gc-one', 'main', 'shared.txt', 'shared bytes');
    await commitFile(server, 'maint/gc-one', 'main', 'own.txt', 'only in gc-one');
    await commitFile(server, 'maint/gc-two', 'main', 'shared.txt', 'shared bytes');
    assert.equal((await server.json('/api/repos/maint/gc-one', { method: 'DELETE' })).status, 200);
    assert.ok((await gc(server, '0')).blobs >= 1);
    assert.equal(existsSync(blobPath(server.dataDir, hashBuffer('only in gc-one'))), false);
    assert.ok(existsSync(blobPath(server.dataDir, hashBuffer('shared bytes'))));
    assert.deepEqual(await fileAt(server, 'maint/gc-two', 'main', 'shared.txt'), { status: 200, text: 'shared bytes' });
    assert.equal((await fsck(server)).clean, true);
  });

  it("keeps the chunks a large directory's records are stored in, drops those only a deleted branch listed; fsck names a missing one", async () => {
    await createRepo(server, 'maint', 'gc-chunks');
    const chunky = 'maint/gc-chunks';
    const many = Array.from({ length: 100 }, (_, i) => ({ name: `f${i}.txt`, content: `file ${i}` }));
    assert.equal((await putFiles(server, chunky, 'main/data', many)).status, 200);
    const first = (await server.json(`/api/repos/${chunky}/commits/history/main`)).body.commits[0].id;
    await commitFile(server, chunky, 'main', 'data/f5.txt', 'changed on main');
    assert.equal((await server.json(`/api/repos/${chunky}/branches`, json('POST', { new_name: 'side', from_name: 'main' }))).status, 200);
    await commitFile(server, chunky, 'side', 'data/f7.txt', 'only on side');
    assert.equal((await server.json(`/api/repos/${chunky}/branches/side`, { method: 'DELETE' })).status, 200);

    const db = new Database(join(server.dataDir, 'meta.sqlite'));
    try {
      // Chunk ids start with 'k' (core/stored-records.ts); node ids are hex.
      const chunkIds = () => (db.prepare("SELECT id FROM tree_nodes WHERE id LIKE 'k%'").all() as Array<{ id: string }>).map((r) => r.id);
      const before = chunkIds();
      assert.ok(before.length > 0, 'the 100-entry vnode is stored in chunks');
      await gc(server, '0');
      const kept = chunkIds();
      assert.ok(kept.length < before.length, `the side branch's own chunks are gone (${before.length} → ${kept.length})`);
      assert.deepEqual(await fileAt(server, chunky, 'main', 'data/f5.txt'), { status: 200, text: 'changed on main' });
      assert.deepEqual(await fileAt(server, chunky, first, 'data/f5.txt'), { status: 200, text: 'file 5' });
      assert.deepEqual(await fileAt(server, chunky, 'main', 'data/f99.txt'), { status: 200, text: 'file 99' });
      assert.equal((await fsck(server)).clean, true);

      // A chunk row removed behind the server's back: fsck (a fresh process) names it.
      const row = db.prepare('SELECT * FROM tree_nodes WHERE id = ?').get(kept[0]) as Record<string, unknown>;
      db.prepare('DELETE FROM tree_nodes WHERE id = ?').run(kept[0]);
      try {
        const cli = await yoke(['fsck', '--json', '--data-dir', server.dataDir]);
        assert.equal(cli.code, 1);
        const problems = JSON.parse(cli.stdout).problems;
        assert.ok(problems.length > 0 && problems.every((p: any) => p.kind === 'missing_node' && p.id === kept[0] && p.where === 'data'), JSON.stringify(problems));
      } finally {
        db.prepare('INSERT INTO tree_nodes (repo_id, id, data, stored_at) VALUES (@repo_id, @id, @data, @stored_at)').run(row);
      }
    } finally {
      db.close();
    }
    assert.equal((await yoke(['fsck', '--data-dir', server.dataDir])).code, 0);
  });

  it('runs from the command line beside the server, and refuses a bad grace period', async () => {
    await uploadVersion(server, repo, Buffer.from('cli stray'));
    const dry = await yoke(['gc', '--dry-run', '--grace', '0', '--json', '--data-dir', server.dataDir]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(JSON.parse(dry.stdout).blobs, 1);
    const run = await yoke(['gc', '--grace', '0', '--data-dir', server.dataDir]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^removed 1 blobs \(9 bytes\)/);
    const bad = await yoke(['gc', '--grace', 'soon', '--data-dir', server.dataDir]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /Invalid duration 'soon'/);
    assert.equal((await server.json('/api/admin/gc?grace=soon', { method: 'POST' })).status, 400);
  });

  it('is safe while commits run: everything answered with success is still there, and fsck stays clean', async () => {
    await createRepo(server, 'maint', 'gc-busy');
    const busy = 'maint/gc-busy';
    const written = new Map<string, string>();
    let stop = false;
    const writer = async (n: number) => {
      for (let i = 0; !stop; i++) {
        const path = `w${n}/f${i}.txt`;
        const content = `writer ${n} file ${i} ${'x'.repeat(i % 7)}`;
        const { status } = await putFiles(server, busy, `main/${path}`, [{ name: `f${i}.txt`, content }]);
        if (status === 200) written.set(path, content);
        else assert.equal(status, 409, `commit of ${path}: ${status}`);
      }
    };
    // Branches made and dropped meanwhile: garbage once the grace period has passed.
    const churner = async () => {
      for (let i = 0; !stop; i++) {
        const name = `tmp-${i}`;
        if ((await server.json(`/api/repos/${busy}/branches`, json('POST', { new_name: name, from_name: 'main' }))).status !== 200) continue;
        await putFiles(server, busy, `${name}/churn/c${i}.txt`, [{ name: `c${i}.txt`, content: `churn ${i}` }]);
        await server.json(`/api/repos/${busy}/branches/${name}`, { method: 'DELETE' });
      }
    };
    let collected = 0;
    const collector = async () => {
      while (!stop) {
        collected += (await gc(server, '1s')).blobs;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const running = [writer(0), writer(1), writer(2), churner(), collector()];
    await new Promise((r) => setTimeout(r, 4000));
    stop = true;
    await Promise.all(running);
    await new Promise((r) => setTimeout(r, 1100));
    collected += (await gc(server, '1s')).blobs;
    assert.ok(written.size > 20, `commits landed: ${written.size}`);
    assert.ok(collected > 0, 'the dropped branches\' blobs were collected');
    for (const [path, content] of written) assert.deepEqual(await fileAt(server, busy, 'main', path), { status: 200, text: content }, path);
    const report = await fsck(server);
    assert.equal(report.clean, true, JSON.stringify(report.problems.slice(0, 3)));
  });
});
