/**
 * Comparing two data frames row by row, as Oxen's `compare/data_frames` does: the request its clients send
 * (Oxen's `TabularCompareBody`), the plan drawn from the two files' columns (key columns that match rows,
 * target columns compared, display columns shown beside them, with Oxen's defaults), and the DuckDB SQL that
 * joins the two files and labels each row added, removed or modified. Pure: storage/frames/ runs the SQL.
 *
 * - Rows match when all their key columns are equal, NULL matching NULL.
 * - A key repeated within a file matches occurrence by occurrence: the rows sharing a key are put in the
 *   order of their compared values on each side, the n-th on the left pairs with the n-th on the right and
 *   the rest are removed or added. Duplicates never multiply rows, and a reordering of duplicates is no change.
 *   (Numbering occurrences is a window over each file, DuckDB's costliest step here in time and memory: it
 *   is left out when no key repeats.)
 * - A column whose type differs between the files (a CSV beside the same data as Parquet, a retyped column) is
 *   compared at a type both convert to: integers as HUGEINT, other numbers as DOUBLE (FLOAT if either is
 *   FLOAT, so that a float widened to double compares equal), anything else as text.
 */
import { BadRequest, YokeError } from './errors.js';
import { normalizeRepoPath } from './paths.js';
import { quoteIdent } from './tabular.js';

export type Side = 'left' | 'right';

/** A file as the request names it: a path at a revision (branch name or commit id). */
export interface ComparedFile {
  path: string;
  version: string;
}

/** A column shown beside the compared ones, from one side (Oxen's `display`: `name.left`, `name.right`). */
export interface DisplayColumn {
  column: string;
  side: Side;
}

/** Which columns match, compare and show; empty lists take Oxen's defaults (`planComparison`). */
export interface ComparePicks {
  keys: string[];
  targets: string[];
  display: DisplayColumn[];
}

export interface CompareRequest extends ComparePicks {
  compareId: string;
  left: ComparedFile;
  right: ComparedFile;
}

/** A column of a file: its name and DuckDB type. */
export interface ColumnInfo {
  name: string;
  type: string;
}

/** The column of the derived frame that says how a row changed (Oxen's `DIFF_STATUS_COL`). */
export const DIFF_STATUS_COLUMN = '_oxen_diff_status';
export const ROW_STATUSES = ['added', 'removed', 'modified'] as const;
export type RowStatus = (typeof ROW_STATUSES)[number];

const MAX_COMPARE_ID_LENGTH = 256;
const MAX_LISTED_COLUMNS = 1000;

/** Oxen's error when a named column is missing from a file (`schema_error`). */
function schemaError(message: string): YokeError {
  return new YokeError(400, 'bad_request', 'Incompatible Schemas', message, { type: 'schema_error' });
}

/** A comparison id as clients choose them (Oxen's use UUIDs): 1 to 256 characters, no control characters. */
export function checkCompareId(value: unknown): string {
  // eslint-disable-next-line no-control-regex
  if (typeof value !== 'string' || value === '' || value.length > MAX_COMPARE_ID_LENGTH || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new BadRequest(`compare_id must be 1 to ${MAX_COMPARE_ID_LENGTH} characters without control characters`);
  }
  return value;
}

function field(body: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(body, name) ? body[name] : undefined;
}

function optionalName(value: unknown, where: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value === '') throw new BadRequest(`${where} must be a column name`);
  return value;
}

function comparedFile(value: unknown, side: Side): ComparedFile {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new BadRequest(`${side} must be {path, version}`);
  const file = value as Record<string, unknown>;
  const path = field(file, 'path');
  const version = field(file, 'version');
  if (typeof path !== 'string' || typeof version !== 'string' || version === '') throw new BadRequest(`${side} must be {path, version} with both strings`);
  return { path: normalizeRepoPath(path), version };
}

function listOf(body: Record<string, unknown>, name: string): Record<string, unknown>[] {
  const value = field(body, name) ?? [];
  if (!Array.isArray(value)) throw new BadRequest(`${name} must be a list of {left, right}`);
  if (value.length > MAX_LISTED_COLUMNS) throw new BadRequest(`${name}: at most ${MAX_LISTED_COLUMNS} columns`);
  return value.map((item, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new BadRequest(`${name}[${i}] must be {left, right}`);
    return item as Record<string, unknown>;
  });
}

