import { spawn } from 'node:child_process';
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
