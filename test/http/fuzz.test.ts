import { strict as assert } from 'node:assert';
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { hashBuffer } from '../../src/core/hash.js';
import { AUTHOR, blobsInS3, createRepo, putFiles, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Fuzz (issue 11): thousands of malformed requests at every route the server registers (read from
 * its own OpenAPI document), checking that none gets a 5xx, that every refusal is the JSON error
 * envelope, that the server keeps answering, and that the data already stored is unchanged.
 *
 * Deterministic: every request comes from a seeded PRNG (YOKE_FUZZ_SEED to choose another seed);
 * the seed is in every failure message. Each category draws from its own stream, so a category
 * reproduces on its own. The requests of a category run 16 at a time.
 *
 * Three repositories take the requests. `keep` is snapshotted before and compared after: it gets
 * read-only requests with real ids, and writes only where the request cannot name its data (a
 * hostile or unknown path parameter) or where its body must be refused before anything is written.
 * `play` gets every other request with real ids, and may change. `victim` takes the real-id
 * requests that delete or move a whole repository or its workspaces.
 */

const SEED = process.env.YOKE_FUZZ_SEED ? Number(process.env.YOKE_FUZZ_SEED) : 0x11f022;
const CONCURRENCY = 16;
const REQUEST_TIMEOUT_MS = 20_000;
/** The server's cap on what one gzip part (or an upload_chunk tarball) may decompress to. */
const MAX_DECOMPRESSED = 256 * 1024;
const MAX_FILE_BYTES = 4 * 1024 * 1024;

// ---- deterministic randomness -------------------------------------------------------------------

class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 || 1;
  }
  /** mulberry32 */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  word(n: number, alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
  /** Printable text from all over the BMP (no surrogates), some emoji. */
  unicode(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) {
      const r = this.next();
      s += r < 0.1 ? String.fromCodePoint(0x1f300 + this.int(0x200)) : String.fromCodePoint(r < 0.5 ? 0x20 + this.int(0x5f) : 0xa0 + this.int(0xd700 - 0xa0));
    }
    return s;
  }
}

function streamFor(label: string): Rng {
  let h = 0x811c9dc5;
  for (const ch of label) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193);
  return new Rng((SEED ^ h) >>> 0);
}

// ---- requests and responses ---------------------------------------------------------------------

interface FuzzRequest {
  category: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** Bytes written to a fresh socket as they are (method, path and headers above are then a label). */
  raw?: Buffer;
  /** Targets the snapshotted repository with a method that may write. */
  keepWrite?: boolean;
  /** What the generator meant, for failure messages. */
  note?: string;
}

interface Outcome {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  error?: string;
}

const READ_METHODS = new Set(['GET', 'HEAD', 'QUERY', 'OPTIONS', 'TRACE', 'PROPFIND']);

function snippet(body: Buffer | string, max = 300): string {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}

function label(r: FuzzRequest): string {
  const path = r.path.length > 200 ? `${r.path.slice(0, 200)}…(${r.path.length} chars)` : r.path;
  return `[${r.category}] ${r.method} ${path}${r.note ? ` (${r.note})` : ''}`;
}

/** What is wrong with a response, or null: no 5xx, and every 4xx (but to HEAD) the JSON error envelope. */
function verdict(r: FuzzRequest, o: Outcome): string | null {
  if (o.error) return `no response: ${o.error}`;
  if (!(o.status >= 200 && o.status < 500)) return `HTTP ${o.status}: ${snippet(o.body)}`;
  if (o.status >= 400 && r.method !== 'HEAD') {
    let body: any;
    try {
      body = JSON.parse(o.body.toString('utf8'));
    } catch {
      return `HTTP ${o.status} without a JSON body: ${snippet(o.body)}`;
    }
    if (body?.status !== 'error' || typeof body.status_message !== 'string' || typeof body.status_description !== 'string' || typeof body.oxen_version !== 'string' || typeof body.error?.type !== 'string') {
      return `HTTP ${o.status} is not the error envelope: ${snippet(o.body)}`;
    }
  }
  return null;
}

class Client {
  readonly agent: Agent;
  private readonly lastOn = new WeakMap<object, string>();
  readonly host: string;
  readonly port: number;
  constructor(url: string, maxSockets = CONCURRENCY) {
    this.agent = new Agent({ keepAlive: true, maxSockets });
    const u = new URL(url);
    this.host = u.hostname;
    this.port = Number(u.port);
  }