/**
 * One column named for both sides (keys and targets: Oxen compares a column with itself; mapping a column
 * to another of a different name is refused rather than half applied, as Oxen's server would).
 */
function sameColumn(item: Record<string, unknown>, where: string, required: 'both' | 'either'): string {
  const left = optionalName(field(item, 'left'), `${where}.left`);
  const right = optionalName(field(item, 'right'), `${where}.right`);
  if (required === 'both' && (left === null || right === null)) throw new BadRequest(`${where} must name the column as both left and right`);
  if (left !== null && right !== null && left !== right) {
    throw new BadRequest(`${where} names '${left}' on the left and '${right}' on the right: a column is compared with the column of the same name`);
  }
  const name = left ?? right;
  if (name === null) throw new BadRequest(`${where} must name a column as left or right`);
  return name;
}

const unique = <T>(items: T[], key: (item: T) => string = String) => [...new Map(items.map((item) => [key(item), item])).values()];

/**
 * Oxen's `TabularCompareBody`: `{compare_id, left: {path, version}, right: {…}, keys: [{left, right}],
 * compare: [{left, right}], display: [{left, right}]}`; `alias_as` and `compare_method` are accepted and
 * ignored, as Oxen's server ignores them. `compareId` from the URL (update) wins over the body's.
 */
export function parseCompareRequest(body: unknown, compareId: string | null): CompareRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequest('The body must be a JSON object: {compare_id, left, right, keys, compare, display}');
  const request = body as Record<string, unknown>;
  const keys = listOf(request, 'keys').map((k, i) => sameColumn(k, `keys[${i}]`, 'either'));
  const targets = listOf(request, 'compare').map((t, i) => sameColumn(t, `compare[${i}]`, 'either'));
  const display = listOf(request, 'display').flatMap((d, i): DisplayColumn[] => {
    const left = optionalName(field(d, 'left'), `display[${i}].left`);
    const right = optionalName(field(d, 'right'), `display[${i}].right`);
    if (left === null && right === null) throw new BadRequest(`display[${i}] must name a column as left or right`);
    return [...(left === null ? [] : [{ column: left, side: 'left' as const }]), ...(right === null ? [] : [{ column: right, side: 'right' as const }])];
  });
  return {
    compareId: checkCompareId(compareId ?? field(request, 'compare_id')),
    left: comparedFile(field(request, 'left'), 'left'),
    right: comparedFile(field(request, 'right'), 'right'),
    keys: unique(keys),
    targets: unique(targets),
    display: unique(display, (d) => `${d.side}\u0000${d.column}`),
  };
}

/** A column of the derived frame: a key (one value for both sides) or one side's value of a column. */
export type OutputColumn = { name: string; kind: 'key'; column: string } | { name: string; kind: 'value'; side: Side; column: string };

export interface ComparisonPlan extends ComparePicks {
  left: ColumnInfo[];
  right: ColumnInfo[];
  /** Columns only the right file has, in its order. */
  added: ColumnInfo[];
  /** Columns only the left file has, in its order. */
  removed: ColumnInfo[];
  /** Columns both files have with different types. */
  retyped: Array<{ name: string; left: string; right: string }>;
  /** Columns of the derived frame in order, before the status column. */
  output: OutputColumn[];
}

/**
 * The keys, targets and display columns of a comparison of files with these columns, with Oxen's defaults:
 * keys without targets compare every other common column; neither compares the rows whole (every common
 * column a key, columns on one side only as targets); display defaults to every column neither a key nor a
 * target, from each side that has it. 400 `schema_error` when a named column is missing.
 */
