import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { indexRootId } from '../../src/core/name-index.js';
import { lookup, type ChangeSet } from '../../src/core/tree.js';
import type { RepoRecord } from '../../src/storage/meta-store.js';
import { AUTHOR, createRepo, putFiles, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Directories large enough to carry a name index (src/core/name-index.ts): pages by name come from the index,
 * whatever changed it, and match the directory's entries; a directory without one gets one when first listed.
 */
const FILES = 1500;
const SUBDIRS = 20;
const file = (i: number) => `f${String(i).padStart(4, '0')}.txt`;

describe('listing a directory with a name index', () => {
  let server: TestServer;
  let dataDir: string;
  let repo: RepoRecord;
  let blob: { hash: string; size: number };
  /** What `d/` holds: name → directory or not. */
  const model = new Map<string, boolean>();

  const expectedOrder = (reverse = false) => {
    const names = (dirs: boolean) => [...model].filter(([, isDir]) => isDir === dirs).map(([name]) => name).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return reverse ? [...names(true).reverse(), ...names(false).reverse()] : [...names(true), ...names(false)];
  };

  const listAll = async (query = '') => {
    const names: string[] = [];
    for (let page = 1; ; page++) {
      const { status, body } = await server.json(`/api/repos/big/listing/dir/main/d?page_size=400&page=${page}${query}`);
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(body.total_entries, model.size);
      names.push(...body.entries.map((e: { filename: string; is_dir: boolean }) => `${e.filename}${e.is_dir ? '/' : ''}`));
      if (page >= body.total_pages) return names;
    }
  };
  const shown = (names: string[]) => names.map((name) => `${name}${model.get(name) ? '/' : ''}`);

  const commit = async (changes: ChangeSet) => {
    const head = await server.yoke.revisions.resolve(repo, 'main');
    await server.yoke.commits.commit({ repo, branch: 'main', base: head.commit, changes, blobs: [blob], author: AUTHOR, message: `change ${changes.size} paths` });
  };

  const currentDirId = async () => {
    const head = await server.yoke.revisions.resolve(repo, 'main');
    const dir = await lookup(server.yoke.nodes.forRepo(repo.id), head.commit.rootId, 'd');
    assert.equal(dir?.kind, 'dir');
    return dir.id;
  };
  const hasIndex = async (dirId: string) => (await server.yoke.meta.getNodes(repo.id, [indexRootId(dirId)])).has(indexRootId(dirId));

  /** Node rows the store is asked for while `run` runs. */
  const rowsRead = async (run: () => Promise<unknown>) => {
    const meta = server.yoke.meta;
    const getNodes = meta.getNodes;
    let count = 0;
    meta.getNodes = (repoId, ids) => {
      count += ids.length;
      return getNodes.call(meta, repoId, ids);
    };
    try {
      await run();
    } finally {
      meta.getNodes = getNodes;
    }
    return count;
  };

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'yoke-large-dirs-'));
    server = await startTestServer({ dataDir });
    await createRepo(server, 'big', 'listing');
    const seeded = await putFiles(server, 'big/listing', 'main', [{ name: 'seed.txt', content: 'seed\n' }]);
    assert.equal(seeded.status, 200, JSON.stringify(seeded.body));
    repo = await server.yoke.repos.require('big', 'listing');
    blob = { hash: (await server.json('/api/repos/big/listing/meta/main/seed.txt')).body.entry.hash, size: 5 };
    const changes: ChangeSet = new Map();
    for (let i = 0; i < FILES; i++) {
      changes.set(`d/${file(i)}`, blob);
      model.set(file(i), false);
    }
    for (let i = 0; i < SUBDIRS; i++) {
      changes.set(`d/sub${i}/inner.txt`, blob);
      model.set(`sub${i}`, true);
    }
    await commit(changes);
  });
  after(async () => {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('is written with the commit, and a page reads a few rows of it', async () => {
    assert.equal(await hasIndex(await currentDirId()), true);
    const rows = await rowsRead(() => server.json('/api/repos/big/listing/dir/main/d?page_size=50&page=3'));
    assert.ok(rows < 40, `a page of 50 of ${model.size} entries read ${rows} node rows`);
    assert.deepEqual(await listAll(), shown(expectedOrder()));
    assert.deepEqual(await listAll('&reverse=true'), shown(expectedOrder(true)));
  });

  it('is updated by a commit: added, removed and rewritten entries, a file become a directory', async () => {
    const changes: ChangeSet = new Map();
    for (const i of [1, 2, 500, 1499]) {
      changes.set(`d/${file(i)}`, null);
      model.delete(file(i));
    }
    for (const name of ['a-first.txt', 'f0750b.txt', 'zz-last.txt']) {
      changes.set(`d/${name}`, blob);
      model.set(name, false);
    }
    changes.set(`d/${file(3)}`, null);
    changes.set(`d/${file(3)}/now-a-dir.txt`, blob);
    model.set(file(3), true);
    changes.set('d/sub4/inner.txt', null);
    model.delete('sub4');
    await commit(changes);
    const dirId = await currentDirId();
    assert.equal(await hasIndex(dirId), true, 'the new version of the directory has its index');
    assert.deepEqual(await listAll(), shown(expectedOrder()));
    assert.deepEqual(await listAll('&reverse=true'), shown(expectedOrder(true)));
    const byDate = await listAll('&sort_by=date');
    assert.deepEqual([...byDate].sort(), shown(expectedOrder()).sort());
    // Every entry in one reply, read from the index a batch at a time; recursive, each directory's entries follow it.
    const ls = async (query = '') => (await (await server.fetch(`/api/repos/big/listing/ls/main/d${query}`)).text()).trim().split('\n').map((line) => JSON.parse(line));
    assert.deepEqual((await ls()).map((l) => `${l.path}${l.type === 'dir' ? '/' : ''}`), shown(expectedOrder()));
    const inside = (name: string) => (name === file(3) ? 'now-a-dir.txt' : 'inner.txt');
    assert.deepEqual(
      (await ls('?recursive=true')).map((l) => l.path),
      expectedOrder().flatMap((name) => (model.get(name) ? [name, `${name}/${inside(name)}`] : [name])),
    );
  });

  it('is built when a directory without one (as a client pushes it) is first listed, and gc and fsck keep to it', async () => {
    const dirId = await currentDirId();
    assert.equal(await server.yoke.meta.deleteNodes(repo.id, [indexRootId(dirId)], Date.now() + 60_000), 1);
    await server.stop();
    server = await startTestServer({ dataDir });
    repo = await server.yoke.repos.require('big', 'listing');
    assert.deepEqual(await listAll(), shown(expectedOrder()));
    assert.equal(await hasIndex(dirId), true, 'the listing stored an index');

    const { status, body } = await server.json('/api/admin/gc?grace=0s', { method: 'POST' });
    assert.equal(status, 200, JSON.stringify(body));
    // Both versions of the directory are reachable (the first from the branch's history): so is every row of their indexes.
    assert.equal(body.gc.nodes, 0, 'gc removed no node row');
    assert.equal(await hasIndex(dirId), true);
    const fsck = await server.json('/api/admin/fsck?content=false');
    assert.equal(fsck.body.fsck.clean, true, JSON.stringify(fsck.body.fsck.problems));
    await server.stop();
    server = await startTestServer({ dataDir });
    repo = await server.yoke.repos.require('big', 'listing');
    assert.deepEqual(await listAll('&reverse=true'), shown(expectedOrder(true)));
  });
});
