import { client, useLoad } from '../api.js';
import { Await } from '../components.js';
import { navigate, repoHref } from '../router.js';
import { ChangedFiles, MAX_CHANGED_FILES } from './diff.js';
import type { RepoContext } from './repo.js';

/** `compare/{base}..{head}`: the files that differ between two revisions, with line diffs. */
export function CompareView({ context, spec }: { context: RepoContext; spec: string }) {
  const { namespace, repo, defaultBranch } = context;
  const split = spec.indexOf('..');
  const base = split > 0 ? spec.slice(0, split) : (defaultBranch ?? '');
  const head = split > 0 ? spec.slice(split + 2) : (defaultBranch ?? '');
  const changes = useLoad((signal) => client.compareEntries(namespace, repo, base, head, 1, MAX_CHANGED_FILES, signal), [namespace, repo, base, head]);
  return (
    <>
      <form
        class="toolbar compare-form"
        onSubmit={(event) => {
          event.preventDefault();
          const form = new FormData(event.target as HTMLFormElement);
          navigate(repoHref(namespace, repo, 'compare', `${String(form.get('base')).trim()}..${String(form.get('head')).trim()}`));
        }}
      >
        <label>
          Base <input name="base" defaultValue={base} key={base} list="branch-names" required />
        </label>
        <label>
          Head <input name="head" defaultValue={head} key={head} list="branch-names" required />
        </label>
        <datalist id="branch-names">
          {context.branches.map((b) => (
            <option key={b.name} value={b.name} />
          ))}
        </datalist>
        <button type="submit">Compare</button>
      </form>
      <Await loaded={changes} what="Comparing">
        {(result) =>
          result.total_entries === 0 ? (
            <p class="muted">No files differ between {base} and {head}.</p>
          ) : (
            <>
              <h2 class="section-title">
                {result.total_entries} changed {result.total_entries === 1 ? 'file' : 'files'}{' '}
                <span class="muted small">
                  ({result.compare.counts.added} added, {result.compare.counts.modified} modified, {result.compare.counts.removed} removed)
                </span>
              </h2>
              <ChangedFiles context={context} base={base} head={head} entries={result.compare.entries} total={result.total_entries} />
            </>
          )
        }
      </Await>
    </>
  );
}
