/** The intake view: each side's current file, accepted or rejected (and why), newest ingest first. */
import { useEffect, useState } from 'preact/hooks';
import { FILE_STATUSES, type FileItem } from '../api.ts';
import { usePagedListing } from '../paging.ts';
import { Badge, ErrorMessage, Field, Loading, when } from './common.tsx';

const FILTERS = ['dataset', 'business_date', 'status'] as const;
type Filters = Partial<Record<(typeof FILTERS)[number], string>>;
const PAGE_SIZE = 25;

function filtersFrom(query: URLSearchParams): Filters {
  const filters: Filters = {};
  for (const name of FILTERS) {
    const value = query.get(name);
    if (value) filters[name] = value;
  }
  return filters;
}

function setFilters(filters: Filters): void {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (v) params.set(k, v);
  const qs = params.toString();
  location.hash = `#/files${qs ? `?${qs}` : ''}`;
}

function FileFilters({ filters }: { filters: Filters }) {
  const [draft, setDraft] = useState(filters);
  useEffect(() => setDraft(filters), [JSON.stringify(filters)]);
  return (
    <form
      class="filters"
      aria-label="Filters"
      onSubmit={(e) => {
        e.preventDefault();
        setFilters(draft);
      }}
    >
      <Field id="ff-status" label="Status">
        <select
          id="ff-status"
          value={draft.status ?? ''}
          onChange={(e) => {
            const next = { ...draft, status: (e.currentTarget as HTMLSelectElement).value || undefined };
            setDraft(next);
            setFilters(next);
          }}
        >
          <option value="">Any</option>
          {FILE_STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </Field>
      <Field id="ff-dataset" label="Dataset">
        <input
          id="ff-dataset"
          type="text"
          placeholder="trades"
          value={draft.dataset ?? ''}
          onInput={(e) => setDraft({ ...draft, dataset: (e.currentTarget as HTMLInputElement).value || undefined })}
        />
      </Field>
      <Field id="ff-date" label="Business date">
        <input
          id="ff-date"
          type="date"
          value={draft.business_date ?? ''}
          onInput={(e) =>
            setDraft({ ...draft, business_date: (e.currentTarget as HTMLInputElement).value || undefined })
          }
        />
      </Field>
      <div class="filter-actions">
        <button type="submit">Apply filters</button>
        <button
          type="button"
          class="secondary"
          onClick={() => {
            setDraft({});
            setFilters({});
          }}
        >
          Clear
        </button>
      </div>
    </form>
  );
}

function Reason({ file }: { file: FileItem }) {
  if (!file.error) return <span class="muted">—</span>;
  return (
    <>
      <code>{file.error.code}</code>
      {file.error.line !== undefined && <span class="small"> at line {file.error.line}</span>}
      <br />
      <span class="small">{file.error.message}</span>
    </>
  );
}

export function FilesView({ query }: { query: URLSearchParams }) {
  const filters = filtersFrom(query);
  const { page, error, pageNumber, previous, next, skipped } = usePagedListing<FileItem>('/files', filters, PAGE_SIZE);

  return (
    <section aria-labelledby="files-title">
      <h1 id="files-title">Files</h1>
      <p class="muted small">
        The current file of each side of each dataset and business date. A rejected file does not replace the last
        accepted one in a run: fix it and upload again.
      </p>
      <FileFilters filters={filters} />
      <ErrorMessage error={error} />
      {!page && !error && <Loading what="files" skipped={skipped} />}
      {page && (
        <>
          <p class="muted" role="status" aria-live="polite">
            {page.count === 0
              ? 'No files match these filters.'
              : `Showing ${page.count} file${page.count === 1 ? '' : 's'}, newest first (page ${pageNumber}).`}
          </p>
          {page.count > 0 && (
            <div class="table-wrap">
              <table class="files">
                <caption class="sr-only">Files, newest ingest first</caption>
                <thead>
                  <tr>
                    <th scope="col">Dataset / date</th>
                    <th scope="col">Side</th>
                    <th scope="col">Status</th>
                    <th scope="col">Rows</th>
                    <th scope="col">Reason</th>
                    <th scope="col" class="wide">
                      Uploaded
                    </th>
                    <th scope="col" class="wide">
                      Ingested
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {page.items.map((f) => (
                    <tr key={`${f.dataset}/${f.business_date}/${f.side}`} data-testid="file-row">
                      <th scope="row" class="nowrap">
                        <a
                          href={`#/exceptions?dataset=${encodeURIComponent(f.dataset)}&business_date=${f.business_date}`}
                        >
                          {f.dataset} / {f.business_date}
                        </a>
                      </th>
                      <td>{f.side}</td>
                      <td>
                        <Badge kind="status" value={f.status} />
                      </td>
                      <td>{f.status === 'ACCEPTED' ? f.rows.toLocaleString('en') : '—'}</td>
                      <td class="summary">
                        <Reason file={f} />
                      </td>
                      <td class="nowrap wide">{when(f.uploaded_at ?? undefined)}</td>
                      <td class="nowrap wide">{when(f.ingested_at)}</td>
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
