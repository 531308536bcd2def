import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readDirHashesDb, writeDirHashesDb } from '../../src/storage/dir-hashes-db.js';

/** Oxen's own client: the project's venv (made by test/python/run.sh) or a scratch one. */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PYTHON = [join(ROOT, '.venv-oxen/bin/python')].find((p) => existsSync(p));
const NO_CLIENT = PYTHON === undefined && 'no Python with oxenai: .venv-oxen/bin/python is missing (bash test/python/venv.sh makes it; npm test runs it first)';

/**
 * Driven by the real client. `init REPO` makes a repository with nested directories, commits it
 * and prints the commit id; `status REPO` prints what `oxen status` sees.
 */
const CLIENT_SCRIPT = `
import json, os, sys, oxen
from oxen import user
user.config_user("Yoke Test", "yoke@example.com")
cmd, path = sys.argv[1], sys.argv[2]
repo = oxen.Repo(path)
if cmd == "init":
    repo.init()
    for rel in ["top.txt", "a/one.txt", "a/b/two.txt", "a/b/c/three.txt", "z/x.txt"]:
        f = os.path.join(path, rel)
        os.makedirs(os.path.dirname(f), exist_ok=True)
        with open(f, "w") as out:
            out.write(rel)
    repo.add(path)
    print(json.dumps({"commit": repo.commit("nested dirs").id}))
else:
    s = repo.status()
    print(json.dumps({"modified": s.unstaged_modified_files(), "text": str(s)}))
`;

/** Raw access for the tests that must see or plant bytes the module would normalise. */
interface RawDb {
  ready(): Promise<void>;
  write(opts: { autoDestroy: boolean }): { put(k: string, v: string): void; flush(): Promise<void> };
  iterator(range: object): AsyncIterable<{ key: Buffer; value: Buffer }>;
  close(): Promise<void>;
}
const RawRocksDB = createRequire(import.meta.url)('rocksdb-native') as new (path: string, opts?: object) => RawDb;

async function rawEntries(dir: string): Promise<Array<[string, string]>> {
  const db = new RawRocksDB(dir, { readOnly: true, createIfMissing: false });
  const out: Array<[string, string]> = [];
  try {
    for await (const { key, value } of db.iterator({})) out.push([key.toString('utf8'), value.toString('utf8')]);
  } finally {
    await db.close();
  }
  return out;
}

async function listing(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).sort();
  return Promise.all(names.map(async (n) => `${n}:${(await stat(join(dir, n))).size}`));
}

