import { Command } from 'commander';
import { serverConfig, type ServerFlags } from '../config.js';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { openBlobStore, openMetaStore, startServer } from '../server/main.js';
import { tokenView } from '../server/routes/tokens.js';
import { AuthService } from '../services/auth.js';
import { Yoke } from '../services/yoke.js';
import { parseGrace } from '../services/gc.js';

/** How long requests under way may finish after SIGINT/SIGTERM before their connections are cut. */
const SHUTDOWN_GRACE_MS = 5_000;

const program = new Command();
program.name('yoke').description('Yoke: data version control for ML datasets, speaking Oxen\'s HTTP API').version('0.1.0');

program
  .command('serve')
  .description('Run the Yoke server (embedded default: local data directory + SQLite)')
  .option('--host <host>', 'address to listen on (env YOKE_HOST, default 127.0.0.1)')
  .option('--port <port>', 'port to listen on (env YOKE_PORT, default 3000)')
  .option('--data-dir <dir>', 'data directory (env YOKE_DATA_DIR, default ./data)')
  .option('--database-url <url>', 'keep the metadata in PostgreSQL, postgres://user:password@host:port/database (env YOKE_DATABASE_URL; default SQLite in the data directory)')
  .option('--database-pool-size <n>', 'most PostgreSQL connections this process opens (env YOKE_DATABASE_POOL_SIZE, default 10)')
  .option('--s3-bucket <bucket>', 'keep file bytes in this S3-compatible bucket (env YOKE_S3_BUCKET; credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; default the data directory)')
  .option('--s3-endpoint <url>', 'S3 endpoint for radosgw, MinIO and the like, http(s)://host:port (env YOKE_S3_ENDPOINT; default AWS)')
  .option('--s3-region <region>', 'S3 region (env YOKE_S3_REGION, default us-east-1)')
  .option('--s3-prefix <prefix>', 'key prefix ending with / (env YOKE_S3_PREFIX; default none)')
  .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (env YOKE_LOG_LEVEL, default info)')
  .option('--auth', 'require a token on every request but version and health (env YOKE_AUTH=1; the default when listening beyond loopback)')
  .option('--no-auth', 'serve without tokens even when listening beyond loopback (a warning is logged)')
  .option('--cors-origin <origins>', 'web origins that may call the API, comma-separated, or * (env YOKE_CORS_ORIGINS; default none)')
  .action(async (flags) => {
    boundOldGeneration();
    const server = await startServer(serverConfig(flags));
    let stopping = false;
    const shutdown = async (signal: NodeJS.Signals) => {
      // A second signal means "now".
      if (stopping) process.exit(1);
      stopping = true;
      server.app.log.info({ signal }, `${signal}: stopping (requests under way get ${SHUTDOWN_GRACE_MS / 1000} s, then the stores close)`);
      // Requests under way get a grace period; a client holding a request open must not keep the
      // process alive after that.
      setTimeout(() => server.app.server.closeAllConnections(), SHUTDOWN_GRACE_MS).unref();
      try {
        await server.close();
      } catch (err) {
        server.app.log.error({ err }, 'stopping failed: the stores may not have closed cleanly');
        process.exit(1);
      }
      server.app.log.info('stopped cleanly: server and stores closed');
      process.exit(0);
    };
    process.on('SIGINT', shutdown);
    process.on('SIGTERM', shutdown);
  });

/**
 * Lets V8's old generation grow to 1.5× what survived its last full collection, not up to 4× (its own choice when
 * collections are cheap). Under a sustained upload each request's outcomes die old, and the server's memory rose
 * 95 MiB over idle across 1,000,000 files; with this (and the smaller young generation bin/yoke.cjs asks for) 36,
 * at the same CPU per file (bench/RESULTS.md, issue 15). A `--heap-growing-percent` given to Node wins.
 */
function boundOldGeneration(): void {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  if (!given.some((flag) => flag.startsWith('--heap-growing-percent'))) setFlagsFromString('--heap-growing-percent=50');
}

type StoreFlags = Pick<ServerFlags, 'dataDir' | 'databaseUrl' | 'databasePoolSize' | 's3Bucket' | 's3Endpoint' | 's3Region' | 's3Prefix'>;

/** Runs `work` on the server's metadata store (the server may be running on it: SQLite serialises writers). */
async function withAuth<T>(flags: StoreFlags, work: (auth: AuthService) => Promise<T>): Promise<T> {
  const config = serverConfig(flags);
  if (config.databaseUrl === null) await mkdir(config.dataDir, { recursive: true });
  const meta = await openMetaStore(config);
  try {
    return await work(new AuthService(meta));
  } finally {
    await meta.close();
  }
}

/** A subcommand that works on a server's stores, found as the server finds them. */
function storeCommand(parent: Command, spec: string): Command {
  return parent
    .command(spec)
    .option('--data-dir <dir>', 'the server\'s data directory (env YOKE_DATA_DIR, default ./data)')
    .option('--database-url <url>', 'the server\'s PostgreSQL metadata, when it uses one (env YOKE_DATABASE_URL)')
    .option('--database-pool-size <n>', 'most PostgreSQL connections to open (env YOKE_DATABASE_POOL_SIZE, default 10)')
    .option('--s3-bucket <bucket>', 'the server\'s S3 bucket, when it uses one (env YOKE_S3_BUCKET; AWS_* credentials)')
    .option('--s3-endpoint <url>', 'its S3 endpoint (env YOKE_S3_ENDPOINT)')
    .option('--s3-region <region>', 'its S3 region (env YOKE_S3_REGION)')
    .option('--s3-prefix <prefix>', 'its key prefix (env YOKE_S3_PREFIX)');
}

