/**
 * Runs a command with one private PostgreSQL cluster for all of it (YOKE_TEST_DATABASE_URL set to it), so test
 * files share a cluster instead of each running initdb (about 4 s a file on two cores). Without PostgreSQL's
 * server binaries, or with YOKE_TEST_DATABASE_URL already set, it only runs the command.
 * Usage: node --import tsx test/services/with-postgres.ts <command> [args…]
 */
import { spawn } from 'node:child_process';
import { startPostgres } from '../helpers/postgres.js';

const [command, ...args] = process.argv.slice(2);
if (!command) throw new Error('usage: with-postgres.ts <command> [args…]');
const env = { ...process.env };
const started = env.YOKE_TEST_DATABASE_URL ? null : await startPostgres();
if (started?.cluster) {
  env.YOKE_TEST_DATABASE_URL = started.cluster.adminUrl;
  console.error(`PostgreSQL for the tests at ${started.cluster.adminUrl}`);
}
const child = spawn(command, args, { stdio: 'inherit', env });
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
const code = await new Promise<number>((resolve) => child.on('exit', (status, signal) => resolve(status ?? (signal ? 1 : 0))));
await started?.cluster?.stop();
process.exit(code);
