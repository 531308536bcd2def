/** Path and query parameter shapes shared by the route modules. */
import { BadRequest } from '../../core/errors.js';

export interface RepoParams {
  namespace: string;
  repo_name: string;
}

export interface RepoWildcardParams extends RepoParams {
  '*': string;
}

export const REPO = '/api/repos/:namespace/:repo_name';

/** A boolean query parameter: `true`/`1` or `false`/`0`; `fallback` when absent (none: it is required). */
export function booleanQuery(name: string, value: unknown, fallback?: boolean): boolean {
  if (value === undefined && fallback !== undefined) return fallback;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new BadRequest(`Query parameter ${name} must be true or false${value === undefined ? '' : `, got ${String(value)}`}`);
}
