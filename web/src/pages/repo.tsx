import type { Branch } from '../../../src/client/index.js';
import { client, useLoad } from '../api.js';
import { Await } from '../components.js';
import { resourceOf } from '../format.js';
import { navigate, repoHref, splitResource, type RepoView, type Route } from '../router.js';
import { BlobView } from './blob.js';
import { BranchesView } from './branches.js';
import { CommitView } from './commit.js';
import { CompareView } from './compare.js';
import { HistoryView } from './history.js';
import { TreeView } from './tree.js';
import { UploadView } from './upload.js';
import { WorkspacesView } from './workspaces.js';

type RepoRoute = Extract<Route, { page: 'repo' }>;

/** What every view of a repository gets. */
export interface RepoContext {
  namespace: string;
  repo: string;
  branches: Branch[];
  defaultBranch: string | null;
  /** The revision shown (a branch name or a commit id) and the path inside it. */
  revision: string;
  path: string;
}

function defaultBranchOf(branches: Branch[]): string | null {
  return branches.find((b) => b.name === 'main')?.name ?? branches[0]?.name ?? null;
}

const TABS: Array<[RepoView, string]> = [
  ['tree', 'Files'],
  ['commits', 'History'],
  ['branches', 'Branches'],
  ['workspaces', 'Workspaces'],
  ['upload', 'Upload'],
];

/** `/{ns}/{repo}/…`: the repository's header, tabs, branch selector and the view the address names. */
export function RepoPage({ route, query }: { route: RepoRoute; query: URLSearchParams }) {
  const { namespace, repo } = route;
  const loaded = useLoad(async (signal) => {
    const [repository, branches] = await Promise.all([client.repository(namespace, repo, signal), client.branches(namespace, repo, signal)]);
    return { repository, branches };
  }, [namespace, repo]);
  return (
    <Await loaded={loaded} what="Loading repository">
      {({ repository, branches }) => {
        const defaultBranch = defaultBranchOf(branches);
        const takesRevision = route.view !== 'commit' && route.view !== 'compare';
        const { revision, path } = takesRevision ? splitResource(route.resource, branches.map((b) => b.name), defaultBranch ?? '') : { revision: defaultBranch ?? '', path: '' };
        const context: RepoContext = { namespace, repo, branches, defaultBranch, revision, path };
        return (
          <>
            <div class="repo-head">
              <h1 class="repo-title">
                <a href={`/?q=${encodeURIComponent(`${namespace}/`)}`}>{namespace}</a>
                <span class="sep">/</span>
                <a href={repoHref(namespace, repo)}>{repo}</a>
              </h1>
              {repository.description ? <p class="muted">{repository.description}</p> : null}
            </div>
            <nav class="tabs" aria-label="Repository">
              {TABS.map(([view, label]) => {
                const current = route.view === view || (view === 'tree' && route.view === 'blob');
                const resource = view === 'tree' || view === 'commits' || view === 'upload' ? revision : '';
                return (
                  <a key={view} href={repoHref(namespace, repo, view, resource)} aria-current={current ? 'page' : undefined}>
                    {label}
                  </a>
                );
              })}
            </nav>
            {branches.length === 0 && route.view !== 'upload' ? <EmptyRepository namespace={namespace} repo={repo} /> : <View route={route} context={context} query={query} />}
          </>
        );
      }}
    </Await>
  );
}

function View({ route, context, query }: { route: RepoRoute; context: RepoContext; query: URLSearchParams }) {
  switch (route.view) {
    case 'tree':
      return <TreeView context={context} />;
    case 'blob':
      return <BlobView context={context} />;
    case 'commits':
      return <HistoryView context={context} page={Number(query.get('page') ?? 1) || 1} />;
    case 'commit':
      return <CommitView context={context} id={route.resource} />;
    case 'compare':
      return <CompareView context={context} spec={route.resource} />;
    case 'branches':
      return <BranchesView context={context} />;
    case 'workspaces':
      return <WorkspacesView context={context} />;
    case 'upload':
      return <UploadView context={context} />;
  }
}

function EmptyRepository({ namespace, repo }: { namespace: string; repo: string }) {
  return (
    <div class="card">
      <h2>This repository is empty</h2>
      <p>
        <a href={repoHref(namespace, repo, 'upload', 'main')}>Upload files</a> from this browser, or push with Oxen's client.
      </p>
    </div>
  );
}

/** A branch picker that keeps the current view and path. */
export function BranchSelect({ context, view }: { context: RepoContext; view: RepoView }) {
  const names = context.branches.map((b) => b.name);
  const options = names.includes(context.revision) ? names : [context.revision, ...names];
  return (
    <label class="branch-select">
      <span class="visually-hidden">Branch</span>
      <select
        value={context.revision}
        onChange={(event) => {
          const revision = (event.target as HTMLSelectElement).value;
          navigate(repoHref(context.namespace, context.repo, view, resourceOf(revision, context.path)));
        }}
      >
        {options.map((name) => (
          <option key={name} value={name}>
            {names.includes(name) ? name : `commit ${name.slice(0, 8)}`}
          </option>
        ))}
      </select>
    </label>
  );
}
