import { useEffect, useState } from 'preact/hooks';
import { ApiError, encodePath, YokeClient, type UploadTransport } from '../../src/client/index.js';

/** The page's API client, its token (kept in this browser's localStorage) and a data-loading hook. */

const TOKEN_KEY = 'yoke.token';

function storedToken(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

/** Multipart uploads through XMLHttpRequest, the one browser API that reports bytes sent. */
const xhrUpload: UploadTransport = ({ method, url, headers, body, onProgress }) =>
  new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => onProgress?.(event.loaded);
    xhr.onload = () => {
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(xhr.responseText);
      } catch {}
      resolve({ status: xhr.status, body: parsed });
    };
    xhr.onerror = () => reject(new Error('The upload failed: the connection was lost'));
    xhr.send(body);
  });

export const client = new YokeClient({ token: storedToken(), upload: xhrUpload });

/** Told when loaded data may be stale: the token changed, or this page changed something. */
const staleListeners = new Set<() => void>();

/** After a change made from this page (an upload, a merge) or a new token: everything shown is loaded again. */
export function reloadAll(): void {
  for (const listener of staleListeners) listener();
}

export function setToken(token: string | null): void {
  client.token = token;
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {}
  reloadAll();
}

/** Whether the server requires tokens (the page shell says so). */
export const authRequired = document.body.dataset.auth === 'on';
/** Whether the server serves data-frame pages (tables of CSV, JSONL, Parquet). */
export const hasDataFrames = (document.body.dataset.features ?? '').split(' ').includes('data_frames');

/** Re-renders the caller when loaded data went stale (a new token, a change made here). */
export function useDataVersion(): number {
  const [version, setVersion] = useState(0);
  useEffect(() => {
    const bump = () => setVersion((v) => v + 1);
    staleListeners.add(bump);
    return () => void staleListeners.delete(bump);
  }, []);
  return version;
}

export type Loaded<T> = { state: 'loading' } | { state: 'done'; value: T } | { state: 'failed'; error: ApiError | Error };

/**
 * Runs `load` when `deps` change (aborting the previous run) and tracks its outcome. A result belongs to the
 * deps it was loaded for: while new deps load, the caller sees 'loading', never the previous value. When data
 * only went stale (useDataVersion), the previous value stays shown until the new one arrives.
 */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Loaded<T> {
  const dataVersion = useDataVersion();
  const [result, setResult] = useState<{ deps: unknown[]; loaded: Loaded<T> } | null>(null);
  useEffect(() => {
    const controller = new AbortController();
    const settle = (loaded: Loaded<T>) => controller.signal.aborted || setResult({ deps, loaded });
    load(controller.signal).then(
      (value) => settle({ state: 'done', value }),
      (error: Error) => settle({ state: 'failed', error }),
    );
    return () => controller.abort();
  }, [...deps, dataVersion]);
  const fresh = result !== null && result.deps.length === deps.length && result.deps.every((d, i) => Object.is(d, deps[i]));
  return fresh ? result.loaded : { state: 'loading' };
}

export function isAuthError(error: unknown): boolean {
  return error instanceof ApiError && (error.status === 401 || error.status === 403);
}

/**
 * A URL the browser can load itself (img, video, audio src): the file's own address without a token; with
 * one, the bytes fetched with it into an object URL, since such elements cannot send headers.
 */
export function useMediaUrl(namespace: string, repo: string, resource: string): Loaded<string> {
  const direct = client.token === null;
  const loaded = useLoad(async (signal) => {
    if (direct) return client.repoUrl(namespace, repo, `/file/${encodePath(resource)}`);
    const bytes = await client.readFile(namespace, repo, resource, undefined, signal);
    return URL.createObjectURL(new Blob([bytes as BlobPart]));
  }, [namespace, repo, resource, direct]);
  useEffect(() => () => {
    if (loaded.state === 'done' && loaded.value.startsWith('blob:')) URL.revokeObjectURL(loaded.value);
  }, [loaded]);
  return loaded;
}

export { ApiError };
