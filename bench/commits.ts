/**
 * `npm run bench -- commits` (issue 15): one-file commits into a directory of DIR_ENTRIES entries.
 *
 * - Metadata each commit stores: tree_nodes rows new after the commit (ids and their bytes, read from
 *   the server's SQLite file by a second connection), beside what Oxen's plain records (every record
 *   whole, the layout before chunking) would have stored for the same commit: the new records
 *   reassembled. Both come from the same commits, so the comparison is exact.
 * - ms per commit (PUT of one file, as a client sees it) and the server's RSS every RSS_EVERY commits
 *   over COMMITS commits.
 * - With YOKE_BENCH_COMMITS_BEFORE (another checkout, e.g. the commit before the chunked layout, with
 *   node_modules), the same run on its server too: ms per commit and RSS of the layout before, measured.
 * - The first page of the directory right after it is filled (its nodes not decoded yet), on each server.
 * - Baseline: git's plumbing (hash-object, update-index, write-tree, commit-tree) committing one file
 *   into the same tree: bytes of the loose objects written, ms per commit.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { storedBlobs } from '../src/core/stored-records.js';
import { jsonOrThrow, ROOT, startServerProcess, time } from './lib.js';

const DIR_ENTRIES = Number(process.env.YOKE_BENCH_COMMITS_DIR_ENTRIES ?? 100_000);
const COMMITS = Number(process.env.YOKE_BENCH_COMMITS_COUNT ?? 10_000);
/** Commits whose stored bytes are measured (each reads every row id of the repository). */
const MEASURED = Number(process.env.YOKE_BENCH_COMMITS_MEASURED ?? 20);
const RSS_EVERY = Math.max(1, Math.floor(COMMITS / 10));
const GIT_COMMITS = Number(process.env.YOKE_BENCH_COMMITS_GIT ?? 20);
const AUTHOR = { name: 'Bench', email: 'bench@example.com' };
const DIR = 'big';
const BEFORE = process.env.YOKE_BENCH_COMMITS_BEFORE;

const entryName = (i: number) => `e${String(i).padStart(7, '0')}.txt`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const kb = (bytes: number) => `${(bytes / 1000).toFixed(1)} KB`;

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

async function commitOne(repoUrl: string, i: number): Promise<void> {
  const form = new FormData();
  form.append('name', AUTHOR.name);
  form.append('email', AUTHOR.email);
  form.append('message', `commit ${i}`);
  form.append('files[]', new Blob([`changed ${i}\n`]), entryName((i * 7919) % DIR_ENTRIES));
  await jsonOrThrow(await fetch(`${repoUrl}/file/main/${DIR}`, { method: 'PUT', body: form }));
}

async function fillDirectory(repoUrl: string) {
  for (let start = 0; start < DIR_ENTRIES; start += 10_000) {
    const form = new FormData();
    form.append('name', AUTHOR.name);
    form.append('email', AUTHOR.email);
    for (let i = start; i < Math.min(DIR_ENTRIES, start + 10_000); i++) form.append('files[]', new Blob([`entry ${i}\n`]), entryName(i));
    await jsonOrThrow(await fetch(`${repoUrl}/file/main/${DIR}`, { method: 'PUT', body: form }));
  }
}

