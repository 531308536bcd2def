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