  send(r: FuzzRequest): Promise<Outcome> {
    if (r.raw) return this.sendRaw(r.raw, r.method === 'HEAD');
    return new Promise((resolve) => {
      let settled = false;
      const finish = (o: Outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(o);
      };
      let req: ReturnType<typeof httpRequest>;
      try {
        // Node sends a GET or HEAD body without a length (the server would read it as the next request): say it.
        const headers = r.body && !Object.keys(r.headers ?? {}).some((h) => /^(content-length|transfer-encoding)$/i.test(h)) ? { ...r.headers, 'content-length': String(r.body.length) } : (r.headers ?? {});
        req = httpRequest({ agent: this.agent, host: this.host, port: this.port, method: r.method, path: r.path, headers }, (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            // Enough to judge the reply; the rest is read and dropped.
            if (size < 8 << 20) chunks.push(c);
            size += c.length;
          });
          res.on('end', () => finish({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', (err) => finish({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), error: `response ${err.message}` }));
        });
      } catch (err) {
        // Something node:http will not send (a method or path it refuses): send it byte for byte.
        const head = `${r.method} ${r.path} HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n${Object.entries(r.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('')}${r.body ? `Content-Length: ${r.body.length}\r\n` : ''}\r\n`;
        this.sendRaw(Buffer.concat([Buffer.from(head, 'latin1'), r.body ?? Buffer.alloc(0)]), r.method === 'HEAD').then(resolve);
        return;
      }
      const timer = setTimeout(() => {
        req.destroy(new Error(`timed out after ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      // A connection left in a bad state shows up on the request after: name the one before.
      let previous: string | undefined;
      req.on('socket', (socket) => {
        previous = this.lastOn.get(socket);
        this.lastOn.set(socket, label(r));
      });
      req.on('error', (err) => finish({ status: 0, headers: {}, body: Buffer.alloc(0), error: `${err.message}${previous ? `; the connection's previous request: ${previous}` : ''}` }));
      req.end(r.body);
    });
  }

  /** One request on its own connection; the reply is read up to its length, or until the server closes. */
  sendRaw(bytes: Buffer, head: boolean): Promise<Outcome> {
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let done = false;
      const socket = connect(this.port, this.host, () => {
        // The server may answer and close before it has read everything (431, 413): fine.
        socket.write(bytes, () => {});
      });
      const finish = (error?: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.destroy();
        const parsed = parseRawResponse(Buffer.concat(chunks), head, true);
        if (!parsed) resolve({ status: 0, headers: {}, body: Buffer.alloc(0), error: error ?? `connection closed without a response (${Buffer.concat(chunks).length} bytes)` });
        else resolve(parsed);
      };
      socket.on('data', (c: Buffer) => {
        chunks.push(c);
        if (parseRawResponse(Buffer.concat(chunks), head, false)) finish();
      });
      socket.on('error', () => {});
      socket.on('close', () => finish());
      const timer = setTimeout(() => finish(`timed out after ${REQUEST_TIMEOUT_MS} ms`), REQUEST_TIMEOUT_MS);
    });
  }

  close() {
    this.agent.destroy();
  }
}

/** The first final (non-1xx) response in `buf` once it is complete (or, at `closed`, whatever arrived of it). */
function parseRawResponse(buf: Buffer, head: boolean, closed: boolean): Outcome | null {
  let start = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', start);
    if (end < 0) return null;
    const lines = buf.toString('latin1', start, end).split('\r\n');
    const status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(lines[0])?.[1]);
    if (!status) return null;
    if (status < 200) {
      start = end + 4;
      continue;
    }
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    const bodyStart = end + 4;
    if (head || status === 204 || status === 304) return { status, headers, body: Buffer.alloc(0) };
    if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts: Buffer[] = [];
      let at = bodyStart;
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', at);
        if (lineEnd < 0) return closed ? { status, headers, body: Buffer.concat(parts) } : null;
        const size = parseInt(buf.toString('latin1', at, lineEnd), 16);
        if (Number.isNaN(size)) return { status, headers, body: Buffer.concat(parts) };
        if (size === 0) return { status, headers, body: Buffer.concat(parts) };
        if (buf.length < lineEnd + 2 + size + 2) return closed ? { status, headers, body: Buffer.concat(parts) } : null;
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
    }
    const length = headers['content-length'];
    if (length !== undefined) {
      if (buf.length - bodyStart >= Number(length)) return { status, headers, body: buf.subarray(bodyStart, bodyStart + Number(length)) };
      return closed ? { status, headers, body: buf.subarray(bodyStart) } : null;
    }
    return closed ? { status, headers, body: buf.subarray(bodyStart) } : null;
  }
}

// ---- the fuzzing run ----------------------------------------------------------------------------

interface Failure {
  request: string;
  problem: string;
}

class Run {
  readonly counts = new Map<string, number>();
  readonly failures: Failure[] = [];
  /** Writes to the snapshotted repository that succeeded: shown if its data changed. */
  readonly keepWrites: string[] = [];
  readonly client: Client;
  constructor(readonly server: TestServer) {
    this.client = new Client(server.url);
  }

  async one(r: FuzzRequest): Promise<Outcome> {
    const outcome = await this.client.send(r);
    this.counts.set(r.category, (this.counts.get(r.category) ?? 0) + 1);
    const problem = verdict(r, outcome);
    if (problem) this.failures.push({ request: label(r), problem });
    if (r.keepWrite && outcome.status >= 200 && outcome.status < 300) this.keepWrites.push(`${label(r)} → ${outcome.status}`);
    return outcome;
  }

  /** Sends `requests` 16 at a time, then checks that the server still answers. */
  async batch(requests: FuzzRequest[]): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < requests.length) await this.one(requests[next++]);
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    await this.health(requests[0]?.category ?? 'batch');
  }

  async health(after: string): Promise<void> {
    const outcome = await this.client.send({ category: 'health', method: 'GET', path: '/api/health' });
    if (outcome.status !== 200) this.failures.push({ request: `GET /api/health after ${after}`, problem: outcome.error ?? `HTTP ${outcome.status}: ${snippet(outcome.body)}` });
  }

  /** Fails with every problem of `category` (the first 25 in full), naming the seed. */
  assertClean(category: string): void {
    const mine = this.failures.filter((f) => f.request.startsWith(`[${category}]`) || f.request.includes(`after ${category}`));
    if (mine.length === 0) return;
    const lines = mine.slice(0, 25).map((f) => `  ${f.request}\n    → ${f.problem}`);
    assert.fail(`${mine.length} bad responses in '${category}' (seed ${SEED}; rerun with YOKE_FUZZ_SEED=${SEED}):\n${lines.join('\n')}`);
  }
}

// ---- routes, read from the server ---------------------------------------------------------------

interface Route {
  method: string;
  /** OpenAPI form: `/api/repos/{namespace}/{repo_name}/file/{*}`. */
  template: string;
  params: string[];
  key: string;
}

const REPO = '/api/repos/{namespace}/{repo_name}';

async function listRoutes(server: TestServer): Promise<Route[]> {
  const spec = (await (await server.fetch('/api/_spec/oxen_server_openapi.json')).json()) as { paths: Record<string, Record<string, unknown>> };
  const routes: Route[] = [];
  const add = (method: string, template: string) => {
    const params = [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    routes.push({ method, template, params, key: `${method} ${template}` });
  };
  for (const [template, operations] of Object.entries(spec.paths)) {
    const methods = new Set(Object.keys(operations).map((m) => m.toUpperCase()));
    // Fastify answers HEAD beside every GET; the document leaves those out.
    if (methods.has('GET')) methods.add('HEAD');
    for (const method of methods) add(method, template);
  }
  // Routes the document does not describe: itself and Swagger UI.
  for (const template of ['/api/_spec/oxen_server_openapi.json', '/swagger-ui', '/swagger-ui/json', '/swagger-ui/yaml', '/swagger-ui/static/{*}']) {
    add('GET', template);
    add('HEAD', template);
  }
  return routes;
}

// ---- the repositories ---------------------------------------------------------------------------

interface RepoCtx {
  ns: string;
  name: string;
  commits: string[];
  branches: string[];
  files: string[];
  dirs: string[];
  blobHashes: string[];
  workspaceId: string;
  workspaceName: string;
  stagedPath: string;
  /** Numbered-part uploads begun in it (`versions/uploads`). */
  uploadIds: string[];
}

const FILES: Record<string, Buffer> = {
  'README.md': Buffer.from('# Fuzz target\n\nData that must not change.\n'),
  'data/train/a.csv': Buffer.from('id,label\n1,cat\n2,dog\n'),
  'data/train/b.csv': Buffer.from('id,label\n3,bird\n'),
  'images/cats/cat1.bin': new Rng(7).bytes(3000),
};

async function ok(promise: Promise<{ status: number; body: any }>, what: string) {
  const { status, body } = await promise;
  if (status !== 200) throw new Error(`${what}: ${status} ${JSON.stringify(body)}`);
  return body;
}

/** A repository with three commits on main, files in subdirectories, branches dev and feature/x (each a commit ahead), and a workspace with a staged file. */
async function setUpRepo(server: TestServer, ns: string, name: string): Promise<RepoCtx> {
  const path = `${ns}/${name}`;
  const json = (method: string, url: string, body: unknown) =>
    server.json(`/api/repos/${path}${url}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await createRepo(server, ns, name);
  await ok(putFiles(server, path, 'main', Object.entries(FILES).map(([n, content]) => ({ name: n, content, field: 'files[]' })), { ...AUTHOR, message: 'Add the data' }), 'first commit');
  await ok(putFiles(server, path, 'main/data/train/a.csv', [{ name: 'a.csv', content: 'id,label\n1,cat\n2,dog\n4,fish\n' }], { ...AUTHOR, message: 'More rows' }), 'second commit');
  await ok(putFiles(server, path, 'main/data/test/c.txt', [{ name: 'c.txt', content: 'held out\n' }], { ...AUTHOR, message: 'A test split' }), 'third commit');
  await ok(json('POST', '/branches', { new_name: 'dev', from_name: 'main' }), 'branch dev');
  await ok(putFiles(server, path, 'dev/notes/only-on-dev.txt', [{ name: 'x', content: 'dev only\n' }], { ...AUTHOR, message: 'Dev notes' }), 'dev commit');
  await ok(json('POST', '/branches', { new_name: 'feature/x', from_name: 'main' }), 'branch feature/x');
  await ok(putFiles(server, path, 'feature/x/images/dogs/dog1.txt', [{ name: 'x', content: 'woof\n' }], { ...AUTHOR, message: 'A dog' }), 'feature commit');
  await ok(json('PUT', '/workspaces', { workspace_id: 'ws-fuzz', branch_name: 'main', name: 'fuzzer' }), 'workspace');
  const form = new FormData();
  form.append('file', new Blob([Buffer.from('staged, not committed\n')]), 'staged.txt');
  await ok(server.json(`/api/repos/${path}/workspaces/ws-fuzz/files/data`, { method: 'POST', body: form }), 'stage a file');
  const commits = (await ok(server.json(`/api/repos/${path}/commits/all?page_size=1000`), 'commits')).commits.map((c: any) => c.id);
  const blobHashes = Object.values(FILES).map((b) => hashBuffer(b));
  return {
    ns, name, commits, blobHashes,
    branches: ['main', 'dev', 'feature/x'],
    files: [...Object.keys(FILES), 'data/test/c.txt'],
    dirs: ['data', 'data/train', 'images', 'images/cats'],
    workspaceId: 'ws-fuzz',
    workspaceName: 'fuzzer',
    stagedPath: 'data/staged.txt',
    uploadIds: [],
  };
}

/** Everything a client can read of a repository: branch heads, the commit list, every file of every commit byte for byte, the workspace. */
async function snapshot(server: TestServer, c: RepoCtx) {
  const base = `/api/repos/${c.ns}/${c.name}`;
  const read = async (url: string) => {
    const res = await server.fetch(base + url);
    const bytes = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200) throw new Error(`snapshot: GET ${url} answered ${res.status} ${bytes.toString('utf8').slice(0, 200)}`);
    return bytes;
  };
  const readJson = async (url: string) => JSON.parse((await read(url)).toString('utf8'));
  const branches = (await readJson('/branches')).branches.map((b: any) => [b.name, b.commit_id]).sort();
  const commits = (await readJson('/commits/all?page_size=1000')).commits.map((x: any) => [x.id, x.parent_ids, x.message, x.timestamp]);
  const files: Record<string, string> = {};
  const walk = async (rev: string, dir: string) => {
    const listing = await readJson(`/dir/${rev}/${dir}?page_size=1000`);
    for (const e of listing.entries) {
      const p = dir ? `${dir}/${e.filename}` : e.filename;
      if (e.is_dir) await walk(rev, p);
      else files[`${rev}:${p}`] = (await read(`/file/${rev}/${p}`)).toString('base64');
    }
  };
  for (const [id] of commits) await walk(id, '');
  const changes = (await readJson(`/workspaces/${c.workspaceId}/changes`)).changes;
  const staged = (await read(`/workspaces/${c.workspaceId}/files/${c.stagedPath}`)).toString('base64');
  const repository = (await readJson('')).repository;
  return { branches, commits, files, workspace: { changes, staged }, repository };
}

// ---- parameter values ---------------------------------------------------------------------------

type Fill = 'real' | 'garbage' | 'hostile';

const GARBAGE = [
  '-1', '0', '1e309', '99999999999999999999999', 'null', 'undefined', 'true', '%5B%5D', '%7B%7D', '%20', '+', '~', '@',
  '%40%7B1%7D', 'main.lock', 'HEAD', '.git', '%3B', '%2C', '*', '%27', '%22', '%3Cscript%3E', 'a%3Bb%3Dc', '%3F', '%23',
  '%2F', 'a%2Fb', 'f'.repeat(33), '0'.repeat(40), '%F0%9F%92%A5', 'a'.repeat(300), '.', '%2e', '...', '%252e%252e',
  '%E2%80%AE', '%EF%BB%BF', '%C2%A0', 'main%20', '%09main', 'main..dev..x', '...', 'main...', 'a..b..c..d',
];

/** Values that must never name stored data: traversal, NUL, backslashes, absolute paths. */
const HOSTILE = [
  '..', '../..', '..%2F..%2F..%2Fetc%2Fpasswd', '%2e%2e', '%2E%2E%2F%2E%2E%2Fetc%2Fpasswd', '..%5C..%5Cwindows', 'a%00b', '%00',
  '..%00', '/etc/passwd', '%2Fetc%2Fpasswd', '../../../../etc/passwd', '..\\..\\boot.ini', 'a\\b', '%2e%2e/%2e%2e/etc/shadow',
  '..%c0%af..%c0%afetc', '%2e%2e%5c%2e%2e%5c', 'data/../../../etc/passwd', '%00..%00', 'C:%5CWindows%5Cwin.ini',
];

/** Hostile tails after a real revision in a `{rev}/{path}` wildcard. */
const HOSTILE_TAILS = [
  '../../../etc/passwd', '..%2F..%2Fsecret', '%2e%2e/%2e%2e/etc/shadow', 'data/%00.csv', 'data%00', 'data\\train', 'data%5Ctrain',
  '/etc/passwd', 'data/../../README.md', 'data/..', '..', 'data//train', '%2F%2Fetc%2Fpasswd', 'data/train/../../../../x',
];

/** The kinds of traversal every path parameter gets: a value alone, and a tail after a real revision (for `{rev}/{path}`). */
const TRAVERSALS: Array<[kind: string, alone: string, tail: string]> = [
  ['../', '../../../../etc/passwd', '../../../etc/passwd'],
  ['..%2f', '..%2F..%2F..%2Fetc%2Fpasswd', '..%2F..%2Fsecret'],
  ['%2e%2e', '%2e%2e', '%2e%2e/%2e%2e/etc/shadow'],
  ['absolute', '/etc/passwd', '/etc/passwd'],
  ['NUL', 'a%00b', 'data/%00.csv'],
  ['backslash', '..\\..\\boot.ini', 'data%5Ctrain'],
];

/** Percent-encodings a URL decoder must refuse; every path segment gets the first three. */
const BAD_ENCODINGS = ['%zz', '%', '%c0%af', '%e0%80%af', '%ff', '%fe%ff', '%u002e', '%2', '%%32%65', '%c0%ae%c0%ae', '%ed%a0%80', '%f8%88%80%80%80', 'a%g0', '%%'];

function revisions(c: RepoCtx): string[] {
  return [...c.branches, ...c.commits];
}

function realWildcard(route: Route, c: RepoCtx, rng: Rng): string {
  const rev = rng.pick(revisions(c));
  const file = rng.pick(c.files);
  const dir = rng.pick(c.dirs);
  if (route.template.includes('/workspaces/{workspace_id}/')) {
    return rng.pick([c.stagedPath, 'data', 'data/train', 'README.md', 'main', 'dev', 'feature/x', '', 'images/cats/cat1.bin']);
  }
  const [a, b] = [rng.pick(revisions(c)), rng.pick(revisions(c))];
  return rng.pick([
    `${rev}/${file}`, `${rev}/${file}`, `${rev}/${dir}`, rev, `${rev}/`, `${a}..${b}`, `${a}..${b}/${file}`, `${a}...${b}`,
    `${rng.pick(c.branches)}/versions/${file}`, `${rev}/parents`, `${rng.pick(c.branches)}/merge`, file, dir, `main/new/${rng.word(6)}.txt`,
  ]);
}

function realValue(param: string, route: Route, c: RepoCtx, rng: Rng): string {
  switch (param) {
    case 'namespace':
      return c.ns;
    case 'repo_name':
      return c.name;
    case 'state':
      return rng.pick(['started', 'completed']);
    case 'action':
      return rng.pick(['push', 'clone', 'download', 'upload']);
    case 'hash':
      return rng.pick([...c.blobHashes, ...c.commits]);
    case 'workspace_id':
      return rng.pick([c.workspaceId, c.workspaceName]);
    case 'upload_id':
      return c.uploadIds.length > 0 ? rng.pick(c.uploadIds) : rng.word(16, '0123456789abcdef');
    case 'part':
      return rng.pick(['1', '2', '3']);
    case '*':
      return realWildcard(route, c, rng);
    default: {
      const [a, b] = [rng.pick(revisions(c)), rng.pick(revisions(c))];
      return rng.pick([...revisions(c), `${a}..${b}`, `${a}..${b}`]);
    }
  }
}

function garbageValue(rng: Rng): string {
  const r = rng.next();
  if (r < 0.5) return rng.pick(GARBAGE);
  if (r < 0.75) return rng.word(rng.range(1, 40));
  return encodeURIComponent(rng.unicode(rng.range(1, 12)));
}

function hostileValue(param: string, c: RepoCtx, rng: Rng): string {
  if (param === '*' && rng.chance(0.6)) return `${rng.pick(revisions(c))}/${rng.pick(HOSTILE_TAILS)}`;
  return rng.pick(HOSTILE);
}

function fillTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{([^}]+)\}/g, (_, name: string) => values[name]);
}

function chooseFills(route: Route, rng: Rng, weights = { real: 0.55, hostile: 0.25 }): Record<string, Fill> {
  const fills: Record<string, Fill> = {};
  for (const p of route.params) {
    const r = rng.next();
    // Mostly the real repository, so that the rest of the path reaches the handler.
    if ((p === 'namespace' || p === 'repo_name') && route.template.startsWith(REPO)) fills[p] = r < 0.85 ? 'real' : r < 0.93 ? 'garbage' : 'hostile';
    else fills[p] = r < weights.real ? 'real' : r < weights.real + weights.hostile ? 'hostile' : 'garbage';
  }
  return fills;
}

function fillRoute(route: Route, fills: Record<string, Fill>, c: RepoCtx, rng: Rng, given: Record<string, string> = {}): { path: string } {
  const values: Record<string, string> = {};
  for (const p of route.params) {
    values[p] = given[p] ?? (fills[p] === 'real' ? realValue(p, route, c, rng) : fills[p] === 'hostile' ? hostileValue(p, c, rng) : garbageValue(rng));
  }
  return { path: fillTemplate(route.template, values) };
}

// ---- which repository a request may target ------------------------------------------------------

const K = (method: string, tail: string) => `${method} ${REPO}${tail}`;

/** Writes that change nothing a snapshot reads (they add blobs, nodes, other repositories, tokens, or only answer). */
const HARMLESS_WRITES = new Set([
  K('POST', '/versions/batch-download'), K('POST', '/versions/missing'), K('POST', '/commits/missing'), K('POST', '/tree/nodes/missing_node_hashes'),
  K('POST', '/action/{state}/{action}'), K('POST', '/commits/{commit_id}/complete'), K('POST', '/workspaces/{workspace_id}/validate'),
  K('POST', '/versions'), K('POST', '/tree/nodes'), K('POST', '/commits/upload'), 'POST /api/repos', 'POST /api/tokens', 'DELETE /api/tokens/{id}',
]);

/** Writes that read and check their whole body before they change anything: a body that must fail leaves the data alone. */
const BODY_FIRST: Record<string, 'json' | 'any'> = {
  [K('PUT', '/file/{*}')]: 'any',
  [K('DELETE', '/file/{*}')]: 'any',
  [K('PATCH', '/file/{*}')]: 'json',
  [K('POST', '/branches')]: 'json',
  [K('PUT', '/branches/{*}')]: 'json',
  [K('POST', '/merge/{*}')]: 'json',
  [K('POST', '/workspaces/{workspace_id}/commit/{*}')]: 'json',
  [K('POST', '/workspaces/{workspace_id}/merge/{*}')]: 'json',
  [K('POST', '/workspaces/{workspace_id}/files/{*}')]: 'any',
  [K('PATCH', '/workspaces/{workspace_id}/files/{*}')]: 'json',
  [K('DELETE', '/workspaces/{workspace_id}/files')]: 'json',
  [K('DELETE', '/workspaces/{workspace_id}/changes')]: 'json',
  [K('DELETE', '/workspaces/{workspace_id}/staged')]: 'json',
  [K('PUT', '/workspaces')]: 'json',
  [K('POST', '/workspaces')]: 'json',
  [K('PUT', '/workspaces/get_or_create')]: 'json',
};

/** Real-id writes that remove or move a whole repository or its workspaces go to the victim. */
const DESTRUCTIVE = new Set([K('DELETE', ''), K('PATCH', '/transfer'), K('DELETE', '/workspaces'), K('DELETE', '/workspaces/{workspace_id}')]);

/** How a body is sure to be refused: not JSON at all, or a multipart body that cannot be parsed. */
type MustFail = 'json' | 'multipart' | undefined;

interface Repos {
  keep: RepoCtx;
  play: RepoCtx;
  victim: RepoCtx;
}

function targetFor(route: Route, method: string, fills: Record<string, Fill>, mustFail: MustFail, repos: Repos, rng: Rng): { repo: RepoCtx; keepWrite: boolean } {
  const either = () => (rng.chance(0.5) ? repos.keep : repos.play);
  if (READ_METHODS.has(method) || HARMLESS_WRITES.has(route.key) || !route.template.startsWith(REPO)) return { repo: either(), keepWrite: false };
  const hostile = route.params.some((p) => fills[p] === 'hostile') || fills.namespace !== 'real' || fills.repo_name !== 'real';
  const bodyFirst = BODY_FIRST[route.key];
  if (hostile || (mustFail && bodyFirst && (bodyFirst === 'any' || mustFail === 'json'))) {
    const repo = either();
    return { repo, keepWrite: repo === repos.keep };
  }
  return { repo: DESTRUCTIVE.has(route.key) ? repos.victim : repos.play, keepWrite: false };
}

// ---- bodies -------------------------------------------------------------------------------------

interface Body {
  body?: Buffer;
  headers: Record<string, string>;
  mustFail?: MustFail;
  note: string;
}

const JSON_TYPES = ['application/json', 'text/plain', 'application/octet-stream', '', 'application/json; charset=utf-16', 'application/x-www-form-urlencoded', 'text/html', '*/*'];

function withType(ct: string): Record<string, string> {
  return ct === '' ? {} : { 'content-type': ct };
}

function deepArray(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

/** Stands for arrays nested `depth` deep inside a value given to `toJson` (JSON.stringify itself overflows on them). */
class Deep {
  constructor(readonly depth: number) {}
}

function deepValue(depth: number): Deep {
  return new Deep(depth);
}

function toJson(value: unknown): string {
  const text = JSON.stringify(value, (_key, v) => (v instanceof Deep ? `@@deep${v.depth}@@` : v));
  return text.replace(/"@@deep(\d+)@@"/g, (_, depth: string) => deepArray(Number(depth)));
}

const HUGE_STRING = 'x'.repeat(900 * 1024);

function randomBody(rng: Rng, c: RepoCtx): Body {
  const ct = rng.pick(JSON_TYPES.filter((t) => !t.startsWith('multipart')));
  const jsonCt = rng.pick(['application/json', 'text/plain', '']);
  const sample = JSON.stringify({ new_name: 'b', from_name: 'main', commit_id: c.commits[0], paths: [c.stagedPath], message: 'm', name: AUTHOR.name, email: AUTHOR.email, size: 10 });
  switch (rng.int(16)) {
    case 0:
    case 1: {
      const n = rng.pick([1, 7, 100, 4096, 65536]);
      return { body: Buffer.concat([Buffer.from([0xff]), rng.bytes(n)]), headers: withType(ct), mustFail: 'json', note: `${n + 1} random bytes` };
    }
    case 2: {
      const cut = rng.range(1, sample.length - 1);
      return { body: Buffer.from(sample.slice(0, cut)), headers: withType(jsonCt), mustFail: 'json', note: `JSON truncated at ${cut}` };
    }
    case 3:
      return { body: Buffer.from('['.repeat(10_000)), headers: withType(jsonCt), mustFail: 'json', note: '10,000 unclosed [' };
    case 4: {
      const depth = rng.pick([10_000, 100_000]);
      return { body: Buffer.from(deepArray(depth)), headers: withType(jsonCt), note: `arrays ${depth} deep` };
    }
    case 5:
      return { body: Buffer.from('{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000)), headers: withType(jsonCt), note: 'objects 10,000 deep' };
    case 6: {
      const deep = deepValue(10_000);
      const fields = Object.fromEntries(['new_name', 'from_name', 'commit_id', 'paths', 'hashes', 'size', 'new_path', 'namespace', 'workspace_id', 'branch_name', 'message', 'name', 'email', 'files', 'hash', 'destination', 'scopes'].map((f) => [f, deep]));
      return { body: Buffer.from(toJson(fields)), headers: withType(jsonCt), note: 'every field 10,000 arrays deep' };
    }
    case 7:
      return { body: Buffer.from(JSON.stringify({ new_name: HUGE_STRING, message: 'x', paths: [HUGE_STRING.slice(0, 1000)] })), headers: withType(jsonCt), note: '900 KiB JSON' };
    case 8:
      return { body: Buffer.from(JSON.stringify({ hashes: Array.from({ length: 200_000 }, (_, i) => i.toString(16)) })), headers: withType(jsonCt), note: '200,000 hashes (2 MB)' };
    case 9:
      return { body: Buffer.from(rng.pick(['null', '0', '""', '[]', 'true', '"x"', '{}', '-1', '1e999', '[null]', '[{}]'])), headers: withType(jsonCt), note: 'a JSON scalar or empty container' };
    case 10:
      return { body: Buffer.from('{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}},"new_name":"p","paths":["__proto__"]}'), headers: withType(jsonCt), note: '__proto__ keys' };
    case 11:
      return { body: Buffer.concat([Buffer.from('{"new_name":"'), Buffer.from([0xc3, 0x28, 0xed, 0xa0, 0x80, 0xff]), Buffer.from('","paths":["a"]}')]), headers: withType(jsonCt), note: 'invalid UTF-8 in a string' };
    case 12:
      return { body: Buffer.from(rng.pick(['{"a":1,}', '{a:1}', "{'a':1}", '{"a":NaN}', '{"a":Infinity}', '// c\n{}', '{"a":1}{"b":2}', '{"a":1]', '\u0000{}', '{"a":"\u0000'])), headers: withType(jsonCt), mustFail: 'json', note: 'not quite JSON' };
    case 13:
      return { body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(sample)]), headers: withType(jsonCt), mustFail: 'json', note: 'JSON after a BOM' };
    case 14:
      return { body: Buffer.from(sample, 'utf16le'), headers: withType(rng.pick(['application/json; charset=utf-16', 'application/json'])), mustFail: 'json', note: 'UTF-16 JSON' };
    default:
      return { body: Buffer.alloc(0), headers: withType(jsonCt), note: 'empty body' };
  }
}

// ---- multipart ----------------------------------------------------------------------------------

interface Part {
  name?: string;
  filename?: string;
  contentType?: string;
  extraHeaders?: string[];
  content: Buffer | string;
}

function multipartBody(parts: Part[], boundary: string, eol = '\r\n'): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    let head = `--${boundary}${eol}`;
    if (p.name !== undefined || p.filename !== undefined) {
      head += `Content-Disposition: form-data${p.name !== undefined ? `; name="${p.name}"` : ''}${p.filename !== undefined ? `; filename="${p.filename}"` : ''}${eol}`;
    }
    if (p.contentType) head += `Content-Type: ${p.contentType}${eol}`;
    for (const h of p.extraHeaders ?? []) head += `${h}${eol}`;
    chunks.push(Buffer.from(head + eol, 'latin1'), Buffer.isBuffer(p.content) ? p.content : Buffer.from(p.content), Buffer.from(eol));
  }
  chunks.push(Buffer.from(`--${boundary}--${eol}`));
  return Buffer.concat(chunks);
}

const TRAVERSAL_FILENAMES = ['../../etc/passwd', '/etc/passwd', 'a/../../b.txt', '..\\..\\x.txt', '..', '.', '', 'a\u0000b.txt', '%2e%2e/x.txt', 'data//x.txt', 'C:\\Windows\\win.ini', 'a/./../../../x'];

/** Parts a multipart route would accept, for the route's kind of upload. */
function goodParts(kind: 'file' | 'versions' | 'workspace' | 'repo' | 'fields', rng: Rng): Part[] {
  const content = Buffer.from(`fuzz ${rng.word(8)}\n`);
  switch (kind) {
    case 'file':
      return [{ name: 'name', content: AUTHOR.name }, { name: 'email', content: AUTHOR.email }, { name: 'message', content: 'fuzz' }, { name: 'files[]', filename: `f/${rng.word(6)}.txt`, content }];
    case 'versions':
      return [{ name: 'file', filename: hashBuffer(content), content }];
    case 'workspace':
      return [{ name: 'file', filename: `up/${rng.word(6)}.txt`, content }];
    case 'repo':
      return [{ name: 'new_repo', content: JSON.stringify({ namespace: 'fuzz-new', name: `r${rng.word(8)}` }) }, { name: 'name', content: AUTHOR.name }, { name: 'email', content: AUTHOR.email }, { name: 'file', filename: 'x.txt', content }];
    default:
      return [{ name: 'message', content: 'fuzz' }];
  }
}

function multipartKind(route: Route): 'file' | 'versions' | 'workspace' | 'repo' | 'fields' {
  if (route.key === K('PUT', '/file/{*}')) return 'file';
  if (route.key === K('POST', '/versions')) return 'versions';
  if (route.key === K('POST', '/workspaces/{workspace_id}/files/{*}')) return 'workspace';
  if (route.key === 'POST /api/repos') return 'repo';
  return 'fields';
}

/** One broken (or merely odd) multipart body for `route`. */
function brokenMultipart(route: Route, rng: Rng, variant: number): Body {
  const kind = multipartKind(route);
  const boundary = `----fuzz${rng.word(16)}`;
  const ct = (b = boundary) => ({ 'content-type': `multipart/form-data; boundary=${b}` });
  const good = goodParts(kind, rng);
  const fileName = kind === 'versions' ? undefined : kind === 'file' ? 'files[]' : 'file';
  switch (variant % 20) {
    case 0:
      return { body: multipartBody(good, boundary), headers: { 'content-type': 'multipart/form-data' }, mustFail: 'multipart', note: 'no boundary' };
    case 1: {
      const full = multipartBody(good, boundary);
      const cut = rng.range(1, full.length - boundary.length - 8);
      return { body: full.subarray(0, cut), headers: ct(), mustFail: 'multipart', note: `truncated at ${cut} of ${full.length}` };
    }
    case 2:
      return { body: multipartBody(good, boundary), headers: ct(`other${rng.word(8)}`), note: 'boundary mismatch' };
    case 3:
      return { body: multipartBody(good.map((p, i) => (i === good.length - 1 ? { ...p, extraHeaders: [`X-Huge: ${'h'.repeat(rng.pick([20_000, 100_000, 500_000]))}`] } : p)), boundary), headers: ct(), note: 'a part with a huge header' };
    case 4:
      return { body: multipartBody([...good, ...Array.from({ length: rng.pick([1100, 3000]) }, (_, i) => ({ name: `f${i}`, content: 'v' }))], boundary), headers: ct(), note: 'thousands of fields' };
    case 5: {
      const content = Buffer.from('same bytes\n');
      const many = Array.from({ length: 300 }, (_, i) => ({ name: fileName ?? 'file', filename: kind === 'versions' ? hashBuffer(content) : `many/${i}.txt`, content }));
      return { body: multipartBody([...good.filter((p) => p.filename === undefined), ...many], boundary), headers: ct(), note: '300 file parts' };
    }
    case 6:
      return { body: multipartBody([...good.filter((p) => p.filename === undefined), { name: fileName ?? 'file', filename: '', content: 'no name' }], boundary), headers: ct(), note: 'empty filename' };
    case 7:
    case 8: {
      const filename = rng.pick(TRAVERSAL_FILENAMES);
      return { body: multipartBody([...good.filter((p) => p.filename === undefined), { name: fileName ?? 'file', filename, content: 'escape' }], boundary), headers: ct(), note: `filename ${JSON.stringify(filename)}` };
    }
    case 9:
      return { body: multipartBody([{ content: 'no disposition' }, ...good], boundary), headers: ct(), note: 'a part without Content-Disposition' };
    case 10:
      return { body: multipartBody(good, boundary, '\n'), headers: ct(), note: 'LF line endings' };
    case 11:
      return { body: Buffer.concat([Buffer.from('preamble junk\r\n'), multipartBody(good, boundary), Buffer.from('epilogue junk')]), headers: ct(), note: 'preamble and epilogue' };
    case 12:
      return { body: multipartBody(good, boundary), headers: { 'content-type': `multipart/form-data; boundary="${boundary}` }, note: 'unterminated quoted boundary' };
    case 13: {
      const long = 'b'.repeat(rng.pick([71, 1000, 10_000]));
      return { body: multipartBody(good, long), headers: ct(long), note: `boundary of ${long.length} characters` };
    }
    case 14:
      return { body: multipartBody(good.map((p) => (p.filename !== undefined ? { ...p, contentType: 'application/gzip', content: rng.bytes(64) } : p)), boundary), headers: ct(), note: 'gzip part that is not gzip' };
    case 15:
      return { body: multipartBody([...good.filter((p) => p.filename !== undefined), { name: 'name', content: 'n'.repeat(2 * 1024 * 1024) }, { name: 'email', content: AUTHOR.email }], boundary), headers: ct(), note: 'a 2 MiB field' };
    case 16: {
      const inner = `inner${rng.word(8)}`;
      const nested = multipartBody([{ name: fileName ?? 'file', filename: 'n.txt', content: 'nested' }], inner);
      return { body: multipartBody([...good.filter((p) => p.filename === undefined), { name: fileName ?? 'file', filename: 'outer.txt', contentType: `multipart/mixed; boundary=${inner}`, content: nested }], boundary), headers: ct(), note: 'nested multipart' };
    }
    case 17:
      return { body: multipartBody(good.map((p) => ({ ...p, extraHeaders: ['Content-Transfer-Encoding: base64', "Content-Disposition: form-data; name*=UTF-8''%zz%c0%af"] })), boundary), headers: ct(), note: 'odd part headers' };
    case 18:
      return { body: Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\nno blank line follows and the part never ends`), headers: ct(), mustFail: 'multipart', note: 'part headers without an end' };
    default: {
      const big = Buffer.alloc(MAX_FILE_BYTES + 1, 0x61);
      return { body: multipartBody([...good.filter((p) => p.filename === undefined), { name: fileName ?? 'file', filename: kind === 'versions' ? hashBuffer(big) : 'big.bin', content: big }], boundary), headers: ct(), note: 'a file part over the size limit' };
    }
  }
}

// ---- JSON bodies with the wrong types -----------------------------------------------------------

function jsonFields(c: RepoCtx, rng: Rng): Record<string, Record<string, unknown>> {
  const hash = c.blobHashes[0];
  return {
    'POST /api/repos': { namespace: 'fuzz-new', name: `r${rng.word(8)}`, description: 'd', user: { ...AUTHOR }, files: [{ path: 'x.txt', contents: 'x', user: { ...AUTHOR } }] },
    'POST /api/tokens': { name: 'fuzz', email: AUTHOR.email, scopes: ['read'], expires: '30d' },
    [K('PATCH', '/transfer')]: { namespace: `moved${rng.word(6)}` },
    [K('POST', '/branches')]: { new_name: `b-${rng.word(8)}`, from_name: 'main', commit_id: c.commits[0] },
    [K('PUT', '/branches/{*}')]: { commit_id: c.commits[0], force: true, client_commit_id: c.commits[1], server_commit_id: c.commits[0] },
    [K('PATCH', '/file/{*}')]: { new_path: `moved/${rng.word(6)}.txt`, message: 'm', name: AUTHOR.name, email: AUTHOR.email },
    [K('DELETE', '/file/{*}')]: { message: 'm', name: AUTHOR.name, email: AUTHOR.email },
    [K('POST', '/merge/{*}')]: { name: AUTHOR.name, email: AUTHOR.email },
    [K('POST', '/versions/uploads')]: { hash, size: 10, destination: { workspace_id: c.workspaceId, path: `up/${rng.word(6)}.bin` } },
    [K('POST', '/versions/{hash}/create')]: { size: 100, file_name: 'f.bin', dst_dir: 'd' },
    [K('POST', '/versions/{hash}/complete')]: { files: [{ hash, file_name: 'f.bin', dst_dir: 'd' }], workspace_id: c.workspaceId },
    [K('POST', '/versions/missing')]: { hashes: c.blobHashes },
    [K('POST', '/commits/missing')]: { hashes: c.commits },
    [K('POST', '/tree/nodes/missing_node_hashes')]: { hashes: c.commits },
    [K('PUT', '/workspaces')]: { workspace_id: `w-${rng.word(8)}`, branch_name: 'main', name: `n${rng.word(8)}` },
    [K('POST', '/workspaces')]: { workspace_id: `w-${rng.word(8)}`, branch_name: 'main', name: `n${rng.word(8)}` },
    [K('PUT', '/workspaces/get_or_create')]: { workspace_id: `w-${rng.word(8)}`, branch_name: 'dev' },
    [K('POST', '/workspaces/{workspace_id}/validate')]: { size: 10 },
    [K('PATCH', '/workspaces/{workspace_id}/files/{*}')]: { new_path: `moved/${rng.word(6)}.txt` },
    [K('DELETE', '/workspaces/{workspace_id}/files')]: { paths: [c.stagedPath] },
    [K('DELETE', '/workspaces/{workspace_id}/changes')]: { paths: [c.stagedPath] },
    [K('DELETE', '/workspaces/{workspace_id}/staged')]: { paths: [c.stagedPath] },
    [K('POST', '/workspaces/{workspace_id}/commit/{*}')]: { message: 'm', author: AUTHOR.name, email: AUTHOR.email },
    [K('POST', '/workspaces/{workspace_id}/merge/{*}')]: { message: 'm', author: AUTHOR.name, email: AUTHOR.email },
  };
}

/** Every field path of a JSON body: `user.name`, `files.0.path`, `destination`. */
function fieldPaths(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object') return [prefix];
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
  return [...(prefix ? [prefix] : []), ...entries.flatMap(([k, v]) => fieldPaths(v, prefix ? `${prefix}.${k}` : k))];
}

function setField(target: any, path: string, value: unknown): any {
  const copy = structuredClone(target);
  const keys = path.split('.');
  let at = copy;
  for (const k of keys.slice(0, -1)) at = at[k];
  at[keys[keys.length - 1]] = value;
  return copy;
}

const WRONG_TYPES: Array<[string, () => unknown]> = [
  ['null', () => null], ['true', () => true], ['0', () => 0], ['-1', () => -1], ['1.5', () => 1.5], ['1e308', () => 1e308],
  ['2^53+1', () => 9007199254740993], ['""', () => ''], ['" "', () => ' '], ['"x"', () => 'x'], ['"../../etc/passwd"', () => '../../etc/passwd'],
  ['"\\u0000"', () => '\u0000'], ['[]', () => []], ['[1]', () => [1]], ['["a"]', () => ['a']], ['[null]', () => [null]], ['{}', () => ({})],
  ['{"a":1}', () => ({ a: 1 })], ['{"toString":1}', () => ({ toString: 1 })], ['{"toString":1,"valueOf":1}', () => ({ toString: 1, valueOf: 1 })],
  ['arrays 10,000 deep', () => deepValue(10_000)], ['300 KiB string', () => 's'.repeat(300 * 1024)], ['"-1"', () => '-1'], ['"1e3"', () => '1e3'],
  ['{"__proto__":{"x":1}}', () => JSON.parse('{"__proto__":{"x":1}}')],
];

// ---- gzip bombs and archives --------------------------------------------------------------------

/** A minimal ustar archive with the given members. */
function tarball(members: Array<{ name: string; content: Buffer }>): Buffer {
  const blocks: Buffer[] = [];
  for (const m of members) {
    const h = Buffer.alloc(512);
    h.write(m.name.slice(0, 100), 0, 'latin1');
    h.write('0000644\0', 100, 'latin1');
    h.write('0000000\0', 108, 'latin1');
    h.write('0000000\0', 116, 'latin1');
    h.write(`${m.content.length.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
    h.write('00000000000\0', 136, 'latin1');
    h.write('        ', 148, 'latin1');
    h.write('0', 156, 'latin1');
    h.write('ustar\0' + '00', 257, 'latin1');
    let sum = 0;
    for (const byte of h) sum += byte;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    blocks.push(h, m.content, Buffer.alloc((512 - (m.content.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

// ---- the test -----------------------------------------------------------------------------------

describe(`fuzz: malformed requests at every route (seed ${SEED}, issue 11)`, {
  // Request parsing is the same whatever the stores; 8,300 requests again would cost ~45 s of CI time.
  skip: blobsInS3 ? 'refusing malformed requests works the same on every store; the first pass runs them' : undefined,
}, () => {
  let server: TestServer;
  let run: Run;
  let routes: Route[];
  let repos: Repos;
  let before_: Awaited<ReturnType<typeof snapshot>>;
  const started = Date.now();

  before(async () => {
    server = await startTestServer({ maxDecompressedBytes: MAX_DECOMPRESSED, maxFileBytes: MAX_FILE_BYTES });
    run = new Run(server);
    routes = await listRoutes(server);
    repos = {
      keep: await setUpRepo(server, 'fuzz', 'keep'),
      play: await setUpRepo(server, 'fuzz', 'play'),
      victim: await setUpRepo(server, 'fuzz', 'victim'),
    };
    before_ = await snapshot(server, repos.keep);
  });

  after(async () => {
    run?.client.close();
    await server?.stop();
    const total = [...(run?.counts.values() ?? [])].reduce((a, b) => a + b, 0);
    console.log(`fuzz: ${total} requests at ${routes?.length} routes in ${((Date.now() - started) / 1000).toFixed(1)} s (seed ${SEED}): ${[...(run?.counts ?? [])].map(([k, v]) => `${k} ${v}`).join(', ')}; ${run?.keepWrites.length} writes to fuzz/keep answered 2xx (none may change it)`);
  });

  it('reads every route from the server', () => {
    assert.ok(routes.length >= 80, `only ${routes.length} routes`);
    // The tables below name routes by their templates: each must still exist.
    const keys = new Set(routes.map((r) => r.key));
    for (const key of [...HARMLESS_WRITES, ...Object.keys(BODY_FIRST), ...DESTRUCTIVE, ...Object.keys(jsonFields(repos.play, new Rng(1)))]) {
      assert.ok(keys.has(key), `route ${key} is gone: update the fuzz tables`);
    }
  });

  it('random fills of every route, with random bodies', async () => {
    const rng = streamFor('routes');
    const requests: FuzzRequest[] = [];
    for (const route of routes) {
      for (let i = 0; i < 8; i++) {
        const fills = chooseFills(route, rng);
        const body = READ_METHODS.has(route.method) && rng.chance(0.7) ? { headers: {}, note: 'no body' } as Body : randomBody(rng, repos.play);
        const { repo, keepWrite } = targetFor(route, route.method, fills, body.mustFail, repos, rng);
        const { path } = fillRoute(route, fills, repo, rng);
        requests.push({ category: 'routes', method: route.method, path, headers: body.headers, body: body.body, keepWrite, note: `${route.key}; ${body.note}` });
      }
    }
    await run.batch(requests);
    run.assertClean('routes');
  });

  it('random, truncated, deeply nested and huge bodies at every route that takes one', async () => {
    const rng = streamFor('bodies');
    const requests: FuzzRequest[] = [];
    const writes = routes.filter((r) => !['GET', 'HEAD'].includes(r.method));
    for (const route of writes) {
      for (let i = 0; i < 10; i++) {
        const body = randomBody(rng, repos.play);
        const fills = chooseFills(route, rng, { real: 0.9, hostile: 0.05 });
        const { repo, keepWrite } = targetFor(route, route.method, fills, body.mustFail, repos, rng);
        const { path } = fillRoute(route, fills, repo, rng);
        requests.push({ category: 'bodies', method: route.method, path, headers: body.headers, body: body.body, keepWrite, note: `${route.key}; ${body.note}` });
      }
    }
    await run.batch(requests);
    run.assertClean('bodies');
  });

  it('broken multipart bodies', async () => {
    const rng = streamFor('multipart');
    const requests: FuzzRequest[] = [];
    const multipartRoutes = routes.filter((r) => multipartKind(r) !== 'fields' || r.key === K('DELETE', '/file/{*}'));
    const jsonRoutes = routes.filter((r) => !['GET', 'HEAD'].includes(r.method) && !multipartRoutes.includes(r));
    let variant = 0;
    for (const route of multipartRoutes) {
      for (let i = 0; i < 40; i++) {
        const body = brokenMultipart(route, rng, variant++);
        const fills = chooseFills(route, rng, { real: 0.9, hostile: 0.05 });
        const { repo, keepWrite } = targetFor(route, route.method, fills, body.mustFail, repos, rng);
        const { path } = fillRoute(route, fills, repo, rng);
        requests.push({ category: 'multipart', method: route.method, path, headers: body.headers, body: body.body, keepWrite, note: `${route.key}; ${body.note}` });
      }
    }
    // Multipart where JSON or raw bytes are expected.
    for (const route of jsonRoutes) {
      for (let i = 0; i < 2; i++) {
        const body = brokenMultipart(route, rng, rng.int(19));
        const fills = chooseFills(route, rng, { real: 0.9, hostile: 0.05 });
        const { repo, keepWrite } = targetFor(route, route.method, fills, body.mustFail, repos, rng);
        const { path } = fillRoute(route, fills, repo, rng);
        requests.push({ category: 'multipart', method: route.method, path, headers: body.headers, body: body.body, keepWrite, note: `${route.key}; ${body.note}` });
      }
    }
    await run.batch(requests);
    run.assertClean('multipart');
  });

  it('bad percent-encoding in every path segment of every route', async () => {
    const rng = streamFor('percent');
    const requests: FuzzRequest[] = [];
    const templates = [...new Map(routes.map((r) => [r.template, r])).values()];
    for (const route of templates) {
      const methods = routes.filter((r) => r.template === route.template).map((r) => r.method);
      const { path } = fillRoute(route, chooseFills(route, rng, { real: 1, hostile: 0 }), repos.keep, rng);
      const segments = path.split('/');
      for (let s = 1; s < segments.length; s++) {
        for (const bad of [...BAD_ENCODINGS.slice(0, 3), rng.pick(BAD_ENCODINGS.slice(3))]) {
          const copy = [...segments];
          copy[s] = rng.pick([bad, `${copy[s]}${bad}`, `${bad}${copy[s]}`]);
          const method = rng.pick(methods);
          // A path that cannot be decoded names nothing: writes go to the snapshotted repository too.
          const joined = copy.join('/');
          const target = READ_METHODS.has(method) || rng.chance(0.5) ? joined : joined.replace(/\/fuzz\/keep(\/|$)/, '/fuzz/play$1');
          requests.push({ category: 'percent', method, path: target, keepWrite: !READ_METHODS.has(method) && /\/fuzz\/keep(\/|$)/.test(target), note: `${route.template}, segment ${s}: ${bad}` });
        }
      }
      // And in the query string.
      requests.push({ category: 'percent', method: 'GET', path: `${path}?page=${rng.pick(BAD_ENCODINGS)}&${rng.pick(BAD_ENCODINGS)}=1`, note: 'query' });
    }
    await run.batch(requests);
    run.assertClean('percent');
  });

  it('path traversal in every path parameter', async () => {
    const rng = streamFor('traversal');
    const requests: FuzzRequest[] = [];
    for (const route of routes) {
      for (const param of route.params) {
        // Each kind of traversal, and one more from the wider list.
        for (const [kind, alone, tail] of [...TRAVERSALS, ['other', '', ''] as const]) {
          const fills: Record<string, Fill> = Object.fromEntries(route.params.map((p) => [p, p === param ? 'hostile' : 'real']));
          const body = route.method === 'GET' || route.method === 'HEAD' ? ({ headers: {}, note: '' } as Body) : randomBody(rng, repos.keep);
          const { repo, keepWrite } = targetFor(route, route.method, fills, body.mustFail, repos, rng);
          const value = kind === 'other' ? hostileValue(param, repo, rng) : param === '*' && rng.chance(0.5) ? `${rng.pick(revisions(repo))}/${tail}` : alone;
          const { path } = fillRoute(route, fills, repo, rng, { [param]: value });
          requests.push({ category: 'traversal', method: route.method, path, headers: body.headers, body: body.body, keepWrite, note: `${route.key}: ${param} ${kind}` });
        }
      }
    }
    // The same through the raw request line: NUL, backslashes, control characters, bytes over 0x7f.
    for (const route of routes.filter((r) => r.method === 'GET' && r.params.includes('*'))) {
      const { path } = fillRoute(route, Object.fromEntries(route.params.map((p) => [p, 'real'])) as Record<string, Fill>, repos.keep, rng);
      for (const tail of ['/../../etc/passwd', '/a\u0000b', '\\..\\..\\x', '/\u00ff\u00fe', '/a\tb', '/%2e%2e\u0000']) {
        requests.push({ category: 'traversal', method: 'GET', path: path + tail, raw: Buffer.from(`GET ${path}${tail} HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n`, 'latin1'), note: 'raw request line' });
      }
    }
    await run.batch(requests);
    run.assertClean('traversal');
  });

  it('odd and lowercase methods on every path', async () => {
    const rng = streamFor('methods');
    const requests: FuzzRequest[] = [];
    const odd = ['PROPFIND', 'QUERY', 'TRACE', 'OPTIONS', 'CONNECT', 'get', 'post', 'delete', 'Get', 'hEaD', 'MKCOL', 'FOO', 'SEARCH', 'PURGE', 'LINK', 'M-SEARCH', 'LOCK', 'REPORT', 'SOURCE', 'BREW', 'PRI', 'ACL'];
    const templates = [...new Set(routes.map((r) => r.template))];
    let n = 0;
    for (const template of templates) {
      const route = routes.find((r) => r.template === template)!;
      const { path } = fillRoute(route, Object.fromEntries(route.params.map((p) => [p, 'real'])) as Record<string, Fill>, repos.keep, rng);
      for (let i = 0; i < 8; i++) {
        const method = odd[n++ % odd.length];
        const body = rng.chance(0.3) ? '{"a":1}' : '';
        const head = `${method} ${path} HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n${body ? `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n` : ''}\r\n${body}`;
        requests.push({ category: 'methods', method, path, raw: Buffer.from(head, 'latin1') });
      }
    }
    await run.batch(requests);
    run.assertClean('methods');
  });

  it('huge, duplicated and malformed headers', async () => {
    const rng = streamFor('headers');
    const requests: FuzzRequest[] = [];
    const gets = routes.filter((r) => r.method === 'GET');
    const fileGet = routes.find((r) => r.key === K('GET', '/file/{*}'))!;
    const variants: Array<(path: string) => [string, string]> = [
      (p) => ['huge header', `GET ${p} HTTP/1.1\r\nHost: fuzz\r\nX-Fuzz: ${'a'.repeat(rng.pick([8_000, 15_000, 17_000, 64_000, 300_000]))}\r\n\r\n`],
      (p) => ['thousands of headers', `GET ${p} HTTP/1.1\r\nHost: fuzz\r\n${Array.from({ length: rng.pick([500, 2100, 5000]) }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`],
      (p) => ['huge cookie', `GET ${p} HTTP/1.1\r\nHost: fuzz\r\nCookie: ${'c=1; '.repeat(3000)}\r\n\r\n`],
      (p) => ['bad Content-Length', `POST ${p} HTTP/1.1\r\nHost: fuzz\r\nContent-Length: ${rng.pick(['abc', '-1', '1e3', '99999999999999999999', ' 2', '0x10', '1,1', '2 2', '+2'])}\r\n\r\n{}`],
      (p) => ['two Content-Lengths', `POST ${p} HTTP/1.1\r\nHost: fuzz\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}`],
      (p) => ['Content-Length and chunked', `POST ${p} HTTP/1.1\r\nHost: fuzz\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
      (p) => ['bad chunk size', `POST ${p} HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\n\r\n${rng.pick(['zz', '-1', 'fffffffffffffffff', '1;' + 'x'.repeat(10_000)])}\r\nab\r\n0\r\n\r\n`],
      (p) => ['odd Transfer-Encoding', `POST ${p} HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: ${rng.pick(['gzip, chunked', 'chunked, gzip', 'identity', 'foo'])}\r\n\r\n2\r\n{}\r\n0\r\n\r\n`],
      (p) => ['gzip Content-Encoding', `POST ${p} HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\nContent-Encoding: ${rng.pick(['gzip', 'br', 'deflate', 'x-fuzz'])}\r\nContent-Length: 20\r\n\r\n${gzipSync('{"a":1}').toString('latin1').slice(0, 20).padEnd(20, 'x')}`],
      (p) => ['odd Content-Type', `POST ${p} HTTP/1.1\r\nHost: fuzz\r\nContent-Type: ${rng.pick(['multipart/form-data; boundary=' + 'z'.repeat(10_000), ';;;', 'application/json, text/plain', 'application/json; charset=latin1', '*/*', 'multipart/mixed; boundary=x', 'application/gzip', 'text/plain; charset=utf-16'])}\r\nContent-Length: 7\r\n\r\n{"a":1}`],
      (p) => ['bad Expect', `GET ${p} HTTP/1.1\r\nHost: fuzz\r\nExpect: ${rng.pick(['foo', '200-ok', '100-continue-please'])}\r\n\r\n`],
      (p) => ['Expect 100-continue', `POST ${p} HTTP/1.1\r\nHost: fuzz\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}`],
      (p) => ['Upgrade', `GET ${p} HTTP/1.1\r\nHost: fuzz\r\nConnection: Upgrade\r\nUpgrade: ${rng.pick(['websocket', 'h2c', 'foo'])}\r\n\r\n`],
      (p) => ['old Oxen client', `GET ${p} HTTP/1.1\r\nHost: fuzz\r\nUser-Agent: ${rng.pick(['Oxen/0.0.1', 'oxen', 'Oxen/99999999999999999999.0.0', 'Oxen/a.b.c', 'OXEN/', 'Oxen/' + '9'.repeat(5000)])}\r\n\r\n`],
      (p) => ['odd Host', `GET ${p} HTTP/1.1\r\n${rng.pick(['', 'Host: a\r\nHost: b\r\n', `Host: ${'h'.repeat(10_000)}\r\n`, 'Host: [::1\r\n', 'Host:\r\n'])}\r\n`],
      (p) => ['odd request id', `GET ${p} HTTP/1.1\r\nHost: fuzz\r\nX-Oxen-Request-Id: ${rng.pick(['a'.repeat(10_000), 'a b', '../../x', '\u00ff'])}\r\n\r\n`],
      (p) => ['odd protocol', `GET ${p} ${rng.pick(['HTTP/1.0', 'HTTP/0.9', 'HTTP/9.9', 'http/1.1', 'HTTP/1.1 extra', 'HTTP/1'])}\r\nHost: fuzz\r\n\r\n`],
      (p) => ['odd request line', rng.pick([`GET  ${p}  HTTP/1.1\r\nHost: fuzz\r\n\r\n`, `GET http://evil.example${p} HTTP/1.1\r\nHost: fuzz\r\n\r\n`, `GET ${p.slice(1)} HTTP/1.1\r\nHost: fuzz\r\n\r\n`, `GET ${p}${'x'.repeat(100_000)} HTTP/1.1\r\nHost: fuzz\r\n\r\n`, 'GET * HTTP/1.1\r\nHost: fuzz\r\n\r\n', `\r\n\r\nGET ${p} HTTP/1.1\r\nHost: fuzz\r\n\r\n`, `GET ${p}\r\n\r\n`])],
      (p) => ['folded or broken header lines', `GET ${p} HTTP/1.1\r\nHost: fuzz\r\n${rng.pick(['X-A: 1\r\n  folded\r\n', 'NoColon\r\n', 'X B: 1\r\n', ': empty\r\n', 'X-Nul: a\u0000b\r\n', 'X-A: 1\n'])}\r\n`],
      (p) => ['bare LF', `GET ${p} HTTP/1.1\nHost: fuzz\n\n`],
      (p) => ['garbage Authorization', `GET ${p} HTTP/1.1\r\nHost: fuzz\r\nAuthorization: ${rng.pick(['Bearer', 'Bearer ' + 'x'.repeat(8000), 'Basic %%%', 'yoke_abc'])}\r\n\r\n`],
    ];
    const rangeValues = ['bytes=99999999999999999999-', 'bytes=-0', 'bytes=5-1', 'bytes=a-b', `bytes=${Array.from({ length: 1000 }, (_, i) => `${i}-${i}`).join(',')}`, 'items=0-1', 'bytes=-99999999999999999999', 'bytes=1.5-2', 'bytes=0-0,-1', 'bytes==0-1', 'bytes=9007199254740993-'];
    for (let i = 0; i < 260; i++) {
      const route = rng.pick(gets);
      const { path } = fillRoute(route, Object.fromEntries(route.params.map((p) => [p, 'real'])) as Record<string, Fill>, rng.chance(0.5) ? repos.keep : repos.play, rng);
      const [what, text] = variants[i % variants.length](path);
      // POSTs here carry nothing a write could use; they go to the play repository all the same.
      const raw = text.startsWith('POST') ? text.replace('/fuzz/keep/', '/fuzz/play/') : text;
      requests.push({ category: 'headers', method: raw.split(' ')[0], path, raw: Buffer.from(raw, 'latin1'), note: what });
    }
    for (const value of rangeValues) {
      const { path } = fillRoute(fileGet, { namespace: 'real', repo_name: 'real', '*': 'real' }, repos.keep, rng);
      requests.push({ category: 'headers', method: 'GET', path, headers: { range: value }, note: `Range ${value.slice(0, 40)}` });
    }
    await run.batch(requests);
    run.assertClean('headers');
  });

  it('negative, non-numeric and huge query parameters', async () => {
    const rng = streamFor('query');
    const requests: FuzzRequest[] = [];
    const keys = ['page', 'page_size', 'chunk_num', 'total_chunks', 'total_size', 'offset', 'chunk_start', 'chunk_size', 'depth', 'sort_by', 'reverse', 'is_compressed', 'hash', 'filename', 'subtrees', 'is_download', 'head', 'base', 'name'];
    const values = ['-1', '-0', '0', '1.5', '1e3', '1e309', 'NaN', 'Infinity', '-Infinity', 'abc', '', '0x10', '9007199254740993', '99999999999999999999999', '%201', '1%20', '%00', '%5B%5D', '%7B%7D', 'true', 'a'.repeat(5000), '%E0%A5%A7%E0%A5%A8', '%2B1', '--1', '1,2', '-9007199254740993', '1e-7', '..%2F..%2Fetc', '%2Fetc%2Fpasswd'];
    const targets = routes.filter((r) => r.method === 'GET' || r.key === K('POST', '/commits/upload_chunk') || r.key === K('PUT', '/versions/{hash}/chunks'));
    for (const route of targets) {
      for (let i = 0; i < 9; i++) {
        const parts: string[] = [];
        const n = rng.range(1, 4);
        for (let j = 0; j < n; j++) parts.push(`${rng.pick(keys)}=${rng.pick(values)}`);
        if (rng.chance(0.2)) parts.push(rng.pick(['page=1&page=2', 'page', '=1', '&&&', 'page[]=1', '__proto__=1', 'constructor=x&hasOwnProperty=1', 'page_size[a]=2']));
        const write = !READ_METHODS.has(route.method);
        const { path } = fillRoute(route, Object.fromEntries(route.params.map((p) => [p, rng.chance(0.85) ? 'real' : 'garbage'])) as Record<string, Fill>, write ? repos.play : rng.chance(0.5) ? repos.keep : repos.play, rng);
        requests.push({ category: 'query', method: route.method, path: `${path}?${parts.join('&')}`, body: write ? Buffer.from('0123456789') : undefined, headers: write ? { 'content-type': 'application/octet-stream' } : {}, note: route.key });
      }
    }
    // A query string longer than the server takes.
    requests.push({ category: 'query', method: 'GET', path: `/api/repos/fuzz/keep/commits/all?page=${'1'.repeat(70_000)}`, note: 'a 70 kB query' });
    await run.batch(requests);
    run.assertClean('query');
  });

  it('the wrong JSON type in every field of every JSON body', async () => {
    const rng = streamFor('json-types');
    const requests: FuzzRequest[] = [];
    const byKey = new Map(routes.map((r) => [r.key, r]));
    for (const [key, template] of Object.entries(jsonFields(repos.play, rng))) {
      const route = byKey.get(key)!;
      for (const field of fieldPaths(template)) {
        for (let i = 0; i < 5; i++) {
          const [what, value] = rng.pick(WRONG_TYPES);
          const fills: Record<string, Fill> = Object.fromEntries(route.params.map((p) => [p, 'real']));
          const { repo } = targetFor(route, route.method, fills, undefined, repos, rng);
          const body = setField(jsonFields(repo, rng)[key], field, value());
          const { path } = fillRoute(route, fills, repo, rng);
          requests.push({ category: 'json-types', method: route.method, path, headers: { 'content-type': rng.pick(['application/json', 'text/plain']) }, body: Buffer.from(toJson(body)), note: `${key}: ${field} = ${what}` });
        }
      }
      for (const whole of ['[]', '"x"', '1', 'null', 'true', '[{}]']) {
        const fills: Record<string, Fill> = Object.fromEntries(route.params.map((p) => [p, 'real']));
        const { repo } = targetFor(route, route.method, fills, undefined, repos, rng);
        requests.push({ category: 'json-types', method: route.method, path: fillRoute(route, fills, repo, rng).path, headers: { 'content-type': 'application/json' }, body: Buffer.from(whole), note: `${key}: body ${whole}` });
      }
    }
    // Fields of multipart forms that carry JSON.
    for (const [what, value] of WRONG_TYPES) {
      const form = multipartBody([{ name: 'new_repo', content: toJson(value()) }], 'fz');
      requests.push({ category: 'json-types', method: 'POST', path: '/api/repos', headers: { 'content-type': 'multipart/form-data; boundary=fz' }, body: form, note: `new_repo = ${what}` });
      const inner = multipartBody([{ name: 'new_repo', content: toJson({ namespace: value(), name: value() }) }], 'fz');
      requests.push({ category: 'json-types', method: 'POST', path: '/api/repos', headers: { 'content-type': 'multipart/form-data; boundary=fz' }, body: inner, note: `new_repo.namespace = ${what}` });
    }
    await run.batch(requests);
    run.assertClean('json-types');
  });

  it('gzip bombs and broken archives', async () => {
    const rng = streamFor('gzip');
    const requests: FuzzRequest[] = [];
    const zeros = Buffer.alloc(4 * 1024 * 1024);
    const bomb = gzipSync(zeros, { level: 9 });
    const bigBomb = gzipSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 });
    const justOver = Buffer.alloc(MAX_DECOMPRESSED + 1, 0x62);
    const justOverGz = gzipSync(justOver);
    const nested = gzipSync(bomb);
    const corrupt = Buffer.from(bomb);
    corrupt[corrupt.length - 6] ^= 0xff;
    const tarBomb = gzipSync(tarball([{ name: 'versions/files/ab/cdef/data', content: zeros }]));
    const nodeBomb = gzipSync(tarball([{ name: 'tree/nodes/abc/def0123/node', content: Buffer.alloc(16 * 1024 * 1024) }]));
    const base = (c: RepoCtx) => `/api/repos/${c.ns}/${c.name}`;
    const part = (filename: string, content: Buffer, gzip = true): Part => ({ name: 'file', filename, contentType: gzip ? 'application/gzip' : 'application/octet-stream', content });
    const mp = (parts: Part[]) => ({ headers: { 'content-type': 'multipart/form-data; boundary=gzfuzz' }, body: multipartBody(parts, 'gzfuzz') });
    const bombs: Array<[string, Buffer, string]> = [
      ['4 MiB of zeros', bomb, hashBuffer(zeros)],
      ['64 MiB of zeros', bigBomb, 'abc'],
      ['one byte over the cap', justOverGz, hashBuffer(justOver)],
      ['gzip of a gzip bomb', nested, hashBuffer(bomb)],
      ['corrupt checksum', corrupt, hashBuffer(zeros)],
      ['truncated', bomb.subarray(0, bomb.length >> 1), hashBuffer(zeros)],
      ['trailing garbage', Buffer.concat([gzipSync('x'), rng.bytes(100)]), hashBuffer(Buffer.from('x'))],
      ['two members', Buffer.concat([gzipSync('a'), gzipSync('b')]), hashBuffer(Buffer.from('ab'))],
      ['empty', Buffer.alloc(0), hashBuffer(Buffer.alloc(0))],
    ];
    for (const c of [repos.keep, repos.play]) {
      for (const [what, gz, hash] of bombs) {
        requests.push({ category: 'gzip', method: 'POST', path: `${base(c)}/versions`, ...mp([part(hash, gz)]), note: `versions: ${what}` });
        requests.push({ category: 'gzip', method: 'POST', path: `${base(c)}/versions`, ...mp([part(hash, gz), part(hashBuffer(Buffer.from('fine')), Buffer.from('fine'), false), part('abc', gz)]), note: `versions: ${what}, among others` });
        // Workspace uploads go to play only: a part that decompresses is staged.
        requests.push({ category: 'gzip', method: 'POST', path: `${base(repos.play)}/workspaces/${repos.play.workspaceId}/files/bombs`, ...mp([part(`b-${rng.word(6)}.bin`, gz)]), note: `workspace files: ${what}` });
        for (const method of ['QUERY', 'POST']) {
          requests.push({ category: 'gzip', method, path: `${base(c)}/versions${method === 'POST' ? '/batch-download' : ''}`, body: gz, note: `hash list: ${what}` });
        }
      }
      requests.push({ category: 'gzip', method: 'POST', path: `${base(c)}/versions`, ...mp(Array.from({ length: 40 }, (_, i) => part(`${i}`, bomb))), note: '40 bombs in one request' });
      requests.push({ category: 'gzip', method: 'QUERY', path: `${base(c)}/versions`, body: gzipSync(Buffer.alloc(32 * 1024 * 1024, 0x0a)), note: 'hash list: 32 MiB of newlines' });
      for (const [what, gz] of [['tar bomb', tarBomb], ['node tar bomb', nodeBomb], ['plain bomb', bomb], ['random', rng.bytes(2000)]] as const) {
        requests.push({ category: 'gzip', method: 'POST', path: `${base(c)}/tree/nodes`, body: gz, headers: { 'content-type': 'application/gzip' }, note: `tree/nodes: ${what}` });
        requests.push({ category: 'gzip', method: 'POST', path: `${base(c)}/commits/upload`, body: gz, headers: { 'content-type': 'application/gzip' }, note: `commits/upload: ${what}` });
      }
    }
    for (const [what, gz] of [['tar bomb', tarBomb], ['plain bomb', bomb], ['corrupt', corrupt]] as const) {
      for (const hash of [hashBuffer(gz), hashBuffer(zeros)]) {
        requests.push({ category: 'gzip', method: 'POST', path: `${base(repos.play)}/commits/upload_chunk?hash=${hash}&chunk_num=0&total_chunks=1&total_size=${gz.length}&is_compressed=true`, body: gz, headers: { 'content-type': 'application/octet-stream' }, note: `upload_chunk: ${what}` });
      }
    }
    // A JSON body that arrives gzip'd (Content-Encoding is not decoded).
    for (const route of routes.filter((r) => BODY_FIRST[r.key] === 'json')) {
      const fills: Record<string, Fill> = Object.fromEntries(route.params.map((p) => [p, 'real']));
      requests.push({ category: 'gzip', method: route.method, path: fillRoute(route, fills, repos.keep, rng).path, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: bomb, keepWrite: true, note: `${route.key}: Content-Encoding gzip bomb` });
    }
    await run.batch(requests);
    run.assertClean('gzip');
  });

  it('hash mismatches: batch uploads and chunked uploads completed with the wrong bytes', async () => {
    const rng = streamFor('hash');
    const c = repos.play;
    const base = `/api/repos/${c.ns}/${c.name}`;
    const requests: FuzzRequest[] = [];
    const mp = (parts: Part[]) => ({ headers: { 'content-type': 'multipart/form-data; boundary=hfuzz' }, body: multipartBody(parts, 'hfuzz') });
    for (let i = 0; i < 40; i++) {
      const content = rng.bytes(rng.range(0, 5000));
      const other = rng.bytes(100);
      const names = [hashBuffer(other), hashBuffer(content).toUpperCase(), `000${hashBuffer(content)}`, 'f'.repeat(33), '', 'zz', hashBuffer(content).slice(1), '../../x', `${hashBuffer(content)}.bin`];
      const name = names[i % names.length];
      const gz = rng.chance(0.3);
      const target = rng.chance(0.5) ? repos.keep : c;
      requests.push({ category: 'hash', method: 'POST', path: `/api/repos/${target.ns}/${target.name}/versions`, ...mp([{ name: 'file', filename: name, contentType: gz ? 'application/gzip' : undefined, content: gz ? gzipSync(content) : content }]), note: `versions: part named ${JSON.stringify(name)}` });
    }
    await run.batch(requests);
    // Sequences: each step waits for the one before.
    const sequences: Array<() => Promise<void>> = [];
    const send = (method: string, path: string, body?: Buffer, headers: Record<string, string> = {}, note = '') =>
      run.one({ category: 'hash', method, path: base + path, body, headers, note });
    const json = (v: unknown) => ({ body: Buffer.from(JSON.stringify(v)), headers: { 'content-type': 'application/json' } });
    for (let i = 0; i < 16; i++) {
      sequences.push(async () => {
        // versions/{hash}/create → chunks → complete, with bytes that are not the hash's.
        const data = rng.bytes(rng.range(1, 3000));
        const hash = hashBuffer(rng.bytes(32));
        const created = json({ size: data.length, file_name: 'f.bin', dst_dir: 'up' });
        await send('POST', `/versions/${hash}/create`, created.body, created.headers, 'create');
        const cut = rng.int(data.length);
        await send('PUT', `/versions/${hash}/chunks?offset=0`, data.subarray(0, cut), { 'content-type': 'application/octet-stream' }, 'first chunk');
        await send('PUT', `/versions/${hash}/chunks?offset=${cut}`, data.subarray(cut), { 'content-type': 'application/octet-stream' }, 'second chunk');
        const done = json(rng.chance(0.5) ? { files: [{ hash, file_name: 'f.bin', dst_dir: 'up' }], workspace_id: c.workspaceId } : {});
        const outcome = await send('POST', `/versions/${hash}/complete`, done.body, done.headers, 'complete with the wrong bytes');
        if (outcome.status !== 400) run.failures.push({ request: `[hash] complete of ${hash}`, problem: `expected 400 for a hash mismatch, got ${outcome.status} ${snippet(outcome.body)}` });
      });
      sequences.push(async () => {
        // versions/uploads → parts, the last one completing with the wrong bytes.
        const data = rng.bytes(rng.range(1, 3000));
        const hash = hashBuffer(rng.bytes(32));
        const begun = json({ hash, size: data.length, ...(rng.chance(0.5) ? { destination: { workspace_id: c.workspaceId, path: `parts/${rng.word(6)}.bin` } } : {}) });
        const begin = await send('POST', '/versions/uploads', begun.body, begun.headers, 'begin');
        const plan = JSON.parse(begin.body.toString('utf8') || '{}');
        if (typeof plan.upload_id !== 'string') return;
        c.uploadIds.push(plan.upload_id);
        let last: Outcome | undefined;
        for (let p = 1; p <= plan.num_parts; p++) {
          last = await send('PUT', `/versions/uploads/${plan.upload_id}/parts/${p}`, data.subarray((p - 1) * plan.part_size, p * plan.part_size), { 'content-type': 'application/octet-stream' }, `part ${p}`);
        }
        if (last && last.status !== 400) run.failures.push({ request: `[hash] last part of ${plan.upload_id}`, problem: `expected 400 for a hash mismatch, got ${last.status} ${snippet(last.body)}` });
      });
      sequences.push(async () => {
        // commits/upload_chunk: chunks whose whole is not the hash's.
        const data = rng.bytes(rng.range(2, 3000));
        const hash = hashBuffer(rng.bytes(32));
        const total = rng.range(1, 3);
        const size = Math.ceil(data.length / total);
        let last: Outcome | undefined;
        for (let n = 0; n < total; n++) {
          const chunk = data.subarray(n * size, (n + 1) * size);
          last = await send('POST', `/commits/upload_chunk?hash=${hash}&chunk_num=${n}&total_chunks=${total}&total_size=${data.length}&is_compressed=false&filename=x.bin`, chunk, { 'content-type': 'application/octet-stream' }, `upload_chunk ${n}/${total}`);
        }
        if (last && last.status !== 400) run.failures.push({ request: `[hash] upload_chunk of ${hash}`, problem: `expected 400 for a hash mismatch, got ${last.status} ${snippet(last.body)}` });
      });
    }
    let next = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < sequences.length) await sequences[next++]();
    }));
    await run.health('hash');
    run.assertClean('hash');
  });

  it('offsets and part numbers beyond the declared sizes of chunked and resumable uploads', async () => {
    const rng = streamFor('offsets');
    const c = repos.play;
    const base = `/api/repos/${c.ns}/${c.name}`;
    const octet = { 'content-type': 'application/octet-stream' };
    // Uploads with a declared size, to aim past.
    const declared: Array<{ hash: string; size: number }> = [];
    for (let i = 0; i < 4; i++) {
      const hash = hashBuffer(rng.bytes(32));
      const size = rng.range(10, 2000);
      await run.one({ category: 'offsets', method: 'POST', path: `${base}/versions/${hash}/create`, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ size })), note: 'create' });
      declared.push({ hash, size });
    }
    const begun: Array<{ id: string; parts: number; partSize: number }> = [];
    for (let i = 0; i < 3; i++) {
      const size = rng.range(10, 5000);
      const outcome = await run.one({ category: 'offsets', method: 'POST', path: `${base}/versions/uploads`, headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ hash: hashBuffer(rng.bytes(32)), size })), note: 'begin' });
      const plan = JSON.parse(outcome.body.toString('utf8') || '{}');
      if (typeof plan.upload_id === 'string') begun.push({ id: plan.upload_id, parts: plan.num_parts, partSize: plan.part_size });
    }
    const requests: FuzzRequest[] = [];
    const offsets = (size: number) => [size, size + 1, size - 1, 1_000_000, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 63, 2 ** 64, 1e20, -1, '-0', '1.5', '1e3', '0x10', '', 'abc', '%201', '%2B1', '%00', 'Infinity', '18446744073709551617'];
    for (const { hash, size } of declared) {
      for (const offset of offsets(size)) {
        requests.push({ category: 'offsets', method: 'PUT', path: `${base}/versions/${hash}/chunks?offset=${offset}`, headers: octet, body: rng.bytes(rng.pick([1, 10, 100])), note: `declared ${size}` });
      }
      requests.push({ category: 'offsets', method: 'PUT', path: `${base}/versions/${hash}/chunks?offset=${size - 5}`, headers: octet, body: rng.bytes(10), note: `a chunk running past declared ${size}` });
      requests.push({ category: 'offsets', method: 'PUT', path: `${base}/versions/${hash}/chunks?offset=0`, headers: octet, body: rng.bytes(size + 1), note: `one byte more than declared ${size}` });
      requests.push({ category: 'offsets', method: 'PUT', path: `${base}/versions/${hash}/chunks`, headers: octet, body: rng.bytes(5), note: 'no offset' });
      requests.push({ category: 'offsets', method: 'POST', path: `${base}/versions/${hash}/complete`, note: 'complete with gaps' });
      requests.push({ category: 'offsets', method: 'GET', path: `${base}/versions/${hash}/chunks`, note: 'status' });
    }
    // Without a declared size: far offsets (sparse or past the largest file), never completed.
    for (let i = 0; i < 12; i++) {
      const hash = hashBuffer(rng.bytes(32));
      requests.push({ category: 'offsets', method: 'PUT', path: `${base}/versions/${hash}/chunks?offset=${rng.pick([2 ** 40, 2 ** 50, 2 ** 53 - 1, 2 ** 52, 9007199254740000])}`, headers: octet, body: rng.bytes(10), note: 'far offset, no declared size' });
    }
    for (const { id, parts, partSize } of begun) {
      for (const part of ['0', String(parts + 1), '-1', '99999999999', '1e3', 'abc', '1.0', '', '%00', String(2 ** 53)]) {
        requests.push({ category: 'offsets', method: 'PUT', path: `${base}/versions/uploads/${id}/parts/${part}`, headers: octet, body: rng.bytes(rng.pick([1, partSize])), note: `part ${part} of ${parts}` });
      }
      requests.push({ category: 'offsets', method: 'PUT', path: `${base}/versions/uploads/${id}/parts/1`, headers: octet, body: rng.bytes(partSize + 1), note: 'a part one byte too long' });
      requests.push({ category: 'offsets', method: 'PUT', path: `${base}/versions/uploads/${id}/parts/1`, headers: { ...octet, 'content-length': '1' }, body: rng.bytes(1), note: 'Content-Length short of the part' });
    }
    // commits/upload_chunk: chunk numbers and sizes that disagree with the declared totals.
    const chunkCases = [
      'chunk_num=5&total_chunks=5&total_size=10', 'chunk_num=0&total_chunks=0&total_size=10', 'chunk_num=-1&total_chunks=2&total_size=10',
      'chunk_num=0&total_chunks=1&total_size=1', 'chunk_num=0&total_chunks=99999999999&total_size=10', 'chunk_num=0&total_chunks=1&total_size=99999999999999999999',
      'chunk_num=1.5&total_chunks=2&total_size=10', 'chunk_num=abc&total_chunks=2&total_size=10', 'chunk_num=0&total_chunks=2&total_size=-10',
      'chunk_num=0&total_chunks=2', 'total_chunks=2&total_size=10', 'chunk_num=0&total_chunks=2&total_size=0', 'chunk_num=9007199254740993&total_chunks=9007199254740994&total_size=10',
    ];
    for (const q of chunkCases) {
      for (const compressed of ['false', 'true', 'maybe']) {
        const hash = hashBuffer(rng.bytes(32));
        requests.push({ category: 'offsets', method: 'POST', path: `${base}/commits/upload_chunk?hash=${hash}&${q}&is_compressed=${compressed}&filename=x.bin`, headers: octet, body: rng.bytes(rng.pick([1, 10, 100])), note: q });
      }
    }
    // The same upload declared with different totals by different chunks.
    for (let i = 0; i < 6; i++) {
      const hash = hashBuffer(rng.bytes(32));
      requests.push({ category: 'offsets', method: 'POST', path: `${base}/commits/upload_chunk?hash=${hash}&chunk_num=0&total_chunks=3&total_size=30&is_compressed=false&filename=x`, headers: octet, body: rng.bytes(10), note: 'first of three' });
      requests.push({ category: 'offsets', method: 'POST', path: `${base}/commits/upload_chunk?hash=${hash}&chunk_num=1&total_chunks=2&total_size=31&is_compressed=false&filename=x`, headers: octet, body: rng.bytes(10), note: 'then other totals' });
      requests.push({ category: 'offsets', method: 'POST', path: `${base}/commits/upload_chunk?hash=${hash}&chunk_num=2&total_chunks=3&total_size=30&is_compressed=false&filename=x`, headers: octet, body: rng.bytes(25), note: 'a chunk past the total' });
    }
    await run.batch(requests);
    run.assertClean('offsets');
  });

