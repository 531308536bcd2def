/**
 * Blobs in S3 from the command line: `yoke serve`, `yoke fsck` and `yoke gc` with the `--s3-*` flags and the
 * credentials in AWS_* variables, on one radosgw bucket (test/helpers/radosgw.ts); and S3 settings refused with
 * a clear message. Skipped, with the reason, without radosgw.
 */
import { strict as assert } from 'node:assert';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hashBuffer } from '../../src/core/hash.js';
import { S3BlobStore, type S3Settings } from '../../src/storage/s3-blob-store.js';
import { runYoke, startYokeProcess } from '../helpers/cli.js';
import { startRadosgw } from '../helpers/radosgw.js';

const AUTHOR = { name: 'S3 Tester', email: 's3@example.com' };
const s3 = await startRadosgw();

describe('yoke with --s3-bucket', { skip: s3.skip }, () => {
  let dataDir: string;
  let settings: S3Settings;
  let flags: string[];
  let blobs: S3BlobStore;
  let server: { url: string; child: ChildProcess };
  const api = (path: string) => `${server.url}/api/repos/cli/s3${path}`;

  before(async () => {
    // The credentials reach the processes as they would in production: AWS_* variables, never flags.
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: s3.server!.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.server!.secretAccessKey });
    settings = s3.server!.settings();
    dataDir = await mkdtemp(join(tmpdir(), 'yoke-cli-s3-'));
    flags = ['--data-dir', dataDir, '--s3-bucket', settings.bucket, '--s3-endpoint', settings.endpoint!, '--s3-region', settings.region, '--s3-prefix', 'team-a/'];
    server = await startYokeProcess(dataDir, flags.slice(2));
    blobs = await S3BlobStore.open({ ...settings, prefix: 'team-a/' });
  });
  after(async () => {
    server?.child.kill('SIGTERM');
    await blobs?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('serve keeps file bytes under the prefix in the bucket; fsck finds them, then finds one gone; gc removes a stray upload', async () => {
    const created = await fetch(`${server.url}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'cli', name: 's3', user: AUTHOR }) });
    assert.equal(created.status, 200);
    const form = new FormData();
    for (const [key, value] of Object.entries({ ...AUTHOR, message: 'first' })) form.append(key, value);
    form.append('file', new Blob(['kept in S3']), 'kept.txt');
    assert.equal((await fetch(api('/file/main/kept.txt'), { method: 'PUT', body: form })).status, 200);
    const kept = hashBuffer('kept in S3');
    assert.equal(await blobs.stat(kept), 'kept in S3'.length, 'the blob is in the bucket under team-a/');
    assert.equal(await (await fetch(api('/file/main/kept.txt'))).text(), 'kept in S3');

    const clean = await runYoke(['fsck', '--json', ...flags]);
    assert.equal(clean.code, 0, clean.stderr);
    assert.equal(JSON.parse(clean.stdout).clean, true);

    const stray = new FormData();
    stray.append('file[]', new Blob(['never committed']), hashBuffer('never committed'));
    assert.equal((await fetch(api('/versions'), { method: 'POST', body: stray })).status, 200);
    // S3 lists modification times in whole seconds, which the store rounds up: a blob listed within the second
    // it was written counts as just written, and gc spares it even with no grace period.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const collected = await runYoke(['gc', '--grace', '0', '--json', ...flags]);
    assert.equal(collected.code, 0, collected.stderr);
    assert.equal(JSON.parse(collected.stdout).blobs, 1);
    assert.equal(await blobs.stat(hashBuffer('never committed')), null, 'gc removed the stray blob from the bucket');
    assert.equal(await blobs.stat(kept), 'kept in S3'.length);

    await blobs.delete(kept);
    const damaged = await runYoke(['fsck', '--json', ...flags]);
    assert.equal(damaged.code, 1);
    assert.deepEqual(JSON.parse(damaged.stdout).problems.map((p: { kind: string; id: string }) => [p.kind, p.id]), [['missing_blob', kept]]);
  });

  it('refuses a bad bucket name, endpoint or prefix, and half a pair of credentials, naming what is wrong', async () => {
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['--s3-bucket', 'Not_A_Bucket'], {}, /Invalid S3 bucket name: Not_A_Bucket/],
      [['--s3-bucket', 'fine-bucket', '--s3-endpoint', 'ftp://host'], {}, /Invalid S3 endpoint/],
      [['--s3-bucket', 'fine-bucket', '--s3-prefix', 'no-slash'], {}, /Invalid S3 prefix/],
      [['--s3-bucket', 'fine-bucket'], { AWS_SECRET_ACCESS_KEY: '' }, /Set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither/],
    ];
    for (const [args, env, message] of cases) {
      const saved = { ...process.env };
      Object.assign(process.env, env);
      try {
        const result = await runYoke(['fsck', '--data-dir', dataDir, ...args]);
        assert.equal(result.code, 1, args.join(' '));
        assert.match(result.stderr, message);
        assert.ok(!result.stderr.includes(s3.server!.secretAccessKey), 'the secret is never printed');
      } finally {
        process.env = saved;
      }
    }
  });
});
