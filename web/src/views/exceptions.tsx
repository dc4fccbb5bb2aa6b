/**
 * The exceptions table: filters, newest first (or soonest due), paged, with counts by type and
 * severity; each row's due date, age and an overdue badge (functions/shared/deadlines.ts).
 */
import { useEffect, useState } from 'preact/hooks';
import {
  api,
  DUE_SORT_CAP,
  EXCEPTION_TYPES,
  keyText,
  SEVERITIES,
  STATUSES,
  type ApprovalResponse,
  type ExceptionCounts,
  type ExceptionItem,
  type Page,
  type Run,
} from '../api.ts';
import { usePagedListing } from '../paging.ts';
import { Badge, BarChart, ErrorMessage, Field, Loading, when } from './common.tsx';
import { StaleUploads } from './runs.tsx';
import { BulkBar, type RowOutcome } from './workflow-panels.tsx';
import { useIsMaker } from './who.tsx';

export const FILTERS = ['exception_type', 'status', 'severity', 'dataset', 'business_date', 'run_id'] as const;
type Filters = Partial<Record<(typeof FILTERS)[number], string>>;
const PAGE_SIZE = 25;

export function filtersFrom(query: URLSearchParams): Filters {
  const filters: Filters = {};
  for (const name of FILTERS) {
    const value = query.get(name);
    if (value) filters[name] = value;
  }
  return filters;
}

/** The listing's own options beyond the filters search shares: overdue only, and the order. */
interface ListOptions {
  overdue?: string;
  sort?: string;
}

function listOptionsFrom(query: URLSearchParams): ListOptions {
  return {
    ...(query.get('overdue') === 'true' ? { overdue: 'true' } : {}),
    ...(query.get('sort') === 'due' ? { sort: 'due' } : {}),
  };
}

function setFilters(filters: Filters & { pattern_id?: string } & ListOptions, base: string): void {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (v) params.set(k, v);
  const qs = params.toString();
  location.hash = `${base}${qs ? `?${qs}` : ''}`;
}

/** A text or date filter a view adds to the listing's (search's field/value, date range, pattern). */
export interface ExtraFilter {
  readonly name: string;
  readonly label: string;
  readonly type?: 'text' | 'date';
  readonly placeholder?: string;
}

export function FilterForm({
  filters,
  onChange,
  idPrefix,
  extra = [],
}: {
  filters: Record<string, string | undefined>;
  onChange: (f: Record<string, string | undefined>) => void;
  idPrefix: string;
  extra?: readonly ExtraFilter[];
}) {
  const [draft, setDraft] = useState(filters);
  useEffect(() => setDraft(filters), [JSON.stringify(filters)]);
  const set = (name: string, value: string) => setDraft({ ...draft, [name]: value || undefined });
  const select = (name: keyof Filters, label: string, options: readonly string[]) => (
    <Field id={`${idPrefix}-${name}`} label={label}>
      <select
        id={`${idPrefix}-${name}`}
        value={draft[name] ?? ''}
        onChange={(e) => {
          const next = { ...draft, [name]: (e.currentTarget as HTMLSelectElement).value || undefined };
          setDraft(next);
          onChange(next);
        }}
      >
        <option value="">Any</option>
        {options.map((o) => (
          <option key={o} value={o}>
            {o.replaceAll('_', ' ')}
          </option>
        ))}
      </select>
    </Field>
  );
  const text = (name: string, label: string, type: 'text' | 'date' = 'text', placeholder = '') => {
    const id = `${idPrefix}-${name}`;
    const onInput = (e: Event) => set(name, (e.currentTarget as HTMLInputElement).value);
    return (
      <Field id={id} label={label}>
        {type === 'date' ? (
          <input id={id} type="date" value={draft[name] ?? ''} onInput={onInput} />
        ) : (
          <input id={id} type="text" value={draft[name] ?? ''} placeholder={placeholder} onInput={onInput} />
        )}
      </Field>
    );
  };
  return (
    <form
      class="filters"
      aria-label="Filters"
      onSubmit={(e) => {
        e.preventDefault();
        onChange(draft);
      }}
    >
      {select('exception_type', 'Type', EXCEPTION_TYPES)}
      {select('status', 'Status', STATUSES)}
      {select('severity', 'Severity', SEVERITIES)}
      {text('dataset', 'Dataset', 'text', 'trades')}
      {text('business_date', 'Business date', 'date')}
      {text('run_id', 'Run', 'text', 'run id')}
      {extra.map((f) => text(f.name, f.label, f.type ?? 'text', f.placeholder ?? ''))}
      <div class="filter-actions">
        <button type="submit">Apply filters</button>
        <button
          type="button"
          class="secondary"
          onClick={() => {
            setDraft({});
            onChange({});
          }}
        >
          Clear
        </button>
      </div>
    </form>
  );
}

