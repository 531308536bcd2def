import { diffLines } from 'diff';
import { diffTrees, type FileChange } from '../core/diff.js';
import { BadRequest, Conflict, NotFound } from '../core/errors.js';
import { lowestCommonAncestor, threeWayMerge, type MergeConflict } from '../core/merge.js';
import { describeFile } from '../core/mime.js';
import { ancestors, basename } from '../core/paths.js';
import { lookupMany, PathConflict, type Entry } from '../core/tree.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { CommitRecord, MetaStore, RepoRecord } from '../storage/meta-store.js';
import type { Author, CommitService } from './commits.js';
import { allAncestors, commitsBetween } from './history.js';
import type { NodeCache } from './node-cache.js';
import type { RevisionResolver } from './revisions.js';

/** `base..head` (what head adds) or `base...head` (measured from their merge base). */
export interface RevisionRange {
  base: string;
  head: string;
  threeDot: boolean;
}

export function parseRange(spec: string): RevisionRange {
  const three = spec.indexOf('...');
  if (three > 0 && three + 3 < spec.length) return { base: spec.slice(0, three), head: spec.slice(three + 3), threeDot: true };
  const two = spec.indexOf('..');
  if (two > 0 && two + 2 < spec.length) return { base: spec.slice(0, two), head: spec.slice(two + 2), threeDot: false };
  throw new BadRequest(`Expected a range 'base..head' or 'base...head', got '${spec}'`);
}

export type MergeOutcome =
  | { kind: 'up_to_date'; base: CommitRecord; head: CommitRecord }
  | { kind: 'fast_forward'; base: CommitRecord; head: CommitRecord }
  | { kind: 'merge_commit'; base: CommitRecord; head: CommitRecord; merge: CommitRecord };

/** Text files up to this size get a line diff in `compare/file`; others get sizes and hashes. */
const MAX_LINE_DIFF_BYTES = 2 * 1024 * 1024;

/** Merges between branches, and comparisons between any two revisions. */
export class MergeService {
  constructor(
    private readonly meta: MetaStore,
    private readonly blobs: BlobStore,
    private readonly nodes: NodeCache,
    private readonly revisions: RevisionResolver,
    private readonly commits: CommitService,
  ) {}

  async mergeBase(repo: RepoRecord, a: CommitRecord, b: CommitRecord): Promise<CommitRecord | null> {
    const [ofA, ofB] = await Promise.all([allAncestors(this.meta, repo.id, a), allAncestors(this.meta, repo.id, b)]);
    return lowestCommonAncestor(ofA, ofB);
  }

  commitsBetween(repo: RepoRecord, base: CommitRecord, head: CommitRecord): Promise<CommitRecord[]> {
    return commitsBetween(this.meta, repo.id, base, head);
  }

  private async branchHead(repo: RepoRecord, name: string): Promise<CommitRecord> {
    const [branch] = await this.meta.findBranches(repo.id, [name]);
    if (!branch) throw new NotFound(`Branch '${name}' not found`);
    return (await this.meta.getCommit(repo.id, branch.commitId))!;
  }

  /** What merging would do: the three-way merge plan of `head` into `base`, and the commits it brings. */
  private async plan(repo: RepoRecord, base: CommitRecord, head: CommitRecord) {
    const lca = await this.mergeBase(repo, base, head);
    const source = this.nodes.forRepo(repo.id);
    const [ours, theirs] = await Promise.all([diffTrees(source, lca?.rootId ?? null, base.rootId), diffTrees(source, lca?.rootId ?? null, head.rootId)]);
    return { lca, ...threeWayMerge(ours, theirs) };
  }

  async check(repo: RepoRecord, range: RevisionRange) {
    if (range.threeDot) throw new BadRequest('Merges take a two-dot range: base..head');
    const base = await this.branchHead(repo, range.base);
    const head = await this.revisions.resolveCommit(repo, range.head);
    const commits = await this.commitsBetween(repo, base, head);
    if (commits.length === 0 || (await this.meta.isAncestor(repo.id, base.id, head.id))) {
      return { isMergeable: true, conflicts: [] as MergeConflict[], commits };
    }
    const { conflicts } = await this.plan(repo, base, head);
    return { isMergeable: conflicts.length === 0, conflicts, commits };
  }

