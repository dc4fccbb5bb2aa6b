/**
 * A run's triage in the run view: a banner on a run the runaway guard held (why, and Release /
 * Abandon buttons that call POST /runs/{id}/triage), otherwise its state and the triage calls its
 * dispatch planned (patterns + singletons: each a model call when a model answers; the rules cost
 * nothing).
 */
import { useState } from 'preact/hooks';
import { api, triagesPlanned, type Run } from '../api.ts';
import { ErrorMessage, plural, when } from './common.tsx';

export function RunTriage({ run, onChange }: { run: Run; onChange: (run: Run) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const triage = run.triage;
  if (!triage) return null;
  const act = (action: 'release' | 'abandon') => {
    setBusy(true);
    setError(null);
    api<Run>(`/runs/${encodeURIComponent(run.run_id)}/triage`, { method: 'POST', body: { action } })
      .then(onChange)
      .catch(setError)
      .finally(() => setBusy(false));
  };
  if (triage.state === 'HELD')
    return (
      <div class="warning" role="alert" data-testid="run-held">
        <p>
          <strong>Triage held</strong>: {triage.reason ?? 'the runaway guard held this run'}. Its exceptions are stored;
          none is triaged until it is released.
        </p>
        <p>
          <button type="button" disabled={busy} onClick={() => act('release')}>
            Release
          </button>{' '}
          <button type="button" class="secondary" disabled={busy} onClick={() => act('abandon')}>
            Abandon
          </button>
        </p>
        <ErrorMessage error={error} />
      </div>
    );
  const plan = run.triage_plan;
  return (
    <p class="small muted" data-testid="run-triage">
      Triage {triage.state.toLowerCase()}
      {triage.by ? ` by ${triage.by}` : ''} {when(triage.at)}
      {plan
        ? ` · ${plural(triagesPlanned(plan), 'triage call')} (${plural(plan.patterns, 'pattern')} + ${plural(plan.singletons, 'singleton')}; ${plural(plan.members, 'exception')} inherit their pattern's)`
        : ''}
    </p>
  );
}