export function planComparison(left: ColumnInfo[], right: ColumnInfo[], picks: ComparePicks): ComparisonPlan {
  const leftNames = new Map(left.map((c) => [c.name, c]));
  const rightNames = new Map(right.map((c) => [c.name, c]));
  const common = right.filter((c) => leftNames.has(c.name)).map((c) => c.name);
  const added = right.filter((c) => !leftNames.has(c.name));
  const removed = left.filter((c) => !rightNames.has(c.name));
  const retyped = common.filter((name) => leftNames.get(name)!.type !== rightNames.get(name)!.type).map((name) => ({ name, left: leftNames.get(name)!.type, right: rightNames.get(name)!.type }));
  const listed = (columns: Map<string, ColumnInfo>) => [...columns.keys()].join(', ');

  for (const key of picks.keys) {
    for (const [side, columns] of [['left', leftNames], ['right', rightNames]] as const) {
      if (!columns.has(key)) throw schemaError(`Key column '${key}' is not in the ${side} file, whose columns are: ${listed(columns)}`);
    }
  }
  for (const target of picks.targets) {
    if (!leftNames.has(target) && !rightNames.has(target)) throw schemaError(`Compared column '${target}' is in neither file`);
  }
  for (const { column, side } of picks.display) {
    if (!(side === 'left' ? leftNames : rightNames).has(column)) throw schemaError(`Display column '${column}' is not in the ${side} file`);
  }
  if (picks.keys.length === 0 && picks.targets.length > 0) throw new BadRequest('Must specify at least one key column if specifying target columns.');

  let { keys, targets } = picks;
  if (keys.length === 0) {
    if (common.length === 0) throw schemaError('The two files have no column in common to match rows by');
    keys = common;
    targets = [...added, ...removed].map((c) => c.name);
  } else if (targets.length === 0) {
    targets = common.filter((name) => !keys.includes(name));
  }
  const shown = new Set([...keys, ...targets]);
  const display =
    picks.display.length > 0
      ? picks.display
      : [
          ...common.filter((name) => !shown.has(name)).flatMap((column) => [{ column, side: 'left' as const }, { column, side: 'right' as const }]),
          ...removed.filter((c) => !shown.has(c.name)).map((c) => ({ column: c.name, side: 'left' as const })),
          ...added.filter((c) => !shown.has(c.name)).map((c) => ({ column: c.name, side: 'right' as const })),
        ];

  // Keys and targets in the right file's column order (Oxen's), targets only the left file has after them.
  const rightOrder = (names: string[]) => right.filter((c) => names.includes(c.name)).map((c) => c.name);
  const value = (column: string, side: Side): OutputColumn => ({ name: `${column}.${side}`, kind: 'value', side, column });
  const output: OutputColumn[] = [
    ...rightOrder(keys).map((column): OutputColumn => ({ name: column, kind: 'key', column })),
    ...rightOrder(targets).flatMap((column) => (leftNames.has(column) ? [value(column, 'left'), value(column, 'right')] : [value(column, 'right')])),
    ...left.filter((c) => targets.includes(c.name) && !rightNames.has(c.name)).map((c) => value(c.name, 'left')),
    ...display.map((d) => value(d.column, d.side)),
  ];
  const names = new Set([DIFF_STATUS_COLUMN]);
  for (const column of output) {
    if (names.has(column.name)) throw schemaError(`Two columns of the comparison would both be named '${column.name}': choose the keys, compared and display columns so that they differ`);
    names.add(column.name);
  }
  return { keys, targets, display, left, right, added, removed, retyped, output };
}

const INTEGER_TYPES = new Set(['TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT', 'UTINYINT', 'USMALLINT', 'UINTEGER', 'UBIGINT']);
const isInteger = (type: string) => INTEGER_TYPES.has(type);
const isNumber = (type: string) => isInteger(type) || type === 'FLOAT' || type === 'DOUBLE' || type.startsWith('DECIMAL');

/** The type a column of these two types is compared at, or null when the types are the same. */
export function comparableType(left: string, right: string): string | null {
  if (left === right) return null;
  if (isInteger(left) && isInteger(right)) return 'HUGEINT';
  if (isNumber(left) && isNumber(right)) return left === 'FLOAT' || right === 'FLOAT' ? 'FLOAT' : 'DOUBLE';
  return 'VARCHAR';
}

const PRESENT = '__yoke_present';
const OCCURRENCE = '__yoke_occurrence';
const ALIAS: Record<Side, string> = { left: '__yoke_left', right: '__yoke_right' };

/**
 * The SQL of the derived frame: one row per added, removed or modified row, the columns of `plan.output`
 * and the status, ordered by the keys, then by occurrence, so the order is total. `sources` are the `read_*`
 * expressions of the two files; `pairOccurrences` when a key repeats in either file (see the module comment).
 */
