/** Schemas of the branch routes (../routes/branches.ts). */
import { arrayOf, checkedByHandler, envelope, nullable, object, PAGE_QUERY, query, replies, repoParams, repoWildcardParams, text } from './common.js';
import { BRANCH, COMMIT, PAGE_FIELDS } from './views.js';

export const listBranches = { params: repoParams(), response: replies(envelope({ branches: arrayOf(BRANCH) })) };

export const createBranch = {
  params: repoParams(),
  body: object(
    {
      new_name: checkedByHandler('string', 'Name of the new branch'),
      from_name: nullable(text('Start at the head of this branch…')),
      commit_id: nullable(text('…or at this commit (a pushed commit joins the history here)')),
    },
    { required: ['new_name'] },
  ),
  response: replies(envelope({ branch: BRANCH, name: text(), commit_id: text(), created_at: text() })),
};

export const getBranch = {
  params: repoWildcardParams('{branch}, or {branch}/versions/{path}'),
  querystring: query(PAGE_QUERY),
  response: replies(
    envelope({
      branch: BRANCH,
      path: text('With versions/: the file'),
      versions: arrayOf(
        object({ commit: COMMIT, resource: object({ path: text(), version: text('The commit id') }, { required: 'all' }) }, { required: 'all' }),
        'With versions/: the commits that changed the file, newest first',
      ),
      ...PAGE_FIELDS,
    }),
  ),
};

export const updateBranch = {
  params: repoWildcardParams('{branch}, or {branch}/merge'),
  body: object({
    commit_id: nullable(text('Move the branch here')),
    force: { type: ['boolean', 'string', 'null'], description: 'true (or "true"): move even when not a fast-forward' },
    client_commit_id: nullable(text('With /merge: the pushed commit to merge into the branch')),
    server_commit_id: nullable(text('With /merge: the branch head the client saw')),
  }),
  response: replies(envelope({ branch: BRANCH, commit: { ...COMMIT, description: 'With /merge: the branch head after the merge' } })),
};

export const deleteBranch = {
  params: repoWildcardParams('The branch'),
  response: replies(envelope({ branch: BRANCH })),
};