describe('dir-hashes-db', () => {
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'yoke-dirhashes-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('round-trips entries, keyed and valued as the client writes them', async () => {
    const dir = join(tmp, 'round-trip', 'history', 'c1', 'dir_hashes');
    await writeDirHashesDb(dir, [
      ['', 'c40bcc74c2bcdc92ec25f92473521863'],
      ['a', '0276AA7209D351114CC2C2EC8EF793A4'], // upper case, padded: stored as {:x} prints it
      ['a\\b', 'b0bd6bd8e4ba2e90684803a7de2bff02'], // Windows separators
      ['a/b/c/', '55312f66b1fe0ad858dabd7d71769d17'], // trailing slash
      ['z', '442ed65fc4ecb3b697a4b74978a45a3'],
    ]);
    assert.deepEqual(await rawEntries(dir), [
      ['', 'c40bcc74c2bcdc92ec25f92473521863'],
      ['a', '276aa7209d351114cc2c2ec8ef793a4'],
      ['a/b', 'b0bd6bd8e4ba2e90684803a7de2bff02'],
      ['a/b/c', '55312f66b1fe0ad858dabd7d71769d17'],
      ['z', '442ed65fc4ecb3b697a4b74978a45a3'],
    ]);
    assert.deepEqual(
      await readDirHashesDb(dir),
      new Map([
        ['', 'c40bcc74c2bcdc92ec25f92473521863'],
        ['a', '276aa7209d351114cc2c2ec8ef793a4'],
        ['a/b', 'b0bd6bd8e4ba2e90684803a7de2bff02'],
        ['a/b/c', '55312f66b1fe0ad858dabd7d71769d17'],
        ['z', '442ed65fc4ecb3b697a4b74978a45a3'],
      ]),
    );
    const files = await readdir(dir);
    assert.ok(files.includes('CURRENT') && files.some((f) => f.endsWith('.sst')), files.join(' '));
    assert.ok(!files.some((f) => f.startsWith('LOG')), 'the info log is not shipped');
  });

  it('writes an empty index and refuses bad input or a used directory', async () => {
    const empty = join(tmp, 'empty');
    await writeDirHashesDb(empty, []);
    assert.deepEqual(await readDirHashesDb(empty), new Map());
    await assert.rejects(writeDirHashesDb(empty, [['', '1']]), /not empty/);
    await assert.rejects(writeDirHashesDb(join(tmp, 'bad'), [['a', 'xyz']]), /not a hash/);
    await assert.rejects(
      writeDirHashesDb(join(tmp, 'dup'), [
        ['a/', '1'],
        ['a', '2'],
      ]),
      /two hashes/,
    );
    await assert.rejects(readDirHashesDb(join(tmp, 'nowhere')), { code: 'ENOENT' });
  });

  it('reads legacy keys as the client does: backslashes are separators, "dir/" only fills a gap', async () => {
    const dir = join(tmp, 'legacy');
    const db = new RawRocksDB(dir, { createIfMissing: true });
    await db.ready();
    const batch = db.write({ autoDestroy: true });
    batch.put('', '1');
    batch.put('d\\e', '2');
    batch.put('moved/', '3'); // alone: stands for "moved"
    batch.put('kept', '4');
    batch.put('kept/', '5'); // beside "kept": ignored
    batch.put('zero', '000000000000000000000000000000ab');
    await batch.flush();
    await db.close();
    assert.deepEqual(
      await readDirHashesDb(dir),
      new Map([
        ['', '1'],
        ['d/e', '2'],
        ['kept', '4'],
        ['moved', '3'],
        ['zero', 'ab'],
      ]),
    );
  });

  describe('with the real client', { skip: NO_CLIENT }, () => {
    let home: string;
    const client = (cmd: string, repo: string) =>
      JSON.parse(
        execFileSync(PYTHON!, [join(home, 'client.py'), cmd, repo], {
          env: { ...process.env, HOME: home },
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        })
          .trim()
          .split('\n')
          .pop()!,
      );
    /** A committed client repository; returns it and the path of its commit's dir_hashes db. */
    const clientRepo = async (name: string) => {
      const repo = join(tmp, name);
      await mkdir(repo);
      const { commit } = client('init', repo) as { commit: string };
      return { repo, db: join(repo, '.oxen', 'history', commit, 'dir_hashes') };
    };

    before(async () => {
      home = join(tmp, 'home');
      await mkdir(home);
      await writeFile(join(home, 'client.py'), CLIENT_SCRIPT);
    });

    it('reads the db the client wrote: root is "", nested dirs "a/b", hashes {:x} text', async () => {
      const { db } = await clientRepo('client-wrote');
      const before = await listing(db);
      const hashes = await readDirHashesDb(db);
      assert.deepEqual([...hashes.keys()], ['', 'a', 'a/b', 'a/b/c', 'z']);
      assert.equal(new Set(hashes.values()).size, 5);
      // The client's own bytes are already canonical: lower-case hex, no zero padding.
      for (const [key, value] of await rawEntries(db)) {
        assert.equal(hashes.get(key), value);
        assert.match(value, /^[1-9a-f][0-9a-f]{0,31}$/);
      }
      assert.deepEqual(await listing(db), before, 'reading leaves the files as they were');
    });

    it("the client reads a db written here in place of its own (status finds a/b through it)", async () => {
      const { repo, db } = await clientRepo('client-reads');
      const hashes = await readDirHashesDb(db);
      await writeFile(join(repo, 'a', 'b', 'two.txt'), 'changed');

      // Control: an index lacking "a/b" makes status call the changed file untracked, so status
      // does go through this db rather than the tree alone.
      await rm(db, { recursive: true });
      await writeDirHashesDb(db, [...hashes].filter(([path]) => path !== 'a/b'));
      const blind = client('status', repo) as { modified: string[]; text: string };
      assert.deepEqual(blind.modified, []);
      assert.match(blind.text, /Untracked Files[\s\S]*a\/b\/two\.txt/);

      // The full index written here: the client finds a/b and sees the file as modified.
      await rm(db, { recursive: true });
      await writeDirHashesDb(db, hashes);
      const seen = client('status', repo) as { modified: string[]; text: string };
      assert.deepEqual(seen.modified, ['a/b/two.txt']);
      assert.doesNotMatch(seen.text, /Untracked/);
    });

    it("unpacked over the client's own db of that commit, ours is what it reads (its old WAL is ignored)", async () => {
      // A base..head download re-sends the base commit, which the client unpacks over its own
      // files: same names (CURRENT, MANIFEST-000005, OPTIONS-000007) are replaced, its
      // 000004.log stays. Leaving "a/b" out of ours shows which data the client then sees.
      const { repo, db } = await clientRepo('client-overlay');
      const hashes = await readDirHashesDb(db);
      const ours = join(tmp, 'overlay-db');
      await writeDirHashesDb(ours, [...hashes].filter(([path]) => path !== 'a/b'));
      await cp(ours, db, { recursive: true, force: true });
      assert.ok((await readdir(db)).includes('000004.log'), "the client's write-ahead log is still there");
      await writeFile(join(repo, 'a', 'b', 'two.txt'), 'changed');
      const status = client('status', repo) as { modified: string[]; text: string };
      assert.deepEqual(status.modified, []);
      assert.match(status.text, /Untracked Files[\s\S]*a\/b\/two\.txt/);
    });
  });
});
