import { Command } from 'commander';
import { serverConfig } from '../config.js';
import { startServer } from '../server/main.js';

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
  .option('--log-level <level>', 'pino log level or "silent" (env YOKE_LOG_LEVEL, default info)')
  .action(async (flags) => {
    const server = await startServer(serverConfig(flags));
    let stopping = false;
    const shutdown = async () => {
      // A second signal means "now".
      if (stopping) process.exit(1);
      stopping = true;
      // Requests under way get a grace period; a client holding a request open must not keep the
      // process alive after that.
      setTimeout(() => server.app.server.closeAllConnections(), SHUTDOWN_GRACE_MS).unref();
      await server.close();
      process.exit(0);
    };
    process.on('SIGINT', shutdown);
    process.on('SIGTERM', shutdown);
  });

program.parseAsync(process.argv).catch((err: Error) => {
  console.error(`yoke: ${err.message}`);
  process.exit(1);
});
