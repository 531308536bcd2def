import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createGzip, gzipSync } from 'node:zlib';
import { serverConfig } from '../../src/config.js';
import { hashBuffer } from '../../src/core/hash.js';
import { startServer, type RunningServer } from '../../src/server/main.js';
import { assertEnvelope, blobsInS3, blobTempFiles, createRepo, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * `POST …/versions` (batch upload by content hash). Bodies are built by hand so each part carries
 * its own Content-Type and filename exactly as an Oxen client sends them.
 */

interface Part {
  field?: string;
  /** The part's filename (normally the content hash); null sends no filename at all. */
  filename?: string | null;
  contentType?: string;
  data: Buffer;
}

const BOUNDARY = '----yoke-versions-boundary';

function multipart(parts: Part[], { close = true } = {}): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const filename = p.filename === null ? '' : `; filename="${p.filename ?? hashBuffer(p.data)}"`;
    const headers = [`--${BOUNDARY}`, `Content-Disposition: form-data; name="${p.field ?? 'file[]'}"${filename}`];
    if (p.contentType) headers.push(`Content-Type: ${p.contentType}`);
    chunks.push(Buffer.from(headers.join('\r\n') + '\r\n\r\n'), p.data, Buffer.from('\r\n'));
  }
  if (close) chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return Buffer.concat(chunks);
}

const plain = (data: Buffer | string, extra: Partial<Part> = {}): Part => ({ data: Buffer.from(data), contentType: 'application/octet-stream', ...extra });
const gz = (data: Buffer | string, extra: Partial<Part> = {}): Part => ({
  data: gzipSync(Buffer.from(data)),
  filename: hashBuffer(Buffer.from(data)),
  contentType: 'application/gzip',
  ...extra,
});

