import { createRequire } from 'node:module';
import { readdir, rm } from 'node:fs/promises';
import { normalizeHash } from '../core/hash.js';

/**
 * A commit's "dir_hashes" index as Oxen's client keeps it: a RocksDB database at
 * `.oxen/history/<commit_id>/dir_hashes/` mapping each directory's repo-relative path to the hash of
 * its directory node. Keys are UTF-8 paths with '/' separators and no trailing '/', the root being
 * the empty key; values are the hash as text in Oxen's `{:x}` form (lower-case hex, no leading
 * zeros), not bytes. The client reads it to find a directory's node without walking the tree
 * (status, add, the next commit, which starts from a copy of its parent's index).
 *
 * The binding is rocksdb-native (RocksDB 10.5), which writes SST format_version 6 like the client
 * (RocksDB 11.8). Its prebuilt binary has no compression library: tables it writes are uncompressed,
 * which the client reads, but it cannot read a table the client compressed with LZ4. The client
 * closes these databases without flushing, so an index normally lives only in the write-ahead log,
 * which reads fine; only an index past the client's 4 MiB memtable (some 40,000 directories) gets
 * LZ4 tables. Store uploaded dbs as files rather than relying on reading them.
 */

interface WriteBatch {
  put(key: string, value: string): void;
  flush(): Promise<void>;
}

interface RocksDB {
  ready(): Promise<void>;
  /** With autoDestroy the batch releases its hold on the db once flushed; without it close() hangs. */
  write(opts: { autoDestroy: boolean }): WriteBatch;
  iterator(range: object): AsyncIterable<{ key: Buffer; value: Buffer }>;
  flush(): Promise<void>;
  close(): Promise<void>;
}

interface RocksDBOptions {
  readOnly?: boolean;
  createIfMissing?: boolean;
}

// rocksdb-native is CommonJS without type declarations: load it through require and type the
// few calls used here.
const RocksDBClass = createRequire(import.meta.url)('rocksdb-native') as new (
  path: string,
  opts?: RocksDBOptions,
) => RocksDB;

/** A key as the client's writer spells it: backslashes become '/', trailing '/' are dropped. */
function canonicalKey(path: string): string {
  return path.replace(/\\/g, '/').replace(/\/+$/, '');
}

/**
 * Creates the index at `dir` (which must be absent or empty, so the db holds only `entries`) and
 * closes it with everything flushed to a table, leaving files that can be tarred as they are.
 */
export async function writeDirHashesDb(dir: string, entries: Iterable<[path: string, hash: string]>): Promise<void> {
  const rows = new Map<string, string>();
  for (const [path, hash] of entries) {
    const key = canonicalKey(path);
    const value = normalizeHash(hash);
    if (value === null) throw new Error(`dir_hashes: ${JSON.stringify(hash)} for ${JSON.stringify(path)} is not a hash`);
    const earlier = rows.get(key);
    if (earlier !== undefined && earlier !== value) {
      throw new Error(`dir_hashes: two hashes for directory ${JSON.stringify(key)}`);
    }
    rows.set(key, value);
  }
  const existing = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  if (existing.length > 0) throw new Error(`dir_hashes: ${dir} is not empty`);

  const db = new RocksDBClass(dir, { createIfMissing: true });
  try {
    await db.ready();
    const batch = db.write({ autoDestroy: true });
    for (const [key, value] of rows) batch.put(key, value);
    await batch.flush();
    // Move the memtable into a table so the data does not live only in the write-ahead log.
    await db.flush();
  } finally {
    await db.close();
  }
  // RocksDB's info log (tens of KiB per db) is not part of the database; the client's is empty.
  // Without this it would travel in every tarball, once per commit of a history.
  for (const name of await readdir(dir)) {
    if (name === 'LOG' || name.startsWith('LOG.old.')) await rm(`${dir}/${name}`, { force: true });
  }
}

/**
 * Reads the index at `dir` without changing its files (read-only open: no lock, no recovery
 * written back), as the client's loader does: keys with backslashes count as '/' paths and a key
 * with one trailing '/' only fills in a directory no plain key gave. Hashes come back in canonical
 * form. Fails if `dir` holds no database or a key or value is not what the client would accept.
 */
export async function readDirHashesDb(dir: string): Promise<Map<string, string>> {
  // Checked first: RocksDB's own error for a missing db does not say which path it was.
  await readdir(dir);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const result = new Map<string, string>();
  const db = new RocksDBClass(dir, { readOnly: true, createIfMissing: false });
  try {
    await db.ready();
  } catch (err) {
    await db.close().catch(() => {}); // rejects again with the same error once an open has failed
    throw explainOpenError(dir, err);
  }
  try {
    // Keys arrive in byte order, as the client iterates them, so "later wins" matches it too.
    for await (const { key, value } of db.iterator({})) {
      const path = utf8.decode(key).replace(/\\/g, '/');
      const hash = normalizeHash(utf8.decode(value));
      if (hash === null) throw new Error(`dir_hashes: value for ${JSON.stringify(path)} in ${dir} is not a hash`);
      if (path.endsWith('/')) {
        const trimmed = path.slice(0, -1);
        if (!result.has(trimmed)) result.set(trimmed, hash);
      } else {
        result.set(path, hash);
      }
    }
  } finally {
    await db.close();
  }
  return result;
}

/** RocksDB's "LZ4 not supported in this build" (raised when a table is opened) names neither the db nor the cause. */
function explainOpenError(dir: string, err: unknown): unknown {
  if (err instanceof Error && /not supported in this build/.test(err.message)) {
    return new Error(`dir_hashes: ${dir} has compressed tables, which this RocksDB build cannot read (${err.message})`, {
      cause: err,
    });
  }
  return err;
}
