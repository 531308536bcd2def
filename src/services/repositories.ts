import { assertRepoName } from '../core/names.js';
import { BadRequest, Conflict, NotFound, shown } from '../core/errors.js';
import type { ChangeSet } from '../core/tree.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { CommitRecord, MetaStore, RepoRecord } from '../storage/meta-store.js';
import type { Author, CommitService } from './commits.js';

export interface CreateRepoInput {
  namespace: unknown;
  name: unknown;
  description?: unknown;
  user?: { name?: unknown; email?: unknown } | null;
}

/** Files a new repository starts with, as its first commit on the default branch. */
export interface InitialFiles {
  author: Author;
  /** Stored already (a multipart form's parts), or text to store first (Oxen's JSON variant). */
  files: Array<{ path: string; hash: string; size: number } | { path: string; text: string }>;
}

/** The branch a repository is seen through by default: `main` when it exists, else the first by name. */
export const DEFAULT_BRANCH = 'main';
export function defaultBranchOf<B extends { name: string }>(branches: B[]): B | undefined {
  return branches.find((b) => b.name === DEFAULT_BRANCH) ?? branches[0];
}

const optionalString = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export class RepositoryService {
  constructor(
    private readonly meta: MetaStore,
    private readonly blobs: BlobStore,
    private readonly commits: CommitService,
  ) {}

  /** Creates a repository, with `initial` files as `Initial commit` on the default branch; if that commit fails, the repository is deleted again. */
  async create(input: CreateRepoInput, initial: InitialFiles | null = null): Promise<RepoRecord> {
    const blobs: Array<{ hash: string; size: number }> = [];
    const changes: ChangeSet = new Map();
    for (const file of initial?.files ?? []) {
      const blob = 'text' in file ? await this.blobs.put([Buffer.from(file.text, 'utf8')]) : file;
      changes.set(file.path, { hash: blob.hash, size: blob.size });
      blobs.push({ hash: blob.hash, size: blob.size });
    }
    const repo = await this.meta.createRepo({
      namespace: assertRepoName('namespace', input.namespace),
      name: assertRepoName('repository', input.name),
      description: optionalString(input.description),
      creatorName: optionalString(input.user?.name),
      creatorEmail: optionalString(input.user?.email),
    });
    if (!initial) return repo;
    try {
      await this.commits.commit({ repo, branch: DEFAULT_BRANCH, base: null, changes, blobs, author: initial.author, message: 'Initial commit' });
    } catch (err) {
      // A repository whose initial commit failed was never really created.
      await this.meta.deleteRepo(repo.id);
      throw err;
    }
    return repo;
  }

  /** What a repository's description shows: the head of its default branch and how many branches it has. */
  async summary(repo: RepoRecord): Promise<{ latestCommit: CommitRecord | null; branchCount: number }> {
    const branches = await this.meta.listBranches(repo.id);
    const head = defaultBranchOf(branches);
    const latestCommit = head ? await this.meta.getCommit(repo.id, head.commitId) : null;
    return { latestCommit, branchCount: branches.length };
  }

  /** The repository, or 404. Invalid names are simply not found. */
  async require(namespace: string, name: string): Promise<RepoRecord> {
    const repo = await this.meta.getRepo(namespace, name);
    if (!repo) throw new NotFound(`Repository '${namespace}/${name}' not found`);
    return repo;
  }

  /** The repository written `namespace/name` (as `yoke fsck --repo` and the admin routes take it); 400 if malformed, else as `require`. */
  async requireByPath(path: string): Promise<RepoRecord> {
    const [namespace, name, ...rest] = path.split('/');
    if (!namespace || !name || rest.length > 0) throw new BadRequest(`Expected a repository as namespace/name, got '${shown(path)}'`);
    return this.require(namespace, name);
  }

  list(namespace: string): Promise<RepoRecord[]> {
    return this.meta.listRepos(namespace);
  }

  namespaces(): Promise<string[]> {
    return this.meta.listNamespaces();
  }

  /** Moves a repository to another namespace (Oxen's `transfer`); 409 if the name is taken there. */
  async transfer(repo: RepoRecord, namespace: unknown): Promise<RepoRecord> {
    const target = assertRepoName('namespace', namespace);
    if (target === repo.namespace) return repo;
    if (!(await this.meta.moveRepo(repo.id, target))) throw new Conflict(`Repository '${target}/${repo.name}' already exists`);
    return (await this.meta.getRepo(target, repo.name))!;
  }

  async delete(namespace: string, name: string): Promise<RepoRecord> {
    const repo = await this.require(namespace, name);
    await this.meta.deleteRepo(repo.id);
    return repo;
  }
}
