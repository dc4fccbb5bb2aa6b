/**
 * A run's break patterns, in its place in the Runs view: how many calls its triage makes (patterns
 * plus singletons), and per saved pattern its size, the values most members share, its members by
 * status, the pattern's triage when there is one, a link to the members, and actions on the whole
 * pattern (each member moved on its own: the result says how many moved, conflicted or were skipped).
 */
import { useEffect, useState } from 'preact/hooks';
import { api, patternActions, type Pattern, type PatternActionResult, type PatternsListing, type Run } from '../api.ts';
import { Badge, ErrorMessage, Loading, plural } from './common.tsx';

/** `97.8%`. */
export function shareText(share: number): string {
  return `${Math.round(share * 1000) / 10}%`;
}

function membersLink(runId: string, patternId: string): string {
  return `#/exceptions?pattern_id=${encodeURIComponent(patternId)}&run_id=${encodeURIComponent(runId)}`;
}

export function PatternsPanel({ run }: { run: Run }) {
  const counts = run.patterns;
  const [open, setOpen] = useState(false);
  if (!counts) return null;
  return (
    <details
      class="patterns"
      data-testid="run-patterns"
      onToggle={(e) => setOpen((e.currentTarget as HTMLDetailsElement).open)}
    >
      <summary>{summaryText(counts)}</summary>
      {open && <PatternList runId={run.run_id} />}
    </details>
  );
}

/** `Break patterns: 1 pattern of 5000 exceptions, 50 singletons (51 triage calls)`. */
function summaryText(counts: NonNullable<Run['patterns']>): string {
  const patterns =
    counts.patterns === 0 ? 'none' : `${plural(counts.patterns, 'pattern')} of ${plural(counts.members, 'exception')}`;
  const calls = plural(counts.patterns + counts.singletons, 'triage call');
  return `Break patterns: ${patterns}, ${plural(counts.singletons, 'singleton')} (${calls})`;
}

function PatternList({ runId }: { runId: string }) {
  const [listing, setListing] = useState<PatternsListing | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [reloads, setReloads] = useState(0);
  useEffect(() => {
    let live = true;
    api<PatternsListing>(`/runs/${encodeURIComponent(runId)}/patterns`)
      .then((l) => live && setListing(l))
      .catch((e: unknown) => live && setError(e));
    return () => {
      live = false;
    };
  }, [runId, reloads]);
  if (error) return <ErrorMessage error={error} />;
  if (!listing) return <Loading what="patterns" />;
  if (listing.items.length === 0)
    return <p class="muted small">No pattern has enough members: every exception is triaged on its own.</p>;
  return (
    <ol class="pattern-list">
      {listing.items.map((p) => (
        <PatternItem key={p.pattern_id} runId={runId} pattern={p} onChanged={() => setReloads((n) => n + 1)} />
      ))}
    </ol>
  );
}

function PatternItem({ runId, pattern, onChanged }: { runId: string; pattern: Pattern; onChanged: () => void }) {
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<PatternActionResult | null>(null);
  const [error, setError] = useState<unknown>(null);
  const act = (action: string) => {
    setBusy(true);
    setError(null);
    api<PatternActionResult>(
      `/runs/${encodeURIComponent(runId)}/patterns/${encodeURIComponent(pattern.pattern_id)}/actions`,
      { method: 'POST', body: { action } },
    )
      .then((r) => {
        setResult(r);
        onChanged();
      })
      .catch(setError)
      .finally(() => setBusy(false));
  };
  const statuses = Object.entries(pattern.members_by_status).sort(([a], [b]) => (a < b ? -1 : 1));
  return (
    <li data-testid="pattern" class="pattern">
      <h3 class="pattern-title">
        {pattern.description} <span class="muted small">({pattern.size} members)</span>
      </h3>
      <p class="small">
        <code>{pattern.pattern_id}</code> ·{' '}
        <a href={membersLink(runId, pattern.pattern_id)}>its {pattern.size} members</a>
      </p>
      {pattern.segments.length > 0 && (
        <ul class="segments" aria-label="Values most members share">
          {pattern.segments.map((s) => (
            <li key={`${s.field}=${s.value}`}>
              <span class="bar-label">
                {s.field} = {s.value || '(empty)'}
              </span>
              <span class="bar-track" aria-hidden="true">
                <span class="bar" style={{ width: `${100 * s.share}%` }} />
              </span>
              <span class="bar-value">
                {shareText(s.share)} ({s.count})
              </span>
            </li>
          ))}
        </ul>
      )}
      <p class="small" data-testid="pattern-statuses">
        Members:{' '}
        {statuses.map(([status, n], i) => (
          <span key={status}>
            {i > 0 && ', '}
            <Badge kind="status" value={status} /> {n}
          </span>
        ))}
        {!pattern.members_complete && <span class="muted"> (counting stopped early)</span>}
      </p>
      {pattern.triage ? (
        <p class="small" data-testid="pattern-triage">
          Triage: <Badge kind="severity" value={pattern.triage.severity} /> {pattern.triage.summary}
        </p>
      ) : (
        <p class="small muted">Not triaged yet.</p>
      )}
      <div class="pattern-actions">
        {patternActions().map((a) => (
          <button
            key={a.action}
            type="button"
            class="secondary"
            disabled={busy}
            onClick={() => act(a.action)}
            aria-label={`${a.label}: every member of ${pattern.description}`}
          >
            {a.label} all
          </button>
        ))}
      </div>
      {result && (
        <p class="small" role="status" data-testid="pattern-action-result">
          {result.counts.APPLIED} moved, {result.counts.CONFLICT} version conflict
          {result.counts.CONFLICT === 1 ? '' : 's'} (changed since read: look at them again), {result.counts.SKIPPED}{' '}
          skipped (not allowed from their status){result.complete ? '' : '; time ran out: repeat for the rest'}.
        </p>
      )}
      <ErrorMessage error={error} />
    </li>
  );
}
