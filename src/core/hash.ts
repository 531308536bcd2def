import { xxh3 } from '@node-rs/xxhash';
import { createXXHash128, type IHasher } from 'hash-wasm';

/**
 * Content hashes are xxHash3-128 of the raw bytes, printed as lower-case hex without leading
 * zeros (Oxen's `{:x}` of a u128). Inputs may arrive zero-padded or upper-case; normalise them.
 *
 * Buffers go through @node-rs/xxhash's SIMD path. Its plain `xxh128()` uses a slow scalar
 * const-fn; passing the standard secret explicitly selects the fast path and yields the same
 * digest. Streams go through hash-wasm, the only 128-bit streaming xxh3 available to Node.
 */
const DEFAULT_SECRET = Buffer.from(
  'b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671f' +
    'cb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c' +
    '3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8' +
    'a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364' +
    'eac5ac8334d3ebc3c581a0fffa1363eb170ddd51b7f0da49d316552629d4689e' +
    '2b16be587d47a1fc8ff8b8d17ad031ce45cb3a8f95160428afd7fbcabb4b407e',
  'hex',
);

const HEX = /^[0-9a-fA-F]{1,32}$/;

/** Canonical form of a hash string, or null if it is not 1–32 hex digits. */
export function normalizeHash(input: string): string | null {
  if (typeof input !== 'string' || !HEX.test(input)) return null;
  const stripped = input.toLowerCase().replace(/^0+/, '');
  return stripped === '' ? '0' : stripped;
}

export function isCanonicalHash(input: string): boolean {
  return normalizeHash(input) === input;
}

export function hashBuffer(data: Uint8Array | string): string {
  return xxh3.xxh128WithSecret(data, DEFAULT_SECRET).toString(16);
}

/** Incremental hasher for streamed bytes. */
export interface StreamHasher {
  update(chunk: Uint8Array): void;
  /** The state after the bytes so far (a few hundred bytes), to resume elsewhere with `createStreamHasher(state)`. */
  save(): Uint8Array;
  digest(): string;
}

// hash-wasm instantiates a wasm module per hasher; keep a small pool so per-file cost stays low.
const pool: IHasher[] = [];

/** A fresh hasher, or one resumed from a `save()`d state (of this same hash function). */
export async function createStreamHasher(state?: Uint8Array): Promise<StreamHasher> {
  const inner = pool.pop() ?? (await createXXHash128());
  inner.init();
  if (state !== undefined) inner.load(state);
  let done = false;
  return {
    update(chunk) {
      inner.update(chunk);
    },
    save() {
      return inner.save();
    },
    digest() {
      if (done) throw new Error('digest() called twice');
      done = true;
      const hex = inner.digest('hex');
      if (pool.length < 64) pool.push(inner);
      return normalizeHash(hex)!;
    },
  };
}

/** Hash and size of everything `source` yields. */
export async function hashStream(source: AsyncIterable<Uint8Array>): Promise<{ hash: string; size: number }> {
  const hasher = await createStreamHasher();
  let size = 0;
  for await (const chunk of source) {
    hasher.update(chunk);
    size += chunk.byteLength;
  }
  return { hash: hasher.digest(), size };
}
