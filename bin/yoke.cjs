#!/usr/bin/env -S node --max-semi-space-size=8
// The Node flag: a young generation of at most 2 × 8 MiB instead of 2 × 16, which sits full under a sustained
// upload. With it and the old generation's bound `yoke serve` sets (src/cli/main.ts) the server's memory rose 36 MiB
// over idle across 1,000,000 ingested files, against 95 without, at the same CPU per request (bench/RESULTS.md,
// issue 15). V8 reads it only at start-up, so it is given here and in package.json's `start`, and as NODE_OPTIONS
// elsewhere (README).
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
