/**
 * Compare benchmark: two commits of a repository of N files that differ in 3 files. Comparing them
 * must read only the nodes on the changed paths. Printed beside a naive comparison that walks both
 * trees whole. Node reads are counted at the metadata store, on a cold cache (a fresh server).
 * Size: BENCH_COMPARE_FILES (100000).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serverConfig } from '../src/config.js';
import { hashBuffer } from '../src/core/hash.js';
import { walkFiles } from '../src/core/tree.js';
import { startServer } from '../src/server/main.js';
import { jsonOrThrow, printTable, time, type Row } from './lib.js';

const FILES = Number(process.env.BENCH_COMPARE_FILES ?? 100_000);
const AUTHOR = { name: 'Bench', email: 'bench@example.com' };

export async function compareBench(): Promise<string> {
  const dataDir = await mkdtemp(join(tmpdir(), 'yoke-bench-compare-'));
  const config = serverConfig({ port: 0, dataDir, logLevel: 'silent' }, {});
  const rows: Row[] = [];
  try {
    // Build the history in-process: tree comparison needs the trees, not the file bytes.
    const builder = await startServer(config);
    const repo = await builder.yoke.repos.create({ namespace: 'bench', name: 'compare' });
    const leaf = (content: string) => ({ hash: hashBuffer(content), size: content.length });
    const all = new Map(Array.from({ length: FILES }, (_, i) => [`data/d${String(i % 100).padStart(2, '0')}/f${i}.bin`, leaf(`file ${i}`)]));
    const first = await builder.yoke.commits.commit({ repo, branch: 'main', base: null, changes: all, blobs: [], author: AUTHOR, message: 'many files' });
    const changed = new Map([
      ['data/d07/f7.bin', leaf('changed 7')],
      ['data/d42/f50042.bin', leaf('changed 42')],
      ['data/d99/f99999.bin', leaf('changed last')],
    ]);
    const second = await builder.yoke.commits.commit({ repo, branch: 'main', base: first.commit, changes: changed, blobs: [], author: AUTHOR, message: 'three changes' });
    await builder.close();

    const measure = async (work: (server: Awaited<ReturnType<typeof startServer>>) => Promise<unknown>) => {
      const server = await startServer(config);
      let reads = 0;
      const getNode = server.yoke.meta.getNode.bind(server.yoke.meta);
      server.yoke.meta.getNode = (repoId, id) => {
        reads += 1;
        return getNode(repoId, id);
      };
      try {
        const { seconds, result } = await time(() => work(server));
        return { seconds, reads, result };
      } finally {
        await server.close();
      }
    };
    const range = `${first.commit.id}..${second.commit.id}`;
    const smart = await measure(async (server) => jsonOrThrow(await fetch(`${server.url}/api/repos/bench/compare/compare/entries/${range}`)));
    const counts = (smart.result as { compare: { counts: unknown } }).compare.counts;
    const naive = await measure(async (server) => {
      const source = server.yoke.nodes.forRepo(repo.id);
      const before = new Map<string, string>();
      for await (const f of walkFiles(source, first.commit.rootId)) before.set(f.path, f.entry.hash);
      let differing = 0;
      for await (const f of walkFiles(source, second.commit.rootId)) if (before.get(f.path) !== f.entry.hash) differing += 1;
      return differing;
    });
    rows.push({
      case: `compare two commits of ${FILES} files differing in 3 (HTTP compare/entries)`,
      yoke: smart.seconds,
      baseline: naive.seconds,
      baselineName: 'walk both trees whole',
      note: `${smart.reads} node reads vs ${naive.reads}; counts ${JSON.stringify(counts)}`,
    });
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
  return printTable(`Compare (${FILES} files)`, rows);
}
