import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { hostname, tmpdir } from 'node:os';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { hashBuffer } from '../../src/core/hash.js';
import { assertEnvelope, blobsInS3, createRepo, startTestServer, type TestServer } from '../helpers/server.js';
import { chunksOf } from '../storage/blob-store-conformance.js';

/** A tar.gz built in memory from the given entries. */
async function tarGz(entries: Array<{ name: string; data?: Buffer; type?: 'file' | 'directory' | 'symlink'; linkname?: string }>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  for (const e of entries) {
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name: e.name, type: e.type ?? 'file', linkname: e.linkname, size: e.data?.length ?? 0 }, e.data ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve())),
    );
  }
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

/** The uploads a server's blob store (local or S3) holds staged parts of, sorted. */
async function stagedUploads(server: TestServer): Promise<string[]> {
  const ids: string[] = [];
  for await (const upload of server.yoke.blobs.listStagedUploads()) ids.push(upload.uploadId);
  return ids.sort();
}

const versionPath = (hash: string) => `versions/files/${hash.slice(0, 2)}/${hash.slice(2)}/data`;

describe('chunked uploads: commits/upload_chunk', () => {
  let server: TestServer;
  const R = 'up/repo';
  before(async () => {
    server = await startTestServer();
    await createRepo(server, 'up', 'repo');
  });
  after(() => server.stop());

  const repoId = async () => (await server.yoke.repos.require('up', 'repo')).id;
  const held = async (hash: string) => (await server.yoke.meta.findRepoBlobs(await repoId(), [hash])).get(hash);
  /** Uploads staged right now; a finished or refused upload leaves no staging behind. */
  const staging = () => stagedUploads(server);

  /** A buffer goes with its Content-Length; a stream goes without one (chunked transfer encoding). */
  function sendChunk(q: Record<string, string | number | boolean>, body: Buffer | ReadableStream) {
    const query = new URLSearchParams(Object.entries(q).map(([k, v]) => [k, String(v)]));
    const sent = Buffer.isBuffer(body) ? { body: new Uint8Array(body) } : { body, duplex: 'half' };
    return server.json(`/api/repos/${R}/commits/upload_chunk?${query}`, { method: 'POST', ...sent, headers: { 'content-type': 'application/octet-stream' } } as RequestInit);
  }

  function split(data: Buffer, n: number): Buffer[] {
    const size = Math.ceil(data.length / n);
    return Array.from({ length: n }, (_, i) => data.subarray(i * size, (i + 1) * size));
  }

  it('assembles raw chunks sent out of order once all are present, verified, as a version', async () => {
    const stagedBefore = await staging();
    const data = randomBytes(300_000);
    const hash = hashBuffer(data);
    const chunks = split(data, 3);
    const base = { hash, total_chunks: 3, total_size: data.length, is_compressed: false, filename: 'images/cow.jpg' };
    for (const i of [2, 0]) {
      const { status, body } = await sendChunk({ ...base, chunk_num: i }, chunks[i]);
      assert.equal(status, 200);
      assertEnvelope(body, 'success');
      assert.equal(body.complete, false);
    }
    assert.equal(await held(hash), undefined);
    const last = await sendChunk({ ...base, chunk_num: 1 }, chunks[1]);
    assert.equal(last.body.complete, true);
    assert.deepEqual(last.body.hashes, [hash]);
    assert.equal(await held(hash), data.length);
    const stored = Buffer.concat(await (await server.yoke.blobs.get(hash)).toArray());
    assert.ok(stored.equals(data));
    assert.deepEqual(await staging(), stagedBefore);
  });

  it('assembles exactly once when the last chunks arrive together', async () => {
    const data = randomBytes(200_000);
    const hash = hashBuffer(data);
    const chunks = split(data, 4);
    const base = { hash, total_chunks: 4, total_size: data.length, is_compressed: false, filename: 'x.bin' };
    await sendChunk({ ...base, chunk_num: 0 }, chunks[0]);
    const results = await Promise.all([1, 2, 3, 3, 2].map((i) => sendChunk({ ...base, chunk_num: i }, chunks[i])));
    for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(results.filter((r) => r.body.complete).length <= 1);
    assert.equal(await held(hash), data.length);
  });

  describe('raw chunks of one stride are assembled in place', () => {
    /** The local store's staging directory of an upload; S3 keeps every part as an object, nothing in place. */
    const uploadDir = async (hash: string) => {
      const upload = await server.yoke.meta.getUpload(await repoId(), 'chunked', hash);
      return upload ? (await readdir(join(server.dataDir, 'blobs/uploads', upload.id))).sort() : null;
    };
    /** Sends the chunks in the given order; the data is cut at `cuts`. */
    async function upload(data: Buffer, cuts: number[], order: number[], hash = hashBuffer(data)) {
      const bounds = [0, ...cuts, data.length];
      const chunks = bounds.slice(0, -1).map((start, i) => data.subarray(start, bounds[i + 1]));
      const base = { hash, total_chunks: chunks.length, total_size: data.length, is_compressed: false, filename: 'big.bin' };
      const answers = [];
      for (const i of order) answers.push(await sendChunk({ ...base, chunk_num: i }, chunks[i]));
      return answers;
    }
    const stored = async (hash: string) => Buffer.concat(await (await server.yoke.blobs.get(hash)).toArray());

    it('equal chunks (the first sent fixes the stride) go straight into one file; only the last is staged apart', async () => {
      const stagedBefore = await staging();
      const data = randomBytes(350_000);
      const hash = hashBuffer(data);
      const answers = await upload(data, [100_000, 200_000, 300_000], [0, 2, 3]);
      assert.ok(answers.every((a) => a.status === 200 && a.body.complete === false));
      if (!blobsInS3) assert.deepEqual(await uploadDir(hash), ['3', 'in-place']);
      const last = await upload(data, [100_000, 200_000, 300_000], [1]);
      assert.deepEqual(last[0].body.hashes, [hash]);
      assert.ok((await stored(hash)).equals(data));
      assert.deepEqual(await staging(), stagedBefore);
    });

    it('chunks of other sizes (a shorter or a longer one) are staged apart and the file is assembled from both places', async () => {
      for (const cuts of [[100_000, 200_000, 250_000], [50_000, 170_000]]) {
        const data = randomBytes(320_000);
        const hash = hashBuffer(data);
        const answers = await upload(data, cuts, Array.from({ length: cuts.length + 1 }, (_, i) => i));
        assert.deepEqual(answers[answers.length - 1].body.hashes, [hash], JSON.stringify(answers.map((a) => a.body)));
        assert.ok((await stored(hash)).equals(data));
      }
    });

    it('a full-stride chunk sent without Content-Length is moved into place', async () => {
      const data = randomBytes(300_000);
      const hash = hashBuffer(data);
      const base = { hash, total_chunks: 3, total_size: data.length, is_compressed: false, filename: 'big.bin' };
      await sendChunk({ ...base, chunk_num: 0 }, data.subarray(0, 100_000));
      const streamed = new ReadableStream({
        start(controller) {
          controller.enqueue(new Uint8Array(data.subarray(100_000, 150_000)));
          controller.enqueue(new Uint8Array(data.subarray(150_000, 200_000)));
          controller.close();
        },
      });
      const res = await sendChunk({ ...base, chunk_num: 1 }, streamed);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      if (!blobsInS3) assert.deepEqual(await uploadDir(hash), ['1', 'in-place']);
      const last = await sendChunk({ ...base, chunk_num: 2 }, data.subarray(200_000));
      assert.deepEqual(last.body.hashes, [hash]);
      assert.ok((await stored(hash)).equals(data));
    });

    it('a chunk resent with other bytes replaces what it wrote in place', async () => {
      const data = randomBytes(300_000);
      const hash = hashBuffer(data);
      const cuts = [100_000, 200_000];
      await upload(data, cuts, [0]);
      await upload(randomBytes(300_000), cuts, [1], hash);
      const answers = await upload(data, cuts, [1, 2]);
      assert.deepEqual(answers[1].body.hashes, [hash]);
      assert.ok((await stored(hash)).equals(data));
    });

    it('bytes already stored are uploaded again like any others (verified, deduplicated)', async () => {
      const data = randomBytes(300_000);
      const hash = hashBuffer(data);
      await upload(data, [100_000, 200_000], [0, 1, 2]);
      const again = await upload(data, [100_000, 200_000], [0, 1, 2]);
      assert.equal(again[2].status, 200);
      assert.deepEqual(again[2].body.hashes, [hash]);
      const wrong = randomBytes(300_000);
      const refused = await upload(wrong, [100_000, 200_000], [0, 1, 2], hash);
      assert.equal(refused[2].status, 400, 'bytes that do not hash to a stored blob are still refused');
      assert.ok((await stored(hash)).equals(data));
    });

    it('an upload published by an earlier attempt that then failed completes from the stored blob', async () => {
      const data = randomBytes(300_000);
      const hash = hashBuffer(data);
      await upload(data, [100_000, 200_000], [0, 1]);
      const record = (await server.yoke.meta.getUpload(await repoId(), 'chunked', hash))!;
      // The earlier attempt: the last chunk went into place and the file became the blob, then it failed.
      const last = await server.yoke.blobs.putPart(record.id, 2, null, chunksOf(data.subarray(200_000), 64 * 1024));
      const parts = [...(await server.yoke.meta.listUploadParts(record.id)), { part: 2, offset: null, ...last }];
      await server.yoke.blobs.completeParts(record.id, parts, data.length, hash, null);
      const retry = await upload(data, [100_000, 200_000], [2]);
      assert.equal(retry[0].status, 200, JSON.stringify(retry[0].body));
      assert.deepEqual(retry[0].body.hashes, [hash]);
      assert.equal(await held(hash), data.length);
    });

    it('equal chunks that do not hash to the declared hash are refused, and nothing stays', async () => {
      const stagedBefore = await staging();
      const data = randomBytes(300_000);
      const wrong = hashBuffer(randomBytes(16));
      const answers = await upload(data, [100_000, 200_000], [0, 1, 2], wrong);
      assert.equal(answers[2].status, 400);
      assert.equal(answers[2].body.error.type, 'hash_mismatch');
      assert.equal(await held(wrong), undefined);
      assert.equal(await server.yoke.blobs.stat(hashBuffer(data)), null);
      assert.deepEqual(await staging(), stagedBefore);
    });
  });

  it('refuses assembled bytes that do not match the hash, and keeps nothing', async () => {
    const stagedBefore = await staging();
    const data = randomBytes(1000);
    const wrong = hashBuffer(randomBytes(10));
    const { status, body } = await sendChunk({ hash: wrong, chunk_num: 0, total_chunks: 1, total_size: 1000, is_compressed: false, filename: 'a' }, data);
    assert.equal(status, 400);
    assertEnvelope(body, 'error');
    assert.equal(await held(wrong), undefined);
    assert.equal(await server.yoke.blobs.stat(hashBuffer(data)), null);
    assert.deepEqual(await staging(), stagedBefore);
  });

  it('rejects chunk_num ≥ total_chunks, a chunk past total_size, a changed declaration, missing params, and a raw upload without filename', async () => {
    const hash = hashBuffer(randomBytes(8));
    const base = { hash, total_chunks: 2, total_size: 100, is_compressed: false, filename: 'f' };
    assert.equal((await sendChunk({ ...base, chunk_num: 2 }, Buffer.alloc(10))).status, 400);
    const past = await sendChunk({ ...base, chunk_num: 0 }, Buffer.alloc(101));
    assert.equal(past.status, 400);
    assert.match(past.body.status_description, /past total_size/);
    assert.equal((await sendChunk({ ...base, chunk_num: 0 }, Buffer.alloc(60))).status, 200);
    assert.equal((await sendChunk({ ...base, chunk_num: 1 }, Buffer.alloc(41))).status, 400, 'the second chunk would overflow');
    assert.equal((await sendChunk({ ...base, total_size: 200, chunk_num: 1 }, Buffer.alloc(40))).status, 409);
    const { hash: _h, ...noHash } = base;
    assert.equal((await sendChunk({ ...noHash, chunk_num: 0 }, Buffer.alloc(1))).status, 400);
    assert.equal((await sendChunk({ ...base, chunk_num: -1 }, Buffer.alloc(1))).status, 400);
    assert.equal((await sendChunk({ ...base, is_compressed: 'maybe' } as never, Buffer.alloc(1))).status, 400);
    const { filename: _f, ...noName } = base;
    assert.equal((await sendChunk({ ...noName, hash: hashBuffer('z'), chunk_num: 0 }, Buffer.alloc(1))).status, 400);
  });

  it('unpacks a compressed upload of versions/files entries, each verified', async () => {
    const stagedBefore = await staging();
    const files = [randomBytes(5000), randomBytes(12), Buffer.alloc(0)];
    const archive = await tarGz([
      { name: 'versions', type: 'directory' },
      { name: 'versions/files', type: 'directory' },
      ...files.map((data) => ({ name: versionPath(hashBuffer(data)), data })),
    ]);
    const chunks = split(archive, 2);
    const base = { hash: hashBuffer(archive), total_chunks: 2, total_size: archive.length, is_compressed: true };
    await sendChunk({ ...base, chunk_num: 1 }, chunks[1]);
    const { status, body } = await sendChunk({ ...base, chunk_num: 0 }, chunks[0]);
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body.hashes, files.map((f) => hashBuffer(f)));
    for (const f of files) assert.equal(await held(hashBuffer(f)), f.length);
    assert.deepEqual(await staging(), stagedBefore);
  });

  it('refuses a compressed upload whose gzip checksum is corrupt with 400, and keeps serving (issue 11)', async () => {
    const good = randomBytes(100);
    const archive = await tarGz([{ name: versionPath(hashBuffer(good)), data: good }]);
    archive[archive.length - 8] ^= 0xff; // the CRC-32 in gzip's trailer
    const { status, body } = await sendChunk({ hash: hashBuffer(archive), chunk_num: 0, total_chunks: 1, total_size: archive.length, is_compressed: true }, archive);
    assert.equal(status, 400, JSON.stringify(body));
    assertEnvelope(body, 'error');
    assert.equal((await server.json('/api/version')).status, 200);
  });

  it("takes a commit's dir_hashes too large for commits/upload (Oxen's client sends those in chunks): the commit counts as sent", async () => {
    const commit = hashBuffer('a pushed commit');
    const missing = async () =>
      (await server.json(`/api/repos/${R}/commits/missing`, { method: 'POST', body: JSON.stringify({ hashes: [commit] }) })).body.hashes;
    assert.deepEqual(await missing(), [commit]);
    // Its nodes came first (a received mark counts only for a commit whose node is stored).
    const repo = (await server.yoke.meta.getRepo('up', 'repo'))!;
    await server.yoke.meta.putNodes(repo.id, [[commit, Buffer.from('stands in for the commit record')]]);
    assert.deepEqual(await missing(), [commit]);
    const archive = await tarGz([
      { name: `history/${commit}/dir_hashes`, type: 'directory' },
      { name: `history/${commit}/dir_hashes/CURRENT`, data: Buffer.from('MANIFEST-000005\n') },
      { name: `history/${commit}/dir_hashes/000004.log`, data: randomBytes(3000) },
    ]);
    const { status, body } = await sendChunk({ hash: hashBuffer(archive), chunk_num: 0, total_chunks: 1, total_size: archive.length, is_compressed: true }, archive);
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body.hashes, []);
    assert.deepEqual(await missing(), []);
  });

  for (const [label, entries] of [
    ['a path with ..', [{ name: 'versions/files/../../etc/passwd', data: Buffer.from('x') }]],
    ['an absolute path', [{ name: '/etc/passwd', data: Buffer.from('x') }]],
    ['a symlink', [{ name: 'versions/files/ab/cd/data', type: 'symlink', linkname: '/etc/passwd' }]],
    ['another directory', [{ name: 'elsewhere/abc/CURRENT', data: Buffer.from('x') }]],
    ['an entry whose bytes do not match its hash', [{ name: versionPath(hashBuffer('claimed')), data: Buffer.from('actual') }]],
  ] as const) {
    it(`refuses a compressed upload with ${label}, recording nothing`, async () => {
      const stagedBefore = await staging();
      const good = randomBytes(64);
      const archive = await tarGz([{ name: versionPath(hashBuffer(good)), data: good }, ...(entries as unknown as Parameters<typeof tarGz>[0])]);
      const { status, body } = await sendChunk({ hash: hashBuffer(archive), chunk_num: 0, total_chunks: 1, total_size: archive.length, is_compressed: true }, archive);
      assert.equal(status, 400, JSON.stringify(body));
      assertEnvelope(body, 'error');
      assert.equal(await held(hashBuffer(good)), undefined, 'nothing of a refused archive is recorded for the repository');
      assert.deepEqual(await staging(), stagedBefore);
    });
  }

  it('refuses a compressed upload that is not gzip', async () => {
    const stagedBefore = await staging();
    const junk = randomBytes(500);
    const { status } = await sendChunk({ hash: hashBuffer(junk), chunk_num: 0, total_chunks: 1, total_size: 500, is_compressed: true }, junk);
    assert.equal(status, 400);
    assert.deepEqual(await staging(), stagedBefore);
  });

  it('answers 404 for an unknown repository', async () => {
    const { status } = await server.json(`/api/repos/nobody/none/commits/upload_chunk?hash=abc&chunk_num=0&total_chunks=1&total_size=1&is_compressed=false&filename=a`, { method: 'POST', body: 'x' });
    assert.equal(status, 404);
  });
});

