/**
 * Two `yoke serve` processes on one PostgreSQL database (and one blob directory): commits to one branch
 * through both at once, a workspace filled through one and committed through the other, and a chunked
 * upload whose chunks alternate between them and that completes on the other. Skipped, with the reason,
 * without PostgreSQL.
 */
import { strict as assert } from 'node:assert';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hashBuffer } from '../../src/core/hash.js';
import { startYokeProcess } from '../helpers/cli.js';
import { startPostgres } from '../helpers/postgres.js';

const postgres = await startPostgres();
const AUTHOR = { name: 'Ada', email: 'ada@example.com' };

const json = (method: string, body: unknown): RequestInit => ({ method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function putFile(base: string, path: string, content: string): Promise<{ status: number; body: any }> {
  const form = new FormData();
  for (const [key, value] of Object.entries({ message: `add ${path}`, ...AUTHOR })) form.append(key, value);
  form.append('file', new Blob([content]), path.split('/').pop()!);
  const res = await fetch(`${base}/file/main/${path}`, { method: 'PUT', body: form });
  return { status: res.status, body: await res.json() };
}

if (postgres.skip !== undefined) {
  it('two Yoke processes on one PostgreSQL database', { skip: postgres.skip }, () => {});
} else {
  const cluster = postgres.cluster;
  describe('two Yoke processes on one PostgreSQL database', () => {
    let dataDir: string;
    let a: { url: string; child: ChildProcess };
    let b: { url: string; child: ChildProcess };
    const repo = (server: { url: string }) => `${server.url}/api/repos/two/procs`;
    before(async () => {
      const databaseUrl = await cluster.createDatabase();
      dataDir = await mkdtemp(join(tmpdir(), 'yoke-two-'));
      [a, b] = await Promise.all([startYokeProcess(dataDir, ['--database-url', databaseUrl, '--log-level', 'error']), startYokeProcess(dataDir, ['--database-url', databaseUrl, '--log-level', 'error'])]);
      const created = await fetch(`${a.url}/api/repos`, json('POST', { namespace: 'two', name: 'procs', user: AUTHOR }));
      assert.equal(created.status, 200);
      assert.equal((await putFile(repo(a), 'README.md', 'two processes')).status, 200, 'the first commit makes main');
    });
    after(async () => {
      for (const server of [a, b]) server?.child.kill('SIGTERM');
      await cluster.stop();
      await rm(dataDir, { recursive: true, force: true });
    });

    it('commits to one branch through both at once: every acknowledged commit is in one linear history, none lost', async () => {
      const acknowledged = new Map<string, { content: string; commit: string }>();
      for (let round = 0; round < 8; round++) {
        const writes = Array.from({ length: 6 }, (_, i) => {
          const path = `r${round}/f${i}.txt`;
          const content = `round ${round} file ${i} ${randomBytes(4).toString('hex')}`;
          return putFile(repo(i % 2 === 0 ? a : b), path, content).then(({ status, body }) => {
            // Each write is either landed (after rebasing onto the other process's commit) or told to retry.
            if (status === 200) acknowledged.set(path, { content, commit: body.commit.id });
            else assert.equal(status, 409, JSON.stringify(body));
          });
        });
        await Promise.all(writes);
      }
      // Disjoint paths: a commit that loses the race to the other process is rebased onto its head and retried.
      assert.equal(acknowledged.size, 8 * 6, `acknowledged ${acknowledged.size} of 48`);
      const history = (await (await fetch(`${repo(b)}/commits/history/main?page_size=1000`)).json()) as any;
      const ids = history.commits.map((c: any) => c.id);
      for (const [path, { content, commit }] of acknowledged) {
        assert.ok(ids.includes(commit), `commit of ${path} is in main's history`);
        const res = await fetch(`${repo(a)}/file/main/${path}`);
        assert.equal(await res.text(), content, path);
      }
      // Linear: each commit but the first has one parent, the next one in the list.
      for (let i = 0; i < history.commits.length - 1; i++) assert.deepEqual(history.commits[i].parent_ids, [history.commits[i + 1].id]);
    });

    it('a workspace filled through one process is committed through the other', async () => {
      assert.equal((await fetch(`${repo(a)}/workspaces`, json('PUT', { workspace_id: 'ws-two', branch_name: 'main' }))).status, 200);
      const form = new FormData();
      form.append('file', new Blob(['staged on a']), 'staged.txt');
      assert.equal((await fetch(`${repo(a)}/workspaces/ws-two/files/ws`, { method: 'POST', body: form })).status, 200);
      const committed = await fetch(`${repo(b)}/workspaces/ws-two/commit/main`, json('POST', { message: 'from b', author: AUTHOR.name, email: AUTHOR.email }));
      assert.equal(committed.status, 200, await committed.clone().text());
      assert.equal(await (await fetch(`${repo(a)}/file/main/ws/staged.txt`)).text(), 'staged on a');
    });

    it('a chunked upload whose chunks alternate between the processes completes on the other, verified', async () => {
      const data = randomBytes(3 * 1024 * 1024 + 17);
      const hash = hashBuffer(data);
      const size = 512 * 1024;
      for (let offset = 0, i = 0; offset < data.length; offset += size, i++) {
        const res = await fetch(`${repo(i % 2 === 0 ? a : b)}/versions/${hash}/chunks?offset=${offset}`, {
          method: 'PUT',
          headers: { 'content-type': 'application/octet-stream' },
          body: new Uint8Array(data.subarray(offset, offset + size)),
        });
        assert.equal(res.status, 200, await res.text());
      }
      const done = await fetch(`${repo(b)}/versions/${hash}/complete`, json('POST', {}));
      assert.equal(done.status, 200, await done.clone().text());
      const meta = (await (await fetch(`${repo(a)}/versions/${hash}/metadata`)).json()) as any;
      assert.equal(meta.status, 'success', JSON.stringify(meta));
    });
  });
}
