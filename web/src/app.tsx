import { client, authRequired, setToken, useDataVersion } from './api.js';
import { TokenPrompt } from './components.js';
import { HomePage } from './pages/home.js';
import { RepoPage } from './pages/repo.js';
import { parseRoute, useLocation } from './router.js';

/** The page frame: header, the token prompt when the server needs one, and the routed page. */
export function App() {
  const { path, query } = useLocation();
  useDataVersion();
  const route = parseRoute(path);
  const signedIn = client.token !== null;
  let page;
  if (authRequired && !signedIn) page = <TokenPrompt reason="This server needs a token to show anything." />;
  else if (route.page === 'home') page = <HomePage query={query} />;
  else if (route.page === 'repo') page = <RepoPage route={route} query={query} />;
  else page = <NotFound />;
  return (
    <>
      <a class="skip-link" href="#main" onClick={skipToContent}>
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="/">
          Yoke
        </a>
        <span class="spacer" />
        {signedIn && (
          <button class="link" type="button" onClick={() => setToken(null)}>
            Sign out
          </button>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </>
  );
}

/** The skip link moves focus itself: the router would otherwise treat `#main` as an address. */
function skipToContent(event: MouseEvent): void {
  event.preventDefault();
  document.getElementById('main')?.focus();
}

function NotFound() {
  return (
    <div class="card">
      <h1>Not found</h1>
      <p>
        Nothing lives at this address. <a href="/">See every repository</a>.
      </p>
    </div>
  );
}
