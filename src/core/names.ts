import { BadRequest, shown } from './errors.js';

const REPO_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]+$/;
/** A name is a path segment and a database key (PostgreSQL indexes hold keys of at most ~2.7 KB). */
export const MAX_REPO_NAME_LENGTH = 255;

/** Namespace and repository names: `[A-Za-z0-9][A-Za-z0-9_.-]+` (COMPAT), at most 255 characters, and never `.`/`..`-like. */
export function assertRepoName(kind: 'namespace' | 'repository', name: unknown): string {
  if (typeof name !== 'string' || !REPO_NAME.test(name) || name.includes('..') || name.length > MAX_REPO_NAME_LENGTH) {
    throw new BadRequest(
      `Invalid ${kind} name '${shown(name)}'. Must match [A-Za-z0-9][A-Za-z0-9_.-]+, at most ${MAX_REPO_NAME_LENGTH} characters`,
    );
  }
  return name;
}

/**
 * Branch names follow git's ref rules as Oxen applies them: slashes allowed, but no `..`, `~`, `^`,
 * `:`, `?`, `[`, `*`, `\`, whitespace, control characters or `@{`; not `@`; no empty segment; no
 * segment starting with `.`; not ending in `.` or `.lock`.
 */
export function isValidBranchName(name: unknown): name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 255) return false;
  if (name === '@' || name.includes('..') || name.includes('@{')) return false;
  if (/[~^:?[*\\\s\x00-\x1f\x7f]/.test(name)) return false;
  if (name.endsWith('.') || name.endsWith('.lock')) return false;
  return name.split('/').every((segment) => segment !== '' && !segment.startsWith('.'));
}

export function assertBranchName(name: unknown): string {
  if (!isValidBranchName(name)) throw new BadRequest(`'${shown(name)}' is not a valid branch name.`);
  return name;
}
