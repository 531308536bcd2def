/**
 * Load benchmark (issue 11): the real server in its own process, with auth on, under CLIENTS concurrent
 * clients for SECONDS seconds. Each client repeatedly picks one operation:
 *   download   GET  …/file/main/{path}               (a file some client committed, size checked)   30 %
 *   listing    GET  …/dir/main/{dir}                 (a directory some client wrote)               20 %
 *   history    GET  …/commits/history/main           (first page)                                 15 %
 *   upload     PUT  …/file/main/c{client}            (2 files of 1–4 KiB, multipart; one commit)   15 %
 *   versions   POST …/versions                       (8 blobs of 4 KiB by hash)                     10 %
 *   workspace  PUT …/workspaces, POST …/workspaces/{id}/files/ws/c{client} (4 files),
 *              POST …/workspaces/{id}/commit/main    (three requests, timed apart)                  10 %
 * Writes go to the client's own repository (client i → repository i mod REPOS) and its own directory, so
 * commits rebase onto each other instead of conflicting; reads pick any repository. A 409 is retried and
 * counted apart; any other non-2xx answer (or a failed connection, or a wrong body) is an error.
 * Afterwards every repository's history must count exactly the commits the clients made.
 * The baseline: a plain node:http server (its own process) answering as many small GETs from as many clients.
 * Env: YOKE_BENCH_LOAD_SECONDS (60), YOKE_BENCH_LOAD_CLIENTS (50), YOKE_BENCH_LOAD_REPOS (10);
 * YOKE_BENCH_LOAD_NODE_OPTIONS is the server's NODE_OPTIONS (e.g. `--expose-gc --require ./probe.cjs`);
 * YOKE_BENCH_LOAD_KEEP=1 keeps the data directory for inspection.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashBuffer } from '../src/core/hash.js';
import { ROOT, multipart, startServerProcess } from './lib.js';

const SECONDS = Number(process.env.YOKE_BENCH_LOAD_SECONDS ?? 60);
const CLIENTS = Number(process.env.YOKE_BENCH_LOAD_CLIENTS ?? 50);
const REPOS = Number(process.env.YOKE_BENCH_LOAD_REPOS ?? 10);
const AUTHOR = { name: 'Bench', email: 'bench@example.com' };
const BOUNDARY = 'LOADBENCH';

const KINDS = ['download', 'listing', 'history', 'upload (PUT file)', 'versions (POST batch)', 'workspace create', 'workspace stage', 'workspace commit'] as const;
type Kind = (typeof KINDS)[number] | 'baseline GET';

interface Stats {
  latencies: number[];
  requests: number;
  retries: number;
  errors: number;
}

interface Reply {
  status: number;
  body: Buffer;
}

class Recorder {
  readonly stats = new Map<Kind, Stats>();
  readonly firstErrors: string[] = [];
  errors = 0;

  of(kind: Kind): Stats {
    let s = this.stats.get(kind);
    if (!s) this.stats.set(kind, (s = { latencies: [], requests: 0, retries: 0, errors: 0 }));
    return s;
  }

  error(kind: Kind, what: string) {
    this.of(kind).errors += 1;
    this.errors += 1;
    if (this.firstErrors.length < 10) this.firstErrors.push(`${kind}: ${what}`);
  }
}

/** One request over the keep-alive agent; the latency runs until the last byte of the answer. */
function call(agent: Agent, base: string, method: string, path: string, body: Buffer | null, headers: Record<string, string | number>): Promise<Reply & { ms: number }> {
  const start = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, agent, headers: body ? { ...headers, 'content-length': body.length } : headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), ms: Number(process.hrtime.bigint() - start) / 1e6 }));
    });
    req.on('error', reject);
    req.end(body ?? undefined);
  });
}

/** A multipart form: text fields, then `file[]` parts named by `name`. */
function form(fields: Record<string, string>, files: Array<{ name: string; data: Buffer }>): Buffer {
  const head = Object.entries(fields).map(([k, v]) => `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`);
  return Buffer.concat([Buffer.from(head.join('')), multipart(files, BOUNDARY)]);
}

function vm(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  return readFile(`/proc/${pid}/status`, 'utf8').then((s) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(s)![1]) / 1024);
}

