/**
 * Crash safety: the server is killed with SIGKILL at random moments while clients upload, commit,
 * stage, assemble chunked uploads and create branches, and restarted on the same data directory
 * each time. Whatever was answered with success must still be there with its bytes, no temporary
 * file may outlive a start-up, and `yoke fsck` must find every branch at a complete commit.
 */
import { strict as assert } from 'node:assert';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hashBuffer } from '../../src/core/hash.js';
import { blobPath, runYoke, startYokeProcess } from '../helpers/cli.js';
import { localStoresOnly } from '../helpers/server.js';

const ROUNDS = 24;
const AUTHOR = { name: 'Crash Tester', email: 'crash@example.com' };

/** A deterministic generator, so that a failing round can be replayed from the printed seed. */
function prng(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** What clients were told succeeded: checked after every restart. */
interface Acknowledged {
  /** Blobs stored by batch and chunked uploads: hash → bytes. */
  blobs: Map<string, Buffer>;
  /** Committed files: `${commitId}:${path}` → bytes. */
  files: Map<string, Buffer>;
  /** Branches created, with the commit they were last seen at. */
  branches: Map<string, string>;
}

describe('SIGKILL during writes', { skip: localStoresOnly }, () => {
  let dataDir: string;
  after(() => rm(dataDir, { recursive: true, force: true }));

  it(`${ROUNDS} kills at random moments lose nothing acknowledged and leave no debris`, { timeout: 240_000 }, async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'yoke-crash-'));
    const seed = Number(process.env.YOKE_CRASH_SEED ?? Date.now() % 1_000_000);
    const random = prng(seed);
    const context = `seed ${seed} (YOKE_CRASH_SEED=${seed} replays it)`;
    const acked: Acknowledged = { blobs: new Map(), files: new Map(), branches: new Map() };
    const repo = 'crash/repo';

    /** Checks the acknowledged objects `pick` chooses against the running server and the data directory. */
    const checked = new Set<string>();
    const verify = async (url: string, round: number, pick: (key: string) => boolean) => {
      for (const [hash, data] of acked.blobs) {
        if (!pick(hash)) continue;
        checked.add(hash);
        assert.deepEqual(await readFile(blobPath(dataDir, hash)), data, `acknowledged blob ${hash}, round ${round} (${context})`);
        assert.equal((await fetch(`${url}/api/repos/${repo}/versions/${hash}/metadata`)).status, 200, `the repository still holds ${hash} (${context})`);
      }
      for (const [key, data] of acked.files) {
        if (!pick(key)) continue;
        checked.add(key);
        const [commit, path] = key.split(/:(.*)/s);
        const res = await fetch(`${url}/api/repos/${repo}/file/${commit}/${path}`);
        assert.equal(res.status, 200, `acknowledged ${path} at ${commit}, round ${round} (${context})`);
        assert.deepEqual(Buffer.from(await res.arrayBuffer()), data, `bytes of ${path} at ${commit} (${context})`);
      }
      for (const [name, commit] of acked.branches) {
        const res = await fetch(`${url}/api/repos/${repo}/branches/${name}`);
        assert.equal(res.status, 200, `branch ${name} (${context})`);
        const body = (await res.json()) as any;
        // The branch may have moved on by a commit whose answer the kill cut off, never back.
        const latest = body.branch.commit_id ?? body.branch.commit?.id;
        if (latest !== commit) {
          const history = (await (await fetch(`${url}/api/repos/${repo}/commits/history/${name}?page_size=1000`)).json()) as any;
          assert.ok(history.commits.some((c: any) => c.id === commit), `branch ${name} at ${latest} descends from acknowledged ${commit} (${context})`);
        }
      }
    };

    let server = await startYokeProcess(dataDir);
    const created = await fetch(`${server.url}/api/repos`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ namespace: 'crash', name: 'repo', user: AUTHOR }),
    });
    assert.equal(created.status, 200);

    for (let round = 0; round < ROUNDS; round++) {
      const base = `${server.url}/api/repos/${repo}`;
      let killed = false;
      /** Runs one client action; a connection cut by the kill is an unknown outcome, anything else must be success or a 409. */
      const attempt = async (what: string, run: () => Promise<Response>): Promise<any | null> => {
        let res: Response;
        try {
          res = await run();
        } catch (err) {
          if (killed) return null;
          throw new Error(`${what}: ${(err as Error).message} (${context})`);
        }
        let body: any;
        try {
          body = await res.json();
        } catch (err) {
          if (killed) return null;
          throw new Error(`${what}: ${res.status} without a JSON body (${context})`);
        }
        if (res.status === 200) return body;
        assert.equal(res.status, 409, `${what}: ${res.status} ${JSON.stringify(body)} (${context})`);
        return null;
      };
      const payload = () => randomBytes(1 + Math.floor(random() * 40_000));

      const batchUploads = async () => {
        while (!killed) {
          const files = [payload(), payload(), payload()];
          const form = new FormData();
          for (const f of files) form.append('file[]', new Blob([new Uint8Array(f)]), hashBuffer(f));
          if (await attempt('batch upload', () => fetch(`${base}/versions`, { method: 'POST', body: form }))) for (const f of files) acked.blobs.set(hashBuffer(f), f);
        }
      };
      const fileCommits = async (branch: string, dir: string) => {
        for (let i = 0; !killed; i++) {
          const data = payload();
          const path = `${dir}/r${round}-${i}.bin`;
          const form = new FormData();
          form.append('name', AUTHOR.name);
          form.append('email', AUTHOR.email);
          form.append('message', `${path}`);
          form.append('file', new Blob([new Uint8Array(data)]), `r${round}-${i}.bin`);
          const body = await attempt(`commit ${path}`, () => fetch(`${base}/file/${branch}/${path}`, { method: 'PUT', body: form }));
          if (body) {
            acked.files.set(`${body.commit.id}:${path}`, data);
            if (acked.branches.has(branch)) acked.branches.set(branch, body.commit.id);
          }
        }
      };
      const workspaceCommits = async () => {
        for (let i = 0; !killed; i++) {
          const id = `ws-${round}-${i}`;
          if (!(await attempt('create workspace', () => fetch(`${base}/workspaces`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ workspace_id: id, branch_name: 'main' }) })))) continue;
          const data = payload();
          const form = new FormData();
          form.append('file', new Blob([new Uint8Array(data)]), `w${i}.bin`);
          if (!(await attempt('stage', () => fetch(`${base}/workspaces/${id}/files/ws/r${round}`, { method: 'POST', body: form })))) continue;
          const body = await attempt('workspace commit', () =>
            fetch(`${base}/workspaces/${id}/commit/main`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: id, author: AUTHOR.name, email: AUTHOR.email }) }),
          );
          if (body) acked.files.set(`${body.commit.id}:ws/r${round}/w${i}.bin`, data);
        }
      };
      const chunkedUploads = async () => {
        while (!killed) {
          const data = randomBytes(200_000 + Math.floor(random() * 300_000));
          const hash = hashBuffer(data);
          const half = Math.floor(data.length / 2);
          const put = (from: number, to: number) => () =>
            fetch(`${base}/versions/${hash}/chunks?offset=${from}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(data.subarray(from, to)) });
          if (!(await attempt('chunk 2', put(half, data.length)))) continue;
          if (!(await attempt('chunk 1', put(0, half)))) continue;
          const done = await attempt('complete', () => fetch(`${base}/versions/${hash}/complete`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({}) }));
          if (done) acked.blobs.set(hash, data);
        }
      };
      const branchMoves = async () => {
        const name = `b-${round}`;
        const body = await attempt('create branch', () => fetch(`${base}/branches`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ new_name: name, from_name: 'main' }) }));
        if (!body) return;
        acked.branches.set(name, body.branch.commit_id ?? body.branch.commit?.id);
        await fileCommits(name, 'branch');
      };

      const work = [batchUploads(), fileCommits('main', 'main'), fileCommits('main', 'other'), workspaceCommits(), chunkedUploads(), branchMoves()];
      await new Promise((r) => setTimeout(r, 100 + random() * 900));
      killed = true;
      await kill(server.child);
      await Promise.all(work);

      server = await startYokeProcess(dataDir);
      // Start-up clears what the killed process left in flight.
      assert.deepEqual(await readdir(join(dataDir, 'blobs', 'tmp')), [], `temporary files after restart, round ${round} (${context})`);
      assert.deepEqual((await readdir(join(dataDir, 'tmp')).catch(() => [])).filter((n) => n.startsWith('dir-hashes-')), [], `scratch after restart (${context})`);
      // What this round acknowledged now; everything once more at the end.
      await verify(server.url, round, (key) => !checked.has(key));
    }
    await verify(server.url, ROUNDS, () => true);
    await kill(server.child);
    assert.ok(acked.files.size >= ROUNDS, `commits acknowledged: ${acked.files.size}`);
    assert.ok(acked.blobs.size >= ROUNDS, `uploads acknowledged: ${acked.blobs.size}`);

    const fsck = await runYoke(['fsck', '--json', '--data-dir', dataDir]);
    const report = JSON.parse(fsck.stdout);
    assert.equal(fsck.code, 0, `fsck: ${JSON.stringify(report.problems.slice(0, 5))} (${context})`);
    assert.ok(report.commits > ROUNDS && report.blobs > ROUNDS, JSON.stringify(report));
  });
});
