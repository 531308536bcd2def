/**
 * Applies the operations of a workspace data frame's log (core/frame-edits.ts) to a DuckDB database
 * holding the frame: the table `rows` (the frame's columns, then `_oxen_id` and `_oxen_row_id`, which
 * orders the rows) and `_yoke_state`, one row with the `FrameState` the table reflects. Each operation
 * checks what it names (columns, rows) and refuses with Oxen's 4xx, so an operation that would fail is
 * never logged; replaying a logged one reaches the same table in every process.
 */
import { BadRequest } from '../core/errors.js';
import {
  columnError,
  IncompatibleSchema,
  RESERVED_COLUMNS,
  ROW_ID_COLUMN,
  ROW_ORDER_COLUMN,
  RowNotFound,
  type FrameOp,
  type JsonValue,
  type RowEdit,
} from '../core/frame-edits.js';
import { oxenDtypeOf, quoteIdent, type TabularFormat } from '../core/tabular.js';
import type { DuckDBValue } from '@duckdb/node-api';
import { frameSourceSql, type FrameColumn, type FrameDatabase, type FrameFile } from '../storage/frames/engine.js';

export interface FrameState {
  /** The number and id of the last operation applied. */
  seq: number;
  lastOpId: string;
  /** The file the frame was indexed from and how many rows it had (their ids are their positions). */
  base: { path: string; hash: string; size: number; format: TabularFormat; rows: number };
  /** Whether rows or columns were edited (metadata and embeddings alone change no file). */
  changed: boolean;
  /** The frame's columns in order: the file's column each holds (null: added in the workspace), its metadata. */
  columns: Array<{ name: string; origin: string | null; metadata: JsonValue }>;
  schemaMetadata: JsonValue;
  /** Columns enabled for nearest-neighbour queries, with their vector length. */
  embeddings: Record<string, number>;
  /** `_oxen_row_id` of the next row added (rows added go last). */
  nextRowOrder: number;
}

export interface ApplyContext {
  /** The local file of a blob, for reading a frame's base rows. */
  baseFile(hash: string, format: TabularFormat): Promise<FrameFile>;
}

const POSITION = '__yoke_position';

/** The SELECT list of the frame's own columns plus `_oxen_id`, as clients see a row. */
export function visibleColumnsSql(state: FrameState): string {
  return [...state.columns.map((c) => quoteIdent(c.name)), quoteIdent(ROW_ID_COLUMN)].join(', ');
}

/** The frame's columns with their DuckDB types, in the frame's order (`_oxen_id` last when `withRowId`). */
export async function frameColumns(db: FrameDatabase, state: FrameState, withRowId = false): Promise<FrameColumn[]> {
  const described = await db.rows('DESCRIBE rows');
  const types = new Map(described.rows.map((r) => [String(r.column_name), String(r.column_type)]));
  const names = [...state.columns.map((c) => c.name), ...(withRowId ? [ROW_ID_COLUMN] : [])];
  return names.map((name) => ({ name, type: types.get(name) ?? 'VARCHAR' }));
}

/** Rows as a JSON list bound to `$1`, typed by `structure` ($2), as a table `v` of their fields. */
const JSON_ROWS = '(SELECT r.* FROM (SELECT unnest(json_transform_strict($1::JSON, $2)) AS r)) AS v';

async function assertKnownColumns(db: FrameDatabase, state: FrameState, names: Iterable<string>): Promise<Map<string, string>> {
  const columns = await frameColumns(db, state);
  const types = new Map(columns.map((c) => [c.name, c.type]));
  const unknown = [...new Set(names)].filter((name) => !types.has(name));
  if (unknown.length > 0) throw new IncompatibleSchema(unknown, columns.map((c) => ({ name: c.name, dtype: oxenDtypeOf(c.type) })));
  return types;
}

function assertColumn(state: FrameState, name: string): void {
  if (!state.columns.some((c) => c.name === name)) throw columnError('Column Name Not Found', name);
}

function assertNewColumn(state: FrameState, name: string): void {
  if (RESERVED_COLUMNS.has(name)) throw columnError('Column Name Is Reserved', name);
  if (state.columns.some((c) => c.name === name)) throw columnError('Column Name Already Exists', name);
}

/**
 * Where rows with these ids can be, by their order: a row of the file at its position, an added one after the
 * file's rows. Rows are stored in that order, so DuckDB skips the row groups outside (no index needed).
 */
