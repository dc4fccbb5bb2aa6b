/**
 * Search over triaged exceptions (meaning and exact words, fused), with the listing's filters and
 * search's own: a field's value (`field`/`value`, e.g. account_id ACCT1002), a business-date
 * range and a pattern. The query and filters live in the URL (`#/search?q=...&status=OPEN`): a
 * link or a reload runs the same search.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, keyText, type SearchHit } from '../api.ts';
import { Badge, ErrorMessage, Field } from './common.tsx';
import { ACCOUNT_AND_DATE_FILTERS, FilterForm, filtersFrom, type ExtraFilter } from './exceptions.tsx';

type Filters = Record<string, string | undefined>;

/** GET /search's filters beyond the listing's (functions/query-api/schemas.ts searchFilterShape). */
const SEARCH_FILTERS: readonly ExtraFilter[] = [
  ...ACCOUNT_AND_DATE_FILTERS,
  { name: 'pattern_id', label: 'Pattern', placeholder: 'pattern id' },
];

function searchFiltersFrom(query: URLSearchParams): Filters {
  const filters: Filters = filtersFrom(query);
  for (const { name } of SEARCH_FILTERS) {
    const value = query.get(name);
    if (value) filters[name] = value;
  }
  return filters;
}

function searchHash(q: string, filters: Filters): string {
  const params = new URLSearchParams();
  if (q.trim()) params.set('q', q.trim());
  for (const [k, v] of Object.entries(filters)) if (v) params.set(k, v);
  const qs = params.toString();
  return `#/search${qs ? `?${qs}` : ''}`;
}

export function SearchView({ query }: { query: URLSearchParams }) {
  const urlQ = query.get('q') ?? '';
  const urlFilters: Filters = searchFiltersFrom(query);
  const [q, setQ] = useState(urlQ);
  const [filters, setFilters] = useState<Filters>(urlFilters);
  const [hits, setHits] = useState<SearchHit[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const run = async (text: string, nextFilters: Filters) => {
    if (!text.trim()) return;
    setBusy(true);
    setError(null);
    try {
      setHits(
        (await api<{ items: SearchHit[] }>('/search', { query: { q: text.trim(), k: '10', ...nextFilters } })).items,
      );
    } catch (e) {
      setError(e);
      setHits(null);
    } finally {
      setBusy(false);
    }
  };

  // The URL is the search: opening or changing it runs it. On mount the fields already hold the
  // URL's values (useState above): setting them again from this effect, which Preact runs after
  // paint, could erase what a fast typist (or a test) entered in between.
  const mounted = useRef(false);
  useEffect(() => {
    if (mounted.current) {
      setQ(urlQ);
      setFilters(urlFilters);
    }
    mounted.current = true;
    if (urlQ.trim()) void run(urlQ, urlFilters);
    else setHits(null);
  }, [query.toString()]);

  /** Puts the search in the URL (which runs it); the same URL again just runs it again. */
  const search = (text: string, nextFilters: Filters) => {
    const next = searchHash(text, nextFilters);
    if (location.hash === next) void run(text, nextFilters);
    else location.hash = next;
  };

  return (
    <section aria-labelledby="search-title">
      <h1 id="search-title">Search</h1>
      <form
        role="search"
        class="searchbar"
        onSubmit={(e) => {
          e.preventDefault();
          // The field's own value: state set by the last keystroke may not have rendered yet (a
          // fast Enter right after typing would otherwise search the previous text, or nothing).
          const field = (e.currentTarget as HTMLFormElement).elements.namedItem('q') as HTMLInputElement | null;
          const text = field?.value ?? q;
          setQ(text);
          search(text, filters);
        }}
      >
        <Field id="q" label="Search exceptions">
          <input
            id="q"
            type="search"
            value={q}
            maxLength={1000}
            placeholder="e.g. amount differs, T0012, missing from the target"
            onInput={(e) => setQ((e.currentTarget as HTMLInputElement).value)}
          />
        </Field>
        <button type="submit" disabled={busy || !q.trim()}>
          Search
        </button>
      </form>
      <details class="more-filters">
        <summary>Filters</summary>
        <FilterForm
          filters={filters}
          idPrefix="s"
          extra={SEARCH_FILTERS}
          onChange={(f) => {
            setFilters(f);
            search(q, f);
          }}
        />
      </details>
      <ErrorMessage error={error} />
      {hits && (
        <>
          <p role="status" class="muted">
            {hits.length === 0
              ? 'No matching exceptions.'
              : `${hits.length} result${hits.length === 1 ? '' : 's'}, best match first.`}
          </p>
          <ol class="hits">
            {hits.map((h) => (
              <li key={h.exception_id} data-testid="search-hit">
                <div class="hit-head">
                  <a href={`#/exceptions/${h.exception_id}`}>{keyText(h.key)}</a>
                  <span
                    class="score"
                    title="fused rank score: 1 when first both by meaning and by exact words (reciprocal rank fusion)"
                  >
                    score {h.score.toFixed(3)}
                  </span>
                </div>
                <p class="why">
                  Matched on: <Badge kind="type" value={h.exception_type} /> key <code>{keyText(h.key)}</code>{' '}
                  <Badge kind="status" value={h.status} /> <Badge kind="severity" value={h.severity} /> {h.dataset} /{' '}
                  {h.business_date}
                </p>
                <p class="summary-text">{h.summary}</p>
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}
