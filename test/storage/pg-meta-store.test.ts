/**
 * PgMetaStore against a real PostgreSQL: the shared conformance suite (each case on a fresh database),
 * concurrent migration at start-up, and the branch CAS under real concurrency from two pools.
 * The server is a private cluster the test starts (test/helpers/postgres.ts), or YOKE_TEST_DATABASE_URL;
 * without PostgreSQL's binaries the tests are skipped with the reason.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PgMetaStore } from '../../src/storage/pg-meta-store.js';
import type { CommitRecord } from '../../src/storage/meta-store.js';
import { startPostgres } from '../helpers/postgres.js';
import { metaStoreConformance } from './meta-store-conformance.js';

const postgres = await startPostgres();

if (postgres.skip !== undefined) {
  it('PgMetaStore conformance and concurrency on PostgreSQL', { skip: postgres.skip }, () => {});
} else {
  const cluster = postgres.cluster;
  after(() => cluster.stop());

  metaStoreConformance('PostgreSQL', async () => {
    const url = await cluster.createDatabase();
    const store = await PgMetaStore.open(url);
    return { store, cleanup: () => cluster.dropDatabase(url) };
  });

  const hex = () => randomBytes(16).toString('hex');
  const commit = (parents: CommitRecord[], message: string): CommitRecord => ({
    id: hex(),
    parentIds: parents.map((p) => p.id),
    message,
    author: 'Ada',
    email: 'ada@example.com',
    timestamp: new Date().toISOString(),
    rootId: hex(),
    generation: 1 + Math.max(0, ...parents.map((p) => p.generation)),
  });

  describe('PgMetaStore on a real PostgreSQL', () => {
    it('migrates once when several processes open a fresh database at the same time', async () => {
      const url = await cluster.createDatabase();
      const opened = await Promise.allSettled([1, 2, 3, 4].map(() => PgMetaStore.open(url)));
      const stores = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
      try {
        for (const o of opened) if (o.status === 'rejected') throw o.reason;
        const client = new pg.Client(url);
        await client.connect();
        try {
          const { rows } = await client.query('SELECT version, count(*)::int AS n FROM yoke_migrations GROUP BY version ORDER BY version');
          assert.ok(rows.length >= 1);
          for (const row of rows) assert.equal(row.n, 1, `migration ${row.version} recorded once`);
        } finally {
          await client.end();
        }
        // Every store sees the same schema and data.
        const repo = await stores[0].createRepo({ namespace: 'ns', name: 'r', description: null, creatorName: null, creatorEmail: null });
        for (const store of stores) assert.equal((await store.getRepo('ns', 'r'))?.id, repo.id);
        // Opening again finds nothing to do.
        const again = await PgMetaStore.open(url);
        await again.close();
      } finally {
        await Promise.all(stores.map((s) => s.close()));
        await cluster.dropDatabase(url);
      }
    });

    it('lands exactly one of 20 concurrent commits with the same expected head, from two pools', async () => {
      const url = await cluster.createDatabase();
      const [one, two] = [await PgMetaStore.open(url, { maxConnections: 10 }), await PgMetaStore.open(url, { maxConnections: 10 })];
      try {
        const repo = await one.createRepo({ namespace: 'ns', name: 'race', description: null, creatorName: null, creatorEmail: null });
        const root = commit([], 'root');
        assert.equal(await one.landCommit(repo.id, { nodes: [[root.rootId, randomBytes(40)]], commit: root, blobs: [], branch: 'main', expectedHead: null }), true);

        // A node every contender writes (same id, same bytes) plus its own; each its own blob.
        const shared: [string, Uint8Array] = [hex(), randomBytes(64)];
        for (const round of [1, 2, 3]) {
          const head = (await one.findBranches(repo.id, ['main']))[0].commitId;
          const headCommit = (await one.getCommit(repo.id, head))!;
          const contenders = Array.from({ length: 20 }, (_, i) => commit([headCommit], `round ${round} contender ${i}`));
          const results = await Promise.all(
            contenders.map((c, i) =>
              (i % 2 ? two : one).landCommit(repo.id, {
                nodes: [[c.rootId, randomBytes(40)], shared],
                commit: c,
                blobs: [{ hash: hex(), size: i }],
                branch: 'main',
                expectedHead: head,
              }),
            ),
          );
          assert.equal(results.filter(Boolean).length, 1, `round ${round}: exactly one wins`);
          const winner = contenders[results.indexOf(true)];
          assert.equal((await two.findBranches(repo.id, ['main']))[0].commitId, winner.id);
          const stored = await two.getCommits(repo.id, contenders.map((c) => c.id));
          assert.deepEqual(stored.map((c) => c.id), [winner.id], 'the losers left no commit');
          assert.deepEqual([...(await two.hasNodes(repo.id, contenders.map((c) => c.rootId)))], [winner.rootId], 'nor nodes');
        }
        assert.equal(await one.countAllCommits(repo.id), 4);
        assert.equal(await one.countAncestors(repo.id, (await one.findBranches(repo.id, ['main']))[0].commitId), 4);

        // Creating a branch (expected head null) races the same way.
        const creators = Array.from({ length: 20 }, (_, i) => commit([root], `new branch ${i}`));
        const created = await Promise.all(
          creators.map((c, i) =>
            (i % 2 ? two : one).landCommit(repo.id, { nodes: [[c.rootId, randomBytes(8)]], commit: c, blobs: [], branch: 'fresh', expectedHead: null }),
          ),
        );
        assert.equal(created.filter(Boolean).length, 1);
        assert.equal((await one.findBranches(repo.id, ['fresh']))[0].commitId, creators[created.indexOf(true)].id);

        // And the plain compareAndSwapBranch.
        const target = (await one.findBranches(repo.id, ['fresh']))[0].commitId;
        const moves = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? two : one).compareAndSwapBranch(repo.id, 'fresh', target, hex())));
        assert.equal(moves.filter(Boolean).length, 1);
      } finally {
        await Promise.all([one.close(), two.close()]);
        await cluster.dropDatabase(url);
      }
    });

    it('applies concurrent updateUpload calls from two pools one after the other', async () => {
      const url = await cluster.createDatabase();
      const [one, two] = [await PgMetaStore.open(url), await PgMetaStore.open(url)];
      try {
        const repo = await one.createRepo({ namespace: 'ns', name: 'up', description: null, creatorName: null, creatorEmail: null });
        const upload = await one.openUpload(repo.id, 'version', hex(), { totalSize: null, totalChunks: null, details: { list: [] } });
        const items = Array.from({ length: 30 }, (_, i) => `item-${i}`);
        await Promise.all(
          items.map((item, i) =>
            (i % 2 ? two : one).updateUpload(upload.id, (u) => ({ totalSize: 1, details: { list: [...(u.details.list as string[]), item] } })),
          ),
        );
        const now = await two.getUpload(repo.id, 'version', upload.key);
        assert.deepEqual([...(now!.details.list as string[])].sort(), [...items].sort());
      } finally {
        await Promise.all([one.close(), two.close()]);
        await cluster.dropDatabase(url);
      }
    });

    it('finds nothing (rather than failing) for keys with a NUL character, which PostgreSQL text cannot hold', async () => {
      const url = await cluster.createDatabase();
      const store = await PgMetaStore.open(url);
      try {
        const repo = await store.createRepo({ namespace: 'ns', name: 'nul', description: null, creatorName: null, creatorEmail: null });
        await store.createBranch(repo.id, 'main', hex());
        assert.equal(await store.getRepo('ns', 'n\0ul'), null);
        assert.deepEqual((await store.findBranches(repo.id, ['main/a\0b.txt', 'main'])).map((b) => b.name), ['main']);
        assert.equal(await store.getCommit(repo.id, 'a\0'), null);
        assert.deepEqual(await store.getCommits(repo.id, ['a\0']), []);
        assert.equal(await store.getNode(repo.id, 'a\0'), null);
        assert.deepEqual(await store.hasNodes(repo.id, ['a\0']), new Set());
        assert.deepEqual(await store.findRepoBlobs(repo.id, ['a\0']), new Map());
        assert.equal(await store.getUpload(repo.id, 'version', 'a\0'), null);
        assert.equal(await store.getWorkspace(repo.id, 'a\0'), null);
      } finally {
        await store.close();
        await cluster.dropDatabase(url);
      }
    });

    it('refuses a database whose schema is newer than this Yoke', async () => {
      const url = await cluster.createDatabase();
      try {
        await (await PgMetaStore.open(url)).close();
        const client = new pg.Client(url);
        await client.connect();
        await client.query(`INSERT INTO yoke_migrations (version, name, applied_at) VALUES (9999, 'future', 'now')`);
        await client.end();
        await assert.rejects(PgMetaStore.open(url), /newer than this Yoke/);
      } finally {
        await cluster.dropDatabase(url);
      }
    });
  });
}
