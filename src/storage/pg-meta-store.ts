import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { Conflict, NotFound } from '../core/errors.js';
import { asBuffer } from '../core/stored-records.js';
import { FRONTIER_COLUMNS, toRepo, toBranch, toCommit, toUpload, toUploadFrontier, toUploadPart, toWorkspace, toToken, type RepoRow, type BranchRow, type CommitRow, type UploadFrontierRow, type UploadPartRow, type UploadRow, type WorkspaceRow, type TokenRow } from './sql-rows.js';
import type { HashFrontier } from './blob-store.js';
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

/**
 * Schema migrations, applied in order at `PgMetaStore.open` and recorded in `yoke_migrations`. Append new
 * ones; never edit one that has shipped. Tables and columns mirror SqliteMetaStore's schema. Text keys are
 * `COLLATE "C"` so that ordering and comparisons go by bytes, as SQLite's do (ids, paths, names, ISO times).
 */
const MIGRATIONS: ReadonlyArray<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
CREATE TABLE repos (
  id TEXT COLLATE "C" PRIMARY KEY,
  namespace TEXT COLLATE "C" NOT NULL,
  name TEXT COLLATE "C" NOT NULL,
  description TEXT,
  creator_name TEXT,
  creator_email TEXT,
  created_at TEXT COLLATE "C" NOT NULL,
  UNIQUE (namespace, name)
);
CREATE TABLE branches (
  repo_id TEXT COLLATE "C" NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
  name TEXT COLLATE "C" NOT NULL,
  commit_id TEXT COLLATE "C" NOT NULL,
  created_at TEXT COLLATE "C" NOT NULL,
  updated_at TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (repo_id, name)
);
CREATE TABLE commits (
  repo_id TEXT COLLATE "C" NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
  id TEXT COLLATE "C" NOT NULL,
  parent_ids TEXT NOT NULL,
  message TEXT NOT NULL,
  author TEXT NOT NULL,
  email TEXT NOT NULL,
  timestamp TEXT COLLATE "C" NOT NULL,
  root_id TEXT COLLATE "C" NOT NULL,
  generation INTEGER NOT NULL,
  stored_at BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (repo_id, id)
);
CREATE INDEX commits_by_time ON commits (repo_id, timestamp);
CREATE TABLE commit_parents (
  repo_id TEXT COLLATE "C" NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
  commit_id TEXT COLLATE "C" NOT NULL,
  position INTEGER NOT NULL,
  parent_id TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (repo_id, commit_id, position)
);
CREATE TABLE tree_nodes (
  repo_id TEXT COLLATE "C" NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
  id TEXT COLLATE "C" NOT NULL,
  data BYTEA NOT NULL,
  stored_at BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (repo_id, id)
);
CREATE TABLE tokens (
  id TEXT COLLATE "C" PRIMARY KEY,
  name TEXT NOT NULL,
  email TEXT NOT NULL,
  scopes TEXT NOT NULL,
  secret_hash TEXT COLLATE "C" NOT NULL UNIQUE,
  created_at TEXT COLLATE "C" NOT NULL,
  expires_at TEXT COLLATE "C"
);
CREATE TABLE received_commits (
  repo_id TEXT COLLATE "C" NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
  commit_id TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (repo_id, commit_id)
);
CREATE TABLE repo_blobs (
  repo_id TEXT COLLATE "C" NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
  hash TEXT COLLATE "C" NOT NULL,
  size BIGINT NOT NULL,
  PRIMARY KEY (repo_id, hash)
);
CREATE TABLE uploads (
  id TEXT COLLATE "C" PRIMARY KEY,
  repo_id TEXT COLLATE "C" NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
  kind TEXT COLLATE "C" NOT NULL,
  key TEXT COLLATE "C" NOT NULL,
  total_size BIGINT,
  total_chunks BIGINT,
  details TEXT NOT NULL,
  state TEXT COLLATE "C" NOT NULL,
  created_at TEXT COLLATE "C" NOT NULL,
  updated_at TEXT COLLATE "C" NOT NULL,
  claimed_by TEXT,
  UNIQUE (repo_id, kind, key)
);
CREATE INDEX uploads_by_activity ON uploads (updated_at);
CREATE TABLE workspaces (
  uid TEXT COLLATE "C" PRIMARY KEY,
  repo_id TEXT COLLATE "C" NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
  id TEXT COLLATE "C" NOT NULL,
  name TEXT COLLATE "C",
  branch TEXT COLLATE "C" NOT NULL,
  base_commit_id TEXT COLLATE "C" NOT NULL,
  created_at TEXT COLLATE "C" NOT NULL,
  updated_at TEXT COLLATE "C" NOT NULL,
  UNIQUE (repo_id, id)
);
CREATE UNIQUE INDEX workspaces_by_name ON workspaces (repo_id, name) WHERE name IS NOT NULL;
CREATE TABLE staged_changes (
  workspace_uid TEXT COLLATE "C" NOT NULL REFERENCES workspaces(uid) ON DELETE CASCADE,
  path TEXT COLLATE "C" NOT NULL,
  hash TEXT COLLATE "C",
  size BIGINT NOT NULL,
  PRIMARY KEY (workspace_uid, path)
);
CREATE TABLE upload_parts (
  upload_id TEXT COLLATE "C" NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
  part BIGINT NOT NULL,
  size BIGINT NOT NULL,
  PRIMARY KEY (upload_id, part)
);
`,
  },
  {
    version: 2,
    name: 'staging shaped like S3 multipart uploads: hash frontier, part writers and offsets',
    sql: `
ALTER TABLE uploads ADD COLUMN frontier_through BIGINT NOT NULL DEFAULT 0;
ALTER TABLE uploads ADD COLUMN frontier_state BYTEA;
ALTER TABLE uploads ADD COLUMN frontier_reading_to BIGINT NOT NULL DEFAULT 0;
ALTER TABLE uploads ADD COLUMN frontier_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE upload_parts ADD COLUMN at_offset BIGINT;
ALTER TABLE upload_parts ADD COLUMN tag TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE upload_parts ADD COLUMN writer TEXT COLLATE "C";
`,
  },
  {
    version: 3,
    name: 'edit logs of workspace data frames',
    sql: `
