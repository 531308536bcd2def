import { useState } from 'preact/hooks';
import type { DirPage, Entry } from '../../../src/client/index.js';
import { client, useMediaUrl } from '../api.js';
import { joinPath, resourceOf } from '../format.js';
import { repoHref } from '../router.js';
import type { RepoContext } from './repo.js';

/** The images of a directory as a grid of thumbnails, a page at a time. */
export function Gallery({ context, first }: { context: RepoContext; first: DirPage }) {
  const { namespace, repo, revision, path } = context;
  const [entries, setEntries] = useState<Entry[]>(first.entries);
  const [page, setPage] = useState(1);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const more = async () => {
    setBusy(true);
    setError(null);
    try {
      const next = await client.listDirectory(namespace, repo, resourceOf(revision, path), page + 1, first.page_size);
      setEntries((old) => [...old, ...next.entries]);
      setPage(page + 1);
    } catch (err) {
      setError(`More images could not be loaded: ${(err as Error).message}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <ul class="gallery">
        {entries
          .filter((e) => e.data_type === 'image')
          .map((entry) => (
            <li key={entry.filename}>
              <a href={repoHref(namespace, repo, 'blob', `${revision}/${joinPath(path, entry.filename)}`)}>
                <Thumbnail context={context} entry={entry} />
                <span class="small">{entry.filename}</span>
              </a>
            </li>
          ))}
      </ul>
      {page < first.total_pages && (
        <button type="button" onClick={more} disabled={busy}>
          Show more
        </button>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </>
  );
}

function Thumbnail({ context, entry }: { context: RepoContext; entry: Entry }) {
  const [url] = useMediaUrl(context.namespace, context.repo, `${context.revision}/${joinPath(context.path, entry.filename)}`);
  return url.state === 'done' ? <img src={url.value} alt="" loading="lazy" decoding="async" /> : <span class="thumb-placeholder" />;
}
