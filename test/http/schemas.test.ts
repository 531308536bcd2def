import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { hashBuffer } from '../../src/core/hash.js';
import { buildApp, SPEC_PATH } from '../../src/server/app.js';
import { Yoke } from '../../src/services/yoke.js';
import { LocalBlobStore } from '../../src/storage/local-blob-store.js';
import { SqliteMetaStore } from '../../src/storage/sqlite-meta-store.js';

/**
 * Replies are serialized through their routes' response schemas (fast-json-stringify), which drop
 * properties a schema does not name and coerce values to the named type. Every route here gets two
 * hooks: one keeps the reply as the handler made it, the other compares it with what was sent. A tour
 * of every JSON route (successes and refusals) must find no difference, and must have reached every
 * route whose documented 200 reply is JSON.
 */
let app: FastifyInstance;
let yoke: Yoke;
let dir: string;
let url: string;

const made = new WeakMap<object, string>();
const differences: string[] = [];
/** `GET /api/repos/{namespace}/…` templates (the spec's form) that sent a checked 2xx reply. */
const checked = new Set<string>();

function watchSerialization(route: RouteOptions) {
  const key = (method: string) => `${method.toLowerCase()} ${route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*/g, '{*}')}`;
  route.preSerialization = [
    ...[route.preSerialization ?? []].flat(),
    async (request, _reply, payload) => {
      made.set(request, JSON.stringify(payload));
      return payload;
    },
  ];
  route.onSend = [
    ...[route.onSend ?? []].flat(),
    async (request, reply, payload) => {
      const before = made.get(request);
      if (before === undefined) return payload;
      const what = `${request.method} ${request.url} → ${reply.statusCode}`;
      try {
        assert.deepStrictEqual(JSON.parse(String(payload)), JSON.parse(before));
      } catch (err) {
        differences.push(`${what}: ${(err as Error).message}`);
      }
      if (reply.statusCode < 300) checked.add(key(request.method));
      return payload;
    },
  ];
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'yoke-schemas-'));
  yoke = new Yoke(new SqliteMetaStore(join(dir, 'meta.sqlite')), await LocalBlobStore.open(join(dir, 'blobs')), { vnodeSize: 2 });
  app = await buildApp(yoke, { dataDir: dir, onRoute: watchSerialization });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  assert.ok(address && typeof address === 'object');
  url = `http://127.0.0.1:${address.port}`;
});

after(async () => {
  await app.close();
  await yoke.close();
  await rm(dir, { recursive: true, force: true });
});

type Body = string | Buffer | FormData | object | undefined;

