import type {
  Branch,
  CommitPage,
  CommitsComparison,
  Commit,
  DataFramePage,
  DirPage,
  EntriesComparison,
  Entry,
  ErrorBody,
  FileLink,
  FileComparison,
  ListedPath,
  Mergeability,
  Repository,
  TableComparison,
  Workspace,
} from './types.js';

/**
 * A typed client of Yoke's HTTP API, for the web interface and (later) a command-line client. It uses only
 * `fetch`, `FormData` and `Blob`, so it runs in browsers and in Node ≥ 20 alike. Every method answers the
 * reply's payload or throws an `ApiError` carrying the server's status and message.
 */

/** A failed request: the HTTP status and the server's own explanation (its error envelope). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: ErrorBody | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Sends an upload body and reports how many bytes went out: browsers need XMLHttpRequest for that. */
export type UploadTransport = (request: { method: 'POST' | 'PUT'; url: string; headers: Record<string, string>; body: FormData | Blob; onProgress?: (sentBytes: number) => void }) => Promise<{ status: number; body: unknown }>;

/** Attempts per part of a large upload: a part lost to the network is sent again. */
const PART_ATTEMPTS = 3;

export interface ClientOptions {
  /** The server's origin, e.g. `http://localhost:3000`; '' for the page's own origin. */
  baseUrl?: string;
  /** A token secret (`yoke token create`), sent as `Authorization: Bearer …`. */
  token?: string | null;
  fetch?: typeof fetch;
  /** How multipart uploads are sent (default: fetch, without progress). */
  upload?: UploadTransport;
}

export interface Author {
  name: string;
  email: string;
}

export interface UploadFile {
  /** Destination relative to the directory uploaded into. */
  path: string;
  content: Blob;
}

/** Encodes each segment of a repository path or revision, keeping its slashes. */
export function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

export class YokeClient {
  readonly baseUrl: string;
  token: string | null;
  private readonly fetchImpl: typeof fetch;
  private readonly uploadImpl: UploadTransport;

