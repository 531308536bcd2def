/**
 * A private, throwaway PostgreSQL for tests. `startPostgres()` finds the server binaries (PATH, then
 * /usr/lib/postgresql/<version>/bin), runs `initdb` into a temporary directory and starts the cluster on a
 * free port of 127.0.0.1 with its unix socket in that directory; `stop()` stops it and removes the directory.
 * PostgreSQL refuses to run as root, so as root the binaries run through `runuser -u postgres --` (the user
 * Debian's postgresql package creates; `yoke-pg` is created when there is none).
 *
 * With `YOKE_TEST_DATABASE_URL` set, that server is used instead (its role must be allowed to create
 * databases). Without binaries and without that variable the result is `{ skip }` with the reason, for the
 * tests to skip visibly.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, readdirSync, realpathSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './cli.js';

const run = promisify(execFile);

export interface PostgresCluster {
  /** Where the databases live: a URL of the cluster's `postgres` database (or YOKE_TEST_DATABASE_URL). */
  adminUrl: string;
  /** Creates an empty database and returns its URL. */
  createDatabase(): Promise<string>;
  /** Drops a database `createDatabase` made (its connections are cut). */
  dropDatabase(url: string): Promise<void>;
  /** Drops what is left, stops the private cluster and removes its directory. */
  stop(): Promise<void>;
}

export type PostgresStart = { cluster: PostgresCluster; skip?: undefined } | { cluster?: undefined; skip: string };

const BINARIES = ['initdb', 'pg_ctl', 'postgres'];

const isExecutable = (file: string): boolean => {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** The directory holding initdb, pg_ctl and postgres (symlinks resolved), or null. */
export function findPostgresBin(): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    if (isExecutable(join(dir, 'initdb'))) {
      const real = dirname(realpathSync(join(dir, 'initdb')));
      if (BINARIES.every((b) => isExecutable(join(real, b)))) return real;
    }
  }
  let versions: string[] = [];
  try {
    versions = readdirSync('/usr/lib/postgresql');
  } catch {
    return null;
  }
  versions.sort((a, b) => Number(b) - Number(a) || b.localeCompare(a));
  for (const version of versions) {
    const dir = join('/usr/lib/postgresql', version, 'bin');
    if (BINARIES.every((b) => isExecutable(join(dir, b)))) return dir;
  }
  return null;
}

/** The user to run PostgreSQL as when we are root: `postgres`, else `yoke-pg` (created). */
function serverUser(): { name: string; uid: number; gid: number } {
  const lookup = (name: string) => {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim());
      const gid = Number(execFileSync('id', ['-g', name], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim());
      return { name, uid, gid };
    } catch {
      return null;
    }
  };
  const existing = lookup('postgres') ?? lookup('yoke-pg');
  if (existing) return existing;
  execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'yoke-pg'], { stdio: 'ignore' });
  const created = lookup('yoke-pg');
  if (!created) throw new Error('could not create a user to run PostgreSQL as (it refuses to run as root)');
  return created;
}

const withDatabase = (url: string, database: string): string => {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
};

const databaseOf = (url: string): string => decodeURIComponent(new URL(url).pathname.slice(1));

/** Databases made on a cluster, created and dropped through one admin connection pool. */
function databases(adminUrl: string, prefix: string): Pick<PostgresCluster, 'createDatabase' | 'dropDatabase'> & { dropAll(): Promise<void>; end(): Promise<void> } {
  const admin = new pg.Pool({ connectionString: adminUrl, max: 4 });
  admin.on('error', () => {});
  const made = new Set<string>();
  let counter = 0;
  const drop = async (name: string) => {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    made.delete(name);
  };
  return {
    async createDatabase() {
      const name = `${prefix}_${process.pid}_${++counter}_${randomBytes(3).toString('hex')}`;
      await admin.query(`CREATE DATABASE "${name}"`);
      made.add(name);
      return withDatabase(adminUrl, name);
    },
    dropDatabase: (url) => drop(databaseOf(url)),
    async dropAll() {
      for (const name of [...made]) await drop(name);
    },
    end: () => admin.end(),
  };
}

/** Starts a private cluster (or uses YOKE_TEST_DATABASE_URL); `{ skip }` says why neither is possible. */
export async function startPostgres(): Promise<PostgresStart> {
  const external = process.env.YOKE_TEST_DATABASE_URL;
  if (external) {
    const dbs = databases(external, 'yoke_test');
    return {
      cluster: {
        adminUrl: external,
        createDatabase: dbs.createDatabase,
        dropDatabase: dbs.dropDatabase,
        async stop() {
          try {
            await dbs.dropAll();
          } finally {
            await dbs.end();
          }
        },
      },
    };
  }

  const bin = findPostgresBin();
  if (!bin) {
    return {
      skip:
        'PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in PATH or /usr/lib/postgresql/*/bin; ' +
        'install PostgreSQL (Debian: apt-get install postgresql) or set YOKE_TEST_DATABASE_URL',
    };
  }

  const asRoot = process.getuid?.() === 0;
  const user = asRoot ? serverUser() : null;
  const dir = await mkdtemp(join(tmpdir(), 'yoke-pg-'));
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'server.log');
  if (user) await chown(dir, user.uid, user.gid);
  const pgRun = (tool: string, args: string[]) =>
    user ? run('runuser', ['-u', user.name, '--', join(bin, tool), ...args], { cwd: dir }) : run(join(bin, tool), args, { cwd: dir });

  const port = await freePort();
  let started = false;
  const stopSync = () => {
    if (!started) return;
    started = false;
    try {
      const args = ['-D', dataDir, '-m', 'immediate', 'stop'];
      if (user) execFileSync('runuser', ['-u', user.name, '--', join(bin, 'pg_ctl'), ...args], { stdio: 'ignore' });
      else execFileSync(join(bin, 'pg_ctl'), args, { stdio: 'ignore' });
    } catch {}
    try {
      execFileSync('rm', ['-rf', dir], { stdio: 'ignore' });
    } catch {}
  };
  // A test process that dies without stop() must not leave a server running.
  process.on('exit', stopSync);

  try {
    await pgRun('initdb', ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions']);
    await mkdir(join(dir, 'socket'), { recursive: true });
    if (user) await chown(join(dir, 'socket'), user.uid, user.gid);
    // Durability is pointless for a throwaway cluster: no fsync makes creating databases fast.
    const options = [
      `-p ${port}`,
      `-k ${join(dir, 'socket')}`,
      '-c listen_addresses=127.0.0.1',
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      '-c max_connections=200',
    ].join(' ');
    started = true;
    await pgRun('pg_ctl', ['-D', dataDir, '-l', logFile, '-o', options, '-w', '-t', '60', 'start']);
  } catch (err) {
    const log = await readFile(logFile, 'utf8').catch(() => '');
    stopSync();
    process.off('exit', stopSync);
    throw new Error(`could not start a private PostgreSQL from ${bin}: ${(err as Error).message}\n${log}`);
  }

  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const dbs = databases(adminUrl, 'yoke_test');
  return {
    cluster: {
      adminUrl,
      createDatabase: dbs.createDatabase,
      dropDatabase: dbs.dropDatabase,
      async stop() {
        await dbs.end().catch(() => {});
        if (!started) return;
        started = false;
        process.off('exit', stopSync);
        await pgRun('pg_ctl', ['-D', dataDir, '-m', 'fast', 'stop']).catch(() => pgRun('pg_ctl', ['-D', dataDir, '-m', 'immediate', 'stop']));
        await rm(dir, { recursive: true, force: true });
      },
    },
  };
}