/** User + system CPU seconds of a process, or of one of its threads (clock ticks of 1/100 s). */
async function cpuSeconds(pid: number, tid?: number): Promise<number> {
  const stat = await readFile(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The machine's jiffies by kind (first line of /proc/stat). */
async function machineTicks(): Promise<number[]> {
  return (await readFile('/proc/stat', 'utf8')).split('\n')[0].split(/\s+/).slice(1, 9).map(Number);
}

/** Shares of the machine's time between two readings, and the cores it kept busy. */
function machineShares(a: number[], b: number[]): { text: string; busyCores: number } {
  const d = b.map((v, i) => v - a[i]); // user nice system idle iowait irq softirq steal
  const total = d.reduce((x, y) => x + y, 0);
  const pct = (v: number) => `${((100 * v) / total).toFixed(0)} %`;
  return {
    text: `user ${pct(d[0] + d[1])}, system ${pct(d[2])}, irq ${pct(d[5] + d[6])}, steal ${pct(d[7])}, iowait ${pct(d[4])}, idle ${pct(d[3])}`,
    busyCores: ((total - d[3] - d[4]) / total) * cpus().length,
  };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

interface RepoState {
  name: string;
  /** Committed files with their sizes (downloads pick from these). */
  files: Array<{ path: string; size: number }>;
  dirs: string[];
  /** Commits the clients made (history must count these + the seed's). */
  commits: number;
}

const pick = <T>(list: T[]): T => list[Math.floor(Math.random() * list.length)];
const smallFile = () => randomBytes(1024 + Math.floor(Math.random() * 3072));

export async function loadBench(): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'yoke-bench-load-'));
  try {
    return await runLoad(join(work, 'data'));
  } finally {
    if (process.env.YOKE_BENCH_LOAD_KEEP) console.log(`(data directory kept: ${join(work, 'data')})`);
    else await rm(work, { recursive: true, force: true });
  }
}

