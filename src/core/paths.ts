import { InvalidPath } from './errors.js';

/**
 * Normalises a path inside a repository: POSIX, relative, `.` segments dropped.
 * Rejects `..`, absolute paths, empty segments, NUL and backslashes (COMPAT "Paths inside a repo").
 * Returns '' for the root when `allowRoot` is set.
 */
export function normalizeRepoPath(raw: string, { allowRoot = false } = {}): string {
  if (typeof raw !== 'string') throw new InvalidPath('Path must be a string');
  if (raw.includes('\0')) throw new InvalidPath('Path must not contain NUL');
  if (raw.includes('\\')) throw new InvalidPath(`Path must not contain a backslash: ${raw}`);
  if (raw.startsWith('/')) throw new InvalidPath(`Path must be relative: ${raw}`);
  // A single trailing slash names a directory; tolerate it.
  const trimmed = raw.endsWith('/') ? raw.slice(0, -1) : raw;
  const out: string[] = [];
  if (trimmed !== '') {
    for (const segment of trimmed.split('/')) {
      if (segment === '') throw new InvalidPath(`Path has an empty segment: ${raw}`);
      if (segment === '.') continue;
      if (segment === '..') throw new InvalidPath(`Path traversal is not allowed: ${raw}`);
      out.push(segment);
    }
  }
  const result = out.join('/');
  if (result === '' && !allowRoot) throw new InvalidPath(`Path must not be empty: ${raw}`);
  return result;
}

export function joinRepoPath(...parts: string[]): string {
  return parts.filter((p) => p !== '').join('/');
}

export function splitRepoPath(path: string): string[] {
  return path === '' ? [] : path.split('/');
}

export function basename(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? path : path.slice(i + 1);
}

export function dirname(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

/** Every proper ancestor directory of `path`, nearest last: 'a/b/c' → ['a', 'a/b']. */
export function ancestors(path: string): string[] {
  const segments = splitRepoPath(path);
  const out: string[] = [];
  for (let i = 1; i < segments.length; i++) out.push(segments.slice(0, i).join('/'));
  return out;
}
