import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, SPEC_PATH } from '../../src/server/app.js';
import { Yoke } from '../../src/services/yoke.js';
import { LocalBlobStore } from '../../src/storage/local-blob-store.js';
import { SqliteMetaStore } from '../../src/storage/sqlite-meta-store.js';

/**
 * The route table is only observable while routes are registered, so this file builds the app
 * itself with buildApp's `onRoute` option (recording every route), serves it on a free port and
 * checks the published OpenAPI document over HTTP against what was registered.
 */
let app: FastifyInstance;
let yoke: Yoke;
let dir: string;
let url: string;
const routes: Array<{ method: string; url: string }> = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'yoke-openapi-'));
  yoke = new Yoke(new SqliteMetaStore(join(dir, 'meta.sqlite')), await LocalBlobStore.open(join(dir, 'blobs')));
  app = await buildApp(yoke, {
    dataDir: dir,
    onRoute: (route) => {
      for (const method of [route.method].flat()) routes.push({ method: method.toUpperCase(), url: route.url });
    },
  });
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

/** Fastify's `:param` becomes `{param}` and the wildcard `*` becomes `{*}` in the spec. */
function specPath(route: string): string {
  return route.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*/g, '{*}');
}

async function getSpec() {
  const res = await fetch(url + SPEC_PATH);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  return (await res.json()) as { openapi: string; info: { title: string; version: string }; paths: Record<string, Record<string, unknown>> };
}

test('the spec is an OpenAPI 3 document', async () => {
  const spec = await getSpec();
  assert.match(spec.openapi, /^3\./);
  assert.equal(typeof spec.info.title, 'string');
  assert.equal(typeof spec.info.version, 'string');
  assert.ok(Object.keys(spec.paths).length > 0);
  assert.equal(spec.paths[SPEC_PATH], undefined, 'the spec route itself is hidden');
});

test('every registered /api route appears in the spec with its method, and nothing else does', async () => {
  const spec = await getSpec();
  const api = routes.filter((r) => r.url.startsWith('/api/') && r.url !== SPEC_PATH);
  assert.ok(api.length >= 20, `only ${api.length} routes recorded`);
  const hasGet = new Set(api.filter((r) => r.method === 'GET').map((r) => r.url));
  // Fastify adds a HEAD route for every GET; HEAD beside a GET is a duplicate and not required.
  const expected = new Set<string>();
  for (const r of api) {
    if (r.method === 'HEAD' && hasGet.has(r.url)) continue;
    expected.add(`${r.method.toLowerCase()} ${specPath(r.url)}`);
  }

  const missing = [...expected].filter((key) => {
    const [method, path] = key.split(' ');
    return spec.paths[path]?.[method] === undefined;
  });
  assert.deepEqual(missing, [], `routes missing from the spec: ${missing.join(', ')}`);

  const published = new Set<string>();
  for (const [path, operations] of Object.entries(spec.paths)) {
    for (const method of Object.keys(operations)) {
      if (method === 'head') continue;
      published.add(`${method} ${path}`);
    }
  }
  const unexpected = [...published].filter((key) => !expected.has(key));
  assert.deepEqual(unexpected, [], `spec lists routes that are not registered: ${unexpected.join(', ')}`);

  // Spot checks of the conversion and of a few routes every Oxen client uses.
  for (const key of [
    'post /api/repos',
    'get /api/repos/{namespace}/{repo_name}/branches',
    'post /api/repos/{namespace}/{repo_name}/branches',
    'get /api/repos/{namespace}/{repo_name}/branches/{*}',
    'put /api/repos/{namespace}/{repo_name}/file/{*}',
    'get /api/repos/{namespace}/{repo_name}/commits/history/{*}',
  ]) {
    assert.ok(expected.has(key), key);
  }
});

