#!/usr/bin/env node
// The `yoke` command. CommonJS on purpose: it runs before Node touches its thread pool, so the pool
// size below takes effect (fsync-heavy uploads park pool threads; 4 is too few to keep the disk busy).
process.env.UV_THREADPOOL_SIZE = process.env.UV_THREADPOOL_SIZE || '64';
// Runs the TypeScript sources through tsx's loader, so the package needs no build step.
import('tsx/esm/api')
  .then(({ register }) => {
    register();
    return import('../src/cli/main.ts');
  })
  .catch((err) => {
    console.error(`yoke: ${err.message}`);
    process.exit(1);
  });