  it('the server still answers, and the snapshotted repository is unchanged byte for byte', async () => {
    await run.health('the end');
    const total = [...run.counts.values()].reduce((a, b) => a + b, 0);
    assert.ok(total >= 3000, `only ${total} requests were sent`);
    const after_ = await snapshot(server, repos.keep);
    const changed = JSON.stringify(after_) !== JSON.stringify(before_);
    assert.ok(
      !changed,
      `fuzz/keep changed (seed ${SEED}); writes to it that succeeded:\n${run.keepWrites.slice(0, 40).join('\n')}`,
    );
    assert.deepEqual(after_, before_);
    assert.deepEqual(run.failures, [], `seed ${SEED}: failures outside the categories above`);
  });
});

describe('defects the fuzz found stay fixed (issue 11)', () => {
  let server: TestServer;
  let client: Client;
  before(async () => {
    server = await startTestServer();
    client = new Client(server.url);
    await createRepo(server, 'found', 'repo');
    await ok(putFiles(server, 'found/repo', 'main/a.txt', [{ name: 'a.txt', content: 'a\n' }]), 'a commit');
  });
  after(async () => {
    client.close();
    await server.stop();
  });

  const expectError = (o: Outcome, status: number, detail?: RegExp) => {
    assert.equal(o.error, undefined, o.error);
    assert.equal(o.status, status, o.body.toString('utf8').slice(0, 300));
    const body = JSON.parse(o.body.toString('utf8'));
    assert.equal(body.status, 'error');
    assert.equal(typeof body.error.type, 'string');
    if (detail) assert.match(body.status_description, detail);
    return body;
  };

  it('a raw body refused part-way closes its connection; the next request is answered (it used to hang)', async () => {
    // One connection at a time: the second request of each pair goes over the first one's connection if that stays open.
    const one = new Client(server.url, 1);
    try {
      for (const path of ['tree/nodes', 'commits/upload', 'commits/upload_chunk?hash=abc&chunk_num=0&total_chunks=1&total_size=10&is_compressed=true']) {
        const refused = await one.send({ category: 'regression', method: 'POST', path: `/api/repos/found/repo/${path}`, headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(3 * 1024 * 1024, 0x41) });
        expectError(refused, 400);
        assert.equal(refused.headers.connection, 'close');
        const next = await one.send({ category: 'regression', method: 'GET', path: '/api/version' });
        assert.equal(next.status, 200, next.error);
      }
    } finally {
      one.close();
    }
  });

  it('CONNECT gets a JSON 405, not a dropped connection', async () => {
    const o = await client.sendRaw(Buffer.from('CONNECT /api/version HTTP/1.1\r\nHost: x\r\n\r\n'), false);
    expectError(o, 405, /CONNECT/);
  });

  it('an Expect other than 100-continue gets a JSON 417, not an empty one', async () => {
    const o = await client.sendRaw(Buffer.from('GET /api/version HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n'), false);
    expectError(o, 417, /Expect/);
  });

  it('JSON nested thousands deep is a 400 (it overflowed the stack of the error message: 500)', async () => {
    const deep = deepArray(10_000);
    const cases: Array<[string, string, string, Record<string, string>]> = [
      ['POST', '/api/repos/found/repo/branches', `{"new_name":${deep},"from_name":"main"}`, { 'content-type': 'application/json' }],
      ['POST', '/api/repos/found/repo/branches', `{"new_name":${deep},"from_name":"main"}`, { 'content-type': 'text/plain' }],
      ['POST', '/api/repos/found/repo/versions/missing', `{"hashes":[${deep}]}`, { 'content-type': 'application/json' }],
      ['PUT', '/api/repos/found/repo/workspaces', `{"workspace_id":"w1","branch_name":${deep}}`, { 'content-type': 'application/json' }],
      ['POST', '/api/repos', multipartBody([{ name: 'new_repo', content: `{"namespace":${deep},"name":"x"}` }], 'deep').toString('latin1'), { 'content-type': 'multipart/form-data; boundary=deep' }],
    ];
    for (const [method, path, body, headers] of cases) {
      expectError(await client.send({ category: 'regression', method, path, headers, body: Buffer.from(body, 'latin1') }), 400, /nested deeper than 128/);
    }
    // 128 levels are still read (and then refused for what they are).
    expectError(await client.send({ category: 'regression', method: 'POST', path: '/api/repos/found/repo/branches', headers: { 'content-type': 'application/json' }, body: Buffer.from(`{"new_name":${deepArray(127)}}`) }), 400, /not a valid branch name/);
  });

  it('values whose toString is not a function are a 400 (String() threw: 500)', async () => {
    const json = { 'content-type': 'application/json' };
    const cases: Array<[string, string, unknown, RegExp]> = [
      ['PUT', '/api/repos/found/repo/workspaces', { workspace_id: { toString: 1 }, branch_name: 'main' }, /workspace_id/],
      ['PUT', '/api/repos/found/repo/workspaces', { workspace_id: 'w2', branch_name: { toString: 1 } }, /branch name/],
      ['PUT', '/api/repos/found/repo/workspaces', { workspace_id: 'w2', branch_name: 'main', name: { toString: 1 } }, /workspace name/],
      ['POST', '/api/repos', { namespace: { toString: 1, valueOf: 1 }, name: 'x' }, /namespace name/],
      ['POST', '/api/repos/found/repo/versions/abc/create', { size: { toString: 1, valueOf: 1 } }, /Invalid size/],
      ['POST', '/api/repos/found/repo/versions/abc/complete', { workspace_id: { toString: 1 } }, /Invalid workspace_id/],
      ['POST', '/api/tokens', { name: 'n', email: 'e@x', scopes: [{ toString: 1 }] }, /Invalid scope/],
      ['POST', '/api/tokens', { name: 'n', email: 'e@x', scopes: ['read'], expires: { toString: 1 } }, /Invalid duration/],
    ];
    for (const [method, path, body, detail] of cases) {
      expectError(await client.send({ category: 'regression', method, path, headers: json, body: Buffer.from(JSON.stringify(body)) }), 400, detail);
    }
  });

  it('a page past 2^53 entries is a 400 (SQLite refused the offset: 500)', async () => {
    for (const path of ['commits/all', 'commits/history/main', 'dir/main/', 'branches/main/versions/a.txt']) {
      expectError(await client.send({ category: 'regression', method: 'GET', path: `/api/repos/found/repo/${path}?page=99999999999999999999999` }), 400, /Invalid page/);
    }
  });

  it('a query parameter given twice is a 400 (routes got an array where they take a string: 500)', async () => {
    for (const path of ['commits/missing_files?head=main&head=main', 'tree/download/main?subtrees=a&subtrees=b', 'workspaces?name=a&name=b', 'commits/all?page=1&page=2']) {
      expectError(await client.send({ category: 'regression', method: 'GET', path: `/api/repos/found/repo/${path}` }), 400, /given more than once/);
    }
  });

  it('an error message shows at most 200 characters of what the client sent', async () => {
    const o = await client.send({ category: 'regression', method: 'POST', path: '/api/repos/found/repo/branches', headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify({ new_name: `~${'x'.repeat(900_000)}`, from_name: 'main' })) });
    const body = expectError(o, 400, /not a valid branch name/);
    assert.ok(body.status_description.length < 300, `${body.status_description.length} characters`);
  });
});