CREATE TABLE frame_ops (
  workspace_uid TEXT COLLATE "C" NOT NULL REFERENCES workspaces(uid) ON DELETE CASCADE,
  path TEXT COLLATE "C" NOT NULL,
  seq INTEGER NOT NULL,
  op TEXT NOT NULL,
  PRIMARY KEY (workspace_uid, path, seq)
);
`,
  },
  {
    version: 4,
    name: 'data frame comparisons',
    sql: `
CREATE TABLE frame_comparisons (
  repo_id TEXT COLLATE "C" NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
  id TEXT COLLATE "C" NOT NULL,
  definition TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (repo_id, id)
);
`,
  },
];

const RESET_FRONTIER =
  'UPDATE uploads SET frontier_through = 0, frontier_state = NULL, frontier_reading_to = 0, frontier_generation = frontier_generation + 1 WHERE id = $1';

/** pg_advisory_lock key held while migrating ('yoke' 'migr' as two int32s), so concurrent starts take turns. */
const MIGRATION_LOCK = [0x796f6b65, 0x6d696772] as const;

const INT8_OID = 20;
/** BIGINT (sizes, offsets, ms times, counts) as numbers: every value Yoke stores is below 2^53. */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

const UNIQUE_VIOLATION = '23505';
const isUniqueViolation = (err: unknown) => (err as { code?: string }).code === UNIQUE_VIOLATION;

/** Rows per multi-row INSERT of node bytes (4 parameters each, well under PostgreSQL's 65,535). */
const NODE_BATCH = 1000;
/** Node records per SELECT of `getNodes`: a tree walk's round (services/node-cache's WALK_BATCH) fits in one. */
const NODE_READ_BATCH = 1000;

type Queryable = pg.Pool | pg.PoolClient;

/** PostgreSQL text cannot hold NUL, so no stored key contains one: a lookup of such a key finds nothing (not an error). */
const storable = (key: string) => !key.includes('\0');

const byKey = <T>(key: (x: T) => string) => (a: T, b: T) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);

/** `head` and every ancestor id reachable through commit_parents ($1 repository, $2 head). */
const ANCESTORS = `WITH RECURSIVE anc(id) AS (
  SELECT $2::text COLLATE "C"
  UNION
  SELECT p.parent_id FROM anc JOIN commit_parents p ON p.repo_id = $1 AND p.commit_id = anc.id
)`;
const COMMIT_COLUMNS = 'c.id, c.parent_ids, c.message, c.author, c.email, c.timestamp, c.root_id, c.generation';

export interface PgMetaStoreOptions {
  /** Most connections the pool opens (default 10). */
  maxConnections?: number;
}

/**
 * The metadata store on PostgreSQL: one pg.Pool, the SQLite store's tables and semantics. Several
 * processes may share one database: branches move by compare-and-swap inside the landing transaction,
 * and read-modify-write steps lock their row (SELECT … FOR UPDATE).
 */
export class PgMetaStore implements MetaStore {
  private constructor(
    private readonly pool: pg.Pool,
    private readonly sent: { statements: number },
  ) {}

  /** Connects and brings the schema up to date (under an advisory lock: concurrent starts take turns). */
  static async open(url: string, options: PgMetaStoreOptions = {}): Promise<PgMetaStore> {
    const pool = new pg.Pool({ connectionString: url, max: options.maxConnections ?? 10, types });
    // An idle connection the server drops emits here; the next query reports the problem instead.
    pool.on('error', () => {});
    const sent = { statements: 0 };
    pool.on('connect', (client) => {
      const send = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as { query: unknown }).query = (...args: unknown[]) => {
        sent.statements += 1;
        return send(...args);
      };
    });
    try {
      await migrate(pool);
    } catch (err) {
      await pool.end().catch(() => {});
      throw err;
    }
    return new PgMetaStore(pool, sent);
  }

  /**
   * Statements sent so far, each a round trip to the server (the migrations' included). Tests bound by it
   * what an operation costs: a tree walk should take a few per level of the tree, not one per node.
   */
  get statements(): number {
    return this.sent.statements;
  }

  /** Runs `fn` in a transaction on one connection; commits what it returns, rolls back what it throws. */
  private async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw err;
    } finally {
      client.release(broken);
    }
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
      await this.pool.query(
        `INSERT INTO repos (id, namespace, name, description, creator_name, creator_email, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [row.id, row.namespace, row.name, row.description, row.creator_name, row.creator_email, row.created_at],
      );
    } catch (err) {
      if (isUniqueViolation(err)) throw new Conflict(`Repository '${repo.namespace}/${repo.name}' already exists`);
      throw err;
    }
    return toRepo(row);
  }

  async getRepo(namespace: string, name: string): Promise<RepoRecord | null> {
    if (!storable(namespace) || !storable(name)) return null;
    const { rows } = await this.pool.query<RepoRow>('SELECT * FROM repos WHERE namespace = $1 AND name = $2', [namespace, name]);
    return rows[0] ? toRepo(rows[0]) : null;
  }

  async listRepos(namespace: string): Promise<RepoRecord[]> {
    const { rows } = await this.pool.query<RepoRow>('SELECT * FROM repos WHERE namespace = $1 ORDER BY name', [namespace]);
    return rows.map(toRepo);
  }

  async listNamespaces(): Promise<string[]> {
    const { rows } = await this.pool.query<{ namespace: string }>('SELECT DISTINCT namespace FROM repos ORDER BY namespace');
    return rows.map((r) => r.namespace);
  }

  async deleteRepo(repoId: string): Promise<void> {
    await this.pool.query('DELETE FROM repos WHERE id = $1', [repoId]);
  }

  async moveRepo(repoId: string, namespace: string): Promise<boolean> {
    try {
      return (await this.pool.query('UPDATE repos SET namespace = $1 WHERE id = $2', [namespace, repoId])).rowCount === 1;
    } catch (err) {
      if (isUniqueViolation(err)) return false;
      throw err;
    }
  }

  async listBranches(repoId: string): Promise<BranchRecord[]> {
    const { rows } = await this.pool.query<BranchRow>(
      'SELECT name, commit_id, created_at, updated_at FROM branches WHERE repo_id = $1 ORDER BY name',
      [repoId],
    );
    return rows.map(toBranch);
  }

  async findBranches(repoId: string, names: string[]): Promise<BranchRecord[]> {
    names = names.filter(storable);
    if (names.length === 0) return [];
    const { rows } = await this.pool.query<BranchRow>(
      'SELECT name, commit_id, created_at, updated_at FROM branches WHERE repo_id = $1 AND name = ANY($2::text[]) ORDER BY name',
      [repoId, names],
    );
    return rows.map(toBranch);
  }

  async createBranch(repoId: string, name: string, commitId: string): Promise<boolean> {
    return casBranch(this.pool, repoId, name, null, commitId);
  }

  async compareAndSwapBranch(repoId: string, name: string, expected: string | null, next: string): Promise<boolean> {
    return casBranch(this.pool, repoId, name, expected, next);
  }

  async deleteBranch(repoId: string, name: string): Promise<boolean> {
    return (await this.pool.query('DELETE FROM branches WHERE repo_id = $1 AND name = $2', [repoId, name])).rowCount === 1;
  }

  async getCommit(repoId: string, id: string): Promise<CommitRecord | null> {
    if (!storable(id)) return null;
    const { rows } = await this.pool.query<CommitRow>(`SELECT ${COMMIT_COLUMNS} FROM commits c WHERE c.repo_id = $1 AND c.id = $2`, [repoId, id]);
    return rows[0] ? toCommit(rows[0]) : null;
  }

  async getCommits(repoId: string, ids: string[]): Promise<CommitRecord[]> {
    ids = ids.filter(storable);
    if (ids.length === 0) return [];
    const { rows } = await this.pool.query<CommitRow>(
      `SELECT ${COMMIT_COLUMNS} FROM commits c WHERE c.repo_id = $1 AND c.id = ANY($2::text[])`,
      [repoId, ids],
    );
    // In the order asked, as SQLite's one-by-one lookup returns them.
    const found = new Map(rows.map((r) => [r.id, r]));
    const out: CommitRecord[] = [];
    for (const id of ids) {
      const row = found.get(id);
      if (row) out.push(toCommit(row));
    }
    return out;
  }

  async listAncestors(repoId: string, head: string, page: Page): Promise<CommitRecord[]> {
    const { rows } = await this.pool.query<CommitRow>(
      `${ANCESTORS} SELECT ${COMMIT_COLUMNS} FROM anc JOIN commits c ON c.repo_id = $1 AND c.id = anc.id
       ORDER BY c.generation DESC, c.timestamp DESC, c.id LIMIT $3 OFFSET $4`,
      [repoId, head, page.limit, page.offset],
    );
    return rows.map(toCommit);
  }

  async countAncestors(repoId: string, head: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(
      `${ANCESTORS} SELECT count(*) AS n FROM anc JOIN commits c ON c.repo_id = $1 AND c.id = anc.id`,
      [repoId, head],
    );
    return rows[0].n;
  }

  async isAncestor(repoId: string, ancestor: string, descendant: string): Promise<boolean> {
    const { rows } = await this.pool.query(`${ANCESTORS} SELECT 1 AS found FROM anc WHERE id = $3 LIMIT 1`, [repoId, descendant, ancestor]);
    return rows.length > 0;
  }

  async listAllCommits(repoId: string, page: Page): Promise<CommitRecord[]> {
    const { rows } = await this.pool.query<CommitRow>(
      `SELECT ${COMMIT_COLUMNS} FROM commits c WHERE c.repo_id = $1
       ORDER BY c.timestamp DESC, c.generation DESC, c.id LIMIT $2 OFFSET $3`,
      [repoId, page.limit, page.offset],
    );
    return rows.map(toCommit);
  }

  async countAllCommits(repoId: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>('SELECT count(*) AS n FROM commits WHERE repo_id = $1', [repoId]);
    return rows[0].n;
  }

  async listRootCommits(repoId: string): Promise<CommitRecord[]> {
    const { rows } = await this.pool.query<CommitRow>(
      `SELECT ${COMMIT_COLUMNS} FROM commits c WHERE c.repo_id = $1 AND c.generation = 1 ORDER BY c.timestamp, c.id`,
      [repoId],
    );
    return rows.map(toCommit);
  }

  async getNode(repoId: string, id: string): Promise<Uint8Array | null> {
    if (!storable(id)) return null;
    const { rows } = await this.pool.query<{ data: Buffer }>('SELECT data FROM tree_nodes WHERE repo_id = $1 AND id = $2', [repoId, id]);
    return rows[0] ? rows[0].data : null;
  }

  async getNodes(repoId: string, ids: string[]): Promise<Map<string, Uint8Array>> {
    const found = new Map<string, Uint8Array>();
    const wanted = [...new Set(ids.filter(storable))];
    // In chunks, so that one reply stays a bounded number of records (a vnode may hold megabytes).
    for (let i = 0; i < wanted.length; i += NODE_READ_BATCH) {
      const { rows } = await this.pool.query<{ id: string; data: Buffer }>('SELECT id, data FROM tree_nodes WHERE repo_id = $1 AND id = ANY($2::text[])', [
        repoId,
        wanted.slice(i, i + NODE_READ_BATCH),
      ]);
      for (const row of rows) found.set(row.id, row.data);
    }
    return found;
  }

  async hasNodes(repoId: string, ids: string[]): Promise<Set<string>> {
    ids = ids.filter(storable);
    if (ids.length === 0) return new Set();
    const { rows } = await this.pool.query<{ id: string }>('SELECT id FROM tree_nodes WHERE repo_id = $1 AND id = ANY($2::text[])', [repoId, ids]);
    return new Set(rows.map((r) => r.id));
  }

  async putNodes(repoId: string, nodes: Array<[id: string, bytes: Uint8Array]>): Promise<void> {
    if (nodes.length === 0) return;
    if (nodes.length <= NODE_BATCH) {
      await insertNodes(this.pool, repoId, nodes);
      return;
    }
    await this.transaction((client) => insertNodes(client, repoId, nodes));
  }

  async markCommitsReceived(repoId: string, ids: string[], received = true): Promise<void> {
    if (ids.length === 0) return;
    if (received) {
      await this.pool.query(
        `INSERT INTO received_commits (repo_id, commit_id) SELECT $1, id FROM unnest($2::text[]) AS t(id) ORDER BY 2
         ON CONFLICT DO NOTHING`,
        [repoId, ids],
      );
    } else {
      await this.pool.query('DELETE FROM received_commits WHERE repo_id = $1 AND commit_id = ANY($2::text[])', [repoId, ids]);
    }
  }

  async findReceivedCommits(repoId: string, ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const { rows } = await this.pool.query<{ commit_id: string }>(
      'SELECT commit_id FROM received_commits WHERE repo_id = $1 AND commit_id = ANY($2::text[])',
      [repoId, ids],
    );
    return new Set(rows.map((r) => r.commit_id));
  }

  async addCommits(repoId: string, commits: CommitRecord[]): Promise<void> {
    if (commits.length === 0) return;
    await this.transaction((client) => insertCommits(client, repoId, commits));
  }

  async listNodeIds(repoId: string, storedBefore: number, after: string | null, limit: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string }>(
      'SELECT id FROM tree_nodes WHERE repo_id = $1 AND id > $2 AND stored_at < $3 ORDER BY id LIMIT $4',
      [repoId, after ?? '', storedBefore, limit],
    );
    return rows.map((r) => r.id);
  }

  async deleteNodes(repoId: string, ids: string[], storedBefore: number): Promise<number> {
    if (ids.length === 0) return 0;
    const result = await this.pool.query('DELETE FROM tree_nodes WHERE repo_id = $1 AND id = ANY($2::text[]) AND stored_at < $3', [
      repoId,
      ids,
      storedBefore,
    ]);
    return result.rowCount ?? 0;
  }

  async listCommitsStoredSince(repoId: string, since: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string }>('SELECT id FROM commits WHERE repo_id = $1 AND stored_at >= $2', [repoId, since]);
    return rows.map((r) => r.id);
  }

  async deleteCommits(repoId: string, ids: string[], storedBefore: number): Promise<string[]> {
    if (ids.length === 0) return [];
    const deleted = await this.transaction(async (client) => {
      const { rows } = await client.query<{ id: string }>(
        'DELETE FROM commits WHERE repo_id = $1 AND id = ANY($2::text[]) AND stored_at < $3 RETURNING id',
        [repoId, ids, storedBefore],
      );
      const gone = rows.map((r) => r.id);
      if (gone.length > 0) {
        await client.query('DELETE FROM commit_parents WHERE repo_id = $1 AND commit_id = ANY($2::text[])', [repoId, gone]);
        await client.query('DELETE FROM received_commits WHERE repo_id = $1 AND commit_id = ANY($2::text[])', [repoId, gone]);
      }
      return new Set(gone);
    });
    // In the order asked, each once, as SQLite's one-by-one deletion reports them.
    const out: string[] = [];
    for (const id of ids) {
      if (deleted.delete(id)) out.push(id);
    }
    return out;
  }

  async forgetBlobs(hashes: string[]): Promise<void> {
    if (hashes.length === 0) return;
    // Through each repository's primary key (repo_id, hash): an index on hash alone would slow every commit.
    await this.pool.query(
      `DELETE FROM repo_blobs b USING repos r, unnest($1::text[]) AS h(hash)
       WHERE b.repo_id = r.id AND b.hash = h.hash`,
      [hashes],
    );
  }

  async addRepoBlobs(repoId: string, blobs: Array<{ hash: string; size: number }>): Promise<void> {
    await insertBlobs(this.pool, repoId, blobs);
  }

  async findRepoBlobs(repoId: string, hashes: string[]): Promise<Map<string, number>> {
    const found = new Map<string, number>();
    hashes = hashes.filter(storable);
    if (hashes.length === 0) return found;
    const { rows } = await this.pool.query<{ hash: string; size: number }>(
      'SELECT hash, size FROM repo_blobs WHERE repo_id = $1 AND hash = ANY($2::text[])',
      [repoId, hashes],
    );
    for (const row of rows) found.set(row.hash, row.size);
    return found;
  }

  async landCommit(repoId: string, landing: CommitLanding): Promise<boolean> {
    try {
      return await this.transaction(async (client) => {
        const { commit } = landing;
        const inserted = await insertNodes(client, repoId, landing.nodes);
        // An id already stored must hold these very bytes: a record stored first under an id a commit
        // then writes would otherwise stand in for the commit's own.
        const present = landing.nodes.filter(([id]) => !inserted.has(id));
        if (present.length > 0) {
          const { rows } = await client.query<{ id: string; data: Buffer }>(
            'SELECT id, data FROM tree_nodes WHERE repo_id = $1 AND id = ANY($2::text[])',
            [repoId, present.map(([id]) => id)],
          );
          const stored = new Map(rows.map((r) => [r.id, r.data]));
          for (const [id, bytes] of present) {
            if (!stored.get(id)?.equals(asBuffer(bytes))) throw new Error(`Tree node ${id} is stored with other bytes than the commit writes`);
          }
        }
        await insertBlobs(client, repoId, landing.blobs);
        await insertCommits(client, repoId, [commit]);
        // Last, so that the branch row is locked only for the end of the transaction. A concurrent
        // landing with the same expected head waits here, then finds the head moved: it rolls back.
        if (!(await casBranch(client, repoId, landing.branch, landing.expectedHead, commit.id))) throw new CasLost();
        return true;
      });
    } catch (err) {
      if (err instanceof CasLost) return false;
      throw err;
    }
  }

  async openUpload(repoId: string, kind: UploadRecord['kind'], key: string, init: NewUpload): Promise<UploadRecord> {
    const now = new Date().toISOString();
    const { rows } = await this.pool.query<UploadRow>(
      `INSERT INTO uploads (id, repo_id, kind, key, total_size, total_chunks, details, state, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $8) ON CONFLICT DO NOTHING RETURNING *`,
      [randomUUID(), repoId, kind, key, init.totalSize, init.totalChunks, JSON.stringify(init.details), now],
    );
    if (rows[0]) return toUpload(rows[0]);
    return (await this.getUpload(repoId, kind, key))!;
  }

  async getUpload(repoId: string, kind: UploadRecord['kind'], key: string): Promise<UploadRecord | null> {
    if (!storable(key)) return null;
    const { rows } = await this.pool.query<UploadRow>('SELECT * FROM uploads WHERE repo_id = $1 AND kind = $2 AND key = $3', [repoId, kind, key]);
    return rows[0] ? toUpload(rows[0]) : null;
  }

  async updateUpload(uploadId: string, change: (upload: UploadRecord) => Pick<UploadRecord, 'totalSize' | 'details'>): Promise<UploadRecord | null> {
    // The row stays locked from the read to the write: concurrent changes apply one after the other.
    return this.transaction(async (client) => {
      const { rows } = await client.query<UploadRow>(`SELECT * FROM uploads WHERE id = $1 AND state = 'open' FOR UPDATE`, [uploadId]);
      if (!rows[0]) return null;
      const next = change(toUpload(rows[0]));
      const updated = await client.query<UploadRow>(
        'UPDATE uploads SET total_size = $1, details = $2, updated_at = $3 WHERE id = $4 RETURNING *',
        [next.totalSize, JSON.stringify(next.details), new Date().toISOString(), uploadId],
      );
      return toUpload(updated.rows[0]);
    });
  }

  async beginUploadPart(uploadId: string, part: number, offset: number | null, writer: string, abandoned: (writer: string) => boolean): Promise<'begun' | 'busy' | 'closed'> {
    // The upload row stays locked to the end: begins and claims of one upload take turns.
    return this.transaction(async (client) => {
      const { rows } = await client.query<{ state: string; frontier_through: number; frontier_reading_to: number }>(
        'SELECT state, frontier_through, frontier_reading_to FROM uploads WHERE id = $1 FOR UPDATE',
        [uploadId],
      );
      const upload = rows[0];
      if (!upload || upload.state !== 'open') return 'closed';
      const existing = (await client.query<{ writer: string | null }>('SELECT writer FROM upload_parts WHERE upload_id = $1 AND part = $2', [uploadId, part])).rows[0];
      if (existing?.writer && !abandoned(existing.writer)) return 'busy';
      if (existing || (offset !== null && offset < Math.max(upload.frontier_through, upload.frontier_reading_to))) {
        await client.query(RESET_FRONTIER, [uploadId]);
      }
      await client.query(
        `INSERT INTO upload_parts (upload_id, part, size, at_offset, tag, writer) VALUES ($1, $2, 0, $3, '', $4)
         ON CONFLICT (upload_id, part) DO UPDATE SET at_offset = excluded.at_offset, writer = excluded.writer`,
        [uploadId, part, offset, writer],
      );
      await client.query('UPDATE uploads SET updated_at = $2 WHERE id = $1', [uploadId, new Date().toISOString()]);
      return 'begun';
    });
  }

  async recordUploadPart(uploadId: string, stored: UploadPart, writer: string): Promise<boolean> {
    // Touch and record in one statement: no upload row (completed or discarded meanwhile), no part.
    const result = await this.pool.query(
      `WITH touched AS (UPDATE uploads SET updated_at = $7 WHERE id = $1 RETURNING id)
       UPDATE upload_parts SET size = $3, at_offset = $4, tag = $5, writer = NULL
       WHERE upload_id = (SELECT id FROM touched) AND part = $2 AND writer = $6`,
      [uploadId, stored.part, stored.size, stored.offset, stored.tag, writer, new Date().toISOString()],
    );
    return result.rowCount === 1;
  }

  async abandonUploadPart(uploadId: string, part: number, writer: string): Promise<void> {
    await this.pool.query('DELETE FROM upload_parts WHERE upload_id = $1 AND part = $2 AND writer = $3', [uploadId, part, writer]);
  }

  async listUploadParts(uploadId: string): Promise<UploadPart[]> {
    const { rows } = await this.pool.query<UploadPartRow>(
      'SELECT part, at_offset, size, tag FROM upload_parts WHERE upload_id = $1 AND writer IS NULL ORDER BY part',
      [uploadId],
    );
    return rows.map(toUploadPart);
  }

  async getUploadFrontier(uploadId: string): Promise<UploadFrontier | null> {
    const { rows } = await this.pool.query<UploadFrontierRow>(`SELECT ${FRONTIER_COLUMNS} FROM uploads WHERE id = $1`, [uploadId]);
    return rows[0] ? toUploadFrontier(rows[0]) : null;
  }

  async reserveUploadFrontier(uploadId: string, generation: number, through: number, readingTo: number): Promise<boolean> {
    const result = await this.pool.query(
      `UPDATE uploads SET frontier_reading_to = $1 WHERE id = $2 AND state = 'open' AND frontier_generation = $3 AND frontier_through = $4`,
      [readingTo, uploadId, generation, through],
    );
    return result.rowCount === 1;
  }

  async advanceUploadFrontier(uploadId: string, generation: number, through: number, next: HashFrontier): Promise<boolean> {
    const result = await this.pool.query(
      `UPDATE uploads SET frontier_through = $1, frontier_state = $2
       WHERE id = $3 AND frontier_generation = $4 AND frontier_through = $5 AND frontier_reading_to = $1`,
      [next.through, Buffer.from(next.state), uploadId, generation, through],
    );
    return result.rowCount === 1;
  }

  async claimUpload(uploadId: string, claimant: string, abandoned: (writer: string) => boolean): Promise<boolean> {
    return this.transaction(async (client) => {
      const { rows } = await client.query<{ state: string }>('SELECT state FROM uploads WHERE id = $1 FOR UPDATE', [uploadId]);
      if (rows[0]?.state !== 'open') return false;
      const writers = await client.query<{ part: number; writer: string }>('SELECT part, writer FROM upload_parts WHERE upload_id = $1 AND writer IS NOT NULL', [uploadId]);
      for (const { part, writer } of writers.rows) {
        if (!abandoned(writer)) return false;
        await client.query('DELETE FROM upload_parts WHERE upload_id = $1 AND part = $2 AND writer = $3', [uploadId, part, writer]);
      }
      await client.query(`UPDATE uploads SET state = 'assembling', claimed_by = $1, updated_at = $2 WHERE id = $3`, [claimant, new Date().toISOString(), uploadId]);
      return true;
    });
  }

  async releaseAbandonedUploads(abandoned: (claimant: string) => boolean): Promise<number> {
    const { rows } = await this.pool.query<{ id: string; claimed_by: string }>(
      `SELECT id, claimed_by FROM uploads WHERE state = 'assembling' AND claimed_by IS NOT NULL`,
    );
    let released = 0;
    for (const row of rows) {
      if (!abandoned(row.claimed_by)) continue;
      const result = await this.pool.query(
        `UPDATE uploads SET state = 'open', claimed_by = NULL, updated_at = $1 WHERE id = $2 AND state = 'assembling' AND claimed_by = $3`,
        [new Date().toISOString(), row.id, row.claimed_by],
      );
      released += result.rowCount ?? 0;
    }
    return released;
  }

  async releaseUpload(uploadId: string): Promise<void> {
    await this.pool.query(`UPDATE uploads SET state = 'open', claimed_by = NULL, updated_at = $1 WHERE id = $2`, [new Date().toISOString(), uploadId]);
  }

  async deleteUpload(uploadId: string): Promise<void> {
    await this.pool.query('DELETE FROM uploads WHERE id = $1', [uploadId]);
  }

  async listUploadsIdleSince(before: string): Promise<UploadRecord[]> {
    const { rows } = await this.pool.query<UploadRow>('SELECT * FROM uploads WHERE updated_at < $1 ORDER BY updated_at', [before]);
    return rows.map(toUpload);
  }

  async createWorkspace(
    repoId: string,
    workspace: { id: string; name: string | null; branch: string; baseCommitId: string },
  ): Promise<WorkspaceRecord> {
    const now = new Date().toISOString();
    try {
      const { rows } = await this.pool.query<WorkspaceRow>(
        `INSERT INTO workspaces (uid, repo_id, id, name, branch, base_commit_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING *`,
        [randomUUID(), repoId, workspace.id, workspace.name, workspace.branch, workspace.baseCommitId, now],
      );
      return toWorkspace(rows[0]);
    } catch (err) {
      if (isUniqueViolation(err)) throw new Conflict(`A workspace with id '${workspace.id}' or name '${workspace.name}' already exists`);
      throw err;
    }
  }

  async getWorkspace(repoId: string, idOrName: string): Promise<WorkspaceRecord | null> {
    if (!storable(idOrName)) return null;
    // By id first, else by name.
    const { rows } = await this.pool.query<WorkspaceRow>(
      'SELECT * FROM workspaces WHERE repo_id = $1 AND (id = $2 OR name = $2) ORDER BY (id = $2) DESC LIMIT 1',
      [repoId, idOrName],
    );
    return rows[0] ? toWorkspace(rows[0]) : null;
  }

  async listWorkspaces(repoId: string, name?: string): Promise<WorkspaceRecord[]> {
    const { rows } = await this.pool.query<WorkspaceRow>(
      'SELECT * FROM workspaces WHERE repo_id = $1 AND ($2::text IS NULL OR name = $2) ORDER BY created_at, id',
      [repoId, name ?? null],
    );
    return rows.map(toWorkspace);
  }

  async deleteWorkspace(uid: string): Promise<boolean> {
    return (await this.pool.query('DELETE FROM workspaces WHERE uid = $1', [uid])).rowCount === 1;
  }

  async deleteAllWorkspaces(repoId: string): Promise<number> {
    return (await this.pool.query('DELETE FROM workspaces WHERE repo_id = $1', [repoId])).rowCount ?? 0;
  }

  async stageChanges(uid: string, changes: StagedChange[]): Promise<void> {
    // The last change for a path wins, as when they are applied one by one; sorted for a stable lock order.
    const byPath = new Map<string, StagedChange>();
    for (const c of changes) byPath.set(c.path, c);
    const rows = [...byPath.values()].sort(byKey((c) => c.path));
    await this.transaction(async (client) => {
      if (rows.length > 0) {
        await client.query(
          `INSERT INTO staged_changes (workspace_uid, path, hash, size)
           SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bigint[])
           ON CONFLICT (workspace_uid, path) DO UPDATE SET hash = excluded.hash, size = excluded.size`,
          [uid, rows.map((c) => c.path), rows.map((c) => c.hash), rows.map((c) => c.size)],
        );
      }
      await client.query('UPDATE workspaces SET updated_at = $1 WHERE uid = $2', [new Date().toISOString(), uid]);
    });
  }

  async unstage(uid: string, path: string): Promise<number> {
    const result = await this.pool.query(
      `DELETE FROM staged_changes WHERE workspace_uid = $1 AND (path = $2 OR starts_with(path, $2 || '/') OR $2 = '')`,
      [uid, path],
    );
    return result.rowCount ?? 0;
  }

  async listStagedChanges(uid: string, options: { prefix?: string } = {}): Promise<StagedChange[]> {
    const { rows } = options.prefix
      ? await this.pool.query<StagedChange>(
          `SELECT path, hash, size FROM staged_changes WHERE workspace_uid = $1
           AND (path = $2 OR starts_with(path, $2 || '/')) ORDER BY path`,
          [uid, options.prefix],
        )
      : await this.pool.query<StagedChange>('SELECT path, hash, size FROM staged_changes WHERE workspace_uid = $1 ORDER BY path', [uid]);
    return rows;
  }

  async advanceWorkspace(uid: string, baseCommitId: string, committed: StagedChange[]): Promise<void> {
    await this.transaction(async (client) => {
      if (committed.length > 0) {
        // Exactly what was committed: a path staged again since (another hash) stays.
        await client.query(
          `DELETE FROM staged_changes s USING unnest($2::text[], $3::text[]) AS c(path, hash)
           WHERE s.workspace_uid = $1 AND s.path = c.path AND s.hash IS NOT DISTINCT FROM c.hash`,
          [uid, committed.map((c) => c.path), committed.map((c) => c.hash)],
        );
      }
      await client.query('UPDATE workspaces SET base_commit_id = $1, updated_at = $2 WHERE uid = $3', [baseCommitId, new Date().toISOString(), uid]);
    });
  }

  /**
   * Frame log writes lock the workspace's row first: appends, deletions and renames of one workspace's logs
   * then take turns, so a deletion cannot miss an operation appended while it ran (nor an append land
   * after its workspace is deleted).
   */
  private async lockWorkspace(client: pg.PoolClient, uid: string): Promise<void> {
    const { rowCount } = await client.query('SELECT 1 FROM workspaces WHERE uid = $1 FOR UPDATE', [uid]);
    if (rowCount === 0) throw new NotFound('Workspace not found');
  }

  private async lastFrameOp(client: pg.PoolClient, uid: string, path: string): Promise<number> {
    const { rows } = await client.query<{ seq: number }>('SELECT coalesce(max(seq), 0) AS seq FROM frame_ops WHERE workspace_uid = $1 AND path = $2', [uid, path]);
    return rows[0].seq;
  }

  async appendFrameOp(uid: string, path: string, expectedSeq: number, op: string): Promise<boolean> {
    return this.transaction(async (client) => {
      await this.lockWorkspace(client, uid);
      if ((await this.lastFrameOp(client, uid, path)) !== expectedSeq) return false;
      await client.query('INSERT INTO frame_ops (workspace_uid, path, seq, op) VALUES ($1, $2, $3, $4)', [uid, path, expectedSeq + 1, op]);
      await client.query('UPDATE workspaces SET updated_at = $1 WHERE uid = $2', [new Date().toISOString(), uid]);
      return true;
    });
  }

  async listFrameOps(uid: string, path: string, afterSeq: number, limit: number): Promise<FrameOpRecord[]> {
    if (!storable(path)) return [];
    const { rows } = await this.pool.query<FrameOpRecord>(
      'SELECT seq, op FROM frame_ops WHERE workspace_uid = $1 AND path = $2 AND seq > $3 ORDER BY seq LIMIT $4',
      [uid, path, afterSeq, limit],
    );
    return rows;
  }

  async listFrameLogs(uid: string): Promise<FrameLogHead[]> {
    const { rows } = await this.pool.query<FrameLogHead>('SELECT path, max(seq) AS seq FROM frame_ops WHERE workspace_uid = $1 GROUP BY path ORDER BY path', [uid]);
    return rows;
  }

  async deleteFrameLog(uid: string, path: string, throughSeq?: number): Promise<boolean> {
    if (!storable(path)) return false;
    return this.transaction(async (client) => {
      const { rowCount } = await client.query('SELECT 1 FROM workspaces WHERE uid = $1 FOR UPDATE', [uid]);
      if (rowCount === 0) return false;
      if (throughSeq !== undefined && (await this.lastFrameOp(client, uid, path)) !== throughSeq) return false;
      return ((await client.query('DELETE FROM frame_ops WHERE workspace_uid = $1 AND path = $2', [uid, path])).rowCount ?? 0) > 0;
    });
  }

  async renameFrameLog(uid: string, from: string, to: string): Promise<boolean> {
    if (!storable(from) || !storable(to)) return false;
    return this.transaction(async (client) => {
      await this.lockWorkspace(client, uid);
      if ((await this.lastFrameOp(client, uid, to)) !== 0) return false;
      return ((await client.query('UPDATE frame_ops SET path = $1 WHERE workspace_uid = $2 AND path = $3', [to, uid, from])).rowCount ?? 0) > 0;
    });
  }

  async putFrameComparison(repoId: string, id: string, definition: string): Promise<FrameComparisonRecord> {
    const now = new Date().toISOString();
    const { rows } = await this.pool.query<FrameComparisonRecord>(
      `INSERT INTO frame_comparisons (repo_id, id, definition, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
       ON CONFLICT (repo_id, id) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at
       RETURNING id, definition, created_at AS "createdAt", updated_at AS "updatedAt"`,
      [repoId, id, definition, now],
    );
    return rows[0];
  }

  async getFrameComparison(repoId: string, id: string): Promise<FrameComparisonRecord | null> {
    if (!storable(id)) return null;
    const { rows } = await this.pool.query<FrameComparisonRecord>(
      'SELECT id, definition, created_at AS "createdAt", updated_at AS "updatedAt" FROM frame_comparisons WHERE repo_id = $1 AND id = $2',
      [repoId, id],
    );
    return rows[0] ?? null;
  }

  async deleteFrameComparison(repoId: string, id: string): Promise<boolean> {
    if (!storable(id)) return false;
    return ((await this.pool.query('DELETE FROM frame_comparisons WHERE repo_id = $1 AND id = $2', [repoId, id])).rowCount ?? 0) > 0;
  }

  async createToken(t: TokenRecord): Promise<void> {
    await this.pool.query(
      'INSERT INTO tokens (id, name, email, scopes, secret_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [t.id, t.name, t.email, JSON.stringify(t.scopes), t.secretHash, t.createdAt, t.expiresAt],
    );
  }

  async findTokenBySecret(secretHash: string): Promise<TokenRecord | null> {
    const { rows } = await this.pool.query<TokenRow>('SELECT * FROM tokens WHERE secret_hash = $1', [secretHash]);
    return rows[0] ? toToken(rows[0]) : null;
  }

  async findToken(id: string): Promise<TokenRecord | null> {
    const { rows } = await this.pool.query<TokenRow>('SELECT * FROM tokens WHERE id = $1', [id]);
    return rows[0] ? toToken(rows[0]) : null;
  }

  async listTokens(): Promise<TokenRecord[]> {
    const { rows } = await this.pool.query<TokenRow>('SELECT * FROM tokens ORDER BY created_at, id');
    return rows.map(toToken);
  }

  async deleteToken(id: string): Promise<boolean> {
    return (await this.pool.query('DELETE FROM tokens WHERE id = $1', [id])).rowCount === 1;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

class CasLost extends Error {}

/** Applies the migrations not yet recorded, holding the advisory lock so that one process migrates at a time. */
async function migrate(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('SELECT pg_advisory_lock($1, $2)', [...MIGRATION_LOCK]);
    try {
      await client.query(
        `CREATE TABLE IF NOT EXISTS yoke_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`,
      );
      const { rows } = await client.query<{ version: number }>('SELECT version FROM yoke_migrations');
      const applied = new Set(rows.map((r) => r.version));
      const newest = MIGRATIONS[MIGRATIONS.length - 1].version;
      const ahead = [...applied].filter((v) => v > newest);
      if (ahead.length > 0) {
        throw new Error(`The database's schema is newer than this Yoke's (migration ${Math.max(...ahead)}, this Yoke knows up to ${newest}): upgrade Yoke`);
      }
      for (const migration of MIGRATIONS) {
        if (applied.has(migration.version)) continue;
        await client.query('BEGIN');
        try {
          await client.query(migration.sql);
          await client.query('INSERT INTO yoke_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
            migration.version,
            migration.name,
            new Date().toISOString(),
          ]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {
            broken = true;
          });
          throw new Error(`Migration ${migration.version} (${migration.name}) failed: ${(err as Error).message}`);
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1, $2)', [...MIGRATION_LOCK]).catch(() => {
        broken = true;
      });
    }
  } finally {
    client.release(broken);
  }
}

