import { BadRequest, NotFound } from '../core/errors.js';
import { joinRepoPath, normalizeRepoPath } from '../core/paths.js';
import { lookup, type ChangeSet, type Entry, type FileEntry } from '../core/tree.js';
import type { CommitRecord, RepoRecord } from '../storage/meta-store.js';
import type { Author, CommitService } from './commits.js';
import type { NodeCache } from './node-cache.js';
import type { WriteTarget } from './revisions.js';
import type { TreeResolver } from './trees.js';

/** A file part of an upload form, already stored: its form field, the filename it was sent with, and its blob. */
export interface StoredPart {
  field: string;
  filename: string | undefined;
  hash: string;
  size: number;
}

export interface PlacedFile {
  path: string;
  size: number;
  hash: string;
}

/**
 * Where each uploaded part lands (COMPAT: `PUT …/file`). One `file` part goes to exactly `{path}`
 * unless `{path}` is the root or an existing directory; several parts, or any `files[]` part, make
 * `{path}` a directory and each part keeps its (normalised) filename.
 */
function placeParts(parts: StoredPart[], target: string, targetEntry: Entry | null): Map<string, StoredPart> {
  if (parts.length === 0) throw new BadRequest('Missing file data: expected a `file` or `files[]` part');
  const single = parts.length === 1 && parts[0].field === 'file';
  const intoDirectory = !single || target === '' || targetEntry?.kind === 'dir';
  if (!intoDirectory) return new Map([[target, parts[0]]]);
  if (targetEntry?.kind === 'file') throw new BadRequest(`Target path must be a directory: ${target}`);
  const placed = new Map<string, StoredPart>();
  for (const part of parts) {
    if (!part.filename) throw new BadRequest('Every file part needs a filename when uploading into a directory');
    const path = joinRepoPath(target, normalizeRepoPath(part.filename));
    if (placed.has(path)) throw new BadRequest(`Two parts target the same path: ${path}`);
    placed.set(path, part);
  }
  return placed;
}

/**
 * Files on a branch changed one request at a time (`…/file/{branch}/{path}`): upload, delete and
 * move, each as one commit through `CommitService`; and committed files found for reading.
 */
export class FileService {
  constructor(
    private readonly nodes: NodeCache,
    private readonly trees: TreeResolver,
    private readonly commits: CommitService,
  ) {}

  /**
   * Commits stored parts placed under `target` (see `placeParts`). The same bytes again are no
   * change: the head is answered with `created: false`, as a repeated PUT should be.
   */
  async upload(repo: RepoRecord, target: WriteTarget, parts: StoredPart[], author: Author, message?: string): Promise<{ commit: CommitRecord; created: boolean; files: PlacedFile[] }> {
    const targetEntry = target.head ? await lookup(this.nodes.forRepo(repo.id), target.head.rootId, target.path) : null;
    const placed = placeParts(parts, target.path, targetEntry);
    const changes: ChangeSet = new Map([...placed].map(([path, part]) => [path, { hash: part.hash, size: part.size }]));
    const { commit, created } = await this.commits.commit({
      repo,
      branch: target.branch,
      base: target.head,
      changes,
      blobs: parts,
      author,
      message: message || (target.head ? `Auto-commit files to ${target.path || '/'}` : 'Initial commit'),
      allowNoChanges: true,
    });
    return { commit, created, files: [...placed].map(([path, part]) => ({ path, size: part.size, hash: part.hash })) };
  }

  /** Deletes the file or directory at `target` as one commit. */
  async remove(repo: RepoRecord, target: WriteTarget, author: Author, message?: string): Promise<CommitRecord> {
    if (!target.head) throw new NotFound(`Branch '${target.branch}' does not exist`);
    if (target.path === '') throw new BadRequest('Refusing to delete the repository root');
    const entry = await lookup(this.nodes.forRepo(repo.id), target.head.rootId, target.path);
    if (!entry) throw new NotFound(`Could not find path: ${target.path} on ${target.branch}`);
    const { commit } = await this.commits.commit({
      repo, branch: target.branch, base: target.head, changes: new Map([[target.path, null]]), blobs: [], author, message: message || `Delete ${target.path}`,
    });
    return commit;
  }

  /** Moves the file at `target` to `newPath` (which must not exist) as one commit. */
  async move(repo: RepoRecord, target: WriteTarget, newPath: string, author: Author, message?: string): Promise<{ commit: CommitRecord; file: PlacedFile }> {
    if (!target.head) throw new NotFound(`Branch '${target.branch}' does not exist`);
    const source = this.nodes.forRepo(repo.id);
    const entry = await lookup(source, target.head.rootId, target.path);
    if (!entry) throw new NotFound(`Could not find path: ${target.path} on ${target.branch}`);
    if (entry.kind !== 'file') throw new BadRequest(`Only files can be moved: ${target.path} is a directory`);
    if (await lookup(source, target.head.rootId, newPath)) throw new BadRequest(`new_path already exists: ${newPath}`);
    const changes: ChangeSet = new Map([[target.path, null], [newPath, { hash: entry.hash, size: entry.size }]]);
    const { commit } = await this.commits.commit({
      repo, branch: target.branch, base: target.head, changes, blobs: [], author, message: message || `Move ${target.path} to ${newPath}`,
    });
    return { commit, file: { path: newPath, size: entry.size, hash: entry.hash } };
  }

  /**
   * Resolves `{rev}/{path}` (or, as Oxen does, `{workspace}/{path}`) to a file: 404 if nothing is
   * there, 400 `not_a_file` for a directory.
   */
  async findCommitted(repo: RepoRecord, resource: string): Promise<{ resolved: { commit: CommitRecord; path: string; version: string }; entry: FileEntry }> {
    const tree = await this.trees.resolve(repo, resource);
    const entry = await lookup(tree.source, tree.rootId, tree.path);
    if (!entry) throw new NotFound(`Could not find path: ${tree.path} at ${tree.version}`);
    if (entry.kind !== 'file') throw new BadRequest(`Not a file: ${tree.path}`, { type: 'not_a_file' });
    return { resolved: { commit: tree.commit, path: tree.path, version: tree.version }, entry };
  }
}
