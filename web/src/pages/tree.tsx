import { useEffect, useRef, useState } from 'preact/hooks';
import type { DirPage, Entry } from '../../../src/client/index.js';
import { ApiError, client, useLoad } from '../api.js';
import { Await, Breadcrumbs, Time } from '../components.js';
import { formatBytes, joinPath, resourceOf, summary } from '../format.js';
import { encodeSegments, repoHref } from '../router.js';
import { Markdown } from '../markdown-view.js';
import { Gallery } from './gallery.js';
import { BranchSelect, type RepoContext } from './repo.js';

/** Entries fetched per request; the list renders only the rows in view, so any directory size opens at once. */
const PAGE_SIZE = 200;
const ROW_HEIGHT = 44;
/** Rows rendered above and below the visible ones, so fast scrolling shows no gaps. */
const OVERSCAN = 20;
const README = /^readme(\.(md|markdown|txt))?$/i;
/** README names looked up in a directory longer than one page: the usual spellings only, as each absent one costs a 404. */
const README_NAMES = ['README.md', 'readme.md', 'README'];

/** `tree/{rev}/{path}`: a directory, its README and, for a directory of images, a gallery. */
export function TreeView({ context }: { context: RepoContext }) {
  const { namespace, repo, revision, path } = context;
  const resource = resourceOf(revision, path);
  const first = useLoad((signal) => client.listDirectory(namespace, repo, resource, 1, PAGE_SIZE, signal), [namespace, repo, resource]);
  const [mode, setMode] = useState<'list' | 'gallery'>('list');
  return (
    <>
      <div class="toolbar">
        <BranchSelect context={context} view="tree" />
        <Breadcrumbs namespace={namespace} repo={repo} revision={revision} path={path} />
        <span class="spacer" />
        <a class="button" href={repoHref(namespace, repo, 'commits', resource)}>
          History
        </a>
        {context.branches.some((b) => b.name === revision) && (
          <a class="button" href={repoHref(namespace, repo, 'upload', resource)}>
            Upload here
          </a>
        )}
      </div>
      <Await loaded={first} what="Loading directory">
        {(page) => {
          const images = page.entries.filter((e) => e.data_type === 'image').length;
          const galleryable = images >= 2 && images >= page.entries.length / 2;
          const readme = page.entries.find((e) => !e.is_dir && README.test(e.filename));
          return (
            <>
              <div class="list-head">
                <span class="muted small">
                  {page.total_entries.toLocaleString()} {page.total_entries === 1 ? 'entry' : 'entries'} · {formatBytes(page.dir.size)}
                </span>
                {galleryable && (
                  <div class="segmented" role="group" aria-label="Show as">
                    <button type="button" aria-pressed={mode === 'list'} onClick={() => setMode('list')}>
                      List
                    </button>
                    <button type="button" aria-pressed={mode === 'gallery'} onClick={() => setMode('gallery')}>
                      Gallery
                    </button>
                  </div>
                )}
              </div>
              {galleryable && mode === 'gallery' ? <Gallery context={context} first={page} /> : <EntryList context={context} first={page} />}
              {readme ? <Readme context={context} entry={readme} /> : page.total_pages > 1 && <ReadmeBeyondFirstPage context={context} first={page} />}
            </>
          );
        }}
      </Await>
    </>
  );
}

/**
 * The listing, virtualised: the container is as tall as every row would be; only the rows in the
 * viewport (plus some overscan) exist, and their pages are fetched as they come into view.
 */
function EntryList({ context, first }: { context: RepoContext; first: DirPage }) {
  const { namespace, repo, revision, path } = context;
  const resource = resourceOf(revision, path);
  const total = first.total_entries;
  const pages = useRef(new Map<number, Entry[] | 'loading'>([[1, first.entries]]));
  const [, setLoadedCount] = useState(0);
  const [range, setRange] = useState({ start: 0, end: Math.min(total, 60) });
  const listRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const measure = () => {
      const list = listRef.current;
      if (!list) return;
      const top = -list.getBoundingClientRect().top;
      const start = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
      const end = Math.min(total, Math.ceil((top + window.innerHeight) / ROW_HEIGHT) + OVERSCAN);
      setRange((old) => (old.start === start && old.end === end ? old : { start, end }));
    };
    measure();
    window.addEventListener('scroll', measure, { passive: true });
    window.addEventListener('resize', measure);
    return () => {
      window.removeEventListener('scroll', measure);
      window.removeEventListener('resize', measure);
    };
  }, [total]);

  useEffect(() => {
    const firstPage = Math.floor(range.start / PAGE_SIZE) + 1;
    const lastPage = Math.floor(Math.max(range.end - 1, 0) / PAGE_SIZE) + 1;
    for (let page = firstPage; page <= lastPage; page++) {
      if (pages.current.has(page)) continue;
      pages.current.set(page, 'loading');
      client.listDirectory(namespace, repo, resource, page, PAGE_SIZE).then(
        (result) => {
          pages.current.set(page, result.entries);
          setLoadedCount((n) => n + 1);
        },
        () => pages.current.delete(page),
      );
    }
  }, [range, resource]);

  const rows = [];
  for (let index = range.start; index < range.end; index++) {
    const page = pages.current.get(Math.floor(index / PAGE_SIZE) + 1);
    const entry = Array.isArray(page) ? page[index % PAGE_SIZE] : undefined;
    rows.push(<EntryRow key={index} index={index} entry={entry} context={context} />);
  }
  if (total === 0) return <p class="muted">This directory is empty.</p>;
  return (
    <div class="entries" role="table" aria-label="Files" aria-rowcount={total}>
      <div ref={listRef} class="entries-body" style={{ height: `${total * ROW_HEIGHT}px` }} role="rowgroup">
        {rows}
      </div>
    </div>
  );
}

