/**
 * Nearest-neighbour queries on a workspace frame's vector columns (Oxen's embeddings routes): rows sorted by
 * cosine similarity to a vector with DuckDB's list functions (no extension), and the mean vector of the rows a
 * client's WHERE clause selects, which only the sandbox computes.
 */
import type { Json } from '@duckdb/node-api';
import { BadRequest } from '../core/errors.js';
import { columnError, ROW_ID_COLUMN, ROW_ORDER_COLUMN } from '../core/frame-edits.js';
import { quoteIdent } from '../core/tabular.js';
import { frameColumns, type FrameState } from './frame-ops.js';
import { MAX_PAGE_JSON_BYTES, type PageView } from './frame-pages.js';
import type { FrameReplica } from './frame-replicas.js';

/** The column a neighbours page adds (Oxen's name). */
export const SIMILARITY = 'similarity';

export interface EmbeddingColumn {
  name: string;
  vectorLength: number;
}

/** A nearest-neighbour query: rows by cosine similarity of `column` to `embedding`, most similar first. */
export interface NeighborsQuery {
  column: string;
  embedding: number[];
  page: number;
  pageSize: number;
}

export function embeddingColumnsOf(state: FrameState): EmbeddingColumn[] {
  return Object.entries(state.embeddings).map(([name, vectorLength]) => ({ name, vectorLength }));
}

/** The length of a column's vectors (its first row that has one); 400 for a column of anything else. */
export async function vectorLength(replica: FrameReplica, column: string): Promise<number> {
  const type = (await frameColumns(replica.db, replica.state)).find((c) => c.name === column)?.type;
  if (type === undefined) throw columnError('Column Name Not Found', column);
  if (!/^(FLOAT|DOUBLE|TINYINT|SMALLINT|INTEGER|BIGINT|DECIMAL\(\d+,\d+\))(\[\]|\[\d+\])$/.test(type)) {
    throw new BadRequest(`Column '${column}' holds ${type}, not vectors of numbers`, { type: 'column_error' });
  }
  const value = quoteIdent(column);
  const first = await replica.db.rows(`SELECT len(${value}) AS n FROM rows WHERE ${value} IS NOT NULL ORDER BY ${quoteIdent(ROW_ORDER_COLUMN)} LIMIT 1`);
  if (first.rows.length === 0) throw new BadRequest(`Column '${column}' has no vectors yet`, { type: 'column_error' });
  return Number(first.rows[0].n);
}

/** A page of the frame's rows (and `_oxen_id`) with their similarity, most similar first. */
export async function nearestRows(replica: FrameReplica, query: NeighborsQuery): Promise<PageView> {
  await vectorLength(replica, query.column);
  const vector = `[${query.embedding.map(String).join(', ')}]::DOUBLE[]`;
  const value = quoteIdent(query.column);
  // A vector of another length than the query's has no similarity (and comes last).
  const similarity = `CASE WHEN len(${value}) = ${query.embedding.length} THEN list_cosine_similarity(CAST(${value} AS DOUBLE[]), ${vector}) END`;
  const columns = replica.state.columns.filter((c) => c.name !== SIMILARITY).map((c) => quoteIdent(c.name));
  const page = await replica.db.rows(
    `SELECT ${[...columns, quoteIdent(ROW_ID_COLUMN), `${similarity} AS ${SIMILARITY}`].join(', ')} FROM rows ` +
      `ORDER BY ${SIMILARITY} DESC NULLS LAST, ${quoteIdent(ROW_ORDER_COLUMN)} LIMIT ${query.pageSize} OFFSET ${(query.page - 1) * query.pageSize}`,
    undefined,
    { maxJsonBytes: MAX_PAGE_JSON_BYTES },
  );
  const total = Number((await replica.db.rows('SELECT count(*) AS n FROM rows')).rows[0].n);
  return { columns: page.columns, rows: page.rows, totalEntries: total };
}

/** The SELECT (over the view `df`, for the sandbox) of the mean vector of `column` over the rows `where` selects. */
export function meanVectorSql(state: FrameState, column: string, where: string): string {
  if (!state.columns.some((c) => c.name === column)) throw columnError('Column Name Not Found', column);
  return (
    `SELECT list(a ORDER BY i) AS embedding FROM (SELECT i, avg(v) AS a FROM (SELECT unnest(e) AS v, generate_subscripts(e, 1) AS i ` +
    `FROM (SELECT CAST(${quoteIdent(column)} AS DOUBLE[]) AS e FROM df WHERE ${where})) GROUP BY i)`
  );
}

/** The vector `meanVectorSql` answered with; 400 when no row had one. */
export function meanVectorOf(rows: Record<string, Json>[], column: string, where: string): number[] {
  const embedding = rows[0]?.embedding;
  if (!Array.isArray(embedding) || embedding.length === 0) throw new BadRequest(`No row with a vector in '${column}' matches find_embedding_where: ${where}`, { type: 'no_rows_found' });
  return embedding.map(Number);
}
