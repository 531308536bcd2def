import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { redactCredentials } from '../../src/server/main.js';
import { freePort, runYoke, YOKE_BIN } from '../helpers/cli.js';

/** `yoke serve` in its own process, its log lines (JSON, on standard output) collected as they come. */
class ServeProcess {
  readonly lines: any[] = [];
  private readonly child: ChildProcess;
  private buffered = '';

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [YOKE_BIN, 'serve', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (this.buffered + chunk).split('\n');
      this.buffered = parts.pop()!;
      for (const part of parts) this.lines.push(JSON.parse(part));
    });
  }

  /** The first log line `match` accepts, once it is written. */
  async waitFor(match: (line: any) => boolean, what: string): Promise<any> {
    for (let i = 0; i < 800; i++) {
      const found = this.lines.find(match);
      if (found) return found;
      if (this.child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.fail(`no log line ${what}; got:\n${this.lines.map((l) => JSON.stringify(l)).join('\n')}`);
  }

  /** The log lines of one request, by its request id. */
  ofRequest(id: string | null): any[] {
    return this.lines.filter((line) => line.reqId === id);
  }

  stop(signal: NodeJS.Signals): Promise<number | null> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) return resolve(this.child.exitCode);
      this.child.once('exit', (code) => resolve(code));
      this.child.kill(signal);
    });
  }
}

