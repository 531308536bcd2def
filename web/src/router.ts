import { useEffect, useState } from 'preact/hooks';

/**
 * A history-API router: links are plain `<a href>`; clicks on same-origin links are taken over here, so
 * pages change without reloading while every page keeps an address that opens directly.
 */

const listeners = new Set<() => void>();

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (options.replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  window.scrollTo(0, 0);
  for (const listener of listeners) listener();
  // The link that was followed is gone: keyboard and screen-reader users continue from the new page's content,
  // not from the top of the document.
  document.getElementById('main')?.focus({ preventScroll: true });
}

/** The current path and query; re-renders the caller when it changes. */
export function useLocation(): { path: string; query: URLSearchParams } {
  const [, setTick] = useState(0);
  useEffect(() => {
    const changed = () => setTick((n) => n + 1);
    listeners.add(changed);
    window.addEventListener('popstate', changed);
    return () => {
      listeners.delete(changed);
      window.removeEventListener('popstate', changed);
    };
  }, []);
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

/** Same-origin link clicks become in-page navigations (new tabs, downloads and API links stay as they are). */
export function interceptLinks(): void {
  document.addEventListener('click', (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = (event.target as Element).closest?.('a');
    if (!link || link.target || link.hasAttribute('download') || link.origin !== location.origin) return;
    if (link.pathname.startsWith('/api/') || link.pathname.startsWith('/-/')) return;
    event.preventDefault();
    navigate(link.pathname + link.search + link.hash);
  });
}

/** Encodes each segment of a path, keeping its slashes. */
export function encodeSegments(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

export type RepoView = 'tree' | 'blob' | 'commits' | 'commit' | 'compare' | 'branches' | 'workspaces' | 'upload';

export type Route =
  | { page: 'home' }
  | { page: 'repo'; namespace: string; repo: string; view: RepoView; resource: string }
  | { page: 'not-found' };

const VIEWS = new Set<RepoView>(['tree', 'blob', 'commits', 'commit', 'compare', 'branches', 'workspaces', 'upload']);

/** `/`, `/{ns}/{repo}`, `/{ns}/{repo}/{view}/{resource…}`; resource is `{revision}/{path}` for most views. */
export function parseRoute(pathname: string): Route {
  const segments = pathname.split('/').filter((s) => s !== '');
  let decoded: string[];
  try {
    decoded = segments.map(decodeURIComponent);
  } catch {
    return { page: 'not-found' };
  }
  if (decoded.length === 0) return { page: 'home' };
  if (decoded.length === 1) return { page: 'not-found' };
  const [namespace, repo, view = 'tree', ...rest] = decoded;
  if (!VIEWS.has(view as RepoView)) return { page: 'not-found' };
  return { page: 'repo', namespace, repo, view: view as RepoView, resource: rest.join('/') };
}

/** The address of a repository page. */
export function repoHref(namespace: string, repo: string, view?: RepoView, resource = ''): string {
  const base = `/${encodeURIComponent(namespace)}/${encodeURIComponent(repo)}`;
  if (!view) return base;
  return `${base}/${view}${resource === '' ? '' : `/${encodeSegments(resource)}`}`;
}

/** The branch named by the longest leading segments of `resource`, else its first segment (a commit id). */
export function splitResource(resource: string, branches: string[], fallback: string): { revision: string; path: string } {
  if (resource === '') return { revision: fallback, path: '' };
  const segments = resource.split('/');
  const names = new Set(branches);
  for (let i = segments.length; i > 0; i--) {
    const candidate = segments.slice(0, i).join('/');
    if (names.has(candidate)) return { revision: candidate, path: segments.slice(i).join('/') };
  }
  return { revision: segments[0], path: segments.slice(1).join('/') };
}
