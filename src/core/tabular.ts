/**
 * Tabular files as data frames: which paths are tabular, how Oxen names column types, and how to spell
 * identifiers and literals safely in SQL. Pure: the engine that reads the files is `storage/frames/`.
 */
import { hashBuffer } from './hash.js';

export type TabularFormat = 'csv' | 'tsv' | 'jsonl' | 'ndjson' | 'json' | 'parquet';

const FORMAT_BY_EXTENSION: Record<string, TabularFormat> = {
  csv: 'csv',
  tsv: 'tsv',
  jsonl: 'jsonl',
  ndjson: 'ndjson',
  json: 'json',
  parquet: 'parquet',
};

/** The format of a tabular file by its extension (case-insensitive), or null when it is not one. */
export function tabularFormatOf(path: string): TabularFormat | null {
  const dot = path.lastIndexOf('.');
  if (dot < 0 || dot < path.lastIndexOf('/')) return null;
  return FORMAT_BY_EXTENSION[path.slice(dot + 1).toLowerCase()] ?? null;
}

export function isTabularPath(path: string): boolean {
  return tabularFormatOf(path) !== null;
}

/** An identifier quoted for DuckDB: any column name, including ones with quotes, spaces or dots. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A literal for DuckDB. Strings are quoted; numbers must be finite. */
export function quoteLiteral(value: string | number | boolean | null): string {
  if (value === null) return 'NULL';
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`not a finite number: ${value}`);
    return String(value);
  }
  return `'${value.replaceAll("'", "''")}'`;
}

const OXEN_BY_DUCKDB: Record<string, string> = {
  BOOLEAN: 'bool',
  TINYINT: 'i8',
  SMALLINT: 'i16',
  INTEGER: 'i32',
  BIGINT: 'i64',
  HUGEINT: 'i64',
  UTINYINT: 'uint8',
  USMALLINT: 'u16',
  UINTEGER: 'u32',
  UBIGINT: 'u64',
  UHUGEINT: 'u64',
  FLOAT: 'f32',
  DOUBLE: 'f64',
  VARCHAR: 'str',
  UUID: 'str',
  JSON: 'str',
  BLOB: 'binary',
  DATE: 'date',
  TIME: 'time',
  INTERVAL: 'duration',
  '"NULL"': 'null',
  NULL: 'null',
};

/**
 * Oxen's name for a DuckDB column type (Oxen's `DataType::as_str`): `i64`, `str`, `list[f32]`,
 * `embedding[N]` for a fixed-size float array, `struct`, `datetime` for every timestamp.
 */
export function oxenDtypeOf(duckdbType: string): string {
  const type = duckdbType.trim().toUpperCase();
  const array = /^(.*)\[(\d+)\]$/.exec(type);
  if (array) {
    const inner = oxenDtypeOf(array[1]);
    return inner === 'f32' || inner === 'f64' ? `embedding[${array[2]}]` : `list[${listItem(inner)}]`;
  }
  if (type.endsWith('[]')) return `list[${listItem(oxenDtypeOf(type.slice(0, -2)))}]`;
  if (type.startsWith('STRUCT') || type.startsWith('MAP') || type.startsWith('UNION')) return 'struct';
  if (type.startsWith('TIMESTAMP')) return 'datetime';
  if (type.startsWith('TIME')) return 'time';
  if (type.startsWith('DECIMAL')) return 'f64';
  if (type.startsWith('ENUM') || type.startsWith('VARCHAR')) return 'str';
  return OXEN_BY_DUCKDB[type] ?? '?';
}

function listItem(inner: string): string {
  return ['bool', 'uint8', 'u16', 'u32', 'u64', 'i8', 'i16', 'i32', 'i64', 'f32', 'f64', 'str', 'binary', 'date', 'time'].includes(inner) ? inner : '?';
}

const DUCKDB_BY_OXEN: Record<string, string> = {
  bool: 'BOOLEAN',
  uint8: 'UTINYINT',
  u16: 'USMALLINT',
  u32: 'UINTEGER',
  u64: 'UBIGINT',
  i8: 'TINYINT',
  i16: 'SMALLINT',
  int: 'INTEGER',
  i32: 'INTEGER',
  i64: 'BIGINT',
  float: 'FLOAT',
  f32: 'FLOAT',
  double: 'DOUBLE',
  f64: 'DOUBLE',
  str: 'VARCHAR',
  string: 'VARCHAR',
  binary: 'BLOB',
  date: 'DATE',
  datetime: 'TIMESTAMP',
  time: 'TIME',
  duration: 'INTERVAL',
  null: 'VARCHAR',
};

/**
 * The DuckDB type for one of Oxen's dtype names (as a client sends them when adding or retyping a column:
 * `str`, `i64`, `list[f32]`, `embedding[3]`), or null when the name is not one.
 */
export function duckdbTypeOf(oxenDtype: string): string | null {
  const name = oxenDtype.trim().toLowerCase();
  const list = /^list\[(.+)\]$/.exec(name);
  if (list) {
    const inner = duckdbTypeOf(list[1]);
    return inner === null ? null : `${inner}[]`;
  }
  const embedding = /^embedding\[(\d{1,6})\]$/.exec(name);
  if (embedding && Number(embedding[1]) > 0) return `FLOAT[${embedding[1]}]`;
  return DUCKDB_BY_OXEN[name] ?? null;
}

/** Oxen's `Schema` of a frame's columns: fields with Oxen dtypes, hashed as Oxen hashes them (xxh3-128 of names and dtypes). */
export function oxenSchemaOf(columns: ReadonlyArray<{ name: string; type: string }>) {
  const fields = columns.map((c) => ({ name: c.name, dtype: oxenDtypeOf(c.type), metadata: null, changes: null }));
  return { hash: hashBuffer(fields.map((f) => f.name + f.dtype).join('')), fields, metadata: null };
}
