/** Schemas of Oxen's merkle-tree and sync routes (../routes/tree.ts, ../routes/sync.ts). */
import { arrayOf, envelope, integer, object, query, rawBody, replies, repoParams, repoWildcardParams, tarGzReply, text } from './common.js';

const HASHES_BODY = object({ hashes: arrayOf(text('A hex id')) }, { required: ['hashes'] });
const NODE_RECORDS = 'Node records as tree/nodes/{3 hex}/{rest}/node and …/children files';

export const downloadTree = {
  params: repoParams({ base_head: text('{commit} (with its history), or {base}..{head} (what head adds)') }),
  querystring: query({
    subtrees: 'Comma-separated directories: only the nodes under them (empty: the root directory alone)',
    depth: 'With subtrees: levels below them (-1, the default: all)',
    is_download: 'true: leave out the nodes above the subtrees',
  }),
  response: replies(tarGzReply(NODE_RECORDS)),
};

export const nodeAtPath = {
  params: repoWildcardParams('{revision}/{path}'),
  response: replies(envelope({ hash: text('A directory\'s node id, or a file\'s content hash') })),
};

export const pushNodes = {
  params: repoParams(),
  streamedBody: rawBody(`A tar.gz: ${NODE_RECORDS}`),
  response: replies(envelope({ nodes: integer('Records received') })),
};

export const pushDirHashes = {
  params: repoParams(),
  streamedBody: rawBody('A tar.gz of history/{commit}/dir_hashes/ (RocksDB files)'),
  response: replies(envelope({ commits: arrayOf(text(), 'The commits whose index arrived') })),
};

export const missingCommits = {
  params: repoParams(),
  body: HASHES_BODY,
  response: replies(envelope({ hashes: arrayOf(text(), 'Commit ids the repository does not hold completely') })),
};

export const missingNodes = {
  params: repoParams(),
  body: HASHES_BODY,
  response: replies(envelope({ hashes: arrayOf(text(), 'Node ids the repository does not hold') })),
};

export const hasNode = { params: repoParams({ hash: text('A node id') }), response: replies(envelope({ hash: text() })) };

export const downloadAllNodes = { params: repoParams(), response: replies(tarGzReply(`Every commit's ${NODE_RECORDS}`)) };

const DIR_HASHES = 'history/{commit}/dir_hashes/ (RocksDB files) per commit';

export const downloadDirHashes = {
  params: repoParams({ spec: text('{commit} (with its ancestors) or {base}..{head}') }),
  response: replies(tarGzReply(`A tar.gz of ${DIR_HASHES}`)),
};

export const downloadCommitDb = {
  params: repoParams({ spec: text('A commit') }),
  response: replies(tarGzReply(`A tar.gz of ${DIR_HASHES}, for one commit`)),
};

export const missingFiles = {
  params: repoParams(),
  querystring: query({ head: 'A commit or branch', base: 'Only what commits after this one add' }, ['head']),
  response: replies(
    envelope({
      entries: arrayOf(
        object(
          {
            commit_id: text(),
            path: text(),
            hash: text(),
            num_bytes: integer(),
            last_modified_seconds: integer(),
            last_modified_nanoseconds: integer(),
          },
          { required: 'all' },
        ),
      ),
    }),
  ),
};