export function comparisonSql(plan: ComparisonPlan, sources: Record<Side, string>, pairOccurrences: boolean): string {
  const types = { left: new Map(plan.left.map((c) => [c.name, c.type])), right: new Map(plan.right.map((c) => [c.name, c.type])) };
  const shared = (column: string) => (types.left.has(column) && types.right.has(column) ? comparableType(types.left.get(column)!, types.right.get(column)!) : null);
  /** A column of one side as it is compared: in the shared type when the sides' types differ. */
  const compared = (column: string, from: string) => {
    const type = shared(column);
    return type === null ? `${from}${quoteIdent(column)}` : `CAST(${from}${quoteIdent(column)} AS ${type})`;
  };
  const needed = (side: Side) =>
    unique([...plan.keys, ...plan.targets.filter((t) => types[side].has(t)), ...plan.display.filter((d) => d.side === side).map((d) => d.column)]);

  const sideSql = (side: Side) => {
    const columns = needed(side);
    // Numbered in the order of the compared values (the same on both sides), then of what else is shown.
    const ordered = unique([...plan.targets.filter((t) => types[side].has(t)).map((t) => compared(t, '')), ...columns.filter((c) => !plan.keys.includes(c)).map(quoteIdent)]);
    const occurrence = pairOccurrences ? `row_number() OVER (PARTITION BY ${plan.keys.map(quoteIdent).join(', ')}${ordered.length > 0 ? ` ORDER BY ${ordered.join(', ')}` : ''})` : '1';
    return `SELECT ${columns.map(quoteIdent).join(', ')}, TRUE AS ${PRESENT}, ${occurrence} AS ${OCCURRENCE} FROM ${sources[side]}`;
  };

  const l = `${ALIAS.left}.`;
  const r = `${ALIAS.right}.`;
  // Keys as one struct: struct equality matches NULL with NULL, and unlike IS NOT DISTINCT FROM it is an
  // equality DuckDB's hash join can spill to disk (measured: two 400 MB CSVs in 100 MiB of memory).
  const keyStruct = (from: string) => `{${plan.keys.map((k, i) => `'k${i}': ${compared(k, from)}`).join(', ')}}`;
  const matched = [`${keyStruct(l)} = ${keyStruct(r)}`, ...(pairOccurrences ? [`${l}${OCCURRENCE} = ${r}${OCCURRENCE}`] : [])];
  const changes = plan.targets.map((t) => (types.left.has(t) && types.right.has(t) ? `${compared(t, l)} IS DISTINCT FROM ${compared(t, r)}` : 'TRUE'));
  const status =
    `CASE WHEN ${l}${PRESENT} IS NULL THEN 'added' WHEN ${r}${PRESENT} IS NULL THEN 'removed' ` +
    `WHEN ${changes.length > 0 ? changes.join(' OR ') : 'FALSE'} THEN 'modified' ELSE 'unchanged' END`;
  const projection = plan.output.map((c) =>
    c.kind === 'key' ? `coalesce(${compared(c.column, r)}, ${compared(c.column, l)}) AS ${quoteIdent(c.name)}` : `${ALIAS[c.side]}.${quoteIdent(c.column)} AS ${quoteIdent(c.name)}`,
  );
  const keyOrder = plan.output.filter((c) => c.kind === 'key').map((c) => quoteIdent(c.name));
  return (
    `SELECT * EXCLUDE (${OCCURRENCE}) FROM (` +
    `SELECT ${projection.join(', ')}, ${status} AS ${quoteIdent(DIFF_STATUS_COLUMN)}, coalesce(${l}${OCCURRENCE}, ${r}${OCCURRENCE}) AS ${OCCURRENCE} ` +
    `FROM (${sideSql('left')}) AS ${ALIAS.left} FULL OUTER JOIN (${sideSql('right')}) AS ${ALIAS.right} ON ${matched.join(' AND ')}` +
    `) AS __yoke_compared WHERE ${quoteIdent(DIFF_STATUS_COLUMN)} <> 'unchanged' ORDER BY ${[...keyOrder, OCCURRENCE].join(', ')}`
  );
}

/** The SQL counting the rows of a file whose keys another row also has (Oxen's `dupes`): one row, column `n`. */
export function duplicateKeysSql(keys: string[], source: string): string {
  const grouped = keys.map(quoteIdent).join(', ');
  return `SELECT CAST(coalesce(sum(n), 0) AS BIGINT) AS n FROM (SELECT count(*) AS n FROM ${source} GROUP BY ${grouped} HAVING count(*) > 1) AS __yoke_repeated`;
}
