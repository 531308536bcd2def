/**
 * Round trips to PostgreSQL per operation (issue 12): the same operations on a small and a larger
 * repository (more files, more vnodes, more commits; the same depth) must send about the same number of
 * statements, counted by `PgMetaStore.statements`. Each operation runs on a freshly started server, so
 * the node cache is cold and every node it needs is read from the database. vnodeSize 2 gives every
 * directory many vnodes. Skipped, with the reason, without PostgreSQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serverConfig } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/server/main.js';
import type { PgMetaStore } from '../../src/storage/pg-meta-store.js';
import type { CommitRecord, RepoRecord } from '../../src/storage/meta-store.js';
import { startPostgres } from '../helpers/postgres.js';

const postgres = await startPostgres();
const AUTHOR = { name: 'Ada', email: 'ada@example.com' };
/** What any operation below may cost: a few statements per level of a three-level tree, and its own constant. */
const MAX_STATEMENTS = 40;

/** A repository of `dirs` × `dirs` directories two levels down with `files` files each, one commit per directory, then two edits of one file; a branch per directory. */
interface Shape {
  dirs: number;
  files: number;
}

const SMALL: Shape = { dirs: 2, files: 3 };
const LARGE: Shape = { dirs: 5, files: 12 };
const commitsOf = (shape: Shape) => shape.dirs * shape.dirs + 2;

interface Built {
  dataDir: string;
  databaseUrl: string;
  /** The directories holding files (`d0/e0`…). */
  dirs: string[];
  hashes: string[];
}

const start = (built: Pick<Built, 'dataDir' | 'databaseUrl'>) =>
  startServer(serverConfig({ host: '127.0.0.1', port: 0, dataDir: built.dataDir, databaseUrl: built.databaseUrl, logLevel: 'silent' }, {}), { vnodeSize: 2 });

async function put(server: RunningServer, resource: string, files: Array<{ name: string; content: string }>, message: string): Promise<string[]> {
  const form = new FormData();
  for (const [key, value] of Object.entries({ message, ...AUTHOR })) form.append(key, value);
  for (const f of files) form.append('file', new Blob([f.content]), f.name);
  const res = await fetch(`${server.url}/api/repos/rt/data/file/main/${resource}`, { method: 'PUT', body: form });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return (body.files as Array<{ hash: string }>).map((f) => f.hash);
}

