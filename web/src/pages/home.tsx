import { useState } from 'preact/hooks';
import type { Repository } from '../../../src/client/index.js';
import { client, useLoad } from '../api.js';
import { Await, Time } from '../components.js';
import { summary } from '../format.js';
import { navigate, repoHref } from '../router.js';
import { loadAuthor, saveAuthor } from '../author.js';

/** `/`: every repository, newest first, filtered by name; a form to create one. */
export function HomePage({ query }: { query: URLSearchParams }) {
  const loaded = useLoad(() => client.allRepositories(), []);
  const [filter, setFilter] = useState(query.get('q') ?? '');
  const [creating, setCreating] = useState(false);
  return (
    <>
      <div class="page-head">
        <h1>Repositories</h1>
        <button type="button" onClick={() => setCreating(!creating)} aria-expanded={creating}>
          New repository
        </button>
      </div>
      {creating && <CreateRepository />}
      <label class="visually-hidden" for="repo-filter">
        Find a repository
      </label>
      <input id="repo-filter" class="filter" type="search" placeholder="Find a repository by name…" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} />
      <Await loaded={loaded} what="Loading repositories">
        {(repos) => <RepositoryList repos={repos} filter={filter} />}
      </Await>
    </>
  );
}

function RepositoryList({ repos, filter }: { repos: Repository[]; filter: string }) {
  const needle = filter.trim().toLowerCase();
  const shown = needle === '' ? repos : repos.filter((r) => `${r.namespace}/${r.name}`.toLowerCase().includes(needle));
  if (repos.length === 0) return <p class="muted">No repositories yet. Create one, or push one with Oxen's client.</p>;
  if (shown.length === 0) return <p class="muted">No repository matches “{filter}”.</p>;
  return (
    <ul class="repo-list">
      {shown.map((repo) => (
        <li key={`${repo.namespace}/${repo.name}`} class="repo-item">
          <a class="repo-name" href={repoHref(repo.namespace, repo.name)}>
            {repo.namespace}/{repo.name}
          </a>
          {repo.description ? <p class="muted">{repo.description}</p> : null}
          <p class="muted small">
            {repo.latest_commit ? (
              <>
                {summary(repo.latest_commit.message)} · updated <Time iso={repo.latest_commit.timestamp} />
              </>
            ) : (
              'empty'
            )}{' '}
            · created <Time iso={repo.created_at} />
          </p>
        </li>
      ))}
    </ul>
  );
}

function CreateRepository() {
  const author = loadAuthor();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    const text = (name: string) => String(form.get(name) ?? '').trim();
    const who = { name: text('author'), email: text('email') };
    setBusy(true);
    setError(null);
    try {
      const repo = await client.createRepository(text('namespace'), text('name'), who, text('description'));
      saveAuthor(who);
      navigate(repoHref(repo.namespace, repo.name));
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  };
  return (
    <form class="card form-grid" onSubmit={submit}>
      <label for="new-namespace">Namespace</label>
      <input id="new-namespace" name="namespace" required pattern="[A-Za-z0-9][A-Za-z0-9_.\-]+" />
      <label for="new-name">Name</label>
      <input id="new-name" name="name" required pattern="[A-Za-z0-9][A-Za-z0-9_.\-]+" />
      <label for="new-description">Description</label>
      <input id="new-description" name="description" />
      <label for="new-author">Your name</label>
      <input id="new-author" name="author" required defaultValue={author.name} />
      <label for="new-email">Your email</label>
      <input id="new-email" name="email" type="email" required defaultValue={author.email} />
      <span />
      <div>
        <button type="submit" disabled={busy}>
          Create repository
        </button>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </div>
    </form>
  );
}
