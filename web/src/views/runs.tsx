/** Recent reconciliation runs with their summaries. */
import { useEffect, useState } from 'preact/hooks';
import { api, fileErrorText, SIDES, type Page, type Run } from '../api.ts';
import { tookText } from '../run-timing.ts';
import { Badge, ErrorMessage, Loading, when } from './common.tsx';

/**
 * Says when the run shown is behind the latest upload of a side: a rejected upload (the run still
 * reconciles the previous file), or a newer accepted one (a newer run has it, or waits for the other side).
 */
export function StaleUploads({ run }: { run: Run }) {
  const behind = SIDES.flatMap((side) => {
    const upload = run.latest_uploads?.[side];
    return upload && !upload.in_run ? [{ side, upload }] : [];
  });
  if (behind.length === 0) return null;
  const filesLink = `#/files?dataset=${encodeURIComponent(run.dataset)}&business_date=${run.business_date}`;
  return (
    <div class="warning" role="note" data-testid="stale-upload">
      {behind.map(({ side, upload }) =>
        upload.status === 'REJECTED' ? (
          <p key={side}>
            <strong>The latest {side} upload was rejected</strong> (uploaded{' '}
            {when(upload.uploaded_at ?? upload.ingested_at)}
            ): {fileErrorText(upload.error)}. This run reconciles the previous {side} file.
          </p>
        ) : (
          <p key={side}>
            <strong>A newer {side} file was accepted</strong> ({when(upload.ingested_at)}, {upload.rows} rows); this run
            reconciles an earlier one.
          </p>
        ),
      )}
      <p class="small">
        <a href={filesLink}>
          Files for {run.dataset} / {run.business_date}
        </a>
      </p>
    </div>
  );
}

export function RunSummary({ run }: { run: Run }) {
  const s = run.summary;
  if (!s)
    return run.error ? (
      <p class="error">
        {run.error.code}: {run.error.message}
      </p>
    ) : (
      <span class="muted">no summary yet</span>
    );
  const exceptions = Object.entries(s.exceptions);
  return (
    <dl class="run-summary">
      <div>
        <dt>Rows</dt>
        <dd>
          source {s.rows.source}, target {s.rows.target}
        </dd>
      </div>
      <div>
        <dt>Matched</dt>
        <dd>{s.matched}</dd>
      </div>
      <div>
        <dt>Exceptions</dt>
        <dd>
          {exceptions.length === 0 ? 'none' : exceptions.map(([t, n]) => `${t.replaceAll('_', ' ')} ${n}`).join(', ')}
        </dd>
      </div>
      <div>
        <dt>Rejected rows</dt>
        <dd>
          source {s.rejected.source}, target {s.rejected.target}
        </dd>
      </div>
      <div>
        <dt>Stored</dt>
        <dd>
          {s.new} new, {s.changed} changed, {s.unchanged} unchanged, {s.resolved} resolved
        </dd>
      </div>
      <div>
        <dt>Took</dt>
        <dd>{tookText(run) ?? `${s.duration_ms} ms`}</dd>
      </div>
    </dl>
  );
}

export function RunsView({ query }: { query: URLSearchParams }) {
  const highlight = query.get('run');
  const [runs, setRuns] = useState<Run[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api<Page<Run>>('/runs', { query: { limit: '20' } })
      .then((p) => setRuns(p.items))
      .catch(setError);
  }, []);
  return (
    <section aria-labelledby="runs-title">
      <h1 id="runs-title">Runs</h1>
      <ErrorMessage error={error} />
      {!runs && !error && <Loading what="runs" />}
      {runs && runs.length === 0 && <p class="muted">No runs yet: upload a source and a target file.</p>}
      {runs && runs.length > 0 && (
        <ol class="runs">
          {runs.map((r) => (
            <li key={r.run_id} class={r.run_id === highlight ? 'highlight' : undefined} data-testid="run">
              <div class="run-head">
                <strong>
                  {r.dataset} / {r.business_date}
                </strong>{' '}
                <Badge kind="status" value={r.status} />
                <span class="muted small">
                  requested {when(r.requested_at)}
                  {r.completed_at ? `, finished ${when(r.completed_at)}` : ''}
                </span>
              </div>
              <p class="small">
                <code>{r.run_id}</code> ·{' '}
                <a href={`#/exceptions?run_id=${encodeURIComponent(r.run_id)}`}>its exceptions</a>
              </p>
              <StaleUploads run={r} />
              <RunSummary run={r} />
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
