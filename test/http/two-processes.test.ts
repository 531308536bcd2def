/**
 * Two `yoke serve` processes on one PostgreSQL database and one blob directory (with YOKE_TEST_BLOBS=s3, one
 * radosgw bucket): commits to one branch through both at once, a workspace filled through one and committed
 * through the other, a chunked upload whose chunks alternate between them and that completes on the other, the
 * hash frontier moving on in both, and a third process killed with SIGKILL mid-part. Skipped, with the reason,
 * without PostgreSQL.
 */
import { strict as assert } from 'node:assert';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { hashBuffer } from '../../src/core/hash.js';
import type { BlobStore } from '../../src/storage/blob-store.js';
import { LocalBlobStore } from '../../src/storage/local-blob-store.js';
import { S3BlobStore } from '../../src/storage/s3-blob-store.js';
import { startYokeProcess } from '../helpers/cli.js';
import { startRadosgw } from '../helpers/radosgw.js';
import { blobsInS3 } from '../helpers/server.js';
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
    let databaseUrl: string;
    let database: pg.Client;
    /** What both processes are started with: the shared PostgreSQL database, and S3 in that test pass. */
    let storeArgs: string[];
    /** The processes' blob store, opened by the test to check published bytes. */
    let blobs: BlobStore;
    const published = async (hash: string) => Buffer.concat(await (await blobs.get(hash)).toArray());
    let a: { url: string; child: ChildProcess };
    let b: { url: string; child: ChildProcess };
    const repo = (server: { url: string }) => `${server.url}/api/repos/two/procs`;
    before(async () => {
      databaseUrl = await cluster.createDatabase();
      database = new pg.Client({ connectionString: databaseUrl });
      await database.connect();
      dataDir = await mkdtemp(join(tmpdir(), 'yoke-two-'));
      if (blobsInS3) {
        // One bucket for both; the credentials reach the processes through the environment, as in production.
        const started = await startRadosgw();
        if (!started.server) throw new Error(`YOKE_TEST_BLOBS=s3, but ${started.skip}`);
        const s3 = started.server.settings();
        Object.assign(process.env, { AWS_ACCESS_KEY_ID: started.server.accessKeyId, AWS_SECRET_ACCESS_KEY: started.server.secretAccessKey });
        storeArgs = ['--database-url', databaseUrl, '--s3-bucket', s3.bucket, '--s3-endpoint', s3.endpoint!, '--log-level', 'error'];
        blobs = await S3BlobStore.open(s3);
      } else {
        storeArgs = ['--database-url', databaseUrl, '--log-level', 'error'];
        blobs = await LocalBlobStore.open(join(dataDir, 'blobs'));
      }
      [a, b] = await Promise.all([startYokeProcess(dataDir, storeArgs), startYokeProcess(dataDir, storeArgs)]);
      const created = await fetch(`${a.url}/api/repos`, json('POST', { namespace: 'two', name: 'procs', user: AUTHOR }));
      assert.equal(created.status, 200);
      assert.equal((await putFile(repo(a), 'README.md', 'two processes')).status, 200, 'the first commit makes main');
    });
    after(async () => {
      for (const server of [a, b]) server?.child.kill('SIGTERM');
      await database?.end();
      await blobs?.close();
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

    /** The upload row of `hash` in the shared database, as the processes left it. */
    const uploadRow = async (hash: string) =>
      (await database.query<{ id: string; frontier_through: number; state: string }>('SELECT id, frontier_through::int, state FROM uploads WHERE key = $1', [hash])).rows[0];
    const putChunk = (server: { url: string }, hash: string, offset: number, bytes: Uint8Array<ArrayBuffer>) =>
      fetch(`${repo(server)}/versions/${hash}/chunks?offset=${offset}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: bytes });

    it('the hash frontier moves on as parts land in either process, so completing reads only what it does not cover', async () => {
      const data = randomBytes(2 * 1024 * 1024);
      const hash = hashBuffer(data);
      const size = 256 * 1024;
      // Last part first: nothing lies back to back from byte 0 until the first part arrives.
      const offsets = Array.from({ length: data.length / size }, (_, i) => i * size).reverse();
      for (const [i, offset] of offsets.entries()) {
        const res = await putChunk(i % 2 === 0 ? a : b, hash, offset, new Uint8Array(data.subarray(offset, offset + size)));
        assert.equal(res.status, 200, await res.text());
      }
      let row = await uploadRow(hash);
      for (let waited = 0; row.frontier_through < data.length && waited < 10_000; waited += 50) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        row = await uploadRow(hash);
      }
      assert.equal(row.frontier_through, data.length, 'every byte hashed before completion was asked for');
      const done = await fetch(`${repo(b)}/versions/${hash}/complete`, json('POST', {}));
      assert.equal(done.status, 200, await done.clone().text());
      assert.ok((await published(hash)).equals(data), 'the published blob is the bytes sent');
    });

    it('a process killed with SIGKILL while it receives a part: the part is sent again to another, which takes it over and completes', async () => {
      const c = await startYokeProcess(dataDir, storeArgs);
      const data = randomBytes(3 * 1024 * 1024);
      const hash = hashBuffer(data);
      const half = 1024 * 1024;
      // Declared size: a completion asked for too early then finds the missing bytes instead of verifying a prefix.
      assert.equal((await fetch(`${repo(b)}/versions/${hash}/create`, json('POST', { size: data.length, file_name: 'big.bin' }))).status, 200);
      assert.equal((await putChunk(a, hash, 0, new Uint8Array(data.subarray(0, half)))).status, 200);
      // The second part arrives at c slowly; c is killed once it has announced the part and bytes flow.
      const url = new URL(`${repo(c)}/versions/${hash}/chunks?offset=${half}`);
      const slow = httpRequest({ host: url.hostname, port: url.port, path: url.pathname + url.search, method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': half } });
      slow.on('error', () => {});
      slow.write(data.subarray(half, half + half / 2));
      const writer = `%:${c.child.pid}:%`;
      for (let waited = 0; waited < 10_000; waited += 25) {
        const { rows } = await database.query('SELECT 1 FROM upload_parts WHERE writer LIKE $1', [writer]);
        if (rows.length > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      c.child.kill('SIGKILL');
      await new Promise((resolve) => c.child.once('exit', resolve));
      assert.equal((await database.query('SELECT 1 FROM upload_parts WHERE writer LIKE $1', [writer])).rows.length, 1, 'the dead process still holds the part');
      // Completing now would miss that part: refused, not assembled from half-written bytes.
      const early = await fetch(`${repo(b)}/versions/${hash}/complete`, json('POST', {}));
      assert.equal(early.status, 400, await early.clone().text());
      const resent = await putChunk(a, hash, half, new Uint8Array(data.subarray(half, 2 * half)));
      assert.equal(resent.status, 200, await resent.clone().text());
      assert.equal((await putChunk(b, hash, 2 * half, new Uint8Array(data.subarray(2 * half)))).status, 200);
      const done = await fetch(`${repo(b)}/versions/${hash}/complete`, json('POST', {}));
      assert.equal(done.status, 200, await done.clone().text());
      assert.ok((await published(hash)).equals(data), 'the published blob is the bytes sent');
      assert.equal(await uploadRow(hash), undefined, 'the upload is gone once complete');
    });
  });
}
