import { Conflict } from '../core/errors.js';
import { normalizeHash } from '../core/hash.js';
import { parseDuration } from '../core/scopes.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { MetaStore, RepoRecord } from '../storage/meta-store.js';
import { allRepositories, repositoryRoots, walkRepository, type Problem, type Reached } from './reachability.js';
import type { UploadService } from './uploads.js';

export interface GcOptions {
  /** Objects stored (or, for blobs, stored or reused) this recently are kept whatever reaches them. */
  graceMs: number;
  /** Report what would go, remove nothing. */
  dryRun?: boolean;
}

export interface GcReport {
  dryRun: boolean;
  commits: number;
  nodes: number;
  blobs: number;
  blobBytes: number;
  /** Partial uploads idle past their expiry. */
  uploads: number;
  /** Upload staging no upload owns any more. */
  stagings: number;
  durationMs: number;
}

/** Default grace period: a push or an upload in progress has at least this long to make what it stored reachable. */
export const DEFAULT_GC_GRACE_MS = 24 * 60 * 60 * 1000;

const PAGE = 5000;

/** A grace period as `yoke gc --grace` takes it: a duration (`24h`, `30m`), or `0` for none. */
export function parseGrace(text: string): number {
  return /^0[dhms]?$/.test(text) ? 0 : parseDuration(text);
}

/** gc refuses to guess when a repository it must walk is damaged: what lies below a missing node is unknown. */
export class DamagedRepository extends Conflict {
  constructor(readonly problem: Problem) {
    super(`gc stopped before removing anything: ${problem.repo}: ${problem.kind} ${problem.id} (${problem.where}): ${problem.detail}; run \`yoke fsck\``, { type: 'damaged_repository' });
  }
}

/**
 * `yoke gc`: removes the commits, tree nodes, blobs and upload staging that no branch, workspace or
 * open upload can reach, sparing anything stored within the grace period. Safe while the server runs:
 * - roots are branches, workspace bases, staged files, and every commit stored within the grace
 *   period (a push adopts commits before it moves the branch);
 * - a blob's time is its last write or reuse: a put that finds it stored touches it, and the store
 *   removes a blob only if no put touched it meanwhile (`deleteIfIdle`);
 * - candidate blobs are first forgotten by every repository (so clients asked "have you got it?" now
 *   upload it again), then everything is marked again, and only what is still unreached goes.
 * Deleting a repository drops its rows at once; the next gc frees the blobs only it held.
 */
export class GarbageCollector {
  constructor(
    private readonly meta: MetaStore,
    private readonly blobs: BlobStore,
    private readonly uploads: UploadService,
  ) {}

  async run(options: GcOptions): Promise<GcReport> {
    const started = Date.now();
    const cutoff = started - options.graceMs;
    const dryRun = options.dryRun ?? false;
    const report: GcReport = { dryRun, commits: 0, nodes: 0, blobs: 0, blobBytes: 0, uploads: 0, stagings: 0, durationMs: 0 };

    if (!dryRun) report.uploads = await this.uploads.expireIdleUploads();

    const reached = new Map<string, Reached>();
    const liveBlobs = new Set<string>();
    const mark = async (repos: RepoRecord[]) => {
      for (const repo of repos) {
        let seen = reached.get(repo.id);
        if (!seen) reached.set(repo.id, (seen = { commits: new Set(), nodes: new Set() }));
        const { heads, staged } = await repositoryRoots(this.meta, repo);
        for (const id of await this.meta.listCommitsStoredSince(repo.id, cutoff)) heads.push({ id, where: 'stored within the grace period' });
        const live = (file: { hash: string }) => liveBlobs.add(normalizeHash(file.hash) ?? file.hash);
        await walkRepository(this.meta, repo, heads, seen, {
          file: live,
          problem: (p) => {
            throw new DamagedRepository(p);
          },
        });
        staged.forEach(live);
      }
    };

    const repos = await allRepositories(this.meta);
    await mark(repos);
    const candidates = new Map<string, number>();
    for await (const blob of this.blobs.list()) {
      if (blob.touchedAt < cutoff && !liveBlobs.has(blob.hash)) candidates.set(blob.hash, blob.size);
    }
    if (!dryRun && candidates.size > 0) {
      await this.meta.forgetBlobs([...candidates.keys()]);
      // Whatever became reachable while the first mark ran (a commit, a new branch on an old commit).
      await mark(await allRepositories(this.meta));
    }
    for (const [hash, size] of candidates) {
      if (liveBlobs.has(hash)) continue;
      if (dryRun || (await this.blobs.deleteIfIdle(hash, cutoff))) {
        report.blobs += 1;
        report.blobBytes += size;
      }
    }

    // Commits before nodes, so that no stored commit ever names a removed node.
    for (const repo of repos) {
      const seen = reached.get(repo.id)!;
      const unreached: string[] = [];
      for (let offset = 0; ; offset += PAGE) {
        const page = await this.meta.listAllCommits(repo.id, { offset, limit: PAGE });
        for (const c of page) if (!seen.commits.has(c.id)) unreached.push(c.id);
        if (page.length < PAGE) break;
      }
      report.commits += dryRun ? unreached.length : (await this.meta.deleteCommits(repo.id, unreached, cutoff)).length;

      for (let after: string | null = null; ; ) {
        const ids = await this.meta.listNodeIds(repo.id, cutoff, after, PAGE);
        const garbage = ids.filter((id) => !seen.nodes.has(id));
        report.nodes += dryRun ? garbage.length : await this.meta.deleteNodes(repo.id, garbage, cutoff);
        if (ids.length < PAGE) break;
        after = ids[ids.length - 1];
      }
    }

    const open = new Set((await this.meta.listUploadsIdleSince(new Date(8.64e15).toISOString())).map((u) => u.id));
    for await (const staging of this.blobs.listStagedUploads()) {
      if (open.has(staging.uploadId) || staging.touchedAt >= cutoff) continue;
      if (!dryRun) await this.blobs.deleteParts(staging.uploadId);
      report.stagings += 1;
    }

    report.durationMs = Date.now() - started;
    return report;
  }
}
