/**
 * The workflow's panels beyond one status change (issue 14): an approver's decision on a change
 * waiting for a second person, a manual match and the suggested matches on the exception page,
 * and the bulk bar that applies one change to the rows selected in the exceptions table (or asks
 * for their triage again).
 */
import { useEffect, useState } from 'preact/hooks';
import {
  api,
  ApiError,
  keyText,
  MATCH_REASON_CODES,
  STATUSES,
  type ApprovalResponse,
  type BulkResponse,
  type ExceptionItem,
  type RetriageAccepted,
  type SuggestionsResponse,
} from '../api.ts';
import { ErrorMessage } from './common.tsx';
import { useIsMaker } from './who.tsx';

/** A 403 SAME_PERSON says so plainly; anything else goes to ErrorMessage. */
function refusal(err: unknown): string | null {
  if (err instanceof ApiError && err.code === 'SAME_PERSON')
    return 'You asked for this change, so someone else must approve it. Rejecting it withdraws your request.';
  return null;
}

/** Approve or reject the change waiting on this exception (maker-checker). */
export function ApprovalPanel({ e, onDecided }: { e: ExceptionItem; onDecided: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const a = e.approval;
  // The maker cannot approve their own request (SAME_PERSON) but may withdraw it (a rejection).
  const mine = useIsMaker(a?.requested_by);
  if (!a || e.status !== 'AWAITING_APPROVAL') return null;
  const decide = async (decision: 'approve' | 'reject') => {
    setBusy(true);
    setError(null);
    try {
      await api<ApprovalResponse>(`/exceptions/${e.exception_id}/approval`, {
        method: 'POST',
        body: { version: e.version, decision },
      });
      onDecided();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const samePerson = refusal(error);
  return (
    <section class="workflow approval" aria-labelledby="approval-title" data-testid="approval">
      <h2 id="approval-title">Waiting for approval</h2>
      <p>
        <strong>{a.requested_by}</strong> asked to move it from {a.previous_status.replaceAll('_', ' ')} to{' '}
        <strong>{a.requested_status.replaceAll('_', ' ')}</strong>
        {a.match ? (
          <>
            {' '}
            as a match with <a href={`#/exceptions/${a.match.exception_id}`}>{a.match.exception_id}</a> (
            {a.match.reason_code.replaceAll('_', ' ').toLowerCase()})
          </>
        ) : null}
        {a.note ? <q>{a.note}</q> : null}.{' '}
        {mine
          ? 'You asked for it: someone else approves it, and you can withdraw it.'
          : 'An approver who is not the maker decides.'}
      </p>
      {samePerson ? (
        <p class="conflict" role="alert">
          {samePerson}
        </p>
      ) : (
        <ErrorMessage error={error} />
      )}
      <div class="actions" role="group" aria-label="Decide">
        <button
          type="button"
          disabled={busy || mine}
          title={mine ? 'someone else must approve your request' : undefined}
          onClick={() => decide('approve')}
        >
          Approve
        </button>
        <button type="button" class="secondary" disabled={busy} onClick={() => decide('reject')}>
          {mine ? 'Withdraw request' : 'Reject'}
        </button>
      </div>
    </section>
  );
}

/** The exception this one was matched with, once an approver accepted the match. */
export function MatchLinkFact({ e }: { e: ExceptionItem }) {
  if (!e.match) return null;
  return (
    <div>
      <dt>Matched with</dt>
      <dd data-testid="match-link">
        <a href={`#/exceptions/${e.match.exception_id}`}>{e.match.exception_id}</a> (
        {e.match.reason_code.replaceAll('_', ' ').toLowerCase()}; asked by {e.match.by}, approved by{' '}
        {e.match.approved_by})
      </dd>
    </div>
  );
}

/** Suggested opposite-side matches: Accept asks for a manual match (it waits for approval); Decline is remembered. */
export function SuggestionsPanel({ e, onChanged }: { e: ExceptionItem; onChanged: () => void }) {
  const [data, setData] = useState<SuggestionsResponse | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [reason, setReason] = useState<string>(MATCH_REASON_CODES[0]);
  const [busy, setBusy] = useState(false);
  const [reload, setReload] = useState(0);
  useEffect(() => {
    let live = true;
    setError(null);
    api<SuggestionsResponse>(`/exceptions/${e.exception_id}/suggestions`)
      .then((d) => live && setData(d))
      .catch((err: unknown) => live && setError(err));
    return () => {
      live = false;
    };
  }, [e.exception_id, e.version, reload]);

  const act = async (run: () => Promise<unknown>, after: () => void) => {
    setBusy(true);
    setError(null);
    try {
      await run();
      after();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const open = e.status !== 'AWAITING_APPROVAL' && e.status !== 'RESOLVED' && e.status !== 'FALSE_POSITIVE';
  return (
    <section class="workflow suggestions" aria-labelledby="suggestions-title" data-testid="suggestions">
      <h2 id="suggestions-title">Suggested matches</h2>
      <ErrorMessage error={error} />
      {data && data.items.length === 0 && (
        <p class="muted">No likely match among the {data.candidates} open opposite-side exception(s).</p>
      )}
      {data && data.items.length > 0 && (
        <>
          <div class="field">
            <label for="match-reason">Reason for a match</label>
            <select
              id="match-reason"
              value={reason}
              onChange={(ev) => setReason((ev.currentTarget as HTMLSelectElement).value)}
            >
              {MATCH_REASON_CODES.map((c) => (
                <option key={c} value={c}>
                  {c.replaceAll('_', ' ').toLowerCase()}
                </option>
              ))}
            </select>
          </div>
          <ul class="suggestion-list">
            {data.items.map((m) => (
              <li key={m.exception_id} data-testid="suggestion">
                <a href={`#/exceptions/${m.exception_id}`}>{keyText(m.exception.key)}</a> ({m.exception.business_date},
                score <strong>{m.score}</strong>)
                <ul class="small">
                  {m.reasons.map((r) => (
                    <li key={r.kind}>
                      {r.text} (+{r.points})
                    </li>
                  ))}
                </ul>
                <div class="actions" role="group" aria-label={`Match ${keyText(m.exception.key)}`}>
                  <button
                    type="button"
                    disabled={busy || !open}
                    onClick={() =>
                      act(
                        () =>
                          api(`/exceptions/${e.exception_id}/match`, {
                            method: 'POST',
                            body: {
                              other_id: m.exception_id,
                              reason_code: reason,
                              version: e.version,
                              other_version: m.exception.version,
                            },
                          }),
                        onChanged,
                      )
                    }
                  >
                    Accept match
                  </button>
                  <button
                    type="button"
                    class="secondary"
                    disabled={busy}
                    onClick={() =>
                      act(
                        () =>
                          api(`/exceptions/${e.exception_id}/suggestions/${m.exception_id}/decline`, {
                            method: 'POST',
                          }),
                        () => setReload(reload + 1),
                      )
                    }
                  >
                    Decline
                  </button>
                </div>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

/** One change to the rows selected in the exceptions table, each row's outcome shown beside it. */
/** A row's outcome after a bulk action: a bulk change's, or a triage asked again. */
export interface RowOutcome {
  readonly outcome: string;
  readonly error?: string;
}

export function BulkBar({
  selected,
  versions,
  onDone,
  onRetriaged,
}: {
  selected: readonly string[];
  versions: Readonly<Record<string, number>>;
  onDone: (response: BulkResponse) => void;
  /** Each selected row's request to be triaged again, by id. */
  onRetriaged: (outcomes: Record<string, RowOutcome>) => void;
}) {
  const [status, setStatus] = useState('');
  const [assignee, setAssignee] = useState('');
  const [team, setTeam] = useState('');
  const [note, setNote] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const change = {
    ...(status ? { status } : {}),
    ...(assignee.trim() ? { assignee: assignee.trim() } : {}),
    ...(team.trim() ? { team: team.trim() } : {}),
    ...(note.trim() ? { note: note.trim() } : {}),
  };
  const apply = async () => {
    setBusy(true);
    setError(null);
    try {
      const ids = [...selected];
      const response = await api<BulkResponse>('/exceptions/bulk', {
        method: 'POST',
        body: { ids, change, versions: Object.fromEntries(ids.map((id) => [id, versions[id] as number])) },
      });
      onDone(response);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  // One request a row (each is a model call, within the daily budget); refusals shown on their row.
  const retriage = async () => {
    setBusy(true);
    setError(null);
    const outcomes: Record<string, RowOutcome> = {};
    for (const id of selected) {
      try {
        await api<RetriageAccepted>(`/exceptions/${encodeURIComponent(id)}/triage`, { method: 'POST' });
        outcomes[id] = { outcome: 'triage asked' };
      } catch (err) {
        outcomes[id] = { outcome: 'refused', error: err instanceof Error ? err.message : String(err) };
      }
    }
    setBusy(false);
    onRetriaged(outcomes);
  };
  return (
    <form
      class="filters bulk"
      aria-label="Change the selected exceptions"
      onSubmit={(ev) => {
        ev.preventDefault();
        void apply();
      }}
    >
      <p class="small" role="status">
        {selected.length} selected
      </p>
      <div class="field">
        <label for="bulk-status">Move to</label>
        <select
          id="bulk-status"
          value={status}
          onChange={(ev) => setStatus((ev.currentTarget as HTMLSelectElement).value)}
        >
          <option value="">(keep status)</option>
          {STATUSES.filter((s) => s !== 'PENDING' && s !== 'AWAITING_APPROVAL').map((s) => (
            <option key={s} value={s}>
              {s.replaceAll('_', ' ')}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for="bulk-assignee">Assign to</label>
        <input
          id="bulk-assignee"
          type="text"
          value={assignee}
          onInput={(ev) => setAssignee((ev.currentTarget as HTMLInputElement).value)}
        />
      </div>
      <div class="field">
        <label for="bulk-team">Team</label>
        <input
          id="bulk-team"
          type="text"
          value={team}
          onInput={(ev) => setTeam((ev.currentTarget as HTMLInputElement).value)}
        />
      </div>
      <div class="field">
        <label for="bulk-note">Note</label>
        <input
          id="bulk-note"
          type="text"
          value={note}
          onInput={(ev) => setNote((ev.currentTarget as HTMLInputElement).value)}
        />
      </div>
      <div class="filter-actions">
        <button type="submit" disabled={busy || selected.length === 0 || Object.keys(change).length === 0}>
          Apply to selected
        </button>
        <button
          type="button"
          class="secondary"
          disabled={busy || selected.length === 0}
          title="one model call each, within the daily budget"
          onClick={() => void retriage()}
        >
          Triage selected again
        </button>
      </div>
      <ErrorMessage error={error} />
    </form>
  );
}