async function runLoad(dataDir: string): Promise<string> {
  const token = (scope: string) =>
    execFileSync(process.execPath, [join(ROOT, 'bin/yoke.cjs'), 'token', 'create', '--data-dir', dataDir, '--name', `bench-${scope}`, '--email', 'b@x', '--scope', scope], {
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
  const admin = token('admin');
  const writer = token('write');
  const profile = process.env.YOKE_BENCH_LOAD_NODE_OPTIONS;
  const server = await startServerProcess(dataDir, { YOKE_AUTH: '1', ...(profile ? { NODE_OPTIONS: profile } : {}) });
  const pid = server.child.pid!;
  // A server that dies under load is the finding: the clients stop, and the report says how it ended.
  let serverExit: { at: number; how: string } | null = null;
  let t0 = performance.now();
  server.child.once('exit', (code, signal) => {
    serverExit = { at: (performance.now() - t0) / 1000, how: `exit code ${code}, signal ${signal}` };
  });
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  const rec = new Recorder();
  const repos: RepoState[] = [];
  const auth = (secret: string) => ({ authorization: `Bearer ${secret}` });
  let output = '';
  try {
    // Auth is really on: no token is 401.
    const anonymous = await call(agent, server.url, 'GET', '/api/namespaces', null, {});
    if (anonymous.status !== 401) throw new Error(`auth is not on: GET /api/namespaces without a token answered ${anonymous.status}`);
    // Set-up: REPOS repositories, each with 20 seed files in one commit.
    for (let r = 0; r < REPOS; r++) {
      const name = `r${r}`;
      const created = await call(agent, server.url, 'POST', '/api/repos', Buffer.from(JSON.stringify({ namespace: 'load', name, user: AUTHOR })), { ...auth(admin), 'content-type': 'application/json' });
      if (created.status !== 200) throw new Error(`create ${name}: ${created.status} ${created.body}`);
      const seed = Array.from({ length: 20 }, (_, i) => ({ name: `s${i}.bin`, data: smallFile() }));
      const put = await call(agent, server.url, 'PUT', `/api/repos/load/${name}/file/main/seed`, form({ message: 'seed', ...AUTHOR }, seed), { ...auth(writer), 'content-type': `multipart/form-data; boundary=${BOUNDARY}` });
      if (put.status !== 200) throw new Error(`seed ${name}: ${put.status} ${put.body}`);
      repos.push({ name, files: seed.map((f) => ({ path: `seed/${f.name}`, size: f.data.length })), dirs: ['', 'seed'], commits: 0 });
    }

    const rss: Array<{ at: number; mib: number }> = [];
    const rssStart = await vm(pid, 'VmRSS');
    const cpuStart = await cpuSeconds(pid);
    const mainThreadStart = await cpuSeconds(pid, pid);
    const clientCpuStart = process.cpuUsage();
    const machineStart = await machineTicks();
    t0 = performance.now();
    const deadline = t0 + SECONDS * 1000;
    const sampler = setInterval(() => {
      vm(pid, 'VmRSS').then(
        (mib) => rss.push({ at: (performance.now() - t0) / 1000, mib }),
        () => {},
      );
    }, 1000);

    const H = { ...auth(writer) };
    /** Sends until the answer is not 409 (each 409 counted as a retry); the 2xx reply, or null after recording an error. */
    const send = async (kind: Kind, method: string, path: string, body: Buffer | null, headers: Record<string, string | number>): Promise<Reply | null> => {
      const s = rec.of(kind);
      for (let attempt = 0; attempt < 50; attempt++) {
        s.requests += 1;
        let reply: Reply & { ms: number };
        try {
          reply = await call(agent, server.url, method, path, body, { ...H, ...headers });
        } catch (err) {
          rec.error(kind, `${method} ${path}: ${(err as Error).message}`);
          return null;
        }
        if (reply.status === 409) {
          s.retries += 1;
          await new Promise((r) => setTimeout(r, Math.random() * 20));
          continue;
        }
        if (reply.status < 200 || reply.status > 299) {
          rec.error(kind, `${method} ${path}: ${reply.status} ${reply.body.toString().slice(0, 300)}`);
          return null;
        }
        s.latencies.push(reply.ms);
        return reply;
      }
      rec.error(kind, `${method} ${path}: 409 fifty times`);
      return null;
    };
    const json = (body: Buffer) => JSON.parse(body.toString());
    const multipartType = { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` };

    const client = async (id: number) => {
      const own = repos[id % repos.length];
      const api = (repo: RepoState) => `/api/repos/load/${repo.name}`;
      let n = 0;
      while (performance.now() < deadline && serverExit === null) {
        n += 1;
        const roll = Math.random() * 100;
        if (roll < 30) {
          const repo = pick(repos);
          const file = pick(repo.files);
          const reply = await send('download', 'GET', `${api(repo)}/file/main/${file.path}`, null, {});
          if (reply && reply.body.length !== file.size) rec.error('download', `${file.path}: ${reply.body.length} bytes, expected ${file.size}`);
        } else if (roll < 50) {
          const repo = pick(repos);
          const dir = pick(repo.dirs);
          const reply = await send('listing', 'GET', `${api(repo)}/dir/main/${dir}`, null, {});
          if (reply && !Array.isArray(json(reply.body).entries)) rec.error('listing', `${dir}: no entries`);
        } else if (roll < 65) {
          const repo = pick(repos);
          const reply = await send('history', 'GET', `${api(repo)}/commits/history/main`, null, {});
          if (reply && json(reply.body).commits.length === 0) rec.error('history', 'no commits');
        } else if (roll < 80) {
          const dir = `c${id}`;
          const files = [0, 1].map((k) => ({ name: `f${n}-${k}.bin`, data: smallFile() }));
          const reply = await send('upload (PUT file)', 'PUT', `${api(own)}/file/main/${dir}`, form({ message: `client ${id} upload ${n}`, ...AUTHOR }, files), multipartType);
          if (reply) {
            own.commits += 1;
            for (const f of files) own.files.push({ path: `${dir}/${f.name}`, size: f.data.length });
            if (!own.dirs.includes(dir)) own.dirs.push(dir);
          }
        } else if (roll < 90) {
          const blobs = Array.from({ length: 8 }, () => randomBytes(4096)).map((data) => ({ name: hashBuffer(data), data }));
          const reply = await send('versions (POST batch)', 'POST', `${api(own)}/versions`, multipart(blobs, BOUNDARY), multipartType);
          if (reply && json(reply.body).err_files.length > 0) rec.error('versions (POST batch)', JSON.stringify(json(reply.body).err_files).slice(0, 300));
        } else {
          const ws = `w-${id}-${n}`;
          const created = await send('workspace create', 'PUT', `${api(own)}/workspaces`, Buffer.from(JSON.stringify({ workspace_id: ws, branch_name: 'main' })), { 'content-type': 'application/json' });
          if (!created) continue;
          const dir = `ws/c${id}`;
          const files = Array.from({ length: 4 }, (_, k) => ({ name: `w${n}-${k}.bin`, data: smallFile() }));
          const staged = await send('workspace stage', 'POST', `${api(own)}/workspaces/${ws}/files/${dir}`, multipart(files, BOUNDARY), multipartType);
          if (!staged) continue;
          if (json(staged.body).err_files.length > 0) {
            rec.error('workspace stage', JSON.stringify(json(staged.body).err_files).slice(0, 300));
            continue;
          }
          const body = Buffer.from(JSON.stringify({ message: `client ${id} workspace ${n}`, author: AUTHOR.name, email: AUTHOR.email }));
          const committed = await send('workspace commit', 'POST', `${api(own)}/workspaces/${ws}/commit/main`, body, { 'content-type': 'application/json' });
          if (committed) {
            own.commits += 1;
            for (const f of files) own.files.push({ path: `${dir}/${f.name}`, size: f.data.length });
            for (const d of ['ws', dir]) if (!own.dirs.includes(d)) own.dirs.push(d);
          }
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(i)));
    const elapsed = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    // NaN once the server is gone.
    const rssEnd = await vm(pid, 'VmRSS').catch(() => NaN);
    const hwm = await vm(pid, 'VmHWM').catch(() => NaN);
    const serverCpu = (await cpuSeconds(pid).catch(() => NaN)) - cpuStart;
    const mainThread = (await cpuSeconds(pid, pid).catch(() => NaN)) - mainThreadStart;
    const clientCpuUsage = process.cpuUsage(clientCpuStart);
    const clientCpu = (clientCpuUsage.user + clientCpuUsage.system) / 1e6;
    const machineEnd = await machineTicks();
    const machine = machineShares(machineStart, machineEnd);
    const middle = rss.find((s) => s.at >= SECONDS / 2) ?? rss[rss.length - 1];

    // Consistency: each history counts the seed commit plus every commit a client saw succeed.
    let consistent = true;
    for (const repo of serverExit === null ? repos : []) {
      const reply = await call(agent, server.url, 'GET', `/api/repos/load/${repo.name}/commits/history/main`, null, H);
      const total = json(reply.body).total_entries;
      if (total === repo.commits + 1) continue;
      consistent = false;
      rec.error('history', `${repo.name}: history has ${total} commits, clients made ${repo.commits} + 1 seed`);
    }

    // Baseline: a plain node:http server in its own process, as many small GETs from as many clients.
    const yokeTotal = KINDS.reduce((sum, k) => sum + rec.of(k).requests, 0);
    const baseline = await plainServerBaseline(yokeTotal, rec);

    // The table.
    const fmt = (ms: number) => (Number.isNaN(ms) ? '—' : ms < 10 ? ms.toFixed(2) : ms.toFixed(1));
    const row = (name: string, stats: Stats, seconds: number) => {
      const sorted = [...stats.latencies].sort((a, b) => a - b);
      return `| ${name} | ${stats.requests} | ${(stats.requests / seconds).toFixed(1)} | ${fmt(percentile(sorted, 50))} | ${fmt(percentile(sorted, 90))} | ${fmt(percentile(sorted, 99))} | ${fmt(sorted[sorted.length - 1] ?? NaN)} | ${stats.retries} | ${stats.errors} |`;
    };
    const all: Stats = { latencies: [], requests: 0, retries: 0, errors: 0 };
    for (const k of KINDS) {
      const s = rec.of(k);
      all.latencies.push(...s.latencies);
      all.requests += s.requests;
      all.retries += s.retries;
      all.errors += s.errors;
    }
    const lines = [
      `### Load: ${CLIENTS} clients, ${SECONDS} s, ${REPOS} repositories, auth on`,
      '',
      '| kind | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | 409 retries | errors |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...KINDS.map((k) => row(k, rec.of(k), elapsed)),
      row('**all Yoke**', all, elapsed),
      row(`baseline: plain node:http, small GET`, baseline.stats, baseline.seconds),
      '',
      `Yoke ${(all.requests / elapsed).toFixed(0)} req/s over ${elapsed.toFixed(1)} s; baseline ${(baseline.stats.requests / baseline.seconds).toFixed(0)} req/s ` +
        `(${baseline.seconds.toFixed(1)} s for the same ${baseline.stats.requests} requests). ` +
        `Commits made: ${repos.reduce((s, r) => s + r.commits, 0)} (${(repos.reduce((s, r) => s + r.commits, 0) / elapsed).toFixed(1)}/s), ` +
        `histories consistent: ${serverExit !== null ? 'not checked' : consistent ? 'yes' : 'NO'}. Requests include the 409s retried; latencies are of 2xx answers.`,
      `Server RSS: start ${rssStart.toFixed(0)} MiB, middle (${middle ? middle.at.toFixed(0) : '?'} s) ${middle ? middle.mib.toFixed(0) : '?'} MiB, end ${rssEnd.toFixed(0)} MiB, ` +
        `max sampled ${Math.max(...rss.map((s) => s.mib), rssEnd).toFixed(0)} MiB, VmHWM ${hwm.toFixed(0)} MiB.`,
      `CPU during the load: server ${serverCpu.toFixed(1)} s (${(serverCpu / elapsed).toFixed(2)} cores; its main thread ${(mainThread / elapsed).toFixed(2)} cores), load generator ${clientCpu.toFixed(1)} s (${(clientCpu / elapsed).toFixed(2)} cores), ` +
        `machine (${cpus().length} cores): ${machine.text}, so other processes and kernel threads ${Math.max(0, machine.busyCores - (serverCpu + clientCpu) / elapsed).toFixed(2)} cores; baseline server ${baseline.serverCpu.toFixed(1)} s.`,
      `RSS every 5 s (MiB): ${rss.filter((_, i) => i % 5 === 4).map((s) => s.mib.toFixed(0)).join(' ')}`,
      '',
    ];
    const exit = serverExit as { at: number; how: string } | null;
    if (exit) lines.push(`**The server exited during the load**, at ${exit.at.toFixed(1)} s (${exit.how}); histories not checked.`, '');
    if (rec.firstErrors.length > 0) lines.push(`First errors (${rec.errors} in all):`, ...rec.firstErrors.map((e) => `- ${e}`), '');
    output = lines.join('\n');
    console.log(output);
  } finally {
    agent.destroy();
    await server.stop();
  }
  return output;
}

/** A plain node:http server (its own process) answering a small JSON body; `total` GETs from CLIENTS clients. */
async function plainServerBaseline(total: number, rec: Recorder): Promise<{ stats: Stats; seconds: number; serverCpu: number }> {
  const code = `
    const body = Buffer.from(JSON.stringify({ status: 'success', status_message: 'resource_found', oxen_version: '0.54.0' }));
    const server = require('node:http').createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
    });
    server.keepAliveTimeout = 60000;
    server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', () => reject(new Error('baseline server exited')));
  });
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  const base = `http://127.0.0.1:${port}`;
  const stats = rec.of('baseline GET');
  try {
    const cpuStart = await cpuSeconds(child.pid!);
    let sent = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (sent < total) {
          sent += 1;
          stats.requests += 1;
          try {
            const reply = await call(agent, base, 'GET', '/api/repos/load/r0/file/main/seed/s0.bin', null, { authorization: 'Bearer x' });
            if (reply.status !== 200) rec.error('baseline GET', String(reply.status));
            else stats.latencies.push(reply.ms);
          } catch (err) {
            rec.error('baseline GET', (err as Error).message);
          }
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    return { stats, seconds, serverCpu: (await cpuSeconds(child.pid!)) - cpuStart };
  } finally {
    agent.destroy();
    child.kill('SIGTERM');
  }
}