test('every documented operation has a summary and tags', async () => {
  const spec = await getSpec();
  for (const [path, operations] of Object.entries(spec.paths)) {
    if (!path.startsWith('/api/repos/')) continue;
    for (const [method, op] of Object.entries(operations) as Array<[string, any]>) {
      assert.equal(typeof op.summary, 'string', `${method} ${path} has no summary`);
      assert.ok(Array.isArray(op.tags) && op.tags.length > 0, `${method} ${path} has no tags`);
    }
  }
});

test('/swagger-ui serves HTML', async () => {
  const res = await fetch(`${url}/swagger-ui`, { redirect: 'follow' });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/html/);
  assert.match(await res.text(), /swagger/i);
  const json = await fetch(`${url}/swagger-ui/json`);
  assert.equal(json.status, 200);
  assert.match(((await json.json()) as { openapi: string }).openapi, /^3\./);
});

type Media = Record<string, { schema?: any }>;
type Operation = { requestBody?: { required?: boolean; content?: Media }; responses: Record<string, { content?: Media }> };

async function operations() {
  const spec = await getSpec();
  return Object.entries(spec.paths).flatMap(([path, ops]) => Object.entries(ops as Record<string, Operation>).map(([method, op]) => ({ key: `${method} ${path}`, method, op })));
}

const R = '/api/repos/{namespace}/{repo_name}';
/** Operations whose method usually carries a body but that take none. */
const NO_BODY = new Set([`post ${R}/file_links/{*}`, `post ${R}/commits/{commit_id}/complete`, `post ${R}/action/{state}/{action}`, 'post /api/admin/gc']);
/** DELETE operations that take a body. */
const DELETE_WITH_BODY = new Set([`delete ${R}/file/{*}`, `delete ${R}/workspaces/{workspace_id}/files`, `delete ${R}/workspaces/{workspace_id}/changes`, `delete ${R}/workspaces/{workspace_id}/staged`]);

test('every operation documents its 200 reply and the error envelope for 4XX and 5XX', async () => {
  for (const { key, op } of await operations()) {
    const success = Object.values(op.responses['200']?.content ?? {});
    assert.ok(success.length > 0 && success.every((m) => m.schema !== undefined), `${key}: no 200 reply schema`);
    for (const status of ['4XX', '5XX']) {
      const error = op.responses[status]?.content?.['application/json']?.schema;
      assert.deepEqual(error?.required, ['status', 'status_message', 'status_description', 'error', 'oxen_version'], `${key}: no ${status} error envelope`);
    }
  }
});

test('every operation that takes a body documents it, and no other does', async () => {
  for (const { key, method, op } of await operations()) {
    const takesBody = DELETE_WITH_BODY.has(key) || (['post', 'put', 'patch', 'query'].includes(method) && !NO_BODY.has(key));
    if (!takesBody) {
      assert.equal(op.requestBody, undefined, `${key} documents a body it does not take`);
      continue;
    }
    const media = Object.entries(op.requestBody?.content ?? {});
    assert.ok(media.length > 0, `${key}: no request body schema`);
    for (const [type, { schema }] of media) assert.ok(schema?.type !== undefined || schema?.anyOf !== undefined, `${key}: ${type} has no schema`);
  }
  const ops = new Map((await operations()).map((o) => [o.key, o.op]));
  // A body the route reads as absent is optional; Swagger UI then lets it be left out.
  assert.equal(ops.get(`delete ${R}/file/{*}`)!.requestBody!.required, false);
  assert.equal(ops.get(`post ${R}/branches`)!.requestBody!.required, true);
});

