import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, open, readdir, readFile, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { freePort } from '../helpers/cli.js';
import { localStoresOnly } from '../helpers/server.js';
import { hashBuffer } from '../../src/core/hash.js';

/**
 * A full disk (issue 11). The server runs in its own process with its data directory on a 24 MiB
 * tmpfs; the test fills that file system with a filler file beside the data directory, checks that
 * every kind of write answers 507 with the JSON envelope (blob writes failing with ENOSPC, SQLite's
 * failing with SQLITE_FULL), that reads go on, that nothing already stored changes and no partial
 * blob appears, then deletes the filler and checks that the same writes succeed, in the same process.
 *
 * The tmpfs is mounted directly when the test may (root with CAP_SYS_ADMIN); otherwise the server is
 * started inside `unshare -rm` (a user and mount namespace of its own) that mounts it first. The test
 * then reaches the mount through `/proc/<server pid>/root`, so both cases take the same path, and the
 * mount vanishes with the server's namespace. `YOKE_TEST_TMPFS=unshare` forces the second way.
 */

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const TMPFS_SIZE = 24 * 1024 * 1024;
const REQUEST_TIMEOUT_MS = 15_000;
const AUTHOR = { name: 'Ada Lovelace', email: 'ada@example.com' };
const R = 'disk/full';

function run(command: string, args: string[]): { ok: boolean; reason: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 10_000 });
  if (result.error) return { ok: false, reason: `${command}: ${result.error.message}` };
  return { ok: result.status === 0, reason: `${command} exited ${result.status}: ${(result.stderr || result.stdout).trim()}` };
}

interface Disk {
  mode: 'mount' | 'unshare';
  /** The mount point as the server sees it. */
  mountPoint: string;
  /** The same directory as this process reaches it. */
  root: string;
  server: ChildProcess;
  url: string;
  /** What the server printed (pino JSON lines at warn and above). */
  output(): string;
  teardown(): Promise<void>;
}

