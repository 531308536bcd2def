import { spawnSync } from 'node:child_process';
import { strict as assert } from 'node:assert';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, it } from 'node:test';
import { createGunzip, gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { hashBuffer } from '../../src/core/hash.js';
import { describeFile } from '../../src/core/mime.js';
import {
  compareNames,
  decodeNodeRecord,
  decodeOxenNode,
  encodeNodeRecord,
  encodeOxenNode,
  NO_PARENT,
  oxenVnodeIndex,
  type NodeRecord,
  type OxenDirNode,
  type OxenCommitNode,
  type OxenFileNode,
  type RecordChild,
} from '../../src/core/oxen-nodes.js';
import { frameRecord } from '../../src/core/tree.js';
import { readDirHashesDb, writeDirHashesDb } from '../../src/storage/dir-hashes-db.js';
import { AUTHOR, assertEnvelope, createRepo, putFiles, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Oxen's sync protocol over HTTP, with pushes built by hand as Oxen's client builds them: blobs
 * through POST versions, node records through POST tree/nodes, each commit's dir_hashes through
 * POST commits/upload, then a branch moved onto the head, which is when the server verifies the
 * pushed tree and adopts the commits.
 */

// ---- building a push ------------------------------------------------------------------------

interface CommitSpec {
  id: string;
  parents: string[];
  message: string;
  /** Commit time, seconds since the epoch. */
  seconds: number;
  /** Path → content and the commit that last changed it (what Oxen's client writes in the file node). */
  files: Record<string, { content: string; lastCommitId: string }>;
  /** The repository's commits, oldest first: a directory's last commit is the latest of its entries'. */
  order: string[];
  /** Vnodes per directory path ('' is the root); 1 unless given, as Oxen's client writes a directory under 10,000 entries. */
  vnodes?: Record<string, number>;
  /** A path whose entry goes in the vnode after the one its path hashes to. */
  misplace?: string;
  /** Write vnode children in reverse name order. */
  reverse?: boolean;
  /** Path (of a file, or of a directory in a tree of single vnodes) → the name its node carries instead of its last segment. */
  rename?: Record<string, string>;
}

interface BuiltCommit {
  id: string;
  rootId: string;
  /** Every record of the commit's tree (commit, directories, vnodes), as pushed. */
  records: NodeRecord[];
  /** Oxen's dir_hashes of the commit: directory path ('' the root) → directory id. */
  dirs: Map<string, string>;
  /** Content hash → bytes, of every file. */
  blobs: Map<string, Buffer>;
  /** Path → file node, of every file. */
  files: Map<string, OxenFileNode>;
}

interface Child {
  type: 'File' | 'Dir';
  name: string;
  hash: string;
  payload: Buffer;
  lastCommitId: string;
  counts: Record<string, number>;
  sizes: Record<string, number>;
}

const commitId = (label: string) => hashBuffer(`commit ${label}`);

function buildCommit(spec: CommitSpec): BuiltCommit {
  const records: NodeRecord[] = [];
  const dirs = new Map<string, string>();
  const blobs = new Map<string, Buffer>();
  const files = new Map<string, OxenFileNode>();
  const later = (a: string, b: string) => (spec.order.indexOf(a) >= spec.order.indexOf(b) ? a : b);

  const fileChild = (path: string, segment: string): Child => {
    const { content, lastCommitId } = spec.files[path];
    const name = spec.rename?.[path] ?? segment;
    const bytes = Buffer.from(content);
    const hash = hashBuffer(bytes);
    const { mimeType, dataType, extension } = describeFile(name);
    const node: OxenFileNode = {
      type: 'File',
      name,
      metadataHash: null,
      hash,
      combinedHash: hash,
      numBytes: bytes.length,
      lastCommitId,
      // The same for every commit: a file's node changes only when the file does.
      lastModifiedSeconds: 1_600_000_000,
      lastModifiedNanoseconds: 0,
      dataType,
      metadata: null,
      mimeType,
      extension,
      chunkHashes: [hash],
      chunkType: 'SingleFile',
      storageBackend: 'Disk',
    };
    blobs.set(hash, bytes);
    files.set(path, node);
    return { type: 'File', name, hash, payload: encodeOxenNode(node), lastCommitId, counts: { [dataType]: 1 }, sizes: { [dataType]: bytes.length } };
  };

  const dirChild = (path: string): Child => {
    const prefix = path === '' ? '' : `${path}/`;
    const kinds = new Map<string, 'file' | 'dir'>();
    for (const p of Object.keys(spec.files)) {
      if (!p.startsWith(prefix)) continue;
      const [name, ...rest] = p.slice(prefix.length).split('/');
      kinds.set(name, rest.length > 0 ? 'dir' : 'file');
    }
    const children = [...kinds].map(([name, kind]) => (kind === 'dir' ? dirChild(prefix + name) : fileChild(prefix + name, name)));
    const counts: Record<string, number> = {};
    const sizes: Record<string, number> = {};
    for (const c of children) {
      for (const type of Object.keys(c.counts)) {
        counts[type] = (counts[type] ?? 0) + c.counts[type];
        sizes[type] = (sizes[type] ?? 0) + c.sizes[type];
      }
    }
    const lastCommitId = children.map((c) => c.lastCommitId).reduce(later);
    const count = spec.vnodes?.[path] ?? 1;
    // Ids from content, so that a directory a commit leaves alone keeps its id (and is not pushed again).
    const sorted = [...children].sort((a, b) => compareNames(a.name, b.name));
    const id = hashBuffer(JSON.stringify(['dir', path, count, spec.misplace ?? null, sorted.map((c) => [c.name, c.hash, c.lastCommitId])]));
    const buckets: Child[][] = Array.from({ length: count }, () => []);
    for (const c of sorted) {
      const index = oxenVnodeIndex(prefix + c.name, count);
      buckets[prefix + c.name === spec.misplace ? (index + 1) % count : index].push(c);
    }
    const vnodes = buckets.map((entries, index): RecordChild => {
      const vnodeId = hashBuffer(JSON.stringify(['vnode', id, index]));
      const payload = encodeOxenNode({ type: 'VNode', hash: vnodeId, numEntries: entries.length });
      const rows = (spec.reverse ? [...entries].reverse() : entries).map((c) => ({ type: c.type, hash: c.hash, payload: c.payload }));
      records.push(encodeNodeRecord(vnodeId, 'VNode', id, payload, rows));
      return { type: 'VNode', hash: vnodeId, payload };
    });
    const name = spec.rename?.[path] ?? path.split('/').pop()!;
    const payload = encodeOxenNode({
      type: 'Dir',
      name,
      hash: id,
      numEntries: children.length,
      numBytes: Object.values(sizes).reduce((a, b) => a + b, 0),
      lastCommitId,
      lastModifiedSeconds: 0,
      lastModifiedNanoseconds: 0,
      dataTypeCounts: counts,
      dataTypeSizes: sizes,
    });
    records.push(encodeNodeRecord(id, 'Dir', NO_PARENT, payload, vnodes));
    dirs.set(path, id);
    return { type: 'Dir', name, hash: id, payload, lastCommitId, counts, sizes };
  };

  const root = dirChild('');
  const payload = encodeOxenNode({
    type: 'Commit',
    hash: spec.id,
    parentIds: spec.parents,
    message: spec.message,
    author: AUTHOR.name,
    email: AUTHOR.email,
    timestamp: { seconds: spec.seconds, nanoseconds: 0 },
  });
  const commit = encodeNodeRecord(spec.id, 'Commit', spec.parents[0] ?? NO_PARENT, payload, [{ type: 'Dir', hash: root.hash, payload: root.payload }]);
  return { id: spec.id, rootId: root.hash, records: [commit, ...records], dirs, blobs, files };
}

/** `r` with its child table rewritten by `change` (ids and payloads of its children). */
function rewriteChildren(r: NodeRecord, change: (children: RecordChild[]) => RecordChild[]): NodeRecord {
  const decoded = decodeNodeRecord(r.node, r.children);
  return encodeNodeRecord(r.id, r.type, decoded.parentId, decoded.payload, change(decoded.children.map(({ type, hash, payload }) => ({ type, hash, payload }))));
}

/** The records of `commit` that `before` (its parent, already pushed) does not have: what a client sends. */
const newRecords = (commit: BuiltCommit, before?: BuiltCommit) => commit.records.filter((r) => !before?.records.some((o) => o.id === r.id));

// ---- tarballs -------------------------------------------------------------------------------

interface TarEntry {
  name: string;
  data?: Buffer;
  type?: 'file' | 'directory';
}

async function tarGz(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const reading = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const e of entries) {
    if (e.type === 'directory') pack.entry({ name: e.name, type: 'directory', mode: 0o755 });
    else pack.entry({ name: e.name, mode: 0o644 }, e.data ?? Buffer.alloc(0));
  }
  pack.finalize();
  await reading;
  return gzipSync(Buffer.concat(chunks));
}

/** `{3 hex}/{rest}`: where Oxen's client puts a node in the tarballs it pushes (no prefix). */
const nodeDir = (id: string) => `${id.slice(0, 3)}/${id.slice(3)}`;

/** A record's tar entries, as the client packs its node directory: the directory, then `node` and `children`. */
const recordEntries = (r: Pick<NodeRecord, 'id' | 'node' | 'children'>): TarEntry[] => [
  { name: `${nodeDir(r.id)}/`, type: 'directory' },
  { name: `${nodeDir(r.id)}/node`, data: r.node },
  { name: `${nodeDir(r.id)}/children`, data: r.children },
];

const nodesTarball = (records: NodeRecord[]) => tarGz(records.flatMap(recordEntries));

/** `history/{commit}/dir_hashes/`: a real RocksDB of the commit's directories, as the client uploads it. */
async function dirHashesTarball(commit: BuiltCommit): Promise<Buffer> {
  const scratch = await mkdtemp(join(tmpdir(), 'yoke-sync-test-'));
  try {
    const db = join(scratch, 'db');
    await writeDirHashesDb(db, commit.dirs);
    const entries: TarEntry[] = [
      { name: `history/${commit.id}/`, type: 'directory' },
      { name: `history/${commit.id}/dir_hashes/`, type: 'directory' },
    ];
    for (const name of await readdir(db)) entries.push({ name: `history/${commit.id}/dir_hashes/${name}`, data: await readFile(join(db, name)) });
    return await tarGz(entries);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function untar(gz: Buffer): Promise<Array<{ name: string; type: string; data: Buffer }>> {
  const extract = tar.extract();
  const entries: Array<{ name: string; type: string; data: Buffer }> = [];
  const reading = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      entries.push({ name: entry.header.name, type: entry.header.type ?? 'file', data: Buffer.concat(chunks) });
    }
  })();
  await Promise.all([pipeline(Readable.from([gz]), createGunzip(), extract), reading]);
  return entries;
}

