import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runYoke } from '../helpers/cli.js';
import { startTestServer } from '../helpers/server.js';

const yoke = runYoke;

describe('yoke token', () => {
  let dataDir: string;
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'yoke-cli-'));
  });
  after(() => rm(dataDir, { recursive: true, force: true }));

  it('create prints the secret alone on standard output; list --json shows it without its secret; revoke ends it', async () => {
    const created = await yoke(['token', 'create', '--name', 'CI', '--email', 'ci@example.com', '--scope', 'write:team', '--scope', 'read', '--expires', '30d', '--data-dir', dataDir]);
    assert.equal(created.code, 0, created.stderr);
    const secret = created.stdout.trim();
    assert.match(created.stdout, /^yoke_[A-Za-z0-9_-]{43}\n$/);
    assert.match(created.stderr, /created token [0-9a-f]{16}/);

    const listed = await yoke(['token', 'list', '--json', '--data-dir', dataDir]);
    assert.equal(listed.code, 0, listed.stderr);
    const tokens = JSON.parse(listed.stdout) as Array<Record<string, unknown>>;
    assert.equal(tokens.length, 1);
    assert.deepEqual(Object.keys(tokens[0]).sort(), ['created_at', 'email', 'expires_at', 'id', 'name', 'scopes']);
    assert.deepEqual(tokens[0].scopes, ['write:team', 'read']);
    const days = (Date.parse(tokens[0].expires_at as string) - Date.parse(tokens[0].created_at as string)) / 86_400_000;
    assert.equal(days, 30);
    assert.ok(!listed.stdout.includes(secret));

    // The server on this data directory takes the token; after a revoke it does not.
    const server = await startTestServer({ dataDir, auth: true });
    try {
      const asToken = { headers: { authorization: `Bearer ${secret}` } };
      assert.equal((await server.fetch('/api/namespaces', asToken)).status, 200);
      const revoked = await yoke(['token', 'revoke', tokens[0].id as string, '--data-dir', dataDir]);
      assert.equal(revoked.code, 0, revoked.stderr);
      assert.equal((await server.fetch('/api/namespaces', asToken)).status, 401, 'revocation holds at once, from another process');
    } finally {
      await server.stop();
    }
    assert.equal((await yoke(['token', 'revoke', tokens[0].id as string, '--data-dir', dataDir])).code, 1);
  });

  it('refuses a bad scope or duration with a message and exit status 1', async () => {
    for (const args of [['--scope', 'owner'], ['--scope', 'read', '--expires', '2 weeks']]) {
      const run = await yoke(['token', 'create', '--name', 'X', '--email', 'x@example.com', ...args, '--data-dir', dataDir]);
      assert.equal(run.code, 1);
      assert.equal(run.stdout, '');
      assert.match(run.stderr, /^yoke: Invalid/);
    }
  });
});
