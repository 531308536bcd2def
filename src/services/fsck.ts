import { hashStream } from '../core/hash.js';
import { NotFound } from '../core/errors.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { MetaStore, RepoRecord } from '../storage/meta-store.js';
import { allRepositories, repositoryRoots, walkRepository, type Problem, type Reached } from './reachability.js';

export interface FsckOptions {
  /** Only this repository (default: all). */
  repo?: RepoRecord;
  /** Re-hash every reachable blob (default); false checks presence and size only. */
  verifyContent?: boolean;
  /** Problems listed in the report (all are counted). */
  maxProblems?: number;
}

export interface FsckReport {
  clean: boolean;
  repos: number;
  commits: number;
  nodes: number;
  blobs: number;
  /** Bytes re-hashed. */
  bytesVerified: number;
  problemCount: number;
  /** The first `maxProblems` problems. */
  problems: Problem[];
  durationMs: number;
}

/** Blobs re-hashed at once: enough to keep a disk busy, few enough to leave the server responsive. */
const HASH_CONCURRENCY = 4;

/**
 * `yoke fsck`: walks refs (branches, workspace bases) → commits → trees → blobs in every repository
 * and re-verifies each reachable blob's size and content hash. Reads only; safe while the server runs.
 */
export class FsckService {
  constructor(
    private readonly meta: MetaStore,
    private readonly blobs: BlobStore,
  ) {}

  async check(options: FsckOptions = {}): Promise<FsckReport> {
    const started = Date.now();
    const maxProblems = options.maxProblems ?? 1000;
    const problems: Problem[] = [];
    let problemCount = 0;
    const problem = (p: Problem) => {
      problemCount += 1;
      if (problems.length < maxProblems) problems.push(p);
    };
    // Each blob once, with the first place that needs it.
    const needed = new Map<string, { size: number; repo: string; where: string }>();
    const repos = options.repo ? [options.repo] : await allRepositories(this.meta);
    let commits = 0;
    let nodes = 0;
    for (const repo of repos) {
      const name = `${repo.namespace}/${repo.name}`;
      const reached: Reached = { commits: new Set(), nodes: new Set() };
      const visitor = {
        file: (entry: { hash: string; size: number }, path: string) => {
          if (!needed.has(entry.hash)) needed.set(entry.hash, { size: entry.size, repo: name, where: path });
        },
        problem,
      };
      const { heads, staged } = await repositoryRoots(this.meta, repo);
      await walkRepository(this.meta, repo, heads, reached, visitor);
      for (const file of staged) visitor.file(file, file.where);
      commits += reached.commits.size;
      nodes += reached.nodes.size;
    }

    let bytesVerified = 0;
    const verify = options.verifyContent ?? true;
    const queue = [...needed];
    const worker = async () => {
      for (let next = queue.pop(); next; next = queue.pop()) {
        const [hash, { size, repo, where }] = next;
        const report = (kind: Problem['kind'], detail: string) => problem({ kind, repo, id: hash, where, detail });
        const stored = await this.blobs.stat(hash);
        if (stored === null) {
          report('missing_blob', 'the blob is not in the blob store');
          continue;
        }
        if (stored !== size) {
          report('blob_size_mismatch', `the tree says ${size} bytes, the stored blob has ${stored}`);
          continue;
        }
        if (!verify) continue;
        const actual = await this.hashOf(hash);
        if (actual === null) report('missing_blob', 'the blob vanished while being read');
        else if (actual !== hash) report('corrupt_blob', `the stored bytes hash to ${actual}`);
        bytesVerified += size;
      }
    };
    await Promise.all(Array.from({ length: HASH_CONCURRENCY }, worker));

    return { clean: problemCount === 0, repos: repos.length, commits, nodes, blobs: needed.size, bytesVerified, problemCount, problems, durationMs: Date.now() - started };
  }

  private async hashOf(hash: string): Promise<string | null> {
    let stream;
    try {
      stream = await this.blobs.get(hash);
    } catch (err) {
      if (err instanceof NotFound) return null;
      throw err;
    }
    return (await hashStream(stream)).hash;
  }
}
