import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { createGunzip, createGzip, gunzipSync, gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { assertEnvelope, blobsInS3, createRepo, putFiles, startTestServer, type TestServer } from '../helpers/server.js';

interface RawReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A request over node:http (fetch refuses the QUERY method); `headers` are sent exactly as given. */
function send(server: TestServer, method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<RawReply> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Gunzips and untars a reply body: every entry's name, header and bytes, in order. */
async function untar(gz: Buffer) {
  const extract = tar.extract();
  const out: Array<{ name: string; mode: number | undefined; type: string | null | undefined; data: Buffer }> = [];
  const reading = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      out.push({ name: entry.header.name, mode: entry.header.mode, type: entry.header.type, data: Buffer.concat(chunks) });
    }
  })();
  await Promise.all([pipeline(Readable.from([gz]), createGunzip(), extract), reading]);
  return out;
}

const json = (r: RawReply) => JSON.parse(r.body.toString('utf8'));
const lines = (hashes: string[]) => Buffer.from(hashes.map((h) => `${h}\n`).join(''));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('versions: batch download, metadata, missing, chunks, versions/{rev}/{path}', () => {
  let server: TestServer;
  const A = 'vers/alpha';
  const B = 'vers/beta';
  const content = {
    one: Buffer.from('first file\n'),
    two: Buffer.from('second file, a little longer\n'.repeat(50)),
    bin: randomBytes(100_000),
    empty: Buffer.alloc(0),
    sized: Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251)),
  };
  const hash: Record<string, string> = {};
  let onlyInB: string;
  const batch = (repo: string) => `/api/repos/${repo}/versions/batch-download`;

  before(async () => {
    server = await startTestServer();
    await createRepo(server, 'vers', 'alpha');
    await createRepo(server, 'vers', 'beta');
    const up = await putFiles(server, A, 'main/data', [
      { name: 'one.txt', content: content.one },
      { name: 'two.txt', content: content.two },
      { name: 'bin.dat', content: content.bin },
      { name: 'empty.txt', content: content.empty },
      { name: 'sized.bin', content: content.sized },
    ]);
    assert.equal(up.status, 200, JSON.stringify(up.body));
    for (const f of up.body.files as Array<{ path: string; hash: string }>) hash[f.path.split('/')[1].split('.')[0]] = f.hash;
    const inB = await putFiles(server, B, 'main/only-b.txt', [{ name: 'only-b.txt', content: 'this blob lives only in beta' }]);
    onlyInB = inB.body.file.hash;
  });
  after(() => server.stop());

  it('POST batch-download with a gzip hash list streams a tar.gz, in order, duplicates kept', async () => {
    const asked = [hash.two, hash.one, hash.bin, hash.one, hash.empty];
    const res = await send(server, 'POST', batch(A), gzipSync(lines(asked)), { 'content-type': 'application/gzip' });
    assert.equal(res.status, 200, res.body.toString());
    assert.equal(res.headers['content-type'], 'application/gzip');
    const entries = await untar(res.body);
    assert.deepEqual(entries.map((e) => e.name), asked);
    const expected = [content.two, content.one, content.bin, content.one, content.empty];
    entries.forEach((e, i) => {
      assert.deepEqual(e.data, expected[i]);
      assert.equal(e.mode, 0o644);
      assert.equal(e.type, 'file');
    });
  });

  it('QUERY …/versions accepts a plain list, with or without a Content-Type (as the Oxen client sends it)', async () => {
    const asked = [hash.one, hash.two];
    for (const [body, headers] of [
      [lines(asked), {}],
      [lines(asked), { 'content-type': 'text/plain' }],
      [gzipSync(lines(asked)), {}],
      [Buffer.from(`  ${hash.one}\r\n\n\n${hash.two}  `), { 'content-type': 'application/octet-stream' }],
    ] as Array<[Buffer, Record<string, string>]>) {
      const res = await send(server, 'QUERY', `/api/repos/${A}/versions`, body, headers);
      assert.equal(res.status, 200, res.body.toString());
      const entries = await untar(res.body);
      assert.deepEqual(entries.map((e) => e.name), asked);
      assert.deepEqual(entries.map((e) => e.data), [content.one, content.two]);
    }
    // A JSON Content-Type is just a label here: the body is still a hash list.
    const labelled = await send(server, 'POST', batch(A), lines([hash.one]), { 'content-type': 'application/json' });
    assert.equal(labelled.status, 200);
    assert.deepEqual((await untar(labelled.body)).map((e) => e.data), [content.one]);
  });

  it('names each entry exactly as requested (zero-padded, upper-case)', async () => {
    const padded = hash.one.toUpperCase().padStart(32, '0');
    const spelled = (hash.two.slice(0, 4).toUpperCase() + hash.two.slice(4)).padStart(32, '0');
    const res = await send(server, 'POST', batch(A), gzipSync(lines([padded, spelled])));
    assert.equal(res.status, 200);
    const entries = await untar(res.body);
    assert.deepEqual(entries.map((e) => e.name), [padded, spelled]);
    assert.deepEqual(entries.map((e) => e.data), [content.one, content.two]);
  });

  it('an empty list (no body, blank lines, empty gzip) gives a valid empty tar.gz', async () => {
    for (const body of [undefined, Buffer.from('\n\n  \n'), gzipSync(Buffer.alloc(0))]) {
      const res = await send(server, 'POST', batch(A), body, body ? { 'content-type': 'application/octet-stream' } : {});
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-type'], 'application/gzip');
      assert.ok(gunzipSync(res.body).length >= 1024, 'an empty tar still has its end-of-archive blocks');
      assert.deepEqual(await untar(res.body), []);
    }
  });

  it('any missing hash → 404 version_blobs_missing before a byte of tar, listing each once as sent', async () => {
    const res = await send(server, 'POST', batch(A), gzipSync(lines([hash.one, 'deadbeef', 'DEADBEEF00', 'deadbeef', onlyInB])));
    assert.equal(res.status, 404);
    assert.match(String(res.headers['content-type']), /application\/json/);
    const body = json(res);
    assertEnvelope(body, 'error');
    assert.equal(body.status_message, 'resource_not_found');
    assert.equal(body.error.type, 'version_blobs_missing');
    assert.deepEqual(body.error.missing_hashes, ['deadbeef', 'DEADBEEF00', onlyInB]);
    assert.match(body.error.detail, /missing 3 content blob/);
    // Via QUERY too.
    const q = await send(server, 'QUERY', `/api/repos/${A}/versions`, lines(['abc']));
    assert.equal(q.status, 404);
    assert.deepEqual(json(q).error.missing_hashes, ['abc']);
  });

  it('membership is per repository: a blob stored for another repository is missing here', async () => {
    const here = await send(server, 'POST', batch(A), lines([onlyInB]));
    assert.equal(here.status, 404);
    assert.deepEqual(json(here).error.missing_hashes, [onlyInB]);
    const there = await send(server, 'POST', batch(B), lines([onlyInB]));
    assert.equal(there.status, 200);
    assert.deepEqual((await untar(there.body)).map((e) => e.data.toString()), ['this blob lives only in beta']);
    const unknownRepo = await send(server, 'POST', batch('vers/nope'), lines([hash.one]));
    assert.equal(unknownRepo.status, 404);
  });

  it('a line that is not a hash → 400 naming it; broken gzip → 400', async () => {
    const res = await send(server, 'POST', batch(A), gzipSync(lines([hash.one, 'not-a-hash'])));
    assert.equal(res.status, 400);
    const body = json(res);
    assertEnvelope(body, 'error');
    assert.match(body.error.detail, /Line 2 .*not-a-hash/);
    const tooLong = await send(server, 'QUERY', `/api/repos/${A}/versions`, lines(['f'.repeat(33)]));
    assert.equal(tooLong.status, 400);
    const broken = await send(server, 'POST', batch(A), Buffer.concat([gzipSync(lines([hash.one])).subarray(0, 12)]));
    assert.equal(broken.status, 400);
  });

  it('a gzip bomb hash list → 413, and the server keeps answering', async () => {
    // 200 MB of zeros, compressed while streaming (never held uncompressed).
    const gzip = createGzip({ level: 9 });
    const chunks: Buffer[] = [];
    gzip.on('data', (c: Buffer) => chunks.push(c));
    const zeros = Buffer.alloc(1024 * 1024);
    await pipeline(
      Readable.from((function* () {
        for (let i = 0; i < 200; i++) yield zeros;
      })()),
      gzip,
    );
    const bomb = Buffer.concat(chunks);
    assert.ok(bomb.length < 1024 * 1024);
    const res = await send(server, 'POST', batch(A), bomb, { 'content-type': 'application/gzip' });
    assert.equal(res.status, 413);
    assertEnvelope(json(res), 'error');
    const q = await send(server, 'QUERY', `/api/repos/${A}/versions`, bomb);
    assert.equal(q.status, 413);
    const health = await server.json('/api/health');
    assert.equal(health.status, 200);
  });

  it('a blob recorded for the repository but gone from the store counts as missing', async () => {
    const up = await putFiles(server, A, 'main/doomed.txt', [{ name: 'doomed.txt', content: 'about to vanish' }]);
    const doomed: string = up.body.file.hash;
    assert.equal((await server.json(`/api/repos/${A}/versions/${doomed}/metadata`)).status, 200);
    await server.yoke.blobs.delete(doomed);
    // On S3 a batch trusts the recorded sizes (a HEAD per blob would cost more than small blobs), so such a
    // blob cuts the stream instead (the streaming cases below); the local store is checked before streaming.
    if (!blobsInS3) {
      const res = await send(server, 'POST', batch(A), lines([hash.one, doomed]));
      assert.equal(res.status, 404);
      assert.deepEqual(json(res).error.missing_hashes, [doomed]);
    }
    assert.equal((await server.json(`/api/repos/${A}/versions/${doomed}/metadata`)).status, 404);
  });

  it('GET versions/{hash}/metadata: size for a held blob, 404 unknown, 400 invalid', async () => {
    const { status, body } = await server.json(`/api/repos/${A}/versions/${hash.bin}/metadata`);
    assert.equal(status, 200);
    assertEnvelope(body, 'success');
    assert.deepEqual(body.version, { hash: hash.bin, size: content.bin.length });
    assert.equal(body.exists, true);
    const padded = await server.json(`/api/repos/${A}/versions/${hash.bin.toUpperCase().padStart(32, '0')}/metadata`);
    assert.equal(padded.body.version.hash, hash.bin);
    const unknown = await server.json(`/api/repos/${A}/versions/abcdef/metadata`);
    assert.equal(unknown.status, 404);
    assertEnvelope(unknown.body, 'error');
    assert.equal((await server.json(`/api/repos/${A}/versions/${onlyInB}/metadata`)).status, 404);
    const invalid = await server.json(`/api/repos/${A}/versions/not-hex!/metadata`);
    assert.equal(invalid.status, 400);
    assertEnvelope(invalid.body, 'error');
  });

  it('POST versions/missing answers which hashes the repository lacks', async () => {
    const ask = (payload: unknown) =>
      server.json(`/api/repos/${A}/versions/missing`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
    const { status, body } = await ask({ hashes: [hash.one, 'abc', onlyInB, 'abc', hash.bin.toUpperCase()] });
    assert.equal(status, 200);
    assertEnvelope(body, 'success');
    assert.deepEqual(body.missing, ['abc', onlyInB]);
    assert.deepEqual(body.hashes, body.missing);
    assert.deepEqual((await ask([hash.two])).body.missing, []);
    const bad = await ask({ hashes: [hash.one, 'zz'] });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.detail, /hashes\[1\]/);
    assert.equal((await ask({ nope: true })).status, 400);
    assert.equal((await ask({ hashes: [1] })).status, 400);
    assert.equal((await ask({ hashes: Array.from({ length: 100_001 }, () => 'a') })).status, 413);
  });

  it('GET chunk/{rev}/{path}: ranges, clipping, 416, bad params, 404, directories', async () => {
    const chunk = (query: string, path = 'main/data/sized.bin') => send(server, 'GET', `/api/repos/${A}/chunk/${path}${query}`);
    const all = await chunk('');
    assert.equal(all.status, 200);
    assert.equal(all.headers['content-type'], 'application/octet-stream');
    assert.deepEqual(all.body, content.sized);
    const first = await chunk('?chunk_start=0&chunk_size=100');
    assert.equal(first.headers['content-length'], '100');
    assert.deepEqual(first.body, content.sized.subarray(0, 100));
    const middle = await chunk('?chunk_start=300&chunk_size=200');
    assert.deepEqual(middle.body, content.sized.subarray(300, 500));
    const clipped = await chunk('?chunk_start=900&chunk_size=500');
    assert.equal(clipped.status, 200);
    assert.equal(clipped.headers['content-length'], '100');
    assert.deepEqual(clipped.body, content.sized.subarray(900));
    const past = await chunk('?chunk_start=1000&chunk_size=10');
    assert.equal(past.status, 416);
    assertEnvelope(json(past), 'error');
    for (const bad of ['?chunk_start=-1', '?chunk_size=abc', '?chunk_size=1.5', '?chunk_start=1e3', '?chunk_size=0']) {
      const res = await chunk(bad);
      assert.equal(res.status, 400, bad);
      assertEnvelope(json(res), 'error');
    }
    const empty = await chunk('', 'main/data/empty.txt');
    assert.equal(empty.status, 200);
    assert.equal(empty.body.length, 0);
    assert.equal((await chunk('', 'main/data/nope.bin')).status, 404);
    assert.equal((await chunk('', 'nobranch/data/sized.bin')).status, 404);
    const dir = await chunk('', 'main/data');
    assert.equal(dir.status, 400);
    assert.equal(json(dir).error.type, 'not_a_file');
  });

  it('GET versions/{rev}/{path} downloads a file like GET file/…', async () => {
    const res = await server.fetch(`/api/repos/${A}/versions/main/data/bin.dat`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-length'), String(content.bin.length));
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), content.bin);
    const ranged = await server.fetch(`/api/repos/${A}/versions/main/data/bin.dat`, { headers: { range: 'bytes=10-19' } });
    assert.equal(ranged.status, 206);
    assert.deepEqual(Buffer.from(await ranged.arrayBuffer()), content.bin.subarray(10, 20));
    const head = await server.fetch(`/api/repos/${A}/versions/main/data/one.txt`, { method: 'HEAD' });
    assert.equal(head.headers.get('content-length'), String(content.one.length));
    const commit = res.headers.get('oxen-revision-id');
    const byCommit = await server.fetch(`/api/repos/${A}/versions/${commit}/data/one.txt`);
    assert.deepEqual(Buffer.from(await byCommit.arrayBuffer()), content.one);
    assert.equal((await server.json(`/api/repos/${A}/versions/main/data/nope`)).status, 404);
    // A file named `metadata` is still reachable through the alias.
    await putFiles(server, A, 'main/metadata', [{ name: 'metadata', content: 'meta as data' }]);
    const meta = await server.fetch(`/api/repos/${A}/versions/main/metadata`);
    assert.equal(meta.status, 200);
    assert.equal(await meta.text(), 'meta as data');
  });

  it('streams ~50 MB across several blobs intact; incompressible data is stored, text compressed', async () => {
    const big = [randomBytes(16 * 1024 * 1024), randomBytes(16 * 1024 * 1024), randomBytes(12 * 1024 * 1024)];
    const text = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(150_000)); // ~6.6 MB
    const up = await putFiles(server, A, 'main/large', [
      ...big.map((b, i) => ({ name: `r${i}.bin`, content: b })),
      { name: 'fox.txt', content: text },
    ]);
    assert.equal(up.status, 200);
    const hashes = (up.body.files as Array<{ hash: string }>).map((f) => f.hash);
    const expected = [...big, text];
    const res = await send(server, 'POST', batch(A), gzipSync(lines(hashes)));
    assert.equal(res.status, 200);
    const entries = await untar(res.body);
    assert.deepEqual(entries.map((e) => e.name), hashes);
    entries.forEach((e, i) => assert.equal(sha(e.data), sha(expected[i]), e.name));
    const raw = expected.reduce((n, b) => n + b.length, 0);
    // Random leading blobs → level 0: the body is the tar plus a little framing, never inflated much.
    assert.ok(res.body.length < raw * 1.01 + 1024 * 1024, `gzip body ${res.body.length} for ${raw} raw bytes`);
    // Text first → level 1: the text shrinks a lot.
    const textOnly = await send(server, 'POST', batch(A), lines([hashes[3]]));
    assert.ok(textOnly.body.length < text.length / 10, `text compressed to ${textOnly.body.length}`);
    assert.deepEqual((await untar(textOnly.body))[0].data, text);
  });

  it('many small, empty and large blobs mixed: every entry intact, in order, duplicates kept (read-ahead window)', async () => {
    // Sizes around the tar block size and both sides of the small/streamed boundary (256 KiB).
    const sizes = [1, 511, 512, 513, 4096, 40_000, 256 * 1024, 256 * 1024 + 1, 700_000];
    const files = Array.from({ length: 120 }, (_, i) => ({ name: `m${i}.bin`, content: randomBytes(sizes[i % sizes.length]) }));
    const up = await putFiles(server, A, 'main/mixed', files);
    assert.equal(up.status, 200, JSON.stringify(up.body));
    const byName = new Map((up.body.files as Array<{ path: string; hash: string }>).map((f) => [f.path.split('/').pop()!, f.hash]));
    const pick = (i: number) => ({ hash: byName.get(`m${i}.bin`)!, data: files[i].content });
    const asked = [
      ...Array.from({ length: 120 }, (_, i) => pick(i)),
      { hash: hash.empty, data: content.empty },
      ...Array.from({ length: 80 }, (_, i) => pick((i * 7) % 120)), // duplicates, far apart and out of order
      { hash: hash.empty, data: content.empty },
      pick(3),
    ];
    const res = await send(server, 'POST', batch(A), gzipSync(lines(asked.map((a) => a.hash))));
    assert.equal(res.status, 200);
    const entries = await untar(res.body);
    assert.deepEqual(entries.map((e) => e.name), asked.map((a) => a.hash));
    entries.forEach((e, i) => {
      assert.equal(e.data.length, asked[i].data.length, e.name);
      assert.ok(e.data.equals(asked[i].data), e.name);
      assert.equal(e.mode, 0o644);
    });
    // Byte-for-byte what tar-stream writes for the same entries.
    const pack = tar.pack();
    const reference = (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of pack) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    })();
    for (const a of asked) pack.entry({ name: a.hash, size: a.data.length, mode: 0o644, type: 'file', mtime: new Date(0), uid: 0, gid: 0 }, a.data);
    pack.finalize();
    assert.ok(gunzipSync(res.body).equals(await reference));
  });

  /**
   * Asks for `list`, holds the reply as soon as its headers arrive (backpressure keeps the server
   * inside the leading large entry), deletes the blob `doomed`, then reads on.
   */
  const downloadDeleting = (list: string[], doomed: string) => {
    const url = new URL(server.url);
    return new Promise<{ status: number; bytes: Buffer; failed: boolean }>((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: url.port, method: 'QUERY', path: `/api/repos/${A}/versions`, headers: {} }, (res) => {
        res.pause();
        const chunks: Buffer[] = [];
        let failed = false;
        server.yoke.blobs.delete(doomed).then(() => {
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('aborted', () => (failed = true));
          res.on('error', () => (failed = true));
          res.on('close', () => resolve({ status: res.statusCode ?? 0, bytes: Buffer.concat(chunks), failed: failed || !res.complete }));
          res.resume();
        }, reject);
      });
      req.on('error', () => {});
      req.end(lines(list));
    });
  };

  it('a blob that fails while streaming truncates the body; the server keeps answering', async () => {
    const first = randomBytes(24 * 1024 * 1024);
    const up = await putFiles(server, A, 'main/fragile', [
      { name: 'first.bin', content: first },
      { name: 'second.bin', content: randomBytes(1024 * 1024) },
    ]);
    const [h1, h2] = (up.body.files as Array<{ hash: string }>).map((f) => f.hash);
    const outcome = await downloadDeleting([h1, h2], h2);
    assert.equal(outcome.status, 200);
    assert.ok(outcome.failed, 'the response must not end cleanly');
    await assert.rejects(untar(outcome.bytes));
    assert.equal((await server.json('/api/health')).status, 200);
  });

  it('a small blob that fails when its turn comes (past the read-ahead window) truncates the body too', async () => {
    const up = await putFiles(server, A, 'main/fragile-small', [
      { name: 'lead.bin', content: randomBytes(24 * 1024 * 1024) },
      { name: 'filler.txt', content: 'filler' },
      { name: 'late.txt', content: 'deleted before its turn' },
    ]);
    const [lead, filler, late] = (up.body.files as Array<{ hash: string }>).map((f) => f.hash);
    const outcome = await downloadDeleting([lead, ...Array.from({ length: 300 }, () => filler), late], late);
    assert.equal(outcome.status, 200);
    assert.ok(outcome.failed, 'the response must not end cleanly');
    await assert.rejects(untar(outcome.bytes));
    assert.equal((await server.json('/api/health')).status, 200);
  });
});