/** The table rows of one checkout's server (`root`): the stored bytes, and what Oxen's plain records would have stored. */
async function yokeCommits(work: string, label: string, root: string): Promise<string[]> {
  const dataDir = join(work, `yoke-${label}`);
  const server = await startServerProcess(dataDir, {}, root);
  const pid = server.child.pid!;
  try {
    await jsonOrThrow(await fetch(`${server.url}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'bench', name: 'commits' }) }));
    const repoUrl = `${server.url}/api/repos/bench/commits`;
    await fillDirectory(repoUrl);
    const cold = await time(async () => jsonOrThrow(await fetch(`${repoUrl}/dir/main/${DIR}?page_size=100&page=1`)));
    const db = new Database(join(dataDir, 'meta.sqlite'), { readonly: true });
    const ids = () => new Set((db.prepare('SELECT id FROM tree_nodes').all() as Array<{ id: string }>).map((r) => r.id));
    const row = db.prepare('SELECT data FROM tree_nodes WHERE id = ?');
    const data = (id: string) => (row.get(id) as { data: Buffer } | undefined)?.data;

    const chunked: number[] = [];
    const plain: number[] = [];
    const rows: number[] = [];
    for (let i = 0; i < MEASURED; i++) {
      const before = ids();
      await commitOne(repoUrl, i);
      const added = [...ids()].filter((id) => !before.has(id));
      chunked.push(added.reduce((sum, id) => sum + data(id)!.length, 0));
      // The same commit's records, whole: what the plain layout stores (chunks are not records).
      plain.push(
        added
          .filter((id) => !id.startsWith('k'))
          .reduce((sum, id) => {
            const blobs = storedBlobs(data(id)!, data);
            return sum + 4 + blobs.node.length + blobs.children.length;
          }, 0),
      );
      rows.push(added.length);
    }
    db.close();

    const ms: number[] = [];
    const rss: string[] = [`${rssMiB(pid).toFixed(0)}`];
    for (let i = MEASURED; i < COMMITS; i++) {
      const started = process.hrtime.bigint();
      await commitOne(repoUrl, i);
      ms.push(Number(process.hrtime.bigint() - started) / 1e6);
      if ((i + 1) % RSS_EVERY === 0) rss.push(rssMiB(pid).toFixed(0));
    }
    const range = (xs: number[]) => `${kb(median(xs))} (${kb(Math.min(...xs))}–${kb(Math.max(...xs))})`;
    return [
      `| Yoke ${label}: stored | ${range(chunked)}, ${median(rows)} rows | ${median(ms).toFixed(1)} ms | ${rss.join(' → ')} MiB | ${(cold.seconds * 1000).toFixed(0)} ms |`,
      `| Yoke ${label}: the same commits' records, whole (Oxen's plain records) | ${range(plain)} | — | — | — |`,
    ];
  } finally {
    await server.stop();
  }
}

/** Bytes under `dir`, recursively. */
async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? await treeBytes(path) : (await stat(path)).size;
  }
  return total;
}

async function gitCommits(work: string): Promise<string> {
  const repo = join(work, 'git');
  execFileSync('git', ['init', '-q', '--bare', repo]);
  const lines = ['commit refs/heads/main', 'committer Bench <bench@example.com> 0 +0000', 'data 4', 'fill'];
  for (let i = 0; i < DIR_ENTRIES; i++) lines.push(`M 100644 inline ${DIR}/${entryName(i)}`, `data ${`entry ${i}\n`.length}`, `entry ${i}\n`);
  execFileSync('git', ['-C', repo, 'fast-import', '--quiet'], { input: lines.join('\n') + '\n', maxBuffer: 1 << 30 });
  const env = { ...process.env, GIT_INDEX_FILE: join(work, 'git-index'), GIT_AUTHOR_NAME: 'Bench', GIT_AUTHOR_EMAIL: 'b@e', GIT_COMMITTER_NAME: 'Bench', GIT_COMMITTER_EMAIL: 'b@e' };
  const git = (args: string[], input?: string) => execFileSync('git', ['-C', repo, ...args], { env, input, maxBuffer: 1 << 30 }).toString().trim();
  git(['read-tree', 'main']);
  const bytes: number[] = [];
  const ms: number[] = [];
  for (let i = 0; i < GIT_COMMITS; i++) {
    const before = await treeBytes(join(repo, 'objects'));
    const started = process.hrtime.bigint();
    const blob = git(['hash-object', '-w', '--stdin'], `changed ${i}\n`);
    git(['update-index', '--cacheinfo', `100644,${blob},${DIR}/${entryName((i * 7919) % DIR_ENTRIES)}`]);
    const tree = git(['write-tree']);
    const commit = git(['commit-tree', tree, '-p', 'main', '-m', `commit ${i}`]);
    git(['update-ref', 'refs/heads/main', commit]);
    ms.push(Number(process.hrtime.bigint() - started) / 1e6);
    bytes.push((await treeBytes(join(repo, 'objects'))) - before);
  }
  return `| git (hash-object, update-index, write-tree, commit-tree; loose objects, index not counted) | ${kb(median(bytes))} | ${median(ms).toFixed(1)} ms | — | — |`;
}

export async function commitsBench(): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'yoke-bench-commits-'));
  try {
    const lines = [
      `### One-file commits into a ${DIR_ENTRIES.toLocaleString('en-US')}-entry directory (${COMMITS.toLocaleString('en-US')} commits)`,
      '',
      '| layout | metadata stored per commit (median of ' + MEASURED + ', range) | per commit | server RSS every ' + RSS_EVERY + ' commits | cold first page |',
      '|---|---:|---:|---|---:|',
      ...(await yokeCommits(work, 'this checkout', ROOT)),
      ...(BEFORE ? await yokeCommits(work, `before (${BEFORE})`, BEFORE) : []),
      await gitCommits(work),
    ];
    const out = lines.join('\n');
    console.log(out);
    return out;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
