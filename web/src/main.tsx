/** The Tally dashboard: a hash-routed single page over the query API. */
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { setConfig, type SiteConfig } from './site-config.ts';
import { completeSignIn } from './auth.ts';
import { ExceptionsView } from './views/exceptions.tsx';
import { ExceptionDetailView } from './views/exception-detail.tsx';
import { SearchView } from './views/search.tsx';
import { UploadView } from './views/upload.tsx';
import { RunsView } from './views/runs.tsx';
import { FilesView } from './views/files.tsx';
import { OperationsView } from './views/operations.tsx';
import { Who } from './views/who.tsx';
import './styles.css';

interface Route {
  readonly name: 'exceptions' | 'exception' | 'search' | 'upload' | 'files' | 'runs' | 'operations';
  readonly id?: string;
  readonly query: URLSearchParams;
}

function parseHash(hash: string): Route {
  const [path = '', qs = ''] = hash.replace(/^#/, '').split('?');
  const query = new URLSearchParams(qs);
  const parts = path.split('/').filter(Boolean);
  if (parts[0] === 'exceptions' && parts[1]) return { name: 'exception', id: decodeURIComponent(parts[1]), query };
  if (
    parts[0] === 'search' ||
    parts[0] === 'upload' ||
    parts[0] === 'files' ||
    parts[0] === 'runs' ||
    parts[0] === 'operations'
  )
    return { name: parts[0], query };
  return { name: 'exceptions', query };
}

const NAV: { href: string; label: string; names: Route['name'][] }[] = [
  { href: '#/exceptions', label: 'Exceptions', names: ['exceptions', 'exception'] },
  { href: '#/exceptions?status=AWAITING_APPROVAL', label: 'Approvals', names: [] },
  { href: '#/search', label: 'Search', names: ['search'] },
  { href: '#/upload', label: 'Upload', names: ['upload'] },
  { href: '#/files', label: 'Files', names: ['files'] },
  { href: '#/runs', label: 'Runs', names: ['runs'] },
  { href: '#/operations', label: 'Operations', names: ['operations'] },
];

const TITLES: Record<Route['name'], string> = {
  exceptions: 'Exceptions',
  exception: 'Exception',
  search: 'Search',
  upload: 'Upload',
  files: 'Files',
  runs: 'Runs',
  operations: 'Operations',
};

function App() {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  const firstView = useRef(true);
  useEffect(() => {
    const onHash = () => setRoute(parseHash(location.hash));
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  useEffect(() => {
    document.title = `${TITLES[route.name]} · Tally`;
    // After navigating, move focus to the new view so keyboard and screen-reader users land on
    // it; on the first load focus stays at the top of the page (skip link first).
    if (firstView.current) firstView.current = false;
    else document.getElementById('main')?.focus({ preventScroll: true });
  }, [route.name, route.id]);

  return (
    <>
      <a
        class="skip"
        href="#main"
        onClick={(e) => {
          e.preventDefault();
          document.getElementById('main')?.focus();
        }}
      >
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Tally</span>
        <nav aria-label="Main">
          <ul>
            {NAV.map((n) => (
              <li key={n.href}>
                <a href={n.href} aria-current={n.names.includes(route.name) ? 'page' : undefined}>
                  {n.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <Who />
      </header>
      <main id="main" tabIndex={-1}>
        {route.name === 'exceptions' && <ExceptionsView query={route.query} />}
        {route.name === 'exception' && route.id && <ExceptionDetailView id={route.id} />}
        {route.name === 'search' && <SearchView query={route.query} />}
        {route.name === 'upload' && <UploadView />}
        {route.name === 'files' && <FilesView query={route.query} />}
        {route.name === 'runs' && <RunsView query={route.query} />}
        {route.name === 'operations' && <OperationsView />}
      </main>
    </>
  );
}

async function start(): Promise<void> {
  // config.json exists where the site is deployed apart from the API (AWS); locally it is absent.
  try {
    const res = await fetch('config.json', { cache: 'no-store' });
    if (res.ok) setConfig((await res.json()) as SiteConfig);
  } catch {
    // same origin, no sign-in
  }
  await completeSignIn();
  const root = document.getElementById('app') as HTMLElement;
  root.textContent = ''; // the static "Loading" placeholder
  render(<App />, root);
}

void start();
