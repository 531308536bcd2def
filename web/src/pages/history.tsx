import { client, useLoad } from '../api.js';
import { Await, Breadcrumbs, CommitRow, Pager, withQuery } from '../components.js';
import { resourceOf } from '../format.js';
import { repoHref } from '../router.js';
import { BranchSelect, type RepoContext } from './repo.js';

const PAGE_SIZE = 50;

/** `commits/{rev}[/{path}]?page=N`: the history of a branch, or of one file or directory, newest first. */
export function HistoryView({ context, page }: { context: RepoContext; page: number }) {
  const { namespace, repo, revision, path } = context;
  const resource = resourceOf(revision, path);
  const history = useLoad((signal) => client.history(namespace, repo, resource, page, PAGE_SIZE, signal), [namespace, repo, resource, page]);
  return (
    <>
      <div class="toolbar">
        <BranchSelect context={context} view="commits" />
        <Breadcrumbs namespace={namespace} repo={repo} revision={revision} path={path} />
      </div>
      <h2 class="section-title">History{path === '' ? '' : ` of ${path}`}</h2>
      <Await loaded={history} what="Loading history">
        {(result) =>
          result.commits.length === 0 ? (
            <p class="muted">No commits.</p>
          ) : (
            <>
              <p class="muted small">{result.total_entries.toLocaleString()} commits</p>
              <ul class="commit-list">
                {result.commits.map((commit) => (
                  <CommitRow key={commit.id} namespace={namespace} repo={repo} commit={commit} />
                ))}
              </ul>
              <Pager page={result.page_number} totalPages={result.total_pages} href={(p) => withQuery(repoHref(namespace, repo, 'commits', resource), { page: p })} />
            </>
          )
        }
      </Await>
    </>
  );
}
