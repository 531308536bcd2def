/**
 * Shared conformance suite for MetaStore backends (in the spirit of lakeFS's pkg/block/blocktest).
 * A backend's test file calls `metaStoreConformance(name, open)`; every case opens a fresh store
 * through `open` and releases it with the returned `cleanup`. Namespaces, repository names and
 * commit ids are random per case, so the suite also holds on a shared, non-empty store.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { CommitLanding, CommitRecord, MetaStore, RepoRecord } from '../../src/storage/meta-store.js';
import { YokeError } from '../../src/core/errors.js';

export type OpenMetaStore = () => Promise<{ store: MetaStore; cleanup: () => Promise<void> }>;

const hex = (bytes = 16) => randomBytes(bytes).toString('hex');
const uniqueName = (prefix: string) => `${prefix}-${hex(6)}`;

const BASE_TIME = Date.parse('2024-03-01T12:00:00.000Z');
/** RFC 3339 UTC with milliseconds, `seconds` after a fixed base time. */
const at = (seconds: number) => new Date(BASE_TIME + seconds * 1000).toISOString();

/** Builds a CommitRecord by hand; generation = 1 + max parent generation. */
function makeCommit(parents: CommitRecord[], seconds: number, message = `commit at ${seconds}`): CommitRecord {
  return {
    id: hex(),
    parentIds: parents.map((p) => p.id),
    message,
    author: 'Ada Lovelace',
    email: 'ada@example.com',
    timestamp: at(seconds),
    rootId: hex(),
    generation: 1 + Math.max(0, ...parents.map((p) => p.generation)),
  };
}

function landingFor(commit: CommitRecord, branch: string, expectedHead: string | null, nodeCount = 1): CommitLanding {
  const nodes: Array<[string, Uint8Array]> = [[commit.rootId, randomBytes(48)]];
  for (let i = 1; i < nodeCount; i++) nodes.push([hex(), randomBytes(32)]);
  return { nodes, commit, blobs: [{ hash: hex(), size: 123 }], branch, expectedHead };
}

const ids = (commits: CommitRecord[]) => commits.map((c) => c.id);
const isConflict = (err: unknown) => (err as { httpStatus?: number }).httpStatus === 409;
const sorted = (xs: string[]) => [...xs].sort();

function assertSameBytes(actual: Uint8Array | null, expected: Uint8Array): void {
  assert.ok(actual !== null, 'expected bytes, got null');
  assert.ok(actual instanceof Uint8Array, 'expected a Uint8Array');
  assert.ok(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(expected), 'bytes differ');
}

