import { BadRequest } from '../core/errors.js';
import { describeFile } from '../core/mime.js';
import type { DirEntry, FileEntry } from '../core/tree.js';
import type { BranchRecord, CommitRecord, RepoRecord } from '../services/records.js';
import { MIN_OXEN_CLIENT_VERSION } from './envelope.js';

/** JSON shapes of the API (Oxen's, with additive fields). */

export function commitView(c: CommitRecord) {
  return {
    id: c.id,
    parent_ids: c.parentIds,
    message: c.message,
    author: c.author,
    email: c.email,
    timestamp: c.timestamp,
    root_hash: c.rootId,
  };
}

export function branchView(b: BranchRecord) {
  return { name: b.name, commit_id: b.commitId, created_at: b.createdAt, updated_at: b.updatedAt };
}

export function repoView(r: RepoRecord, extra: { latestCommit: CommitRecord | null; branchCount: number }) {
  return {
    namespace: r.namespace,
    name: r.name,
    description: r.description,
    min_version: MIN_OXEN_CLIENT_VERSION,
    is_empty: extra.latestCommit === null,
    storage_kind: 'local',
    latest_commit: extra.latestCommit ? commitView(extra.latestCommit) : null,
    branch_count: extra.branchCount,
    created_at: r.createdAt,
    repo_uuid: r.id,
  };
}

/**
 * Oxen's MetadataEntry for a file or directory. Its client decodes this struct with
 * `deny_unknown_fields`, so an entry carries exactly these fields (plus `children` when listed
 * with depth) and nothing of Yoke's own.
 */
export function entryView(entry: Pick<FileEntry, 'kind' | 'name' | 'hash' | 'size'> | Pick<DirEntry, 'kind' | 'name' | 'id' | 'size'>, latestCommit: CommitRecord | null = null, resource: object | null = null) {
  const latest = latestCommit ? commitView(latestCommit) : null;
  // Two literals, no spread of shared fields: the spread cost 4 µs per entry, most of a 10,000-entry listing's time.
  if (entry.kind === 'dir') {
    return { filename: entry.name, latest_commit: latest, resource, metadata: null, is_queryable: null, hash: entry.id, is_dir: true, size: entry.size, data_type: 'dir', mime_type: 'inode/directory', extension: '' };
  }
  const { mimeType, dataType, extension } = describeFile(entry.name);
  return { filename: entry.name, latest_commit: latest, resource, metadata: null, is_queryable: null, hash: entry.hash, is_dir: false, size: entry.size, data_type: dataType, mime_type: mimeType, extension };
}

/** A staged file in a workspace's status: a MetadataEntry named by its full path, not yet committed. */
export function stagedEntryView(path: string, hash: string, size: number) {
  return entryView({ kind: 'file', name: path, hash, size });
}

export interface PageQuery {
  page?: unknown;
  page_size?: unknown;
}

export const MAX_PAGE_SIZE = 10_000;

/** 1-based pages, default size 100 (COMPAT: pagination). */
export function pageParams(query: PageQuery) {
  const page = query.page === undefined ? 1 : Number(query.page);
  const pageSize = query.page_size === undefined ? 100 : Number(query.page_size);
  if (!Number.isInteger(page) || page < 0) throw new BadRequest(`Invalid page: ${String(query.page)}`);
  if (!Number.isInteger(pageSize) || pageSize < 1) throw new BadRequest(`Invalid page_size: ${String(query.page_size)}`);
  // Oxen treats page 0 as page 1.
  const effectivePage = Math.max(1, page);
  const size = Math.min(MAX_PAGE_SIZE, pageSize);
  const offset = (effectivePage - 1) * size;
  // Past 2^53 the offset is no longer an integer, and SQLite refuses it.
  if (!Number.isSafeInteger(offset)) throw new BadRequest(`Invalid page: ${String(query.page)} is past any page there can be`);
  return { page: effectivePage, pageSize: size, offset };
}

export function pageView(page: number, pageSize: number, totalEntries: number) {
  return {
    page_number: page,
    page_size: pageSize,
    total_pages: Math.max(1, Math.ceil(totalEntries / pageSize)),
    total_entries: totalEntries,
  };
}
