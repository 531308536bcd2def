/**
 * The records services hand to the server layer. They are the stores' own shapes, named here so
 * that routes read them from services and never import from `src/storage/`.
 */
export type { BranchRecord, CommitRecord, RepoRecord, WorkspaceRecord } from '../storage/meta-store.js';
export type { ByteRange, PutResult } from '../storage/blob-store.js';