describe('resumable uploads: versions/{hash}/create | chunks | complete', () => {
  let server: TestServer;
  const R = 'big/repo';
  before(async () => {
    server = await startTestServer({ uploads: { idleTtlMs: 60_000 } });
    await createRepo(server, 'big', 'repo');
  });
  after(() => server.stop());

  const put = (hash: string, offset: number, body: Buffer) =>
    server.json(`/api/repos/${R}/versions/${hash}/chunks?offset=${offset}`, { method: 'PUT', body: new Uint8Array(body), headers: { 'content-type': 'application/octet-stream' } });
  const complete = (hash: string, body: unknown = { files: [{ hash, file_name: 'big.bin' }] }) =>
    server.json(`/api/repos/${R}/versions/${hash}/complete`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const status = (hash: string) => server.json(`/api/repos/${R}/versions/${hash}/chunks`);

  it('answers an offset past what the file system can hold with a 4xx, never a 500 (issue 11)', async () => {
    const res = await put(hashBuffer('far away'), 9_000_000_000_000_000, Buffer.from('hello'));
    assert.ok(res.status < 500, `${res.status} ${JSON.stringify(res.body)}`);
    assertEnvelope(res.body, res.status === 200 ? 'success' : 'error');
    assert.equal((await server.json('/api/version')).status, 200);
  });

  it('creates, receives chunks out of order, reports what it holds, resumes after a gap, and completes verified', async () => {
    const data = randomBytes(250_000);
    const hash = hashBuffer(data);
    const created = await server.json(`/api/repos/${R}/versions/${hash}/create`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ hash, file_name: 'big.bin', size: data.length }),
    });
    assert.equal(created.status, 200);
    assert.equal((await put(hash, 200_000, data.subarray(200_000))).status, 200);
    assert.equal((await put(hash, 0, data.subarray(0, 100_000))).status, 200);
    const held = await status(hash);
    assert.deepEqual(held.body.chunks, [{ offset: 0, size: 100_000 }, { offset: 200_000, size: 50_000 }]);
    assert.equal(held.body.received_bytes, 150_000);
    assert.equal(held.body.size, data.length);
    const early = await complete(hash);
    assert.equal(early.status, 400);
    assert.equal(early.body.error.missing_offset, 100_000);
    // The client resumes with only the missing range.
    assert.equal((await put(hash, 100_000, data.subarray(100_000, 200_000))).status, 200);
    const done = await complete(hash);
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.deepEqual(done.body.version, { hash, size: data.length });
    assert.ok(Buffer.concat(await (await server.yoke.blobs.get(hash)).toArray()).equals(data));
    const after = await status(hash);
    assert.equal(after.body.stored, true);
    assert.deepEqual(after.body.chunks, []);
    assert.equal((await complete(hash)).status, 200, 'completing again is idempotent');
  });

  it('an upload whose file an earlier attempt published before failing completes from the stored blob', async () => {
    const data = randomBytes(100_000);
    const hash = hashBuffer(data);
    assert.equal((await put(hash, 0, data)).status, 200);
    // The earlier attempt: its file became the blob, then the request failed before recording it.
    const upload = (await server.yoke.meta.getUpload((await server.yoke.repos.require('big', 'repo')).id, 'version', hash))!;
    await server.yoke.blobs.completeParts(upload.id, await server.yoke.meta.listUploadParts(upload.id), data.length, hash, null);
    const done = await complete(hash);
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.deepEqual(done.body.version, { hash, size: data.length });
    assert.equal((await status(hash)).body.stored, true);
  });

  it('two clients uploading the same file with different chunk sizes at once do not corrupt it', async () => {
    const data = randomBytes(300_000);
    const hash = hashBuffer(data);
    const client = (size: number) => Array.from({ length: Math.ceil(data.length / size) }, (_, i) => put(hash, i * size, data.subarray(i * size, (i + 1) * size)));
    const results = await Promise.all([...client(70_000), ...client(110_000)]);
    for (const r of results) assert.equal(r.status, 200);
    const [a, b] = await Promise.all([complete(hash), complete(hash)]);
    assert.ok([a.status, b.status].includes(200), `${a.status} ${b.status}`);
    for (const r of [a, b]) assert.ok(r.status === 200 || r.status === 409, JSON.stringify(r.body));
    assert.ok(Buffer.concat(await (await server.yoke.blobs.get(hash)).toArray()).equals(data));
  });

  it('refuses bytes that do not hash to the name, a chunk past the declared size, bad offsets, unknown uploads and workspaces', async () => {
    const data = randomBytes(1000);
    const claimed = hashBuffer(randomBytes(5));
    await put(claimed, 0, data);
    const wrong = await complete(claimed);
    assert.equal(wrong.status, 400);
    assert.deepEqual((await status(claimed)).body.chunks, [], 'a refused upload is discarded');
    assert.equal(await server.yoke.blobs.stat(hashBuffer(data)), null);

    const h = hashBuffer(randomBytes(9));
    await server.json(`/api/repos/${R}/versions/${h}/create`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ size: 100 }) });
    assert.equal((await put(h, 50, Buffer.alloc(51))).status, 400);
    assert.equal((await put(h, 101, Buffer.alloc(1))).status, 400);
    assert.equal((await server.json(`/api/repos/${R}/versions/${h}/chunks?offset=-5`, { method: 'PUT', body: 'x' })).status, 400);
    assert.equal((await server.json(`/api/repos/${R}/versions/${h}/chunks`, { method: 'PUT', body: 'x' })).status, 400);
    assert.equal((await server.json(`/api/repos/${R}/versions/not-hex/chunks?offset=0`, { method: 'PUT', body: 'x' })).status, 400);
    assert.equal((await complete(hashBuffer('never uploaded'))).status, 404);
    assert.equal((await complete(h, { files: [{ hash: h, file_name: 'x' }], workspace_id: 'nope' })).status, 404);
    assert.equal((await complete(h, { files: [] })).status, 400);
    assert.equal((await complete(h, null)).status, 400, 'a JSON null body is a bad request, not a crash');
  });

  it('stages a completed large file into a workspace at dst_dir/file_name', async () => {
    const ws = await server.json(`/api/repos/${R}/workspaces`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ workspace_id: 'big-ws', branch_name: 'main' }) });
    assert.equal(ws.status, 200, JSON.stringify(ws.body));
    const data = randomBytes(120_000);
    const hash = hashBuffer(data);
    await put(hash, 0, data.subarray(0, 60_000));
    await put(hash, 60_000, data.subarray(60_000));
    assert.equal((await complete(hash, { files: [{ hash }], workspace_id: 'big-ws' })).status, 400, 'file_name is needed to stage');
    const done = await complete(hash, { files: [{ hash, file_name: 'model.bin', dst_dir: 'models/v1' }], workspace_id: 'big-ws' });
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.equal(done.body.path, 'models/v1/model.bin');
    const status = await server.json(`/api/repos/${R}/workspaces/big-ws/changes`);
    assert.deepEqual(status.body.changes.map((c: { path: string; status: string }) => `${c.status} ${c.path}`), ['added models/v1/model.bin']);
    const commit = await server.json(`/api/repos/${R}/workspaces/big-ws/commit/main`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: 'model', author: 'A', email: 'a@x' }),
    });
    assert.equal(commit.status, 200);
    const file = await server.fetch(`/api/repos/${R}/file/main/models/v1/model.bin`);
    assert.deepEqual(Buffer.from(await file.arrayBuffer()), data);
  });

  it('expires abandoned partial uploads and removes their bytes', async () => {
    const hash = hashBuffer(randomBytes(7));
    await put(hash, 0, randomBytes(100));
    assert.equal((await status(hash)).body.chunks.length, 1);
    const expired = await server.yoke.uploads.expireIdleUploads(Date.now() + 120_000);
    assert.ok(expired >= 1);
    assert.deepEqual((await status(hash)).body.chunks, []);
    assert.deepEqual(await stagedUploads(server), []);
  });
});