async function build(cluster: NonNullable<typeof postgres.cluster>, shape: Shape): Promise<Built> {
  const built: Built = { dataDir: await mkdtemp(join(tmpdir(), 'yoke-round-trips-')), databaseUrl: await cluster.createDatabase(), dirs: [], hashes: [] };
  const server = await start(built);
  try {
    const created = await fetch(`${server.url}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'rt', name: 'data', user: AUTHOR }) });
    assert.equal(created.status, 200);
    for (let d = 0; d < shape.dirs; d++) {
      for (let e = 0; e < shape.dirs; e++) {
        const files = Array.from({ length: shape.files }, (_, f) => ({ name: `f${f}.txt`, content: `d${d}/e${e}/f${f}\n` }));
        built.hashes.push(...(await put(server, `d${d}/e${e}`, files, `fill d${d}/e${e}`)));
        built.dirs.push(`d${d}/e${e}`);
      }
    }
    for (const round of [1, 2]) built.hashes.push(...(await put(server, 'd0/e0', [{ name: 'f0.txt', content: `edit ${round}\n` }], `edit ${round}`)));
    for (const dir of built.dirs) {
      const branched = await fetch(`${server.url}/api/repos/rt/data/branches`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ new_name: `at-${dir}`, from_name: 'main' }) });
      assert.equal(branched.status, 200);
    }
  } finally {
    await server.close();
  }
  return built;
}

/** Runs `work` on a freshly started server and returns how many statements it sent. */
async function statementsOf(built: Built, work: (server: RunningServer, repo: RepoRecord) => Promise<unknown>): Promise<number> {
  const server = await start(built);
  try {
    const repo = (await server.yoke.meta.getRepo('rt', 'data'))!;
    const meta = server.yoke.meta as PgMetaStore;
    const before = meta.statements;
    await work(server, repo);
    return meta.statements - before;
  } finally {
    await server.close();
  }
}

async function ok(server: RunningServer, path: string, init?: RequestInit): Promise<Buffer> {
  const res = await fetch(`${server.url}/api/repos/rt/data/${path}`, init);
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200, `${path}: ${body.toString('utf8', 0, 300)}`);
  return body;
}

const head = async (server: RunningServer, repo: RepoRecord): Promise<CommitRecord> => server.yoke.revisions.resolveCommit(repo, 'main');

/** Copies everything of `rt/data` but its head commit into a new repository, as if all but the last commit had been pushed. */
async function pushedButHead(server: RunningServer, repo: RepoRecord, hashes: string[], name: string, withHistory: boolean): Promise<{ target: RepoRecord; tip: CommitRecord }> {
  const meta = server.yoke.meta;
  const target = await meta.createRepo({ namespace: 'rt', name, description: null, creatorName: null, creatorEmail: null });
  const ids = await meta.listNodeIds(repo.id, Number.MAX_SAFE_INTEGER, null, 1_000_000);
  const nodes = await meta.getNodes(repo.id, ids);
  await meta.putNodes(target.id, [...nodes]);
  const commits = (await meta.listAllCommits(repo.id, { offset: 0, limit: 1_000_000 })).sort((a, b) => a.generation - b.generation);
  const tip = commits.pop()!;
  if (withHistory) await meta.addCommits(target.id, commits);
  await meta.addRepoBlobs(target.id, [...(await meta.findRepoBlobs(repo.id, hashes))].map(([hash, size]) => ({ hash, size })));
  return { target, tip };
}

/** The operations measured, each against the built repository. */
const operations: Record<string, (server: RunningServer, repo: RepoRecord, built: Built) => Promise<unknown>> = {
  'list the branches': (server) => ok(server, 'branches'),
  'list the root directory': (server) => ok(server, 'dir/main'),
  'list a directory two levels down': (server) => ok(server, 'dir/main/d0/e0'),
  'a history page': (server) => ok(server, 'commits/history/main?page=1&page_size=10'),
  'the history of one file': (server) => ok(server, 'commits/history/main/d0/e0/f0.txt'),
  'resolve a batch download': (server, _repo, built) =>
    ok(server, 'versions/batch-download', { method: 'POST', body: built.hashes.map((h) => `${h}\n`).join('') }),
  "a clone's tree download (every commit's tree)": async (server, repo) => ok(server, `tree/download/${(await head(server, repo)).id}`),
  "a clone's directory indexes (every commit's dir_hashes)": async (server, repo) => ok(server, `commits/${(await head(server, repo)).id}/download_dir_hashes_db`),
  'files a push must send (whole history)': async (server, repo) => server.yoke.sync.missingFiles(repo, null, await head(server, repo)),
  'compare the first commit with the head': async (server, repo) => {
    const [first] = await server.yoke.meta.listRootCommits(repo.id);
    return server.yoke.merges.compareEntries(repo, { base: first.id, head: 'main', threeDot: false }, '');
  },
  'fsck of the repository': (server, repo) => server.yoke.fsck.check({ repo, verifyContent: false }),
  // These two write (to branches of their own), so they come last.
  'a commit adding a file to every directory': async (server, repo, built) => {
    const base = await head(server, repo);
    await server.yoke.meta.createBranch(repo.id, 'everywhere', base.id);
    const hash = built.hashes[0];
    return server.yoke.commits.commit({
      repo,
      branch: 'everywhere',
      base,
      changes: new Map(built.dirs.map((dir) => [`${dir}/new.txt`, { hash, size: 9 }])),
      blobs: [{ hash, size: 9 }],
      author: AUTHOR,
      message: 'a file in every directory',
    });
  },
  'a workspace: stage a file in every directory, its status, commit it': async (server, repo, built) => {
    const { workspace } = await server.yoke.workspaces.getOrCreate(repo, { id: 'everywhere', branch: 'main' });
    await server.yoke.workspaces.stageFiles(workspace, built.dirs.map((dir) => ({ path: `${dir}/staged.txt`, hash: built.hashes[0], size: 9 })));
    const { changes } = await server.yoke.workspaces.status(workspace);
    assert.equal(changes.length, built.dirs.length);
    return server.yoke.workspaces.commit(repo, workspace, 'from-workspace', { message: 'staged everywhere', author: AUTHOR.name, email: AUTHOR.email });
  },
};

if (postgres.skip !== undefined) {
  it('round trips to PostgreSQL per operation', { skip: postgres.skip }, () => {});
} else {
  const cluster = postgres.cluster;
  describe('round trips to PostgreSQL do not grow with the number of files or commits', () => {
    let small: Built;
    let large: Built;
    before(async () => {
      small = await build(cluster, SMALL);
      large = await build(cluster, LARGE);
    });
    after(async () => {
      for (const built of [small, large]) if (built) await rm(built.dataDir, { recursive: true, force: true });
      await cluster.stop();
    });

    for (const [name, operation] of Object.entries(operations)) {
      it(name, async () => {
        const counts = [];
        for (const built of [small, large]) counts.push(await statementsOf(built, (server, repo) => operation(server, repo, built)));
        console.log(`# ${name}: ${counts[0]} statements (small), ${counts[1]} (large)`);
        assert.ok(counts[1] <= counts[0] + 2, `${name}: ${counts[0]} statements on the small repository, ${counts[1]} on the larger one`);
        assert.ok(counts[1] <= MAX_STATEMENTS, `${name}: ${counts[1]} statements`);
      });
    }

    for (const [name, withHistory] of [["a push's tree check of its last commit", true], ["a push's tree check of every commit", false]] as const) {
      it(name, async () => {
        const counts = [];
        for (const built of [small, large]) {
          let pushed: { target: RepoRecord; tip: CommitRecord } | undefined;
          const server = await start(built);
          try {
            const repo = (await server.yoke.meta.getRepo('rt', 'data'))!;
            pushed = await pushedButHead(server, repo, built.hashes, `pushed-${withHistory}`, withHistory);
          } finally {
            await server.close();
          }
          counts.push(await statementsOf(built, (server) => server.yoke.sync.adoptCommit(pushed!.target, pushed!.tip.id)));
        }
        console.log(`# ${name}: ${counts[0]} statements (small), ${counts[1]} (large)`);
        // Pushed commits are found a generation at a time (their ids come from their children's nodes): two statements each.
        const grown = withHistory ? 0 : 2 * (commitsOf(LARGE) - commitsOf(SMALL));
        assert.ok(counts[1] <= counts[0] + 2 + grown, `${counts[0]} statements on the small repository, ${counts[1]} on the larger one`);
      });
    }
  });
}