function EntryRow({ index, entry, context }: { index: number; entry: Entry | undefined; context: RepoContext }) {
  const style = { transform: `translateY(${index * ROW_HEIGHT}px)` };
  if (!entry) {
    return (
      <div class="entry placeholder" style={style} role="row" aria-rowindex={index + 1}>
        <span class="muted">…</span>
      </div>
    );
  }
  const { namespace, repo, revision, path } = context;
  const target = `${revision}/${joinPath(path, entry.filename)}`;
  const commit = entry.latest_commit;
  return (
    <div class="entry" style={style} role="row" aria-rowindex={index + 1}>
      <span class="entry-name" role="cell">
        <span class={`icon ${entry.is_dir ? 'icon-dir' : `icon-${entry.data_type}`}`} aria-hidden="true" />
        <a href={repoHref(namespace, repo, entry.is_dir ? 'tree' : 'blob', target)}>{entry.filename}</a>
      </span>
      <span class="entry-message muted" role="cell">
        {commit && (
          <a class="quiet" href={repoHref(namespace, repo, 'commit', commit.id)}>
            {summary(commit.message)}
          </a>
        )}
      </span>
      <span class="entry-size muted" role="cell">
        {entry.is_dir ? '' : formatBytes(entry.size)}
      </span>
      <span class="entry-time muted" role="cell">
        {commit && <Time iso={commit.timestamp} />}
      </span>
    </div>
  );
}

/**
 * A directory longer than one page may hold its README on any page: it is asked for by name (the entry
 * itself, one small request), never by reading pages. Files are listed by name, so a name that sorts before
 * the first page's last file and was not on that page is not in the directory, and is not asked for.
 */
function ReadmeBeyondFirstPage({ context, first }: { context: RepoContext; first: DirPage }) {
  const { namespace, repo, revision, path } = context;
  const files = first.entries.filter((e) => !e.is_dir);
  const lastListed = files.length > 0 ? files[files.length - 1].filename : null;
  const candidates = README_NAMES.filter((name) => lastListed === null || name > lastListed);
  const found = useLoad(async (signal) => {
    for (const name of candidates) {
      const entry = await client.metadata(namespace, repo, `${revision}/${joinPath(path, name)}`, signal).catch((error: Error) => {
        if (error instanceof ApiError && error.status === 404) return null;
        throw error;
      });
      if (entry && !entry.is_dir) return entry;
    }
    return null;
  }, [namespace, repo, revision, path, candidates.join('/')]);
  return found.state === 'done' && found.value ? <Readme context={context} entry={found.value} /> : null;
}

function Readme({ context, entry }: { context: RepoContext; entry: Entry }) {
  const { namespace, repo, revision, path } = context;
  const resource = `${revision}/${joinPath(path, entry.filename)}`;
  const text = useLoad(
    async (signal) => (entry.size === 0 ? '' : new TextDecoder().decode(await client.readFile(namespace, repo, resource, { start: 0, end: Math.min(entry.size, 512 * 1024) - 1 }, signal))),
    [resource, entry.hash],
  );
  if (entry.size === 0) return null;
  return (
    <section class="card readme" aria-label={entry.filename}>
      <h2 class="readme-title">{entry.filename}</h2>
      <Await loaded={text} what="Loading README">
        {(source) => (/\.(md|markdown)$/i.test(entry.filename) ? <Markdown source={source} resolve={(href, isImage) => resolveRelative(context, href, isImage)} /> : <pre class="plain">{source}</pre>)}
      </Await>
    </section>
  );
}

/**
 * A README's relative link, resolved against its directory: images to the file's bytes (through a file link when
 * a token is in use: an img cannot send it), others to its page.
 */
function resolveRelative(context: RepoContext, href: string, isImage: boolean): string | Promise<string> {
  const [target, fragment = ''] = href.split('#', 2);
  const parts = context.path === '' || target.startsWith('/') ? [] : context.path.split('/');
  for (const part of target.split('/')) {
    if (part === '..') parts.pop();
    else if (part !== '.' && part !== '') parts.push(part);
  }
  const resource = `${context.revision}/${parts.join('/')}`;
  const direct = client.repoUrl(context.namespace, context.repo, `/file/${encodeSegments(resource)}`);
  // A missing image stays a broken image (its address answers 404), not a README that fails to show.
  if (isImage) return client.token === null ? direct : client.fileLink(context.namespace, context.repo, resource).then((link) => link.url, () => direct);
  return repoHref(context.namespace, context.repo, target.endsWith('/') ? 'tree' : 'blob', resource) + (fragment ? `#${fragment}` : '');
}
