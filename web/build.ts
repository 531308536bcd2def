/**
 * Builds the web interface (web/src, TypeScript + Preact) into web/dist with esbuild: hashed, minified ES
 * modules and CSS under web/dist/assets (each also gzip- and brotli-compressed), and web/dist/manifest.json
 * naming the entry files. `npm ci` runs it (the `prepare` script); the server runs it at its first page when
 * the build is missing or older than its sources. Run alone: `node --import tsx web/build.ts`.
 */
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const WEB = fileURLToPath(new URL('.', import.meta.url));
export const DIST = join(WEB, 'dist');
export const ASSETS = join(DIST, 'assets');
const MANIFEST = join(DIST, 'manifest.json');
/** What the bundle is made of: a change to any of these makes the build stale. */
const SOURCES = [join(WEB, 'src'), fileURLToPath(new URL('../src/client', import.meta.url)), fileURLToPath(import.meta.url)];
/** Assets no manifest names any more are kept this long, for pages still open in a browser. */
const STALE_ASSET_MS = 24 * 60 * 60 * 1000;

export interface Manifest {
  /** File names under assets/. */
  script: string;
  style: string;
  /** Every asset with its size and gzip size in bytes (the bundle budget test reads them). */
  sizes: Record<string, { bytes: number; gzip: number }>;
}

export async function readManifest(): Promise<Manifest | null> {
  try {
    return JSON.parse(await readFile(MANIFEST, 'utf8')) as Manifest;
  } catch {
    return null;
  }
}

async function newestMtime(path: string): Promise<number> {
  const info = await stat(path);
  if (!info.isDirectory()) return info.mtimeMs;
  const entries = await readdir(path, { recursive: true, withFileTypes: true });
  const times = await Promise.all(entries.filter((e) => e.isFile()).map(async (e) => (await stat(join(e.parentPath, e.name))).mtimeMs));
  return Math.max(info.mtimeMs, ...times);
}

/** True when there is no build, or a source changed after it was made. */
export async function buildIsStale(): Promise<boolean> {
  const built = await stat(MANIFEST).catch(() => null);
  if (!built) return true;
  const sources = await Promise.all(SOURCES.map((s) => newestMtime(s).catch(() => 0)));
  return Math.max(...sources) > built.mtimeMs;
}

/** Writes a file whole or not at all: a server reading assets never sees half of one. */
async function writeAtomically(path: string, bytes: Uint8Array | string): Promise<void> {
  const temp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(temp, bytes);
  await rename(temp, path);
}

export async function buildWeb(): Promise<Manifest> {
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: { app: join(WEB, 'src/main.tsx') },
    bundle: true,
    splitting: true,
    format: 'esm',
    minify: true,
    sourcemap: false,
    target: ['chrome111', 'firefox111', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    entryNames: '[name]-[hash]',
    chunkNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    outdir: ASSETS,
    publicPath: '/-/assets',
    write: false,
    metafile: true,
    legalComments: 'none',
    logLevel: 'silent',
  });
  await mkdir(ASSETS, { recursive: true });
  const manifest: Manifest = { script: '', style: '', sizes: {} };
  for (const file of result.outputFiles) {
    const name = basename(file.path);
    const gzip = gzipSync(file.contents, { level: 9 });
    const brotli = brotliCompressSync(file.contents, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } });
    await Promise.all([writeAtomically(file.path, file.contents), writeAtomically(`${file.path}.gz`, gzip), writeAtomically(`${file.path}.br`, brotli)]);
    manifest.sizes[name] = { bytes: file.contents.length, gzip: gzip.length };
  }
  for (const [output, meta] of Object.entries(result.metafile.outputs)) {
    // Chunks loaded by import() are entry points too; the page's own is main.tsx.
    if (meta.entryPoint === undefined || basename(meta.entryPoint) !== 'main.tsx') continue;
    manifest.script = basename(output);
    if (meta.cssBundle) manifest.style = basename(meta.cssBundle);
  }
  await writeAtomically(MANIFEST, JSON.stringify(manifest, null, 2));
  await removeStaleAssets(new Set(Object.keys(manifest.sizes)));
  return manifest;
}

async function removeStaleAssets(current: Set<string>): Promise<void> {
  const cutoff = Date.now() - STALE_ASSET_MS;
  for (const name of await readdir(ASSETS)) {
    const asset = name.replace(/\.(gz|br)$/, '');
    if (current.has(asset)) continue;
    const path = join(ASSETS, name);
    const info = await stat(path).catch(() => null);
    if (info && info.mtimeMs < cutoff) await unlink(path).catch(() => {});
  }
}

let building: Promise<Manifest> | null = null;

/** The current build, made first when missing or stale (once per process, however many callers ask). */
export function ensureWebBuild(): Promise<Manifest> {
  building ??= (async () => ((await buildIsStale()) ? buildWeb() : (await readManifest()) ?? buildWeb()))();
  building.catch(() => {
    building = null;
  });
  return building;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const manifest = await buildWeb();
  for (const [name, size] of Object.entries(manifest.sizes)) console.log(`web/dist/assets/${name}\t${size.bytes} B\t${size.gzip} B gzip`);
}