describe('yoke serve: what it says', () => {
  let dataDir: string;
  let serve: ServeProcess;
  let url: string;
  const big = randomBytes(32 * 1024 * 1024);
  const medium = randomBytes(200 * 1024);

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'yoke-serve-'));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    serve = new ServeProcess(['--port', String(port), '--data-dir', dataDir, '--log-level', 'info']);
    await serve.waitFor((line) => /^Yoke .* serving/.test(line.msg ?? ''), 'announcing the server');
  });
  after(async () => {
    await serve.stop('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });

  it('starts with one line naming the version, the stores, auth and the addresses of the web page and the API document', async () => {
    const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
    const started = await serve.waitFor((line) => line.version !== undefined, 'with the version');
    assert.equal(started.version, version);
    assert.equal(started.dataDir, dataDir);
    assert.deepEqual(started.meta, { kind: 'sqlite', path: join(dataDir, 'meta.sqlite') });
    assert.deepEqual(started.blobs, { kind: 'local', path: join(dataDir, 'blobs') });
    assert.equal(started.auth, false);
    assert.equal(started.web, `${url}/`);
    assert.equal(started.api, `${url}/api/_spec/oxen_server_openapi.json`);
    assert.match(started.msg, new RegExp(`^Yoke ${version} serving ${url}/ .*auth off$`));
    assert.equal(serve.lines.filter((line) => /listening/i.test(line.msg)).length, 0, 'fastify\'s own listening line is replaced');
    assert.equal((await fetch(started.api)).status, 200);
    assert.equal((await fetch(started.web)).status, 200);
  });

  it('logs a refused request with its reason and type, never the token nor a file link', async () => {
    const res = await fetch(`${url}/api/repos/nobody/nothing?link=SECRET-LINK-VALUE`, { headers: { authorization: 'Bearer SECRET-TOKEN-VALUE' } });
    assert.equal(res.status, 404);
    const [refused] = await Promise.all([serve.waitFor((line) => line.reqId === res.headers.get('x-oxen-request-id') && line.res, 'for the 404')]);
    assert.equal(refused.res.statusCode, 404);
    assert.equal(refused.error.type, 'resource_not_found');
    assert.match(refused.error.message, /nobody\/nothing/);
    assert.match(refused.msg, /^request refused: /);
    const logged = JSON.stringify(serve.lines);
    assert.ok(!logged.includes('SECRET-LINK-VALUE'), 'the link is redacted');
    assert.ok(!logged.includes('SECRET-TOKEN-VALUE'), 'the token is not logged');
    assert.ok(serve.ofRequest(res.headers.get('x-oxen-request-id')).some((line) => line.req?.url === '/api/repos/nobody/nothing?link=[redacted]'));
  });

  it('answers a body whose Content-Type is not a media type with the types the route takes (415), and logs why', async () => {
    const res = await fetch(`${url}/api/repos/me/data/file/main/a.txt`, { method: 'PUT', headers: { 'content-type': 'bytes' }, body: 'hello' });
    assert.equal(res.status, 415);
    const body = await res.json();
    assert.equal(body.error.type, 'unsupported_media_type');
    assert.match(body.error.detail, /Content-Type "bytes" is not one this route reads.*takes multipart\/form-data/);
    const refused = await serve.waitFor((line) => line.reqId === res.headers.get('x-oxen-request-id') && line.res, 'for the 415');
    assert.equal(refused.error.message, body.error.detail);
  });

  it('logs every complete streamed download as completed, and one the client cuts off as aborted', async () => {
    const created = await fetch(`${url}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'me', name: 'data', user: { name: 'Me', email: 'me@example.com' } }) });
    assert.equal(created.status, 200);
    const form = new FormData();
    form.append('file', new Blob([medium]), 'medium.bin');
    form.append('file', new Blob([big]), 'big.bin');
    for (const field of ['name', 'email']) form.append(field, field === 'name' ? 'Me' : 'me@example.com');
    const uploaded = await fetch(`${url}/api/repos/me/data/file/main/data`, { method: 'PUT', body: form });
    assert.equal(uploaded.status, 200, await uploaded.text());

    // 200 KiB: over the small-read size, so the body is a file stream, as any larger file's is.
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const res = await fetch(`${url}/api/repos/me/data/file/main/data/medium.bin`);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), medium);
      ids.push(res.headers.get('x-oxen-request-id')!);
    }
    for (const id of ids) {
      const done = await serve.waitFor((line) => line.reqId === id && line.res, `for download ${id}`);
      assert.equal(done.msg, 'request completed');
      assert.equal(done.res.statusCode, 200);
    }

    // 32 MiB cannot all sit in the socket buffers: closing after the first bytes cuts the body short.
    const cut = await new Promise<string>((resolve, reject) => {
      const req = get(`${url}/api/repos/me/data/file/main/data/big.bin`, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve(String(res.headers['x-oxen-request-id']));
        });
      });
      req.on('error', (err) => (err.message === 'socket hang up' ? undefined : reject(err)));
    });
    const aborted = await serve.waitFor((line) => line.reqId === cut && line.res, 'for the cut-off download');
    assert.match(aborted.msg, /^response aborted/);
    assert.equal(serve.ofRequest(cut).filter((line) => line.msg === 'request completed').length, 0);
  });

  it('says that it stopped cleanly on Ctrl-C (SIGINT), and exits 0', async () => {
    const code = await serve.stop('SIGINT');
    assert.equal(code, 0);
    const messages = serve.lines.map((line) => line.msg);
    assert.ok(messages.some((m) => /^SIGINT: stopping/.test(m)), messages.join('\n'));
    assert.equal(messages.at(-1), 'stopped cleanly: server and stores closed');
  });
});

describe('yoke serve: the start-up line', () => {
  it('masks the password of a database URL or S3 endpoint, and password-like query parameters', () => {
    const shown = redactCredentials('postgres://yoke:s3cret-pw@db.example:5432/yoke?sslmode=require&sslpassword=key-pw');
    assert.equal(shown, 'postgres://yoke:***@db.example:5432/yoke?sslmode=require&sslpassword=***');
    assert.equal(redactCredentials('http://radosgw:7480'), 'http://radosgw:7480/');
  });
});

describe('yoke serve: flags it refuses', () => {
  it('answers an unknown --log-level with the levels it takes, and a non-zero exit', async () => {
    const { code, stderr } = await runYoke(['serve', '--log-level', 'loud', '--port', '0', '--data-dir', join(tmpdir(), 'yoke-never-created')]);
    assert.notEqual(code, 0);
    assert.match(stderr, /Invalid log level: loud \(one of fatal, error, warn, info, debug, trace, silent\)/);
  });
});
