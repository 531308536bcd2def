import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The `yoke` command as installed (bin/yoke.cjs). */
export const YOKE_BIN = fileURLToPath(new URL('../../bin/yoke.cjs', import.meta.url));

/** Runs `yoke …` as a user would; resolves with its exit code and both outputs. */
export function runYoke(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [YOKE_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Where the local blob store keeps a blob (the hash left-padded to 32 digits, sharded by its first two). */
export function blobPath(dataDir: string, hash: string): string {
  const padded = hash.padStart(32, '0');
  return join(dataDir, 'blobs', 'objects', padded.slice(0, 2), padded.slice(2));
}

/** A TCP port free on 127.0.0.1 right now (for a server started in another process). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Runs `yoke serve --port <free> --data-dir <dataDir> …extra` in its own process and waits until it answers. */
export async function startYokeProcess(dataDir: string, extra: string[] = []): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [YOKE_BIN, 'serve', '--port', String(port), '--data-dir', dataDir, '--log-level', 'fatal', ...extra], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 400; i++) {
    if (child.exitCode !== null) throw new Error(`yoke serve exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/api/version`)).ok) return { url, child };
    } catch {}
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill('SIGKILL');
  throw new Error('yoke serve did not start');
}