function placeOf(state: FrameState, ids: string[]): string {
  const positions = ids.map((id) => basePosition(state, id)).filter((p): p is number => p !== null);
  const ranges: string[] = [];
  const order = quoteIdent(ROW_ORDER_COLUMN);
  if (positions.length > 0) ranges.push(`${order} BETWEEN ${Math.min(...positions)} AND ${Math.max(...positions)}`);
  if (positions.length < ids.length) ranges.push(`${order} >= ${state.base.rows}`);
  return ranges.length === 1 ? ranges[0] : `(${ranges.join(' OR ')})`;
}

/** The condition selecting the rows whose ids are the JSON list bound to `$1` (a filter, not a join: cheaper). */
export function rowsWithIds(state: FrameState, ids: string[]): string {
  return `${placeOf(state, ids)} AND list_contains(json_transform_strict($1::JSON, '["VARCHAR"]'), ${quoteIdent(ROW_ID_COLUMN)})`;
}

/** Rows a statement changed (DuckDB answers an UPDATE or DELETE with their count). */
async function changedRows(db: FrameDatabase, sql: string, params: DuckDBValue[]): Promise<number> {
  return Number((await db.rows(sql, params)).rows[0].Count);
}

/** Which of `ids` are rows of the frame. */
export async function existingRows(db: FrameDatabase, state: FrameState, ids: string[]): Promise<Set<string>> {
  const found = await db.rows(`SELECT ${quoteIdent(ROW_ID_COLUMN)} AS id FROM rows WHERE ${rowsWithIds(state, ids)}`, [JSON.stringify(ids)]);
  return new Set(found.rows.map((r) => String(r.id)));
}

async function assertRowsExist(db: FrameDatabase, state: FrameState, ids: string[]): Promise<void> {
  const found = await existingRows(db, state, ids);
  const missing = ids.find((id) => !found.has(id));
  if (missing !== undefined) throw new RowNotFound(missing);
}

/** The JSON structure (column → type) `json_transform_strict` reads `names` with, plus the row id. */
function structureOf(types: Map<string, string>, names: string[], extra: Record<string, string>): string {
  return JSON.stringify([Object.fromEntries([...names.map((n) => [n, types.get(n)!]), ...Object.entries(extra)])]);
}

async function addRows(db: FrameDatabase, state: FrameState, rows: RowEdit[]): Promise<FrameState> {
  const names = [...new Set(rows.flatMap((r) => Object.keys(r.values)))];
  const types = await assertKnownColumns(db, state, names);
  // Every row gets every named column (null where it has none): json_transform_strict wants each key.
  const values = rows.map((row, i) => ({
    ...Object.fromEntries(names.map((n) => [n, row.values[n] ?? null])),
    [ROW_ID_COLUMN]: row.id,
    [ROW_ORDER_COLUMN]: state.nextRowOrder + i,
  }));
  const structure = structureOf(types, names, { [ROW_ID_COLUMN]: 'VARCHAR', [ROW_ORDER_COLUMN]: 'BIGINT' });
  await db.run(`INSERT INTO rows BY NAME SELECT v.* FROM ${JSON_ROWS}`, [JSON.stringify(values), structure]);
  return { ...state, nextRowOrder: state.nextRowOrder + rows.length };
}

async function updateRows(db: FrameDatabase, state: FrameState, rows: RowEdit[]): Promise<FrameState> {
  const types = await assertKnownColumns(db, state, rows.flatMap((r) => Object.keys(r.values)));
  // One UPDATE per set of columns named (a batch usually names one set); rows that name none change nothing.
  const groups = new Map<string, RowEdit[]>();
  for (const row of rows) {
    const key = JSON.stringify(Object.keys(row.values).sort());
    groups.set(key, [...(groups.get(key) ?? []), row]);
  }
  for (const [key, group] of groups) {
    const names = JSON.parse(key) as string[];
    const ids = group.map((row) => row.id);
    if (names.length === 0) {
      await assertRowsExist(db, state, ids);
      continue;
    }
    const values = group.map((row) => ({ ...row.values, [ROW_ID_COLUMN]: row.id }));
    const assignments = names.map((n) => `${quoteIdent(n)} = v.${quoteIdent(n)}`).join(', ');
    const updated = await changedRows(db, `UPDATE rows SET ${assignments} FROM ${JSON_ROWS} WHERE ${placeOf(state, ids)} AND rows.${quoteIdent(ROW_ID_COLUMN)} = v.${quoteIdent(ROW_ID_COLUMN)}`, [
      JSON.stringify(values),
      structureOf(types, names, { [ROW_ID_COLUMN]: 'VARCHAR' }),
    ]);
    // Fewer rows than ids: one is missing (the transaction rolls back); say which.
    if (updated < ids.length) await assertRowsExist(db, state, ids);
  }
  return state;
}

