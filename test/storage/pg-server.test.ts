/**
 * The real server with its metadata in PostgreSQL (`databaseUrl`), on the private cluster of
 * test/helpers/postgres.ts: create a repository, PUT a file, GET it back, again after a restart; and the
 * CLI (`token`, `fsck`) on the same database with `--database-url`. Skipped, with the reason, without PostgreSQL.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { serverConfig } from '../../src/config.js';
import { startServer } from '../../src/server/main.js';
import { runYoke } from '../helpers/cli.js';
import { startPostgres } from '../helpers/postgres.js';

const postgres = await startPostgres();

if (postgres.skip !== undefined) {
  it('the server on PostgreSQL', { skip: postgres.skip }, () => {});
} else {
  const cluster = postgres.cluster;
  after(() => cluster.stop());

  describe('the server with YOKE_DATABASE_URL', () => {
    it('reads the database URL from the flag or YOKE_DATABASE_URL, and refuses anything but postgres://', () => {
      assert.equal(serverConfig({}, {}).databaseUrl, null);
      assert.equal(serverConfig({}, { YOKE_DATABASE_URL: 'postgres://h/db' }).databaseUrl, 'postgres://h/db');
      assert.equal(serverConfig({ databaseUrl: 'postgresql://x/y' }, { YOKE_DATABASE_URL: 'postgres://h/db' }).databaseUrl, 'postgresql://x/y');
      assert.throws(() => serverConfig({ databaseUrl: 'mysql://h/db' }, {}), /Invalid database URL/);
    });

    it('creates a repository, stores a file and serves it back, also after a restart; the CLI works on the same database', async () => {
      const databaseUrl = await cluster.createDatabase();
      const dataDir = await mkdtemp(join(tmpdir(), 'yoke-pg-server-'));
      const start = () => startServer(serverConfig({ host: '127.0.0.1', port: 0, dataDir, databaseUrl, logLevel: 'silent' }, {}));
      try {
        let server = await start();
        try {
          const created = await fetch(`${server.url}/api/repos`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ namespace: 'team', name: 'data', user: { name: 'Ada', email: 'ada@example.com' } }),
          });
          assert.equal(created.status, 200, await created.clone().text());
          const form = new FormData();
          for (const [key, value] of Object.entries({ message: 'Add example', name: 'Ada', email: 'ada@example.com' })) form.append(key, value);
          form.append('file', new Blob(['hello from postgres\n']), 'example.txt');
          const put = await fetch(`${server.url}/api/repos/team/data/file/main/docs/example.txt`, { method: 'PUT', body: form });
          assert.equal(put.status, 200, await put.clone().text());
          const got = await fetch(`${server.url}/api/repos/team/data/file/main/docs/example.txt`);
          assert.equal(got.status, 200);
          assert.equal(await got.text(), 'hello from postgres\n');
        } finally {
          await server.close();
        }
        assert.equal(existsSync(join(dataDir, 'meta.sqlite')), false, 'no SQLite database beside the blobs');

        // The metadata is in PostgreSQL.
        const client = new pg.Client(databaseUrl);
        await client.connect();
        try {
          const { rows } = await client.query(`SELECT r.namespace, r.name, count(c.id)::int AS commits FROM repos r JOIN commits c ON c.repo_id = r.id GROUP BY r.id`);
          assert.deepEqual(rows, [{ namespace: 'team', name: 'data', commits: 1 }]);
        } finally {
          await client.end();
        }

        server = await start();
        try {
          const got = await fetch(`${server.url}/api/repos/team/data/file/main/docs/example.txt`);
          assert.equal(await got.text(), 'hello from postgres\n');
        } finally {
          await server.close();
        }

        const created = await runYoke(['token', 'create', '--name', 'CI', '--email', 'ci@example.com', '--scope', 'read', '--data-dir', dataDir, '--database-url', databaseUrl]);
        assert.equal(created.code, 0, created.stderr);
        const listed = await runYoke(['token', 'list', '--json', '--data-dir', dataDir, '--database-url', databaseUrl]);
        assert.equal(listed.code, 0, listed.stderr);
        assert.deepEqual((JSON.parse(listed.stdout) as Array<{ name: string }>).map((t) => t.name), ['CI']);
        const fsck = await runYoke(['fsck', '--data-dir', dataDir, '--database-url', databaseUrl]);
        assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
        assert.match(fsck.stdout, /^clean: 1 repositories, 1 commits/m);
        const gc = await runYoke(['gc', '--dry-run', '--data-dir', dataDir, '--database-url', databaseUrl]);
        assert.equal(gc.code, 0, gc.stdout + gc.stderr);
        assert.match(gc.stdout, /would remove 0 blobs/);
      } finally {
        await rm(dataDir, { recursive: true, force: true });
        await cluster.dropDatabase(databaseUrl);
      }
    });

    it('opens at most YOKE_DATABASE_POOL_SIZE / --database-pool-size connections, and refuses a size that is not one', async () => {
      assert.equal(serverConfig({}, {}).databasePoolSize, 10);
      assert.equal(serverConfig({}, { YOKE_DATABASE_POOL_SIZE: '25' }).databasePoolSize, 25);
      assert.equal(serverConfig({ databasePoolSize: '3' }, { YOKE_DATABASE_POOL_SIZE: '25' }).databasePoolSize, 3);
      for (const nonsense of ['0', '-2', '2.5', 'ten', '', ' ', '1e9', '1001']) {
        assert.throws(() => serverConfig({}, { YOKE_DATABASE_POOL_SIZE: nonsense }), /Invalid database pool size: .*from 1 to 1000/, JSON.stringify(nonsense));
      }

      const databaseUrl = await cluster.createDatabase();
      const dataDir = await mkdtemp(join(tmpdir(), 'yoke-pg-server-'));
      const server = await startServer(serverConfig({ host: '127.0.0.1', port: 0, dataDir, databaseUrl, databasePoolSize: 2, logLevel: 'silent' }, {}));
      const admin = new pg.Client(cluster.adminUrl);
      await admin.connect();
      try {
        const replies = await Promise.all(Array.from({ length: 40 }, () => fetch(`${server.url}/api/repos/team/nothing`)));
        assert.deepEqual([...new Set(replies.map((r) => r.status))], [404]);
        const database = new URL(databaseUrl).pathname.slice(1);
        const { rows } = await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [database]);
        assert.ok(rows[0].n >= 1 && rows[0].n <= 2, `${rows[0].n} connections`);
      } finally {
        await admin.end();
        await server.close();
        await rm(dataDir, { recursive: true, force: true });
        await cluster.dropDatabase(databaseUrl);
      }

      const refused = await runYoke(['fsck', '--data-dir', dataDir, '--database-url', databaseUrl, '--database-pool-size', 'lots']);
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /Invalid database pool size: lots/);
    });

    it('refuses what PostgreSQL cannot store with a 400, never a 500: NUL in text, names past 255 characters', async () => {
      const databaseUrl = await cluster.createDatabase();
      const dataDir = await mkdtemp(join(tmpdir(), 'yoke-pg-server-'));
      const server = await startServer(serverConfig({ host: '127.0.0.1', port: 0, dataDir, databaseUrl, logLevel: 'silent' }, {}));
      try {
        const create = (body: unknown) => fetch(`${server.url}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        assert.equal((await create({ namespace: 'team', name: 'nul', description: 'a\u0000b' })).status, 400);
        assert.equal((await create({ namespace: 'n'.repeat(300), name: 'long' })).status, 400);
        assert.equal((await fetch(`${server.url}/api/namespaces/a%00b`)).status < 500, true);
        assert.equal((await fetch(`${server.url}/api/repos/a%00b`)).status < 500, true);
        assert.equal((await create({ namespace: 'team', name: 'fine', description: 'still works' })).status, 200);
      } finally {
        await server.close();
        await rm(dataDir, { recursive: true, force: true });
        await cluster.dropDatabase(databaseUrl);
      }
    });
  });
}
