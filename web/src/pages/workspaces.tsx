import { client, useLoad } from '../api.js';
import { Await, CommitLink, Time } from '../components.js';
import { repoHref } from '../router.js';
import type { RepoContext } from './repo.js';

/** `workspaces`: the repository's open workspaces (staging areas of Oxen's clients and of uploads). */
export function WorkspacesView({ context }: { context: RepoContext }) {
  const { namespace, repo } = context;
  const list = useLoad((signal) => client.workspaces(namespace, repo, signal), [namespace, repo]);
  return (
    <>
      <h2 class="section-title">Workspaces</h2>
      <Await loaded={list} what="Loading workspaces">
        {(workspaces) =>
          workspaces.length === 0 ? (
            <p class="muted">No open workspaces.</p>
          ) : (
            <div class="table-scroll">
              <table class="data">
                <thead>
                  <tr>
                    <th>Workspace</th>
                    <th>Branch</th>
                    <th>Based on</th>
                    <th>Updated</th>
                  </tr>
                </thead>
                <tbody>
                  {workspaces.map((w) => (
                    <tr key={w.id}>
                      <td>
                        {w.name ?? <span class="muted">unnamed</span>} <code class="small">{w.id}</code>
                      </td>
                      <td>
                        <a href={repoHref(namespace, repo, 'tree', w.branch_name)}>{w.branch_name}</a>
                      </td>
                      <td>
                        <CommitLink namespace={namespace} repo={repo} commit={w.commit} />
                      </td>
                      <td>
                        <Time iso={w.updated_at} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Await>
    </>
  );
}