  /**
   * Merges `head` into branch `base`: already up to date, fast-forward (the branch moves by
   * compare-and-swap), or a merge commit with parents [base, head]. Conflicts answer 409 with each
   * path's base, ours and theirs hashes, and leave the branch where it was.
   */
  async merge(repo: RepoRecord, range: RevisionRange, author: Author): Promise<MergeOutcome> {
    if (range.threeDot) throw new BadRequest('Merges take a two-dot range: base..head');
    const base = await this.branchHead(repo, range.base);
    const head = await this.revisions.resolveCommit(repo, range.head);
    if (base.id === head.id || (await this.meta.isAncestor(repo.id, head.id, base.id))) return { kind: 'up_to_date', base, head };
    if (await this.meta.isAncestor(repo.id, base.id, head.id)) {
      if (!(await this.meta.compareAndSwapBranch(repo.id, range.base, base.id, head.id))) {
        throw new Conflict(`Branch '${range.base}' moved during the merge; retry`);
      }
      return { kind: 'fast_forward', base, head };
    }
    const { apply, conflicts } = await this.plan(repo, base, head);
    if (conflicts.length > 0) throw new Conflict(`Merge conflict in ${conflicts.length} path(s)`, { type: 'merge_conflict', conflicts });
    try {
      const { commit } = await this.commits.commit({
        repo,
        branch: range.base,
        base,
        changes: apply,
        blobs: [],
        author,
        message: `Merge '${range.head}' into '${range.base}'`,
        mergeParents: [head],
        allowEmpty: true,
      });
      return { kind: 'merge_commit', base, head, merge: commit };
    } catch (err) {
      // A file on one side where the other made a directory: a conflict, not a bad request.
      if (err instanceof PathConflict) throw new Conflict(`Merge conflict: ${err.message}`, { type: 'merge_conflict', conflicts: [] });
      throw err;
    }
  }

  /** Resolves both ends of a range; with `...`, the base becomes their merge base (400 if none). */
  async resolveRange(repo: RepoRecord, range: RevisionRange): Promise<{ base: CommitRecord; head: CommitRecord }> {
    const [base, head] = await Promise.all([this.revisions.resolveCommit(repo, range.base), this.revisions.resolveCommit(repo, range.head)]);
    if (!range.threeDot) return { base, head };
    const lca = await this.mergeBase(repo, base, head);
    if (!lca) throw new BadRequest(`No merge base between ${range.base} and ${range.head}`, { type: 'no_merge_base' });
    return { base: lca, head };
  }

  /**
   * `spec` as a range whose two ends both resolve, or null: a path may contain `..` inside a name
   * (`main/a..b.txt`), so a spec that is not a range is left to the caller to read as a revision.
   */
  async tryResolveRange(repo: RepoRecord, spec: string): Promise<{ base: CommitRecord; head: CommitRecord } | null> {
    try {
      return await this.resolveRange(repo, parseRange(spec));
    } catch (err) {
      if (err instanceof NotFound || err instanceof BadRequest) return null;
      throw err;
    }
  }

  /** `..`: what head adds; `...`: the symmetric difference, each commit tagged with its side. */
  async compareCommits(repo: RepoRecord, range: RevisionRange) {
    const [base, head] = await Promise.all([this.revisions.resolveCommit(repo, range.base), this.revisions.resolveCommit(repo, range.head)]);
    const headSide = (await this.commitsBetween(repo, base, head)).map((c) => ({ commit: c, side: 'head' as const }));
    if (!range.threeDot) return { base, head, commits: headSide };
    if (!(await this.mergeBase(repo, base, head))) throw new BadRequest(`No merge base between ${range.base} and ${range.head}`, { type: 'no_merge_base' });
    const baseSide = (await this.commitsBetween(repo, head, base)).map((c) => ({ commit: c, side: 'base' as const }));
    const all = [...headSide, ...baseSide].sort((a, b) => (a.commit.timestamp < b.commit.timestamp ? 1 : a.commit.timestamp > b.commit.timestamp ? -1 : 0));
    return { base, head, commits: all };
  }