async function send(method: string, path: string, body?: Body, headers: Record<string, string> = {}) {
  const json = body !== undefined && !(typeof body === 'string' || Buffer.isBuffer(body) || body instanceof FormData);
  const res = await fetch(url + path, {
    method,
    headers: json ? { 'content-type': 'application/json', ...headers } : headers,
    body: json ? JSON.stringify(body) : Buffer.isBuffer(body) ? new Uint8Array(body) : (body as string | FormData | undefined),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  const isJson = (res.headers.get('content-type') ?? '').includes('json');
  return { status: res.status, body: isJson ? JSON.parse(bytes.toString()) : undefined, bytes };
}

/** A request that must succeed; its JSON body. */
async function expectOk(method: string, path: string, body?: Body, headers?: Record<string, string>) {
  const res = await send(method, path, body, headers);
  assert.ok(res.status >= 200 && res.status < 300, `${method} ${path}: ${res.status} ${res.bytes.toString().slice(0, 300)}`);
  return res.body;
}

function form(fields: Record<string, string>, files: Array<[field: string, name: string, content: string | Buffer]>) {
  const data = new FormData();
  for (const [name, value] of Object.entries(fields)) data.append(name, value);
  for (const [field, name, content] of files) data.append(field, new Blob([typeof content === 'string' ? content : new Uint8Array(content)]), name);
  return data;
}

const AUTHOR = { name: 'Ada', email: 'ada@example.com' };

test('every JSON reply leaves its schema as the handler made it', async () => {
  const R = '/api/repos/tour/data';
  // Server, tokens, maintenance.
  await expectOk('GET', '/api/version');
  await expectOk('GET', '/api/min_version');
  await expectOk('GET', '/api/health');
  const token = await expectOk('POST', '/api/tokens', { name: 'ci', email: 'ci@example.com', scopes: ['read:tour'], expires: '30d' });
  await expectOk('GET', '/api/tokens');
  await expectOk('DELETE', `/api/tokens/${token.token.id}`);

  // Repositories: JSON with a seed file, multipart with files.
  await expectOk('POST', '/api/repos', { namespace: 'tour', name: 'data', description: null, files: [{ path: 'README.md', contents: '# tour\n', user: AUTHOR }] });
  await expectOk('POST', '/api/repos', form({ new_repo: JSON.stringify({ namespace: 'tour', name: 'seeded' }), ...AUTHOR }, [['file[]', 'a.txt', 'a\n']]));
  await expectOk('GET', '/api/namespaces');
  await expectOk('GET', '/api/namespaces/tour');
  await expectOk('GET', '/api/repos/tour');
  await expectOk('GET', R);
  await expectOk('POST', `${R}/action/started/push`);
  await expectOk('GET', `${R}/action/completed/push`);
  await expectOk('PATCH', '/api/repos/tour/seeded/transfer', { namespace: 'moved' });
  await expectOk('DELETE', '/api/repos/moved/seeded');

  // Files and commits.
  const csv = 'id,label\n1,cat\n';
  await expectOk('PUT', `${R}/file/main/data`, form({ ...AUTHOR, message: 'data' }, [['files[]', 'train.csv', csv], ['files[]', 'b.bin', Buffer.alloc(300, 7)]]));
  const moved = await expectOk('PATCH', `${R}/file/main/data/b.bin`, { new_path: 'data/c.bin', message: null });
  await expectOk('PUT', `${R}/file/main/notes.txt`, form(AUTHOR, [['file', 'x', 'first\n']]));
  await expectOk('PUT', `${R}/file/main/notes.txt`, form(AUTHOR, [['file', 'x', 'first\n']]));
  await expectOk('DELETE', `${R}/file/main/notes.txt`, { message: 'gone' });
  const head = moved.commit.id as string;
  await expectOk('GET', `${R}/commits/history/main`);
  await expectOk('GET', `${R}/commits/history/main/data/train.csv?page_size=1`);
  await expectOk('GET', `${R}/commits/all?page=1&page_size=2`);
  const root = (await expectOk('GET', `${R}/commits/root`)).commit.id as string;
  await expectOk('GET', `${R}/commits/history/${root}..main`);
  await expectOk('GET', `${R}/commits/${head}`);
  await expectOk('GET', `${R}/commits/main/parents`);
  await expectOk('POST', `${R}/commits/${head}/complete`);
  await expectOk('GET', `${R}/dir/main?depth=-1&sort_by=date`);
  await expectOk('GET', `${R}/dir/main/data?reverse=true`);
  await expectOk('GET', `${R}/meta/main/data/train.csv`);
  await expectOk('GET', `${R}/revisions/main/data`);

  // Branches and merges.
  await expectOk('POST', `${R}/branches`, { new_name: 'dev', from_name: 'main' });
  await expectOk('PUT', `${R}/file/dev/dev.txt`, form(AUTHOR, [['file', 'x', 'dev\n']]));
  await expectOk('POST', `${R}/branches`, { new_name: 'at-root', commit_id: root });
  await expectOk('GET', `${R}/branches`);
  await expectOk('GET', `${R}/branches/dev`);
  await expectOk('GET', `${R}/branches/main/versions/data/train.csv`);
  await expectOk('POST', `${R}/file_links/main/data/train.csv`);
  await expectOk('PUT', `${R}/branches/at-root`, { commit_id: head });
  await expectOk('DELETE', `${R}/branches/at-root`);
  await expectOk('GET', `${R}/merge/main..dev`);
  await expectOk('GET', `${R}/compare/commits/main..dev`);
  await expectOk('GET', `${R}/compare/entries/${root}..dev`);
  await expectOk('GET', `${R}/compare/dir_tree/${root}..dev`);
  await expectOk('GET', `${R}/compare/file/${root}..main/data/train.csv`);
  await expectOk('POST', `${R}/merge/main..dev`, AUTHOR);
  const mainHead = (await expectOk('GET', `${R}/branches/main`)).branch.commit_id as string;
  await expectOk('PUT', `${R}/branches/dev/merge`, { client_commit_id: mainHead, server_commit_id: mainHead });

  // Version blobs: batch upload, existence, chunks of committed files.
  const blob = Buffer.from('a blob\n');
  const blobHash = hashBuffer(blob);
  await expectOk('POST', `${R}/versions`, form({}, [['file[]', blobHash, blob], ['file[]', 'ffff', 'not ffff']]));
  await expectOk('GET', `${R}/versions/${blobHash}/metadata`);
  await expectOk('POST', `${R}/versions/missing`, { hashes: [blobHash, 'abc'] });
  await expectOk('POST', `${R}/versions/missing`, JSON.stringify([blobHash]));

  // Uploads in parts: upload_chunk, versions/{hash}/create|chunks|complete, versions/uploads.
  const raw = Buffer.from('raw chunked file\n');
  await expectOk('POST', `${R}/commits/upload_chunk?hash=${hashBuffer(raw)}&chunk_num=0&total_chunks=1&total_size=${raw.length}&is_compressed=false&filename=raw.txt`, raw);
  const big = Buffer.from('0123456789'.repeat(10));
  const bigHash = hashBuffer(big);
  await expectOk('POST', `${R}/versions/${bigHash}/create`, { size: big.length, file_name: 'big.txt', dst_dir: null });
  await expectOk('PUT', `${R}/versions/${bigHash}/chunks?offset=0`, big.subarray(0, 60));
  await expectOk('PUT', `${R}/versions/${bigHash}/chunks?offset=60`, big.subarray(60));
  await expectOk('GET', `${R}/versions/${bigHash}/chunks`);

  // Workspaces.
  const W = `${R}/workspaces/ws1`;
  await expectOk('PUT', `${R}/workspaces`, { workspace_id: 'ws1', branch_name: 'main', name: null });
  await expectOk('POST', `${R}/workspaces`, { workspace_id: 'ws2', branch_name: 'main', name: 'named' });
  await expectOk('PUT', `${R}/workspaces/get_or_create`, { workspace_id: 'ws2', branch_name: 'main' });
  await expectOk('GET', `${R}/workspaces?name=named`);
  await expectOk('GET', W);
  await expectOk('POST', `${W}/validate`, { size: 10 });
  await expectOk('POST', `${W}/files/new/dir`, form({}, [['file[]', 'a.txt', 'a\n'], ['file[]', 'b.txt', 'b\n']]));
  await expectOk('POST', `${R}/versions/${bigHash}/complete`, { files: [{ hash: bigHash, file_name: 'big.txt', dst_dir: 'new' }], workspace_id: 'ws1' });
  const part = Buffer.from('one part\n');
  const begun = await expectOk('POST', `${R}/versions/uploads`, { hash: hashBuffer(part), size: part.length, destination: { workspace_id: 'ws1', path: 'parts/one.txt' } });
  await expectOk('PUT', `${R}/versions/uploads/${begun.upload_id}/parts/1`, part);
  await expectOk('POST', `${R}/versions/uploads`, { hash: hashBuffer(part), size: part.length, destination: null });
  await expectOk('PATCH', `${W}/files/new/dir/b.txt`, { new_path: 'new/b2.txt' });
  await expectOk('GET', `${W}/changes?page_size=2`);
  await expectOk('GET', `${W}/changes/new`);
  await expectOk('DELETE', `${W}/files`, ['README.md', 'nowhere.txt']);
  await expectOk('DELETE', `${W}/files`, { paths: ['data/c.bin'] });
  await expectOk('DELETE', `${W}/files/data/c.bin`);
  await expectOk('DELETE', `${W}/changes`, ['README.md']);
  await expectOk('DELETE', `${W}/staged`, { paths: ['parts/one.txt'] });
  await expectOk('DELETE', `${W}/changes/new/b2.txt`);
  await expectOk('GET', `${R}/dir/ws1/new`);
  await expectOk('GET', `${W}/merge/main`);
  await expectOk('POST', `${W}/commit/main`, { message: 'from a workspace', author: AUTHOR.name, email: AUTHOR.email });
  await expectOk('POST', `${R}/workspaces/ws2/files/`, form({}, [['file', 'w.txt', 'w\n']]));
  await expectOk('POST', `${R}/workspaces/ws2/merge/main`, { message: 'again', author: AUTHOR.name, email: AUTHOR.email });
  await expectOk('DELETE', `${R}/workspaces/ws2`);
  await expectOk('PUT', `${R}/workspaces`, { workspace_id: 'ws3', branch_name: 'main' });
  await expectOk('DELETE', `${R}/workspaces`);

  // Committed data frames (the from_directory commit goes before the workspace ones, which work on main's head).
  await expectOk('GET', `${R}/data_frames/main/data/train.csv?page_size=1&sort_by=label&columns=label`);
  await expectOk('GET', `${R}/data_frames/main/data/train.csv?sql=${encodeURIComponent('SELECT count(*) AS n FROM df')}`);
  await expectOk('POST', `${R}/data_frames/index/main/data/train.csv`);
  await expectOk('GET', `${R}/tabular/main`);
  await expectOk('GET', `${R}/schemas/main`);
  await expectOk('GET', `${R}/schemas/main/data/train.csv`);
  await expectOk('POST', `${R}/data_frames/from_directory/main/data`, { output_path: 'listings/data.parquet', extra_columns: [{ name: 'note', data_type: 'str' }], user_name: AUTHOR.name, user_email: AUTHOR.email });

  // Data frame comparisons.
  const C = `${R}/compare/data_frames`;
  const comparison = { compare_id: 'tour', left: { path: 'data/train.csv', version: 'main' }, right: { path: 'data/train.csv', version: 'main' }, keys: [{ left: 'id', right: 'id' }], compare: [], display: [] };
  await expectOk('POST', C, comparison);
  await expectOk('GET', `${C}/tour`);
  await expectOk('POST', `${C}/tour`, comparison);
  await expectOk('PUT', `${C}/tour`, { ...comparison, keys: [] });
  await expectOk('GET', `${C}/tour/diff/main..main?page_size=1`);
  await expectOk('DELETE', `${C}/tour`);

  // Workspace data frames.
  const F = `${R}/workspaces/wdf/data_frames`;
  await expectOk('PUT', `${R}/workspaces`, { workspace_id: 'wdf', branch_name: 'main' });
  await expectOk('GET', `${F}/resource/data/train.csv`);
  await expectOk('PUT', `${F}/resource/data/train.csv`, { is_indexed: true });
  await expectOk('GET', `${F}/resource/data/train.csv?sql=${encodeURIComponent('SELECT * FROM df')}`);
  await expectOk('GET', `${F}/branch/main`);
  const added = await expectOk('POST', `${F}/rows/resource/data/train.csv`, { id: 2, label: 'dog' });
  await expectOk('GET', `${F}/rows/${added.row_id}/resource/data/train.csv`);
  await expectOk('PUT', `${F}/rows/${added.row_id}/resource/data/train.csv`, { label: 'fox' });
  await expectOk('PUT', `${F}/rows/resource/data/train.csv`, [{ row_id: added.row_id, value: { label: 'owl' } }]);
  await expectOk('POST', `${F}/rows/0/restore/data/train.csv`);
  await expectOk('DELETE', `${F}/rows/${added.row_id}/resource/data/train.csv`);
  await expectOk('POST', `${F}/columns/resource/data/train.csv`, { name: 'vec', data_type: 'list[f64]' });
  await expectOk('PUT', `${F}/rows/0/resource/data/train.csv`, { vec: [1, 2] });
  await expectOk('PUT', `${F}/columns/label/resource/data/train.csv`, { new_name: 'name', metadata: { kind: 'label' } });
  await expectOk('POST', `${F}/columns/schema/metadata/data/train.csv`, { column_name: 'name', metadata: null });
  await expectOk('PUT', `${F}/schema/data/train.csv`, { metadata: { task: 'tour' } });
  await expectOk('GET', `${F}/schema/data/train.csv`);
  await expectOk('POST', `${F}/embeddings/columns/data/train.csv`, { column: 'vec' });
  await expectOk('GET', `${F}/embeddings/columns/data/train.csv`);
  await expectOk('POST', `${F}/embeddings/neighbors/data/train.csv`, { column: 'vec', embedding: [1, 2], page_size: 5, page_num: 1 });
  await expectOk('PUT', `${F}/columns/name/resource/data/train.csv`, { new_name: 'label' });
  await expectOk('DELETE', `${F}/columns/vec/resource/data/train.csv`);
  await expectOk('PUT', `${F}/rename/data/train.csv`, { new_path: 'data/train.jsonl' });
  await expectOk('DELETE', `${F}/resource/data/train.jsonl`);
  await expectOk('DELETE', `${R}/workspaces/wdf`);

  // Sync: what a clone reads is pushed back (present records are kept), and the lookups.
  const latest = (await expectOk('GET', `${R}/branches/main`)).branch.commit_id as string;
  const nodes = await send('GET', `${R}/tree/download`);
  await expectOk('POST', `${R}/tree/nodes`, nodes.bytes);
  const dirHashes = await send('GET', `${R}/commits/${latest}/download_dir_hashes_db`);
  await expectOk('POST', `${R}/commits/upload`, dirHashes.bytes);
  const node = (await expectOk('GET', `${R}/tree/nodes/resource/main/data`)).hash as string;
  await expectOk('GET', `${R}/tree/nodes/hash/${node}`);
  await expectOk('POST', `${R}/tree/nodes/missing_node_hashes`, { hashes: [node, 'abc'] });
  await expectOk('POST', `${R}/commits/missing`, { hashes: [latest, 'abc'] });
  await expectOk('GET', `${R}/commits/missing_files?head=main&base=${root}`);

  await expectOk('GET', `/api/admin/fsck?repo=tour/data&content=false`);
  await expectOk('POST', '/api/admin/gc?dry_run=true');
  await expectOk('DELETE', R);

  // Refusals, through the error envelope.
  for (const [method, path, body] of [
    ['GET', `${R}/branches`],
    ['POST', '/api/repos/tour/none/branches', { new_name: 'b', commit_id: 7 }],
    ['GET', '/api/repos/tour/none/commits/missing_files'],
    ['POST', '/api/tokens', '{not json'],
  ] as Array<[string, string, Body?]>) {
    const res = await send(method, path, body);
    assert.ok(res.status >= 400 && res.status < 500 && res.body.status === 'error', `${method} ${path}: ${res.status}`);
  }

  assert.deepEqual(differences, [], 'replies changed by their schemas');
  const spec = (await send('GET', SPEC_PATH)).body as { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>> };
  const jsonRoutes = Object.entries(spec.paths).flatMap(([path, operations]) =>
    Object.entries(operations)
      .filter(([, op]) => op.responses['200']?.content?.['application/json'] !== undefined)
      .map(([method]) => `${method} ${path}`),
  );
  assert.ok(jsonRoutes.length >= 60, `only ${jsonRoutes.length} JSON routes in the document`);
  const unchecked = jsonRoutes.filter((route) => !checked.has(route));
  assert.deepEqual(unchecked, [], 'JSON routes the tour did not reach with a successful request');
});