test('uploads are documented as forms with file fields or as raw bytes, and the documented form uploads', async () => {
  const ops = new Map((await operations()).map((o) => [o.key, o.op]));
  const putFile = ops.get(`put ${R}/file/{*}`)!.requestBody!.content!['multipart/form-data'].schema;
  assert.equal(putFile.properties.file.format, 'binary');
  assert.equal(putFile.properties['files[]'].items.format, 'binary');
  assert.equal(ops.get(`post ${R}/versions`)!.requestBody!.content!['multipart/form-data'].schema.properties['file[]'].items.format, 'binary');
  assert.equal(ops.get(`post ${R}/workspaces/{workspace_id}/files/{*}`)!.requestBody!.content!['multipart/form-data'].schema.properties.file.format, 'binary');
  for (const raw of [`put ${R}/versions/{hash}/chunks`, `put ${R}/versions/uploads/{upload_id}/parts/{part}`, `post ${R}/commits/upload_chunk`, `post ${R}/tree/nodes`]) {
    assert.equal(ops.get(raw)!.requestBody!.content!['application/octet-stream'].schema.format, 'binary', raw);
  }
  // What Swagger UI sends from that description: every documented field, a file for each binary one.
  const created = await fetch(`${url}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'swagger', name: 'try' }) });
  assert.equal(created.status, 200);
  const form = new FormData();
  for (const [field, schema] of Object.entries(putFile.properties as Record<string, any>)) {
    if (schema.format === 'binary') form.append(field, new Blob(['tried from the docs\n']), 'tried.txt');
    else if (schema.type === 'string') form.append(field, field === 'email' ? 'ada@example.com' : `a ${field}`);
  }
  // Swagger UI percent-encodes a path parameter, slashes included.
  const uploaded = await fetch(`${url}/api/repos/swagger/try/file/${encodeURIComponent('main/docs/tried.txt')}`, { method: 'PUT', body: form.has('files[]') ? withoutField(form, 'files[]') : form });
  assert.equal(uploaded.status, 200, await uploaded.clone().text());
  assert.equal(await (await fetch(`${url}/api/repos/swagger/try/file/main/docs/tried.txt`)).text(), 'tried from the docs\n');
});

/** The same form without one field (`file` and `files[]` together would place the file twice). */
function withoutField(form: FormData, name: string): FormData {
  const copy = new FormData();
  for (const [key, value] of form) if (key !== name) copy.append(key, value);
  return copy;
}

test('a request its schema refuses gets the 400 error envelope, naming the field', async () => {
  const ask = async (method: string, path: string, body?: string, contentType = 'application/json') => {
    const res = await fetch(url + path, { method, headers: body === undefined ? {} : { 'content-type': contentType }, body });
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const json = (await res.json()) as { status: string; status_description: string; error: { type: string } };
    assert.equal(res.status, 400, JSON.stringify(json));
    assert.equal(json.status, 'error');
    assert.equal(json.error.type, 'bad_request');
    return json.status_description;
  };
  const branches = '/api/repos/swagger/none/branches';
  const wrongType = JSON.stringify({ new_name: 'b', from_name: 5 });
  assert.equal(await ask('POST', branches, wrongType), 'Invalid request body: from_name must be a string or null');
  // Oxen's clients send JSON as text/plain or with no type: checked all the same.
  assert.equal(await ask('POST', branches, wrongType, 'text/plain'), 'Invalid request body: from_name must be a string or null');
  assert.equal(await ask('POST', branches, JSON.stringify({ from_name: 'main' })), 'Invalid request body: new_name is required');
  assert.equal(await ask('POST', branches, '{"new_name": ', 'text/plain'), 'Invalid request body: not JSON');
  assert.equal(await ask('POST', '/api/tokens', '[]'), 'Invalid request body: expected a JSON object');
  assert.equal(await ask('POST', '/api/repos/swagger/none/versions/uploads', JSON.stringify({ hash: 'abc', size: '12' })), 'Invalid request body: size must be an integer');
  assert.equal(
    await ask('POST', '/api/repos/swagger/none/versions/uploads', JSON.stringify({ hash: 'abc', size: 1, destination: { path: 'a' } })),
    'Invalid request body: destination.workspace_id is required',
  );
  assert.equal(await ask('GET', '/api/repos/swagger/none/commits/missing_files'), 'Query parameter head is required');
});