/** The listing's owner filters (search has no such fields): `me` is whoever is signed in. */
/** An account on either row and a business-date range (the search view has the same). */
export const ACCOUNT_AND_DATE_FILTERS: readonly ExtraFilter[] = [
  { name: 'field', label: 'Field', placeholder: 'account_id' },
  { name: 'value', label: 'Value', placeholder: 'ACCT1002' },
  { name: 'date_from', label: 'Business date from', type: 'date' },
  { name: 'date_to', label: 'Business date to', type: 'date' },
];

const OWNER_FILTERS: readonly ExtraFilter[] = [
  { name: 'assignee', label: 'Assignee', placeholder: 'me' },
  { name: 'team', label: 'Team', placeholder: 'team name' },
  ...ACCOUNT_AND_DATE_FILTERS,
];

/** The approval queue: a row waiting for a second person offers Approve and Reject; its maker, Withdraw request. */
function ApprovalButtons({ e, onDecided }: { e: ExceptionItem; onDecided: (text: string) => void }) {
  const [busy, setBusy] = useState(false);
  const mine = useIsMaker(e.approval?.requested_by);
  const decide = async (decision: 'approve' | 'reject') => {
    setBusy(true);
    try {
      const r = await api<ApprovalResponse>(`/exceptions/${e.exception_id}/approval`, {
        method: 'POST',
        body: { version: e.version, decision },
      });
      const done = decision === 'approve' ? 'approved' : mine ? 'withdrawn' : 'rejected';
      onDecided(`${keyText(e.key)}: ${done}, now ${r.record.status}`);
    } catch (err) {
      onDecided(`${keyText(e.key)}: ${(err as Error).message}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <span class="actions" role="group" aria-label={`Decide ${keyText(e.key)}`}>
      <button
        type="button"
        disabled={busy || mine}
        title={mine ? 'you asked for it: someone else must approve it' : undefined}
        onClick={() => decide('approve')}
      >
        Approve
      </button>
      <button type="button" class="secondary" disabled={busy} onClick={() => decide('reject')}>
        {mine ? 'Withdraw request' : 'Reject'}
      </button>
    </span>
  );
}

/** The query string of this view without the pattern filter (`?...` or nothing). */
function withoutPattern(query: URLSearchParams): string {
  const params = new URLSearchParams(query);
  params.delete('pattern_id');
  const qs = params.toString();
  return qs ? `?${qs}` : '';
}

export function ExceptionsView({ query }: { query: URLSearchParams }) {
  // A break pattern's members (the Runs view links here); not one of the form's filters, which search shares.
  const patternId = query.get('pattern_id') ?? undefined;
  const formFilters: Filters & Record<string, string | undefined> = filtersFrom(query);
  for (const { name } of OWNER_FILTERS) {
    const value = query.get(name);
    if (value) formFilters[name] = value;
  }
  const filters: Filters & { pattern_id?: string } = patternId
    ? { ...formFilters, pattern_id: patternId }
    : formFilters;
  const filterKey = JSON.stringify(filters);
  const [reloadKey, setReloadKey] = useState(0);
  const options = listOptionsFrom(query);
  const overdueOnly = options.overdue === 'true';
  const { page, error, pageNumber, previous, next, skipped } = usePagedListing<ExceptionItem>(
    '/exceptions',
    { ...filters, ...options },
    PAGE_SIZE,
    reloadKey,
  );
  // Rows selected for a bulk change (this page's), and each one's outcome after it.
  const [selected, setSelected] = useState<string[]>([]);
  const [outcomes, setOutcomes] = useState<Record<string, RowOutcome>>({});
  const [decided, setDecided] = useState<string | null>(null);
  useEffect(() => setSelected([]), [filterKey, pageNumber]);
  const items = page?.items ?? [];
  const allSelected = items.length > 0 && items.every((e) => selected.includes(e.exception_id));
  const toggle = (id: string) =>
    setSelected(selected.includes(id) ? selected.filter((s) => s !== id) : [...selected, id]);
  const queue = filters.status === 'AWAITING_APPROVAL';
  const [counts, setCounts] = useState<ExceptionCounts | null>(null);
  const [run, setRun] = useState<Run | null>(null);
  useEffect(() => {
    let live = true;
    setCounts(null);
    // The charts count what the listing shows: "overdue only" narrows both.
    api<ExceptionCounts>('/exception-counts', { query: { ...filters, ...(overdueOnly ? { overdue: 'true' } : {}) } })
      .then((c) => live && setCounts(c))
      .catch(() => live && setCounts(null));
    return () => {
      live = false;
    };
  }, [filterKey, overdueOnly]);
  // Scoped to one run (or one dataset-day, whose latest run it is): say if a newer upload of a
  // side was rejected, so these exceptions are not taken for the latest file's.
  useEffect(() => {
    let live = true;
    setRun(null);
    const { run_id: runId, dataset, business_date: date } = filters;
    const found = runId
      ? api<Run>(`/runs/${encodeURIComponent(runId)}`)
      : dataset && date
        ? api<Page<Run>>('/runs', { query: { dataset, business_date: date, limit: '1' } }).then((p) => p.items[0])
        : Promise.resolve(undefined);
    found.then((r) => live && setRun(r ?? null)).catch(() => live && setRun(null));
    return () => {
      live = false;
    };
  }, [filterKey]);

  return (
    <section aria-labelledby="exceptions-title">
      <h1 id="exceptions-title">Exceptions</h1>
      <FilterForm
        filters={formFilters}
        idPrefix="f"
        extra={OWNER_FILTERS}
        onChange={(f) =>
          setFilters({ ...(patternId ? { ...f, pattern_id: patternId } : f), ...options }, '#/exceptions')
        }
      />
      <div class="filters" aria-label="Deadlines">
        <label>
          <input
            type="checkbox"
            data-testid="overdue-only"
            checked={options.overdue === 'true'}
            onChange={(e) =>
              setFilters(
                { ...filters, ...options, overdue: (e.currentTarget as HTMLInputElement).checked ? 'true' : undefined },
                '#/exceptions',
              )
            }
          />{' '}
          Overdue only
        </label>
        <Field id="f-sort" label="Order">
          <select
            id="f-sort"
            value={options.sort ?? ''}
            onChange={(e) =>
              setFilters(
                { ...filters, ...options, sort: (e.currentTarget as HTMLSelectElement).value || undefined },
                '#/exceptions',
              )
            }
          >
            <option value="">Newest first</option>
            <option value="due">Soonest due first</option>
          </select>
        </Field>
      </div>
      {patternId && (
        <p class="small" data-testid="pattern-filter">
          Members of break pattern <code>{patternId}</code> ·{' '}
          <a href={`#/exceptions${withoutPattern(query)}`}>all exceptions</a>
        </p>
      )}
      {run && <StaleUploads run={run} />}
      {counts && (
        <div class="charts" aria-label="Counts">
          <BarChart
            title={`By type (${counts.total.toLocaleString('en')}${counts.complete ? '' : '+'} matching)`}
            counts={counts.by_type}
            kind="type"
          />
          <BarChart title="By severity" counts={counts.by_severity} kind="severity" />
        </div>
      )}
      <ErrorMessage error={error} />
      {!page && !error && <Loading what="exceptions" skipped={skipped} />}
      {page && (
        <>
          <p class="muted" role="status" aria-live="polite">
            {page.count === 0
              ? 'No exceptions match these filters.'
              : `Showing ${page.count} exception${page.count === 1 ? '' : 's'}, ${options.sort === 'due' ? 'soonest due first' : 'newest first'} (page ${pageNumber}).`}
          </p>
          {page.truncated && (
            <div class="warning" role="note" data-testid="due-truncated">
              More exceptions match than are sorted by due date: these are the soonest due of the newest{' '}
              {DUE_SORT_CAP.toLocaleString('en')} only. Narrow the filters (a dataset, a status), or tick Overdue only
              with no other filter, to order them all.
            </div>
          )}
          {decided && (
            <p class="ok" role="status" data-testid="decided">
              {decided}
            </p>
          )}
          {page.count > 0 && (
            <BulkBar
              selected={selected}
              versions={Object.fromEntries(items.map((e) => [e.exception_id, e.version]))}
              onDone={(response) => {
                setOutcomes(Object.fromEntries(response.results.map((r) => [r.id, r])));
                setSelected([]);
                setReloadKey(reloadKey + 1);
              }}
              onRetriaged={(asked) => {
                setOutcomes(asked);
                setSelected([]);
              }}
            />
          )}
          {page.count > 0 && (
            <div class="table-wrap">
              <table class="exceptions">
                <caption class="sr-only">Exceptions, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">
                      <input
                        type="checkbox"
                        aria-label="Select every exception on this page"
                        checked={allSelected}
                        onChange={() => setSelected(allSelected ? [] : items.map((e) => e.exception_id))}
                      />
                    </th>
                    <th scope="col">Key</th>
                    <th scope="col">Type</th>
                    <th scope="col">Status</th>
                    <th scope="col">Severity</th>
                    <th scope="col" class="wide">
                      Dataset / date
                    </th>
                    <th scope="col">Summary</th>
                    <th scope="col" class="wide">
                      Created
                    </th>
                    <th scope="col">Due</th>
                    <th scope="col">{queue ? 'Decide' : 'Last change'}</th>
                  </tr>
                </thead>
                <tbody>
                  {page.items.map((e) => (
                    <tr key={e.exception_id} data-testid="exception-row">
                      <td>
                        <input
                          type="checkbox"
                          aria-label={`Select ${keyText(e.key)}`}
                          checked={selected.includes(e.exception_id)}
                          onChange={() => toggle(e.exception_id)}
                        />
                      </td>
                      <th scope="row">
                        <a href={`#/exceptions/${e.exception_id}`}>{keyText(e.key)}</a>
                      </th>
                      <td>
                        <Badge kind="type" value={e.exception_type} />
                      </td>
                      <td>
                        <Badge kind="status" value={e.status} />
                      </td>
                      <td>
                        <Badge kind="severity" value={e.severity ?? e.policy_severity} />
                      </td>
                      <td class="wide">
                        {e.dataset} / {e.business_date}
                      </td>
                      <td class="summary">{e.triage?.summary ?? <span class="muted">not triaged yet</span>}</td>
                      <td class="nowrap wide">{when(e.created_at)}</td>
                      <td class="nowrap" data-testid="due">
                        <Due e={e} />
                      </td>
                      <td data-testid="row-outcome">
                        {queue && e.status === 'AWAITING_APPROVAL' ? (
                          <ApprovalButtons
                            e={e}
                            onDecided={(text) => {
                              setDecided(text);
                              setReloadKey(reloadKey + 1);
                            }}
                          />
                        ) : outcomes[e.exception_id] ? (
                          <span title={outcomes[e.exception_id]?.error ?? ''}>
                            {outcomes[e.exception_id]?.outcome.replaceAll('_', ' ')}
                            {outcomes[e.exception_id]?.error ? `: ${outcomes[e.exception_id]?.error}` : ''}
                          </span>
                        ) : (
                          ''
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <nav class="pager" aria-label="Pages">
            <button type="button" class="secondary" disabled={!previous} onClick={previous}>
              Previous page
            </button>
            <button type="button" class="secondary" disabled={!next} onClick={next}>
              Next page
            </button>
          </nav>
        </>
      )}
    </section>
  );
}

/** Due date and age, with a badge once overdue; a PENDING late arrival shows when its window ends. */
export function Due({ e }: { e: ExceptionItem }) {
  const age =
    e.age_hours === undefined
      ? ''
      : e.age_hours < 48
        ? `${e.age_hours} h old`
        : `${Math.floor(e.age_hours / 24)} d old`;
  if (e.status === 'PENDING' && e.pending_until)
    return (
      <span class="muted" title="late-arrival window">
        pending until {when(e.pending_until)}
      </span>
    );
  return (
    <>
      {e.due_at ? when(e.due_at) : <span class="muted">—</span>}
      {e.overdue && (
        <>
          {' '}
          <span class="badge severity-critical" data-testid="overdue-badge">
            overdue
          </span>
        </>
      )}
      {age && <div class="small muted">{age}</div>}
    </>
  );
}
