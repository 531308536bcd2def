import { useState } from 'preact/hooks';
import type { DataFramePage, TableComparison } from '../../../src/client/index.js';
import { client, isAuthError, useLoad } from '../api.js';
import { Await } from '../components.js';
import { cellText } from '../csv.js';
import type { RepoContext } from './repo.js';

/** Files compared row by row (the data-frame routes read these formats). */
export const TABLE_FILE = /\.(csv|tsv|jsonl|ndjson|parquet)$/i;
const ROWS_PER_PAGE = 100;
const STATUS_COLUMN = '_oxen_diff_status';
/** A column that looks like a row's identity, to match rows by when the user has not chosen. */
const LIKELY_KEY = /^(id|key|uuid|_?id|.+_id)$/i;

/**
 * The row diff of a table changed between two revisions: counts of added, removed and modified rows, the
 * columns added, removed or retyped, and the changed rows a page at a time, matched by a key column (guessed
 * from the names, chosen by the user) or, without one, by whole rows. `fallback` is shown when the server
 * cannot compare (a token without write: comparisons are saved on the server; a file it cannot parse).
 */
export function TableDiff({ context, base, head, path, fallback }: { context: RepoContext; base: string; head: string; path: string; fallback: () => preact.JSX.Element }) {
  const { namespace, repo } = context;
  /** null: not chosen yet, so guessed; []: whole rows. */
  const [keys, setKeys] = useState<string[] | null>(null);
  const [page, setPage] = useState(1);
  const comparison = useLoad(async (signal) => {
    const compare = async (chosen: string[]) => {
      const id = comparisonId(namespace, repo, base, head, path, chosen);
      return { id, keys: chosen, result: await client.compareTables(namespace, repo, id, { path, base, head }, chosen, signal) };
    };
    const first = await compare(keys ?? []);
    const guess = keys === null ? commonColumns(first.result).find((name) => LIKELY_KEY.test(name)) : undefined;
    return guess ? compare([guess]) : first;
  }, [namespace, repo, base, head, path, keys?.join('\u0000')]);
  const rows = useLoad(
    async (signal) => (comparison.state === 'done' ? client.comparedRows(namespace, repo, comparison.value.id, page, ROWS_PER_PAGE, signal) : null),
    [comparison.state === 'done' ? comparison.value.id : null, page],
  );

  if (comparison.state === 'failed') {
    const why = isAuthError(comparison.error) ? 'Row diffs need a token that may write here (comparisons are saved on the server).' : `No row diff: ${comparison.error.message}`;
    return (
      <>
        <p class="notice">{why} The line diff follows.</p>
        {fallback()}
      </>
    );
  }
  return (
    <Await loaded={comparison} what="Comparing rows">
      {({ result, keys: used }) => {
        const { modifications } = result.dfs.summary;
        const { added_cols: added, removed_cols: removed, retyped_cols: retyped } = result.dfs.schema_diff;
        return (
          <div class="table-diff">
            <div class="table-diff-head">
              <p class="small">
                <span class="count-added">{modifications.added_rows.toLocaleString()} added</span> · <span class="count-removed">{modifications.removed_rows.toLocaleString()} removed</span> ·{' '}
                <span class="count-modified">{modifications.modified_rows.toLocaleString()} modified</span> rows
              </p>
              <label class="small">
                Match rows by{' '}
                <select
                  value={used[0] ?? ''}
                  onChange={(event) => {
                    const value = (event.target as HTMLSelectElement).value;
                    setKeys(value === '' ? [] : [value]);
                    setPage(1);
                  }}
                >
                  <option value="">whole rows</option>
                  {commonColumns(result).map((name) => (
                    <option key={name} value={name}>
                      {name}
                    </option>
                  ))}
                </select>
              </label>
            </div>
            {(added.length > 0 || removed.length > 0 || retyped.length > 0) && (
              <p class="small schema-diff">
                {added.length > 0 && <span>Columns added: {added.map((c) => c.name).join(', ')}. </span>}
                {removed.length > 0 && <span>Columns removed: {removed.map((c) => c.name).join(', ')}. </span>}
                {retyped.length > 0 && <span>Columns retyped: {retyped.map((c) => `${c.name} (${c.previous_dtype} → ${c.dtype})`).join(', ')}.</span>}
              </p>
            )}
            <Await loaded={rows} what="Loading changed rows">
              {(loaded) => loaded && <ChangedRows page={loaded} number={page} setPage={setPage} />}
            </Await>
          </div>
        );
      }}
    </Await>
  );
}

