/**
 * Edits of a workspace data frame as the operations of its log (the MetaStore's frame ops), and Oxen's
 * request bodies parsed into them. Pure: applying an operation is services/frame-ops.ts.
 *
 * An operation carries everything needed to apply it again (row ids are chosen when it is written), so
 * every process that replays a log reaches the same frame. Each has an `opId` of its own, so that a cache
 * can tell its log from a later one at the same path (a log deleted and started again).
 */
import { BadRequest, YokeError } from './errors.js';
import { MAX_FRAME_ROWS } from './frame-options.js';
import { duckdbTypeOf, type TabularFormat } from './tabular.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A row's values by column name (a subset of the frame's columns). */
export type RowValues = Record<string, JsonValue>;

export interface RowEdit {
  /** The row's `_oxen_id`. */
  id: string;
  values: RowValues;
}

type Op<Kind extends string, Fields> = { kind: Kind; opId: string } & Fields;

export type FrameOp =
  /** The first operation of every log: the frame's rows are those of the file `hash` (`size` bytes, read as `format`) at `path`. */
  | Op<'index', { path: string; hash: string; size: number; format: TabularFormat }>
  | Op<'add_rows', { rows: RowEdit[] }>
  | Op<'update_rows', { rows: RowEdit[] }>
  | Op<'delete_row', { row: string }>
  /** Back to the file's row (a row of the file), or gone (a row the workspace added). */
  | Op<'restore_row', { row: string }>
  /** `type`: a DuckDB type. */
  | Op<'add_column', { name: string; type: string }>
  | Op<'update_column', { name: string; newName: string | null; newType: string | null }>
  | Op<'delete_column', { name: string }>
  | Op<'column_metadata', { name: string; metadata: JsonValue }>
  | Op<'schema_metadata', { metadata: JsonValue }>
  | Op<'enable_embeddings', { column: string; vectorLength: number }>;

/** The file a log's first operation (as stored) indexed, or null when it is not an `index` operation. */
export function indexedFileOf(storedOp: string): { path: string; hash: string; size: number } | null {
  try {
    const op = JSON.parse(storedOp) as Partial<Extract<FrameOp, { kind: 'index' }>>;
    return op.kind === 'index' && typeof op.hash === 'string' && typeof op.size === 'number' && typeof op.path === 'string' ? { path: op.path, hash: op.hash, size: op.size } : null;
  } catch {
    return null;
  }
}

/** The columns Oxen reserves in a workspace frame: the row id clients address rows by, and the row order. */
export const ROW_ID_COLUMN = '_oxen_id';
export const ROW_ORDER_COLUMN = '_oxen_row_id';
export const RESERVED_COLUMNS: ReadonlySet<string> = new Set([ROW_ID_COLUMN, ROW_ORDER_COLUMN]);

/** Most rows one request may add or update. */
export const MAX_ROWS_PER_EDIT = 10_000;

/** Oxen's `dataset_not_indexed` (400). */
export class FrameNotIndexed extends YokeError {
  constructor(path: string) {
    super(400, 'bad_request', 'Dataset must be indexed.', `This dataset ${path} is not yet indexed for SQL and NLP querying.`, { type: 'dataset_not_indexed' });
  }
}

/** Oxen's `schema_error` (400): a row names columns the frame does not have. */
export class IncompatibleSchema extends YokeError {
  constructor(unknown: string[], fields: Array<{ name: string; dtype: string }>) {
    super(
      400,
      'bad_request',
      'Incompatible Schemas',
      `Schema does not match: no column ${unknown.map((c) => `'${c}'`).join(', ')}. Valid Fields [${fields.map((f) => `${f.name}: ${f.dtype}`).join(', ')}]`,
      { type: 'schema_error' },
    );
  }
}

/** Oxen's `column_error` (400). */
export function columnError(title: 'Column Name Not Found' | 'Column Name Already Exists' | 'Column Name Is Reserved', name: string): YokeError {
  const detail = {
    'Column Name Not Found': `Column name '${name}' not found in schema`,
    'Column Name Already Exists': `Column name '${name}' already exists in schema`,
    'Column Name Is Reserved': `Column name '${name}' is reserved for Oxen's internal use`,
  }[title];
  return new YokeError(400, 'bad_request', title, detail, { type: 'column_error' });
}

export class RowNotFound extends YokeError {
  constructor(id: string) {
    super(404, 'resource_not_found', 'Row not found', `No row with _oxen_id '${id}' in this data frame`, { type: 'row_not_found' });
  }
}

function isObject(value: unknown): value is Record<string, JsonValue> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Metadata of a column or schema: a JSON object, or null to clear it. */
function metadataOf(value: unknown): JsonValue {
  if (value !== null && !isObject(value)) throw new BadRequest('metadata must be a JSON object (or null)');
  return value;
}

/** The body's `data` when it has one (Oxen accepts a row with or without that wrapper). */
function unwrapped(body: unknown): unknown {
  return isObject(body) && 'data' in body ? body.data : body;
}

/** A row's values with Oxen's reserved columns left out (clients send back rows they read, ids included). */
function rowValues(value: unknown, what: string): RowValues {
  if (!isObject(value)) throw new BadRequest(`${what} must be a JSON object of column values`);
  return Object.fromEntries(Object.entries(value).filter(([name]) => !RESERVED_COLUMNS.has(name)));
}

/** Rows to add: one object, or a list of them (each may name a different subset of the columns). */
export function rowsToAdd(body: unknown): RowValues[] {
  const data = unwrapped(body);
  const rows = Array.isArray(data) ? data : [data];
  if (rows.length === 0) throw new BadRequest('No rows to add');
  if (rows.length > MAX_ROWS_PER_EDIT) throw new BadRequest(`At most ${MAX_ROWS_PER_EDIT} rows can be added in one request`);
  return rows.map((row, i) => rowValues(row, rows.length === 1 ? 'The row' : `Row ${i}`));
}

/** The new values of one row. */
export function rowUpdate(body: unknown): RowValues {
  return rowValues(unwrapped(body), 'The row');
}

/** Oxen's batch update: `[{row_id, value}]`, with or without a `data` wrapper. */
export function rowUpdates(body: unknown): RowEdit[] {
  const data = unwrapped(body);
  if (!Array.isArray(data)) throw new BadRequest('Expected a list of {row_id, value}');
  if (data.length === 0) throw new BadRequest('No rows to update');
  if (data.length > MAX_ROWS_PER_EDIT) throw new BadRequest(`At most ${MAX_ROWS_PER_EDIT} rows can be updated in one request`);
  const seen = new Set<string>();
  return data.map((item: unknown, i) => {
    if (!isObject(item) || typeof item.row_id !== 'string') throw new BadRequest(`Item ${i}: missing row_id`);
    if (!('value' in item)) throw new BadRequest(`Item ${i}: missing value`);
    if (seen.has(item.row_id)) throw new BadRequest(`Row '${item.row_id}' appears twice`);
    seen.add(item.row_id);
    return { id: item.row_id, values: rowValues(item.value, `Item ${i}'s value`) };
  });
}

function columnName(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') throw new BadRequest(`${field} is required`);
  if (RESERVED_COLUMNS.has(value)) throw columnError('Column Name Is Reserved', value);
  return value;
}

/** The DuckDB type of one of Oxen's dtype names (`str`, `i64`, `f32`, `list[str]`, `embedding[3]`…). */
export function columnType(dtype: unknown, field: string): string {
  if (typeof dtype !== 'string' || dtype === '') throw new BadRequest(`${field} is required`);
  const type = duckdbTypeOf(dtype);
  if (type === null) throw new BadRequest(`Unknown data type '${dtype}' (Oxen's names: str, i32, i64, f32, f64, bool, date, datetime, list[…], embedding[n]…)`, { type: 'column_error' });
  return type;
}

/** Oxen's NewColumn: `{name, data_type}` (or `dtype`). */
export function newColumn(body: unknown): { name: string; type: string } {
  if (!isObject(body)) throw new BadRequest('Expected a JSON object {name, data_type}');
  return { name: columnName(body.name, 'name'), type: columnType(body.data_type ?? body.dtype, 'data_type') };
}

/** Oxen's column update: `{new_name?, new_data_type?, metadata?}` (or `name`, `dtype`). */
export function columnUpdate(body: unknown): { newName: string | null; newType: string | null; metadata: JsonValue | undefined } {
  if (!isObject(body)) throw new BadRequest('Expected a JSON object {new_name?, new_data_type?, metadata?}');
  const name = body.new_name ?? body.name;
  const dtype = body.new_data_type ?? body.dtype;
  return {
    newName: name === undefined || name === null ? null : columnName(name, 'new_name'),
    newType: dtype === undefined || dtype === null ? null : columnType(dtype, 'new_data_type'),
    metadata: body.metadata === undefined ? undefined : metadataOf(body.metadata),
  };
}

/** Oxen's column metadata body: `{column_name, metadata}`. */
export function columnMetadata(body: unknown): { name: string; metadata: JsonValue } {
  if (!isObject(body) || typeof body.column_name !== 'string' || body.column_name === '') throw new BadRequest('column_name is required');
  if (!('metadata' in body)) throw new BadRequest('metadata is required');
  return { name: body.column_name, metadata: metadataOf(body.metadata) };
}

/** Oxen's schema metadata body: `{metadata}`. */
export function schemaMetadata(body: unknown): JsonValue {
  if (!isObject(body) || !('metadata' in body)) throw new BadRequest('metadata is required');
  return metadataOf(body.metadata);
}

/** Most numbers one embedding may hold. */
export const MAX_EMBEDDING_LENGTH = 65_536;

/** A vector of finite numbers, as a neighbors query sends it. */
export function embeddingOf(value: unknown, field: string): number[] {
  if (Array.isArray(value) && value.length > MAX_EMBEDDING_LENGTH) throw new BadRequest(`${field} has more than ${MAX_EMBEDDING_LENGTH} numbers`);
  if (!Array.isArray(value) || value.length === 0 || !value.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new BadRequest(`${field} must be a non-empty list of numbers`);
  }
  return value as number[];
}

/** A page asked for in a JSON body (`page_num`, `page_size`): 1-based, at most MAX_FRAME_ROWS rows (absent: page 1 of `defaultSize`). */
export function pageInBody(page: unknown, pageSize: unknown, defaultSize: number): { page: number; pageSize: number } {
  const whole = (value: unknown, field: string, fallback: number) => {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new BadRequest(`${field} must be a whole number`);
    return value;
  };
  return { page: Math.max(1, whole(page, 'page_num', 1)), pageSize: Math.min(MAX_FRAME_ROWS, Math.max(1, whole(pageSize, 'page_size', defaultSize))) };
}
