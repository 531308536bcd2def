/**
 * Version-files benchmark (issue: batch upload by hash, tarball download, chunked upload):
 *  1. batch upload of N files of 4 KiB in ~10 MiB multipart requests, vs writing the same files with
 *     fsync from one Node process (64 in flight: the floor for this disk);
 *  2. batch download of those files as one tar.gz, vs `tar cf - | cat` of the same files;
 *  3. a G GiB file through the chunk endpoints, vs `dd … conv=fdatasync` to the same disk;
 *  4. the server's peak RSS while a 4 GiB file arrives through the chunk endpoints.
 * Sizes: BENCH_VERSION_FILES (10000), BENCH_CHUNKED_GIB (2), BENCH_RSS_GIB (4); cases 1 and 3 alternate
 * Yoke and baseline over BENCH_ROUNDS (3) rounds and compare medians.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createStreamHasher, hashBuffer } from '../src/core/hash.js';
import { batchDownloadEntries, jsonOrThrow, uploadChunked, multipart, printTable, send, startServerProcess, time, type Row } from './lib.js';

const FILES = Number(process.env.BENCH_VERSION_FILES ?? 10_000);
const CHUNKED_GIB = Number(process.env.BENCH_CHUNKED_GIB ?? 2);
const RSS_GIB = Number(process.env.BENCH_RSS_GIB ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const MiB = 1024 * 1024;
const CHUNK = 64 * MiB;

/** Floor: the same small files written durably (temp, fsync, rename) by one Node process. */
async function rawFsyncFloor(dir: string, files: Array<{ hash: string; data: Buffer }>) {
  await mkdir(join(dir, 'tmp'), { recursive: true });
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < files.length) {
        const f = files[next++];
        const tmp = join(dir, 'tmp', randomUUID());
        const handle = await open(tmp, 'wx');
        await handle.writeFile(f.data);
        await handle.sync();
        await handle.close();
        await rename(tmp, join(dir, f.hash));
      }
    }),
  );
  const handle = await open(dir, 'r');
  await handle.sync();
  await handle.close();
}

