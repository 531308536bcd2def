import { useState } from 'preact/hooks';
import type { UploadFile } from '../../../src/client/index.js';
import { client, reloadAll } from '../api.js';
import { loadAuthor, saveAuthor } from '../author.js';
import { Breadcrumbs } from '../components.js';
import { formatBytes, joinPath, resourceOf } from '../format.js';
import { navigate, repoHref } from '../router.js';
import type { RepoContext } from './repo.js';

/** One request carries small files up to about this many bytes, so progress moves and a failure costs little. */
const BATCH_BYTES = 32 * 1024 * 1024;
const BATCH_FILES = 500;
/** Larger files go in numbered parts, each its own request, sent again when one fails. */
const LARGE_FILE_BYTES = BATCH_BYTES;

type Progress =
  | { phase: 'idle' }
  | { phase: 'hashing'; name: string; hashed: number; size: number }
  | { phase: 'uploading'; sent: number; total: number }
  | { phase: 'committing' }
  | { phase: 'failed'; message: string };

/**
 * `upload/{branch}/{dir}`: files or a folder dropped or chosen here are staged in a fresh workspace (the API's
 * own upload endpoint, in batches, with progress), then committed onto the branch with a message.
 */
export function UploadView({ context }: { context: RepoContext }) {
  const { namespace, repo, revision, path } = context;
  const branch = context.branches.length === 0 ? 'main' : revision;
  const [files, setFiles] = useState<UploadFile[]>([]);
  const [progress, setProgress] = useState<Progress>({ phase: 'idle' });
  const [dragging, setDragging] = useState(false);
  /** What the user typed; until then a message is suggested from the files. */
  const [message, setMessage] = useState<string | null>(null);
  const author = loadAuthor();
  const add = (more: UploadFile[]) => setFiles((old) => [...old.filter((f) => !more.some((m) => m.path === f.path)), ...more]);
  const total = files.reduce((sum, f) => sum + f.content.size, 0);
  const isBranch = context.branches.length === 0 || context.branches.some((b) => b.name === revision);

  const submit = async (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    const who = { name: String(form.get('author')).trim(), email: String(form.get('email')).trim() };
    saveAuthor(who);
    const workspaceId = crypto.randomUUID();
    try {
      setProgress({ phase: 'uploading', sent: 0, total });
      await client.createWorkspace(namespace, repo, branch, workspaceId);
      let done = 0;
      for (const batch of batches(files.filter((f) => f.content.size <= LARGE_FILE_BYTES))) {
        const result = await client.stageFiles(namespace, repo, workspaceId, path, batch, (sent) => setProgress({ phase: 'uploading', sent: done + Math.min(sent, batchBytes(batch)), total }));
        if (result.err_files.length > 0) throw new Error(`Not uploaded: ${result.err_files.map((f) => `${f.path} (${f.error})`).join(', ')}`);
        done += batchBytes(batch);
        setProgress({ phase: 'uploading', sent: done, total });
      }
      for (const file of files.filter((f) => f.content.size > LARGE_FILE_BYTES)) {
        const { contentHash } = await import('../hash.js');
        const hash = await contentHash(file.content, (hashed) => setProgress({ phase: 'hashing', name: file.path, hashed, size: file.content.size }));
        await client.stageLargeFile(namespace, repo, workspaceId, joinPath(path, file.path), file.content, hash, (sent) => setProgress({ phase: 'uploading', sent: done + sent, total }));
        done += file.content.size;
      }
      setProgress({ phase: 'committing' });
      await client.commitWorkspace(namespace, repo, workspaceId, branch, String(form.get('message')).trim(), who);
      navigate(repoHref(namespace, repo, 'tree', resourceOf(branch, path)));
      reloadAll();
    } catch (err) {
      setProgress({ phase: 'failed', message: (err as Error).message });
      client.deleteWorkspace(namespace, repo, workspaceId).catch(() => {});
    }
  };

  if (!isBranch) return <p class="notice">Uploads go onto a branch; {revision} is a commit. Choose a branch first.</p>;
  const busy = progress.phase === 'hashing' || progress.phase === 'uploading' || progress.phase === 'committing';
  return (
    <form class="upload" onSubmit={submit}>
      <div class="toolbar">
        <span>
          Upload to <strong>{branch}</strong> in
        </span>
        <Breadcrumbs namespace={namespace} repo={repo} revision={branch} path={path} />
      </div>
      <div
        class={`dropzone${dragging ? ' dragging' : ''}`}
        onDragOver={(event) => {
          event.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={async (event) => {
          event.preventDefault();
          setDragging(false);
          if (event.dataTransfer) add(await droppedFiles(event.dataTransfer));
        }}
      >
        <p>Drop files or a folder here, or</p>
        <div class="row">
          <label class="button">
            Choose files
            <input class="visually-hidden" type="file" multiple onChange={(e) => add(chosenFiles(e.target as HTMLInputElement))} />
          </label>
          <label class="button">
            Choose a folder
            <input class="visually-hidden" type="file" {...{ webkitdirectory: true }} onChange={(e) => add(chosenFiles(e.target as HTMLInputElement))} />
          </label>
        </div>
      </div>
      {files.length > 0 && (
        <>
          <p class="muted small">
            {files.length} {files.length === 1 ? 'file' : 'files'}, {formatBytes(total)}{' '}
            <button type="button" class="link" onClick={() => setFiles([])} disabled={busy}>
              Clear
            </button>
          </p>
          <ul class="upload-list">
            {files.slice(0, 200).map((f) => (
              <li key={f.path}>
                {f.path} <span class="muted small">{formatBytes(f.content.size)}</span>
              </li>
            ))}
            {files.length > 200 && <li class="muted">and {files.length - 200} more</li>}
          </ul>
        </>
      )}
      <div class="form-grid">
        <label for="upload-message">Commit message</label>
        <input id="upload-message" name="message" required value={message ?? suggestedMessage(files)} onInput={(e) => setMessage((e.target as HTMLInputElement).value)} />
        <label for="upload-author">Your name</label>
        <input id="upload-author" name="author" required defaultValue={author.name} />
        <label for="upload-email">Your email</label>
        <input id="upload-email" name="email" type="email" required defaultValue={author.email} />
        <span />
        <div>
          <button type="submit" class="primary" disabled={files.length === 0 || busy}>
            Upload and commit
          </button>
        </div>
      </div>
      {progress.phase === 'uploading' && (
        <div class="progress" role="status">
          <progress value={progress.sent} max={Math.max(progress.total, 1)} />
          <span>
            Uploading {formatBytes(progress.sent)} of {formatBytes(progress.total)} ({progress.total === 0 ? 100 : Math.floor((progress.sent / progress.total) * 100)}%)
          </span>
        </div>
      )}
      {progress.phase === 'hashing' && (
        <div class="progress" role="status">
          <progress value={progress.hashed} max={Math.max(progress.size, 1)} />
          <span>
            Reading {progress.name}: {formatBytes(progress.hashed)} of {formatBytes(progress.size)}
          </span>
        </div>
      )}
      {progress.phase === 'committing' && (
        <p role="status" class="progress">
          Committing…
        </p>
      )}
      {progress.phase === 'failed' && (
        <p class="error" role="alert">
          {progress.message}
        </p>
      )}
    </form>
  );
}

function suggestedMessage(files: UploadFile[]): string {
  return files.length === 0 ? '' : files.length === 1 ? `Add ${files[0].path}` : `Add ${files.length} files`;
}

function batchBytes(batch: UploadFile[]): number {
  return batch.reduce((sum, f) => sum + f.content.size, 0);
}

function* batches(files: UploadFile[]): Generator<UploadFile[]> {
  let batch: UploadFile[] = [];
  let bytes = 0;
  for (const file of files) {
    if (batch.length > 0 && (bytes + file.content.size > BATCH_BYTES || batch.length >= BATCH_FILES)) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(file);
    bytes += file.content.size;
  }
  if (batch.length > 0) yield batch;
}

/** Files from an input: a folder's keep their path below the chosen folder's parent. */
function chosenFiles(input: HTMLInputElement): UploadFile[] {
  const files = [...(input.files ?? [])].map((file) => ({ path: file.webkitRelativePath || file.name, content: file as Blob }));
  input.value = '';
  return files;
}

/** Files and folders dropped on the page, folders walked recursively. */
async function droppedFiles(transfer: DataTransfer): Promise<UploadFile[]> {
  const entries = [...transfer.items].map((item) => item.webkitGetAsEntry()).filter((e): e is FileSystemEntry => e !== null);
  if (entries.length === 0) return [...transfer.files].map((file) => ({ path: file.name, content: file }));
  const found: UploadFile[] = [];
  const walk = async (entry: FileSystemEntry, prefix: string): Promise<void> => {
    if (entry.isFile) {
      const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
      found.push({ path: prefix + entry.name, content: file });
      return;
    }
    const reader = (entry as FileSystemDirectoryEntry).createReader();
    // readEntries answers in batches until an empty one.
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
      if (batch.length === 0) break;
      for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
    }
  };
  for (const entry of entries) await walk(entry, '');
  return found;
}
