/**
 * Sync benchmark: Oxen's own client (the pinned `oxenai` in .venv-oxen, made by test/python/venv.sh) pushes
 * to and clones from Yoke, beside git pushing to a bare repository and cloning it (file transport), in the
 * same run on the same disk. Two data sets: BENCH_SYNC_FILES small files of 4 KiB (10,000), and one file of
 * BENCH_SYNC_BIG_MIB MiB (2048). The server's peak RSS is sampled from /proc while it works.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, printTable, startServerProcess, time, type Row } from './lib.js';

const FILES = Number(process.env.BENCH_SYNC_FILES ?? 10_000);
const BIG_MIB = Number(process.env.BENCH_SYNC_BIG_MIB ?? 2048);
const PYTHON = join(ROOT, '.venv-oxen/bin/python');

/** Driven in its own Python process; prints one JSON line of step timings. */
const CLIENT = `
import json, os, sys, time, urllib.request
home = sys.argv[1]
os.environ['HOME'] = home; os.environ['OXEN_CONFIG_DIR'] = home + '/.config/oxen'
import oxen
oxen.user.config_user('Bench', 'bench@example.com')
mode, url, work = sys.argv[2], sys.argv[3], sys.argv[4]
t = {}
if mode == 'push':
    repo = oxen.Repo(work)
    repo.init()
    start = time.perf_counter()
    for name in sorted(os.listdir(work)):
        if name != '.oxen':
            repo.add(os.path.join(work, name))
    repo.commit('bench')
    t['add_commit'] = time.perf_counter() - start
    repo.set_remote('origin', url)
    start = time.perf_counter()
    repo.push('origin', 'main')
    t['push'] = time.perf_counter() - start
else:
    host, repo_id = url.split('/', 3)[2], url.split('/', 3)[3]
    start = time.perf_counter()
    oxen.clone(repo_id, work, host=host, scheme='http')
    t['clone'] = time.perf_counter() - start
print(json.dumps(t))
`;

async function fillSmall(dir: string) {
  await mkdir(dir, { recursive: true });
  const block = Buffer.alloc(4096);
  for (let i = 0; i < FILES; i++) {
    const sub = join(dir, `d${String(i % 100).padStart(2, '0')}`);
    if (i < 100) await mkdir(sub, { recursive: true });
    block.write(`file ${i} `.padEnd(32, '.'), 0);
    await writeFile(join(sub, `f${i}.bin`), block);
  }
}

function fillBig(dir: string) {
  execFileSync('mkdir', ['-p', dir]);
  // Random bytes (no compression helps anyone), written by dd to keep memory flat.
  execFileSync('bash', ['-c', `head -c ${BIG_MIB}M /dev/urandom > ${JSON.stringify(join(dir, 'big.bin'))}`]);
}

/** Runs a command; samples the RSS of `watchPid` meanwhile and returns the peak (MiB). */
async function run(command: string, args: string[], options: { cwd?: string; watchPid?: number } = {}): Promise<{ stdout: string; peakRssMiB: number }> {
  let peak = 0;
  const sample = async () => {
    if (options.watchPid === undefined) return;
    const status = await readFile(`/proc/${options.watchPid}/status`, 'utf8').catch(() => '');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    peak = Math.max(peak, kb / 1024);
  };
  const timer = setInterval(() => void sample(), 100);
  try {
    const stdout = await new Promise<string>((resolve, reject) => {
      const child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (c) => (out += c));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${command} ${args.join(' ')} exited ${code}`))));
    });
    await sample();
    return { stdout, peakRssMiB: peak };
  } finally {
    clearInterval(timer);
  }
}

async function git(args: string[], cwd?: string) {
  await run('git', ['-c', 'user.name=Bench', '-c', 'user.email=bench@example.com', '-c', 'init.defaultBranch=main', ...args], { cwd });
}

export async function syncBench(): Promise<string> {
  if (!existsSync(PYTHON)) throw new Error('The sync benchmark drives Oxen\'s client: run `bash test/python/venv.sh` first');
  const work = await mkdtemp(join(tmpdir(), 'yoke-bench-sync-'));
  const server = await startServerProcess(join(work, 'data'));
  const rows: Row[] = [];
  try {
    for (const [label, fill, bytes] of [
      [`${FILES} files of 4 KiB`, (dir: string) => fillSmall(dir), FILES * 4096],
      [`one file of ${BIG_MIB} MiB`, async (dir: string) => fillBig(dir), BIG_MIB * 1024 * 1024],
    ] as const) {
      const slug = label.startsWith('one') ? 'big' : 'small';
      const home = await mkdtemp(join(work, 'home-'));
      // Yoke, through Oxen's client.
      const source = join(work, `${slug}-oxen`);
      await fill(source);
      await fetch(`${server.url}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'bench', name: slug }) });
      const pushed = await run(PYTHON, ['-c', CLIENT, home, 'push', `${server.url}/bench/${slug}`, source], { watchPid: server.child.pid });
      const push = JSON.parse(lastLine(pushed.stdout)) as { add_commit: number; push: number };
      const cloned = await run(PYTHON, ['-c', CLIENT, home, 'clone', `${server.url}/bench/${slug}`, join(work, `${slug}-oxen-clone`)], { watchPid: server.child.pid });
      const clone = JSON.parse(lastLine(cloned.stdout)) as { clone: number };
      await rm(source, { recursive: true, force: true });
      await rm(join(work, `${slug}-oxen-clone`), { recursive: true, force: true });

      // git, to a bare repository on the same disk.
      const gitSource = join(work, `${slug}-git`);
      await fill(gitSource);
      const bare = join(work, `${slug}.git`);
      await git(['init', '--bare', '-q', bare]);
      const gitAdd = await time(async () => {
        await git(['init', '-q'], gitSource);
        await git(['add', '-A'], gitSource);
        await git(['commit', '-q', '-m', 'bench'], gitSource);
      });
      const gitPush = await time(() => git(['push', '-q', bare, 'main'], gitSource));
      const gitClone = await time(() => git(['clone', '-q', bare, join(work, `${slug}-git-clone`)]));
      await rm(gitSource, { recursive: true, force: true });
      await rm(join(work, `${slug}-git-clone`), { recursive: true, force: true });
      await rm(bare, { recursive: true, force: true });

      const mbps = (seconds: number) => `${(bytes / 1e6 / seconds).toFixed(0)} MB/s`;
      rows.push(
        { case: `${label}: add + commit (client side)`, yoke: push.add_commit, baseline: gitAdd.seconds, baselineName: 'git add + commit' },
        { case: `${label}: push`, yoke: push.push, baseline: gitPush.seconds, baselineName: 'git push (bare, file)', note: `${mbps(push.push)}; server peak RSS ${pushed.peakRssMiB.toFixed(0)} MiB` },
        { case: `${label}: add + commit + push`, yoke: push.add_commit + push.push, baseline: gitAdd.seconds + gitPush.seconds, baselineName: 'git add + commit + push' },
        { case: `${label}: clone`, yoke: clone.clone, baseline: gitClone.seconds, baselineName: 'git clone (file)', note: `${mbps(clone.clone)}; server peak RSS ${cloned.peakRssMiB.toFixed(0)} MiB` },
      );
    }
  } finally {
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
  return printTable('Push and clone with Oxen\'s client', rows);
}

/** The client prints its own progress on standard output; the timings are the last line. */
const lastLine = (text: string) => text.trim().split('\n').pop() ?? '';
