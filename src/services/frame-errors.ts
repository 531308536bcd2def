/**
 * The frame engine's refusals as the 4xx errors Oxen's clients know (its `query_error`,
 * `data_frame_error`, …). Every data-frame service runs engine work through `withFrameErrors`, so a
 * query DuckDB refuses or cannot finish never becomes a 500.
 */
import { YokeError } from '../core/errors.js';
import { FrameQueryError } from '../storage/frames/engine.js';

const TITLES: Record<FrameQueryError['kind'], [type: string, title: string]> = {
  sql: ['query_error', 'Could not execute query on Data'],
  not_read_only: ['query_error', 'Only a read-only query is allowed'],
  timeout: ['query_timeout', 'The query took too long'],
  memory: ['query_too_large', 'The query needs more memory than one query may use'],
  too_large: ['result_too_large', 'The result is too large for one request'],
  unreadable: ['data_frame_error', 'Error Reading DataFrame'],
};

export interface FrameErrorContext {
  /** The file itself could not be read (not the client's query): Oxen's `data_frame_error`. */
  readingFile?: boolean;
  /** The local file the engine read, named in DuckDB's messages, and the name the client knows it by. */
  file?: { localPath: string; shownAs: string };
}

/** The client error for an engine refusal; never names a path on the server. */
export function frameClientError(error: FrameQueryError, context: FrameErrorContext = {}): YokeError {
  const [type, title] = context.readingFile ? TITLES.unreadable : TITLES[error.kind];
  const named = context.file ? error.message.replaceAll(context.file.localPath, context.file.shownAs) : error.message;
  // DuckDB quotes the statement after `LINE n:`, cut to its width: that excerpt may hold part of a server path.
  const message = named.replace(/\n+LINE \d+:[\s\S]*$/, '');
  return new YokeError(400, 'bad_request', title, message, { type });
}

/** Runs engine work, turning its refusals into 400s (see `frameClientError`). */
export async function withFrameErrors<T>(work: () => Promise<T>, context: FrameErrorContext = {}): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof FrameQueryError) throw frameClientError(error, context);
    throw error;
  }
}
