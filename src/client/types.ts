/**
 * The JSON shapes the Yoke API answers (Oxen's, with Yoke's additive fields), as the typed client returns them.
 * Field names are the wire names, so a reply can be used as it arrives.
 */

export interface Commit {
  id: string;
  parent_ids: string[];
  message: string;
  author: string;
  email: string;
  /** ISO 8601, UTC. */
  timestamp: string;
  root_hash: string;
}

export interface Repository {
  namespace: string;
  name: string;
  description: string | null;
  is_empty: boolean;
  latest_commit: Commit | null;
  branch_count: number;
  created_at: string;
}

export interface Branch {
  name: string;
  commit_id: string;
  created_at?: string;
  updated_at?: string;
  commit?: Commit | null;
}

export type DataType = 'dir' | 'text' | 'image' | 'video' | 'audio' | 'tabular' | 'binary';

/** Oxen's MetadataEntry: one file or directory. */
export interface Entry {
  filename: string;
  hash: string;
  is_dir: boolean;
  size: number;
  data_type: DataType;
  mime_type: string;
  extension: string;
  latest_commit: Commit | null;
  resource?: { commit: Commit | null; branch: Branch | null; path: string; version: string; resource: string } | null;
}

/** One line of `ls`: an entry below the listed directory. */
export interface ListedPath {
  path: string;
  type: 'dir' | 'file';
  /** A file's content hash, a directory's node id. */
  hash: string;
  size: number;
  /** null for a change a workspace has not committed. */
  last_commit_id: string | null;
}

export interface Pagination {
  page_number: number;
  page_size: number;
  total_pages: number;
  total_entries: number;
}

export interface DirPage extends Pagination {
  dir: Entry;
  entries: Entry[];
  /** `path` is the directory inside the repository, `version` the revision it was read at. */
  resource: { path: string; version: string };
}

export interface CommitPage extends Pagination {
  commits: Commit[];
}

export type ChangeStatus = 'added' | 'removed' | 'modified';

export interface ChangedEntry {
  status: ChangeStatus;
  path: string;
  filename: string;
  size: number;
  base_entry: { hash: string; size: number } | null;
  head_entry: { hash: string; size: number } | null;
}

export interface EntriesComparison extends Pagination {
  compare: {
    base_commit: Commit;
    head_commit: Commit;
    counts: { added: number; removed: number; modified: number };
    entries: ChangedEntry[];
  };
}

export interface DiffLine {
  modification: 'Added' | 'Removed' | 'Unchanged';
  text: string;
}

export interface FileComparison {
  status: ChangeStatus | 'unchanged';
  data_type: DataType;
  path: string;
  size: number;
  base_entry: Entry | null;
  head_entry: Entry | null;
  /** Null when the file is not text, or too large for a line diff. */
  diff: { lines: DiffLine[] } | null;
  base_commit: Commit;
  head_commit: Commit;
}

export interface CommitsComparison extends Pagination {
  compare: { base_commit: Commit; head_commit: Commit; commits: Array<Commit & { side: 'base' | 'head' }> };
}

export interface Mergeability {
  is_mergeable: boolean;
  conflicts: unknown[];
  /** The commits the head would bring into the base. */
  commits: Commit[];
}

export interface Workspace {
  id: string;
  name: string | null;
  branch_name: string;
  commit: Commit;
  created_at: string;
  updated_at: string;
}

/** One page of a data frame (`GET …/data_frames/{rev}/{path}`). */
export interface DataFramePage {
  data_frame: {
    source: { size: { height: number; width: number } };
    view: {
      data: Array<Record<string, unknown>>;
      schema: { fields: Array<{ name: string; dtype: string }> };
      pagination: Pagination;
    };
  };
}

/** The error envelope every 4xx/5xx JSON reply carries. */
export interface ErrorBody {
  status: 'error';
  status_message: string;
  status_description: string;
  error: { type: string; title: string; detail: string };
}

/** A short-lived address that reads one committed file without a token header (`POST file_links/…`). */
export interface FileLink {
  /** Path on the server (or, from the client, absolute on its baseUrl); pinned to the commit the revision named. */
  url: string;
  /** When it stops working; null when the server runs without auth (the address is then the plain one). */
  expires_at: string | null;
}

/** A saved row-by-row comparison of two tabular files (`compare/data_frames`), the parts the interface reads. */
export interface TableComparison {
  compare_id: string;
  dfs: {
    summary: { modifications: { added_rows: number; removed_rows: number; modified_rows: number } };
    schema_diff: {
      added_cols: Array<{ name: string; dtype: string }>;
      removed_cols: Array<{ name: string; dtype: string }>;
      retyped_cols: Array<{ name: string; dtype: string; previous_dtype: string }>;
    };
    source_schemas: { left: { fields: Array<{ name: string; dtype: string }> }; right: { fields: Array<{ name: string; dtype: string }> } };
    keys: Array<{ left: string | null; right: string | null }>;
  };
}