/** Mounts the tmpfs (directly, or in a namespace of the server's) and starts `yoke serve` on it; the reason instead when neither works. */
async function startOnTmpfs(): Promise<Disk | string> {
  const base = await mkdtemp(join(tmpdir(), 'yoke-disk-full-'));
  const mountPoint = join(base, 'mnt');
  await mkdir(mountPoint);
  const removeBase = () => rm(base, { recursive: true, force: true });
  const mountArgs = ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE}`, 'tmpfs'];
  let mode: Disk['mode'] | null = null;
  const reasons: string[] = [];
  if (process.env.YOKE_TEST_TMPFS !== 'unshare') {
    const direct = run('mount', [...mountArgs, mountPoint]);
    if (direct.ok) mode = 'mount';
    else reasons.push(direct.reason);
  }
  if (mode === null) {
    const probe = run('unshare', ['-rm', 'sh', '-c', `mount ${mountArgs.join(' ')} "$0"`, mountPoint]);
    if (probe.ok) mode = 'unshare';
    else reasons.push(probe.reason);
  }
  if (mode === null) {
    await removeBase();
    return reasons.join('; ');
  }

  const port = await freePort();
  const serve = [process.execPath, join(ROOT, 'bin/yoke.cjs'), 'serve', '--port', String(port), '--data-dir', join(mountPoint, 'data'), '--log-level', 'warn'];
  const server =
    mode === 'mount'
      ? spawn(serve[0], serve.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
      : // unshare execs sh, which execs node after mounting: the pid is the server's, in the namespace holding the mount.
        spawn('unshare', ['-rm', 'sh', '-c', `mount ${mountArgs.join(' ')} "$0" && exec "$@"`, mountPoint, ...serve], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  server.stdout!.on('data', (c) => (output += c));
  server.stderr!.on('data', (c) => (output += c));
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  const unmount = async () => {
    if (mode === 'mount') run('umount', ['-l', mountPoint]);
    await removeBase();
  };
  const teardown = async () => {
    if (server.exitCode === null && server.signalCode === null) {
      server.kill('SIGTERM');
      const timer = setTimeout(() => server.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await unmount();
  };
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/api/version`)).ok) break;
    } catch {}
    if (server.exitCode !== null || i > 300) {
      await teardown();
      throw new Error(`the server did not start (${mode}): ${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const root = mode === 'mount' ? mountPoint : `/proc/${server.pid}/root${mountPoint}`;
  // Make sure this is the tmpfs and not the directory under it (a /proc we may not look through).
  const fs = await statfs(root).catch((err: Error) => err);
  if (fs instanceof Error || fs.blocks * fs.bsize !== TMPFS_SIZE) {
    await teardown();
    return `the ${mode} tmpfs is not reachable at ${root}: ${fs instanceof Error ? fs.message : `${fs.blocks * fs.bsize} bytes`}`;
  }
  return { mode, mountPoint, root, server, url, output: () => output, teardown };
}

interface Answer {
  status: number;
  body: any;
}

test('a full disk: every write answers 507 in JSON, nothing stored changes, and the same writes succeed once space returns (issue 11)', { timeout: 120_000, skip: localStoresOnly }, async (t: TestContext) => {
  const started = await startOnTmpfs();
  if (typeof started === 'string') {
    t.skip(`no way to mount a tmpfs here: ${started}`);
    return;
  }
  const disk = started;
  t.after(() => disk.teardown());
  t.diagnostic(`tmpfs mounted by ${disk.mode === 'mount' ? 'mount(8) in this namespace' : 'unshare -rm around the server'}`);
  const dataDir = join(disk.root, 'data');
  const filler = join(disk.root, 'filler');

  // ---- requests -------------------------------------------------------------------------------
  async function call(method: string, path: string, body?: BodyInit, headers: Record<string, string> = {}): Promise<Answer> {
    const res = await fetch(disk.url + path, { method, body, headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const text = await res.text();
    try {
      return { status: res.status, body: JSON.parse(text) };
    } catch {
      return { status: res.status, body: text };
    }
  }
  const api = (path: string) => `/api/repos/${R}${path}`;
  const jsonCall = (method: string, path: string, body: unknown) => call(method, path, JSON.stringify(body), { 'content-type': 'application/json' });
  const form = (files: Array<{ name: string; data: Buffer; field?: string }>, fields: Record<string, string> = {}) => {
    const f = new FormData();
    for (const [k, v] of Object.entries(fields)) f.append(k, v);
    for (const file of files) f.append(file.field ?? 'file', new Blob([new Uint8Array(file.data)]), file.name);
    return f;
  };
  /** PUT …/file/main/{dir}/{name}: one `file` part, stored at exactly that path, as one commit. */
  const putFile = (repo: string, dir: string, name: string, data: Buffer, message = `add ${name}`) =>
    call('PUT', `/api/repos/${repo}/file/main/${dir === '' ? '' : `${dir}/`}${name}`, form([{ name, data }], { ...AUTHOR, message }));
  const batchUpload = (blobs: Buffer[]) => call('POST', api('/versions'), form(blobs.map((data) => ({ name: hashBuffer(data), data, field: 'file[]' }))));
  const stage = (dir: string, files: Array<{ name: string; data: Buffer }>) =>
    call('POST', api(`/workspaces/ws1/files/${dir}`), form(files.map((f) => ({ ...f, field: 'file[]' }))));
  const uploadChunk = (q: Record<string, string | number | boolean>, data: Buffer) =>
    call('POST', api(`/commits/upload_chunk?${new URLSearchParams(Object.entries(q).map(([k, v]) => [k, String(v)]))}`), new Uint8Array(data), { 'content-type': 'application/octet-stream' });
  const putChunk = (hash: string, offset: number, data: Buffer) =>
    call('PUT', api(`/versions/${hash}/chunks?offset=${offset}`), new Uint8Array(data), { 'content-type': 'application/octet-stream' });
  const completeChunks = (hash: string) => jsonCall('POST', api(`/versions/${hash}/complete`), { files: [{ hash, file_name: 'chunked.bin' }] });
  const commitWorkspace = () => jsonCall('POST', api('/workspaces/ws1/commit/main'), { message: 'from the workspace', author: AUTHOR.name, email: AUTHOR.email });
  const createBranch = (name: string) => jsonCall('POST', api('/branches'), { new_name: name, from_name: 'main' });
  const createRepo = (namespace: string, name: string) => jsonCall('POST', '/api/repos', { namespace, name, user: AUTHOR });
  const head = async (repo: string, branch: string) => {
    const res = await call('GET', `/api/repos/${repo}/branches/${branch}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.branch.commit_id as string;
  };
  const fileBytes = async (repo: string, rev: string, path: string) => {
    const res = await fetch(`${disk.url}/api/repos/${repo}/file/${rev}/${path}`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    return res.status === 200 ? Buffer.from(await res.arrayBuffer()) : res.status;
  };
  /** Compared by hash: a failed comparison of megabytes would print them. */
  const sameBytes = (actual: Buffer | number, expected: Buffer, what: string) =>
    assert.equal(typeof actual === 'number' ? `HTTP ${actual}` : hashBuffer(actual), hashBuffer(expected), `${what}: other bytes than expected`);
  const ok = (res: Answer, what: string) => {
    assert.equal(res.status, 200, `${what}: ${res.status} ${JSON.stringify(res.body)}`);
    assert.equal(res.body.status, 'success', what);
  };
  /** 507 with Oxen's error envelope, saying what is wrong. */
  const insufficient = (res: Answer, what: string) => {
    assert.equal(res.status, 507, `${what}: ${res.status} ${JSON.stringify(res.body)}`);
    assert.equal(res.body.status, 'error', what);
    assert.equal(res.body.status_message, 'insufficient_storage', what);
    assert.equal(res.body.error?.type, 'insufficient_storage', what);
    assert.equal(typeof res.body.oxen_version, 'string', what);
    assert.match(res.body.status_description, /space/i, what);
  };
  const alive = () => assert.ok(disk.server.exitCode === null && disk.server.signalCode === null, `the server died: ${disk.output()}`);

  // ---- the disk -------------------------------------------------------------------------------
  const free = async () => {
    const fs = await statfs(disk.root);
    return fs.bavail * fs.bsize;
  };
  /**
   * Sizes the filler so that about `leave` bytes are free (0: until the file system refuses a byte);
   * it shrinks when a failed write left staging behind that took what was free.
   */
  async function fill(leave: number) {
    const handle = await open(filler, 'a');
    const short = leave - (await free());
    if (short > 0) {
      const { size } = await handle.stat();
      await handle.truncate(Math.max(0, size - Math.ceil(short / 4096) * 4096));
    }
    const zeros = Buffer.alloc(1024 * 1024);
    try {
      for (;;) {
        const room = (await free()) - leave;
        if (room <= 0 && leave > 0) break;
        const size = Math.max(Math.min(room, zeros.length), 4096);
        try {
          const { bytesWritten } = await handle.write(zeros, 0, size);
          if (bytesWritten === 0) break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
          if (size === 4096 || leave > 0) break;
        }
      }
    } finally {
      await handle.close();
    }
  }
  /** Every stored object hashes to its name; no temp file is left. */
  async function assertBlobStoreClean() {
    const objects = join(dataDir, 'blobs/objects');
    let count = 0;
    for (const shard of await readdir(objects)) {
      for (const name of await readdir(join(objects, shard))) {
        const bytes = await readFile(join(objects, shard, name));
        assert.equal(hashBuffer(bytes).padStart(32, '0'), shard + name, `object ${shard}/${name} holds other bytes`);
        count++;
      }
    }
    assert.deepEqual(await readdir(join(dataDir, 'blobs/tmp')), [], 'temp files left behind');
    return count;
  }
  /**
   * The database as a restart would find it: a copy of the file and its WAL (taken between requests)
   * opened afresh, which replays the WAL, then checked. A copy also because SQLite resolves the
   * /proc/<pid>/root link to a path in this mount namespace, where the tmpfs is not.
   */
  async function assertDatabaseIntact() {
    const copy = await mkdtemp(join(tmpdir(), 'yoke-disk-full-db-'));
    try {
      await copyFile(join(dataDir, 'meta.sqlite'), join(copy, 'meta.sqlite'));
      await copyFile(join(dataDir, 'meta.sqlite-wal'), join(copy, 'meta.sqlite-wal')).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      const db = new Database(join(copy, 'meta.sqlite'), { fileMustExist: true });
      try {
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
        assert.deepEqual(db.pragma('foreign_key_check'), []);
      } finally {
        db.close();
      }
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  }

  // ---- the old state --------------------------------------------------------------------------
  const old = new Map<string, Buffer>([
    ['a.txt', Buffer.from('alpha\n')],
    ['data/b.bin', randomBytes(200_000)],
    ['data/c.txt', Buffer.from('gamma\n')],
  ]);
  const staged = randomBytes(3_000);
  let mainHead = '';
  let devHead = '';
  await t.test('old state: a repository with two commits, a branch and a workspace with a staged file', async () => {
    ok(await createRepo('disk', 'full'), 'create repo');
    ok(await putFile(R, '', 'a.txt', old.get('a.txt')!), 'first commit');
    ok(await call('PUT', api('/file/main/data'), form([{ name: 'b.bin', data: old.get('data/b.bin')! }, { name: 'c.txt', data: old.get('data/c.txt')! }], { ...AUTHOR, message: 'data' })), 'second commit');
    ok(await createBranch('dev'), 'branch dev');
    ok(await jsonCall('PUT', api('/workspaces'), { workspace_id: 'ws1', branch_name: 'main' }), 'workspace');
    ok(await stage('ws', [{ name: 'staged.bin', data: staged }]), 'stage');
    ok(await createRepo('disk', 'ballast'), 'create ballast repo');
    mainHead = await head(R, 'main');
    devHead = await head(R, 'dev');
    assert.equal(devHead, mainHead);
  });

  const assertOldStateIntact = async () => {
    for (const [path, bytes] of old) sameBytes(await fileBytes(R, 'main', path), bytes, path);
    for (const [path, bytes] of old) sameBytes(await fileBytes(R, mainHead, path), bytes, `${path} at the old head`);
    assert.equal(await head(R, 'main'), mainHead);
    assert.equal(await head(R, 'dev'), devHead);
    const listing = await call('GET', api('/dir/main/data'));
    ok(listing, 'listing');
    assert.deepEqual(listing.body.entries.map((e: { filename: string }) => e.filename).sort(), ['b.bin', 'c.txt']);
    const status = await call('GET', api('/workspaces/ws1/changes'));
    ok(status, 'workspace status');
    assert.deepEqual(status.body.changes.map((c: { path: string }) => c.path), ['ws/staged.bin']);
    assert.deepEqual(await fileBytes(R, 'main', 'ws/staged.bin'), 404);
  };

  await t.test('uploads until the disk fills: the upload that runs out answers 507 and leaves no temp file or partial blob', async () => {
    await fill(3 * 1024 * 1024);
    const before = await head('disk/ballast', 'main').catch(() => null);
    let last: Answer | null = null;
    const stored: Array<[string, Buffer]> = [];
    for (let i = 0; i < 10; i++) {
      const data = randomBytes(1024 * 1024);
      last = await putFile('disk/ballast', 'big', `${i}.bin`, data);
      if (last.status !== 200) break;
      stored.push([`big/${i}.bin`, data]);
    }
    insufficient(last!, 'the upload past the end of the disk');
    assert.ok(stored.length >= 1 && stored.length <= 3, `${stored.length} uploads fitted in 3 MiB`);
    // The branch moved for the uploads that succeeded, and only for them.
    assert.notEqual(await head('disk/ballast', 'main'), before);
    for (const [path, data] of stored) sameBytes(await fileBytes('disk/ballast', 'main', path), data, path);
    assert.equal(await fileBytes('disk/ballast', 'main', `big/${stored.length}.bin`), 404);
    await assertBlobStoreClean();
    alive();
  });

  // Uploads in parts, begun while a few hundred KB are free (their sessions are recorded, their bytes do not fit).
  const chunked = randomBytes(800_000);
  const chunkedHash = hashBuffer(chunked);
  const chunkBase = { hash: chunkedHash, total_chunks: 2, total_size: chunked.length, is_compressed: false, filename: 'chunked/upload.bin' };
  const chunks = [chunked.subarray(0, 400_000), chunked.subarray(400_000)];
  const fresh = randomBytes(100_000);
  const freshBase = { hash: hashBuffer(fresh), total_chunks: 1, total_size: fresh.length, is_compressed: false, filename: 'chunked/fresh.bin' };
  const resumable = randomBytes(600_000);
  const resumableHash = hashBuffer(resumable);
  const chunksHeld = async (hash: string) => {
    const res = await call('GET', api(`/versions/${hash}/chunks`));
    ok(res, 'GET versions/{hash}/chunks');
    return { received: res.body.received_bytes as number, chunks: res.body.chunks as unknown[], stored: res.body.stored as boolean };
  };

  /** 300 KiB free: SQLite's writes fit, a file of more does not (so what fails is the file's write: ENOSPC). */
  const nearlyFull = async () => {
    await fill(300 * 1024);
    assert.ok((await free()) >= 256 * 1024, 'a few hundred KB are free');
  };

  await t.test('a few hundred KB free: a large upload answers 507, a small one still commits, parts that do not fit answer 507 and are not counted', async () => {
    await nearlyFull();
    const before = await head('disk/ballast', 'main');
    insufficient(await putFile('disk/ballast', 'near', 'large.bin', randomBytes(1024 * 1024)), 'a 1 MiB upload with 300 KiB free');
    assert.equal(await head('disk/ballast', 'main'), before);
    const small = Buffer.from('still fits\n');
    ok(await putFile('disk/ballast', 'near', 'small.txt', small), 'a small upload');
    assert.notEqual(await head('disk/ballast', 'main'), before);
    sameBytes(await fileBytes('disk/ballast', 'main', 'near/small.txt'), small, 'near/small.txt');
    await nearlyFull();
    insufficient(await uploadChunk({ ...chunkBase, chunk_num: 0 }, chunks[0]), 'a 400 KB chunk through commits/upload_chunk');
    await nearlyFull();
    insufficient(await putChunk(resumableHash, 0, resumable), 'a 600 KB chunk through versions/{hash}/chunks');
    // A chunk that did not fit is not counted as received (completing would assemble garbage).
    assert.deepEqual(await chunksHeld(resumableHash), { received: 0, chunks: [], stored: false });
    await assertBlobStoreClean();
  });

  // What the writes under a full disk try to store; the same writes are sent again once space returns.
  const single = randomBytes(10_000);
  const streamed = randomBytes(1024 * 1024);
  const batch = [randomBytes(5_000), randomBytes(7_000)];
  const wsFile = randomBytes(4_000);
  const failedHashes = [single, streamed, ...batch, chunked, fresh, resumable, wsFile].map(hashBuffer);

  await t.test('the disk full to the last byte: every kind of write answers 507 JSON, none hangs, the server keeps serving', async () => {
    const writes: Array<[string, () => Promise<Answer>]> = [
      ['PUT file (a small part, buffered)', () => putFile(R, 'new', 'single.bin', single)],
      ['PUT file (a 1 MiB part, streamed)', () => putFile(R, 'new', 'streamed.bin', streamed)],
      ['DELETE file (a commit without new bytes)', () => jsonCall('DELETE', api('/file/main/a.txt'), { ...AUTHOR, message: 'remove a' })],
      ['POST versions (batch upload)', () => batchUpload(batch)],
      ['POST commits/upload_chunk (an upload under way)', () => uploadChunk({ ...chunkBase, chunk_num: 1 }, chunks[1])],
      ['POST commits/upload_chunk (a new upload)', () => uploadChunk({ ...freshBase, chunk_num: 0 }, fresh)],
      ['PUT versions/{hash}/chunks (an upload under way)', () => putChunk(resumableHash, 0, resumable)],
      ['POST versions/{hash}/create (a new upload)', () => jsonCall('POST', api(`/versions/${hashBuffer(wsFile)}/create`), { size: wsFile.length, file_name: 'ws.bin' })],
      ['POST workspaces/{id}/files (staging)', () => stage('ws', [{ name: 'more.bin', data: wsFile }])],
      ['POST workspaces/{id}/commit', () => commitWorkspace()],
      ['PUT workspaces (create one)', () => jsonCall('PUT', api('/workspaces'), { workspace_id: 'ws2', branch_name: 'main' })],
      ['POST branches', () => createBranch('feature')],
      ['POST /api/repos', () => createRepo('disk', 'newrepo')],
    ];
    // Every write is tried before any is judged, so that one run reports each that fails.
    const failures: string[] = [];
    for (const [what, write] of writes) {
      await fill(0);
      assert.ok((await free()) < 4096, `the disk is full before ${what}`);
      try {
        insufficient(await write(), what);
      } catch (err) {
        failures.push(`${what}: ${(err as Error).message.split('\n')[0]}`);
      }
      alive();
    }
    assert.deepEqual(failures, []);
    // Beginning an upload in numbered parts checks first that its declared size fits: refused before a byte is sent.
    await fill(0);
    const begin = await jsonCall('POST', api('/versions/uploads'), { hash: hashBuffer(single), size: single.length });
    assert.ok(begin.status === 507 || begin.status === 413, `POST versions/uploads: ${begin.status} ${JSON.stringify(begin.body)}`);
    assert.equal(begin.body.status, 'error');
    t.diagnostic(`POST versions/uploads on a full disk: ${begin.status} ${begin.body.status_description}`);
    assert.deepEqual(await chunksHeld(resumableHash), { received: 0, chunks: [], stored: false });
    alive();
  });

  await t.test('during the full disk: reads work, old bytes and branch heads are unchanged, nothing partial is visible, the database is intact', async () => {
    await fill(0);
    await assertOldStateIntact();
    assert.equal((await call('GET', api('/branches/feature'))).status, 404);
    assert.equal((await call('GET', '/api/repos/disk/newrepo')).status, 404);
    assert.equal((await call('GET', api('/workspaces/ws2'))).status, 404);
    const history = await call('GET', api('/commits/history/main'));
    ok(history, 'history');
    assert.equal(history.body.commits[0].id, mainHead);
    for (const hash of failedHashes) assert.equal((await call('GET', api(`/versions/${hash}/metadata`))).status, 404, `version ${hash}`);
    const missing = await jsonCall('POST', api('/versions/missing'), { hashes: failedHashes });
    ok(missing, 'versions/missing');
    assert.deepEqual([...missing.body.missing].sort(), [...failedHashes].sort());
    assert.equal((await call('GET', '/api/health')).status, 200);
    await assertBlobStoreClean();
    await assertDatabaseIntact();
    alive();
  });

  await t.test('space returns (the filler is deleted): the same writes succeed, in the same server process', async () => {
    await rm(filler);
    assert.ok((await free()) > 10 * 1024 * 1024);

    ok(await putFile(R, 'new', 'single.bin', single), 'PUT file (small)');
    ok(await putFile(R, 'new', 'streamed.bin', streamed), 'PUT file (streamed)');
    sameBytes(await fileBytes(R, 'main', 'new/single.bin'), single, 'new/single.bin');
    sameBytes(await fileBytes(R, 'main', 'new/streamed.bin'), streamed, 'new/streamed.bin');

    const uploaded = await batchUpload(batch);
    ok(uploaded, 'POST versions');
    assert.deepEqual(uploaded.body.err_files, []);
    for (const data of batch) ok(await call('GET', api(`/versions/${hashBuffer(data)}/metadata`)), 'batch blob');

    const alone = await uploadChunk({ ...freshBase, chunk_num: 0 }, fresh);
    ok(alone, 'upload_chunk of the new upload');
    assert.equal(alone.body.complete, true);
    const first = await uploadChunk({ ...chunkBase, chunk_num: 0 }, chunks[0]);
    ok(first, 'upload_chunk 0');
    const last = await uploadChunk({ ...chunkBase, chunk_num: 1 }, chunks[1]);
    ok(last, 'upload_chunk 1');
    assert.equal(last.body.complete, true);
    assert.equal((await call('GET', api(`/versions/${chunkedHash}/metadata`))).body.version?.size, chunked.length);

    ok(await putChunk(resumableHash, 0, resumable), 'versions/{hash}/chunks');
    const completed = await completeChunks(resumableHash);
    ok(completed, 'versions/{hash}/complete');
    assert.equal(completed.body.version.hash, resumableHash);

    ok(await stage('ws', [{ name: 'more.bin', data: wsFile }]), 'workspace staging');
    const committed = await commitWorkspace();
    ok(committed, 'workspace commit');
    sameBytes(await fileBytes(R, 'main', 'ws/staged.bin'), staged, 'ws/staged.bin');
    sameBytes(await fileBytes(R, 'main', 'ws/more.bin'), wsFile, 'ws/more.bin');

    ok(await jsonCall('PUT', api('/workspaces'), { workspace_id: 'ws2', branch_name: 'main' }), 'workspace creation');
    ok(await createBranch('feature'), 'branch creation');
    assert.equal(await head(R, 'feature'), await head(R, 'main'));
    ok(await createRepo('disk', 'newrepo'), 'repository creation');
    ok(await jsonCall('DELETE', api('/file/main/a.txt'), { ...AUTHOR, message: 'remove a' }), 'DELETE file');

    // What was there before the disk filled is still there, at the old head and on dev.
    for (const [path, bytes] of old) sameBytes(await fileBytes(R, mainHead, path), bytes, path);
    assert.equal(await head(R, 'dev'), devHead);
    await assertBlobStoreClean();
    // Every upload begun was finished: no staging is left, not even of the chunks that once did not fit.
    assert.deepEqual(await readdir(join(dataDir, 'blobs/uploads')), []);
    await assertDatabaseIntact();
    alive();
    const unhandled = disk.output().split('\n').filter((line) => /unhandled error|"level":60/.test(line));
    assert.deepEqual(unhandled, [], 'the server logged an unhandled error');
  });
});
