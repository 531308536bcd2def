import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { Conflict, NotFound } from '../core/errors.js';
import { FRONTIER_COLUMNS, toRepo, toBranch, toCommit, toUpload, toUploadFrontier, toUploadPart, toWorkspace, toToken, type RepoRow, type BranchRow, type CommitRow, type UploadFrontierRow, type UploadPartRow, type UploadRow, type WorkspaceRow, type TokenRow } from './sql-rows.js';
import type {
  BranchRecord,
  CommitLanding,
  CommitRecord,
  FrameComparisonRecord,
  FrameLogHead,
  FrameOpRecord,
  MetaStore,
  NewRepo,
  NewUpload,
  Page,
  RepoRecord,
  StagedChange,
  TokenRecord,
  UploadFrontier,
  UploadPart,
  UploadRecord,
  WorkspaceRecord,
} from './meta-store.js';
import type { HashFrontier } from './blob-store.js';

/** 2: tree nodes are Oxen node records (before: Yoke's own JSON nodes). */
const SCHEMA_VERSION = 2;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS repos (
  id TEXT PRIMARY KEY,
  namespace TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT,
  creator_name TEXT,
  creator_email TEXT,
  created_at TEXT NOT NULL,
  UNIQUE (namespace, name)
);
CREATE TABLE IF NOT EXISTS branches (
  repo_id TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  commit_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (repo_id, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS commits (
  repo_id TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
  id TEXT NOT NULL,
  parent_ids TEXT NOT NULL,
  message TEXT NOT NULL,
  author TEXT NOT NULL,
  email TEXT NOT NULL,
  timestamp TEXT NOT NULL,
  root_id TEXT NOT NULL,
  generation INTEGER NOT NULL,
  stored_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (repo_id, id)
);
CREATE INDEX IF NOT EXISTS commits_by_time ON commits (repo_id, timestamp);
CREATE TABLE IF NOT EXISTS commit_parents (
  repo_id TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
  commit_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  parent_id TEXT NOT NULL,
  PRIMARY KEY (repo_id, commit_id, position)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tree_nodes (
  repo_id TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
  id TEXT NOT NULL,
  data BLOB NOT NULL,
  stored_at INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (repo_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tokens (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  email TEXT NOT NULL,
  scopes TEXT NOT NULL,
  secret_hash TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL,
  expires_at TEXT
);
CREATE TABLE IF NOT EXISTS received_commits (
  repo_id TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
  commit_id TEXT NOT NULL,
  PRIMARY KEY (repo_id, commit_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS repo_blobs (
  repo_id TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
  hash TEXT NOT NULL,
  size INTEGER NOT NULL,
  PRIMARY KEY (repo_id, hash)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
  id TEXT PRIMARY KEY,
  repo_id TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  total_size INTEGER,
  total_chunks INTEGER,
  details TEXT NOT NULL,
  state TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (repo_id, kind, key)
);
CREATE INDEX IF NOT EXISTS uploads_by_activity ON uploads (updated_at);
CREATE TABLE IF NOT EXISTS workspaces (
  uid TEXT PRIMARY KEY,
  repo_id TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
  id TEXT NOT NULL,
  name TEXT,
  branch TEXT NOT NULL,
  base_commit_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (repo_id, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS workspaces_by_name ON workspaces (repo_id, name) WHERE name IS NOT NULL;
CREATE TABLE IF NOT EXISTS staged_changes (
  workspace_uid TEXT NOT NULL REFERENCES workspaces(uid) ON DELETE CASCADE,
  path TEXT NOT NULL,
  hash TEXT,
  size INTEGER NOT NULL,
  PRIMARY KEY (workspace_uid, path)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS frame_ops (
  workspace_uid TEXT NOT NULL REFERENCES workspaces(uid) ON DELETE CASCADE,
  path TEXT NOT NULL,
  seq INTEGER NOT NULL,
  op TEXT NOT NULL,
  PRIMARY KEY (workspace_uid, path, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS frame_comparisons (
  repo_id TEXT NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
  id TEXT NOT NULL,
  definition TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (repo_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS upload_parts (
  upload_id TEXT NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
  part INTEGER NOT NULL,
  size INTEGER NOT NULL,
  PRIMARY KEY (upload_id, part)
) WITHOUT ROWID;
`;

/** Address space SQLite may map for reads (not memory: pages come from the OS cache). */
const SQLITE_MMAP_BYTES = 1024 * 1024 * 1024;

// CROSS JOIN keeps anc as the outer loop of the recursive step, each row one primary-key search of
// its parents. With a plain JOIN, SQLite 3.53 (better-sqlite3 12) put commit_parents outside and
// scanned every parent row of the repository once per ancestor: quadratic, 1 s for 5,000 commits.
const ANCESTORS = `WITH RECURSIVE anc(id) AS (
  SELECT @head
  UNION
  SELECT p.parent_id FROM anc CROSS JOIN commit_parents p ON p.repo_id = @repo AND p.commit_id = anc.id
)`;
const COMMIT_COLUMNS = 'c.id, c.parent_ids, c.message, c.author, c.email, c.timestamp, c.root_id, c.generation';

/** The embedded metadata store: one SQLite file in WAL mode, one connection, short transactions. */
export class SqliteMetaStore implements MetaStore {
  private readonly db: Database.Database;
  private readonly stmt: Record<string, Database.Statement>;
  /** `findBranches` statements by number of names (resource paths are short, so few arities). */
  private readonly findBranchStatements = new Map<number, Database.Statement>();

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode is durable against process crashes; an OS crash may drop the last
    // transactions but never corrupts the database.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    // Reads through a memory map: a cold listing of a large directory reads thousands of node rows, each a
    // pread and a copy otherwise (13,000 random rows: 265 → 125 ms; the cold first page of a 100,000-entry directory
    // 680 → 600 ms). Writes still go through the journal as before.
    this.db.pragma(`mmap_size = ${SQLITE_MMAP_BYTES}`);
    const version = this.db.pragma('user_version', { simple: true }) as number;
    const used = this.db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'tree_nodes'").get() as { n: number };
    if (version < SCHEMA_VERSION && used.n > 0) {
      throw new Error(
        `${file} was written by an older Yoke whose trees are not in Oxen's node format (schema ${version}, this Yoke needs ${SCHEMA_VERSION}); ` +
          'start with a new data directory and push the repositories into it again',
      );
    }
    // One transaction: a kill part-way through a first start must not leave tables without the
    // user_version that says what they are (the next start would take them for an older Yoke's).
    this.db.transaction(() => {
      this.db.exec(SCHEMA);
      // Added after schema 2 was first written: which process holds an upload's assembly.
      const uploadColumns = this.db.prepare('PRAGMA table_info(uploads)').all() as Array<{ name: string }>;
      if (!uploadColumns.some((c) => c.name === 'claimed_by')) this.db.exec('ALTER TABLE uploads ADD COLUMN claimed_by TEXT');
      // Staging shaped like S3 multipart uploads: the hash frontier, and who writes which part where.
      if (!uploadColumns.some((c) => c.name === 'frontier_through')) {
        this.db.exec(`ALTER TABLE uploads ADD COLUMN frontier_through INTEGER NOT NULL DEFAULT 0;
          ALTER TABLE uploads ADD COLUMN frontier_state BLOB;
          ALTER TABLE uploads ADD COLUMN frontier_reading_to INTEGER NOT NULL DEFAULT 0;
          ALTER TABLE uploads ADD COLUMN frontier_generation INTEGER NOT NULL DEFAULT 0;
          ALTER TABLE upload_parts ADD COLUMN at_offset INTEGER;
          ALTER TABLE upload_parts ADD COLUMN tag TEXT NOT NULL DEFAULT '';
          ALTER TABLE upload_parts ADD COLUMN writer TEXT;`);
      }
      // Also added later: when nodes and commits were stored, for gc's grace period (0: before gc existed).
      for (const table of ['tree_nodes', 'commits']) {
        const columns = this.db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>;
        if (!columns.some((c) => c.name === 'stored_at')) this.db.exec(`ALTER TABLE ${table} ADD COLUMN stored_at INTEGER NOT NULL DEFAULT 0`);
      }
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    })();
    const prepare = (sql: string) => this.db.prepare(sql);
    this.stmt = {
      insertRepo: prepare(
        `INSERT INTO repos (id, namespace, name, description, creator_name, creator_email, created_at)
         VALUES (@id, @namespace, @name, @description, @creator_name, @creator_email, @created_at)`,
      ),
      getRepo: prepare('SELECT * FROM repos WHERE namespace = ? AND name = ?'),
      listRepos: prepare('SELECT * FROM repos WHERE namespace = ? ORDER BY name'),
      listNamespaces: prepare('SELECT DISTINCT namespace FROM repos ORDER BY namespace'),
      deleteRepo: prepare('DELETE FROM repos WHERE id = ?'),
      moveRepo: prepare('UPDATE OR IGNORE repos SET namespace = ? WHERE id = ?'),
      listBranches: prepare('SELECT name, commit_id, created_at, updated_at FROM branches WHERE repo_id = ? ORDER BY name'),
      insertBranch: prepare(
        'INSERT OR IGNORE INTO branches (repo_id, name, commit_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?)',
      ),
      casBranch: prepare(
        'UPDATE branches SET commit_id = ?, updated_at = ? WHERE repo_id = ? AND name = ? AND commit_id = ?',
      ),
      deleteBranch: prepare('DELETE FROM branches WHERE repo_id = ? AND name = ?'),
      getCommit: prepare(`SELECT ${COMMIT_COLUMNS} FROM commits c WHERE c.repo_id = ? AND c.id = ?`),
      insertCommit: prepare(
        `INSERT OR IGNORE INTO commits (repo_id, id, parent_ids, message, author, email, timestamp, root_id, generation, stored_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertParent: prepare(
        'INSERT OR IGNORE INTO commit_parents (repo_id, commit_id, position, parent_id) VALUES (?, ?, ?, ?)',
      ),
      listAncestors: prepare(
        `${ANCESTORS} SELECT ${COMMIT_COLUMNS} FROM anc JOIN commits c ON c.repo_id = @repo AND c.id = anc.id
         ORDER BY c.generation DESC, c.timestamp DESC, c.id LIMIT @limit OFFSET @offset`,
      ),
      countAncestors: prepare(`${ANCESTORS} SELECT count(*) AS n FROM anc JOIN commits c ON c.repo_id = @repo AND c.id = anc.id`),
      isAncestor: prepare(`${ANCESTORS} SELECT 1 AS found FROM anc WHERE id = @ancestor LIMIT 1`),
      listAll: prepare(
        `SELECT ${COMMIT_COLUMNS} FROM commits c WHERE c.repo_id = ?
         ORDER BY c.timestamp DESC, c.generation DESC, c.id LIMIT ? OFFSET ?`,
      ),
      countAll: prepare('SELECT count(*) AS n FROM commits WHERE repo_id = ?'),
      listRoots: prepare(
        `SELECT ${COMMIT_COLUMNS} FROM commits c WHERE c.repo_id = ? AND c.generation = 1 ORDER BY c.timestamp, c.id`,
      ),
      getNode: prepare('SELECT data FROM tree_nodes WHERE repo_id = ? AND id = ?'),
      hasNode: prepare('SELECT 1 FROM tree_nodes WHERE repo_id = ? AND id = ?'),
      insertToken: prepare('INSERT INTO tokens (id, name, email, scopes, secret_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      tokenBySecret: prepare('SELECT * FROM tokens WHERE secret_hash = ?'),
      tokenById: prepare('SELECT * FROM tokens WHERE id = ?'),
      listTokens: prepare('SELECT * FROM tokens ORDER BY created_at, id'),
      deleteToken: prepare('DELETE FROM tokens WHERE id = ?'),
      markReceived: prepare('INSERT OR IGNORE INTO received_commits (repo_id, commit_id) VALUES (?, ?)'),
      unmarkReceived: prepare('DELETE FROM received_commits WHERE repo_id = ? AND commit_id = ?'),
      isReceived: prepare('SELECT 1 FROM received_commits WHERE repo_id = ? AND commit_id = ?'),
      insertNode: prepare('INSERT OR IGNORE INTO tree_nodes (repo_id, id, data, stored_at) VALUES (?, ?, ?, ?)'),
      touchNode: prepare('UPDATE tree_nodes SET stored_at = ? WHERE repo_id = ? AND id = ? AND stored_at < ?'),
      listNodeIds: prepare('SELECT id FROM tree_nodes WHERE repo_id = ? AND id > ? AND stored_at < ? ORDER BY id LIMIT ?'),
      deleteNode: prepare('DELETE FROM tree_nodes WHERE repo_id = ? AND id = ? AND stored_at < ?'),
      commitsStoredSince: prepare('SELECT id FROM commits WHERE repo_id = ? AND stored_at >= ?'),
      deleteCommit: prepare('DELETE FROM commits WHERE repo_id = ? AND id = ? AND stored_at < ?'),
      deleteParents: prepare('DELETE FROM commit_parents WHERE repo_id = ? AND commit_id = ?'),
      // By key in each repository: an index on hash alone would slow every commit down for gc's sake.
      forgetBlob: prepare('DELETE FROM repo_blobs WHERE repo_id = ? AND hash = ?'),
      listRepoIds: prepare('SELECT id FROM repos'),
      insertBlob: prepare('INSERT OR IGNORE INTO repo_blobs (repo_id, hash, size) VALUES (?, ?, ?)'),
      getBlob: prepare('SELECT size FROM repo_blobs WHERE repo_id = ? AND hash = ?'),
      insertUpload: prepare(
        `INSERT OR IGNORE INTO uploads (id, repo_id, kind, key, total_size, total_chunks, details, state, created_at, updated_at)
         VALUES (@id, @repo_id, @kind, @key, @total_size, @total_chunks, @details, 'open', @now, @now)`,
      ),
      getUpload: prepare('SELECT * FROM uploads WHERE repo_id = ? AND kind = ? AND key = ?'),
      getUploadState: prepare(`SELECT state, frontier_through, frontier_reading_to FROM uploads WHERE id = ?`),
      getPartWriter: prepare('SELECT writer FROM upload_parts WHERE upload_id = ? AND part = ?'),
      beginPart: prepare(
        `INSERT INTO upload_parts (upload_id, part, size, at_offset, tag, writer) VALUES (?, ?, 0, ?, '', ?)
         ON CONFLICT (upload_id, part) DO UPDATE SET at_offset = excluded.at_offset, writer = excluded.writer`,
      ),
      recordPart: prepare('UPDATE upload_parts SET size = ?, at_offset = ?, tag = ?, writer = NULL WHERE upload_id = ? AND part = ? AND writer = ?'),
      abandonPart: prepare('DELETE FROM upload_parts WHERE upload_id = ? AND part = ? AND writer = ?'),
      listWriters: prepare('SELECT part, writer FROM upload_parts WHERE upload_id = ? AND writer IS NOT NULL'),
      resetFrontier: prepare('UPDATE uploads SET frontier_through = 0, frontier_state = NULL, frontier_reading_to = 0, frontier_generation = frontier_generation + 1 WHERE id = ?'),
      getFrontier: prepare(`SELECT ${FRONTIER_COLUMNS} FROM uploads WHERE id = ?`),
      reserveFrontier: prepare(
        `UPDATE uploads SET frontier_reading_to = ? WHERE id = ? AND state = 'open' AND frontier_generation = ? AND frontier_through = ?`,
      ),
      advanceFrontier: prepare(
        `UPDATE uploads SET frontier_through = ?, frontier_state = ? WHERE id = ? AND frontier_generation = ? AND frontier_through = ? AND frontier_reading_to = ?`,
      ),
      touchUpload: prepare('UPDATE uploads SET updated_at = ? WHERE id = ?'),
      getUploadById: prepare(`SELECT * FROM uploads WHERE id = ? AND state = 'open'`),
      updateUpload: prepare('UPDATE uploads SET total_size = ?, details = ?, updated_at = ? WHERE id = ?'),
      listParts: prepare('SELECT part, at_offset, size, tag FROM upload_parts WHERE upload_id = ? AND writer IS NULL ORDER BY part'),
      claimUpload: prepare(`UPDATE uploads SET state = 'assembling', claimed_by = ?, updated_at = ? WHERE id = ? AND state = 'open'`),
      listClaimed: prepare(`SELECT id, claimed_by FROM uploads WHERE state = 'assembling' AND claimed_by IS NOT NULL`),
      releaseClaimed: prepare(`UPDATE uploads SET state = 'open', claimed_by = NULL, updated_at = ? WHERE id = ? AND state = 'assembling' AND claimed_by = ?`),
      releaseUpload: prepare(`UPDATE uploads SET state = 'open', claimed_by = NULL, updated_at = ? WHERE id = ?`),
      deleteUpload: prepare('DELETE FROM uploads WHERE id = ?'),
      idleUploads: prepare('SELECT * FROM uploads WHERE updated_at < ? ORDER BY updated_at'),
      insertWorkspace: prepare(
        `INSERT INTO workspaces (uid, repo_id, id, name, branch, base_commit_id, created_at, updated_at)
         VALUES (@uid, @repo_id, @id, @name, @branch, @base_commit_id, @now, @now)`,
      ),
      workspaceById: prepare('SELECT * FROM workspaces WHERE repo_id = ? AND id = ?'),
      workspaceByName: prepare('SELECT * FROM workspaces WHERE repo_id = ? AND name = ?'),
      listWorkspaces: prepare('SELECT * FROM workspaces WHERE repo_id = ? ORDER BY created_at, id'),
      deleteWorkspace: prepare('DELETE FROM workspaces WHERE uid = ?'),
      deleteAllWorkspaces: prepare('DELETE FROM workspaces WHERE repo_id = ?'),
      stageChange: prepare(
        `INSERT INTO staged_changes (workspace_uid, path, hash, size) VALUES (?, ?, ?, ?)
         ON CONFLICT (workspace_uid, path) DO UPDATE SET hash = excluded.hash, size = excluded.size`,
      ),
      touchWorkspace: prepare('UPDATE workspaces SET updated_at = ? WHERE uid = ?'),
      unstage: prepare(
        `DELETE FROM staged_changes WHERE workspace_uid = @uid AND (path = @path OR substr(path, 1, length(@path) + 1) = @path || '/' OR @path = '')`,
      ),
      listStaged: prepare('SELECT path, hash, size FROM staged_changes WHERE workspace_uid = ? ORDER BY path'),
      listStagedUnder: prepare(
        `SELECT path, hash, size FROM staged_changes WHERE workspace_uid = @uid
         AND (path = @prefix OR substr(path, 1, length(@prefix) + 1) = @prefix || '/') ORDER BY path`,
      ),
      dropCommitted: prepare('DELETE FROM staged_changes WHERE workspace_uid = ? AND path = ? AND hash IS ?'),
      moveWorkspace: prepare('UPDATE workspaces SET base_commit_id = ?, updated_at = ? WHERE uid = ?'),
      workspaceExists: prepare('SELECT 1 FROM workspaces WHERE uid = ?'),
      lastFrameOp: prepare('SELECT coalesce(max(seq), 0) AS seq FROM frame_ops WHERE workspace_uid = ? AND path = ?'),
      insertFrameOp: prepare('INSERT INTO frame_ops (workspace_uid, path, seq, op) VALUES (?, ?, ?, ?)'),
      listFrameOps: prepare('SELECT seq, op FROM frame_ops WHERE workspace_uid = ? AND path = ? AND seq > ? ORDER BY seq LIMIT ?'),
      listFrameLogs: prepare('SELECT path, max(seq) AS seq FROM frame_ops WHERE workspace_uid = ? GROUP BY path ORDER BY path'),
      deleteFrameLog: prepare('DELETE FROM frame_ops WHERE workspace_uid = ? AND path = ?'),
      renameFrameLog: prepare('UPDATE frame_ops SET path = ? WHERE workspace_uid = ? AND path = ?'),
      putFrameComparison: prepare(
        `INSERT INTO frame_comparisons (repo_id, id, definition, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (repo_id, id) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at
         RETURNING id, definition, created_at AS createdAt, updated_at AS updatedAt`,
      ),
      getFrameComparison: prepare('SELECT id, definition, created_at AS createdAt, updated_at AS updatedAt FROM frame_comparisons WHERE repo_id = ? AND id = ?'),
      deleteFrameComparison: prepare('DELETE FROM frame_comparisons WHERE repo_id = ? AND id = ?'),
    };
  }

  async createRepo(repo: NewRepo): Promise<RepoRecord> {
    const row: RepoRow = {
      id: randomUUID(),
      namespace: repo.namespace,
      name: repo.name,
      description: repo.description,
      creator_name: repo.creatorName,
      creator_email: repo.creatorEmail,
      created_at: new Date().toISOString(),
    };
    try {
      this.stmt.insertRepo.run(row);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw new Conflict(`Repository '${repo.namespace}/${repo.name}' already exists`);
      }
      throw err;
    }
    return toRepo(row);
  }

  async getRepo(namespace: string, name: string): Promise<RepoRecord | null> {
    const row = this.stmt.getRepo.get(namespace, name) as RepoRow | undefined;
    return row ? toRepo(row) : null;
  }

  async listRepos(namespace: string): Promise<RepoRecord[]> {
    return (this.stmt.listRepos.all(namespace) as RepoRow[]).map(toRepo);
  }

  async listNamespaces(): Promise<string[]> {
    return (this.stmt.listNamespaces.all() as Array<{ namespace: string }>).map((r) => r.namespace);
  }

  async deleteRepo(repoId: string): Promise<void> {
    this.stmt.deleteRepo.run(repoId);
  }

  async moveRepo(repoId: string, namespace: string): Promise<boolean> {
    // OR IGNORE: the unique (namespace, name) index refuses a taken name without an exception.
    return this.stmt.moveRepo.run(namespace, repoId).changes === 1;
  }

  async listBranches(repoId: string): Promise<BranchRecord[]> {
    return (this.stmt.listBranches.all(repoId) as BranchRow[]).map(toBranch);
  }

  async findBranches(repoId: string, names: string[]): Promise<BranchRecord[]> {
    if (names.length === 0) return [];
    let statement = this.findBranchStatements.get(names.length);
    if (!statement) {
      const placeholders = names.map(() => '?').join(', ');
      statement = this.db.prepare(
        `SELECT name, commit_id, created_at, updated_at FROM branches WHERE repo_id = ? AND name IN (${placeholders})`,
      );
      this.findBranchStatements.set(names.length, statement);
    }
    const rows = statement.all(repoId, ...names) as BranchRow[];
    return rows.map(toBranch);
  }

  async createBranch(repoId: string, name: string, commitId: string): Promise<boolean> {
    const now = new Date().toISOString();
    return this.stmt.insertBranch.run(repoId, name, commitId, now, now).changes === 1;
  }

  async compareAndSwapBranch(repoId: string, name: string, expected: string | null, next: string): Promise<boolean> {
    return this.casBranch(repoId, name, expected, next);
  }

  private casBranch(repoId: string, name: string, expected: string | null, next: string): boolean {
    const now = new Date().toISOString();
    if (expected === null) return this.stmt.insertBranch.run(repoId, name, next, now, now).changes === 1;
    return this.stmt.casBranch.run(next, now, repoId, name, expected).changes === 1;
  }

  async deleteBranch(repoId: string, name: string): Promise<boolean> {
    return this.stmt.deleteBranch.run(repoId, name).changes === 1;
  }

  async getCommit(repoId: string, id: string): Promise<CommitRecord | null> {
    const row = this.stmt.getCommit.get(repoId, id) as CommitRow | undefined;
    return row ? toCommit(row) : null;
  }

  async getCommits(repoId: string, ids: string[]): Promise<CommitRecord[]> {
    const out: CommitRecord[] = [];
    for (const id of ids) {
      const row = this.stmt.getCommit.get(repoId, id) as CommitRow | undefined;
      if (row) out.push(toCommit(row));
    }
    return out;
  }

  async listAncestors(repoId: string, head: string, page: Page): Promise<CommitRecord[]> {
    const rows = this.stmt.listAncestors.all({ repo: repoId, head, limit: page.limit, offset: page.offset });
    return (rows as CommitRow[]).map(toCommit);
  }

  async countAncestors(repoId: string, head: string): Promise<number> {
    return (this.stmt.countAncestors.get({ repo: repoId, head }) as { n: number }).n;
  }

  async isAncestor(repoId: string, ancestor: string, descendant: string): Promise<boolean> {
    return this.stmt.isAncestor.get({ repo: repoId, head: descendant, ancestor }) !== undefined;
  }

  async listAllCommits(repoId: string, page: Page): Promise<CommitRecord[]> {
    return (this.stmt.listAll.all(repoId, page.limit, page.offset) as CommitRow[]).map(toCommit);
  }

  async countAllCommits(repoId: string): Promise<number> {
    return (this.stmt.countAll.get(repoId) as { n: number }).n;
  }

  async listRootCommits(repoId: string): Promise<CommitRecord[]> {
    return (this.stmt.listRoots.all(repoId) as CommitRow[]).map(toCommit);
  }

  async getNode(repoId: string, id: string): Promise<Uint8Array | null> {
    const row = this.stmt.getNode.get(repoId, id) as { data: Buffer } | undefined;
    return row ? row.data : null;
  }

  async getNodes(repoId: string, ids: string[]): Promise<Map<string, Uint8Array>> {
    const found = new Map<string, Uint8Array>();
    for (const id of ids) {
      const row = this.stmt.getNode.get(repoId, id) as { data: Buffer } | undefined;
      if (row) found.set(id, row.data);
    }
    return found;
  }

  async hasNodes(repoId: string, ids: string[]): Promise<Set<string>> {
    return new Set(ids.filter((id) => this.stmt.hasNode.get(repoId, id) !== undefined));
  }

  async createToken(t: TokenRecord): Promise<void> {
    this.stmt.insertToken.run(t.id, t.name, t.email, JSON.stringify(t.scopes), t.secretHash, t.createdAt, t.expiresAt);
  }

  async findTokenBySecret(secretHash: string): Promise<TokenRecord | null> {
    const row = this.stmt.tokenBySecret.get(secretHash) as TokenRow | undefined;
    return row ? toToken(row) : null;
  }

  async findToken(id: string): Promise<TokenRecord | null> {
    const row = this.stmt.tokenById.get(id) as TokenRow | undefined;
    return row ? toToken(row) : null;
  }

  async listTokens(): Promise<TokenRecord[]> {
    return (this.stmt.listTokens.all() as TokenRow[]).map(toToken);
  }

  async deleteToken(id: string): Promise<boolean> {
    return this.stmt.deleteToken.run(id).changes === 1;
  }

  async markCommitsReceived(repoId: string, ids: string[], received = true): Promise<void> {
    const statement = received ? this.stmt.markReceived : this.stmt.unmarkReceived;
    this.db.transaction(() => {
      for (const id of ids) statement.run(repoId, id);
    })();
  }

  async findReceivedCommits(repoId: string, ids: string[]): Promise<Set<string>> {
    return new Set(ids.filter((id) => this.stmt.isReceived.get(repoId, id) !== undefined));
  }

  private readonly putNodesTransaction = (repoId: string, nodes: Array<[string, Uint8Array]>) => {
    const now = Date.now();
    for (const [id, bytes] of nodes) {
      if (this.stmt.insertNode.run(repoId, id, bytes, now).changes === 0) this.stmt.touchNode.run(now, repoId, id, now);
    }
  };

  async putNodes(repoId: string, nodes: Array<[id: string, bytes: Uint8Array]>): Promise<void> {
    this.db.transaction(this.putNodesTransaction)(repoId, nodes);
  }

  private insertCommitRow(repoId: string, commit: CommitRecord): void {
    this.stmt.insertCommit.run(
      repoId,
      commit.id,
      JSON.stringify(commit.parentIds),
      commit.message,
      commit.author,
      commit.email,
      commit.timestamp,
      commit.rootId,
      commit.generation,
      Date.now(),
    );
    commit.parentIds.forEach((parent, position) => this.stmt.insertParent.run(repoId, commit.id, position, parent));
  }

  private readonly addCommitsTransaction = (repoId: string, commits: CommitRecord[]) => {
    for (const commit of commits) this.insertCommitRow(repoId, commit);
  };

  async addCommits(repoId: string, commits: CommitRecord[]): Promise<void> {
    this.db.transaction(this.addCommitsTransaction)(repoId, commits);
  }

  async listNodeIds(repoId: string, storedBefore: number, after: string | null, limit: number): Promise<string[]> {
    return (this.stmt.listNodeIds.all(repoId, after ?? '', storedBefore, limit) as Array<{ id: string }>).map((r) => r.id);
  }

  private readonly deleteNodesTransaction = (repoId: string, ids: string[], storedBefore: number): number => {
    let deleted = 0;
    for (const id of ids) deleted += this.stmt.deleteNode.run(repoId, id, storedBefore).changes;
    return deleted;
  };

  async deleteNodes(repoId: string, ids: string[], storedBefore: number): Promise<number> {
    return this.db.transaction(this.deleteNodesTransaction)(repoId, ids, storedBefore);
  }

  async listCommitsStoredSince(repoId: string, since: number): Promise<string[]> {
    return (this.stmt.commitsStoredSince.all(repoId, since) as Array<{ id: string }>).map((r) => r.id);
  }

  private readonly deleteCommitsTransaction = (repoId: string, ids: string[], storedBefore: number): string[] => {
    const deleted: string[] = [];
    for (const id of ids) {
      if (this.stmt.deleteCommit.run(repoId, id, storedBefore).changes === 0) continue;
      this.stmt.deleteParents.run(repoId, id);
      this.stmt.unmarkReceived.run(repoId, id);
      deleted.push(id);
    }
    return deleted;
  };

  async deleteCommits(repoId: string, ids: string[], storedBefore: number): Promise<string[]> {
    return this.db.transaction(this.deleteCommitsTransaction)(repoId, ids, storedBefore);
  }

  private readonly forgetBlobsTransaction = (hashes: string[]) => {
    const repoIds = (this.stmt.listRepoIds.all() as Array<{ id: string }>).map((r) => r.id);
    for (const repoId of repoIds) for (const hash of hashes) this.stmt.forgetBlob.run(repoId, hash);
  };

  async forgetBlobs(hashes: string[]): Promise<void> {
    this.db.transaction(this.forgetBlobsTransaction)(hashes);
  }

  private readonly addBlobsTransaction = (repoId: string, blobs: Array<{ hash: string; size: number }>) => {
    for (const blob of blobs) this.stmt.insertBlob.run(repoId, blob.hash, blob.size);
  };

  async addRepoBlobs(repoId: string, blobs: Array<{ hash: string; size: number }>): Promise<void> {
    this.db.transaction(this.addBlobsTransaction)(repoId, blobs);
  }

  async findRepoBlobs(repoId: string, hashes: string[]): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    for (const hash of hashes) {
      const row = this.stmt.getBlob.get(repoId, hash) as { size: number } | undefined;
      if (row) found.set(hash, row.size);
    }
    return found;
  }

  async openUpload(repoId: string, kind: UploadRecord['kind'], key: string, init: NewUpload): Promise<UploadRecord> {
    this.stmt.insertUpload.run({
      id: randomUUID(),
      repo_id: repoId,
      kind,
      key,
      total_size: init.totalSize,
      total_chunks: init.totalChunks,
      details: JSON.stringify(init.details),
      now: new Date().toISOString(),
    });
    return (await this.getUpload(repoId, kind, key))!;
  }

  async getUpload(repoId: string, kind: UploadRecord['kind'], key: string): Promise<UploadRecord | null> {
    const row = this.stmt.getUpload.get(repoId, kind, key) as UploadRow | undefined;
    return row ? toUpload(row) : null;
  }

  async updateUpload(uploadId: string, change: (upload: UploadRecord) => Pick<UploadRecord, 'totalSize' | 'details'>): Promise<UploadRecord | null> {
    // One synchronous transaction: nothing else runs between the read and the write.
    return this.db.transaction(() => {
      const row = this.stmt.getUploadById.get(uploadId) as UploadRow | undefined;
      if (!row) return null;
      const next = change(toUpload(row));
      this.stmt.updateUpload.run(next.totalSize, JSON.stringify(next.details), new Date().toISOString(), uploadId);
      return toUpload(this.stmt.getUploadById.get(uploadId) as UploadRow);
    })();
  }

  async beginUploadPart(uploadId: string, part: number, offset: number | null, writer: string, abandoned: (writer: string) => boolean): Promise<'begun' | 'busy' | 'closed'> {
    return this.db.transaction((): 'begun' | 'busy' | 'closed' => {
      const upload = this.stmt.getUploadState.get(uploadId) as { state: string; frontier_through: number; frontier_reading_to: number } | undefined;
      if (!upload || upload.state !== 'open') return 'closed';
      const existing = this.stmt.getPartWriter.get(uploadId, part) as { writer: string | null } | undefined;
      if (existing?.writer && !abandoned(existing.writer)) return 'busy';
      if (existing || (offset !== null && offset < Math.max(upload.frontier_through, upload.frontier_reading_to))) this.stmt.resetFrontier.run(uploadId);
      this.stmt.beginPart.run(uploadId, part, offset, writer);
      this.stmt.touchUpload.run(new Date().toISOString(), uploadId);
      return 'begun';
    })();
  }

  async recordUploadPart(uploadId: string, stored: UploadPart, writer: string): Promise<boolean> {
    return this.db.transaction(() => {
      if (this.stmt.touchUpload.run(new Date().toISOString(), uploadId).changes === 0) return false;
      return this.stmt.recordPart.run(stored.size, stored.offset, stored.tag, uploadId, stored.part, writer).changes === 1;
    })();
  }

  async abandonUploadPart(uploadId: string, part: number, writer: string): Promise<void> {
    this.stmt.abandonPart.run(uploadId, part, writer);
  }

  async listUploadParts(uploadId: string): Promise<UploadPart[]> {
    return (this.stmt.listParts.all(uploadId) as UploadPartRow[]).map(toUploadPart);
  }

  async getUploadFrontier(uploadId: string): Promise<UploadFrontier | null> {
    const row = this.stmt.getFrontier.get(uploadId) as UploadFrontierRow | undefined;
    return row ? toUploadFrontier(row) : null;
  }

  async reserveUploadFrontier(uploadId: string, generation: number, through: number, readingTo: number): Promise<boolean> {
    return this.stmt.reserveFrontier.run(readingTo, uploadId, generation, through).changes === 1;
  }

  async advanceUploadFrontier(uploadId: string, generation: number, through: number, next: HashFrontier): Promise<boolean> {
    return this.stmt.advanceFrontier.run(next.through, Buffer.from(next.state), uploadId, generation, through, next.through).changes === 1;
  }

  async claimUpload(uploadId: string, claimant: string, abandoned: (writer: string) => boolean): Promise<boolean> {
    return this.db.transaction(() => {
      for (const { part, writer } of this.stmt.listWriters.all(uploadId) as Array<{ part: number; writer: string }>) {
        if (!abandoned(writer)) return false;
        this.stmt.abandonPart.run(uploadId, part, writer);
      }
      return this.stmt.claimUpload.run(claimant, new Date().toISOString(), uploadId).changes === 1;
    })();
  }

  async releaseAbandonedUploads(abandoned: (claimant: string) => boolean): Promise<number> {
    let released = 0;
    for (const row of this.stmt.listClaimed.all() as Array<{ id: string; claimed_by: string }>) {
      if (abandoned(row.claimed_by)) released += this.stmt.releaseClaimed.run(new Date().toISOString(), row.id, row.claimed_by).changes;
    }
    return released;
  }

  async releaseUpload(uploadId: string): Promise<void> {
    this.stmt.releaseUpload.run(new Date().toISOString(), uploadId);
  }

  async deleteUpload(uploadId: string): Promise<void> {
    this.stmt.deleteUpload.run(uploadId);
  }

  async listUploadsIdleSince(before: string): Promise<UploadRecord[]> {
    return (this.stmt.idleUploads.all(before) as UploadRow[]).map(toUpload);
  }

  async createWorkspace(
    repoId: string,
    workspace: { id: string; name: string | null; branch: string; baseCommitId: string },
  ): Promise<WorkspaceRecord> {
    const row = {
      uid: randomUUID(),
      repo_id: repoId,
      id: workspace.id,
      name: workspace.name,
      branch: workspace.branch,
      base_commit_id: workspace.baseCommitId,
      now: new Date().toISOString(),
    };
    try {
      this.stmt.insertWorkspace.run(row);
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('SQLITE_CONSTRAINT')) {
        throw new Conflict(`A workspace with id '${workspace.id}' or name '${workspace.name}' already exists`);
      }
      throw err;
    }
    return toWorkspace(this.stmt.workspaceById.get(repoId, workspace.id) as WorkspaceRow);
  }

  async getWorkspace(repoId: string, idOrName: string): Promise<WorkspaceRecord | null> {
    const row = (this.stmt.workspaceById.get(repoId, idOrName) ?? this.stmt.workspaceByName.get(repoId, idOrName)) as WorkspaceRow | undefined;
    return row ? toWorkspace(row) : null;
  }

  async listWorkspaces(repoId: string, name?: string): Promise<WorkspaceRecord[]> {
    const rows = this.stmt.listWorkspaces.all(repoId) as WorkspaceRow[];
    return rows.map(toWorkspace).filter((w) => name === undefined || w.name === name);
  }

  async deleteWorkspace(uid: string): Promise<boolean> {
    return this.stmt.deleteWorkspace.run(uid).changes === 1;
  }

  async deleteAllWorkspaces(repoId: string): Promise<number> {
    return this.stmt.deleteAllWorkspaces.run(repoId).changes;
  }

  private readonly stageTransaction = (uid: string, changes: StagedChange[]) => {
    for (const c of changes) this.stmt.stageChange.run(uid, c.path, c.hash, c.size);
    this.stmt.touchWorkspace.run(new Date().toISOString(), uid);
  };

  async stageChanges(uid: string, changes: StagedChange[]): Promise<void> {
    this.db.transaction(this.stageTransaction)(uid, changes);
  }

  async unstage(uid: string, path: string): Promise<number> {
    return this.stmt.unstage.run({ uid, path }).changes;
  }

  async listStagedChanges(uid: string, options: { prefix?: string } = {}): Promise<StagedChange[]> {
    const rows = options.prefix
      ? this.stmt.listStagedUnder.all({ uid, prefix: options.prefix })
      : this.stmt.listStaged.all(uid);
    return rows as StagedChange[];
  }

  private readonly advanceTransaction = (uid: string, baseCommitId: string, committed: StagedChange[]) => {
    for (const c of committed) this.stmt.dropCommitted.run(uid, c.path, c.hash);
    this.stmt.moveWorkspace.run(baseCommitId, new Date().toISOString(), uid);
  };

  async advanceWorkspace(uid: string, baseCommitId: string, committed: StagedChange[]): Promise<void> {
    this.db.transaction(this.advanceTransaction)(uid, baseCommitId, committed);
  }

  private readonly appendFrameOpTransaction = (uid: string, path: string, expectedSeq: number, op: string): boolean => {
    if (!this.stmt.workspaceExists.get(uid)) throw new NotFound('Workspace not found');
    if ((this.stmt.lastFrameOp.get(uid, path) as { seq: number }).seq !== expectedSeq) return false;
    this.stmt.insertFrameOp.run(uid, path, expectedSeq + 1, op);
    this.stmt.touchWorkspace.run(new Date().toISOString(), uid);
    return true;
  };

  async appendFrameOp(uid: string, path: string, expectedSeq: number, op: string): Promise<boolean> {
    return this.db.transaction(this.appendFrameOpTransaction)(uid, path, expectedSeq, op);
  }

  async listFrameOps(uid: string, path: string, afterSeq: number, limit: number): Promise<FrameOpRecord[]> {
    return this.stmt.listFrameOps.all(uid, path, afterSeq, limit) as FrameOpRecord[];
  }

  async listFrameLogs(uid: string): Promise<FrameLogHead[]> {
    return this.stmt.listFrameLogs.all(uid) as FrameLogHead[];
  }

  private readonly deleteFrameLogTransaction = (uid: string, path: string, throughSeq: number | undefined): boolean => {
    if (throughSeq !== undefined && (this.stmt.lastFrameOp.get(uid, path) as { seq: number }).seq !== throughSeq) return false;
    return this.stmt.deleteFrameLog.run(uid, path).changes > 0;
  };

  async deleteFrameLog(uid: string, path: string, throughSeq?: number): Promise<boolean> {
    return this.db.transaction(this.deleteFrameLogTransaction)(uid, path, throughSeq);
  }

  private readonly renameFrameLogTransaction = (uid: string, from: string, to: string): boolean => {
    if ((this.stmt.lastFrameOp.get(uid, to) as { seq: number }).seq !== 0) return false;
    return this.stmt.renameFrameLog.run(to, uid, from).changes > 0;
  };

  async renameFrameLog(uid: string, from: string, to: string): Promise<boolean> {
    return this.db.transaction(this.renameFrameLogTransaction)(uid, from, to);
  }

  async putFrameComparison(repoId: string, id: string, definition: string): Promise<FrameComparisonRecord> {
    const now = new Date().toISOString();
    return this.stmt.putFrameComparison.get(repoId, id, definition, now, now) as FrameComparisonRecord;
  }

  async getFrameComparison(repoId: string, id: string): Promise<FrameComparisonRecord | null> {
    return (this.stmt.getFrameComparison.get(repoId, id) as FrameComparisonRecord | undefined) ?? null;
  }

  async deleteFrameComparison(repoId: string, id: string): Promise<boolean> {
    return this.stmt.deleteFrameComparison.run(repoId, id).changes > 0;
  }

  private readonly landTransaction = (repoId: string, landing: CommitLanding): boolean => {
    const { commit } = landing;
    for (const [id, bytes] of landing.nodes) {
      // An id already stored must hold these very bytes: a record stored first under an id a commit
      // then writes would otherwise stand in for the commit's own.
      const now = Date.now();
      if (this.stmt.insertNode.run(repoId, id, bytes, now).changes === 0) {
        const stored = (this.stmt.getNode.get(repoId, id) as { data: Buffer }).data;
        if (!stored.equals(bytes)) throw new Error(`Tree node ${id} is stored with other bytes than the commit writes`);
        this.stmt.touchNode.run(now, repoId, id, now);
      }
    }
    this.addBlobsTransaction(repoId, landing.blobs);
    this.insertCommitRow(repoId, commit);
    if (!this.casBranch(repoId, landing.branch, landing.expectedHead, commit.id)) {
      // Roll back everything written above: a lost race must leave no orphan commit behind.
      throw new CasLost();
    }
    return true;
  };

  async landCommit(repoId: string, landing: CommitLanding): Promise<boolean> {
    try {
      return this.db.transaction(this.landTransaction)(repoId, landing);
    } catch (err) {
      if (err instanceof CasLost) return false;
      throw err;
    }
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

class CasLost extends Error {}
