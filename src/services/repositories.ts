import { assertRepoName } from '../core/names.js';
import { BadRequest, Conflict, NotFound, shown } from '../core/errors.js';
import type { MetaStore, RepoRecord } from '../storage/meta-store.js';

export interface CreateRepoInput {
  namespace: unknown;
  name: unknown;
  description?: unknown;
  user?: { name?: unknown; email?: unknown } | null;
}

/** The branch a repository is seen through by default: `main` when it exists, else the first by name. */
export const DEFAULT_BRANCH = 'main';
export function defaultBranchOf<B extends { name: string }>(branches: B[]): B | undefined {
  return branches.find((b) => b.name === DEFAULT_BRANCH) ?? branches[0];
}

const optionalString = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export class RepositoryService {
  constructor(private readonly meta: MetaStore) {}

  async create(input: CreateRepoInput): Promise<RepoRecord> {
    return this.meta.createRepo({
      namespace: assertRepoName('namespace', input.namespace),
      name: assertRepoName('repository', input.name),
      description: optionalString(input.description),
      creatorName: optionalString(input.user?.name),
      creatorEmail: optionalString(input.user?.email),
    });
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
