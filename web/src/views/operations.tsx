/** On-call's view: depth of each queue and DLQ, age of the oldest message, the runbook. */
import { useEffect, useState } from 'preact/hooks';
import { api, type QueueDepth, type QueuesReport } from '../api.ts';
import { ErrorMessage, Loading } from './common.tsx';

const REFRESH_MS = 10_000;

function age(d: QueueDepth): string {
  if (d.oldest_age_seconds === null) return 'not measured here';
  const s = Math.round(d.oldest_age_seconds);
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
}

export function OperationsView() {
  const [report, setReport] = useState<QueuesReport | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [at, setAt] = useState<Date | null>(null);
  useEffect(() => {
    const load = () =>
      api<QueuesReport>('/queues')
        .then((r) => {
          setReport(r);
          setAt(new Date());
          setError(null);
        })
        .catch(setError);
    void load();
    const timer = setInterval(load, REFRESH_MS);
    return () => clearInterval(timer);
  }, []);
  const unhealthy = report?.queues.filter((q) => q.dlq.visible + q.dlq.in_flight + q.dlq.delayed > 0) ?? [];
  return (
    <section aria-labelledby="ops-title">
      <h1 id="ops-title">Operations</h1>
      <ErrorMessage error={error} />
      {!report && !error && <Loading what="queue depths" />}
      {report && (
        <>
          <p role="status" class={unhealthy.length > 0 ? 'error' : 'ok'}>
            {unhealthy.length > 0
              ? `${unhealthy.map((q) => q.queue).join(', ')}: dead-letter queue not empty. Follow the runbook.`
              : 'All dead-letter queues are empty.'}
          </p>
          <div class="table-wrap">
            <table class="queues">
              <caption>
                Queue depths{at ? ` at ${at.toLocaleTimeString()}` : ''} (refreshed every {REFRESH_MS / 1000} s)
              </caption>
              <thead>
                <tr>
                  <th scope="col">Queue</th>
                  <th scope="col">Waiting</th>
                  <th scope="col">In flight</th>
                  <th scope="col">Oldest message</th>
                  <th scope="col">DLQ depth</th>
                  <th scope="col">DLQ oldest</th>
                </tr>
              </thead>
              <tbody>
                {report.queues.map((q) => {
                  const dlq = q.dlq.visible + q.dlq.in_flight + q.dlq.delayed;
                  return (
                    <tr key={q.queue} data-testid="queue-row">
                      <th scope="row">{q.queue}</th>
                      <td>{q.main.visible + q.main.delayed}</td>
                      <td>{q.main.in_flight}</td>
                      <td>{age(q.main)}</td>
                      <td class={dlq > 0 ? 'alarm' : undefined}>
                        {dlq}
                        {dlq > 0 && <span class="sr-only"> (not empty)</span>}
                      </td>
                      <td>{age(q.dlq)}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          <p>
            Runbook: <a href={report.runbook}>DLQ depth and redrive</a> · inspect and redrive with{' '}
            <code>npx tally dlq list</code>.
            {report.queues.some((q) => q.main.oldest_age_seconds === null) && (
              <span class="muted small">
                {' '}
                The age of the oldest message comes from CloudWatch on AWS; local mode has no CloudWatch.
              </span>
            )}
          </p>
        </>
      )}
    </section>
  );
}