export function metaStoreConformance(name: string, open: OpenMetaStore): void {
  const withStore = async (fn: (store: MetaStore) => Promise<void>): Promise<void> => {
    const { store, cleanup } = await open();
    try {
      await fn(store);
    } finally {
      try {
        await store.close();
      } finally {
        await cleanup();
      }
    }
  };

  const newRepo = (store: MetaStore, namespace = uniqueName('ns'), repoName = uniqueName('repo')): Promise<RepoRecord> =>
    store.createRepo({ namespace, name: repoName, description: null, creatorName: null, creatorEmail: null });

  /** Lands `commits` one after another on `branch`, each expecting the previous as head. */
  const landChain = async (store: MetaStore, repoId: string, branch: string, commits: CommitRecord[]) => {
    let head: string | null = null;
    for (const commit of commits) {
      assert.equal(await store.landCommit(repoId, landingFor(commit, branch, head)), true);
      head = commit.id;
    }
  };

  /** A linear chain of `n` commits, oldest first. */
  const linearChain = (n: number): CommitRecord[] => {
    const chain: CommitRecord[] = [];
    for (let i = 0; i < n; i++) chain.push(makeCommit(chain.length ? [chain[chain.length - 1]] : [], i * 10));
    return chain;
  };

  /**
   * A — B ─ M (main)      B and C both descend from A; M merges B and C.
   *  \— C ─┘ (feature)    C is newer than B.
   */
  const landDiamond = async (store: MetaStore, repoId: string) => {
    const a = makeCommit([], 0, 'A');
    const b = makeCommit([a], 10, 'B');
    const c = makeCommit([a], 20, 'C');
    const m = makeCommit([b, c], 30, 'M');
    assert.equal(m.generation, 3);
    await landChain(store, repoId, 'main', [a, b]);
    assert.equal(await store.createBranch(repoId, 'feature', a.id), true);
    assert.equal(await store.landCommit(repoId, landingFor(c, 'feature', a.id)), true);
    assert.equal(await store.landCommit(repoId, landingFor(m, 'main', b.id)), true);
    return { a, b, c, m };
  };

  describe(`MetaStore conformance: ${name}`, () => {
    describe('repositories', () => {
      it('createRepo, getRepo, listRepos and listNamespaces', () =>
        withStore(async (store) => {
          const nsA = uniqueName('ns-a');
          const nsB = uniqueName('ns-b');
          const created = await store.createRepo({
            namespace: nsA,
            name: 'beta',
            description: 'Second repo',
            creatorName: 'Ada',
            creatorEmail: 'ada@example.com',
          });
          assert.equal(created.namespace, nsA);
          assert.equal(created.name, 'beta');
          assert.equal(created.description, 'Second repo');
          assert.equal(created.creatorName, 'Ada');
          assert.equal(created.creatorEmail, 'ada@example.com');
          assert.ok(created.id.length > 0);
          assert.ok(!Number.isNaN(Date.parse(created.createdAt)));

          const alpha = await newRepo(store, nsA, 'alpha');
          const gamma = await newRepo(store, nsB, 'gamma');
          assert.notEqual(alpha.id, created.id);
          assert.notEqual(gamma.id, alpha.id);

          assert.deepEqual(await store.getRepo(nsA, 'beta'), created);
          assert.deepEqual(await store.getRepo(nsA, 'alpha'), alpha);
          assert.equal(await store.getRepo(nsA, 'gamma'), null);
          assert.equal(await store.getRepo(uniqueName('ns-missing'), 'alpha'), null);

          const inA = await store.listRepos(nsA);
          assert.deepEqual(sorted(inA.map((r) => r.name)), ['alpha', 'beta']);
          assert.deepEqual(
            inA.find((r) => r.name === 'beta'),
            created,
          );
          assert.deepEqual(await store.listRepos(nsB), [gamma]);
          assert.deepEqual(await store.listRepos(uniqueName('ns-empty')), []);

          const namespaces = await store.listNamespaces();
          assert.ok(namespaces.includes(nsA));
          assert.ok(namespaces.includes(nsB));
          assert.equal(new Set(namespaces).size, namespaces.length, 'namespaces are distinct');
        }));

      it('a duplicate repository rejects with Conflict (409)', () =>
        withStore(async (store) => {
          const ns = uniqueName('ns');
          const first = await newRepo(store, ns, 'data');
          await assert.rejects(newRepo(store, ns, 'data'), (err: unknown) => {
            assert.ok(err instanceof YokeError, `expected a YokeError, got ${String(err)}`);
            assert.equal(err.name, 'Conflict');
            assert.equal(err.httpStatus, 409);
            return true;
          });
          assert.deepEqual(await store.listRepos(ns), [first]);
          // The same name in another namespace is a different repository.
          const other = await newRepo(store, uniqueName('ns'), 'data');
          assert.notEqual(other.id, first.id);
        }));

      it('moveRepo moves a repository with its branches to another namespace, unless the name is taken there', () =>
        withStore(async (store) => {
          const from = uniqueName('ns');
          const to = uniqueName('ns');
          const moving = await newRepo(store, from, 'data');
          const chain = linearChain(1);
          await landChain(store, moving.id, 'main', chain);
          assert.equal(await store.moveRepo(moving.id, to), true);
          assert.equal(await store.getRepo(from, 'data'), null);
          const moved = await store.getRepo(to, 'data');
          assert.equal(moved?.id, moving.id);
          assert.deepEqual((await store.listBranches(moving.id)).map((b) => b.commitId), [chain[0].id]);
          const blocker = await newRepo(store, from, 'data');
          assert.equal(await store.moveRepo(blocker.id, to), false);
          assert.equal((await store.getRepo(from, 'data'))?.id, blocker.id);
          assert.equal((await store.getRepo(to, 'data'))?.id, moving.id);
        }));

      it('deleteRepo removes the repository with its branches, commits and nodes', () =>
        withStore(async (store) => {
          const ns = uniqueName('ns');
          const doomed = await newRepo(store, ns, 'doomed');
          const kept = await newRepo(store, ns, 'kept');
          const chain = linearChain(2);
          await landChain(store, doomed.id, 'main', chain);
          assert.equal(await store.createBranch(doomed.id, 'dev', chain[0].id), true);
          const keptCommit = makeCommit([], 5);
          const keptLanding = landingFor(keptCommit, 'main', null);
          assert.equal(await store.landCommit(kept.id, keptLanding), true);

          await store.deleteRepo(doomed.id);

          assert.equal(await store.getRepo(ns, 'doomed'), null);
          assert.deepEqual(
            (await store.listRepos(ns)).map((r) => r.id),
            [kept.id],
          );
          assert.deepEqual(await store.listBranches(doomed.id), []);
          assert.deepEqual(await store.findBranches(doomed.id, ['main', 'dev']), []);
          for (const commit of chain) {
            assert.equal(await store.getCommit(doomed.id, commit.id), null);
            assert.equal(await store.getNode(doomed.id, commit.rootId), null);
          }
          assert.equal(await store.countAllCommits(doomed.id), 0);
          assert.deepEqual(await store.listAllCommits(doomed.id, { offset: 0, limit: 100 }), []);
          assert.deepEqual(await store.listRootCommits(doomed.id), []);

          // The other repository is untouched.
          assert.deepEqual(await store.getCommit(kept.id, keptCommit.id), keptCommit);
          assertSameBytes(await store.getNode(kept.id, keptCommit.rootId), keptLanding.nodes[0][1]);
          assert.equal((await store.listBranches(kept.id)).length, 1);

          // Re-creating the name yields a fresh, empty repository.
          const again = await newRepo(store, ns, 'doomed');
          assert.notEqual(again.id, doomed.id);
          assert.deepEqual(await store.listBranches(again.id), []);
          assert.equal(await store.countAllCommits(again.id), 0);
        }));
    });

    describe('branches', () => {
      it('createBranch returns false on a duplicate and keeps the original', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const [c1, c2] = [hex(), hex()];
          assert.equal(await store.createBranch(repo.id, 'main', c1), true);
          assert.equal(await store.createBranch(repo.id, 'main', c2), false);
          assert.equal(await store.createBranch(repo.id, 'dev', c2), true);
          const branches = await store.listBranches(repo.id);
          assert.deepEqual(sorted(branches.map((b) => b.name)), ['dev', 'main']);
          const main = branches.find((b) => b.name === 'main')!;
          assert.equal(main.commitId, c1);
          assert.ok(!Number.isNaN(Date.parse(main.createdAt)));
          assert.ok(!Number.isNaN(Date.parse(main.updatedAt)));
          // Branches are scoped to their repository.
          const other = await newRepo(store);
          assert.deepEqual(await store.listBranches(other.id), []);
          assert.equal(await store.createBranch(other.id, 'main', c2), true);
          assert.equal((await store.findBranches(repo.id, ['main']))[0].commitId, c1);
        }));

      it('findBranches returns only the existing branches among the names given', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const head = hex();
          for (const branch of ['main', 'feature/x', 'feature']) {
            assert.equal(await store.createBranch(repo.id, branch, head), true);
          }
          const found = await store.findBranches(repo.id, ['feature/x/data.csv', 'feature/x', 'feature', 'nope']);
          assert.deepEqual(sorted(found.map((b) => b.name)), ['feature', 'feature/x']);
          for (const b of found) assert.equal(b.commitId, head);
          assert.deepEqual(await store.findBranches(repo.id, []), []);
          assert.deepEqual(await store.findBranches(repo.id, ['missing']), []);
          assert.deepEqual(await store.findBranches((await newRepo(store)).id, ['main']), []);
        }));

      it('compareAndSwapBranch moves only from the expected head', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const [c1, c2, c3] = [hex(), hex(), hex()];
          assert.equal(await store.createBranch(repo.id, 'main', c1), true);

          assert.equal(await store.compareAndSwapBranch(repo.id, 'main', c1, c2), true);
          assert.equal((await store.findBranches(repo.id, ['main']))[0].commitId, c2);

          // Stale expected: fails and leaves the branch unchanged.
          assert.equal(await store.compareAndSwapBranch(repo.id, 'main', c1, c3), false);
          assert.equal((await store.findBranches(repo.id, ['main']))[0].commitId, c2);

          // A missing branch with a non-null expected is not created.
          assert.equal(await store.compareAndSwapBranch(repo.id, 'ghost', c1, c3), false);
          assert.deepEqual(await store.findBranches(repo.id, ['ghost']), []);
        }));

      it('compareAndSwapBranch with expected=null creates only if absent', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const [c1, c2] = [hex(), hex()];
          assert.equal(await store.compareAndSwapBranch(repo.id, 'main', null, c1), true);
          assert.equal((await store.findBranches(repo.id, ['main']))[0].commitId, c1);
          assert.equal(await store.compareAndSwapBranch(repo.id, 'main', null, c2), false);
          assert.equal((await store.findBranches(repo.id, ['main']))[0].commitId, c1);
        }));

      it('deleteBranch removes a branch and reports whether it existed', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          assert.equal(await store.createBranch(repo.id, 'dev', hex()), true);
          assert.equal(await store.deleteBranch(repo.id, 'dev'), true);
          assert.equal(await store.deleteBranch(repo.id, 'dev'), false);
          assert.deepEqual(await store.listBranches(repo.id), []);
        }));
    });

    describe('commits', () => {
      it('landCommit writes nodes, the commit and moves the branch', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const root = makeCommit([], 0);
          const rootLanding = landingFor(root, 'main', null, 3);
          assert.equal(await store.landCommit(repo.id, rootLanding), true);
          assert.deepEqual(await store.getCommit(repo.id, root.id), root);
          for (const [id, bytes] of rootLanding.nodes) assertSameBytes(await store.getNode(repo.id, id), bytes);
          assert.equal((await store.findBranches(repo.id, ['main']))[0].commitId, root.id);

          // The next commit re-uses an unchanged node that is already stored.
          const next = makeCommit([root], 10);
          const nextLanding = landingFor(next, 'main', root.id);
          nextLanding.nodes.push(rootLanding.nodes[1]);
          assert.equal(await store.landCommit(repo.id, nextLanding), true);
          assert.deepEqual(await store.getCommit(repo.id, next.id), next);
          assertSameBytes(await store.getNode(repo.id, next.rootId), nextLanding.nodes[0][1]);
          assertSameBytes(await store.getNode(repo.id, rootLanding.nodes[1][0]), rootLanding.nodes[1][1]);
          assert.equal((await store.findBranches(repo.id, ['main']))[0].commitId, next.id);
          assert.equal(await store.countAllCommits(repo.id), 2);

          // A landing on a new branch (expectedHead null) creates it.
          const side = makeCommit([root], 20);
          assert.equal(await store.landCommit(repo.id, landingFor(side, 'side', null)), true);
          assert.equal((await store.findBranches(repo.id, ['side']))[0].commitId, side.id);
          assert.equal((await store.findBranches(repo.id, ['main']))[0].commitId, next.id);
        }));

      it('landCommit with a stale expectedHead returns false and writes nothing', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const chain = linearChain(2);
          await landChain(store, repo.id, 'main', chain);
          const [root, head] = chain;

          const loser = makeCommit([root], 30);
          const stale = landingFor(loser, 'main', root.id, 3);
          assert.equal(await store.landCommit(repo.id, stale), false);
          assert.equal(await store.getCommit(repo.id, loser.id), null);
          for (const [id] of stale.nodes) assert.equal(await store.getNode(repo.id, id), null);
          assert.equal((await store.findBranches(repo.id, ['main']))[0].commitId, head.id);
          assert.equal(await store.countAllCommits(repo.id), 2);
          assert.equal(await store.isAncestor(repo.id, root.id, loser.id), false);
          assert.deepEqual(sorted(ids(await store.listRootCommits(repo.id))), [root.id]);

          // expectedHead null on an existing branch is stale too.
          const orphan = makeCommit([], 40);
          const orphanLanding = landingFor(orphan, 'main', null);
          assert.equal(await store.landCommit(repo.id, orphanLanding), false);
          assert.equal(await store.getCommit(repo.id, orphan.id), null);
          assert.equal(await store.getNode(repo.id, orphan.rootId), null);
          assert.equal((await store.findBranches(repo.id, ['main']))[0].commitId, head.id);

          // Non-null expectedHead on a missing branch is stale as well.
          const lost = makeCommit([head], 50);
          assert.equal(await store.landCommit(repo.id, landingFor(lost, 'nope', head.id)), false);
          assert.equal(await store.getCommit(repo.id, lost.id), null);
          assert.deepEqual(await store.findBranches(repo.id, ['nope']), []);

          // The loser can retry on top of the current head.
          const retry = { ...loser, parentIds: [head.id], generation: head.generation + 1 };
          assert.equal(await store.landCommit(repo.id, { ...stale, commit: retry, expectedHead: head.id }), true);
          assert.deepEqual(await store.getCommit(repo.id, retry.id), retry);
          for (const [id, bytes] of stale.nodes) assertSameBytes(await store.getNode(repo.id, id), bytes);
        }));

      it('getCommit and getCommits return stored commits only, scoped to the repository', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const other = await newRepo(store);
          const chain = linearChain(3);
          await landChain(store, repo.id, 'main', chain);
          assert.equal(await store.getCommit(repo.id, hex()), null);
          assert.equal(await store.getCommit(other.id, chain[0].id), null);
          const got = await store.getCommits(repo.id, [chain[2].id, hex(), chain[0].id]);
          assert.deepEqual(sorted(ids(got)), sorted([chain[2].id, chain[0].id]));
          for (const c of got) assert.deepEqual(c, chain.find((x) => x.id === c.id));
          assert.deepEqual(await store.getCommits(repo.id, []), []);
          assert.deepEqual(await store.getCommits(other.id, ids(chain)), []);
        }));

      it('listAncestors and countAncestors on a linear chain of 5 commits', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const chain = linearChain(5);
          await landChain(store, repo.id, 'main', chain);
          const newestFirst = ids([...chain].reverse());
          const head = chain[4].id;

          assert.deepEqual(await store.listAncestors(repo.id, head, { offset: 0, limit: 100 }), [...chain].reverse());
          assert.equal(await store.countAncestors(repo.id, head), 5);
          assert.deepEqual(ids(await store.listAncestors(repo.id, head, { offset: 0, limit: 2 })), newestFirst.slice(0, 2));
          assert.deepEqual(ids(await store.listAncestors(repo.id, head, { offset: 1, limit: 2 })), newestFirst.slice(1, 3));
          assert.deepEqual(ids(await store.listAncestors(repo.id, head, { offset: 4, limit: 10 })), newestFirst.slice(4));
          assert.deepEqual(await store.listAncestors(repo.id, head, { offset: 5, limit: 10 }), []);

          // From the middle of the chain only that commit and older ones are listed.
          assert.deepEqual(ids(await store.listAncestors(repo.id, chain[2].id, { offset: 0, limit: 100 })), newestFirst.slice(2));
          assert.equal(await store.countAncestors(repo.id, chain[2].id), 3);
          assert.equal(await store.countAncestors(repo.id, chain[0].id), 1);

          // Pages concatenate to the full history.
          const paged: string[] = [];
          for (let offset = 0; offset < 5; offset += 2) {
            paged.push(...ids(await store.listAncestors(repo.id, head, { offset, limit: 2 })));
          }
          assert.deepEqual(paged, newestFirst);
        }));

      it('listAncestors and countAncestors count each ancestor of a merge once', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const { a, b, c, m } = await landDiamond(store, repo.id);

          assert.equal(await store.countAncestors(repo.id, m.id), 4);
          const history = await store.listAncestors(repo.id, m.id, { offset: 0, limit: 100 });
          // Newest first: generation, then timestamp (C is newer than B).
          assert.deepEqual(ids(history), [m.id, c.id, b.id, a.id]);
          assert.deepEqual(history[0], m);
          assert.deepEqual(history[0].parentIds, [b.id, c.id], 'parent order is preserved');
          assert.deepEqual(ids(await store.listAncestors(repo.id, m.id, { offset: 1, limit: 2 })), [c.id, b.id]);

          assert.equal(await store.countAncestors(repo.id, b.id), 2);
          assert.equal(await store.countAncestors(repo.id, c.id), 2);
          assert.deepEqual(ids(await store.listAncestors(repo.id, c.id, { offset: 0, limit: 100 })), [c.id, a.id]);
        }));

      it('countAncestors agrees with listAncestors, also for an unknown head', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const { b, m } = await landDiamond(store, repo.id);
          for (const head of [m.id, b.id]) {
            const listed = await store.listAncestors(repo.id, head, { offset: 0, limit: 100 });
            assert.equal(await store.countAncestors(repo.id, head), listed.length);
          }
          const unknown = hex();
          assert.deepEqual(await store.listAncestors(repo.id, unknown, { offset: 0, limit: 100 }), []);
          assert.equal(await store.countAncestors(repo.id, unknown), 0);
          // A commit id from another repository is unknown here too.
          const other = await newRepo(store);
          assert.deepEqual(await store.listAncestors(other.id, m.id, { offset: 0, limit: 100 }), []);
          assert.equal(await store.countAncestors(other.id, m.id), 0);
        }));

      it('isAncestor', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const { a, b, c, m } = await landDiamond(store, repo.id);
          assert.equal(await store.isAncestor(repo.id, a.id, m.id), true);
          assert.equal(await store.isAncestor(repo.id, b.id, m.id), true);
          assert.equal(await store.isAncestor(repo.id, c.id, m.id), true);
          assert.equal(await store.isAncestor(repo.id, a.id, b.id), true);
          assert.equal(await store.isAncestor(repo.id, m.id, a.id), false);
          assert.equal(await store.isAncestor(repo.id, b.id, a.id), false);
          assert.equal(await store.isAncestor(repo.id, b.id, c.id), false);
          assert.equal(await store.isAncestor(repo.id, c.id, b.id), false);
          assert.equal(await store.isAncestor(repo.id, hex(), m.id), false);

          const chain = linearChain(5);
          await landChain(store, repo.id, 'linear', chain);
          assert.equal(await store.isAncestor(repo.id, chain[0].id, chain[4].id), true);
          assert.equal(await store.isAncestor(repo.id, chain[3].id, chain[4].id), true);
          assert.equal(await store.isAncestor(repo.id, chain[4].id, chain[0].id), false);
          assert.equal(await store.isAncestor(repo.id, chain[0].id, m.id), false);
          // History is per repository.
          assert.equal(await store.isAncestor((await newRepo(store)).id, a.id, m.id), false);
        }));

      it('listAllCommits and countAllCommits include every branch', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const { a, b, c, m } = await landDiamond(store, repo.id);
          const extra = makeCommit([c], 40);
          assert.equal(await store.landCommit(repo.id, landingFor(extra, 'feature', c.id)), true);
          const all = [a.id, b.id, c.id, m.id, extra.id];

          assert.equal(await store.countAllCommits(repo.id), 5);
          const listed = await store.listAllCommits(repo.id, { offset: 0, limit: 100 });
          assert.deepEqual(sorted(ids(listed)), sorted(all));
          for (const commit of listed) assert.deepEqual(commit, [a, b, c, m, extra].find((x) => x.id === commit.id));

          // Pages are consistent: disjoint, and together the whole set in the same order.
          const paged: string[] = [];
          for (let offset = 0; offset < 5; offset += 2) {
            const page = await store.listAllCommits(repo.id, { offset, limit: 2 });
            assert.ok(page.length <= 2);
            paged.push(...ids(page));
          }
          assert.deepEqual(paged, ids(listed));
          assert.deepEqual(await store.listAllCommits(repo.id, { offset: 5, limit: 2 }), []);

          const empty = await newRepo(store);
          assert.equal(await store.countAllCommits(empty.id), 0);
          assert.deepEqual(await store.listAllCommits(empty.id, { offset: 0, limit: 10 }), []);
        }));

      it('listRootCommits returns parentless commits, oldest first', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const { a } = await landDiamond(store, repo.id);
          assert.deepEqual(await store.listRootCommits(repo.id), [a]);

          // An unrelated history (orphan branch) adds a second, newer root.
          const orphanRoot = makeCommit([], 100);
          const orphanChild = makeCommit([orphanRoot], 110);
          await landChain(store, repo.id, 'orphan', [orphanRoot, orphanChild]);
          // And an older one.
          const oldest = makeCommit([], -100);
          assert.equal(await store.landCommit(repo.id, landingFor(oldest, 'ancient', null)), true);

          assert.deepEqual(ids(await store.listRootCommits(repo.id)), [oldest.id, a.id, orphanRoot.id]);
          assert.deepEqual(await store.listRootCommits((await newRepo(store)).id), []);
        }));
    });

    describe('nodes', () => {
      it('getNode returns the stored bytes or null, scoped to the repository', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const commit = makeCommit([], 0);
          const landing = landingFor(commit, 'main', null, 4);
          landing.nodes.push([hex(), new Uint8Array(0)]);
          assert.equal(await store.landCommit(repo.id, landing), true);
          for (const [id, bytes] of landing.nodes) assertSameBytes(await store.getNode(repo.id, id), bytes);
          assert.equal(await store.getNode(repo.id, hex()), null);
          assert.equal(await store.getNode((await newRepo(store)).id, commit.rootId), null);
        }));

      it('getNodes returns the stored bytes of the ids the repository holds, in one call of any size', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          // More than one PostgreSQL chunk (1,000 ids), with an empty record, repeats and absent ids.
          const nodes: Array<[string, Uint8Array]> = Array.from({ length: 1203 }, (_, i) => [hex(), randomBytes(i % 7)]);
          await store.putNodes(repo.id, nodes);
          const absent = [hex(), hex()];
          const found = await store.getNodes(repo.id, [...absent, ...nodes.map(([id]) => id), nodes[0][0], 'not\0stored']);
          assert.equal(found.size, nodes.length);
          for (const [id, bytes] of nodes) assertSameBytes(found.get(id) ?? null, bytes);
          for (const id of absent) assert.equal(found.has(id), false);
          assert.equal((await store.getNodes(repo.id, [])).size, 0);
          assert.equal((await store.getNodes((await newRepo(store)).id, [nodes[0][0]])).size, 0, 'scoped to the repository');
        }));

      it('putNodes stores nodes once (an id already present keeps its bytes), hasNodes answers per repository', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const [x, y, z] = [hex(), hex(), hex()];
          await store.putNodes(repo.id, [[x, Buffer.from('first')], [y, Buffer.from('y')]]);
          await store.putNodes(repo.id, [[x, Buffer.from('second')]]);
          await store.putNodes(repo.id, []);
          assertSameBytes(await store.getNode(repo.id, x), Buffer.from('first'));
          assert.deepEqual(sorted([...(await store.hasNodes(repo.id, [x, y, z]))]), sorted([x, y]));
          assert.deepEqual([...(await store.hasNodes((await newRepo(store)).id, [x]))], []);
          await store.deleteRepo(repo.id);
          assert.deepEqual([...(await store.hasNodes(repo.id, [x, y]))], []);
        }));
    });

    describe('garbage collection', () => {
      it('lists node ids stored before a time in id order, page by page, and deletes only nodes stored before the cutoff', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const old = [hex(), hex(), hex()];
          await store.putNodes(repo.id, old.map((id) => [id, Buffer.from(id)]));
          await new Promise((r) => setTimeout(r, 5));
          const cutoff = Date.now();
          await new Promise((r) => setTimeout(r, 5));
          const fresh = hex();
          await store.putNodes(repo.id, [[fresh, Buffer.from('fresh')]]);
          const all = sorted(old);
          assert.deepEqual(await store.listNodeIds(repo.id, cutoff, null, 2), all.slice(0, 2));
          assert.deepEqual(await store.listNodeIds(repo.id, cutoff, all[1], 2), all.slice(2));
          assert.deepEqual(sorted(await store.listNodeIds(repo.id, Date.now() + 1000, null, 10)), sorted([...old, fresh]));
          assert.equal(await store.deleteNodes(repo.id, [old[0], fresh], cutoff), 1);
          assert.equal(await store.getNode(repo.id, old[0]), null);
          assert.notEqual(await store.getNode(repo.id, fresh), null);
          assert.deepEqual(await store.listNodeIds((await newRepo(store)).id, Date.now() + 1000, null, 10), []);
        }));

      it('counts a node stored again (putNodes or landCommit) as stored then: gc spares it for the grace period', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const [pushed, landed] = [hex(), hex()];
          await store.putNodes(repo.id, [[pushed, Buffer.from('pushed')], [landed, Buffer.from('landed')]]);
          await new Promise((r) => setTimeout(r, 5));
          const cutoff = Date.now();
          await new Promise((r) => setTimeout(r, 5));
          await store.putNodes(repo.id, [[pushed, Buffer.from('pushed')]]);
          const landing = landingFor(makeCommit([], 0), 'main', null);
          landing.nodes.push([landed, Buffer.from('landed')]);
          assert.equal(await store.landCommit(repo.id, landing), true);
          assert.deepEqual(await store.listNodeIds(repo.id, cutoff, null, 10), []);
          assert.equal(await store.deleteNodes(repo.id, [pushed, landed], cutoff), 0);
          assertSameBytes(await store.getNode(repo.id, landed), Buffer.from('landed'));
        }));

      it('lists commits stored since a time and deletes only older ones, with their parent links and received marks', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const [a, b] = linearChain(2);
          await store.addCommits(repo.id, [a, b]);
          await store.markCommitsReceived(repo.id, [b.id]);
          await new Promise((r) => setTimeout(r, 5));
          const cutoff = Date.now();
          await new Promise((r) => setTimeout(r, 5));
          const c = makeCommit([b], 10);
          assert.equal(await store.landCommit(repo.id, landingFor(c, 'main', null)), true);
          assert.deepEqual(await store.listCommitsStoredSince(repo.id, cutoff), [c.id]);
          assert.deepEqual(await store.deleteCommits(repo.id, [b.id, c.id], cutoff), [b.id]);
          assert.equal(await store.getCommit(repo.id, b.id), null);
          assert.deepEqual(await store.findReceivedCommits(repo.id, [b.id]), new Set());
          assert.deepEqual(ids(await store.listAncestors(repo.id, c.id, { offset: 0, limit: 10 })), [c.id]);
          assert.notEqual(await store.getCommit(repo.id, a.id), null);
        }));

      it('forgetBlobs drops the blobs from every repository', () =>
        withStore(async (store) => {
          const [one, two] = [await newRepo(store), await newRepo(store)];
          const [x, y] = [hex(), hex()];
          await store.addRepoBlobs(one.id, [{ hash: x, size: 1 }, { hash: y, size: 2 }]);
          await store.addRepoBlobs(two.id, [{ hash: x, size: 1 }]);
          await store.forgetBlobs([x]);
          assert.deepEqual(await store.findRepoBlobs(one.id, [x, y]), new Map([[y, 2]]));
          assert.deepEqual(await store.findRepoBlobs(two.id, [x]), new Map());
        }));
    });

    describe('tokens', () => {
      it('stores tokens by id and secret hash, lists them oldest first, and deletes them for good', () =>
        withStore(async (store) => {
          const token = (id: string, createdAt: string) => ({
            id,
            name: `n-${id}`,
            email: `${id}@example.com`,
            scopes: ['read', `write:ns-${id}`],
            secretHash: hex(),
            createdAt,
            expiresAt: id === 'b' ? '2030-01-01T00:00:00.000Z' : null,
          });
          const [a, b] = [token('a', '2026-01-02T00:00:00.000Z'), token('b', '2026-01-01T00:00:00.000Z')];
          await store.createToken(a);
          await store.createToken(b);
          assert.deepEqual(await store.findTokenBySecret(a.secretHash), a);
          assert.equal(await store.findTokenBySecret(hex()), null);
          assert.deepEqual(await store.findToken('b'), b);
          assert.equal(await store.findToken('z'), null);
          assert.deepEqual(await store.listTokens(), [b, a]);
          await assert.rejects(store.createToken({ ...token('c', a.createdAt), secretHash: a.secretHash }));
          assert.equal(await store.deleteToken('a'), true);
          assert.equal(await store.deleteToken('a'), false);
          assert.equal(await store.findTokenBySecret(a.secretHash), null);
          assert.equal(await store.findToken('a'), null);
          assert.deepEqual(await store.listTokens(), [b]);
        }));
    });

    describe('pushed commits', () => {
      it('addCommits records commits with their parents (present ones kept), as landCommit would, without moving a branch', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const [a, b, c] = linearChain(3);
          await store.addCommits(repo.id, [a, b]);
          await store.addCommits(repo.id, [b, c]);
          for (const commit of [a, b, c]) assert.deepEqual(await store.getCommit(repo.id, commit.id), commit);
          assert.deepEqual(ids(await store.listAncestors(repo.id, c.id, { offset: 0, limit: 10 })), [c.id, b.id, a.id]);
          assert.equal(await store.isAncestor(repo.id, a.id, c.id), true);
          assert.deepEqual(await store.listBranches(repo.id), []);
          assert.equal(await store.getCommit((await newRepo(store)).id, a.id), null);
        }));

      it('markCommitsReceived marks and unmarks per repository; findReceivedCommits answers which are marked', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const other = await newRepo(store);
          const [x, y, z] = [hex(), hex(), hex()];
          await store.markCommitsReceived(repo.id, [x, y]);
          await store.markCommitsReceived(repo.id, [x]);
          assert.deepEqual(sorted([...(await store.findReceivedCommits(repo.id, [x, y, z]))]), sorted([x, y]));
          assert.deepEqual([...(await store.findReceivedCommits(other.id, [x, y]))], []);
          await store.markCommitsReceived(repo.id, [y, z], false);
          assert.deepEqual([...(await store.findReceivedCommits(repo.id, [x, y, z]))], [x]);
          await store.deleteRepo(repo.id);
          assert.deepEqual([...(await store.findReceivedCommits(repo.id, [x]))], []);
        }));
    });

    describe('repository blobs', () => {
      it('addRepoBlobs is idempotent, findRepoBlobs answers per repository, and landed commits record theirs', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const other = await newRepo(store);
          const [a, b, c] = [hex(), hex(), hex()];
          await store.addRepoBlobs(repo.id, [{ hash: a, size: 10 }, { hash: b, size: 0 }]);
          await store.addRepoBlobs(repo.id, [{ hash: a, size: 10 }]);
          assert.deepEqual(await store.findRepoBlobs(repo.id, [a, b, c]), new Map([[a, 10], [b, 0]]));
          assert.deepEqual(await store.findRepoBlobs(other.id, [a, b]), new Map());
          assert.deepEqual(await store.findRepoBlobs(repo.id, []), new Map());
          const landing = landingFor(makeCommit([], 0), 'main', null);
          landing.blobs = [{ hash: c, size: 7 }];
          assert.equal(await store.landCommit(repo.id, landing), true);
          assert.deepEqual(await store.findRepoBlobs(repo.id, [c]), new Map([[c, 7]]));
          await store.deleteRepo(repo.id);
          assert.deepEqual(await store.findRepoBlobs(repo.id, [a, b, c]), new Map());
        }));
    });

    describe('workspaces', () => {
      it('creates, finds by id or name, lists, refuses duplicates, deletes', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const base = hex();
          const named = await store.createWorkspace(repo.id, { id: 'ws-1', name: 'annotations', branch: 'main', baseCommitId: base });
          assert.equal(named.baseCommitId, base);
          const unnamed = await store.createWorkspace(repo.id, { id: 'ws-2', name: null, branch: 'dev/x', baseCommitId: base });
          assert.equal((await store.getWorkspace(repo.id, 'ws-1'))?.uid, named.uid);
          assert.equal((await store.getWorkspace(repo.id, 'annotations'))?.uid, named.uid);
          assert.equal(await store.getWorkspace(repo.id, 'nope'), null);
          assert.deepEqual((await store.listWorkspaces(repo.id)).map((w) => w.id), ['ws-1', 'ws-2']);
          assert.deepEqual((await store.listWorkspaces(repo.id, 'annotations')).map((w) => w.id), ['ws-1']);
          await assert.rejects(store.createWorkspace(repo.id, { id: 'ws-1', name: null, branch: 'main', baseCommitId: base }), isConflict);
          await assert.rejects(store.createWorkspace(repo.id, { id: 'ws-3', name: 'annotations', branch: 'main', baseCommitId: base }), isConflict);
          const other = await newRepo(store);
          await store.createWorkspace(other.id, { id: 'ws-1', name: 'annotations', branch: 'main', baseCommitId: base });
          assert.equal(await store.deleteWorkspace(unnamed.uid), true);
          assert.equal(await store.deleteWorkspace(unnamed.uid), false);
          assert.equal(await store.deleteAllWorkspaces(repo.id), 1);
          assert.deepEqual(await store.listWorkspaces(repo.id), []);
          assert.equal((await store.listWorkspaces(other.id)).length, 1);
        }));

      it('stages, replaces, lists by prefix, unstages subtrees, and advances after a commit keeping later changes', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const ws = await store.createWorkspace(repo.id, { id: 'w', name: null, branch: 'main', baseCommitId: hex() });
          const [h1, h2, h3] = [hex(), hex(), hex()];
          await store.stageChanges(ws.uid, [
            { path: 'a/x.txt', hash: h1, size: 1 },
            { path: 'a/y.txt', hash: h2, size: 2 },
            { path: 'ab.txt', hash: h3, size: 3 },
            { path: 'gone.txt', hash: null, size: 0 },
          ]);
          await store.stageChanges(ws.uid, [{ path: 'a/x.txt', hash: h3, size: 30 }]);
          assert.deepEqual(await store.listStagedChanges(ws.uid), [
            { path: 'a/x.txt', hash: h3, size: 30 },
            { path: 'a/y.txt', hash: h2, size: 2 },
            { path: 'ab.txt', hash: h3, size: 3 },
            { path: 'gone.txt', hash: null, size: 0 },
          ]);
          assert.deepEqual((await store.listStagedChanges(ws.uid, { prefix: 'a' })).map((c) => c.path), ['a/x.txt', 'a/y.txt']);
          const committed = await store.listStagedChanges(ws.uid);
          await store.stageChanges(ws.uid, [{ path: 'a/y.txt', hash: h1, size: 9 }, { path: 'late.txt', hash: h1, size: 9 }]);
          const next = hex();
          await store.advanceWorkspace(ws.uid, next, committed);
          assert.equal((await store.getWorkspace(repo.id, 'w'))?.baseCommitId, next);
          assert.deepEqual((await store.listStagedChanges(ws.uid)).map((c) => c.path), ['a/y.txt', 'late.txt']);
          assert.equal(await store.unstage(ws.uid, 'a'), 1);
          assert.equal(await store.unstage(ws.uid, 'late.txt'), 1);
          assert.equal(await store.unstage(ws.uid, 'late.txt'), 0);
          assert.deepEqual(await store.listStagedChanges(ws.uid), []);
          await store.stageChanges(ws.uid, [{ path: 'z', hash: h1, size: 1 }]);
          await store.deleteWorkspace(ws.uid);
          assert.deepEqual(await store.listStagedChanges(ws.uid), []);
        }));
    });

    describe('workspace data frame logs', () => {
      it('appends by compare-and-swap on the last number, lists after a number, one log per path', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const ws = await store.createWorkspace(repo.id, { id: 'w', name: null, branch: 'main', baseCommitId: hex() });
          assert.equal(await store.appendFrameOp(ws.uid, 'a.csv', 1, '{"kind":"x"}'), false, 'no log yet: only 0 is current');
          assert.equal(await store.appendFrameOp(ws.uid, 'a.csv', 0, '{"kind":"index"}'), true);
          assert.equal(await store.appendFrameOp(ws.uid, 'a.csv', 0, '{"kind":"index again"}'), false, 'a stale expectation loses');
          assert.equal(await store.appendFrameOp(ws.uid, 'a.csv', 1, '{"kind":"add","values":{"é":"\\u0000 ✓"}}'), true);
          assert.equal(await store.appendFrameOp(ws.uid, 'a.csv', 3, '{"kind":"gap"}'), false, 'no gaps');
          assert.equal(await store.appendFrameOp(ws.uid, 'dir/b.parquet', 0, 'b1'), true);
          assert.deepEqual(await store.listFrameOps(ws.uid, 'a.csv', 0, 100), [
            { seq: 1, op: '{"kind":"index"}' },
            { seq: 2, op: '{"kind":"add","values":{"é":"\\u0000 ✓"}}' },
          ]);
          assert.deepEqual(await store.listFrameOps(ws.uid, 'a.csv', 1, 100), [{ seq: 2, op: '{"kind":"add","values":{"é":"\\u0000 ✓"}}' }]);
          assert.deepEqual(await store.listFrameOps(ws.uid, 'a.csv', 0, 1), [{ seq: 1, op: '{"kind":"index"}' }]);
          assert.deepEqual(await store.listFrameOps(ws.uid, 'a.csv', 2, 100), []);
          assert.deepEqual(await store.listFrameOps(ws.uid, 'nope.csv', 0, 100), []);
          assert.deepEqual(await store.listFrameLogs(ws.uid), [
            { path: 'a.csv', seq: 2 },
            { path: 'dir/b.parquet', seq: 1 },
          ]);
          const other = await store.createWorkspace(repo.id, { id: 'w2', name: null, branch: 'main', baseCommitId: hex() });
          assert.deepEqual(await store.listFrameLogs(other.uid), [], 'logs belong to one workspace');
        }));

      it('lets exactly one of concurrent appends with the same expectation win', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const ws = await store.createWorkspace(repo.id, { id: 'w', name: null, branch: 'main', baseCommitId: hex() });
          await store.appendFrameOp(ws.uid, 'f.jsonl', 0, 'index');
          const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.appendFrameOp(ws.uid, 'f.jsonl', 1, `op ${i}`)));
          assert.equal(results.filter(Boolean).length, 1);
          const ops = await store.listFrameOps(ws.uid, 'f.jsonl', 0, 100);
          assert.deepEqual(ops.map((o) => o.seq), [1, 2]);
          assert.equal(ops[1].op, `op ${results.indexOf(true)}`);
        }));

      it('deletes a log (conditionally on its last number), renames one, and drops them with the workspace', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const ws = await store.createWorkspace(repo.id, { id: 'w', name: null, branch: 'main', baseCommitId: hex() });
          for (const [path, n] of [['a.csv', 3], ['b.csv', 1], ['c.tsv', 2]] as const) {
            for (let seq = 0; seq < n; seq++) assert.equal(await store.appendFrameOp(ws.uid, path, seq, `${path} ${seq + 1}`), true);
          }
          assert.equal(await store.deleteFrameLog(ws.uid, 'a.csv', 2), false, 'the log moved on since 2');
          assert.equal(await store.deleteFrameLog(ws.uid, 'a.csv', 3), true);
          assert.equal(await store.deleteFrameLog(ws.uid, 'a.csv'), false, 'already gone');
          assert.equal(await store.appendFrameOp(ws.uid, 'a.csv', 0, 'again'), true, 'a deleted log starts over at 1');
          assert.equal(await store.renameFrameLog(ws.uid, 'b.csv', 'c.tsv'), false, 'the target has a log');
          assert.equal(await store.renameFrameLog(ws.uid, 'nope.csv', 'd.csv'), false, 'nothing to move');
          assert.equal(await store.renameFrameLog(ws.uid, 'b.csv', 'sub/b.parquet'), true);
          assert.deepEqual(await store.listFrameOps(ws.uid, 'sub/b.parquet', 0, 10), [{ seq: 1, op: 'b.csv 1' }]);
          assert.deepEqual(await store.listFrameOps(ws.uid, 'b.csv', 0, 10), []);
          assert.deepEqual((await store.listFrameLogs(ws.uid)).map((l) => l.path), ['a.csv', 'c.tsv', 'sub/b.parquet']);
          await store.deleteWorkspace(ws.uid);
          assert.deepEqual(await store.listFrameLogs(ws.uid), []);
          await assert.rejects(store.appendFrameOp(ws.uid, 'a.csv', 1, 'late'), (err: unknown) => err instanceof YokeError && err.httpStatus === 404);
          const again = await store.createWorkspace(repo.id, { id: 'w', name: null, branch: 'main', baseCommitId: hex() });
          await store.appendFrameOp(again.uid, 'a.csv', 0, 'index');
          assert.equal(await store.deleteAllWorkspaces(repo.id), 1);
          assert.deepEqual(await store.listFrameLogs(again.uid), []);
        }));
    });

    describe('data frame comparisons', () => {
      it('creates, replaces (keeping created_at), reads and deletes a comparison per repository, dropped with the repository', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const other = await newRepo(store);
          assert.equal(await store.getFrameComparison(repo.id, 'c1'), null);
          const created = await store.putFrameComparison(repo.id, 'c1', '{"keys":["id"],"note":"é \\u0000"}');
          assert.deepEqual([created.id, created.definition], ['c1', '{"keys":["id"],"note":"é \\u0000"}']);
          assert.equal(created.createdAt, created.updatedAt);
          assert.deepEqual(await store.getFrameComparison(repo.id, 'c1'), created);
          assert.equal(await store.getFrameComparison(other.id, 'c1'), null, 'comparisons belong to one repository');
          await new Promise((resolve) => setTimeout(resolve, 5));
          const replaced = await store.putFrameComparison(repo.id, 'c1', '{"keys":[]}');
          assert.equal(replaced.definition, '{"keys":[]}');
          assert.equal(replaced.createdAt, created.createdAt);
          assert.ok(replaced.updatedAt > created.updatedAt, `${replaced.updatedAt} after ${created.updatedAt}`);
          await store.putFrameComparison(other.id, 'c1', 'other');
          assert.equal(await store.deleteFrameComparison(repo.id, 'c1'), true);
          assert.equal(await store.deleteFrameComparison(repo.id, 'c1'), false);
          assert.equal(await store.getFrameComparison(repo.id, 'c1'), null);
          assert.equal((await store.getFrameComparison(other.id, 'c1'))?.definition, 'other');
          assert.equal(await store.getFrameComparison(other.id, 'c\0'), null);
          await store.deleteRepo(other.id);
          assert.equal(await store.getFrameComparison(other.id, 'c1'), null);
        }));
    });

    describe('uploads', () => {
      it('openUpload is get-or-create per (repository, kind, key) and keeps the first declaration', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const key = hex();
          const first = await store.openUpload(repo.id, 'chunked', key, { totalSize: 100, totalChunks: 2, details: { filename: 'a.bin' } });
          assert.equal(first.state, 'open');
          assert.equal(first.totalSize, 100);
          assert.deepEqual(first.details, { filename: 'a.bin' });
          const again = await store.openUpload(repo.id, 'chunked', key, { totalSize: 999, totalChunks: 9, details: {} });
          assert.equal(again.id, first.id);
          assert.equal(again.totalSize, 100);
          const otherKind = await store.openUpload(repo.id, 'version', key, { totalSize: null, totalChunks: null, details: {} });
          assert.notEqual(otherKind.id, first.id);
          assert.equal((await store.getUpload(repo.id, 'chunked', key))?.id, first.id);
          assert.equal(await store.getUpload((await newRepo(store)).id, 'chunked', key), null);
        }));

      it('updateUpload changes an open upload atomically, and nothing once it is claimed or gone', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const upload = await store.openUpload(repo.id, 'version', hex(), { totalSize: null, totalChunks: null, details: { list: [] } });
          const append = (item: string) => store.updateUpload(upload.id, (u) => ({ totalSize: 42, details: { list: [...(u.details.list as string[]), item] } }));
          await Promise.all([append('a'), append('b'), append('c')]);
          const now = await store.getUpload(repo.id, 'version', upload.key);
          assert.equal(now?.totalSize, 42);
          assert.deepEqual([...(now?.details.list as string[])].sort(), ['a', 'b', 'c']);
          assert.equal(await store.claimUpload(upload.id, 'c', () => false), true);
          assert.equal(await append('late'), null);
          await store.deleteUpload(upload.id);
          assert.equal(await append('gone'), null);
        }));

      it('parts: announced by one writer at a time, recorded by that writer only, replaced when sent again, offsets above 2^32', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const upload = await store.openUpload(repo.id, 'version', hex(), { totalSize: null, totalChunks: null, details: {} });
          const far = 6 * 1024 ** 3;
          const alive = () => false;
          assert.equal(await store.beginUploadPart(upload.id, far, far, 'w1', alive), 'begun');
          assert.equal(await store.beginUploadPart(upload.id, far, far, 'w2', alive), 'busy', 'one writer per part');
          assert.deepEqual(await store.listUploadParts(upload.id), [], 'a part under way is not listed');
          assert.equal(await store.recordUploadPart(upload.id, { part: far, offset: far, size: 10, tag: 't1' }, 'w2'), false, 'only its writer records it');
          assert.equal(await store.recordUploadPart(upload.id, { part: far, offset: far, size: 10, tag: 't1' }, 'w1'), true);
          assert.equal(await store.beginUploadPart(upload.id, 0, null, 'w3', alive), 'begun');
          await store.recordUploadPart(upload.id, { part: 0, offset: null, size: 5, tag: '' }, 'w3');
          assert.equal(await store.beginUploadPart(upload.id, 0, null, 'w4', alive), 'begun', 'a stored part may be sent again');
          assert.deepEqual(await store.listUploadParts(upload.id), [{ part: far, offset: far, size: 10, tag: 't1' }]);
          await store.recordUploadPart(upload.id, { part: 0, offset: null, size: 7, tag: 'x' }, 'w4');
          assert.deepEqual(await store.listUploadParts(upload.id), [{ part: 0, offset: null, size: 7, tag: 'x' }, { part: far, offset: far, size: 10, tag: 't1' }]);
          // A failed write is withdrawn with whatever the part held; a writer said to be gone is taken over.
          assert.equal(await store.beginUploadPart(upload.id, 0, null, 'w5', alive), 'begun');
          await store.abandonUploadPart(upload.id, 0, 'w5');
          assert.equal(await store.beginUploadPart(upload.id, 1, null, 'dead', alive), 'begun');
          assert.equal(await store.beginUploadPart(upload.id, 1, null, 'w6', (w) => w === 'dead'), 'begun');
          assert.equal(await store.recordUploadPart(upload.id, { part: 1, offset: null, size: 1, tag: '' }, 'dead'), false);
          assert.equal(await store.recordUploadPart(upload.id, { part: 1, offset: null, size: 1, tag: '' }, 'w6'), true);
          assert.deepEqual((await store.listUploadParts(upload.id)).map((p) => p.part), [1, far]);
        }));

      it('claims wait for parts under way (taking over gone writers), once; release and delete; no part after', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const upload = await store.openUpload(repo.id, 'version', hex(), { totalSize: null, totalChunks: null, details: {} });
          const alive = () => false;
          await store.beginUploadPart(upload.id, 0, 0, 'w1', alive);
          assert.equal(await store.claimUpload(upload.id, 'c', alive), false, 'a part is being written');
          await store.recordUploadPart(upload.id, { part: 0, offset: 0, size: 5, tag: '' }, 'w1');
          await store.beginUploadPart(upload.id, 5, 5, 'gone', alive);
          assert.equal(await store.claimUpload(upload.id, 'c', (w) => w === 'gone'), true, 'a gone writer is withdrawn');
          assert.deepEqual((await store.listUploadParts(upload.id)).map((p) => p.part), [0]);
          assert.equal(await store.beginUploadPart(upload.id, 9, 9, 'w2', alive), 'closed', 'no part while assembling');
          assert.equal(await store.claimUpload(upload.id, 'c2', alive), false);
          await store.releaseUpload(upload.id);
          assert.equal(await store.claimUpload(upload.id, 'c2', alive), true);
          await store.deleteUpload(upload.id);
          assert.deepEqual(await store.listUploadParts(upload.id), []);
          assert.equal(await store.beginUploadPart(upload.id, 0, 0, 'w3', alive), 'closed', 'a part of a finished upload is refused');
          assert.equal(await store.getUpload(repo.id, 'version', upload.key), null);
        }));

      it('the hash frontier moves by compare-and-swap and is reset by a write below what it covers or reads', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const upload = await store.openUpload(repo.id, 'version', hex(), { totalSize: null, totalChunks: null, details: {} });
          const alive = () => false;
          const state = new Uint8Array([1, 2, 3]);
          assert.deepEqual(await store.getUploadFrontier(upload.id), { through: 0, state: null, readingTo: 0, generation: 0 });
          assert.equal(await store.reserveUploadFrontier(upload.id, 0, 0, 100), true);
          assert.equal(await store.advanceUploadFrontier(upload.id, 0, 0, { through: 99, state }), false, 'only to what was reserved');
          assert.equal(await store.advanceUploadFrontier(upload.id, 0, 0, { through: 100, state }), true);
          assert.equal(await store.advanceUploadFrontier(upload.id, 0, 0, { through: 100, state }), false, 'from where it no longer is');
          assert.deepEqual(await store.getUploadFrontier(upload.id), { through: 100, state, readingTo: 100, generation: 0 });
          // A part above what is hashed leaves it; one below resets it, and a step begun before fails.
          assert.equal(await store.beginUploadPart(upload.id, 100, 100, 'w1', alive), 'begun');
          assert.equal((await store.getUploadFrontier(upload.id))!.through, 100);
          assert.equal(await store.reserveUploadFrontier(upload.id, 0, 100, 200), true);
          assert.equal(await store.beginUploadPart(upload.id, 150, 150, 'w2', alive), 'begun');
          assert.deepEqual(await store.getUploadFrontier(upload.id), { through: 0, state: null, readingTo: 0, generation: 1 });
          assert.equal(await store.advanceUploadFrontier(upload.id, 0, 100, { through: 200, state }), false);
          // Sending a stored part again resets it too (its bytes may change).
          await store.recordUploadPart(upload.id, { part: 100, offset: 100, size: 50, tag: '' }, 'w1');
          assert.equal(await store.reserveUploadFrontier(upload.id, 1, 0, 10), true);
          assert.equal(await store.advanceUploadFrontier(upload.id, 1, 0, { through: 10, state }), true);
          assert.equal(await store.beginUploadPart(upload.id, 100, 100, 'w3', alive), 'begun');
          assert.equal((await store.getUploadFrontier(upload.id))!.generation, 2);
          assert.equal(await store.getUploadFrontier('no-such-upload'), null);
        }));

      it('releaseAbandonedUploads reopens the assemblies of claimants said to be gone, and only those', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const open = (key: string) => store.openUpload(repo.id, 'version', key, { totalSize: 10, totalChunks: null, details: {} });
          const [dead, live, anonymous] = [await open('k1'), await open('k2'), await open('k3')];
          const alive = () => false;
          assert.equal(await store.claimUpload(dead.id, 'host:111', alive), true);
          assert.equal(await store.claimUpload(live.id, 'host:222', alive), true);
          assert.equal(await store.claimUpload(anonymous.id, 'host:444', alive), true);
          assert.equal(await store.releaseAbandonedUploads((claimant) => claimant === 'host:111'), 1);
          assert.equal((await store.getUpload(repo.id, 'version', 'k1'))!.state, 'open');
          assert.equal((await store.getUpload(repo.id, 'version', 'k2'))!.state, 'assembling');
          assert.equal((await store.getUpload(repo.id, 'version', 'k3'))!.state, 'assembling');
          assert.equal(await store.claimUpload(dead.id, 'host:333', alive), true, 'the reopened upload can be claimed again');
          await store.releaseUpload(live.id);
          assert.equal(await store.releaseAbandonedUploads(() => true), 2, 'a released claim (k2) names no claimant any more');
        }));

      it('lists uploads idle since a time, and repository deletion removes its uploads', () =>
        withStore(async (store) => {
          const repo = await newRepo(store);
          const upload = await store.openUpload(repo.id, 'chunked', hex(), { totalSize: 1, totalChunks: 1, details: {} });
          const future = new Date(Date.now() + 60_000).toISOString();
          const past = new Date(Date.now() - 60_000).toISOString();
          assert.ok((await store.listUploadsIdleSince(future)).some((u) => u.id === upload.id));
          assert.ok(!(await store.listUploadsIdleSince(past)).some((u) => u.id === upload.id));
          await store.deleteRepo(repo.id);
          assert.ok(!(await store.listUploadsIdleSince(future)).some((u) => u.id === upload.id));
        }));
    });
  });
}