/** A logical column of the derived frame: a key (one value), or a column's value on either side. */
interface ShownColumn {
  label: string;
  key?: string;
  left?: string;
  right?: string;
}

function shownColumns(fields: string[]): ShownColumn[] {
  const columns = new Map<string, ShownColumn>();
  for (const field of fields) {
    if (field === STATUS_COLUMN) continue;
    const side = /^(.*)\.(left|right)$/.exec(field);
    if (!side) {
      columns.set(field, { label: field, key: field });
      continue;
    }
    const column = columns.get(`${side[1]}\u0000side`) ?? { label: side[1] };
    column[side[2] as 'left' | 'right'] = field;
    columns.set(`${side[1]}\u0000side`, column);
  }
  return [...columns.values()];
}

function ChangedRows({ page, number, setPage }: { page: DataFramePage; number: number; setPage: (page: number) => void }) {
  const { view } = page.data_frame;
  const columns = shownColumns(view.schema.fields.map((f) => f.name));
  const totalPages = Math.max(1, view.pagination.total_pages);
  if (view.data.length === 0) return <p class="notice">No row changed.</p>;
  return (
    <>
      <div class="table-scroll" role="region" aria-label="Changed rows" tabIndex={0}>
        <table class="data row-diff">
          <thead>
            <tr>
              <th class="row-number">
                <span class="visually-hidden">Change</span>
              </th>
              {columns.map((c) => (
                <th key={c.label}>{c.left && !c.right ? `${c.label} (before)` : c.right && !c.left ? `${c.label} (after)` : c.label}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {view.data.map((row, i) => {
              const status = String(row[STATUS_COLUMN]);
              return (
                <tr key={i} class={`row-${status}`}>
                  <td class="row-number" aria-label={status}>
                    {status === 'added' ? '+' : status === 'removed' ? '−' : '~'}
                  </td>
                  {columns.map((c) => (
                    <td key={c.label}>{cell(c, row, status)}</td>
                  ))}
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {totalPages > 1 && (
        <nav class="pager" aria-label="Changed rows pages">
          <button type="button" disabled={number <= 1} onClick={() => setPage(number - 1)}>
            ← Previous
          </button>
          <span class="muted">
            Page {number} of {totalPages}
          </span>
          <button type="button" disabled={number >= totalPages} onClick={() => setPage(number + 1)}>
            Next →
          </button>
        </nav>
      )}
    </>
  );
}

/** A modified row shows a changed value as before → after; an added row its new values, a removed one its old. */
function cell(column: ShownColumn, row: Record<string, unknown>, status: string) {
  if (column.key) return cellText(row[column.key]);
  const left = column.left ? cellText(row[column.left]) : null;
  const right = column.right ? cellText(row[column.right]) : null;
  if (status === 'added') return right ?? '';
  if (status === 'removed') return left ?? '';
  if (left === null || right === null || left === right) return right ?? left ?? '';
  return (
    <>
      <del>{left}</del> <ins>{right}</ins>
    </>
  );
}

function commonColumns(result: TableComparison): string[] {
  const left = new Set(result.dfs.source_schemas.left.fields.map((f) => f.name));
  return result.dfs.source_schemas.right.fields.map((f) => f.name).filter((name) => left.has(name));
}

/**
 * The id the comparison is saved under: one per revisions, file and keys, so viewing the same diff again
 * replaces it instead of piling up comparisons. Two seeded 53-bit string hashes (the page may run outside a
 * secure context, where crypto.subtle is missing); a collision would only make two diffs share a slot.
 */
function comparisonId(namespace: string, repo: string, base: string, head: string, path: string, keys: string[]): string {
  const text = JSON.stringify([namespace, repo, base, head, path, keys]);
  return `web-${hash53(text, 1).toString(16)}${hash53(text, 2).toString(16)}`;
}

/** cyrb53: a fast 53-bit string hash. */
function hash53(text: string, seed: number): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}
