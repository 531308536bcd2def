/** Path parameter shapes shared by the route modules. */
export interface RepoParams {
  namespace: string;
  repo_name: string;
}

export interface RepoWildcardParams extends RepoParams {
  '*': string;
}

export const REPO = '/api/repos/:namespace/:repo_name';
