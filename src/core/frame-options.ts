/**
 * The view options of `GET data_frames/{rev}/{path}` (Oxen's `DFOptsQuery`), parsed and checked, and the
 * SQL that applies them to a frame. Pure: the engine that runs the SQL is `storage/frames/`.
 *
 * Oxen applies them in this order: filter (or the client's `sql` in its place), randomize, sort_by,
 * reverse, columns, take, then the rows asked for (`slice`, else `row`, else the page).
 */
import { YokeError } from './errors.js';
import { quoteIdent, quoteLiteral } from './tabular.js';

export const DEFAULT_FRAME_PAGE_SIZE = 100;
/** Most rows one request returns (a larger page_size is read as this; a wider slice or take is refused). */
export const MAX_FRAME_ROWS = 10_000;

/** Oxen's `invalid_data_frame_param` (400). */
export class InvalidFrameParam extends YokeError {
  constructor(param: string, value: string, reason: string) {
    super(400, 'bad_request', 'Invalid query parameter', `The ${param} parameter ${JSON.stringify(value)} is not usable: ${reason}.`, { type: 'invalid_data_frame_param' });
  }
}

export type FilterOp = '==' | '!=' | '>' | '<' | '>=' | '<=';

export interface FilterCondition {
  column: string;
  op: FilterOp;
  /** As written; DuckDB casts it to the column's type. */
  value: string;
}

/** `a == x && b != y || c > z`: conditions joined left to right by `&&` / `||` (Oxen's filter syntax). */
export interface FrameFilter {
  conditions: FilterCondition[];
  joins: Array<'&&' | '||'>;
}

/** Rows `start` (inclusive) to `end` (exclusive) of the view. */
export interface RowRange {
  start: number;
  end: number;
}

export interface FrameOptions {
  page: number;
  pageSize: number;
  /** Rows asked for by `slice` or `row`; null: the page. */
  rows: RowRange | null;
  columns: string[] | null;
  filter: FrameFilter | null;
  sortBy: string | null;
  reverse: boolean;
  randomize: boolean;
  /** Row positions, in the order wanted (repeats allowed). */
  take: number[] | null;
  sql: string | null;
  /** Field separator of a csv/tsv file, when not the format's own. */
  delimiter: string | null;
  /** The options as given, for the reply's `opts`. */
  given: { filter: string | null; sortBy: string | null; take: string | null; sql: string | null };
}

export type FrameQuery = Partial<Record<'page' | 'page_size' | 'slice' | 'row' | 'take' | 'columns' | 'filter' | 'sort_by' | 'reverse' | 'randomize' | 'sql' | 'delimiter', unknown>>;

/** A parameter as given, or null when absent or empty (an empty parameter carries no request, as in Oxen). */
function given(query: FrameQuery, name: keyof FrameQuery): string | null {
  const value = query[name];
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string') throw new InvalidFrameParam(name, String(value), 'expected a single value');
  return value;
}

function wholeNumber(name: string, value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidFrameParam(name, value, 'expected a whole number');
  return n;
}

function flag(query: FrameQuery, name: 'reverse' | 'randomize'): boolean {
  const value = given(query, name);
  if (value === null || value === 'false') return false;
  if (value === 'true') return true;
  throw new InvalidFrameParam(name, value, 'expected true or false');
}

function parseSlice(value: string): RowRange {
  const match = /^(\d+)\.\.(\d+)$/.exec(value);
  if (!match) throw new InvalidFrameParam('slice', value, "expected two whole numbers separated by '..', as '0..10'");
  const start = Number(match[1]);
  const end = Number(match[2]);
  if (!Number.isSafeInteger(end)) throw new InvalidFrameParam('slice', value, 'is past any row there can be');
  if (start >= end) throw new InvalidFrameParam('slice', value, 'start must be less than end');
  if (end - start > MAX_FRAME_ROWS) throw new InvalidFrameParam('slice', value, `asks for more than ${MAX_FRAME_ROWS} rows; ask in parts`);
  return { start, end };
}

const OPERATORS: FilterOp[] = ['!=', '>=', '<=', '==', '>', '<'];

/** Oxen's filter syntax: `label == person && score > 0.5`; joins bind left to right. */
export function parseFilter(text: string): FrameFilter {
  const parts = text.split(/(&&|\|\|)/);
  const conditions: FilterCondition[] = [];
  const joins: FrameFilter['joins'] = [];
  parts.forEach((part, i) => {
    if (i % 2 === 1) {
      joins.push(part as '&&' | '||');
      return;
    }
    // The longest operators first: `>=` holds `>`.
    const op = OPERATORS.find((o) => part.includes(o));
    if (!op) throw new InvalidFrameParam('filter', text, `expected 'column op value' with op one of ${OPERATORS.join(' ')}, got '${part.trim()}'`);
    const at = part.indexOf(op);
    const column = part.slice(0, at).trim();
    const value = part.slice(at + op.length).trim();
    if (column === '') throw new InvalidFrameParam('filter', text, `no column before '${op}'`);
    conditions.push({ column, op, value });
  });
  return { conditions, joins };
}

