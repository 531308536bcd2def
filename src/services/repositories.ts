import { assertRepoName } from '../core/names.js';
import { NotFound } from '../core/errors.js';
import type { MetaStore, RepoRecord } from '../storage/meta-store.js';

export interface CreateRepoInput {
  namespace: unknown;
  name: unknown;
  description?: unknown;
  user?: { name?: unknown; email?: unknown } | null;
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

  list(namespace: string): Promise<RepoRecord[]> {
    return this.meta.listRepos(namespace);
  }

  namespaces(): Promise<string[]> {
    return this.meta.listNamespaces();
  }

  async delete(namespace: string, name: string): Promise<RepoRecord> {
    const repo = await this.require(namespace, name);
    await this.meta.deleteRepo(repo.id);
    return repo;
  }
}