/** Moves a branch from `expected` to `next` (null: creates it only if absent); true if it moved. */
async function casBranch(db: Queryable, repoId: string, name: string, expected: string | null, next: string): Promise<boolean> {
  const now = new Date().toISOString();
  const result =
    expected === null
      ? await db.query(
          `INSERT INTO branches (repo_id, name, commit_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) ON CONFLICT DO NOTHING`,
          [repoId, name, next, now],
        )
      : await db.query('UPDATE branches SET commit_id = $1, updated_at = $2 WHERE repo_id = $3 AND name = $4 AND commit_id = $5', [
          next,
          now,
          repoId,
          name,
          expected,
        ]);
  return result.rowCount === 1;
}

/**
 * Inserts node records not yet stored (bytes sent as binary parameters, in batches, sorted by id so that
 * concurrent writers of the same ids lock them in one order); returns the ids it inserted.
 */
async function insertNodes(db: Queryable, repoId: string, nodes: Array<[string, Uint8Array]>): Promise<Set<string>> {
  const inserted = new Set<string>();
  const sorted = [...nodes].sort(byKey(([id]) => id));
  const now = Date.now();
  for (let start = 0; start < sorted.length; start += NODE_BATCH) {
    const batch = sorted.slice(start, start + NODE_BATCH);
    const values: unknown[] = [repoId, now];
    const tuples = batch.map(([id, bytes]) => {
      values.push(id, asBuffer(bytes));
      return `($1, $${values.length - 1}, $${values.length}, $2::bigint)`;
    });
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO tree_nodes (repo_id, id, data, stored_at) VALUES ${tuples.join(', ')} ON CONFLICT DO NOTHING RETURNING id`,
      values,
    );
    for (const row of rows) inserted.add(row.id);
  }
  // Stored again counts as stored now (MetaStore.putNodes): gc's grace period then covers a row a
  // landing shares with garbage (a chunk two records hold) until what names it is reachable.
  const present = sorted.filter(([id]) => !inserted.has(id)).map(([id]) => id);
  if (present.length > 0) {
    await db.query('UPDATE tree_nodes SET stored_at = $2 WHERE repo_id = $1 AND id = ANY($3::text[]) AND stored_at < $2', [repoId, now, present]);
  }
  return inserted;
}

async function insertBlobs(db: Queryable, repoId: string, blobs: Array<{ hash: string; size: number }>): Promise<void> {
  if (blobs.length === 0) return;
  const sorted = [...blobs].sort(byKey((b) => b.hash));
  await db.query(
    `INSERT INTO repo_blobs (repo_id, hash, size) SELECT $1, * FROM unnest($2::text[], $3::bigint[]) ON CONFLICT DO NOTHING`,
    [repoId, sorted.map((b) => b.hash), sorted.map((b) => b.size)],
  );
}

/** Commit rows and their parent links; present ones are left as they are. */
async function insertCommits(db: Queryable, repoId: string, commits: CommitRecord[]): Promise<void> {
  const sorted = [...commits].sort(byKey((c) => c.id));
  await db.query(
    `INSERT INTO commits (repo_id, id, parent_ids, message, author, email, timestamp, root_id, generation, stored_at)
     SELECT $1, t.*, $10::bigint FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[]) AS t
     ON CONFLICT DO NOTHING`,
    [
      repoId,
      sorted.map((c) => c.id),
      sorted.map((c) => JSON.stringify(c.parentIds)),
      sorted.map((c) => c.message),
      sorted.map((c) => c.author),
      sorted.map((c) => c.email),
      sorted.map((c) => c.timestamp),
      sorted.map((c) => c.rootId),
      sorted.map((c) => c.generation),
      Date.now(),
    ],
  );
  const parents = sorted.flatMap((c) => c.parentIds.map((parent, position) => ({ id: c.id, position, parent })));
  if (parents.length === 0) return;
  await db.query(
    `INSERT INTO commit_parents (repo_id, commit_id, position, parent_id)
     SELECT $1, * FROM unnest($2::text[], $3::int[], $4::text[]) ON CONFLICT DO NOTHING`,
    [repoId, parents.map((p) => p.id), parents.map((p) => p.position), parents.map((p) => p.parent)],
  );
}