async function deleteRow(db: FrameDatabase, state: FrameState, id: string): Promise<FrameState> {
  if ((await changedRows(db, `DELETE FROM rows WHERE ${rowsWithIds(state, [id])}`, [JSON.stringify([id])])) === 0) throw new RowNotFound(id);
  return state;
}

/** The position in the file of a row the frame was indexed with (their ids are their positions), else null. */
export function basePosition(state: FrameState, id: string): number | null {
  if (!/^(0|[1-9]\d{0,15})$/.test(id)) return null;
  const position = Number(id);
  return position < state.base.rows ? position : null;
}

/** A row of the file goes back to the file's values (in the frame's current columns and types); an added row goes. */
async function restoreRow(db: FrameDatabase, state: FrameState, id: string, context: ApplyContext): Promise<FrameState> {
  const position = basePosition(state, id);
  if (position === null) return deleteRow(db, state, id);
  const types = new Map((await frameColumns(db, state)).map((c) => [c.name, c.type]));
  const source = frameSourceSql(await context.baseFile(state.base.hash, state.base.format));
  const fromFile = state.columns
    .filter((c) => c.origin !== null)
    .map((c) => `TRY_CAST(src.${quoteIdent(c.origin!)} AS ${types.get(c.name)}) AS ${quoteIdent(c.name)}`);
  await db.run(`DELETE FROM rows WHERE ${rowsWithIds(state, [id])}`, [JSON.stringify([id])]);
  await db.run(
    `INSERT INTO rows BY NAME SELECT ${[...fromFile, `$1 AS ${quoteIdent(ROW_ID_COLUMN)}`, `${position} AS ${quoteIdent(ROW_ORDER_COLUMN)}`].join(', ')} ` +
      `FROM (SELECT * FROM ${source} LIMIT 1 OFFSET ${position}) AS src`,
    [id],
  );
  return state;
}

/** Builds the table from the file (its rows numbered in file order) and the state that goes with it. */
async function index(db: FrameDatabase, op: Extract<FrameOp, { kind: 'index' }>, context: ApplyContext): Promise<FrameState> {
  const source = frameSourceSql(await context.baseFile(op.hash, op.format));
  const described = await db.rows(`DESCRIBE SELECT * FROM ${source}`);
  const names = described.rows.map((r) => String(r.column_name));
  const reserved = names.find((n) => RESERVED_COLUMNS.has(n) || n === POSITION);
  if (reserved !== undefined) throw columnError('Column Name Is Reserved', reserved);
  await db.run(
    `CREATE TABLE rows AS SELECT * EXCLUDE (${POSITION}), CAST(${POSITION} AS VARCHAR) AS ${quoteIdent(ROW_ID_COLUMN)}, ${POSITION} AS ${quoteIdent(ROW_ORDER_COLUMN)} ` +
      `FROM (SELECT *, row_number() OVER () - 1 AS ${POSITION} FROM ${source})`,
  );
  const rows = Number((await db.rows('SELECT count(*) AS n FROM rows')).rows[0].n);
  await db.run('CREATE TABLE _yoke_state (state VARCHAR)');
  await db.run('INSERT INTO _yoke_state VALUES (NULL)');
  return {
    seq: 0,
    lastOpId: op.opId,
    base: { path: op.path, hash: op.hash, size: op.size, format: op.format, rows },
    changed: false,
    columns: names.map((name) => ({ name, origin: name, metadata: null })),
    schemaMetadata: null,
    embeddings: {},
    nextRowOrder: rows,
  };
}

async function updateColumn(db: FrameDatabase, state: FrameState, op: Extract<FrameOp, { kind: 'update_column' }>): Promise<FrameState> {
  assertColumn(state, op.name);
  let name = op.name;
  let next = state;
  if (op.newType !== null) await db.run(`ALTER TABLE rows ALTER COLUMN ${quoteIdent(name)} TYPE ${op.newType}`);
  if (op.newName !== null && op.newName !== name) {
    assertNewColumn(state, op.newName);
    await db.run(`ALTER TABLE rows RENAME COLUMN ${quoteIdent(name)} TO ${quoteIdent(op.newName)}`);
    const embeddings = { ...state.embeddings };
    if (name in embeddings) {
      embeddings[op.newName] = embeddings[name];
      delete embeddings[name];
    }
    next = { ...state, columns: state.columns.map((c) => (c.name === name ? { ...c, name: op.newName! } : c)), embeddings };
    name = op.newName;
  }
  if (op.newType !== null && name in next.embeddings) {
    const embeddings = { ...next.embeddings };
    delete embeddings[name];
    next = { ...next, embeddings };
  }
  return next;
}

