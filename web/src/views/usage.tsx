/** What triage's model calls cost: a run's cost, and the per-day usage panel with the daily budget. */
import { useEffect, useState } from 'preact/hooks';
import { api, formatUsd, type Run, type UsageReport } from '../api.ts';
import { ErrorMessage, Loading } from './common.tsx';

/** A run's triage cost so far: dollars, model calls, tokens (a completed run without any: none spent). */
export function RunCost({ run }: { run: Run }) {
  if (!run.cost && run.status !== 'COMPLETED') return null;
  const c = run.cost ?? { micro_usd: 0, calls: 0, input_tokens: 0, output_tokens: 0 };
  return (
    <p class="small" data-testid="run-cost">
      Triage cost <strong>{formatUsd(c.micro_usd)}</strong>: {c.calls} model call{c.calls === 1 ? '' : 's'},{' '}
      {c.input_tokens} input and {c.output_tokens} output tokens
    </p>
  );
}

const DAYS = 14;
const CHART = { width: 560, height: 120, pad: 4 };

/** Per UTC day, today on the right: a bar per day and a line at the daily budget, with the figures in a table. */
export function UsagePanel() {
  const [report, setReport] = useState<UsageReport | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api<UsageReport>('/usage', { query: { days: String(DAYS) } })
      .then(setReport)
      .catch(setError);
  }, []);
  if (error) return <ErrorMessage error={error} />;
  if (!report) return <Loading what="triage usage" />;
  const days = [...report.days].reverse(); // oldest first, left to right
  const budget = report.budget_micro_usd;
  const top = Math.max(1, budget ?? 0, ...days.map((d) => d.micro_usd)) * 1.1;
  const y = (micro: number) => CHART.height - CHART.pad - (micro / top) * (CHART.height - 2 * CHART.pad);
  const slot = CHART.width / days.length;
  const today = report.days[0];
  return (
    <section class="usage-panel" aria-labelledby="usage-title" data-testid="usage-panel">
      <h2 id="usage-title">Triage usage</h2>
      <p class="small">
        Today {formatUsd(today?.micro_usd ?? 0)} in {today?.calls ?? 0} model call(s)
        {budget === null
          ? '; no daily budget is set.'
          : ` of a ${formatUsd(budget)} daily budget (${formatUsd(today?.remaining_micro_usd ?? budget)} left; past it triage answers with the rules).`}
      </p>
      {days.every((d) => d.calls === 0) ? (
        // An empty plot with only the budget line read as a broken chart (the local default triages
        // with the rules, which call no model).
        <p class="muted small" data-testid="usage-none">
          No model call in the last {days.length} days: every triage was answered by the rules, which cost nothing. The
          chart of cost per day{budget === null ? '' : ' against the budget'} appears with the first model call.
        </p>
      ) : (
        <svg
          viewBox={`0 0 ${CHART.width} ${CHART.height}`}
          role="img"
          aria-label={`Triage cost per day over the last ${days.length} days${budget === null ? '' : ', with the daily budget line'}`}
          class="usage-chart"
        >
          {days.map((d, i) => (
            <rect
              key={d.day}
              x={i * slot + slot * 0.15}
              width={slot * 0.7}
              y={y(d.micro_usd)}
              height={Math.max(0, CHART.height - CHART.pad - y(d.micro_usd))}
              class={budget !== null && d.micro_usd >= budget ? 'over' : undefined}
            >
              <title>
                {d.day}: {formatUsd(d.micro_usd)}, {d.calls} call(s)
              </title>
            </rect>
          ))}
          {budget !== null && (
            <line x1={0} x2={CHART.width} y1={y(budget)} y2={y(budget)} class="budget" data-testid="budget-line" />
          )}
        </svg>
      )}
      <details>
        <summary>Per day</summary>
        <table class="small">
          <caption class="sr-only">Triage cost per day</caption>
          <thead>
            <tr>
              <th scope="col">day</th>
              <th scope="col">cost</th>
              <th scope="col">calls</th>
              <th scope="col">input tokens</th>
              <th scope="col">output tokens</th>
              <th scope="col">budget left</th>
            </tr>
          </thead>
          <tbody>
            {report.days.map((d) => (
              <tr key={d.day} data-testid="usage-day">
                <th scope="row">{d.day}</th>
                <td>{formatUsd(d.micro_usd)}</td>
                <td>{d.calls}</td>
                <td>{d.input_tokens}</td>
                <td>{d.output_tokens}</td>
                <td>{d.remaining_micro_usd === null ? '-' : formatUsd(d.remaining_micro_usd)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </section>
  );
}
