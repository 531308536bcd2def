import { strict as assert } from 'node:assert';
import { createRequire } from 'node:module';
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { hashBuffer } from '../../src/core/hash.js';
import { MAX_PART_HEADER_BYTES, MAX_PART_HEADERS, multipartBoundary } from '../../src/server/multipart-headers.js';
import { type MultipartLimits, MultipartReader } from '../../src/server/multipart-reader.js';
import { MULTIPART_LIMITS } from '../../src/server/multipart.js';
import { assertEnvelope, blobTempFiles, createRepo, putFiles, startTestServer, storedBlobHashes, type TestServer } from '../helpers/server.js';

/**
 * Multipart bodies busboy mishandles silently: part headers over its 80 KiB cut (truncated, or the
 * part skipped), skipped parts whose data and end arrive in one write (the parser stalls: the
 * request used to hang, never answered), too many fields, bodies cut off mid-part (issue 11).
 */

const BOUNDARY = 'LimitsBoundary7MA4YWxkTrZu0gW';
/** Any request here that takes longer than this has hung. */
const TIMEOUT_MS = 10_000;

interface Reply {
  status: number;
  body: any;
  headers: Record<string, string | string[] | undefined>;
}

/** Sends a multipart body; rejects (fails the test fast) when no reply comes within TIMEOUT_MS. */
function send(server: TestServer, method: string, path: string, body?: Buffer, agent?: Agent): Promise<Reply> {
  const url = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname, port: url.port, method, path, agent,
        headers: body ? { 'content-type': `multipart/form-data; boundary=${BOUNDARY}`, 'content-length': String(body.length) } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: any = text;
          try {
            parsed = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers });
        });
      },
    );
    req.setTimeout(TIMEOUT_MS, () => {
      req.destroy();
      reject(new Error(`${method} ${path}: no reply within ${TIMEOUT_MS} ms (the request hung)`));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** One part: its raw header lines and its data. */
function part(headers: string[], data: Buffer | string): Buffer {
  return Buffer.concat([Buffer.from(`--${BOUNDARY}\r\n${headers.join('\r\n')}\r\n\r\n`, 'latin1'), Buffer.from(data), Buffer.from('\r\n')]);
}
const close = Buffer.from(`--${BOUNDARY}--\r\n`);
const form = (...parts: Buffer[]) => Buffer.concat([...parts, close]);
const disposition = (name: string, filename?: string) => `Content-Disposition: form-data; name="${name}"${filename === undefined ? '' : `; filename="${filename}"`}`;
const field = (name: string, value: string) => part([disposition(name)], value);

const storedBlobs = (server: TestServer) => storedBlobHashes(server);
const tempFiles = (server: TestServer) => blobTempFiles(server.dataDir);

async function assertHealthy(server: TestServer) {
  assert.equal((await server.json('/api/version')).status, 200);
}

describe('multipart part headers and parser limits answer a 4xx, never hang (issue 11)', () => {
  let server: TestServer;
  const REPO = 'limits/repo';
  const WS = 'ws-limits';
  before(async () => {
    server = await startTestServer();
    await createRepo(server, 'limits', 'repo');
    assert.equal((await putFiles(server, REPO, 'main', [{ name: 'seed.txt', content: 'seed' }])).status, 200);
    const ws = await server.json(`/api/repos/${REPO}/workspaces`, {
      method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ workspace_id: WS, branch_name: 'main' }),
    });
    assert.equal(ws.status, 200, JSON.stringify(ws.body));
  });
  after(() => server.stop());

  const data = Buffer.alloc(20_000, 'd');
  /** Every route that reads a multipart body, with the parts it needs besides the file part. */
  const routes: Array<{ name: string; method: string; path: string; fields: () => Buffer[] }> = [
    { name: 'POST …/versions', method: 'POST', path: `/api/repos/${REPO}/versions`, fields: () => [] },
    { name: 'PUT …/file/{branch}/{dir}', method: 'PUT', path: `/api/repos/${REPO}/file/main/dir`, fields: () => [field('name', 'Ada'), field('email', 'ada@example.com')] },
    { name: 'POST /api/repos', method: 'POST', path: '/api/repos', fields: () => [field('new_repo', JSON.stringify({ namespace: 'limits', name: `new-${Math.random().toString(36).slice(2)}` }))] },
    { name: 'POST …/workspaces/{id}/files/{dir}', method: 'POST', path: `/api/repos/${REPO}/workspaces/${WS}/files/dir`, fields: () => [] },
  ];

  /** The body is refused with `status` and a message matching `detail`; nothing is stored; the server stays up. */
  async function assertRefused(route: (typeof routes)[number], body: Buffer, status: number, detail: RegExp) {
    const blobsBefore = await storedBlobs(server);
    const reply = await send(server, route.method, route.path, body);
    assert.equal(reply.status, status, `${route.name}: ${JSON.stringify(reply.body).slice(0, 300)}`);
    assertEnvelope(reply.body, 'error');
    assert.match(reply.body.status_description, detail);
    assert.deepEqual(await storedBlobs(server), blobsBefore, `${route.name} stored a blob`);
    assert.deepEqual(await tempFiles(server), []);
    await assertHealthy(server);
  }

  for (const route of routes) {
    describe(route.name, () => {
      it('a 100 KB filename in Content-Disposition: 413, headers too large', async () => {
        const body = form(...route.fields(), part([disposition('file', 'f'.repeat(100_000)), 'Content-Type: application/octet-stream'], data));
        await assertRefused(route, body, 413, /headers are too large/);
      });

      it('a huge header before Content-Disposition (busboy would cut it off): 413', async () => {
        const body = form(...route.fields(), part([`X-Big: ${'x'.repeat(100_000)}`, disposition('file', 'a.txt')], data));
        await assertRefused(route, body, 413, /headers are too large/);
      });

      it('thousands of header lines: 413, whether over the size or only over the count', async () => {
        const lines = Array.from({ length: 5000 }, (_, i) => `X-H${i}: ${'y'.repeat(20)}`);
        await assertRefused(route, form(...route.fields(), part([...lines, disposition('file', 'a.txt')], data)), 413, /headers are too large/);
        const fewer = lines.slice(0, MAX_PART_HEADERS + 1);
        await assertRefused(route, form(...route.fields(), part([disposition('file', 'a.txt'), ...fewer], data)), 413, /too many headers/);
      });

      it('a part busboy would skip (no Content-Disposition, or not form-data) with 20 KB of data: 400', async () => {
        await assertRefused(route, form(...route.fields(), part(['Content-Type: text/plain'], data)), 400, /without a Content-Disposition/);
        await assertRefused(route, form(...route.fields(), part(['Content-Disposition: attachment; filename="a.txt"'], data)), 400, /not form-data/);
      });

      it('thousands of tiny fields: 413 at the fields limit', async () => {
        const many = Array.from({ length: 5000 }, (_, i) => field(`f${i}`, 'x'));
        await assertRefused(route, form(...route.fields(), ...many), 413, new RegExp(`Too many fields.*${MULTIPART_LIMITS.fields}`));
      });

      it('a body cut off mid-part (the client goes away) leaves no temp files and no hang', async () => {
        const url = new URL(server.url);
        const cut = Buffer.concat([...route.fields(), Buffer.from(`--${BOUNDARY}\r\n${disposition('file', 'cut.bin')}\r\n\r\n`), Buffer.alloc(700 * 1024, 'c')]);
        for (const how of ['destroy', 'end'] as const) {
          await new Promise<void>((resolve, reject) => {
            const socket = connect(Number(url.port), url.hostname, () => {
              socket.write(`${route.method} ${route.path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: ${cut.length + 100_000}\r\n\r\n`);
              socket.write(cut, () => setTimeout(() => (how === 'destroy' ? socket.destroy() : socket.end()), 100));
            });
            socket.on('data', () => {});
            socket.on('error', () => {});
            socket.on('close', () => resolve());
            setTimeout(() => reject(new Error(`the cut-off request (${how}) was never closed`)), TIMEOUT_MS).unref();
          });
          for (let i = 0; i < 100 && (await tempFiles(server)).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
          assert.deepEqual(await tempFiles(server), [], `temp files left after a cut-off body (${how})`);
          await assertHealthy(server);
        }
      });
    });
  }

  it('part headers just below the limit are accepted and the part is stored', async () => {
    const content = Buffer.from('just below the part header limit');
    const hash = hashBuffer(content);
    const headerLines = (padding: number) => [disposition('file', hash), `X-Pad: ${'p'.repeat(padding)}`];
    // The header section: the lines and the CRLF between them.
    const padding = MAX_PART_HEADER_BYTES - Buffer.byteLength(headerLines(0).join('\r\n'));
    assert.equal(Buffer.byteLength(headerLines(padding).join('\r\n')), MAX_PART_HEADER_BYTES);
    const ok = await send(server, 'POST', `/api/repos/${REPO}/versions`, form(part(headerLines(padding), content)));
    assert.equal(ok.status, 200, JSON.stringify(ok.body).slice(0, 300));
    assert.deepEqual(ok.body.files, [{ hash, size: content.length }]);
    assert.deepEqual(ok.body.err_files, []);

    const over = await send(server, 'POST', `/api/repos/${REPO}/versions`, form(part(headerLines(padding + 1), Buffer.from('one byte over'))));
    assert.equal(over.status, 413);
    assert.equal(await server.yoke.blobs.stat(hashBuffer(Buffer.from('one byte over'))), null);

    // The same below the limit for a committed upload, with a long (valid) file name.
    const name = `${'n'.repeat(200)}.txt`;
    const put = await send(server, 'PUT', `/api/repos/${REPO}/file/main/padded`, form(
      field('name', 'Ada'), field('email', 'ada@example.com'),
      part([disposition('file', name), `X-Pad: ${'p'.repeat(MAX_PART_HEADER_BYTES - 1000)}`], 'padded headers'),
    ));
    assert.equal(put.status, 200, JSON.stringify(put.body).slice(0, 300));
    assert.equal(put.body.file.hash, hashBuffer(Buffer.from('padded headers')));
  });

  it('a refused part stops the request: parts after it are not stored either', async () => {
    const after = Buffer.from('sent after a refused part');
    const body = form(part([`X-Big: ${'x'.repeat(100_000)}`, disposition('file', 'a')], data), part([disposition('file', hashBuffer(after))], after));
    const reply = await send(server, 'POST', `/api/repos/${REPO}/versions`, body);
    assert.equal(reply.status, 413);
    assert.equal(await server.yoke.blobs.stat(hashBuffer(after)), null);
    await assertHealthy(server);
  });

  it('refused requests, concurrent or one after another on a kept-alive connection, leave the server answering', async () => {
    const big = form(part([disposition('file', 'f'.repeat(100_000))], data));
    const replies = await Promise.all(Array.from({ length: 8 }, () => send(server, 'POST', `/api/repos/${REPO}/versions`, big)));
    for (const r of replies) assert.equal(r.status, 413);
    // One connection at a time: a connection whose body was left unread is closed (Connection:
    // close), any other is reused; either way the next request is answered.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < 3; i++) {
        assert.equal((await send(server, 'POST', `/api/repos/${REPO}/versions`, big, agent)).status, 413);
        assert.equal((await send(server, 'GET', '/api/version', undefined, agent)).status, 200);
      }
    } finally {
      agent.destroy();
    }
  });
});

