/**
 * Foundation benchmark (issue: repositories, branches, commits, files):
 *  1. commit N small files in one PUT request, vs `cp -r` of the same files;
 *  2. commit the same N files one request (and one commit) at a time, vs `cp` of each file;
 *  3. list a directory of M entries (first page, and every page), vs `ls -f` of such a directory;
 *  4. download a file of G bytes, vs `cat` of the same file.
 * Sizes: BENCH_FILES (10000), BENCH_DIR_ENTRIES (100000), BENCH_BIG_MIB (1024).
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openAsBlob } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { jsonOrThrow, printTable, startServerProcess, time, type Row } from './lib.js';

const execFileAsync = promisify(execFile);
const FILES = Number(process.env.BENCH_FILES ?? 10_000);
const DIR_ENTRIES = Number(process.env.BENCH_DIR_ENTRIES ?? 100_000);
const BIG_MIB = Number(process.env.BENCH_BIG_MIB ?? 1024);
const AUTHOR = { name: 'Bench', email: 'bench@example.com' };

async function createRepo(url: string, name: string) {
  await jsonOrThrow(await fetch(`${url}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'bench', name }) }));
}

function form(files: Array<{ name: string; blob: Blob }>, field = 'file') {
  const f = new FormData();
  f.append('name', AUTHOR.name);
  f.append('email', AUTHOR.email);
  for (const file of files) f.append(field, file.blob, file.name);
  return f;
}

export async function foundationBench(): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'yoke-bench-'));
  const server = await startServerProcess(join(work, 'data'));
  const rows: Row[] = [];
  try {
    // Small files on disk, so the baselines copy real files.
    const src = join(work, 'small');
    await mkdir(src);
    const names: string[] = [];
    for (let i = 0; i < FILES; i++) {
      const name = `f${String(i).padStart(6, '0')}.bin`;
      names.push(name);
      await writeFile(join(src, name), randomBytes(1024 + (i % 3072)));
    }
    const blobs = await Promise.all(names.map(async (name) => ({ name, blob: await openAsBlob(join(src, name)) })));

    await createRepo(server.url, 'batch');
    const batch = await time(async () =>
      jsonOrThrow(await fetch(`${server.url}/api/repos/bench/batch/file/main/small`, { method: 'PUT', body: form(blobs, 'files[]') })),
    );
    const cpAll = await time(async () => execFileSync('cp', ['-r', src, join(work, 'cp-all')]));
    rows.push({ case: `${FILES} files, one PUT (one commit)`, yoke: batch.seconds, baseline: cpAll.seconds, baselineName: 'cp -r', note: `${Math.round(FILES / batch.seconds)} files/s` });

    await createRepo(server.url, 'single');
    const single = await time(async () => {
      for (const file of blobs) {
        await jsonOrThrow(await fetch(`${server.url}/api/repos/bench/single/file/main/small/${file.name}`, { method: 'PUT', body: form([file]) }));
      }
    });
    await mkdir(join(work, 'cp-each'));
    const cpEach = await time(async () => {
      // Asynchronously: a minute of blocked event loop would leave this client's idle connection to the
      // server unnoticed when the server closes it.
      for (const name of names) await execFileAsync('cp', [join(src, name), join(work, 'cp-each', name)]);
    });
    rows.push({ case: `${FILES} files, one PUT + commit each`, yoke: single.seconds, baseline: cpEach.seconds, baselineName: 'cp per file', note: `${Math.round(FILES / single.seconds)} commits/s` });

    // A directory of DIR_ENTRIES tiny entries, committed in batches of 10,000.
    await createRepo(server.url, 'wide');
    const tiny = Array.from({ length: DIR_ENTRIES }, (_, i) => ({ name: `e${String(i).padStart(7, '0')}.txt`, blob: new Blob([`entry ${i}\n`]) }));
    const fill = await time(async () => {
      for (let i = 0; i < tiny.length; i += 10_000) {
        await jsonOrThrow(await fetch(`${server.url}/api/repos/bench/wide/file/main/wide`, { method: 'PUT', body: form(tiny.slice(i, i + 10_000), 'files[]') }));
      }
    });
    const wideDir = join(work, 'wide');
    await mkdir(wideDir);
    for (let i = 0; i < DIR_ENTRIES; i += 1000) {
      await Promise.all(tiny.slice(i, i + 1000).map((t, j) => writeFile(join(wideDir, t.name), `entry ${i + j}\n`)));
    }
    const firstPage = await time(async () => jsonOrThrow(await fetch(`${server.url}/api/repos/bench/wide/dir/main/wide?page_size=100`)));
    if (firstPage.result.total_entries !== DIR_ENTRIES) throw new Error(`listing has ${firstPage.result.total_entries} entries`);
    const ls = await time(async () => execFileSync('sh', ['-c', `ls -f '${wideDir}' > /dev/null`]));
    rows.push({ case: `list ${DIR_ENTRIES} entries: first page of 100`, yoke: firstPage.seconds, baseline: ls.seconds, baselineName: 'ls -f (all)' });
    const allPages = await time(async () => {
      let seen = 0;
      for (let page = 1; seen < DIR_ENTRIES; page++) {
        seen += (await jsonOrThrow(await fetch(`${server.url}/api/repos/bench/wide/dir/main/wide?page_size=10000&page=${page}`))).entries.length;
      }
    });
    const readdirAll = await time(async () => readdir(wideDir, { withFileTypes: true }));
    rows.push({ case: `list ${DIR_ENTRIES} entries: every page (10,000 per page)`, yoke: allPages.seconds, baseline: readdirAll.seconds, baselineName: 'readdir' });
    const oneMore = await time(async () =>
      jsonOrThrow(await fetch(`${server.url}/api/repos/bench/wide/file/main/wide/e0000001.txt`, { method: 'PUT', body: form([{ name: 'x', blob: new Blob(['changed']) }]) })),
    );
    rows.push({ case: `change 1 file in the ${DIR_ENTRIES}-entry directory (one commit)`, yoke: oneMore.seconds, baseline: cpEach.seconds / FILES, baselineName: 'cp of one file', note: `filling it took ${fill.seconds.toFixed(1)} s` });

    // One big file.
    const bigPath = join(work, 'big.bin');
    execFileSync('sh', ['-c', `head -c ${BIG_MIB}M /dev/urandom > '${bigPath}'`]);
    await createRepo(server.url, 'big');
    // curl is the client for the big file: undici's fetch costs more CPU than the server does here.
    const upload = await time(async () =>
      execFileSync('curl', ['-sS', '--fail-with-body', '-o', '/dev/null', '-X', 'PUT', '-F', `file=@${bigPath}`, '-F', `name=${AUTHOR.name}`, '-F', `email=${AUTHOR.email}`, `${server.url}/api/repos/bench/big/file/main/big.bin`]),
    );
    const download = await time(async () => {
      const out = execFileSync('curl', ['-sS', '--fail', '-o', '/dev/null', '-w', '%{size_download}', `${server.url}/api/repos/bench/big/file/main/big.bin`]);
      if (Number(out.toString()) !== BIG_MIB * 1024 * 1024) throw new Error(`downloaded ${out} bytes`);
    });
    const cat = await time(async () => execFileSync('sh', ['-c', `cat '${bigPath}' > /dev/null`]));
    rows.push({ case: `download a ${BIG_MIB} MiB file (curl)`, yoke: download.seconds, baseline: cat.seconds, baselineName: 'cat > /dev/null', note: `${Math.round(BIG_MIB / download.seconds)} MiB/s` });
    const cpBig = await time(async () => execFileSync('sh', ['-c', `cp '${bigPath}' '${bigPath}.copy' && sync '${bigPath}.copy'`]));
    rows.push({ case: `upload a ${BIG_MIB} MiB file (curl, one PUT, one commit)`, yoke: upload.seconds, baseline: cpBig.seconds, baselineName: 'cp + sync', note: `${Math.round(BIG_MIB / upload.seconds)} MiB/s` });
  } finally {
    await server.stop();
    await rm(work, { recursive: true, force: true });
  }
  return printTable(`Foundation (files ${FILES}, directory ${DIR_ENTRIES}, big file ${BIG_MIB} MiB)`, rows);
}