/** The records of a node download (`tree/nodes/{3 hex}/{rest}/node|children`), by id. */
async function untarRecords(gz: Buffer): Promise<Map<string, { node: Buffer; children: Buffer }>> {
  const records = new Map<string, { node: Buffer; children: Buffer }>();
  for (const entry of await untar(gz)) {
    if (entry.type === 'directory') continue;
    const m = /^tree\/nodes\/([0-9a-f]{3})\/([0-9a-f]+)\/(node|children)$/.exec(entry.name);
    assert.ok(m, `a node file: ${entry.name}`);
    const id = m[1] + m[2];
    const record = records.get(id) ?? { node: Buffer.alloc(0), children: Buffer.alloc(0) };
    record[m[3] as 'node' | 'children'] = entry.data;
    records.set(id, record);
  }
  return records;
}

/** Directory paths ('' the root) of a tree holding `paths`. */
function dirPaths(paths: string[]): string[] {
  const dirs = new Set<string>(['']);
  for (const path of paths) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return [...dirs];
}

// ---- the tests ------------------------------------------------------------------------------

describe('sync: pushes built by hand (tree/nodes, commits/upload, branches)', () => {
  let server: TestServer;
  let repos = 0;

  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  const api = (repo: string, path: string) => `/api/repos/${repo}/${path}`;
  const newRepo = async () => {
    const name = `r${++repos}`;
    await createRepo(server, 'sync', name);
    return `sync/${name}`;
  };
  const postJson = (repo: string, path: string, body: unknown) =>
    server.json(api(repo, path), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const putJson = (repo: string, path: string, body: unknown) =>
    server.json(api(repo, path), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  /** A raw tarball body, as the client sends it. */
  const postTar = (repo: string, path: string, body: Buffer) =>
    server.raw('POST', api(repo, path), body, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
  const missingCommits = async (repo: string, ids: string[]) => {
    const { status, body } = await postJson(repo, 'commits/missing', { hashes: ids });
    assert.equal(status, 200, JSON.stringify(body));
    return body.hashes as string[];
  };
  const missingNodes = async (repo: string, ids: string[]) => {
    const { status, body } = await postJson(repo, 'tree/nodes/missing_node_hashes', { hashes: ids });
    assert.equal(status, 200, JSON.stringify(body));
    return body.hashes as string[];
  };
  /** The commit a branch points at; null when there is no such branch. */
  const branchHead = async (repo: string, branch = 'main') => {
    const { status, body } = await server.json(api(repo, `branches/${branch}`));
    if (status === 404) return null;
    assert.equal(status, 200, JSON.stringify(body));
    return body.branch.commit_id as string;
  };
  async function uploadBlobs(repo: string, blobs: Iterable<Buffer>) {
    const form = new FormData();
    for (const data of blobs) form.append('file[]', new Blob([new Uint8Array(data)]), hashBuffer(data));
    const { status, body } = await server.json(api(repo, 'versions'), { method: 'POST', body: form });
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body.err_files, []);
  }
  async function pushNodes(repo: string, records: NodeRecord[]) {
    const { status, body } = await postTar(repo, 'tree/nodes', await nodesTarball(records));
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.nodes, records.length);
  }
  async function pushDirHashes(repo: string, commit: BuiltCommit) {
    const { status, body } = await postTar(repo, 'commits/upload', await dirHashesTarball(commit));
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body.commits, [commit.id]);
  }
  /** A whole push of one commit, in the client's order: blobs, nodes, dir_hashes. */
  async function push(repo: string, commit: BuiltCommit, parent?: BuiltCommit, { blobs = commit.blobs.values() }: { blobs?: Iterable<Buffer> } = {}) {
    await uploadBlobs(repo, blobs);
    await pushNodes(repo, newRecords(commit, parent));
    await pushDirHashes(repo, commit);
  }

  // A history of two commits: the second changes and adds files under data/train, removes docs/
  // and leaves images/ and README.md as they were. The root and data/train are split over vnodes.
  const c1 = commitId('first');
  const c2 = commitId('second');
  const order = [c1, c2];
  const vnodes = { '': 2, 'data/train': 2 };
  const firstFiles: CommitSpec['files'] = {
    'README.md': { content: '# pushed\n', lastCommitId: c1 },
    'data/train/a.csv': { content: 'x\n1\n', lastCommitId: c1 },
    'data/train/b.csv': { content: 'x\n2\n', lastCommitId: c1 },
    'data/train/c.csv': { content: 'x\n3\n', lastCommitId: c1 },
    'data/test/t.csv': { content: 'x\n4\n', lastCommitId: c1 },
    'docs/guide.txt': { content: 'read me\n', lastCommitId: c1 },
    'images/cat.png': { content: 'not a png', lastCommitId: c1 },
  };
  const first = buildCommit({ id: c1, parents: [], message: 'first', seconds: 1_700_000_000, order, vnodes, files: firstFiles });
  const { 'docs/guide.txt': _removed, ...kept } = firstFiles;
  const second = buildCommit({
    id: c2,
    parents: [c1],
    message: 'second',
    seconds: 1_700_003_600,
    order,
    vnodes,
    files: {
      ...kept,
      'data/train/a.csv': { content: 'x\n1, changed\n', lastCommitId: c2 },
      'data/train/d.csv': { content: 'x\n5\n', lastCommitId: c2 },
    },
  });

  it('adopts a well-formed push of two commits when a branch is created on its head', async () => {
    const R = await newRepo();
    // The data is what the test says it is: images/ is the same directory in both, the rest differs.
    assert.equal(first.dirs.get('images'), second.dirs.get('images'));
    assert.notEqual(first.dirs.get('data'), second.dirs.get('data'));
    assert.ok(newRecords(second, first).length < second.records.length, 'the second push leaves out what the first sent');

    assert.deepEqual(await missingCommits(R, [c1, c2]), [c1, c2]);
    await uploadBlobs(R, first.blobs.values());
    await pushNodes(R, first.records);
    // Nodes alone are not a commit: the client resends it unless its dir_hashes arrived too.
    assert.deepEqual(await missingCommits(R, [c1, c2]), [c1, c2]);
    assert.equal((await server.json(api(R, `tree/nodes/hash/${c1}`))).status, 200);
    assert.equal((await server.json(api(R, `tree/nodes/hash/${first.rootId}`))).status, 200);
    assert.equal((await server.json(api(R, `tree/nodes/hash/${first.dirs.get('data/train')}`))).status, 200);
    const absent = await server.json(api(R, `tree/nodes/hash/${c2}`));
    assert.equal(absent.status, 404);
    assertEnvelope(absent.body, 'error');
    assert.equal((await server.json(api(R, 'tree/nodes/hash/zz'))).status, 404);
    assert.equal((await server.json(api(R, `tree/nodes/hash/${c1.toUpperCase().padStart(32, '0')}`))).status, 200, 'ids are read in any spelling');
    await pushDirHashes(R, first);
    assert.deepEqual(await missingCommits(R, [c1, c2]), [c2]);

    await push(R, second, first, { blobs: [...second.blobs.values()].filter((b) => !first.blobs.has(hashBuffer(b))) });
    assert.deepEqual(await missingCommits(R, [c1, c2]), []);
    assert.equal(await branchHead(R), null, 'nothing moves a branch but the client');

    const created = await postJson(R, 'branches', { new_name: 'main', commit_id: c2 });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    assert.equal(created.body.commit_id, c2);
    assert.equal(await branchHead(R), c2);
    assert.deepEqual(await missingCommits(R, [c1, c2]), []);

    // Files read from the pushed tree, and the removed one gone (but there at the first commit).
    for (const [path, node] of second.files) {
      const res = await server.fetch(api(R, `file/main/${path}`));
      assert.equal(res.status, 200, path);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), second.blobs.get(node.hash), path);
    }
    assert.equal((await server.fetch(api(R, 'file/main/docs/guide.txt'))).status, 404);
    assert.equal(await (await server.fetch(api(R, `file/${c1}/docs/guide.txt`))).text(), 'read me\n');

    // History from the commit nodes, newest first.
    const history = await server.json(api(R, 'commits/history/main'));
    assert.equal(history.status, 200);
    assert.deepEqual(
      history.body.commits.map((c: { id: string; parent_ids: string[]; message: string; author: string; email: string; timestamp: string; root_hash: string }) => [c.id, c.parent_ids, c.message, c.author, c.email, c.timestamp, c.root_hash]),
      [
        [c2, [c1], 'second', AUTHOR.name, AUTHOR.email, new Date(1_700_003_600_000).toISOString(), second.rootId],
        [c1, [], 'first', AUTHOR.name, AUTHOR.email, new Date(1_700_000_000_000).toISOString(), first.rootId],
      ],
    );

    // Listings date each entry by the last commit its node names.
    const latest = (listing: { body: { entries: Array<{ filename: string; latest_commit: { id: string } | null }> } }) =>
      Object.fromEntries(listing.body.entries.map((e) => [e.filename, e.latest_commit?.id]));
    const root = await server.json(api(R, 'dir/main/'));
    assert.equal(root.status, 200);
    assert.deepEqual(latest(root), { data: c2, images: c1, 'README.md': c1 });
    assert.equal(root.body.dir.latest_commit.id, c2);
    const train = await server.json(api(R, 'dir/main/data/train'));
    assert.deepEqual(latest(train), { 'a.csv': c2, 'b.csv': c1, 'c.csv': c1, 'd.csv': c2 });
    assert.equal(train.body.dir.latest_commit.id, c2);
    const test = await server.json(api(R, 'dir/main/data/test'));
    assert.equal(test.body.dir.latest_commit.id, c1);
  });

  it('refuses to move a branch onto a commit whose blob was never uploaded, and asks for the commit again', async () => {
    const R = await newRepo();
    await push(R, first);
    assert.equal((await postJson(R, 'branches', { new_name: 'main', commit_id: c1 })).status, 200);
    // data/train/d.csv's bytes are never sent.
    const d = second.files.get('data/train/d.csv')!;
    await push(R, second, first, { blobs: [second.blobs.get(second.files.get('data/train/a.csv')!.hash)!] });
    assert.deepEqual(await missingCommits(R, [c2]), [], 'commits/upload arrived');

    const created = await postJson(R, 'branches', { new_name: 'feature', commit_id: c2 });
    assert.equal(created.status, 400, JSON.stringify(created.body));
    assertEnvelope(created.body, 'error');
    assert.equal(created.body.error.type, 'incomplete_push');
    assert.match(created.body.status_description, new RegExp(d.hash));
    assert.equal(await branchHead(R, 'feature'), null);

    const moved = await putJson(R, 'branches/main', { commit_id: c2 });
    assert.equal(moved.status, 400, JSON.stringify(moved.body));
    assert.equal(moved.body.error.type, 'incomplete_push');
    assert.equal(await branchHead(R), c1);
    assert.deepEqual((await server.json(api(R, 'commits/history/main'))).body.commits.map((c: { id: string }) => c.id), [c1]);
    // The next push resends the commit (and this time its blob), which then goes through.
    assert.deepEqual(await missingCommits(R, [c1, c2]), [c2]);
    await push(R, second, first, { blobs: [second.blobs.get(d.hash)!] });
    assert.equal((await putJson(R, 'branches/main', { commit_id: c2 })).status, 200);
    assert.equal(await branchHead(R), c2);
    assert.equal(await (await server.fetch(api(R, 'file/main/data/train/d.csv'))).text(), 'x\n5\n');
  });

  it('refuses to move a branch onto a commit with an entry in the wrong vnode, or a vnode never sent', async () => {
    const R = await newRepo();
    /** Four files at the root, split over two vnodes. */
    const fourFiles = (label: string, extra: Partial<CommitSpec> = {}) =>
      buildCommit({
        id: commitId(label),
        parents: [],
        message: label,
        seconds: 1_700_000_000,
        order: [commitId(label)],
        vnodes: { '': 2 },
        files: Object.fromEntries(['a.txt', 'b.txt', 'c.txt', 'd.txt'].map((p) => [p, { content: p, lastCommitId: commitId(label) }])),
        ...extra,
      });
    const misplaced = fourFiles('misplaced', { misplace: 'b.txt' });
    await push(R, misplaced);
    const refused = await postJson(R, 'branches', { new_name: 'main', commit_id: misplaced.id });
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assertEnvelope(refused.body, 'error');
    assert.equal(refused.body.error.type, 'incomplete_push');
    assert.match(refused.body.status_description, /'b\.txt' is in vnode \d of 2/);
    assert.equal(await branchHead(R), null);
    assert.deepEqual(await missingCommits(R, [misplaced.id]), [misplaced.id]);

    // The same files, well placed, but one vnode record held back.
    const holey = fourFiles('holey');
    const withheld = holey.records.find((r) => r.type === 'VNode')!;
    await pushNodes(R, holey.records.filter((r) => r !== withheld));
    await pushDirHashes(R, holey);
    const incomplete = await postJson(R, 'branches', { new_name: 'main', commit_id: holey.id });
    assert.equal(incomplete.status, 400, JSON.stringify(incomplete.body));
    assert.equal(incomplete.body.error.type, 'incomplete_push');
    assert.match(incomplete.body.status_description, new RegExp(withheld.id));
    assert.equal(await branchHead(R), null);
    assert.deepEqual(await missingCommits(R, [holey.id]), [holey.id]);
    await pushNodes(R, [withheld]);
    assert.equal((await postJson(R, 'branches', { new_name: 'main', commit_id: holey.id })).status, 200);
  });

  it('refuses to move a branch onto a commit whose parent was never pushed, and takes it once the parent arrives', async () => {
    const R = await newRepo();
    await push(R, second);
    const refused = await postJson(R, 'branches', { new_name: 'main', commit_id: c2 });
    assert.equal(refused.status, 400, JSON.stringify(refused.body));
    assertEnvelope(refused.body, 'error');
    assert.match(refused.body.status_description, new RegExp(`${c1}.*push it first`));
    assert.equal(await branchHead(R), null);
    // The client learns which one to send.
    assert.deepEqual(await missingCommits(R, [c1, c2]), [c1]);
    await push(R, first);
    assert.equal((await postJson(R, 'branches', { new_name: 'main', commit_id: c2 })).status, 200);
    assert.deepEqual((await server.json(api(R, 'commits/history/main'))).body.commits.map((c: { id: string }) => c.id), [c2, c1]);
  });

  it('refuses malformed node tarballs with 400 and stores nothing from them', async () => {
    const R = await newRepo();
    const commit = first.records.find((r) => r.id === c1)!;
    const vnode = first.records.find((r) => r.type === 'VNode')!;
    const fileNode = first.files.get('README.md')!;
    const fileRecord = encodeNodeRecord(fileNode.hash, 'File', NO_PARENT, encodeOxenNode(fileNode), []);
    const cases: Array<[string, Buffer, string]> = [
      ['not gzip', Buffer.from('plain bytes, not a tarball'), 'bad_request'],
      ['gzip of something that is not a tar', gzipSync(Buffer.from('plain bytes, not a tarball')), 'bad_request'],
      // Each tarball below starts with a well-formed record, which must not be kept either.
      ['a file outside the layout', await tarGz([...recordEntries(vnode), { name: 'notes.txt', data: Buffer.from('hi') }]), 'bad_request'],
      ['a third file in a node directory', await tarGz([...recordEntries(vnode), { name: `${nodeDir(commit.id)}/extra`, data: Buffer.from('hi') }]), 'bad_request'],
      ['a path climbing out', await tarGz([...recordEntries(vnode), { name: `../${nodeDir(commit.id)}/node`, data: commit.node }]), 'bad_request'],
      ['a node without its children', await tarGz([...recordEntries(vnode), { name: `${nodeDir(commit.id)}/node`, data: commit.node }]), 'bad_request'],
      ['a node whose payload names another id', await tarGz([...recordEntries(vnode), ...recordEntries({ ...commit, id: c2 })]), 'bad_node'],
      ['a File record alone', await tarGz([...recordEntries(vnode), ...recordEntries(fileRecord)]), 'bad_node'],
      ['a node blob that is cut short', await tarGz([...recordEntries(vnode), ...recordEntries({ ...commit, node: commit.node.subarray(0, 30) })]), 'bad_node'],
    ];
    for (const [what, body, type] of cases) {
      const res = await postTar(R, 'tree/nodes', body);
      assert.equal(res.status, 400, `${what}: ${JSON.stringify(res.body)}`);
      assertEnvelope(res.body, 'error');
      assert.equal(res.body.error.type, type, what);
      assert.deepEqual(await missingNodes(R, [vnode.id, commit.id, c2, fileNode.hash]), [vnode.id, commit.id, c2, fileNode.hash], what);
    }
    // The same well-formed record on its own is taken.
    await pushNodes(R, [vnode]);
    assert.deepEqual(await missingNodes(R, [vnode.id, commit.id]), [commit.id]);

    // commits/upload takes history/{commit}/dir_hashes/… only, and a refused one marks nothing received.
    await pushNodes(R, first.records);
    for (const [what, body] of [
      ['not gzip', Buffer.from('plain bytes')],
      ['an entry outside history/', await tarGz([{ name: `history/${c1}/dir_hashes/`, type: 'directory' }, { name: 'elsewhere/file', data: Buffer.from('x') }])],
      ['a path climbing out', await tarGz([{ name: `history/${c1}/dir_hashes/../../../x`, data: Buffer.from('x') }])],
    ] as const) {
      const res = await postTar(R, 'commits/upload', body);
      assert.equal(res.status, 400, `${what}: ${JSON.stringify(res.body)}`);
      assertEnvelope(res.body, 'error');
      assert.deepEqual(await missingCommits(R, [c1]), [c1], what);
    }
  });

  it('refuses a pushed tree whose entries are named what no path segment can be', async () => {
    const R = await newRepo();
    const cases: Array<[path: string, name: string]> = [
      ['x.txt', '..'],
      ['x.txt', '.'],
      ['x.txt', ''],
      ['x.txt', 'a/b'],
      ['x.txt', 'a\\b'],
      ['x.txt', 'nul\0.txt'],
      ['x.txt', '../../escape.txt'],
      ['sub', '..'],
    ];
    for (const [i, [path, name]] of cases.entries()) {
      const id = commitId(`odd name ${i}`);
      const files = { 'ok.txt': { content: 'ok', lastCommitId: id }, [path === 'sub' ? 'sub/inner.txt' : path]: { content: `case ${i}`, lastCommitId: id } };
      const commit = buildCommit({ id, parents: [], message: 'odd name', seconds: 1_700_000_000, order: [id], files, rename: { [path]: name } });
      await uploadBlobs(R, commit.blobs.values());
      // Refused when the nodes arrive or when a branch is moved onto the commit: either will do.
      let res = await postTar(R, 'tree/nodes', await nodesTarball(commit.records));
      if (res.status === 200) {
        await pushDirHashes(R, commit);
        res = await postJson(R, 'branches', { new_name: `case-${i}`, commit_id: id });
      }
      assert.equal(res.status, 400, `${JSON.stringify(name)} for ${path}: ${JSON.stringify(res.body)}`);
      assertEnvelope(res.body, 'error');
      assert.equal(await branchHead(R, `case-${i}`), null);
    }
  });

  it("refuses records whose child table and the children's payloads disagree about an id", async () => {
    const id = commitId('disagreeing');
    const base = buildCommit({ id, parents: [], message: 'disagreeing', seconds: 1_700_000_000, order: [id], files: { 'x.txt': { content: 'x', lastCommitId: id } } });
    // Bytes the repository holds too, so that a missing blob is not what refuses the push.
    const other = Buffer.from('other bytes');
    const [commit, vnode, root] = base.records;
    assert.deepEqual([commit.type, vnode.type, root.type], ['Commit', 'VNode', 'Dir']);
    const cases: Array<[string, NodeRecord]> = [
      // The row says one file, the payload another.
      ['a file row', rewriteChildren(vnode, ([file]) => [{ ...file, hash: hashBuffer(other) }])],
      // The root's row names its vnode, the payload copy names another vnode.
      ['a vnode row', rewriteChildren(root, ([v]) => [{ ...v, payload: encodeOxenNode({ type: 'VNode', hash: hashBuffer('another vnode'), numEntries: 1 }) }])],
      // The commit's row names the root, the payload copy names another directory.
      ['the root row', rewriteChildren(commit, ([dir]) => [{ ...dir, payload: encodeOxenNode({ ...(decodeOxenNode('Dir', dir.payload) as OxenDirNode), hash: hashBuffer('another root') }) }])],
    ];
    for (const [what, tampered] of cases) {
      // A repository each, since the records share ids.
      const R = await newRepo();
      await uploadBlobs(R, [...base.blobs.values(), other]);
      // Refused when the nodes arrive or when a branch is moved onto the commit: either will do.
      let res = await postTar(R, 'tree/nodes', await nodesTarball(base.records.map((r) => (r.id === tampered.id ? tampered : r))));
      if (res.status === 200) {
        await pushDirHashes(R, base);
        res = await postJson(R, 'branches', { new_name: 'main', commit_id: id });
      }
      assert.equal(res.status, 400, `${what}: ${JSON.stringify(res.body)}`);
      assertEnvelope(res.body, 'error');
      assert.equal(await branchHead(R), null);
    }
  });

  it('serves a large pushed vnode (stored in chunks) and the directory records Yoke writes above it byte for byte', async () => {
    const R = await newRepo();
    const id = commitId('large vnode');
    const files = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`big/f${i}.txt`, { content: `file ${i}`, lastCommitId: id }]));
    const built = buildCommit({ id, parents: [], message: 'large vnode', seconds: 1_700_000_000, order: [id], files, vnodes: { big: 2 } });
    await push(R, built);
    assert.equal((await postJson(R, 'branches', { new_name: 'main', commit_id: id })).status, 200);
    const served = await untarRecords(Buffer.from(await (await server.fetch(api(R, 'tree/download'))).arrayBuffer()));
    assert.deepEqual([...served.keys()].sort(), built.records.map((r) => r.id).sort());
    for (const r of built.records) assert.deepEqual(frameRecord(served.get(r.id)!), frameRecord(r), `record ${r.id} (${r.type})`);
    // A commit of Yoke's into it: its new vnode and directory records read back whole, as they would travel.
    assert.equal((await putFiles(server, R, 'main/big', [{ name: 'f7.txt', content: 'changed' }])).status, 200);
    const rewritten = await untarRecords(Buffer.from(await (await server.fetch(api(R, 'tree/download'))).arrayBuffer()));
    for (const [recordId, r] of rewritten) {
      const decoded = decodeNodeRecord(r.node, r.children);
      const rebuilt = encodeNodeRecord(recordId, decoded.type, decoded.parentId, decoded.payload, decoded.children);
      assert.deepEqual(frameRecord(rebuilt), frameRecord(r), `record ${recordId}`);
    }
    assert.equal(await (await server.fetch(api(R, 'file/main/big/f7.txt'))).text(), 'changed');
    assert.equal(await (await server.fetch(api(R, 'file/main/big/f299.txt'))).text(), 'file 299');
  });

  it('stores vnode children sent out of order sorted by name, and serves them so', async () => {
    const R = await newRepo();
    const id = commitId('unsorted');
    const spec: CommitSpec = {
      id,
      parents: [],
      message: 'unsorted',
      seconds: 1_700_000_000,
      order: [id],
      // Names whose byte order differs from UTF-16 order (U+FF5E sorts before U+1F600 in UTF-8 only).
      files: Object.fromEntries(['b.txt', 'a.txt', 'Z.txt', 'dir/y.txt', 'dir/x.txt', '\u{1F600}.txt', '\uFF5E.txt'].map((p) => [p, { content: p, lastCommitId: id }])),
    };
    const unsorted = buildCommit({ ...spec, reverse: true });
    const sorted = buildCommit(spec);
    assert.equal(unsorted.rootId, sorted.rootId, 'the same tree, only its vnode rows reordered');
    const rootVnode = unsorted.records.find((r) => r.type === 'VNode' && decodeNodeRecord(r.node, r.children).parentId === unsorted.rootId)!;
    const names = (r: Pick<NodeRecord, 'node' | 'children'>) => decodeNodeRecord(r.node, r.children).children.map((c) => (decodeOxenNode(c.type, c.payload) as { name: string }).name);
    assert.deepEqual(names(rootVnode), ['\u{1F600}.txt', '\uFF5E.txt', 'dir', 'b.txt', 'a.txt', 'Z.txt'], 'sent in reverse order');

    await push(R, unsorted);
    assert.equal((await postJson(R, 'branches', { new_name: 'main', commit_id: id })).status, 200);
    const res = await server.fetch(api(R, 'tree/download'));
    assert.equal(res.status, 200);
    const served = await untarRecords(Buffer.from(await res.arrayBuffer()));
    assert.deepEqual(names(served.get(rootVnode.id)!), ['Z.txt', 'a.txt', 'b.txt', 'dir', '\uFF5E.txt', '\u{1F600}.txt']);
    // Byte for byte the record a client writing in order would have sent.
    assert.deepEqual([...served.keys()].sort(), sorted.records.map((r) => r.id).sort());
    for (const r of sorted.records) assert.deepEqual(frameRecord(served.get(r.id)!), frameRecord(r), `record ${r.id} (${r.type})`);
    // And it reads by name.
    assert.equal(await (await server.fetch(api(R, 'file/main/\u{1F600}.txt'))).text(), '\u{1F600}.txt');
  });

  it('refuses with 409 to move a branch onto a pushed commit that does not descend from it, unless forced', async () => {
    const R = await newRepo();
    await push(R, first);
    assert.equal((await postJson(R, 'branches', { new_name: 'main', commit_id: c1 })).status, 200);
    // Two children of c1: one fast-forwards main, the other then diverges from it.
    const child = (label: string, content: string) => {
      const id = commitId(label);
      return buildCommit({ id, parents: [c1], message: label, seconds: 1_700_001_000, order: [c1, id], vnodes, files: { ...firstFiles, 'side.txt': { content, lastCommitId: id } } });
    };
    const ours = child('ours', 'ours\n');
    const theirs = child('theirs', 'theirs\n');
    await push(R, ours, first);
    await push(R, theirs, first);
    assert.equal((await putJson(R, 'branches/main', { commit_id: ours.id })).status, 200);
    assert.equal(await branchHead(R), ours.id);

    const refused = await putJson(R, 'branches/main', { commit_id: theirs.id });
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assertEnvelope(refused.body, 'error');
    assert.equal(await branchHead(R), ours.id);
    assert.equal(await (await server.fetch(api(R, 'file/main/side.txt'))).text(), 'ours\n');
    assert.deepEqual((await server.json(api(R, 'commits/history/main'))).body.commits.map((c: { id: string }) => c.id), [ours.id, c1]);

    const forced = await putJson(R, 'branches/main', { commit_id: theirs.id, force: true });
    assert.equal(forced.status, 200, JSON.stringify(forced.body));
    assert.equal(await (await server.fetch(api(R, 'file/main/side.txt'))).text(), 'theirs\n');
  });

  it("adopts a push on top of a server-made commit that reuses the server's unchanged directories without sending them", async () => {
    const R = await newRepo();
    assert.equal((await putFiles(server, R, 'main/kept/a.txt', [{ name: 'a.txt', content: 'kept\n' }])).status, 200);
    const base = (await branchHead(R))!;
    // What the client has after pulling: the server's records.
    const res = await server.fetch(api(R, `tree/download/${base}`));
    const pulled = await untarRecords(Buffer.from(await res.arrayBuffer()));
    const baseRoot = (await server.json(api(R, `tree/nodes/resource/${base}/`))).body.hash as string;
    const rootRecord = pulled.get(baseRoot)!;
    const kept = decodeNodeRecord(rootRecord.node, rootRecord.children)
      .children.flatMap((v) => decodeNodeRecord(pulled.get(v.hash)!.node, pulled.get(v.hash)!.children).children)
      .find((e) => e.type === 'Dir' && (decodeOxenNode('Dir', e.payload) as OxenDirNode).name === 'kept')!;
    assert.ok(kept, "the server's kept/ entry");
    const keptDir = decodeOxenNode('Dir', kept.payload) as OxenDirNode;

    // The client's commit: a new file beside kept/, whose entry (and subtree) is the server's as pulled.
    const id = commitId('on top of the server');
    // (A one-file build, for the file's node and bytes.)
    const file = buildCommit({ id, parents: [], message: '', seconds: 0, order: [id], files: { 'new.txt': { content: 'new\n', lastCommitId: id } } });
    const newFile = file.files.get('new.txt')!;
    const entries: RecordChild[] = [
      { type: 'Dir', hash: kept.hash, payload: kept.payload },
      { type: 'File', hash: newFile.hash, payload: encodeOxenNode(newFile) },
    ];
    const vnodeId = hashBuffer('client root vnode');
    const vnodePayload = encodeOxenNode({ type: 'VNode', hash: vnodeId, numEntries: 2 });
    const rootId = hashBuffer('client root');
    const counts = { ...keptDir.dataTypeCounts, text: (keptDir.dataTypeCounts.text ?? 0) + 1 };
    const sizes = { ...keptDir.dataTypeSizes, text: (keptDir.dataTypeSizes.text ?? 0) + newFile.numBytes };
    const rootPayload = encodeOxenNode({ type: 'Dir', name: '', hash: rootId, numEntries: 2, numBytes: keptDir.numBytes + newFile.numBytes, lastCommitId: id, lastModifiedSeconds: 0, lastModifiedNanoseconds: 0, dataTypeCounts: counts, dataTypeSizes: sizes });
    const records = [
      encodeNodeRecord(id, 'Commit', base, encodeOxenNode({ type: 'Commit', hash: id, parentIds: [base], message: 'on top', author: AUTHOR.name, email: AUTHOR.email, timestamp: { seconds: Math.floor(Date.now() / 1000) + 60, nanoseconds: 0 } }), [{ type: 'Dir', hash: rootId, payload: rootPayload }]),
      encodeNodeRecord(rootId, 'Dir', NO_PARENT, rootPayload, [{ type: 'VNode', hash: vnodeId, payload: vnodePayload }]),
      encodeNodeRecord(vnodeId, 'VNode', rootId, vnodePayload, entries),
    ];
    await uploadBlobs(R, file.blobs.values());
    await pushNodes(R, records);
    await pushDirHashes(R, { ...file, id, rootId, dirs: new Map([['', rootId], ['kept', kept.hash]]) });

    const moved = await putJson(R, 'branches/main', { commit_id: id });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.equal(await (await server.fetch(api(R, 'file/main/kept/a.txt'))).text(), 'kept\n');
    assert.equal(await (await server.fetch(api(R, 'file/main/new.txt'))).text(), 'new\n');
    assert.deepEqual((await server.json(api(R, 'commits/history/main'))).body.commits.map((c: { id: string }) => c.id), [id, base]);
    assert.equal((await server.json(api(R, 'dir/main/'))).body.entries.find((e: { filename: string }) => e.filename === 'kept').latest_commit.id, base);
  });

  describe('downloads of a pushed history (dir_hashes, commit_db, tree/download, missing_files)', () => {
    let R: string;
    let c3: string;
    /** The paths of each commit's files, to know its directories. */
    const filesAt = new Map<string, string[]>();

    before(async () => {
      R = await newRepo();
      await push(R, first);
      await push(R, second, first);
      assert.equal((await postJson(R, 'branches', { new_name: 'main', commit_id: c2 })).status, 200);
      // A third commit made by the server on top of the pushed ones.
      assert.equal((await putFiles(server, R, 'main/made/here/new.txt', [{ name: 'new.txt', content: 'server-made\n' }])).status, 200);
      c3 = (await branchHead(R))!;
      filesAt.set(c1, [...first.files.keys()]);
      filesAt.set(c2, [...second.files.keys()]);
      filesAt.set(c3, [...second.files.keys(), 'made/here/new.txt']);
    });

    /** Directory path → id of each directory of `commit`'s tree, as tree/nodes/resource answers. */
    async function dirIdsAt(commit: string): Promise<Map<string, string>> {
      const ids = new Map<string, string>();
      for (const path of dirPaths(filesAt.get(commit)!)) {
        const { status, body } = await server.json(api(R, `tree/nodes/resource/${commit}/${path}`));
        assert.equal(status, 200, `${commit}/${path}`);
        ids.set(path, body.hash);
      }
      return ids;
    }

    /** Unpacks a dir_hashes download and reads each commit's database: commit → (path → id). */
    async function dirHashesDownload(path: string): Promise<Map<string, Map<string, string>>> {
      const res = await server.fetch(api(R, path));
      assert.equal(res.status, 200, path);
      const entries = await untar(Buffer.from(await res.arrayBuffer()));
      const scratch = await mkdtemp(join(tmpdir(), 'yoke-sync-test-'));
      try {
        const commits = new Set<string>();
        for (const entry of entries) {
          const m = /^history\/([0-9a-f]+)\/(?:dir_hashes\/(?:[^/]+)?)?$/.exec(entry.name);
          assert.ok(m, `only history/{commit}/dir_hashes/…: ${entry.name}`);
          commits.add(m[1]);
          const target = join(scratch, entry.name);
          if (entry.type === 'directory') await mkdir(target, { recursive: true });
          else {
            assert.equal(entry.type, 'file', entry.name);
            await mkdir(dirname(target), { recursive: true });
            await writeFile(target, entry.data);
          }
        }
        const dbs = new Map<string, Map<string, string>>();
        for (const commit of commits) dbs.set(commit, await readDirHashesDb(join(scratch, 'history', commit, 'dir_hashes')));
        return dbs;
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    }

    it('download_dir_hashes_db holds the commit and every ancestor, each its tree\'s directory paths → ids', async () => {
      const dbs = await dirHashesDownload(`commits/${c3}/download_dir_hashes_db`);
      assert.deepEqual([...dbs.keys()].sort(), [c1, c2, c3].sort());
      for (const commit of [c1, c2, c3]) assert.deepEqual(dbs.get(commit), await dirIdsAt(commit), commit);
      // The pushed commits' indexes are the client's own, and the server-made one carries the unchanged directories over.
      assert.deepEqual(dbs.get(c1), first.dirs);
      assert.deepEqual(dbs.get(c2), second.dirs);
      assert.equal(dbs.get(c3)!.get('images'), second.dirs.get('images'));
      assert.ok(dbs.get(c3)!.has('made/here'));

      const byBranch = await dirHashesDownload('commits/main/download_dir_hashes_db');
      assert.deepEqual(byBranch, dbs);
      const older = await dirHashesDownload(`commits/${c1}/download_dir_hashes_db`);
      assert.deepEqual([...older.keys()], [c1]);
      assert.equal((await server.json(api(R, 'commits/0123456789abcdef/download_dir_hashes_db'))).status, 404);
    });

    it('download_dir_hashes_db of base..head holds base, head and the commits between', async () => {
      const all = await dirHashesDownload(`commits/${c1}..${c3}/download_dir_hashes_db`);
      assert.deepEqual([...all.keys()].sort(), [c1, c2, c3].sort());
      for (const commit of [c1, c2, c3]) assert.deepEqual(all.get(commit), await dirIdsAt(commit), commit);
      const last = await dirHashesDownload(`commits/${c2}..${c3}/download_dir_hashes_db`);
      assert.deepEqual([...last.keys()].sort(), [c2, c3].sort());
      assert.equal((await server.json(api(R, `commits/${c1}..${c2}..${c3}/download_dir_hashes_db`))).status, 400);
    });

    it('commit_db holds history/{commit}/ of that commit only', async () => {
      const dbs = await dirHashesDownload(`commits/${c2}/commit_db`);
      assert.deepEqual([...dbs.keys()], [c2]);
      assert.deepEqual(dbs.get(c2), await dirIdsAt(c2));
    });

    it('tree/download without a commit holds every commit node and every tree, pushed records as they came', async () => {
      const res = await server.fetch(api(R, 'tree/download'));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/gzip');
      const records = await untarRecords(Buffer.from(await res.arrayBuffer()));
      const commits = [...records].filter(([, r]) => decodeNodeRecord(r.node, r.children).type === 'Commit').map(([id]) => id);
      assert.deepEqual(commits.sort(), [c1, c2, c3].sort());
      for (const r of [...first.records, ...second.records]) assert.deepEqual(frameRecord(records.get(r.id)!), frameRecord(r), `record ${r.id} (${r.type})`);
      // The server-made commit's tree is all there: each directory id answered by tree/nodes/resource is a record.
      for (const id of (await dirIdsAt(c3)).values()) assert.ok(records.has(id), id);
      // The server-made commit's header names its first parent, as the pushed ones do.
      assert.equal(decodeNodeRecord(records.get(c3)!.node, records.get(c3)!.children).parentId, c2);
    });

    it('commits/missing_files lists nothing for a complete repository, and the files whose blobs are absent otherwise', async () => {
      for (const query of [`head=${c3}`, `head=main`, `base=${c1}&head=${c3}`]) {
        const { status, body } = await server.json(api(R, `commits/missing_files?${query}`));
        assert.equal(status, 200, query);
        assert.deepEqual(body.entries, [], query);
      }
      assert.equal((await server.json(api(R, 'commits/missing_files'))).status, 400);

      // No HTTP route records a commit whose blobs are missing (the branch move refuses it), so a
      // commit is recorded directly, as if its bytes had been lost: pushed nodes, blob never sent.
      const S = await newRepo();
      await push(S, first);
      assert.equal((await postJson(S, 'branches', { new_name: 'main', commit_id: c1 })).status, 200);
      const a = second.files.get('data/train/a.csv')!;
      const d = second.files.get('data/train/d.csv')!;
      await push(S, second, first, { blobs: [second.blobs.get(a.hash)!] });
      const repo = (await server.yoke.meta.getRepo('sync', S.split('/')[1]))!;
      const c1Record = (await server.yoke.meta.getCommit(repo.id, c1))!;
      await server.yoke.meta.addCommits(repo.id, [
        { id: c2, parentIds: [c1], message: 'second', author: AUTHOR.name, email: AUTHOR.email, timestamp: new Date(1_700_003_600_000).toISOString(), rootId: second.rootId, generation: c1Record.generation + 1 },
      ]);
      const want = [{ commit_id: c2, path: 'data/train/d.csv', hash: d.hash, num_bytes: d.numBytes, last_modified_seconds: 0, last_modified_nanoseconds: 0 }];
      for (const query of [`head=${c2}`, `base=${c1}&head=${c2}`]) {
        const { status, body } = await server.json(api(S, `commits/missing_files?${query}`));
        assert.equal(status, 200, query);
        assert.deepEqual(body.entries, want, query);
      }
      assert.deepEqual((await server.json(api(S, `commits/missing_files?head=${c1}`))).body.entries, []);
      assert.deepEqual((await server.json(api(S, `commits/missing_files?base=${c2}&head=${c2}`))).body.entries, []);
    });

    it("drops a removed directory and all below it from the next commit's dir_hashes (runs last: it adds a commit)", async () => {
      const removed = await server.json(api(R, 'file/main/made'), { method: 'DELETE' });
      assert.equal(removed.status, 200, JSON.stringify(removed.body));
      const c4 = (await branchHead(R))!;
      filesAt.set(c4, [...second.files.keys()]);
      const dbs = await dirHashesDownload(`commits/${c3}..${c4}/download_dir_hashes_db`);
      assert.deepEqual([...dbs.keys()].sort(), [c3, c4].sort());
      assert.ok(dbs.get(c3)!.has('made/here'));
      assert.deepEqual(dbs.get(c4), await dirIdsAt(c4));
      assert.ok(![...dbs.get(c4)!.keys()].some((p) => p === 'made' || p.startsWith('made/')));
    });
  });

  it('survives a client that goes away in the middle of a dir_hashes download, and leaves no scratch behind', async () => {
    const R = await newRepo();
    for (let i = 0; i < 40; i++) {
      assert.equal((await putFiles(server, R, `main/d${i}/f.txt`, [{ name: 'f.txt', content: `file ${i}\n` }])).status, 200);
    }
    const controller = new AbortController();
    const res = await server.fetch(api(R, 'commits/main/download_dir_hashes_db'), { signal: controller.signal });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    await reader.read().catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 500));
    const version = await server.json('/api/version');
    assert.equal(version.status, 200);
    const scratch = join(server.dataDir, 'tmp');
    const left = await readdir(scratch).catch(() => []);
    assert.deepEqual(left, [], 'the scratch directory of the cut download is removed');
    // And a whole download still works afterwards.
    const whole = await server.fetch(api(R, 'commits/main/download_dir_hashes_db'));
    assert.equal(whole.status, 200);
    assert.ok((await whole.arrayBuffer()).byteLength > 0);
  });

  it('refuses at the branch move a tree whose sizes or shape do not hold up, and leaves the branch alone', async () => {
    const id = commitId('shape');
    const base = buildCommit({ id, parents: [], message: 'shape', seconds: 1_700_000_000, order: [id], files: { 'sub/x.txt': { content: 'x', lastCommitId: id }, 'y.txt': { content: 'yy', lastCommitId: id } } });
    const [commit, ...rest] = base.records;
    const rootId = base.rootId;
    const root = rest.find((r) => r.id === rootId)!;
    const rootVnode = rest.find((r) => r.id === decodeNodeRecord(root.node, root.children).children[0].hash)!;
    const subId = base.dirs.get('sub')!;
    const withPayload = (r: NodeRecord, change: (p: Record<string, unknown>) => Record<string, unknown>) => {
      const d = decodeNodeRecord(r.node, r.children);
      const payload = encodeOxenNode(change(decodeOxenNode(r.type, d.payload) as unknown as Record<string, unknown>) as never);
      return encodeNodeRecord(r.id, r.type, d.parentId, payload, d.children.map(({ type, hash, payload: p }) => ({ type, hash, payload: p })));
    };
    const cases: Array<[string, NodeRecord[], RegExp]> = [
      // The vnode's copy of sub/ differs from sub/'s own record (another byte count).
      ['a directory entry unlike its record', [rewriteChildren(rootVnode, (kids) => kids.map((k) => (k.hash === subId ? { ...k, payload: encodeOxenNode({ ...(decodeOxenNode('Dir', k.payload) as OxenDirNode), numBytes: 99 }) } : k)))], /differs from its directory record/],
      // y.txt claims 5 bytes; its version has 2.
      ['a file size unlike its version', [rewriteChildren(rootVnode, (kids) => kids.map((k) => (k.type === 'File' ? { ...k, payload: encodeOxenNode({ ...(decodeOxenNode('File', k.payload) as OxenFileNode), numBytes: 5 }) } : k)))], /bytes/],
      // sub/'s vnode points back at the root: a cycle.
      ['a directory inside itself', [rewriteChildren(rest.find((r) => r.type === 'VNode' && decodeNodeRecord(r.node, r.children).children.some((c) => c.type === 'File' && (decodeOxenNode('File', c.payload) as OxenFileNode).name === 'x.txt'))!, (kids) => [...kids, { type: 'Dir', hash: rootId, payload: encodeOxenNode({ ...(decodeOxenNode('Dir', root.node.subarray(21, 21 + root.node.readUInt32LE(17))) as OxenDirNode), name: 'zz' }) }])], /./],
    ];
    for (const [what, tampered, reason] of cases) {
      const R = await newRepo();
      await uploadBlobs(R, base.blobs.values());
      const byId = new Map(tampered.map((r) => [r.id, r]));
      await pushNodes(R, [commit, ...rest].map((r) => byId.get(r.id) ?? r));
      await pushDirHashes(R, base);
      const res = await postJson(R, 'branches', { new_name: 'main', commit_id: id });
      assert.equal(res.status, 400, `${what}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.type, 'incomplete_push', what);
      assert.match(res.body.status_description, reason, what);
      assert.equal(await branchHead(R), null, what);
      assert.deepEqual(await missingCommits(R, [id]), [id], `${what}: asked for again`);
      const alive = await server.json('/api/version');
      assert.equal(alive.status, 200, what);
    }

    // Totals by data type are not held against a push (Oxen's 0.65 client writes stale ones above a modified
    // file), but a server-side commit on top never takes them below zero.
    const R = await newRepo();
    await uploadBlobs(R, base.blobs.values());
    const stale = withPayload(root, (p) => ({ ...p, numBytes: 0, dataTypeCounts: {}, dataTypeSizes: {} }));
    await pushNodes(R, [commit, ...rest].map((r) => (r.id === stale.id ? stale : r)));
    await pushDirHashes(R, base);
    assert.equal((await postJson(R, 'branches', { new_name: 'main', commit_id: id })).status, 200);
    const removed = await server.json(api(R, 'file/main/y.txt'), { method: 'DELETE' });
    assert.equal(removed.status, 200, JSON.stringify(removed.body));
    assert.equal((await server.fetch(api(R, 'file/main/sub/x.txt'))).status, 200);
  });

  it('refuses at push time a commit dated out of range, a data type Oxen does not have, and node files that are not next to each other', async () => {
    const R = await newRepo();
    const id = commitId('odd fields');
    const base = buildCommit({ id, parents: [], message: 'odd fields', seconds: 1_700_000_000, order: [id], files: { 'a.txt': { content: 'a', lastCommitId: id }, 'b.txt': { content: 'b', lastCommitId: id } } });
    const [commit, ...rest] = base.records;
    const decodedCommit = decodeNodeRecord(commit.node, commit.children);
    const commitPayload = decodeOxenNode('Commit', decodedCommit.payload) as OxenCommitNode;
    const farFuture = encodeNodeRecord(commit.id, 'Commit', '0', encodeOxenNode({ ...commitPayload, timestamp: { seconds: 300_000_000_000, nanoseconds: 0 } }), decodedCommit.children.map(({ type, hash, payload }) => ({ type, hash, payload })));
    const vnode = rest.find((r) => r.type === 'VNode')!;
    const oddType = rewriteChildren(vnode, (kids) => kids.map((k) => ({ ...k, payload: encodeOxenNode({ ...(decodeOxenNode('File', k.payload) as OxenFileNode), dataType: 'constructor' as never }) })));
    for (const [what, body] of [
      ['a commit in the year 11,476', await nodesTarball([farFuture])],
      ['a data type Oxen does not have', await nodesTarball([oddType])],
      ['halves of two records interleaved', await tarGz([...recordEntries(rest[0]), ...recordEntries(rest[1])].filter((e) => e.type !== 'directory').sort((a, b) => (a.name.endsWith('node') ? -1 : 1) - (b.name.endsWith('node') ? -1 : 1)))],
    ] as const) {
      const res = await postTar(R, 'tree/nodes', body);
      assert.equal(res.status, 400, `${what}: ${JSON.stringify(res.body)}`);
      assertEnvelope(res.body, 'error');
    }
    assert.deepEqual((await missingNodes(R, [commit.id, vnode.id])).sort(), [commit.id, vnode.id].sort());
  });

  it('counts a commit as sent only when its node came too, whatever dir_hashes arrive', async () => {
    const R = await newRepo();
    const id = commitId('only dir_hashes');
    const base = buildCommit({ id, parents: [], message: 'only dir_hashes', seconds: 1_700_000_000, order: [id], files: { 'a.txt': { content: 'a', lastCommitId: id } } });
    await pushDirHashes(R, base);
    assert.deepEqual(await missingCommits(R, [id]), [id]);
    await uploadBlobs(R, base.blobs.values());
    await pushNodes(R, base.records);
    assert.deepEqual(await missingCommits(R, [id]), []);
  });

  it('removes at start-up the dir_hashes scratch a killed process left, and keeps a live one\'s', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'yoke-scratch-'));
    try {
      const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
      await mkdir(join(dataDir, 'tmp', `dir-hashes-${dead}-abc`, 'deadbeef'), { recursive: true });
      await mkdir(join(dataDir, 'tmp', `dir-hashes-${process.ppid}-def`), { recursive: true });
      const other = await startTestServer({ dataDir });
      await other.stop();
      assert.deepEqual(await readdir(join(dataDir, 'tmp')), [`dir-hashes-${process.ppid}-def`]);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
