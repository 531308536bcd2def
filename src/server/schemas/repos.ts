/** Schemas of the repository routes (../routes/repos.ts). */
import { arrayOf, binary, checkedByHandler, envelope, multipartBody, nullable, object, replies, repoParams, text } from './common.js';
import { REPOSITORY } from './views.js';

const USER = object({ name: text(), email: text() }, { description: 'The author of the initial commit' });

/** Oxen's RepoNew: the fields Yoke reads (others, such as is_public or storage_kind, are accepted and ignored). */
const NEW_REPO = object(
  {
    namespace: checkedByHandler('string', 'Namespace: [A-Za-z0-9][A-Za-z0-9_.-]+, at most 255 characters'),
    name: checkedByHandler('string', 'Repository name (the same rule)'),
    description: checkedByHandler('string'),
    user: nullable(USER),
    files: nullable(
      arrayOf(
        object({ path: text(), contents: text('The file\'s text'), user: nullable(USER) }, { required: ['path', 'contents'] }),
        'Text files for an initial commit on main (its author: the first file\'s user, else `user`)',
      ),
    ),
  },
  { required: ['namespace', 'name'] },
);

export const createRepo = {
  // The JSON form is validated; the multipart form (Oxen's, with files) is read as it streams.
  body: { content: { 'application/json': { schema: NEW_REPO } } },
  streamedBody: multipartBody(
    {
      new_repo: text('The JSON of the repository to create (namespace, name, description)'),
      name: text('Author of the initial commit (required with files)'),
      email: text('Author email (required with files)'),
      file: binary('A file for the initial commit, at its filename'),
      'file[]': arrayOf(binary(), 'Files for the initial commit, each at its filename'),
    },
    { required: ['new_repo'] },
  ),
  response: replies(envelope({ repository: REPOSITORY, namespace: text(), name: text(), description: nullable(text()), created_at: text() })),
};

export const listRepos = {
  params: object({ namespace: text() }, { required: 'all' }),
  response: replies(envelope({ repositories: arrayOf(REPOSITORY) })),
};

export const getRepo = { params: repoParams(), response: replies(envelope({ repository: REPOSITORY })) };

export const transferRepo = {
  params: repoParams(),
  body: object({ namespace: checkedByHandler('string', 'The namespace to move the repository to') }, { required: ['namespace'] }),
  response: replies(envelope({ repository: REPOSITORY })),
};

export const repoAction = {
  params: repoParams({ state: text('started or completed'), action: text('push, clone, download, …') }),
  response: replies(envelope({ action: text(), state: text() })),
};

export const deleteRepo = {
  params: repoParams(),
  response: replies(envelope({ repository: object({ namespace: text(), name: text() }, { required: 'all' }) })),
};
