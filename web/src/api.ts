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
const features = (document.body.dataset.features ?? '').split(' ');
export const hasDataFrames = features.includes('data_frames');
/** Whether the server compares tables row by row (`compare/data_frames`). */
export const hasTableCompare = features.includes('compare_data_frames');

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
 * A URL the browser can load itself (img, video, audio src), so media stream and seek with Range: the file's
 * own address without a token; with one, a file link from the API (read-only, this file, minutes long), since
 * such elements cannot send headers. `renew` asks for a new link once the one shown has expired (a player
 * still seeking after that gets 401s); it answers whether it did, so a file that is truly broken is not retried.
 */
export function useMediaUrl(namespace: string, repo: string, resource: string): [Loaded<string>, () => boolean] {
  const direct = client.token === null;
  const [generation, setGeneration] = useState(0);
  const [expiresAt, setExpiresAt] = useState<number | null>(null);
  const loaded = useLoad(async (signal) => {
    if (direct) return client.repoUrl(namespace, repo, `/file/${encodePath(resource)}`);
    const link = await client.fileLink(namespace, repo, resource, signal);
    setExpiresAt(link.expires_at === null ? null : Date.parse(link.expires_at));
    return link.url;
  }, [namespace, repo, resource, direct, generation]);
  const renew = () => {
    if (expiresAt === null || Date.now() < expiresAt) return false;
    setGeneration((g) => g + 1);
    return true;
  };
  return [loaded, renew];
}

/** Saves a committed file through the browser's own download (streamed to disk): with a token, through a file link. */
export async function downloadFile(namespace: string, repo: string, resource: string, filename: string): Promise<void> {
  const link = document.createElement('a');
  link.href = (await client.fileLink(namespace, repo, resource)).url;
  link.download = filename;
  link.click();
}

export { ApiError };