const collect = (value: string, previous: string[] = []) => [...previous, value];
const token = program.command('token').description("Manage access tokens in a server's metadata store");

storeCommand(token, 'create')
  .description('Create a token; prints its secret alone on standard output (shown once)')
  .requiredOption('--name <name>', 'who the token is for')
  .requiredOption('--email <email>', 'their email')
  .requiredOption('--scope <scope>', 'read|write|admin[:namespace[/repo]] (repeatable)', collect)
  .option('--expires <duration>', 'lifetime: 30d, 12h, 10m or 5s (default: never)')
  .action(async (flags) => {
    const { token: created, secret } = await withAuth(flags, (auth) => auth.create({ name: flags.name, email: flags.email, scopes: flags.scope, expires: flags.expires }));
    console.error(`created token ${created.id} for ${created.name} <${created.email}>: ${created.scopes.join(', ')}${created.expiresAt ? `, expires ${created.expiresAt}` : ''}`);
    process.stdout.write(`${secret}\n`);
  });

storeCommand(token, 'list')
  .description('List tokens (never their secrets)')
  .option('--json', 'a JSON array of {id, name, email, scopes, created_at, expires_at}')
  .action(async (flags) => {
    const tokens = (await withAuth(flags, (auth) => auth.list())).map(tokenView);
    if (flags.json) process.stdout.write(`${JSON.stringify(tokens)}\n`);
    else for (const t of tokens) process.stdout.write(`${t.id}  ${t.name} <${t.email}>  ${t.scopes.join(',')}  created ${t.created_at}${t.expires_at ? `  expires ${t.expires_at}` : ''}\n`);
  });

storeCommand(token, 'revoke <id>')
  .description('Revoke a token: it stops working at once, in every server process sharing the store')
  .action(async (id: string, flags) => {
    await withAuth(flags, (auth) => auth.revoke(id));
    console.error(`revoked token ${id}`);
  });

/** Runs `work` on the server's stores, as the server opens them (it may be running on them). */
async function withYoke<T>(flags: StoreFlags, work: (yoke: Yoke) => Promise<T>): Promise<T> {
  const config = serverConfig(flags);
  if (config.databaseUrl === null && !existsSync(join(config.dataDir, 'meta.sqlite'))) {
    throw new Error(`${config.dataDir} is not a Yoke data directory (no meta.sqlite)`);
  }
  const meta = await openMetaStore(config);
  const yoke = new Yoke(meta, await openBlobStore(config));
  try {
    return await work(yoke);
  } finally {
    await yoke.close();
  }
}

storeCommand(program, 'fsck')
  .description('Check integrity: walk branches and workspaces → commits → trees → blobs and re-hash every reachable blob; exit status 1 if anything is missing or corrupt')
  .option('--repo <namespace/name>', 'check one repository only')
  .option('--no-content', 'check blob presence and size only, without re-hashing')
  .option('--json', 'print the report as JSON')
  .action(async (flags) => {
    const report = await withYoke(flags, async (yoke) => {
      const repo = flags.repo === undefined ? undefined : await yoke.repos.requireByPath(String(flags.repo));
      return yoke.fsck.check({ repo, verifyContent: flags.content });
    });
    if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else {
      for (const p of report.problems) process.stdout.write(`${p.kind}  ${p.repo}  ${p.id}  ${p.where}: ${p.detail}\n`);
      const more = report.problemCount > report.problems.length ? ` (${report.problemCount - report.problems.length} more not listed)` : '';
      process.stdout.write(
        `${report.clean ? 'clean' : `${report.problemCount} problem(s)${more}`}: ${report.repos} repositories, ${report.commits} commits, ${report.nodes} nodes, ` +
          `${report.blobs} blobs (${report.bytesVerified} bytes re-hashed) in ${report.durationMs} ms\n`,
      );
    }
    process.exitCode = report.clean ? 0 : 1;
  });

storeCommand(program, 'gc')
  .description('Remove commits, tree nodes, blobs and upload staging that no branch, workspace or open upload reaches; safe while the server runs')
  .option('--grace <duration>', 'spare anything stored or reused this recently: 24h, 30m, 0', '24h')
  .option('--dry-run', 'report what would be removed, remove nothing')
  .option('--json', 'print the report as JSON')
  .action(async (flags) => {
    const graceMs = parseGrace(flags.grace);
    const report = await withYoke(flags, (yoke) => yoke.gc.run({ graceMs, dryRun: flags.dryRun ?? false }));
    if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else {
      process.stdout.write(
        `${report.dryRun ? 'would remove' : 'removed'} ${report.blobs} blobs (${report.blobBytes} bytes), ${report.nodes} tree nodes, ${report.commits} commits, ` +
          `${report.uploads} expired uploads, ${report.stagings} orphaned upload stagings in ${report.durationMs} ms\n`,
      );
    }
  });

program.parseAsync(process.argv).catch((err: Error) => {
  console.error(`yoke: ${err.message}`);
  process.exit(1);
});
