/**
 * The S3 server tests run against: Ceph radosgw from Debian's packages (test/services/radosgw.sh boots a
 * single-node cluster in ~15 s). With `YOKE_TEST_S3_ENDPOINT` (+ `YOKE_TEST_S3_ACCESS_KEY`,
 * `YOKE_TEST_S3_SECRET_KEY`) set — `npm test` boots one for the whole run through
 * test/services/with-radosgw.sh — that server is used; otherwise one is booted for this test process and
 * stopped when it exits. Without the binaries the result is `{ skip }` with the reason, for tests to skip visibly.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { S3Settings } from '../../src/storage/s3-blob-store.js';

const run = promisify(execFile);
const SCRIPT = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../services/radosgw.sh');

export interface S3Server {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Settings naming a new bucket (created by the store on open). */
  settings(): S3Settings;
  /** The same as `YOKE_S3_*` / `AWS_*` environment variables, for a `yoke` process. */
  env(): Record<string, string>;
}

export type S3Start = { server: S3Server; skip?: undefined } | { server?: undefined; skip: string };

let started: Promise<S3Start> | null = null;

function serverAt(endpoint: string, accessKeyId: string, secretAccessKey: string): S3Server {
  const bucket = () => `yoke-test-${randomBytes(6).toString('hex')}`;
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    settings: () => ({ bucket: bucket(), endpoint, region: 'us-east-1', prefix: '', credentials: { accessKeyId, secretAccessKey } }),
    env: () => ({ YOKE_S3_BUCKET: bucket(), YOKE_S3_ENDPOINT: endpoint, YOKE_S3_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey }),
  };
}

/** The shared radosgw of this test process (booted on first use). */
export function startRadosgw(): Promise<S3Start> {
  started ??= boot();
  return started;
}

async function boot(): Promise<S3Start> {
  const { YOKE_TEST_S3_ENDPOINT: endpoint, YOKE_TEST_S3_ACCESS_KEY: access, YOKE_TEST_S3_SECRET_KEY: secret } = process.env;
  if (endpoint) return { server: serverAt(endpoint, access ?? '', secret ?? '') };
  try {
    execFileSync('sh', ['-c', 'command -v radosgw && command -v ceph-mon && command -v ceph-osd'], { stdio: 'ignore' });
  } catch {
    return { skip: 'radosgw, ceph-mon or ceph-osd not installed (apt-get install radosgw ceph-mon ceph-osd ceph-common), and YOKE_TEST_S3_ENDPOINT not set' };
  }
  const dir = await mkdtemp(join(tmpdir(), 'yoke-rgw-'));
  const { stdout } = await run('bash', [SCRIPT, 'start', dir], { timeout: 180_000 });
  const fields = Object.fromEntries(stdout.trim().split(/\s+/).map((pair) => pair.split('=') as [string, string]));
  process.once('exit', () => {
    try {
      execFileSync('bash', [SCRIPT, 'stop', dir], { stdio: 'ignore' });
    } catch {}
  });
  return { server: serverAt(fields.endpoint, fields.access_key, fields.secret_key) };
}