/** Sends a request over node:http, so the body goes out byte for byte. */
function send(baseUrl: string, method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
        } catch {
          reject(new Error(`Expected JSON (${res.statusCode}), got: ${text.slice(0, 200)}`));
        }
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const upload = (baseUrl: string, repo: string, body: Buffer) =>
  send(baseUrl, 'POST', `/api/repos/${repo}/versions`, body, { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` });

async function readBlob(server: RunningServer, hash: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await server.yoke.blobs.get(hash)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function repoId(server: RunningServer, namespace: string, name: string): Promise<string> {
  const repo = await server.yoke.meta.getRepo(namespace, name);
  assert.ok(repo, `${namespace}/${name} exists`);
  return repo.id;
}

async function recorded(server: RunningServer, repo: string, hashes: string[]): Promise<Map<string, number>> {
  const [ns, name] = repo.split('/');
  return server.yoke.meta.findRepoBlobs(await repoId(server, ns, name), hashes);
}

const tmpFiles = blobTempFiles;

/** Where LocalBlobStore keeps a blob (docs/ARCHITECTURE.md §3). */
function objectPath(dataDir: string, hash: string): string {
  const padded = hash.padStart(32, '0');
  return join(dataDir, 'blobs/objects', padded.slice(0, 2), padded.slice(2));
}

/** Content whose hash has a leading zero nibble, so it can be sent zero-padded. */
function shortHashContent(): Buffer {
  for (let i = 0; ; i++) {
    const data = Buffer.from(`short hash ${i}`);
    if (hashBuffer(data).length < 32) return data;
  }
}

/** 1 GiB of zeros, gzip'd at level 9 while streaming (≈1 MB); built once per run. */
let bomb: Promise<Buffer> | undefined;
function gzipBomb(): Promise<Buffer> {
  bomb ??= (async () => {
    const zeros = Buffer.alloc(1 << 20);
    const chunks: Buffer[] = [];
    const gzip = createGzip({ level: 9 });
    Readable.from((function* () {
      for (let i = 0; i < 1024; i++) yield zeros;
    })()).pipe(gzip);
    for await (const c of gzip) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  })();
  return bomb;
}

describe('versions: batch upload', () => {
  let server: TestServer;
  const A = 'vers/repo-a';
  const B = 'vers/repo-b';

  before(async () => {
    server = await startTestServer();
    await createRepo(server, 'vers', 'repo-a');
    await createRepo(server, 'vers', 'repo-b');
  });
  after(() => server.stop());

  it('stores plain and gzip parts (file and file[]), accepting zero-padded and upper-case hashes', async () => {
    const short = shortHashContent();
    const shortHash = hashBuffer(short);
    const bigText = Buffer.from('a highly compressible line of text\n'.repeat(60_000)); // 2 MiB, gzips to a few KiB
    const bigRandom = randomBytes(1536 * 1024); // streamed: more than 512 KiB on the wire
    const contents = {
      plainFile: Buffer.from('plain bytes in a `file` part'),
      gzipArray: Buffer.from('gzip bytes in a `file[]` part'),
      xgzip: Buffer.from('sent as application/x-gzip'),
      upper: Buffer.from('upper-case hash'),
      empty: Buffer.alloc(0),
    };
    const parts: Part[] = [
      plain(contents.plainFile, { field: 'file' }),
      gz(contents.gzipArray, { field: 'file[]' }),
      gz(contents.xgzip, { contentType: 'application/x-gzip' }),
      plain(contents.upper, { filename: hashBuffer(contents.upper).toUpperCase() }),
      gz(short, { filename: shortHash.padStart(32, '0') }),
      plain(contents.empty),
      gz(bigText),
      gz(bigRandom, { field: 'file' }),
      plain(bigRandom.subarray(0, 1024 * 1024)),
    ];
    const res = await upload(server.url, A, multipart(parts));
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assertEnvelope(res.body, 'success');
    assert.equal(res.body.status_message, 'resource_created');
    assert.deepEqual(res.body.err_files, []);

    const expected = [...Object.values(contents), short, bigText, bigRandom, bigRandom.subarray(0, 1024 * 1024)];
    assert.deepEqual(res.body.files, [
      contents.plainFile, contents.gzipArray, contents.xgzip, contents.upper, short, contents.empty, bigText, bigRandom, bigRandom.subarray(0, 1024 * 1024),
    ].map((d) => ({ hash: hashBuffer(d), size: d.length })));
    const held = await recorded(server, A, expected.map((d) => hashBuffer(d)));
    for (const data of expected) {
      const hash = hashBuffer(data);
      assert.equal(held.get(hash), data.length, `recorded ${hash}`);
      assert.ok((await readBlob(server, hash)).equals(data), `stored bytes of ${hash}`);
    }
    assert.deepEqual(await tmpFiles(server.dataDir), []);
  });

  it('re-uploading existing blobs skips them (never rewritten) but still answers success and records them', async () => {
    const small = Buffer.from('uploaded twice');
    const large = randomBytes(800 * 1024); // streamed, plain and gzip'd
    const expands = Buffer.from('expands beyond the in-memory bound\n'.repeat(30_000)); // buffered gzip, 1 MiB decompressed
    const all = [small, large, expands];
    const first = await upload(server.url, A, multipart([gz(small), plain(large), gz(expands)]));
    assert.deepEqual(first.body.err_files, []);
    // The local store's files show a rewrite by their inode; S3 objects have nothing like it.
    const inodes = blobsInS3 ? [] : await Promise.all(all.map((d) => stat(objectPath(server.dataDir, hashBuffer(d))).then((s) => s.ino)));
    const again = await upload(server.url, B, multipart([gz(small), plain(large), plain(small), gz(expands), gz(large)]));
    assert.equal(again.status, 200);
    assert.deepEqual(again.body.err_files, []);
    assert.deepEqual(again.body.files, [small, large, small, expands, large].map((d) => ({ hash: hashBuffer(d), size: d.length })));
    assert.equal((await recorded(server, B, all.map((d) => hashBuffer(d)))).size, 3);
    for (const [i, d] of all.entries()) {
      if (!blobsInS3) assert.equal((await stat(objectPath(server.dataDir, hashBuffer(d)))).ino, inodes[i], 'not rewritten');
      assert.ok((await readBlob(server, hashBuffer(d))).equals(d));
    }
    assert.deepEqual(await tmpFiles(server.dataDir), []);
  });

  it('verifies existing blobs too: wrong bytes under a stored hash are refused and not recorded', async () => {
    const small = Buffer.from('already stored, small');
    const large = randomBytes(700 * 1024);
    await upload(server.url, A, multipart([plain(small), plain(large)]));
    const [ns, name] = ['vers', 'liar'];
    await createRepo(server, ns, name);
    const res = await upload(server.url, `${ns}/${name}`, multipart([
      plain('not the stored bytes', { filename: hashBuffer(small) }),
      gz('not the stored bytes either', { filename: hashBuffer(small) }),
      plain(randomBytes(700 * 1024), { filename: hashBuffer(large) }),
    ]));
    assert.equal(res.status, 200);
    assert.equal(res.body.err_files.length, 3);
    assert.deepEqual((await recorded(server, `${ns}/${name}`, [hashBuffer(small), hashBuffer(large)])).size, 0);
    assert.ok((await readBlob(server, hashBuffer(large))).equals(large), 'the stored blob is untouched');
  });

  it('a part whose bytes do not match its hash fails alone and stores nothing', async () => {
    const good = Buffer.from('good part next to a bad one');
    const bad = Buffer.from('these bytes are not what the filename says');
    const badLarge = randomBytes(600 * 1024);
    const claimed = hashBuffer('something else entirely');
    const claimedLarge = hashBuffer('something else, large');
    const res = await upload(server.url, A, multipart([
      plain(bad, { filename: claimed }),
      gz(good),
      gz(bad, { filename: claimed }),
      plain(badLarge, { filename: claimedLarge }),
      plain(good, { field: 'file' }),
    ]));
    assert.equal(res.status, 200);
    assertEnvelope(res.body, 'success');
    assert.equal(res.body.err_files.length, 3);
    for (const e of res.body.err_files) {
      assert.ok([claimed, claimedLarge].includes(e.hash));
      assert.equal(e.path, null);
      assert.match(e.error, /hash mismatch/i);
    }
    assert.deepEqual(res.body.files, [{ hash: hashBuffer(good), size: good.length }, { hash: hashBuffer(good), size: good.length }]);
    for (const hash of [claimed, claimedLarge, hashBuffer(bad), hashBuffer(badLarge)]) {
      assert.equal(await server.yoke.blobs.stat(hash), null, `${hash} absent`);
    }
    assert.deepEqual([...(await recorded(server, A, [claimed, claimedLarge, hashBuffer(bad), hashBuffer(good)])).keys()], [hashBuffer(good)]);
    assert.deepEqual(await tmpFiles(server.dataDir), []);
  });

  it('a part labelled gzip that is not gzip fails alone; the following parts still land', async () => {
    const after1 = Buffer.from('after the bad gzip part');
    const after2 = randomBytes(300 * 1024);
    const truncatedGzip = gzipSync(Buffer.from('cut short '.repeat(1000))).subarray(0, 40);
    const res = await upload(server.url, A, multipart([
      { data: Buffer.from('plain text, not gzip'), filename: hashBuffer('plain text, not gzip'), contentType: 'application/gzip' },
      { data: truncatedGzip, filename: hashBuffer('cut short '.repeat(1000)), contentType: 'application/gzip' },
      { data: randomBytes(900 * 1024), filename: hashBuffer('x'), contentType: 'application/gzip' }, // streamed
      { data: Buffer.alloc(0), filename: hashBuffer(''), contentType: 'application/gzip' },
      plain(after1),
      gz(after2),
    ]));
    assert.equal(res.status, 200);
    assert.equal(res.body.err_files.length, 4);
    for (const e of res.body.err_files) assert.match(e.error, /not gzip/);
    assert.deepEqual(res.body.files.map((f: { hash: string }) => f.hash), [hashBuffer(after1), hashBuffer(after2)]);
    assert.equal(await server.yoke.blobs.stat(hashBuffer('plain text, not gzip')), null);
    assert.deepEqual(await tmpFiles(server.dataDir), []);
  });

  it('a missing or invalid hash fails that part; other fields are ignored', async () => {
    const ok = Buffer.from('valid next to invalid names');
    const res = await upload(server.url, A, multipart([
      plain('no filename', { filename: null }),
      plain('empty filename', { filename: '' }),
      plain('not hex', { filename: 'images/cow.jpg' }),
      plain('too long', { filename: 'a'.repeat(33) }),
      plain('ignored field', { field: 'other', filename: 'whatever.bin' }),
      { field: 'comment', filename: null, data: Buffer.from('a text field') },
      plain(ok),
    ]));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.err_files.map((e: { hash: string }) => e.hash), ['', '', 'images/cow.jpg', 'a'.repeat(33)]);
    assert.match(res.body.err_files[0].error, /missing hash/i);
    assert.match(res.body.err_files[2].error, /invalid hash/i);
    assert.deepEqual(res.body.files, [{ hash: hashBuffer(ok), size: ok.length }]);
    assert.equal(await server.yoke.blobs.stat(hashBuffer('ignored field')), null);
  });

  it('a truncated multipart body answers 400 JSON, leaves no temp files and records nothing incomplete', async () => {
    const done = Buffer.from('complete before the cut');
    const big = randomBytes(2 * 1024 * 1024);
    const full = multipart([plain(done), plain(big)], { close: false });
    const cut = full.subarray(0, full.length - 1024 * 1024);
    const res = await upload(server.url, B, cut);
    assert.equal(res.status, 400);
    assertEnvelope(res.body, 'error');
    assert.deepEqual(await tmpFiles(server.dataDir), []);
    assert.equal(await server.yoke.blobs.stat(hashBuffer(big)), null);
    assert.equal((await recorded(server, B, [hashBuffer(big)])).size, 0);

    // Cut inside a gzip part's bytes too.
    const gzCut = multipart([gz(randomBytes(1024 * 1024))], { close: false });
    const res2 = await upload(server.url, B, gzCut.subarray(0, 700 * 1024));
    assert.equal(res2.status, 400);
    assert.deepEqual(await tmpFiles(server.dataDir), []);
  });

  it('a client that disconnects mid-body leaves no temp files, and the server keeps serving', { skip: blobsInS3 && 'watches the local blob store\'s temp files' }, async () => {
    const body = multipart([plain(randomBytes(4 * 1024 * 1024))]);
    const url = new URL(server.url);
    let sawTemp = false;
    await new Promise<void>((resolve) => {
      const req = httpRequest({
        host: url.hostname, port: url.port, method: 'POST', path: `/api/repos/${A}/versions`,
        headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': String(body.length) },
      });
      req.on('error', () => resolve());
      req.on('close', () => resolve());
      req.write(body.subarray(0, 2 * 1024 * 1024), async () => {
        // Disconnect while the part is being streamed into a temp file.
        for (let i = 0; i < 200 && (await tmpFiles(server.dataDir)).length === 0; i++) await new Promise((r) => setTimeout(r, 10));
        sawTemp = (await tmpFiles(server.dataDir)).length > 0;
        req.destroy();
      });
    });
    assert.ok(sawTemp, 'a temp file was being written when the client left');
    for (let i = 0; i < 100 && (await tmpFiles(server.dataDir)).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(await tmpFiles(server.dataDir), []);
    assert.equal((await server.json('/api/health')).status, 200);
  });

  it('answers 404 for an unknown repository and 400 for a body that is not multipart', async () => {
    const missing = await upload(server.url, 'vers/nope', multipart([plain('x')]));
    assert.equal(missing.status, 404);
    assertEnvelope(missing.body, 'error');
    const json = await send(server.url, 'POST', `/api/repos/${A}/versions`, Buffer.from('{}'), { 'content-type': 'application/json' });
    assert.equal(json.status, 400);
    assertEnvelope(json.body, 'error');
    const text = await send(server.url, 'POST', `/api/repos/${A}/versions`, Buffer.from('hi'), { 'content-type': 'text/plain' });
    assert.equal(text.status, 400);
    const noBoundary = await send(server.url, 'POST', `/api/repos/${A}/versions`, Buffer.from('x'), { 'content-type': 'multipart/form-data' });
    assert.equal(noBoundary.status, 400);
    assertEnvelope(noBoundary.body, 'error');
  });

  // Through radosgw each small blob is a round trip or two (bench/RESULTS.md): fewer parts there, the same parser.
  const manyParts = blobsInS3 ? 500 : 2000;
  it(`${manyParts.toLocaleString('en')} small parts in one request all land`, async () => {
    const datas = Array.from({ length: manyParts }, (_, i) => Buffer.from(`small part number ${i} ${'x'.repeat(i % 97)}`));
    const parts = datas.map((d, i) => (i % 2 === 0 ? gz(d, { field: i % 4 === 0 ? 'file' : 'file[]' }) : plain(d)));
    const res = await upload(server.url, B, multipart(parts));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.err_files, []);
    assert.equal(res.body.files.length, manyParts);
    const held = await recorded(server, B, datas.map((d) => hashBuffer(d)));
    assert.equal(held.size, manyParts);
    for (let i = 0; i < manyParts; i += 97) assert.ok((await readBlob(server, hashBuffer(datas[i]))).equals(datas[i]), `part ${i}`);
  });

  it('blobs uploaded to one repository are recorded for it and not for another', async () => {
    await createRepo(server, 'vers', 'only-a');
    await createRepo(server, 'vers', 'only-b');
    const data = Buffer.from('belongs to only-a');
    const res = await upload(server.url, 'vers/only-a', multipart([gz(data)]));
    assert.deepEqual(res.body.err_files, []);
    assert.equal((await recorded(server, 'vers/only-a', [hashBuffer(data)])).get(hashBuffer(data)), data.length);
    assert.equal((await recorded(server, 'vers/only-b', [hashBuffer(data)])).size, 0);
  });
});

describe('versions: limits', () => {
  it('a gzip bomb fails alone at the decompressed-size cap; memory stays flat and the server healthy', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'yoke-bomb-'));
    const cap = 16 * 1024 * 1024;
    const config = serverConfig({ host: '127.0.0.1', port: 0, dataDir, logLevel: 'silent' }, { YOKE_MAX_DECOMPRESSED_BYTES: String(cap) });
    assert.equal(config.maxDecompressedBytes, cap);
    const server = await startServer(config);
    try {
      const created = await send(server.url, 'POST', '/api/repos', Buffer.from(JSON.stringify({ namespace: 'bomb', name: 'repo' })), { 'content-type': 'application/json' });
      assert.equal(created.status, 200);
      const big = await gzipBomb();
      assert.ok(big.length < 2 * 1024 * 1024, `bomb is ${big.length} bytes`);
      const small = gzipSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 }); // buffered path: ~64 KB on the wire
      const legit = Buffer.from('legit part beside the bombs');
      const rssBefore = process.memoryUsage().rss;
      const res = await upload(server.url, 'bomb/repo', multipart([
        { data: big, filename: hashBuffer('claimed'), contentType: 'application/gzip' },
        { data: small, filename: hashBuffer('claimed too'), contentType: 'application/gzip' },
        gz(legit),
      ]));
      const rssGrowth = process.memoryUsage().rss - rssBefore;
      assert.equal(res.status, 200);
      assert.equal(res.body.err_files.length, 2);
      for (const e of res.body.err_files) assert.match(e.error, /exceeds the limit/);
      assert.deepEqual(res.body.files, [{ hash: hashBuffer(legit), size: legit.length }]);
      assert.ok(rssGrowth < 256 * 1024 * 1024, `rss grew by ${rssGrowth >> 20} MiB`);
      assert.equal((await fetch(server.url + '/api/health')).status, 200);
      assert.deepEqual(await readdir(join(dataDir, 'blobs/tmp')), []);
      const stored = await readdir(join(dataDir, 'blobs/objects'), { recursive: true, withFileTypes: true });
      assert.equal(stored.filter((e) => e.isFile()).length, 1);
    } finally {
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('a part over the server file size limit fails alone', async () => {
    const server = await startTestServer({ maxFileBytes: 100 * 1024 });
    try {
      await createRepo(server, 'cap', 'repo');
      const ok = Buffer.from('small enough');
      const res = await upload(server.url, 'cap/repo', multipart([plain(randomBytes(200 * 1024)), plain(randomBytes(3 * 1024 * 1024)), plain(ok)]));
      assert.equal(res.status, 200);
      assert.equal(res.body.err_files.length, 2);
      for (const e of res.body.err_files) assert.match(e.error, /size limit/);
      assert.deepEqual(res.body.files, [{ hash: hashBuffer(ok), size: ok.length }]);
      assert.deepEqual(await tmpFiles(server.dataDir), []);
    } finally {
      await server.stop();
    }
  });
});
