/** Recent reconciliation runs with their summaries. */
import { useEffect, useState } from 'preact/hooks';
import { api, fetchReport, fileErrorText, reportUrl, SIDES, storedText, type Page, type Run } from '../api.ts';
import { tookText } from '../run-timing.ts';
import { storingText } from '../run-progress.ts';
import { Badge, ErrorMessage, Loading, when } from './common.tsx';
import { PatternsPanel } from './patterns.tsx';
import { RunTriage } from './run-triage.tsx';
import { RunCost, UsagePanel } from './usage.tsx';

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

/**
 * Links to the run's report (HTML, Markdown). Opened through an authorised fetch: on AWS the API
 * wants a bearer token, which a plain link does not send. The href stays for a copy of the address.
 */
export function ReportLinks({ run }: { run: Run }) {
  const [error, setError] = useState<unknown>(null);
  if (!run.summary) return null;
  const open = (format: 'html' | 'md') => (event: MouseEvent) => {
    event.preventDefault();
    // Opened now, while the click still allows a new tab; filled in when the report arrives.
    const tab = window.open('', '_blank');
    fetchReport(run.run_id, format)
      .then((blob) => {
        const url = URL.createObjectURL(blob);
        if (tab) tab.location.href = url;
        else window.location.href = url;
      })
      .catch((e: unknown) => {
        tab?.close();
        setError(e);
      });
  };
  return (
    <span data-testid="report-links">
      <a href={reportUrl(run.run_id, 'html')} onClick={open('html')}>
        Report
      </a>{' '}
      (
      <a href={reportUrl(run.run_id, 'md')} onClick={open('md')}>
        Markdown
      </a>
      )
      <ErrorMessage error={error} />
    </span>
  );
}

/** PASS, WARN or FAIL under the dataset's thresholds, and which conditions it crossed. */
function Outcome({ summary }: { summary: NonNullable<Run['summary']> }) {
  if (!summary.outcome) return null;
  const crossed = summary.thresholds_crossed ?? [];
  return (
    <div>
      <dt>Outcome</dt>
      <dd data-testid="run-outcome">
        <span class={`badge outcome-${summary.outcome.toLowerCase()}`}>{summary.outcome}</span>
        {crossed.length > 0 && (
          <ul class="small thresholds-crossed">
            {crossed.map((c) => (
              <li key={`${c.level} ${c.condition}`}>
                {c.level} {c.condition.replaceAll('_', ' ')}: {c.actual} (limit {c.limit})
              </li>
            ))}
          </ul>
        )}
      </dd>
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
      <span class="muted" data-testid="run-progress">
        {storingText(run) ?? 'no summary yet'}
      </span>
    );
  const exceptions = Object.entries(s.exceptions);
  return (
    <dl class="run-summary">
      <Outcome summary={s} />
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
          {storedText(s)}
          {(s.cut_for_storage ?? 0) > 0 && (
            <span class="warning" data-testid="run-cut">
              {' '}
              ({s.cut_for_storage} cut to fit one DynamoDB item: each says what in its row)
            </span>
          )}
        </dd>
      </div>
      <div>
        <dt>Took</dt>
        <dd>{tookText(run) ?? `${s.duration_ms} ms`}</dd>
      </div>
      {s.match_rate !== undefined && (
        <div>
          <dt>Match rate</dt>
          <dd>
            {s.match_rate} (break rate {s.break_rate})
          </dd>
        </div>
      )}
      <FieldStatistics summary={s} />
      <ControlTotals summary={s} />
    </dl>
  );
}

/** Per compared field: unequal values, those within tolerance (kept for audit), the largest difference. */
function FieldStatistics({ summary }: { summary: NonNullable<Run['summary']> }) {
  const fields = Object.entries(summary.fields ?? {});
  if (fields.length === 0) return null;
  return (
    <div class="full-row">
      <dt>Compared fields</dt>
      <dd>
        <table class="small" data-testid="run-fields">
          <caption class="sr-only">Compared fields</caption>
          <thead>
            <tr>
              <th scope="col">field</th>
              <th scope="col">unequal</th>
              <th scope="col">within tolerance</th>
              <th scope="col">largest difference</th>
            </tr>
          </thead>
          <tbody>
            {fields.map(([name, f]) => (
              <tr key={name}>
                <th scope="row">{name}</th>
                <td>{f.unequal}</td>
                <td>{f.within_tolerance}</td>
                <td>{f.largest_difference ?? '-'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </dd>
    </div>
  );
}

/** Per group of the policy's control totals: rows and sums per side, and the differences. */
function ControlTotals({ summary }: { summary: NonNullable<Run['summary']> }) {
  const groups = summary.control_totals ?? [];
  if (groups.length === 0) return null;
  const sums = [...new Set(groups.flatMap((g) => Object.keys(g.source.sums)))];
  return (
    <div class="full-row">
      <dt>Control totals</dt>
      <dd>
        <table class="small" data-testid="run-control-totals">
          <caption class="sr-only">Control totals</caption>
          <thead>
            <tr>
              <th scope="col">group</th>
              <th scope="col">rows (source / target)</th>
              {sums.map((name) => (
                <th scope="col" key={name}>
                  {name} (source / target / difference)
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {groups.map((g) => {
              const label = Object.entries(g.group)
                .map(([k, v]) => `${k}=${v}`)
                .join(', ');
              return (
                <tr key={label}>
                  <th scope="row">{label}</th>
                  <td>
                    {g.source.rows} / {g.target.rows}
                  </td>
                  {sums.map((name) => (
                    <td key={name}>
                      {g.source.sums[name] ?? '-'} / {g.target.sums[name] ?? '-'} / {g.difference.sums[name] ?? '-'}
                    </td>
                  ))}
                </tr>
              );
            })}
          </tbody>
        </table>
      </dd>
    </div>
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
      <UsagePanel />
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
                {r.summary && ' · '}
                <ReportLinks run={r} />
              </p>
              <StaleUploads run={r} />
              <RunTriage
                run={r}
                onChange={(next) => setRuns((all) => all?.map((x) => (x.run_id === next.run_id ? next : x)) ?? null)}
              />
              <RunSummary run={r} />
              <PatternsPanel run={r} />
              <RunCost run={r} />
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