/** Applies one operation (see the module comment); returns the state after it. `state` is null only before `index`. */
export async function applyOp(db: FrameDatabase, state: FrameState | null, op: FrameOp, context: ApplyContext): Promise<FrameState> {
  if (op.kind === 'index') {
    if (state !== null) throw new BadRequest('The data frame is already indexed');
    return defineView(db, await index(db, op, context));
  }
  if (state === null) throw new Error(`A data frame log must start with index, not ${op.kind}`);
  const next = await applyEdit(db, state, op, context);
  if (next.columns !== state.columns && next.columns.map((c) => c.name).join('\u0000') !== state.columns.map((c) => c.name).join('\u0000')) await defineView(db, next);
  return ['column_metadata', 'schema_metadata', 'enable_embeddings'].includes(op.kind) ? next : { ...next, changed: true };
}

async function applyEdit(db: FrameDatabase, state: FrameState, op: Exclude<FrameOp, { kind: 'index' }>, context: ApplyContext): Promise<FrameState> {
  switch (op.kind) {
    case 'add_rows':
      return addRows(db, state, op.rows);
    case 'update_rows':
      return updateRows(db, state, op.rows);
    case 'delete_row':
      return deleteRow(db, state, op.row);
    case 'restore_row':
      return restoreRow(db, state, op.row, context);
    case 'add_column':
      assertNewColumn(state, op.name);
      await db.run(`ALTER TABLE rows ADD COLUMN ${quoteIdent(op.name)} ${op.type}`);
      return { ...state, columns: [...state.columns, { name: op.name, origin: null, metadata: null }] };
    case 'update_column':
      return updateColumn(db, state, op);
    case 'delete_column': {
      assertColumn(state, op.name);
      if (state.columns.length === 1) throw new BadRequest(`'${op.name}' is the data frame's only column`, { type: 'column_error' });
      await db.run(`ALTER TABLE rows DROP COLUMN ${quoteIdent(op.name)}`);
      const embeddings = { ...state.embeddings };
      delete embeddings[op.name];
      return { ...state, columns: state.columns.filter((c) => c.name !== op.name), embeddings };
    }
    case 'column_metadata':
      assertColumn(state, op.name);
      return { ...state, columns: state.columns.map((c) => (c.name === op.name ? { ...c, metadata: op.metadata } : c)) };
    case 'schema_metadata':
      return { ...state, schemaMetadata: op.metadata };
    case 'enable_embeddings':
      assertColumn(state, op.column);
      return { ...state, embeddings: { ...state.embeddings, [op.column]: op.vectorLength } };
  }
}

/** Records the state (with the operation it reflects) in the database, in the transaction that applied it. */
export async function saveState(db: FrameDatabase, state: FrameState): Promise<void> {
  await db.run('UPDATE _yoke_state SET state = $1', [JSON.stringify(state)]);
}

/** `df`: the rows as clients see them, in order (what pages are read from); made again when the columns change. */
async function defineView(db: FrameDatabase, state: FrameState): Promise<FrameState> {
  await db.run(`CREATE OR REPLACE VIEW df AS SELECT ${visibleColumnsSql(state)} FROM rows ORDER BY ${quoteIdent(ROW_ORDER_COLUMN)}`);
  return state;
}

/** The state a database holds, or null when it holds none (a file left half-built). */
export async function loadState(db: FrameDatabase): Promise<FrameState | null> {
  const found = await db.rows('SELECT state FROM _yoke_state').catch(() => null);
  const text = found?.rows[0]?.state;
  return typeof text === 'string' ? (JSON.parse(text) as FrameState) : null;
}

/** `SELECT` of every row as the frame's file holds it (no row ids), in the frame's order. */
export function exportSql(state: FrameState): string {
  return `SELECT ${state.columns.map((c) => quoteIdent(c.name)).join(', ')} FROM rows ORDER BY ${quoteIdent(ROW_ORDER_COLUMN)}`;
}
