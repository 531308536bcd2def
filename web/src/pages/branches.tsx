import { useState } from 'preact/hooks';
import type { Branch } from '../../../src/client/index.js';
import { client, reloadAll, useLoad } from '../api.js';
import { loadAuthor, saveAuthor } from '../author.js';
import { Await, Time } from '../components.js';
import { summary } from '../format.js';
import { repoHref } from '../router.js';
import type { RepoContext } from './repo.js';

/** `branches`: every branch with its head, how far it is from the default branch, and whether it merges. */
export function BranchesView({ context }: { context: RepoContext }) {
  const { branches, defaultBranch } = context;
  return (
    <>
      <h2 class="section-title">Branches</h2>
      <ul class="branch-list">
        {branches.map((branch) => (
          <BranchRow key={branch.name} context={context} branch={branch} isDefault={branch.name === defaultBranch} />
        ))}
      </ul>
    </>
  );
}

function BranchRow({ context, branch, isDefault }: { context: RepoContext; branch: Branch; isDefault: boolean }) {
  const { namespace, repo, defaultBranch } = context;
  const [merged, setMerged] = useState<string | null>(null);
  const status = useLoad(async (signal) => {
    if (isDefault || !defaultBranch) return null;
    const [sides, mergeable] = await Promise.all([
      client.compareCommits(namespace, repo, defaultBranch, branch.name, 1, signal).catch(() => null),
      client.mergeability(namespace, repo, defaultBranch, branch.name, signal),
    ]);
    return { ahead: mergeable.commits.length, total: sides?.total_entries ?? null, mergeable: mergeable.is_mergeable };
  }, [namespace, repo, branch.name, defaultBranch, merged]);
  const [confirming, setConfirming] = useState(false);
  const merge = async (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    const author = { name: String(form.get('author')).trim(), email: String(form.get('email')).trim() };
    saveAuthor(author);
    try {
      const result = await client.merge(namespace, repo, defaultBranch!, branch.name, author);
      setMerged(`Merged (${result.result.replace('_', ' ')}).`);
      setConfirming(false);
      reloadAll();
    } catch (err) {
      setMerged((err as Error).message);
    }
  };
  return (
    <li class="card branch-row">
      <div class="file-head">
        <a href={repoHref(namespace, repo, 'tree', branch.name)}>
          <strong>{branch.name}</strong>
        </a>
        {isDefault && <span class="badge">default</span>}
        <span class="spacer" />
        {!isDefault && defaultBranch && (
          <a class="button" href={repoHref(namespace, repo, 'compare', `${defaultBranch}..${branch.name}`)}>
            Compare
          </a>
        )}
      </div>
      {branch.commit && (
        <p class="muted small">
          {summary(branch.commit.message)} · <Time iso={branch.commit.timestamp} />
        </p>
      )}
      <Await loaded={status}>
        {(value) =>
          value && (
            <p class="small branch-status">
              {value.ahead} {value.ahead === 1 ? 'commit' : 'commits'} ahead of {defaultBranch}
              {value.total !== null && ` · ${value.total - value.ahead} behind`} ·{' '}
              {value.ahead === 0 ? 'nothing to merge' : value.mergeable ? <span class="ok">merges cleanly</span> : <span class="warn">has conflicts</span>}
              {value.ahead > 0 && value.mergeable && !confirming && (
                <button type="button" class="small-button" onClick={() => setConfirming(true)}>
                  Merge into {defaultBranch}
                </button>
              )}
            </p>
          )
        }
      </Await>
      {confirming && <MergeForm target={defaultBranch!} onSubmit={merge} onCancel={() => setConfirming(false)} />}
      {merged && (
        <p class="small" role="status">
          {merged}
        </p>
      )}
    </li>
  );
}

/** Who merges: the merge commit's author, remembered for next time. */
function MergeForm({ target, onSubmit, onCancel }: { target: string; onSubmit: (event: Event) => void; onCancel: () => void }) {
  const author = loadAuthor();
  return (
    <form class="row merge-form" onSubmit={onSubmit}>
      <label>
        Your name <input name="author" required defaultValue={author.name} />
      </label>
      <label>
        Your email <input name="email" type="email" required defaultValue={author.email} />
      </label>
      <button type="submit" class="primary">
        Merge into {target}
      </button>
      <button type="button" class="link" onClick={onCancel}>
        Cancel
      </button>
    </form>
  );
}
