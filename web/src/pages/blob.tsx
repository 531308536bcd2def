import { useRef, useState } from 'preact/hooks';
import type { Entry } from '../../../src/client/index.js';
import { client, downloadFile, hasDataFrames, useLoad, useMediaUrl } from '../api.js';
import { Await, Breadcrumbs, CommitLink, Time } from '../components.js';
import { cellText, parseDelimited, parseJsonLines } from '../csv.js';
import { formatBytes, summary } from '../format.js';
import { encodeSegments, repoHref } from '../router.js';
import { BranchSelect, type RepoContext } from './repo.js';

/** Text shown inline up to this many bytes; the rest is a download away. */
export const TEXT_PREVIEW_BYTES = 512 * 1024;
/** Delimited text read for a table preview when the server has no data-frame routes. */
const TABLE_PREVIEW_BYTES = 1024 * 1024;
const TABLE_PAGE_ROWS = 100;

/** `blob/{rev}/{path}`: one file, previewed by its type, with download and history links. */
export function BlobView({ context }: { context: RepoContext }) {
  const { namespace, repo, revision, path } = context;
  const resource = `${revision}/${path}`;
  const meta = useLoad((signal) => client.metadata(namespace, repo, resource, signal), [namespace, repo, resource]);
  const download = client.repoUrl(namespace, repo, `/file/${encodeSegments(resource)}`);
  return (
    <>
      <div class="toolbar">
        <BranchSelect context={context} view="blob" />
        <Breadcrumbs namespace={namespace} repo={repo} revision={revision} path={path} />
      </div>
      <Await loaded={meta} what="Loading file">
        {(entry) => (
          <section class="card file" aria-label={entry.filename}>
            <div class="file-head">
              <span>
                <strong>{entry.filename}</strong> <span class="muted small">{formatBytes(entry.size)} · {entry.mime_type}</span>
              </span>
              <span class="spacer" />
              <a class="button" href={repoHref(namespace, repo, 'commits', resource)}>
                History
              </a>
              <a class="button primary" href={download} download={entry.filename} onClick={(event) => downloadWithToken(event, context, resource, entry.filename)}>
                Download
              </a>
            </div>
            {entry.latest_commit && (
              <p class="muted small file-commit">
                {summary(entry.latest_commit.message)} · {entry.latest_commit.author} · <Time iso={entry.latest_commit.timestamp} /> · <CommitLink namespace={namespace} repo={repo} commit={entry.latest_commit} />
              </p>
            )}
            <Preview context={context} entry={entry} resource={resource} download={download} />
          </section>
        )}
      </Await>
    </>
  );
}

/** A link cannot send the token: with one, the download goes through a file link (streamed, never held by the page). */
function downloadWithToken(event: MouseEvent, context: RepoContext, resource: string, filename: string): void {
  if (client.token === null) return;
  event.preventDefault();
  void downloadFile(context.namespace, context.repo, resource, filename);
}

function Preview({ context, entry, resource, download }: { context: RepoContext; entry: Entry; resource: string; download: string }) {
  switch (entry.data_type) {
    case 'image':
      return <MediaPreview context={context} resource={resource} kind="image" name={entry.filename} />;
    case 'audio':
      return <MediaPreview context={context} resource={resource} kind="audio" name={entry.filename} />;
    case 'video':
      return <MediaPreview context={context} resource={resource} kind="video" name={entry.filename} />;
    case 'tabular':
      return <TablePreview context={context} entry={entry} resource={resource} />;
    default:
      return <TextPreview context={context} entry={entry} resource={resource} download={download} />;
  }
}

function MediaPreview({ context, resource, kind, name }: { context: RepoContext; resource: string; kind: 'image' | 'audio' | 'video'; name: string }) {
  const [url, renew] = useMediaUrl(context.namespace, context.repo, resource);
  // Where a player was when its link expired, to carry on there with the new one.
  const resume = useRef<{ time: number; playing: boolean } | null>(null);
  const player = {
    controls: true,
    preload: 'metadata' as const,
    onError: (event: Event) => {
      const media = event.currentTarget as HTMLMediaElement;
      if (renew()) resume.current = { time: media.currentTime, playing: !media.paused };
    },
    onLoadedMetadata: (event: Event) => {
      const media = event.currentTarget as HTMLMediaElement;
      if (!resume.current) return;
      media.currentTime = resume.current.time;
      if (resume.current.playing) media.play().catch(() => {});
      resume.current = null;
    },
  };
  return (
    <div class={`media media-${kind}`}>
      <Await loaded={url}>
        {(src) => (kind === 'image' ? <img src={src} alt={name} onError={() => renew()} /> : kind === 'audio' ? <audio {...player} src={src} /> : <video {...player} src={src} />)}
      </Await>
    </div>
  );
}

/** Whether bytes look like text: no NUL in the first 8,000, as git decides. */
function looksBinary(bytes: Uint8Array): boolean {
  return bytes.subarray(0, 8000).includes(0);
}