function vmHwmMiB(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/status`, 'utf8').then((s) => Number(/VmHWM:\s+(\d+) kB/.exec(s)![1]) / 1024);
}

export async function versionsBench(): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), 'yoke-bench-versions-'));
  const server = await startServerProcess(join(work, 'data'));
  const rows: Row[] = [];
  const repo = `${server.url}/api/repos/bench/versions`;
  try {
    await jsonOrThrow(await fetch(`${server.url}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'bench', name: 'versions' }) }));
    // 1. Batch upload in ~10 MiB requests, two in flight (as the Oxen client does), against the
    // floor. The disk's fsync rate drifts within seconds, so the two alternate over ROUNDS rounds,
    // each with new files, and medians are compared.
    const newFiles = () =>
      Array.from({ length: FILES }, () => {
        const data = randomBytes(4096);
        return { hash: hashBuffer(data), data };
      });
    const perRequest = Math.floor((10 * MiB) / 4096);
    const requests = Math.ceil(FILES / perRequest);
    let files = newFiles();
    const uploadRound = async () => {
      const bodies = Array.from({ length: requests }, (_, i) => multipart(files.slice(i * perRequest, (i + 1) * perRequest).map((f) => ({ name: f.hash, data: f.data })), 'BENCH'));
      let nextBatch = 0;
      const took = await time(() =>
        Promise.all(
          [0, 1].map(async () => {
            while (nextBatch < bodies.length) {
              const res = await send(`${repo}/versions`, 'POST', bodies[nextBatch++], { 'content-type': 'multipart/form-data; boundary=BENCH' });
              const parsed = JSON.parse(res.body.toString());
              if (res.status !== 200 || parsed.err_files.length > 0) throw new Error(`batch upload: ${res.status} ${res.body.toString().slice(0, 300)}`);
            }
          }),
        ),
      );
      return took.seconds;
    };
    const uploads: number[] = [];
    const floors: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      if (round > 0) files = newFiles();
      const floorDir = join(work, `floor-${round}`);
      if (round % 2 === 0) {
        uploads.push(await uploadRound());
        floors.push((await time(() => rawFsyncFloor(floorDir, files))).seconds);
      } else {
        floors.push((await time(() => rawFsyncFloor(floorDir, files))).seconds);
        uploads.push(await uploadRound());
      }
    }
    const upload = median(uploads);
    const floor = median(floors);
    const perSecond = (seconds: number) => Math.round(FILES / seconds);
    rows.push({ case: `batch upload ${FILES} × 4 KiB (${requests} requests of ~10 MiB, median of ${ROUNDS})`, yoke: upload, baseline: floor, baselineName: 'Node write+fsync, 64 in flight', note: `${perSecond(upload)} files/s (target ≥ 4,000); floor ${perSecond(floor)} files/s; rounds: ${uploads.map(perSecond).join(' / ')} vs ${floors.map(perSecond).join(' / ')}` });

    // 2. Batch download of the same files.
    const download = await time(async () => {
      const entries = await batchDownloadEntries(repo, files.map((f) => f.hash));
      if (entries !== FILES) throw new Error(`downloaded ${entries} entries`);
    });
    const onDisk = join(work, 'tar-src');
    await mkdir(onDisk);
    for (const f of files) await writeFile(join(onDisk, f.hash), f.data);
    const tarBaseline = await time(async () => execFileSync('sh', ['-c', `tar cf - -C '${onDisk}' . | cat > /dev/null`]));
    rows.push({ case: `batch download ${FILES} × 4 KiB as one tar.gz`, yoke: download.seconds, baseline: tarBaseline.seconds, baselineName: 'tar cf - | cat', note: `${Math.round(FILES / download.seconds)} files/s (target ≥ 5,000)` });

    // 3. A big file through the chunk endpoints, 64 MiB chunks, two in flight, against dd. This VM's
    // page-cache writes cost several times more CPU on memory the guest has not touched lately,
    // which favours whichever side happens to get recycled pages; so the two alternate over
    // ROUNDS rounds (each Yoke round a new file: one changed byte) and medians are compared.
    // Nothing is deleted until all rounds are done (see ddRound).
    const bigPath = join(work, 'big.bin');
    const bigSize = CHUNKED_GIB * 1024 * MiB;
    execFileSync('sh', ['-c', `head -c ${bigSize} /dev/urandom > '${bigPath}'`]);
    const yokeRounds: number[] = [];
    const ddRounds: number[] = [];
    /** Makes the source a file Yoke has not seen (its first byte is `stamp`); returns its hash. */
    const newBigFile = async (stamp: number) => {
      const handle = await open(bigPath, 'r+');
      await handle.write(Buffer.from([stamp]), 0, 1, 0);
      await handle.close();
      const hasher = await createStreamHasher();
      for await (const chunk of createReadStream(bigPath, { highWaterMark: 4 * MiB })) hasher.update(chunk as Buffer);
      execFileSync('sync'); // no dirty pages from set-up compete with the measured side
      return hasher.digest();
    };
    const yokeRound = async (round: number) => {
      const bigHash = await newBigFile(round);
      yokeRounds.push((await time(() => uploadChunked(repo, bigHash, bigSize, CHUNK, (start, end) => createReadStream(bigPath, { start, end: end - 1, highWaterMark: 4 * MiB })))).seconds);
    };
    // dd's outputs are kept until the end: the root filesystem is mounted with online discard, and
    // deleting 2 GiB right before a Yoke round stalled its fdatasyncs for ~30 s.
    const ddRound = async () => {
      execFileSync('sync');
      const out = join(work, `dd-${ddRounds.length}.out`);
      ddRounds.push((await time(async () => execFileSync('dd', [`if=${bigPath}`, `of=${out}`, 'bs=4M', 'conv=fdatasync'], { stdio: 'ignore' }))).seconds);
    };
    for (let round = 0; round < ROUNDS; round++) {
      if (round % 2 === 0) await yokeRound(round).then(ddRound);
      else await ddRound().then(() => yokeRound(round));
    }
    const chunked = median(yokeRounds);
    const dd = median(ddRounds);
    const perRound = yokeRounds.map((y, i) => `${Math.round((100 * ddRounds[i]) / y)}`).join(' / ');
    rows.push({ case: `${CHUNKED_GIB} GiB file via versions/{hash}/chunks + complete (median of ${ROUNDS})`, yoke: chunked, baseline: dd, baselineName: 'dd conv=fdatasync', note: `${Math.round(bigSize / MiB / chunked)} MiB/s = ${Math.round((100 * dd) / chunked)} % of dd (target ≥ 75 %); rounds: ${perRound} %` });

    // 3b. The same size through the seed's commits/upload_chunk (one round, against the dd median):
    // chunks of one stride are written in place; only the last is copied when it arrives.
    const partsHash = await newBigFile(ROUNDS);
    const total = Math.ceil(bigSize / CHUNK);
    let nextChunk = 0;
    const viaParts = await time(() =>
      Promise.all(
        [0, 1].map(async () => {
          while (nextChunk < total) {
            const i = nextChunk++;
            const end = Math.min((i + 1) * CHUNK, bigSize);
            const query = `hash=${partsHash}&chunk_num=${i}&total_chunks=${total}&total_size=${bigSize}&is_compressed=false&filename=big.bin`;
            const res = await send(`${repo}/commits/upload_chunk?${query}`, 'POST', createReadStream(bigPath, { start: i * CHUNK, end: end - 1, highWaterMark: 4 * MiB }), { 'content-length': end - i * CHUNK, 'content-type': 'application/octet-stream' });
            if (res.status !== 200) throw new Error(`upload_chunk ${i}: ${res.status} ${res.body}`);
          }
        }),
      ),
    );
    rows.push({ case: `${CHUNKED_GIB} GiB file via commits/upload_chunk (one round)`, yoke: viaParts.seconds, baseline: dd, baselineName: 'dd conv=fdatasync (median above)', note: `${Math.round(bigSize / MiB / viaParts.seconds)} MiB/s = ${Math.round((100 * dd) / viaParts.seconds)} % of dd (no target; equal chunks are written in place, the last one copied)` });
  } finally {
    await server.stop();
  }

  // 4. Peak RSS of a fresh server while a large generated file arrives in chunks.
  const fresh = await startServerProcess(join(work, 'data-rss'));
  try {
    await jsonOrThrow(await fetch(`${fresh.url}/api/repos`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ namespace: 'bench', name: 'rss' }) }));
    const size = RSS_GIB * 1024 * MiB;
    const block = randomBytes(MiB);
    const generate = (start: number, end: number) =>
      Readable.from(
        (function* () {
          for (let at = start; at < end; at += MiB) yield block.subarray(0, Math.min(MiB, end - at));
        })(),
      );
    const hasher = await createStreamHasher();
    for (let at = 0; at < size; at += MiB) hasher.update(block.subarray(0, Math.min(MiB, size - at)));
    const before = await vmHwmMiB(fresh.child.pid!);
    const took = await time(() => uploadChunked(`${fresh.url}/api/repos/bench/rss`, hasher.digest(), size, CHUNK, generate));
    const peak = await vmHwmMiB(fresh.child.pid!);
    rows.push({ case: `server peak RSS while ${RSS_GIB} GiB arrive in chunks`, yoke: took.seconds, baseline: took.seconds, baselineName: '—', note: `peak RSS ${peak.toFixed(0)} MiB (idle ${before.toFixed(0)} MiB; target < 200 MiB)` });
  } finally {
    await fresh.stop();
    await rm(work, { recursive: true, force: true });
  }
  return printTable(`Version files (${FILES} small files, ${CHUNKED_GIB} GiB chunked, ${RSS_GIB} GiB for RSS)`, rows);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
