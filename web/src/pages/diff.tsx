import { useState } from 'preact/hooks';
import type { ChangedEntry, DiffLine } from '../../../src/client/index.js';
import { diffRows } from '../diff-rows.js';
import { client, hasTableCompare, useLoad } from '../api.js';
import { Await } from '../components.js';
import { formatBytes } from '../format.js';
import { repoHref } from '../router.js';
import type { RepoContext } from './repo.js';
import { TABLE_FILE, TableDiff } from './table-diff.js';

/** Files whose diffs open by themselves; the others open on request. */
const OPEN_DIFFS = 10;
/** Changed files listed for one comparison. */
export const MAX_CHANGED_FILES = 1000;

/** The changed files between two revisions, each with its line diff. */
export function ChangedFiles({ context, base, head, entries, total }: { context: RepoContext; base: string; head: string; entries: ChangedEntry[]; total: number }) {
  return (
    <>
      <ul class="changed-files">
        {entries.map((entry, i) => (
          <FileDiff key={entry.path} context={context} base={base} head={head} entry={entry} open={i < OPEN_DIFFS} />
        ))}
      </ul>
      {total > entries.length && (
        <p class="notice">
          Showing the first {entries.length.toLocaleString()} of {total.toLocaleString()} changed files.
        </p>
      )}
    </>
  );
}

function FileDiff({ context, base, head, entry, open }: { context: RepoContext; base: string; head: string; entry: ChangedEntry; open: boolean }) {
  const [shown, setShown] = useState(open);
  const fileAt = entry.status === 'removed' ? `${base}/${entry.path}` : `${head}/${entry.path}`;
  return (
    <li class="card changed-file">
      <div class="file-head">
        <span class={`status status-${entry.status}`}>{entry.status}</span>
        <a href={repoHref(context.namespace, context.repo, 'blob', fileAt)}>{entry.path}</a>
        <span class="muted small">
          {entry.base_entry && entry.head_entry ? `${formatBytes(entry.base_entry.size)} → ${formatBytes(entry.head_entry.size)}` : formatBytes(entry.size)}
        </span>
        <span class="spacer" />
        <button type="button" class="link" aria-expanded={shown} onClick={() => setShown(!shown)}>
          {shown ? 'Hide diff' : 'Show diff'}
        </button>
      </div>
      {shown &&
        (hasTableCompare && entry.status === 'modified' && TABLE_FILE.test(entry.path) ? (
          <TableDiff context={context} base={base} head={head} path={entry.path} fallback={() => <LineDiff context={context} base={base} head={head} path={entry.path} />} />
        ) : (
          <LineDiff context={context} base={base} head={head} path={entry.path} />
        ))}
    </li>
  );
}

function LineDiff({ context, base, head, path }: { context: RepoContext; base: string; head: string; path: string }) {
  const diff = useLoad((signal) => client.compareFile(context.namespace, context.repo, base, head, path, signal), [base, head, path]);
  return (
    <Await loaded={diff} what="Loading diff">
      {(result) => (result.diff ? <DiffLines lines={result.diff.lines} /> : <p class="notice">No line diff: the file is not text, or too large.</p>)}
    </Await>
  );
}

function DiffLines({ lines }: { lines: DiffLine[] }) {
  const rows = diffRows(lines);
  return (
    <div class="diff-scroll" role="region" aria-label="Line diff" tabIndex={0}>
      <table class="diff">
        <tbody>
          {rows.map((row, i) =>
            row.kind === 'fold' ? (
              <tr key={i} class="fold">
                <td colSpan={3}>⋯ {row.count} unchanged lines</td>
              </tr>
            ) : (
              <tr key={i} class={`diff-${row.line.modification.toLowerCase()}`}>
                <td class="num">{row.old ?? ''}</td>
                <td class="num">{row.new ?? ''}</td>
                <td class="text">
                  <span class="marker" aria-label={row.line.modification}>
                    {row.line.modification === 'Added' ? '+' : row.line.modification === 'Removed' ? '-' : ' '}
                  </span>
                  {row.line.text}
                </td>
              </tr>
            ),
          )}
        </tbody>
      </table>
    </div>
  );
}
