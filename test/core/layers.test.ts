import { strict as assert } from 'node:assert';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

/**
 * The dependency rule of docs/ARCHITECTURE.md §1, read from the sources: imports only go downwards,
 * and the server reaches the stores only through services (one use case, one service method).
 */

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Only this file of the server opens the stores. */
const OPENS_STORES = 'server/main.ts';
async function sources(folder: string): Promise<Array<{ file: string; text: string }>> {
  const entries = await readdir(join(SRC, folder), { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => join(e.parentPath, e.name));
  return Promise.all(files.map(async (path) => ({ file: relative(SRC, path), text: await readFile(path, 'utf8') })));
}

/** Every module a source imports or re-exports, statically or dynamically, as written. */
function importsOf(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g)) {
    found.push(match[1] ?? match[2] ?? match[3]);
  }
  return found;
}

/** Which layer folder of src/ an import from `file` lands in ('' when outside src/ or a package). */
function layerOf(file: string, specifier: string): string {
  if (!specifier.startsWith('.')) return '';
  const target = relative(SRC, join(SRC, file, '..', specifier));
  return target.startsWith('..') ? '' : target.split(/[\\/]/)[0];
}

describe('layers', () => {
  it('finds the imports it checks (the scan itself works)', async () => {
    const main = (await sources('server')).find((s) => s.file === OPENS_STORES);
    assert.ok(main, `${OPENS_STORES} exists`);
    assert.ok(importsOf(main.text).some((i) => layerOf(main.file, i) === 'storage'), 'server/main.ts imports the stores it opens');
  });

  it('the server imports nothing from src/storage/ and uses no store through Yoke, except where the stores are opened', async () => {
    const offenders: string[] = [];
    for (const { file, text } of await sources('server')) {
      if (file === OPENS_STORES) continue;
      for (const specifier of importsOf(text)) if (layerOf(file, specifier) === 'storage') offenders.push(`${file} imports ${specifier}`);
      for (const use of text.matchAll(/\byoke\s*\.\s*(meta|blobs)\b/g)) offenders.push(`${file} uses yoke.${use[1]}`);
    }
    assert.deepEqual(offenders, [], 'use a service method instead (src/services/), and record types from services/records.ts');
  });

  it('imports only go downwards: core → storage → services → server → cli', async () => {
    const allowed: Record<string, string[]> = {
      core: ['core'],
      storage: ['core', 'storage'],
      services: ['core', 'storage', 'services'],
      server: ['core', 'storage', 'services', 'server', 'config.js'],
      // The typed API client runs in browsers too: it speaks HTTP only and imports nothing of the server.
      client: ['client'],
    };
    const offenders: string[] = [];
    for (const [layer, may] of Object.entries(allowed)) {
      for (const { file, text } of await sources(layer)) {
        for (const specifier of importsOf(text)) {
          const target = layerOf(file, specifier);
          if (target !== '' && !may.includes(target)) offenders.push(`${file} imports ${specifier}`);
        }
      }
    }
    assert.deepEqual(offenders, []);
  });

  it('services are free of HTTP: no fastify', async () => {
    const offenders = (await sources('services')).filter(({ text }) => importsOf(text).some((i) => i === 'fastify' || i.startsWith('@fastify/'))).map((s) => s.file);
    assert.deepEqual(offenders, []);
  });
});
