/** Oxen's JSON of a data frame (`JsonDataFrameViews`: the frame's schema and size, and a page of it). */
import type { Json } from '@duckdb/node-api';
import { optionsView, type FrameOptions } from '../core/frame-options.js';
import { oxenSchemaOf } from '../core/tabular.js';

interface Column {
  name: string;
  type: string;
}

/** Metadata of a frame's columns (by name) and of its schema, as a workspace frame holds it. */
export interface SchemaMetadata {
  columns: Record<string, unknown>;
  schema: unknown;
}

/** Oxen's `Schema` of the columns, with their metadata. */
export function schemaView(columns: Column[], metadata?: SchemaMetadata) {
  const schema = oxenSchemaOf(columns);
  if (!metadata) return schema;
  return { ...schema, fields: schema.fields.map((f) => ({ ...f, metadata: metadata.columns[f.name] ?? null })), metadata: metadata.schema ?? null };
}

export interface FramePageOf {
  source: { columns: Column[]; height: number };
  view: { columns: Column[]; rows: Record<string, Json>[]; totalEntries: number };
  options: FrameOptions;
}

/** `{source, view}`: the frame's schema and size, and the page with its pagination and options. */
export function frameViews(page: FramePageOf, metadata?: SchemaMetadata) {
  const { source, view, options } = page;
  return {
    source: { schema: schemaView(source.columns, metadata), size: { height: source.height, width: source.columns.length } },
    view: {
      schema: schemaView(view.columns, metadata),
      size: { height: view.rows.length, width: view.columns.length },
      data: view.rows,
      pagination: {
        page_number: options.page,
        page_size: options.pageSize,
        total_pages: Math.ceil(view.totalEntries / options.pageSize),
        total_entries: view.totalEntries,
      },
      opts: optionsView(options),
    },
  };
}