describe('the multipart reader reads well-formed bodies as busboy does, and refuses what busboy loses (issues 11, 15)', () => {
  const require = createRequire(import.meta.url);
  // busboy, the parser the server used before its own reader: a dev dependency kept as the oracle.
  const Busboy = require('@fastify/busboy');
  const contentType = `multipart/form-data; boundary=${BOUNDARY}`;
  const limits: MultipartLimits = { ...MULTIPART_LIMITS, fileSize: 1024 ** 3 };

  interface ReadPart {
    type: 'file' | 'field';
    name: string;
    filename?: string;
    contentType: string;
    data: string;
  }

  /** `body` in `chunk`-byte pieces, as a request stream. */
  const pieces = (body: Buffer, chunk: number) => Readable.from((function* () {
    for (let i = 0; i < body.length; i += chunk) yield body.subarray(i, i + chunk);
  })());

  async function read(body: Buffer, chunk: number, readerLimits = limits): Promise<ReadPart[]> {
    const reader = new MultipartReader(pieces(body, chunk), BOUNDARY, readerLimits);
    const parts: ReadPart[] = [];
    try {
      for (let p = await reader.nextPart(); p !== null; p = await reader.nextPart()) {
        if (p.type === 'field') {
          parts.push({ type: 'field', name: p.name, contentType: p.contentType, data: p.value });
        } else {
          const chunks: Buffer[] = [];
          for await (const c of p) chunks.push(Buffer.from(c));
          parts.push({ type: 'file', name: p.name, filename: p.filename, contentType: p.contentType, data: Buffer.concat(chunks).toString('latin1') });
        }
      }
    } finally {
      reader.release();
    }
    return parts;
  }

  function readWithBusboy(body: Buffer, chunk: number): Promise<ReadPart[]> {
    const bb = Busboy({ headers: { 'content-type': contentType }, preservePath: true });
    const parts: ReadPart[] = [];
    return new Promise((resolve, reject) => {
      bb.on('file', (name: string, stream: NodeJS.ReadableStream, filename: string | undefined, _enc: string, type: string) => {
        const entry: ReadPart = { type: 'file', name, filename, contentType: type, data: '' };
        parts.push(entry);
        stream.on('data', (c: Buffer) => (entry.data += c.toString('latin1')));
      });
      bb.on('field', (name: string, value: string, _a: boolean, _b: boolean, _enc: string, type: string) => parts.push({ type: 'field', name, contentType: type, data: value }));
      bb.on('finish', () => resolve(parts));
      bb.on('error', reject);
      pieces(body, chunk).pipe(bb);
    });
  }

  it('reads the same parts as busboy, whatever the chunking, for data full of near-delimiters', async () => {
    // Everything but the delimiter itself (CRLF, two dashes, the boundary).
    const tricky = Buffer.from(`\r\n--${BOUNDARY.slice(0, -1)}x\r\n\r\n--\r\n-\r--${BOUNDARY}\n--${BOUNDARY}\r\n-${BOUNDARY}\r\n\r\n\r`);
    const body = Buffer.concat([
      Buffer.from('a preamble\r\n'),
      part([disposition('file', 'a.bin'), 'Content-Type: application/octet-stream'], Buffer.concat([tricky, Buffer.alloc(30_000, 1), tricky])),
      field('message', ''),
      field('message', 'ünïcode'),
      part([disposition('file[]', 'b.bin'), 'Content-Type: application/gzip'], tricky),
      part(['Content-Disposition: form-data; name="raw"', 'Content-Type: application/octet-stream'], '\r'),
      close,
      Buffer.from(`an epilogue\r\n--${BOUNDARY}\r\n`),
    ]);
    const expected = await readWithBusboy(body, body.length);
    assert.equal(expected.length, 5);
    for (const chunk of [1, 2, 3, 7, 64, 1000, 16_384, 65_536, body.length]) {
      assert.deepEqual(await read(body, chunk), expected, `chunk ${chunk}`);
      assert.deepEqual(await readWithBusboy(body, chunk), expected, `busboy, chunk ${chunk}`);
    }
  });

  it('decodes names and filenames as busboy does: RFC 5987, raw UTF-8, quoted escapes, Windows paths', async () => {
    const cases: Array<[string, string]> = [
      [`form-data; name="file"; filename*=utf-8''%E2%9C%93%20ok.txt`, '✓ ok.txt'],
      [Buffer.from('form-data; name="file"; filename="naïve/日本.txt"').toString('latin1'), 'naïve/日本.txt'],
      ['form-data; name="file"; filename="a\\"b.txt"', 'a"b.txt'],
      ['form-data; name="file"; filename="C:\\dir\\f.txt"', 'C:\\dir\\f.txt'],
      ['form-data; name=file; filename=plain.txt', 'plain.txt'],
      ['Form-Data ; name="file" ; filename="spaced.txt"', 'spaced.txt'],
    ];
    for (const [value, filename] of cases) {
      const body = form(part([`Content-Disposition: ${value}`], 'x'));
      const ours = await read(body, 7);
      assert.equal(ours[0]?.filename, filename, value);
      assert.equal(ours[0]?.name, 'file', value);
      assert.deepEqual(ours, await readWithBusboy(body, body.length), value);
    }
    // Where busboy differs: `filename*` wins over `filename` whatever their order (RFC 6266; busboy takes the
    // last), and a folded header's value loses its leading blanks (busboy kept them: a folded gzip type was missed).
    const both = form(part([`Content-Disposition: form-data; name="file"; filename*=UTF-8''caf%C3%A9; filename="fallback"`, 'Content-Type:\r\n  application/GZIP'], 'x'));
    assert.deepEqual(await read(both, 5), [{ type: 'file', name: 'file', filename: 'café', contentType: 'application/gzip', data: 'x' }]);
  });

  it('refuses every header block busboy would skip or cut, where busboy loses the part without a word', async () => {
    const refused: Array<[string[], number]> = [
      [['Content-Type: text/plain'], 400],
      [['Content-Disposition: attachment; name="a"'], 400],
      [['Content-Disposition : form-data; name="a"'], 400],
      [["Content-Disposition: form-data; name*=utf-8''a%0Ab"], 400],
      [[`X-Big: ${'x'.repeat(90 * 1024)}`, disposition('file', 'a')], 413],
    ];
    for (const [headers, status] of refused) {
      const body = form(part(headers, Buffer.alloc(10, 'd')));
      assert.deepEqual(await readWithBusboy(body, body.length), [], `busboy handed over the part: ${headers[0].slice(0, 60)}`);
      for (const chunk of [5, body.length]) {
        await assert.rejects(read(body, chunk), (err: { httpStatus?: number }) => err.httpStatus === status, headers[0].slice(0, 60));
      }
    }
    // Transport padding (blanks) after a boundary is allowed; anything else there is not.
    const padded = Buffer.concat([Buffer.from(`--${BOUNDARY} \t\r\n${disposition('f')}\r\n\r\nv\r\n`), close]);
    assert.deepEqual(await read(padded, 3), [{ type: 'field', name: 'f', contentType: 'text/plain', data: 'v' }]);
    const junk = Buffer.concat([Buffer.from(`--${BOUNDARY}x\r\n${disposition('f')}\r\n\r\nv\r\n`), close]);
    await assert.rejects(read(junk, 3), /unexpected characters after a boundary/);
  });

  it('refuses a body cut short, a field over its size, and parts over the count; marks a file over its size truncated', async () => {
    const body = form(field('a', 'value'), part([disposition('file', 'f.bin')], 'abcdefgh'));
    await assert.rejects(read(body.subarray(0, body.length - close.length - 3), 4), /ended before its closing boundary/);
    await assert.rejects(read(body, 4, { ...limits, fieldSize: 4 }), (err: { httpStatus?: number }) => err.httpStatus === 413);
    await assert.rejects(read(body, 4, { ...limits, parts: 1 }), /Too many parts/);
    await assert.rejects(read(body, 4, { ...limits, files: 0 }), /Too many file parts/);
    const reader = new MultipartReader(pieces(body, 3), BOUNDARY, { ...limits, fileSize: 5 });
    assert.equal((await reader.nextPart())?.type, 'field');
    const file = await reader.nextPart();
    assert.ok(file && file.type === 'file');
    const chunks: Buffer[] = [];
    for await (const c of file) chunks.push(Buffer.from(c));
    assert.equal(Buffer.concat(chunks).toString(), 'abcde');
    assert.equal(file.truncated, true);
    assert.equal(await reader.nextPart(), null);
    // An empty body is an empty form.
    assert.deepEqual(await read(Buffer.alloc(0), 1), []);
  });

  it('finds the boundary in a Content-Type, quoted or not, or none', () => {
    assert.equal(multipartBoundary(`multipart/form-data; boundary=${BOUNDARY}`), BOUNDARY);
    assert.equal(multipartBoundary(`Multipart/Form-Data;boundary="${BOUNDARY}"; charset=utf-8`), BOUNDARY);
    assert.equal(multipartBoundary('multipart/form-data; charset=utf-8; BOUNDARY = abc'), 'abc');
    assert.equal(multipartBoundary('multipart/form-data; boundary=""'), null);
    assert.equal(multipartBoundary('multipart/form-data'), null);
    assert.equal(multipartBoundary('application/json'), null);
  });
});
