import { client, useLoad } from '../api.js';
import { Await, CommitLink, Time } from '../components.js';
import { repoHref } from '../router.js';
import { ChangedFiles, MAX_CHANGED_FILES } from './diff.js';
import type { RepoContext } from './repo.js';

/** `commit/{id}`: who, when, parents, and the files it changed against its first parent. */
export function CommitView({ context, id }: { context: RepoContext; id: string }) {
  const { namespace, repo } = context;
  const loaded = useLoad(async (signal) => {
    const commit = await client.commit(namespace, repo, id, signal);
    const parent = commit.parent_ids[0];
    const changes = parent ? await client.compareEntries(namespace, repo, parent, commit.id, 1, MAX_CHANGED_FILES, signal) : null;
    return { commit, changes };
  }, [namespace, repo, id]);
  return (
    <Await loaded={loaded} what="Loading commit">
      {({ commit, changes }) => (
        <>
          <section class="card">
            <h2 class="commit-title">{commit.message || '(no message)'}</h2>
            <p class="muted">
              {commit.author} &lt;{commit.email}&gt; committed <Time iso={commit.timestamp} />
            </p>
            <dl class="facts">
              <dt>Commit</dt>
              <dd>
                <code>{commit.id}</code>
              </dd>
              <dt>Parents</dt>
              <dd>{commit.parent_ids.length === 0 ? 'none (the first commit)' : commit.parent_ids.map((p) => <CommitLink key={p} namespace={namespace} repo={repo} commit={{ ...commit, id: p }} />)}</dd>
              <dt>Files</dt>
              <dd>
                <a href={repoHref(namespace, repo, 'tree', commit.id)}>Browse the files at this commit</a>
              </dd>
            </dl>
          </section>
          {!changes && <p class="notice">The first commit: every file in it is new. Browse them with the link above.</p>}
          {changes && (
            <>
              <h2 class="section-title">
                {changes.total_entries} changed {changes.total_entries === 1 ? 'file' : 'files'}{' '}
                <span class="muted small">
                  ({changes.compare.counts.added} added, {changes.compare.counts.modified} modified, {changes.compare.counts.removed} removed)
                </span>
              </h2>
              <ChangedFiles context={context} base={commit.parent_ids[0]} head={commit.id} entries={changes.compare.entries} total={changes.total_entries} />
            </>
          )}
        </>
      )}
    </Await>
  );
}