function TextPreview({ context, entry, resource, download }: { context: RepoContext; entry: Entry; resource: string; download: string }) {
  const text = useLoad(async (signal) => {
    if (entry.size === 0) return { lines: [] as string[], binary: false };
    const bytes = await client.readFile(context.namespace, context.repo, resource, { start: 0, end: Math.min(entry.size, TEXT_PREVIEW_BYTES) - 1 }, signal);
    if (looksBinary(bytes)) return { lines: [], binary: true };
    const lines = new TextDecoder().decode(bytes).split('\n');
    // A cut file ends mid-line; a whole one usually ends with a newline: either way the last piece is no line.
    if (entry.size > TEXT_PREVIEW_BYTES || lines[lines.length - 1] === '') lines.pop();
    return { lines, binary: false };
  }, [resource, entry.hash]);
  return (
    <Await loaded={text} what="Loading text">
      {({ lines, binary }) => {
        if (binary) return <p class="notice">This file is binary; there is no preview. <a href={download} download={entry.filename}>Download it</a>.</p>;
        if (entry.size === 0) return <p class="notice">This file is empty.</p>;
        return (
          <>
            {entry.size > TEXT_PREVIEW_BYTES && (
              <p class="notice">
                Showing the first {formatBytes(TEXT_PREVIEW_BYTES)} of {formatBytes(entry.size)}.{' '}
                <a href={download} download={entry.filename}>
                  Download the whole file
                </a>
                .
              </p>
            )}
            <div class="code" role="region" aria-label="File contents" tabIndex={0}>
              <pre class="gutter" aria-hidden="true">
                {lines.map((_, i) => i + 1).join('\n')}
              </pre>
              <pre class="lines">{lines.join('\n')}</pre>
            </div>
          </>
        );
      }}
    </Await>
  );
}

interface Table {
  columns: string[];
  rows: string[][];
  /** Rows in the whole file, when known. */
  totalRows: number | null;
  page: number;
  totalPages: number;
  /** Set when only the start of the file was read. */
  partial: boolean;
}

function TablePreview({ context, entry, resource }: { context: RepoContext; entry: Entry; resource: string }) {
  const [page, setPage] = useState(1);
  const table = useLoad(async (signal): Promise<Table | null> => {
    if (hasDataFrames) {
      const { data_frame } = await client.dataFrame(context.namespace, context.repo, resource, page, TABLE_PAGE_ROWS, signal);
      const columns = data_frame.view.schema.fields.map((f) => f.name);
      return {
        columns,
        rows: data_frame.view.data.map((row) => columns.map((c) => cellText(row[c]))),
        totalRows: data_frame.source.size.height,
        page,
        totalPages: data_frame.view.pagination.total_pages,
        partial: false,
      };
    }
    const delimiter = { csv: ',', tsv: '\t' }[entry.extension];
    const jsonLines = entry.extension === 'jsonl' || entry.extension === 'ndjson';
    if (!delimiter && !jsonLines) return null;
    const complete = entry.size <= TABLE_PREVIEW_BYTES;
    const bytes = entry.size === 0 ? new Uint8Array() : await client.readFile(context.namespace, context.repo, resource, { start: 0, end: Math.min(entry.size, TABLE_PREVIEW_BYTES) - 1 }, signal);
    const text = new TextDecoder().decode(bytes);
    let columns: string[];
    let rows: string[][];
    if (delimiter) [columns = [], ...rows] = parseDelimited(text, delimiter, complete);
    else ({ columns, rows } = parseJsonLines(text, complete));
    const totalPages = Math.max(1, Math.ceil(rows.length / TABLE_PAGE_ROWS));
    return { columns, rows: rows.slice((page - 1) * TABLE_PAGE_ROWS, page * TABLE_PAGE_ROWS), totalRows: complete ? rows.length : null, page, totalPages, partial: !complete };
  }, [resource, entry.hash, page]);
  return (
    <Await loaded={table} what="Loading table">
      {(value) =>
        value === null ? (
          <p class="notice">No table preview for this format yet; download the file to open it.</p>
        ) : (
          <>
            <p class="muted small table-summary">
              {value.totalRows !== null ? `${value.totalRows.toLocaleString()} rows` : `The first ${formatBytes(TABLE_PREVIEW_BYTES)} of the file`} · {value.columns.length} columns
            </p>
            <div class="table-scroll" role="region" aria-label="Table" tabIndex={0}>
              <table class="data">
                <thead>
                  <tr>
                    <th class="row-number">#</th>
                    {value.columns.map((c) => (
                      <th key={c}>{c}</th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {value.rows.map((row, i) => (
                    <tr key={i}>
                      <td class="row-number">{(value.page - 1) * TABLE_PAGE_ROWS + i + 1}</td>
                      {value.columns.map((_, j) => (
                        <td key={j}>{row[j] ?? ''}</td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            {value.totalPages > 1 && (
              <nav class="pager" aria-label="Table pages">
                <button type="button" disabled={page <= 1} onClick={() => setPage(page - 1)}>
                  ← Previous
                </button>
                <span class="muted">
                  Rows page {page} of {value.totalPages}
                </span>
                <button type="button" disabled={page >= value.totalPages} onClick={() => setPage(page + 1)}>
                  Next →
                </button>
              </nav>
            )}
          </>
        )
      }
    </Await>
  );
}