  /** Files that differ between the two ends (under `dir`), touching only differing subtrees. */
  async compareEntries(repo: RepoRecord, range: RevisionRange, dir: string): Promise<{ base: CommitRecord; head: CommitRecord; changes: FileChange[] }> {
    const { base, head } = await this.resolveRange(repo, range);
    const source = this.nodes.forRepo(repo.id);
    const [from, to] = await lookupMany(source, [{ rootId: base.rootId, path: dir }, { rootId: head.rootId, path: dir }]);
    if (!from && !to) throw new NotFound(`Directory not found in either revision: ${dir}`);
    const dirId = (e: Entry | null) => (e?.kind === 'dir' ? e.id : null);
    return { base, head, changes: await diffTrees(source, dirId(from), dirId(to), dir) };
  }

  /**
   * Directories whose contents differ between the two ends (every ancestor of a changed file,
   * the root excluded), each `added` (absent from base), `removed` (absent from head) or `modified`.
   */
  async changedDirs(repo: RepoRecord, range: RevisionRange): Promise<Array<{ path: string; status: 'added' | 'removed' | 'modified' }>> {
    const { base, head, changes } = await this.compareEntries(repo, range, '');
    const source = this.nodes.forRepo(repo.id);
    const dirs = [...new Set(changes.flatMap((c) => ancestors(c.path)))].sort();
    // Every directory in both trees, looked up together: base's entries, then head's.
    const found = await lookupMany(source, [base.rootId, head.rootId].flatMap((rootId) => dirs.map((path) => ({ rootId, path }))));
    return dirs.map((path, i) => {
      const [before, after] = [found[i], found[dirs.length + i]];
      return { path, status: before?.kind !== 'dir' ? 'added' : after?.kind !== 'dir' ? 'removed' : 'modified' };
    });
  }

  /** One file in both revisions: a line diff for text, sizes and hashes otherwise. */
  async compareFile(repo: RepoRecord, baseRevision: string, headResource: string) {
    const base = await this.revisions.resolveCommit(repo, baseRevision);
    const resolved = await this.revisions.resolve(repo, headResource);
    if (resolved.path === '') throw new BadRequest('compare/file needs a path: base..head/path');
    const source = this.nodes.forRepo(repo.id);
    const [before, after] = await lookupMany(source, [{ rootId: base.rootId, path: resolved.path }, { rootId: resolved.commit.rootId, path: resolved.path }]);
    const file = (e: Entry | null) => (e?.kind === 'file' ? e : null);
    const [a, b] = [file(before), file(after)];
    if (!a && !b) throw new NotFound(`Path is a file in neither revision: ${resolved.path}`);
    const status = !a ? 'added' : !b ? 'removed' : a.hash === b.hash ? 'unchanged' : 'modified';
    const info = (e: (Entry & { kind: 'file' }) | null) => (e ? { hash: e.hash, size: e.size } : null);
    const { dataType } = describeFile(basename(resolved.path));
    let lines: Array<{ modification: 'added' | 'removed' | 'unchanged'; text: string }> | null = null;
    if (dataType === 'text' || dataType === 'tabular') {
      if ((a?.size ?? 0) <= MAX_LINE_DIFF_BYTES && (b?.size ?? 0) <= MAX_LINE_DIFF_BYTES) {
        const [textA, textB] = await Promise.all([this.readText(a), this.readText(b)]);
        lines = diffLines(textA, textB).flatMap((part) =>
          part.value
            .replace(/\n$/, '')
            .split('\n')
            .map((text) => ({ modification: part.added ? ('added' as const) : part.removed ? ('removed' as const) : ('unchanged' as const), text })),
        );
      }
    }
    return { base, head: resolved.commit, path: resolved.path, status, before: info(a), after: info(b), dataType, lines };
  }

  private async readText(entry: (Entry & { kind: 'file' }) | null): Promise<string> {
    if (!entry || entry.size === 0) return '';
    const chunks: Buffer[] = [];
    for await (const chunk of await this.blobs.get(entry.hash)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
}
