import { BadRequest } from './errors.js';
import { assertRepoName } from './names.js';

/**
 * Token scopes: a level (read < write < admin, each including the ones below) over everything, one
 * namespace, or one repository. Written `write`, `write:ns` or `write:ns/repo`.
 */
export type AccessLevel = 'read' | 'write' | 'admin';

export interface Scope {
  level: AccessLevel;
  /** null: every namespace. */
  namespace: string | null;
  /** null: every repository of the namespace. */
  repo: string | null;
}

const RANK: Readonly<Record<AccessLevel, number>> = { read: 1, write: 2, admin: 3 };

export function parseScope(text: string): Scope {
  const match = /^(read|write|admin)(?::([^/]+)(?:\/(.+))?)?$/.exec(text);
  if (!match) throw new BadRequest(`Invalid scope '${text}': expected read|write|admin, optionally :namespace or :namespace/repo`);
  const [, level, namespace, repo] = match;
  if (namespace !== undefined) assertRepoName('namespace', namespace);
  if (repo !== undefined) assertRepoName('repository', repo);
  return { level: level as AccessLevel, namespace: namespace ?? null, repo: repo ?? null };
}

export function formatScope(scope: Scope): string {
  return scope.namespace === null ? scope.level : `${scope.level}:${scope.namespace}${scope.repo === null ? '' : `/${scope.repo}`}`;
}

/**
 * Whether `scopes` grant `level` on `target`: a repository (namespace and name), a namespace (repo
 * null), or the server as a whole (both null), which only an unrestricted scope covers.
 */
export function grants(scopes: readonly Scope[], level: AccessLevel, target: { namespace: string | null; repo: string | null }): boolean {
  return scopes.some(
    (s) =>
      RANK[s.level] >= RANK[level] &&
      (s.namespace === null || (s.namespace === target.namespace && (s.repo === null || s.repo === target.repo))),
  );
}

/** `30d`, `12h`, `10m` or `5s` in milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d{1,9})([dhms])$/.exec(text);
  if (!match) throw new BadRequest(`Invalid duration '${text}': expected a number and d, h, m or s (30d, 12h, 10m, 5s)`);
  const unit = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 }[match[2] as 'd' | 'h' | 'm' | 's'];
  const ms = Number(match[1]) * unit;
  if (ms <= 0) throw new BadRequest(`Invalid duration '${text}': must be longer than zero`);
  return ms;
}
