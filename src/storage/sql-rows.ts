/**
 * Row shapes both SQL metadata stores (SQLite, PostgreSQL) read, and their mapping to records: the
 * two schemas name and type their columns alike.
 */
import type { BranchRecord, CommitRecord, RepoRecord, TokenRecord, UploadFrontier, UploadPart, UploadRecord, WorkspaceRecord } from './meta-store.js';

export interface RepoRow {
  id: string;
  namespace: string;
  name: string;
  description: string | null;
  creator_name: string | null;
  creator_email: string | null;
  created_at: string;
}
export interface BranchRow {
  name: string;
  commit_id: string;
  created_at: string;
  updated_at: string;
}
export interface CommitRow {
  id: string;
  parent_ids: string;
  message: string;
  author: string;
  email: string;
  timestamp: string;
  root_id: string;
  generation: number;
}
export interface UploadRow {
  id: string;
  repo_id: string;
  kind: UploadRecord['kind'];
  key: string;
  total_size: number | null;
  total_chunks: number | null;
  details: string;
  state: UploadRecord['state'];
  created_at: string;
  updated_at: string;
}
export interface UploadPartRow {
  part: number;
  at_offset: number | null;
  size: number;
  tag: string;
}
export interface UploadFrontierRow {
  frontier_through: number;
  frontier_state: Uint8Array | null;
  frontier_reading_to: number;
  frontier_generation: number;
}
export interface WorkspaceRow {
  uid: string;
  repo_id: string;
  id: string;
  name: string | null;
  branch: string;
  base_commit_id: string;
  created_at: string;
  updated_at: string;
}
export interface TokenRow {
  id: string;
  name: string;
  email: string;
  scopes: string;
  secret_hash: string;
  created_at: string;
  expires_at: string | null;
}

export const toRepo = (r: RepoRow): RepoRecord => ({
  id: r.id,
  namespace: r.namespace,
  name: r.name,
  description: r.description,
  creatorName: r.creator_name,
  creatorEmail: r.creator_email,
  createdAt: r.created_at,
});
export const toBranch = (r: BranchRow): BranchRecord => ({ name: r.name, commitId: r.commit_id, createdAt: r.created_at, updatedAt: r.updated_at });
export const toCommit = (r: CommitRow): CommitRecord => ({
  id: r.id,
  parentIds: JSON.parse(r.parent_ids) as string[],
  message: r.message,
  author: r.author,
  email: r.email,
  timestamp: r.timestamp,
  rootId: r.root_id,
  generation: r.generation,
});
export const toUpload = (r: UploadRow): UploadRecord => ({
  id: r.id,
  repoId: r.repo_id,
  kind: r.kind,
  key: r.key,
  totalSize: r.total_size,
  totalChunks: r.total_chunks,
  details: JSON.parse(r.details) as Record<string, unknown>,
  state: r.state,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});
export const toUploadPart = (r: UploadPartRow): UploadPart => ({ part: r.part, offset: r.at_offset, size: r.size, tag: r.tag });
export const toUploadFrontier = (r: UploadFrontierRow): UploadFrontier => ({
  through: r.frontier_through,
  state: r.frontier_state === null ? null : new Uint8Array(r.frontier_state),
  readingTo: r.frontier_reading_to,
  generation: r.frontier_generation,
});
/** The upload columns a frontier is read from. */
export const FRONTIER_COLUMNS = 'frontier_through, frontier_state, frontier_reading_to, frontier_generation';
export const toWorkspace = (r: WorkspaceRow): WorkspaceRecord => ({
  uid: r.uid,
  id: r.id,
  repoId: r.repo_id,
  name: r.name,
  branch: r.branch,
  baseCommitId: r.base_commit_id,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});
export const toToken = (r: TokenRow): TokenRecord => ({
  id: r.id,
  name: r.name,
  email: r.email,
  scopes: JSON.parse(r.scopes) as string[],
  secretHash: r.secret_hash,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
});