describe('chunked uploads: the decompression cap (YOKE_MAX_DECOMPRESSED_BYTES) bounds tarballs too (issue 11)', () => {
  it('refuses a compressed upload that unpacks past the cap with 413 and stores none of it', async () => {
    const server = await startTestServer({ maxDecompressedBytes: 64 * 1024 });
    try {
      await createRepo(server, 'cap', 'repo');
      const big = Buffer.alloc(256 * 1024, 'a'); // compresses to almost nothing
      const archive = await tarGz([{ name: versionPath(hashBuffer(big)), data: big }]);
      assert.ok(archive.length < 64 * 1024);
      const query = new URLSearchParams({ hash: hashBuffer(archive), chunk_num: '0', total_chunks: '1', total_size: String(archive.length), is_compressed: 'true' });
      const res = await server.json(`/api/repos/cap/repo/commits/upload_chunk?${query}`, { method: 'POST', body: new Uint8Array(archive), headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(res.status, 413, JSON.stringify(res.body));
      assertEnvelope(res.body, 'error');
      const held = await server.json('/api/repos/cap/repo/versions/missing', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ hashes: [hashBuffer(big)] }) });
      assert.equal(held.status, 200);
      assert.deepEqual(held.body.hashes ?? held.body.missing_hashes ?? held.body.missing, [hashBuffer(big)]);
    } finally {
      await server.stop();
    }
  });
});


