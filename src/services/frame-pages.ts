/**
 * A page of a data frame with Oxen's view options (core/frame-options.ts) applied, read from anything that
 * shows the frame's rows as the view `df`: a sandboxed file (the engine's `Frame`) or a workspace frame's
 * database. Only a sandbox runs a client's SQL (`checkSelect`); a source that cannot refuses it.
 */
import type { DuckDBValue, Json } from '@duckdb/node-api';
import { YokeError } from '../core/errors.js';
import { filterSql, InvalidFrameParam, mirrored, orderSql, readsBackwards, requestedRows, unknownColumns, type FrameOptions } from '../core/frame-options.js';
import { quoteIdent } from '../core/tabular.js';
import type { FrameColumn, FrameRows, ReadOptions } from '../storage/frames/engine.js';

/** Most JSON one page may carry: DuckDB measures it before any row reaches JavaScript. */
export const MAX_PAGE_JSON_BYTES = 64 * 1024 * 1024;

export interface PageSource {
  rows(sql: string, params?: DuckDBValue[], options?: ReadOptions): Promise<FrameRows>;
  count(sql: string): Promise<number>;
  columns(sql: string): Promise<FrameColumn[]>;
  /** A client's SQL checked to be one SELECT (see the engine's `Frame`). */
  checkSelect(sql: string): Promise<string>;
}

export interface PageView {
  columns: FrameColumn[];
  rows: Record<string, Json>[];
  /** Rows of the view (after `filter` or `sql`), of which this is a page. */
  totalEntries: number;
}

/** The page the options ask for, of a frame whose columns and height are `frame`. */
export async function viewOf(source: PageSource, frame: { columns: FrameColumn[]; height: number }, options: FrameOptions): Promise<PageView> {
  const base = options.sql === null ? 'df' : `(${await source.checkSelect(options.sql)})`;
  const baseColumns = options.sql === null ? frame.columns : await source.columns(`SELECT * FROM ${base} AS base`);
  const unknown = unknownColumns(options, baseColumns.map((c) => c.name));
  if (unknown.length > 0) throw new YokeError(400, 'bad_request', 'Column Name Not Found', `Column name '${unknown[0]}' not found in schema`, { type: 'column_error' });

  const filtered = `SELECT * FROM ${base} AS base${options.filter ? ` WHERE ${filterSql(options.filter)}` : ''}`;
  const total = options.sql !== null || options.filter !== null ? await source.count(filtered) : frame.height;
  const projection = (options.columns ?? baseColumns.map((c) => c.name)).map(quoteIdent).join(', ');
  const page = await readPage(source, filtered, total, projection, options);
  return { columns: page.columns, rows: page.rows, totalEntries: total };
}

/** The rows the options ask for, of `filtered` (which has `total` rows), as `projection`. */
export async function readPage(source: Pick<PageSource, 'rows'>, filtered: string, total: number, projection: string, options: FrameOptions): Promise<FrameRows> {
  const wanted = requestedRows(options);
  const limit = (range: { start: number; end: number }) => `LIMIT ${range.end - range.start} OFFSET ${range.start}`;
  const read = (sql: string) => source.rows(sql, undefined, { maxJsonBytes: MAX_PAGE_JSON_BYTES });
  const backwards = readsBackwards(options);
  if (options.take) {
    const outside = options.take.find((i) => i >= total);
    if (outside !== undefined) throw new InvalidFrameParam('take', options.given.take!, `row ${outside} is past the last row (the frame has ${total})`);
    const positions = backwards ? options.take.map((i) => total - 1 - i) : options.take;
    // Row numbers in the view's order, joined to the wanted positions, kept in the order asked.
    return read(
      `SELECT ${projection} FROM (SELECT *, row_number() OVER (${orderSql(options)}) - 1 AS __yoke_position FROM (${filtered})) AS numbered ` +
        `JOIN (SELECT unnest(${listLiteral(positions)}) AS __yoke_position, generate_subscripts(${listLiteral(positions)}, 1) AS __yoke_order) AS wanted ` +
        `USING (__yoke_position) ORDER BY __yoke_order ${limit(wanted)}`,
    );
  }
  if (backwards) {
    // The file's order reversed: read the mirrored rows forwards (DuckDB streams them) and turn them round.
    const page = await read(`SELECT ${projection} FROM (${filtered}) ${limit(mirrored(wanted, total))}`);
    return { ...page, rows: page.rows.reverse() };
  }
  return read(`SELECT ${projection} FROM (${filtered}) ${orderSql(options)} ${limit(wanted)}`);
}

function listLiteral(values: number[]): string {
  return `[${values.join(', ')}]::UBIGINT[]`;
}
