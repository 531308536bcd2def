import { createXXHash128 } from 'hash-wasm';

/**
 * The xxh3-128 of a file, as Yoke names content (hex), read as a stream so a file of any size fits in memory.
 * Loaded on demand (its own chunk, with its WebAssembly) the first time a large file is uploaded.
 */
export async function contentHash(blob: Blob, onProgress?: (hashedBytes: number) => void): Promise<string> {
  const hasher = await createXXHash128();
  hasher.init();
  const reader = blob.stream().getReader();
  let hashed = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    hasher.update(value);
    hashed += value.length;
    onProgress?.(hashed);
  }
  return hasher.digest('hex');
}