describe('an upload whose assembly a killed process held (issue 11)', () => {
  it('is open again after a restart: resent chunks and completion work', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'yoke-claim-'));
    try {
      let server = await startTestServer({ dataDir });
      await createRepo(server, 'claim', 'repo');
      const data = randomBytes(3000);
      const hash = hashBuffer(data);
      const put = (s: TestServer) =>
        s.json(`/api/repos/claim/repo/versions/${hash}/chunks?offset=0`, { method: 'PUT', body: new Uint8Array(data), headers: { 'content-type': 'application/octet-stream' } });
      assert.equal((await put(server)).status, 200);
      // What a SIGKILL in the middle of `complete` leaves: the upload claimed by a process that is gone.
      const repo = (await server.yoke.meta.getRepo('claim', 'repo'))!;
      const upload = (await server.yoke.meta.getUpload(repo.id, 'version', hash))!;
      const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
      assert.equal(await server.yoke.meta.claimUpload(upload.id, `${hostname()}:${dead}`, () => false), true);
      assert.equal((await put(server)).status, 409, 'while claimed, a resent chunk is refused');
      await server.stop();

      server = await startTestServer({ dataDir });
      try {
        assert.equal((await put(server)).status, 200);
        const done = await server.json(`/api/repos/claim/repo/versions/${hash}/complete`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ files: [{ hash, file_name: 'f.bin' }] }),
        });
        assert.equal(done.status, 200, JSON.stringify(done.body));
        const res = await server.fetch(`/api/repos/claim/repo/versions/${hash}/metadata`);
        assert.equal(res.status, 200);
      } finally {
        await server.stop();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
