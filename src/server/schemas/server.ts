/** Schemas of the routes outside a repository: server (meta), namespaces, tokens and admin. */
import { anyObject, arrayOf, boolean, checkedByHandler, envelope, integer, nullable, number, object, query, replies, text } from './common.js';

const version = { response: replies(envelope({ version: text() })) };
export const serverVersion = version;
export const minVersion = version;

export const health = {
  response: replies(
    envelope({
      disk_usage: object({ total_gb: number(), used_gb: number(), free_gb: number(), percent_used: number() }, { required: 'all', description: 'Of the data directory\'s file system' }),
    }),
  ),
};

export const listNamespaces = {
  response: replies(envelope({ namespaces: arrayOf(object({ namespace: text(), name: text() }, { required: 'all' })) })),
};

export const getNamespace = {
  params: object({ namespace: text() }, { required: 'all' }),
  response: replies(envelope({ namespace: object({ name: text(), repository_count: integer() }, { required: 'all' }) })),
};

const TOKEN = object(
  { id: text(), name: text(), email: text(), scopes: arrayOf(text('read|write|admin[:namespace[/repo]]')), created_at: text(), expires_at: nullable(text()) },
  { required: 'all' },
);

export const createToken = {
  body: object(
    {
      name: checkedByHandler('string', 'Who the token is for'),
      email: checkedByHandler('string'),
      scopes: arrayOf(checkedByHandler('string', 'read, write or admin, optionally :namespace or :namespace/repo'), 'One or more scopes'),
      expires: checkedByHandler('string', 'A lifetime such as 30d, 12h or 90m (default: never)'),
    },
    { required: ['name', 'email', 'scopes'] },
  ),
  response: replies(envelope({ token: TOKEN, secret: text('The token to send as `Authorization: Bearer …`; shown only here') })),
};

export const listTokens = { response: replies(envelope({ tokens: arrayOf(TOKEN) })) };

export const revokeToken = {
  params: object({ id: text('Token id') }, { required: 'all' }),
  response: replies(envelope({ id: text() })),
};

export const checkIntegrity = {
  querystring: query({ repo: 'namespace/name: check this repository only', content: 'true (default) re-hashes every blob; false checks presence and size only' }),
  response: replies(
    envelope({
      fsck: {
        ...anyObject('The report'),
        properties: {
          clean: boolean(),
          repos: integer(),
          commits: integer(),
          nodes: integer(),
          blobs: integer(),
          bytesVerified: integer(),
          problemCount: integer(),
          problems: arrayOf(anyObject(), 'The first problems found'),
          durationMs: number(),
        },
      },
    }),
  ),
};

export const collectGarbage = {
  querystring: query({ grace: 'Keep what was stored this recently, e.g. 24h (default), 30m, 0s', dry_run: 'true: report only, remove nothing' }),
  response: replies(
    envelope({
      gc: {
        ...anyObject('What was (or, on a dry run, would be) removed'),
        properties: {
          dryRun: boolean(),
          commits: integer(),
          nodes: integer(),
          blobs: integer(),
          blobBytes: integer(),
          uploads: integer(),
          stagings: integer(),
          durationMs: number(),
        },
      },
    }),
  ),
};