/** The options of one request (query parameters as they arrive, strings); 400 `invalid_data_frame_param` for any it cannot use. */
export function parseFrameOptions(query: FrameQuery): FrameOptions {
  const page = Math.max(1, wholeNumber('page', given(query, 'page') ?? '1'));
  // Oxen's Python client asks for a whole SQL result as one page of i64::MAX rows: any number that large is the most rows there are.
  const askedPageSize = given(query, 'page_size') ?? String(DEFAULT_FRAME_PAGE_SIZE);
  const pageSize = /^\d{16,}$/.test(askedPageSize) ? MAX_FRAME_ROWS : Math.min(MAX_FRAME_ROWS, Math.max(1, wholeNumber('page_size', askedPageSize)));
  const slice = given(query, 'slice');
  const row = given(query, 'row');
  let rows: RowRange | null = null;
  if (slice !== null && slice !== 'all') rows = parseSlice(slice);
  else if (row !== null) {
    const start = wholeNumber('row', row);
    rows = { start, end: start + 1 };
  }
  const take = given(query, 'take');
  const takeList = take === null ? null : take.split(',').map((v) => (/^\d{1,10}$/.test(v) && Number(v) <= 0xffffffff ? Number(v) : NaN));
  if (take !== null && takeList!.some(Number.isNaN)) throw new InvalidFrameParam('take', take, "expected whole numbers separated by ','");
  if (takeList && takeList.length > MAX_FRAME_ROWS) throw new InvalidFrameParam('take', take!, `asks for more than ${MAX_FRAME_ROWS} rows`);
  const delimiter = given(query, 'delimiter');
  if (delimiter !== null && [...delimiter].length !== 1) throw new InvalidFrameParam('delimiter', delimiter, 'expected one character');
  const filter = given(query, 'filter');
  const columns = given(query, 'columns');
  return {
    page,
    pageSize,
    rows,
    columns: columns === null ? null : columns.split(','),
    filter: filter === null ? null : parseFilter(filter),
    sortBy: given(query, 'sort_by'),
    reverse: flag(query, 'reverse'),
    randomize: flag(query, 'randomize'),
    take: takeList,
    sql: given(query, 'sql'),
    delimiter,
    given: { filter, sortBy: given(query, 'sort_by'), take, sql: given(query, 'sql') },
  };
}

/** The rows the options ask for: `slice` or `row` if given, else the page. */
export function requestedRows(options: FrameOptions): RowRange {
  if (options.rows) return options.rows;
  const start = (options.page - 1) * options.pageSize;
  return { start, end: start + options.pageSize };
}

/** Oxen's `DFOptsView` (the reply's `opts`), in its order. */
export function optionsView(options: FrameOptions): Array<{ name: string; value: unknown }> {
  const rows = requestedRows(options);
  const { filter, sortBy, take, sql } = options.given;
  return [
    { name: 'text2sql', value: null },
    { name: 'sql', value: sql },
    { name: 'filter', value: filter },
    { name: 'unique', value: null },
    { name: 'should_randomize', value: options.randomize },
    { name: 'sort_by', value: sortBy },
    { name: 'should_reverse', value: options.reverse },
    { name: 'take', value: take },
    { name: 'slice', value: `${rows.start}..${rows.end}` },
    { name: 'head', value: null },
    { name: 'tail', value: null },
  ];
}

/** Column names the options refer to that the frame does not have. */
export function unknownColumns(options: FrameOptions, columns: string[]): string[] {
  const known = new Set(columns);
  const named = [...(options.columns ?? []), ...(options.sortBy === null ? [] : [options.sortBy]), ...(options.filter?.conditions.map((c) => c.column) ?? [])];
  return [...new Set(named.filter((name) => !known.has(name)))];
}

const SQL_OPERATOR: Record<FilterOp, string> = { '==': '=', '!=': '<>', '>': '>', '<': '<', '>=': '>=', '<=': '<=' };

/** The WHERE condition of a filter; values are literals DuckDB casts to each column's type. */
export function filterSql(filter: FrameFilter): string {
  let sql = '';
  filter.conditions.forEach((c, i) => {
    const condition = `${quoteIdent(c.column)} ${SQL_OPERATOR[c.op]} ${quoteLiteral(c.value)}`;
    // Left to right, as Oxen chains them: ((a && b) || c).
    sql = i === 0 ? condition : `(${sql}) ${filter.joins[i - 1] === '&&' ? 'AND' : 'OR'} ${condition}`;
  });
  return sql;
}

/**
 * The ORDER BY of the options, or '' for the file's own order. `reverse` without a sort is not an
 * order DuckDB can stream: callers read the mirrored rows instead (`mirrored`).
 */
export function orderSql(options: FrameOptions): string {
  if (options.randomize) return 'ORDER BY random()';
  // Polars sorts nulls first; reversed, they come last.
  if (options.sortBy !== null) return `ORDER BY ${quoteIdent(options.sortBy)} ${options.reverse ? 'DESC NULLS LAST' : 'ASC NULLS FIRST'}`;
  return '';
}

/** Whether the rows are the file's order reversed (reverse without sort or shuffle). */
export function readsBackwards(options: FrameOptions): boolean {
  return options.reverse && options.sortBy === null && !options.randomize;
}

/** Rows [start, end) counted from the end of `total` rows, as rows counted from the start. */
export function mirrored(range: RowRange, total: number): RowRange {
  return { start: Math.max(0, total - range.end), end: Math.max(0, total - range.start) };
}
