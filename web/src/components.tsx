import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { Commit } from '../../src/client/index.js';
import { client, isAuthError, setToken, type Loaded } from './api.js';
import { exactTime, shortId, summary, timeAgo } from './format.js';
import { encodeSegments, repoHref } from './router.js';

/** Small pieces shared by the pages. */

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <p class="muted" role="status" aria-live="polite">
      {what}…
    </p>
  );
}

export function ErrorView({ error }: { error: Error }) {
  if (isAuthError(error)) return <TokenPrompt reason={client.token ? 'This token may not read this. Use another one:' : 'This server needs a token.'} />;
  return (
    <div class="error" role="alert">
      {error.message}
    </div>
  );
}

/** Renders `children(value)` once loaded, a status line until then, the error when it failed. */
export function Await<T>({ loaded, what, children }: { loaded: Loaded<T>; what?: string; children: (value: T) => ComponentChildren }) {
  if (loaded.state === 'loading') return <Loading what={what} />;
  if (loaded.state === 'failed') return <ErrorView error={loaded.error} />;
  return <>{children(loaded.value)}</>;
}

export function TokenPrompt({ reason }: { reason: string }) {
  const [value, setValue] = useState('');
  return (
    <form
      class="card token-prompt"
      onSubmit={(event) => {
        event.preventDefault();
        if (value.trim() !== '') setToken(value.trim());
      }}
    >
      <h2>Sign in with a token</h2>
      <p>{reason}</p>
      <p class="muted">
        Make one on the server with <code>yoke token create --scope read</code>. It is kept in this browser only.
      </p>
      <label for="token-input">Token</label>
      <div class="row">
        <input id="token-input" type="password" autocomplete="off" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
        <button type="submit">Use token</button>
      </div>
    </form>
  );
}

export function Time({ iso }: { iso: string }) {
  return (
    <time dateTime={iso} title={exactTime(iso)}>
      {timeAgo(iso)}
    </time>
  );
}

export function CommitLink({ namespace, repo, commit }: { namespace: string; repo: string; commit: Commit }) {
  return (
    <a class="commit-id" href={repoHref(namespace, repo, 'commit', commit.id)} title={commit.id}>
      {shortId(commit.id)}
    </a>
  );
}

/** One line per commit: message, author, time, id. */
export function CommitRow({ namespace, repo, commit }: { namespace: string; repo: string; commit: Commit }) {
  return (
    <li class="commit-row">
      <div class="commit-message">
        <a href={repoHref(namespace, repo, 'commit', commit.id)}>{summary(commit.message) || '(no message)'}</a>
      </div>
      <div class="muted small">
        {commit.author} committed <Time iso={commit.timestamp} /> · <CommitLink namespace={namespace} repo={repo} commit={commit} />
      </div>
    </li>
  );
}

/** `repo / dir / sub / name`, each part a link to its directory at `revision`. */
export function Breadcrumbs({ namespace, repo, revision, path }: { namespace: string; repo: string; revision: string; path: string }) {
  const parts = path === '' ? [] : path.split('/');
  return (
    <nav class="breadcrumbs" aria-label="Path">
      <a href={repoHref(namespace, repo, 'tree', revision)}>{repo}</a>
      {parts.map((part, i) => {
        const last = i === parts.length - 1;
        return (
          <span key={i}>
            <span class="sep" aria-hidden="true">
              /
            </span>
            {last ? <span aria-current="page">{part}</span> : <a href={repoHref(namespace, repo, 'tree', `${revision}/${parts.slice(0, i + 1).join('/')}`)}>{part}</a>}
          </span>
        );
      })}
    </nav>
  );
}

/** Previous/next page links for paged lists. */
export function Pager({ page, totalPages, href }: { page: number; totalPages: number; href: (page: number) => string }) {
  if (totalPages <= 1) return null;
  return (
    <nav class="pager" aria-label="Pages">
      {page > 1 ? <a href={href(page - 1)}>← Newer</a> : <span />}
      <span class="muted">
        Page {page} of {totalPages}
      </span>
      {page < totalPages ? <a href={href(page + 1)}>Older →</a> : <span />}
    </nav>
  );
}

export function withQuery(path: string, query: Record<string, string | number>): string {
  const params = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]));
  return `${path}?${params}`;
}

export { encodeSegments };