  constructor(options: ClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? '').replace(/\/$/, '');
    this.token = options.token ?? null;
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
    this.uploadImpl = options.upload ?? ((request) => this.fetchUpload(request));
  }

  /** Headers every request carries (the token, when there is one). */
  headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.token ? { ...extra, authorization: `Bearer ${this.token}` } : extra;
  }

  /** `/api/repos/{namespace}/{repo}{rest}`, with the names encoded. */
  repoUrl(namespace: string, repo: string, rest = ''): string {
    return `${this.baseUrl}/api/repos/${encodeURIComponent(namespace)}/${encodeURIComponent(repo)}${rest}`;
  }

  /** Where a committed file's bytes are served (GET with Range). */
  fileUrl(namespace: string, repo: string, revision: string, path: string): string {
    return this.repoUrl(namespace, repo, `/file/${encodePath(revision)}/${encodePath(path)}`);
  }

  /** A request to the API (`url` absolute, or a path on `baseUrl`); JSON in and out, errors as `ApiError`. */
  async request<T>(method: string, url: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const init: RequestInit = { method, headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }), signal };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await this.fetchImpl(url.startsWith('http') ? url : this.baseUrl + url, init);
    const text = await response.text();
    let parsed: unknown = null;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      throw new ApiError(response.status, `${method} ${url}: not JSON (${response.status})`);
    }
    if (!response.ok) throw apiError(response.status, parsed);
    return parsed as T;
  }

  private get<T>(url: string, signal?: AbortSignal) {
    return this.request<T>('GET', url, undefined, signal);
  }

  // Server and repositories

  /** The server's version; open even with authentication on. */
  async version(): Promise<string> {
    return (await this.get<{ version: string }>(`${this.baseUrl}/api/version`)).version;
  }

  async namespaces(): Promise<string[]> {
    return (await this.get<{ namespaces: Array<{ namespace: string }> }>(`${this.baseUrl}/api/namespaces`)).namespaces.map((n) => n.namespace);
  }

  async repositories(namespace: string): Promise<Repository[]> {
    return (await this.get<{ repositories: Repository[] }>(`${this.baseUrl}/api/repos/${encodeURIComponent(namespace)}`)).repositories;
  }

  /** Every repository of every namespace, newest first. */
  async allRepositories(): Promise<Repository[]> {
    const lists = await Promise.all((await this.namespaces()).map((ns) => this.repositories(ns)));
    return lists.flat().sort((a, b) => b.created_at.localeCompare(a.created_at));
  }

  async repository(namespace: string, repo: string, signal?: AbortSignal): Promise<Repository> {
    return (await this.get<{ repository: Repository }>(this.repoUrl(namespace, repo), signal)).repository;
  }

  async createRepository(namespace: string, name: string, author: Author, description = ''): Promise<Repository> {
    return (await this.request<{ repository: Repository }>('POST', `${this.baseUrl}/api/repos`, { namespace, name, description, user: author })).repository;
  }

  // Branches

  async branches(namespace: string, repo: string, signal?: AbortSignal): Promise<Branch[]> {
    return (await this.get<{ branches: Branch[] }>(this.repoUrl(namespace, repo, '/branches'), signal)).branches;
  }

  async createBranch(namespace: string, repo: string, name: string, from: string): Promise<Branch> {
    return (await this.request<{ branch: Branch }>('POST', this.repoUrl(namespace, repo, '/branches'), { new_name: name, from_name: from })).branch;
  }

  /** Whether `head` merges cleanly into branch `base`, and the commits it would bring. */
  async mergeability(namespace: string, repo: string, base: string, head: string, signal?: AbortSignal): Promise<Mergeability> {
    return this.get<Mergeability>(this.repoUrl(namespace, repo, `/merge/${encodePath(base)}..${encodePath(head)}`), signal);
  }

  async merge(namespace: string, repo: string, base: string, head: string, author: Author): Promise<{ result: string }> {
    return this.request('POST', this.repoUrl(namespace, repo, `/merge/${encodePath(base)}..${encodePath(head)}`), author);
  }

  // Files and directories

  /** One page of a directory at `{revision}/{path}` (revision and path joined, as the API takes them). */
  async listDirectory(namespace: string, repo: string, resource: string, page = 1, pageSize = 100, signal?: AbortSignal): Promise<DirPage> {
    return this.get<DirPage>(this.repoUrl(namespace, repo, `/dir/${encodePath(resource)}?page=${page}&page_size=${pageSize}`), signal);
  }

  /**
   * Every entry of the directory at `{revision}/{path}` in name order (directories first), as the server streams
   * them: one reply however large the directory, read line by line. `recursive`: each directory is followed by
   * what is below it.
   */
  async *entries(namespace: string, repo: string, resource: string, options: { recursive?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<ListedPath> {
    const url = this.repoUrl(namespace, repo, `/ls/${encodePath(resource)}${options.recursive ? '?recursive=true' : ''}`);
    const response = await this.fetchImpl(url, { headers: this.headers(), signal: options.signal });
    if (!response.ok || response.body === null) {
      throw apiError(response.status, await response.json().catch(() => null));
    }
    let rest = '';
    for await (const chunk of response.body.pipeThrough(new TextDecoderStream()) as unknown as AsyncIterable<string>) {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop()!;
      for (const line of lines) yield JSON.parse(line) as ListedPath;
    }
    // Every line ends in a newline: anything left means the reply was cut short.
    if (rest !== '') throw new ApiError(response.status, `GET ${url}: the listing ended mid-line`);
  }

  /** The entry at `{revision}/{path}` with its latest commit. */
  async metadata(namespace: string, repo: string, resource: string, signal?: AbortSignal): Promise<Entry> {
    return (await this.get<{ entry: Entry }>(this.repoUrl(namespace, repo, `/meta/${encodePath(resource)}`), signal)).entry;
  }

  /** Bytes `[start, end]` (inclusive) of a committed file; the whole file without a range. */
  async readFile(namespace: string, repo: string, resource: string, range?: { start: number; end: number }, signal?: AbortSignal): Promise<Uint8Array> {
    const url = this.repoUrl(namespace, repo, `/file/${encodePath(resource)}`);
    const response = await this.fetchImpl(url, { headers: this.headers(range ? { range: `bytes=${range.start}-${range.end}` } : {}), signal });
    if (!response.ok) throw apiError(response.status, await response.json().catch(() => null));
    return new Uint8Array(await response.arrayBuffer());
  }

  /**
   * An address of a committed file that needs no token header, for elements that cannot send one (media
   * players, image tags, downloads): read-only, this one file, for minutes (docs/UI.md). Absolute on `baseUrl`.
   */
  async fileLink(namespace: string, repo: string, resource: string, signal?: AbortSignal): Promise<FileLink> {
    const { link } = await this.request<{ link: FileLink }>('POST', this.repoUrl(namespace, repo, `/file_links/${encodePath(resource)}`), undefined, signal);
    return { ...link, url: this.baseUrl + link.url };
  }

  /** A page of a CSV/TSV/JSONL/Parquet file as a table (the data-frame routes). */
  async dataFrame(namespace: string, repo: string, resource: string, page: number, pageSize: number, signal?: AbortSignal): Promise<DataFramePage> {
    return this.get<DataFramePage>(this.repoUrl(namespace, repo, `/data_frames/${encodePath(resource)}?page=${page}&page_size=${pageSize}`), signal);
  }

  // History and comparisons

  /** Commits of a revision, or of one path (`{revision}/{path}`), newest first. */
  async history(namespace: string, repo: string, resource: string, page = 1, pageSize = 50, signal?: AbortSignal): Promise<CommitPage> {
    return this.get<CommitPage>(this.repoUrl(namespace, repo, `/commits/history/${encodePath(resource)}?page=${page}&page_size=${pageSize}`), signal);
  }

  async commit(namespace: string, repo: string, id: string, signal?: AbortSignal): Promise<Commit> {
    return (await this.get<{ commit: Commit }>(this.repoUrl(namespace, repo, `/commits/${encodeURIComponent(id)}`), signal)).commit;
  }

  /** Files added, removed and modified from `base` to `head`. */
  async compareEntries(namespace: string, repo: string, base: string, head: string, page = 1, pageSize = 100, signal?: AbortSignal): Promise<EntriesComparison> {
    return this.get<EntriesComparison>(this.repoUrl(namespace, repo, `/compare/entries/${encodePath(base)}..${encodePath(head)}?page=${page}&page_size=${pageSize}`), signal);
  }

  /** One file in two revisions, with a line diff for text. */
  async compareFile(namespace: string, repo: string, base: string, head: string, path: string, signal?: AbortSignal): Promise<FileComparison> {
    return (await this.get<{ compare: FileComparison }>(this.repoUrl(namespace, repo, `/compare/file/${encodePath(base)}..${encodePath(head)}/${encodePath(path)}`), signal)).compare;
  }

  /** Commits on either side since the merge base (`base...head`), each tagged with its side. */
  async compareCommits(namespace: string, repo: string, base: string, head: string, pageSize = 100, signal?: AbortSignal): Promise<CommitsComparison> {
    return this.get<CommitsComparison>(this.repoUrl(namespace, repo, `/compare/commits/${encodePath(base)}...${encodePath(head)}?page_size=${pageSize}`), signal);
  }

  /**
   * Compares a tabular file between two revisions row by row, matching rows by `keys` (none: whole rows), and
   * saves the comparison as `id` (replacing one of that id). Needs write access: comparisons are stored.
   */
  async compareTables(namespace: string, repo: string, id: string, files: { path: string; base: string; head: string }, keys: string[], signal?: AbortSignal): Promise<TableComparison> {
    const body = { left: { path: files.path, version: files.base }, right: { path: files.path, version: files.head }, keys: keys.map((k) => ({ left: k, right: k })), compare: [], display: [] };
    return this.request<TableComparison>('PUT', this.repoUrl(namespace, repo, `/compare/data_frames/${encodeURIComponent(id)}`), body, signal);
  }

  /** A page of a saved comparison's changed rows, each with its `_oxen_diff_status` (added, removed, modified). */
  async comparedRows(namespace: string, repo: string, id: string, page: number, pageSize: number, signal?: AbortSignal): Promise<DataFramePage> {
    return this.get<DataFramePage>(this.repoUrl(namespace, repo, `/compare/data_frames/${encodeURIComponent(id)}/diff?page=${page}&page_size=${pageSize}`), signal);
  }

  // Workspaces and uploads

  async workspaces(namespace: string, repo: string, signal?: AbortSignal): Promise<Workspace[]> {
    return (await this.get<{ workspaces: Workspace[] }>(this.repoUrl(namespace, repo, '/workspaces'), signal)).workspaces;
  }

  async createWorkspace(namespace: string, repo: string, branch: string, id: string): Promise<Workspace> {
    return (await this.request<{ workspace: Workspace }>('PUT', this.repoUrl(namespace, repo, '/workspaces'), { workspace_id: id, branch_name: branch })).workspace;
  }

  async deleteWorkspace(namespace: string, repo: string, id: string): Promise<void> {
    await this.request('DELETE', this.repoUrl(namespace, repo, `/workspaces/${encodeURIComponent(id)}`));
  }

  /**
   * Stages files into directory `dir` of a workspace in one multipart request (each part named by its
   * destination). `onProgress` hears the bytes sent so far when the transport can tell.
   */
  async stageFiles(namespace: string, repo: string, workspaceId: string, dir: string, files: UploadFile[], onProgress?: (sentBytes: number) => void): Promise<{ paths: string[]; err_files: Array<{ path: string; error: string }> }> {
    const body = new FormData();
    for (const file of files) body.append('file[]', file.content, file.path);
    const url = this.repoUrl(namespace, repo, `/workspaces/${encodeURIComponent(workspaceId)}/files/${encodePath(dir)}`);
    const reply = await this.uploadImpl({ method: 'POST', url, headers: this.headers(), body, onProgress });
    if (reply.status < 200 || reply.status >= 300) throw apiError(reply.status, reply.body);
    return reply.body as { paths: string[]; err_files: Array<{ path: string; error: string }> };
  }

  /**
   * Stages one large file at `path` of a workspace through numbered parts (`POST versions/uploads`, then
   * `PUT …/parts/{n}`): each part is its own request, sent again after a failure, and the server verifies the
   * whole file against `hash` (its xxh3-128, which the caller computes) before staging it. Bytes the server
   * already holds are not sent at all: neither a whole file it has, nor the parts an interrupted upload of the
   * same file left (the server keeps them for a day; `GET versions/{hash}/chunks` lists them).
   */
  async stageLargeFile(namespace: string, repo: string, workspaceId: string, path: string, content: Blob, hash: string, onProgress?: (sentBytes: number) => void): Promise<void> {
    const begun = await this.request<{ file: 'already_stored' | 'awaiting_parts'; upload_id?: string; part_size?: number; num_parts?: number }>(
      'POST',
      this.repoUrl(namespace, repo, '/versions/uploads'),
      { hash, size: content.size, destination: { workspace_id: workspaceId, path } },
    );
    if (begun.file === 'already_stored') return onProgress?.(content.size);
    const { upload_id: uploadId, part_size: partSize, num_parts: parts } = begun as Required<typeof begun>;
    const held = await this.heldParts(namespace, repo, hash, partSize, content.size);
    for (let part = 1; part <= parts; part++) {
      const start = (part - 1) * partSize;
      if (held.has(part)) {
        onProgress?.(Math.min(start + partSize, content.size));
        continue;
      }
      const url = this.repoUrl(namespace, repo, `/versions/uploads/${encodeURIComponent(uploadId)}/parts/${part}`);
      for (let attempt = 1; ; attempt++) {
        const reply = await this.uploadImpl({ method: 'PUT', url, headers: this.headers({ 'content-type': 'application/octet-stream' }), body: content.slice(start, start + partSize), onProgress: (sent) => onProgress?.(start + sent) }).catch((err: Error) => ({ status: 0, body: err.message }));
        if (reply.status >= 200 && reply.status < 300) break;
        const retriable = reply.status === 0 || reply.status >= 500;
        if (!retriable || attempt === PART_ATTEMPTS) throw reply.status === 0 ? new ApiError(0, String(reply.body)) : apiError(reply.status, reply.body);
      }
    }
    onProgress?.(content.size);
  }

  /** The numbers of the parts of a numbered-part upload that the server holds whole (offset and length exact). */
  private async heldParts(namespace: string, repo: string, hash: string, partSize: number, size: number): Promise<Set<number>> {
    const status = await this.get<{ chunks: Array<{ offset: number; size: number }> }>(this.repoUrl(namespace, repo, `/versions/${encodeURIComponent(hash)}/chunks`));
    const held = new Set<number>();
    for (const { offset, size: length } of status.chunks) {
      const part = offset / partSize + 1;
      if (Number.isInteger(part) && length === Math.min(partSize, size - offset)) held.add(part);
    }
    return held;
  }

  /** Commits everything staged in the workspace onto `branch`. */
  async commitWorkspace(namespace: string, repo: string, workspaceId: string, branch: string, message: string, author: Author): Promise<Commit> {
    const url = this.repoUrl(namespace, repo, `/workspaces/${encodeURIComponent(workspaceId)}/commit/${encodePath(branch)}`);
    return (await this.request<{ commit: Commit }>('POST', url, { message, author: author.name, email: author.email })).commit;
  }

  private async fetchUpload(request: Parameters<UploadTransport>[0]): Promise<{ status: number; body: unknown }> {
    const response = await this.fetchImpl(request.url, { method: request.method, headers: request.headers, body: request.body });
    return { status: response.status, body: await response.json().catch(() => null) };
  }
}

function apiError(status: number, body: unknown): ApiError {
  const envelope = body && typeof body === 'object' && 'status_description' in body ? (body as ErrorBody) : null;
  return new ApiError(status, envelope?.status_description ?? envelope?.error?.detail ?? `HTTP ${status}`, envelope);
}
