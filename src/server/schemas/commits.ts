/** Schemas of the commit routes (../routes/commits.ts). */
import { arrayOf, boolean, envelope, nullable, PAGE_QUERY, query, replies, repoParams, repoWildcardParams, text } from './common.js';
import { COMMIT, PAGE_FIELDS } from './views.js';

export const history = {
  params: repoWildcardParams('{revision}, {revision}/{path} (the commits that changed it), or {base}..{head} (what head adds)'),
  querystring: query(PAGE_QUERY),
  response: replies(envelope({ commits: arrayOf(COMMIT, 'Newest first'), ...PAGE_FIELDS, has_more: boolean('Whether a later page has more') })),
};

export const allCommits = {
  params: repoParams(),
  querystring: query(PAGE_QUERY),
  response: replies(envelope({ commits: arrayOf(COMMIT, 'Newest first'), ...PAGE_FIELDS })),
};

export const rootCommit = { params: repoParams(), response: replies(envelope({ commit: nullable(COMMIT) })) };

export const completeCommit = {
  params: repoParams({ commit_id: text() }),
  response: replies(envelope({ commit: COMMIT })),
};

export const getCommit = {
  params: repoWildcardParams('{commit_id}, or {revision}/parents'),
  response: replies(
    envelope({
      commit: { ...COMMIT, description: 'The commit (by id)' },
      commits: arrayOf(COMMIT, 'With /parents: every ancestor, newest first'),
      parents: arrayOf(COMMIT, 'With /parents: the direct parents'),
    }),
  ),
};
