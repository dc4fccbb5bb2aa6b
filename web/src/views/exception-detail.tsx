/**
 * One exception: both rows side by side with the differing fields marked, the triage with each
 * citation's passage, the history, and the workflow (status, assignee, note) under the API's
 * optimistic concurrency: a 409 is shown as such, never retried silently.
 */
import { useEffect, useState } from 'preact/hooks';
import {
  api,
  ApiError,
  formatUsd,
  humanize,
  isMatchable,
  keyText,
  transitionsFrom,
  type ExceptionItem,
  type RetriageAccepted,
  type Row,
} from '../api.ts';
import { Badge, ErrorMessage, Loading, when } from './common.tsx';
import { answersRequest, RETRIAGE_WAIT_MS } from '../../../functions/shared/retriage.ts';
import { ApprovalPanel, MatchLinkFact, SuggestionsPanel } from './workflow-panels.tsx';
import { Due } from './exceptions.tsx';

/** What the store says a row lost to fit one item (functions/store/fit-for-storage.ts). */
const OMITTED = '_omitted';
const LINES_SHOWN = 20;

function fieldsOf(source: Row | null, target: Row | null): string[] {
  const seen = new Set<string>();
  for (const row of [source, target]) for (const k of Object.keys(row ?? {})) if (k !== OMITTED) seen.add(k);
  return [...seen];
}

/** A side's line numbers: the first twenty, and how many in all past that (a key on many rows). */
function linesText(lines: readonly number[]): string {
  if (lines.length === 0) return '—';
  const shown = lines.slice(0, LINES_SHOWN).join(', ');
  return lines.length > LINES_SHOWN ? `${shown}, … (${lines.length} stored)` : shown;
}

function Rows({ e }: { e: ExceptionItem }) {
  const diffs = new Map(e.diffs.map((d) => [d.field, d]));
  const fields = fieldsOf(e.source, e.target);
  const side = (row: Row | null, field: string, name: string) => {
    if (!row) return <td class="muted">not in {name}</td>;
    const value = row[field];
    return diffs.has(field) ? (
      <td class="differs">
        <mark>{value}</mark>
      </td>
    ) : (
      <td>{value}</td>
    );
  };
  return (
    <div class="table-wrap">
      <table class="rows" aria-describedby="rows-legend">
        <caption>
          Source and target rows
          {e.lines ? ` (lines: source ${linesText(e.lines.source)}; target ${linesText(e.lines.target)})` : ''}
        </caption>
        <thead>
          <tr>
            <th scope="col">Field</th>
            <th scope="col">Source</th>
            <th scope="col">Target</th>
            <th scope="col">Difference</th>
          </tr>
        </thead>
        <tbody>
          {fields.map((f) => {
            const d = diffs.get(f);
            return (
              <tr key={f} class={d ? 'diff-row' : undefined} data-testid={d ? 'diff-row' : undefined}>
                <th scope="row">
                  {f}
                  {d && <span class="sr-only"> (differs)</span>}
                </th>
                {side(e.source, f, 'source')}
                {side(e.target, f, 'target')}
                <td>{d ? <strong class="delta">{d.delta !== undefined ? `Δ ${d.delta}` : 'differs'}</strong> : ''}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <p id="rows-legend" class="muted small">
        Highlighted cells differ between source and target.{e.reason ? ` Reason: ${e.reason}` : ''}
      </p>
      {(['source', 'target'] as const).map((name) =>
        e[name]?.[OMITTED] ? (
          <p key={name} class="warning small" role="note" data-testid="row-omitted">
            {name === 'source' ? 'Source' : 'Target'} row: {e[name]?.[OMITTED]}.
          </p>
        ) : null,
      )}
    </div>
  );
}

/**
 * Where the severity comes from: the policy's rules, and the model's answer when a model
 * triaged it. The model may raise the policy's severity, never lower it.
 */
function SeveritySources({ e }: { e: ExceptionItem }) {
  const model = e.triage?.model_severity;
  return (
    <span class="muted small" data-testid="severity-sources">
      {' '}
      policy {e.policy_severity}
      {model !== undefined && `, model ${model}`}
      {model !== undefined && model !== (e.severity ?? e.policy_severity) && ' (the policy severity is the floor)'}
    </span>
  );
}

/** How often the page looks for a triage asked again. */
const RETRIAGE_POLL_MS = 2_000;

type RetriageState =
  | { readonly kind: 'idle' }
  | { readonly kind: 'waiting'; readonly since: string }
  | { readonly kind: 'late'; readonly since: string }
  | { readonly kind: 'failed'; readonly error: unknown };

/**
 * "Triage again" (POST /exceptions/{id}/triage): after a policy or runbook changed, or when the
 * triage cites nothing. The page then looks for a triage written after the request and shows it.
 */
function RetriageControl({ e, onTriaged }: { e: ExceptionItem; onTriaged: (next: ExceptionItem) => void }) {
  const [state, setState] = useState<RetriageState>({ kind: 'idle' });
  useEffect(() => {
    if (state.kind !== 'waiting') return;
    let live = true;
    const started = Date.now();
    let timer: ReturnType<typeof setTimeout>;
    const look = async () => {
      try {
        const next = await api<ExceptionItem>(`/exceptions/${encodeURIComponent(e.exception_id)}`);
        if (!live) return;
        if (answersRequest(next.triage?.triaged_at, state.since)) {
          setState({ kind: 'idle' });
          onTriaged(next);
        } else if (Date.now() - started >= RETRIAGE_WAIT_MS) setState({ kind: 'late', since: state.since });
        else timer = setTimeout(() => void look(), RETRIAGE_POLL_MS);
      } catch (error) {
        if (live) setState({ kind: 'failed', error });
      }
    };
    timer = setTimeout(() => void look(), RETRIAGE_POLL_MS);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [state, e.exception_id]);
  const ask = async () => {
    try {
      const asked = await api<RetriageAccepted>(`/exceptions/${encodeURIComponent(e.exception_id)}/triage`, {
        method: 'POST',
      });
      setState({ kind: 'waiting', since: asked.requested_at });
    } catch (error) {
      setState({ kind: 'failed', error });
    }
  };
  return (
    <div class="actions" data-testid="retriage">
      <button
        type="button"
        class="secondary"
        disabled={state.kind === 'waiting' || e.status === 'PENDING'}
        title={
          e.status === 'PENDING'
            ? 'inside its late-arrival window: triaged when the window has passed'
            : 'one model call, within the daily budget'
        }
        onClick={() => void ask()}
      >
        Triage again
      </button>
      {state.kind === 'waiting' && (
        <span role="status"> Asked at {when(state.since)}; waiting for the new triage…</span>
      )}
      {state.kind === 'late' && (
        <span role="status">
          {' '}
          No new triage within {RETRIAGE_WAIT_MS / 60_000} minutes of {when(state.since)}: the request stays queued; see
          the triage queue under <a href="#/operations">Operations</a>.
        </span>
      )}
      {state.kind === 'failed' && <ErrorMessage error={state.error} />}
    </div>
  );
}

function TriagePanel({ e }: { e: ExceptionItem }) {
  const t = e.triage;
  if (!t) return <p class="muted">Not triaged yet: triage runs shortly after each reconciliation.</p>;
  return (
    <div class="triage">
      <p>
        <Badge kind="severity" value={t.severity} /> <span class="summary-text">{t.summary}</span>
      </p>
      <p class="small">
        Triaged by <strong>{t.provider}</strong> ({t.model}) at {when(t.triaged_at)}
        {t.degraded && t.degraded_reason === 'budget' && (
          <span class="badge degraded" title="the day's model budget was spent; the deterministic rules answered">
            Rules: daily budget spent
          </span>
        )}
        {t.degraded && t.degraded_reason !== 'budget' && (
          <span class="badge degraded" title="the model providers failed; the deterministic rules answered">
            Degraded to rules
          </span>
        )}
        {t.route !== undefined && (
          <span data-testid="triage-route">
            {' '}
            · route <code>{t.route}</code>
          </span>
        )}
        {t.cost_micro_usd !== undefined && <span> · cost {formatUsd(t.cost_micro_usd)}</span>}
      </p>
      <div class="two-col">
        <div>
          <h3>Recommended actions</h3>
          <ol>
            {t.recommended_actions.map((a, i) => (
              <li key={i}>{a}</li>
            ))}
          </ol>
        </div>
        <div>
          <h3>Root-cause hypotheses</h3>
          <ul>
            {t.root_cause_hypotheses.map((a, i) => (
              <li key={i}>{a}</li>
            ))}
          </ul>
        </div>
      </div>
      <h3>Policy citations ({t.policy_citations.length})</h3>
      {t.policy_citations.length === 0 && (
        <p class="muted small" data-testid="no-citations">
          It cites no policy passage (triaged before the policies were indexed, or nothing relevant was found). An open
          exception is triaged again by itself once a policy document is indexed (after the documents pushed with it);{' '}
          <em>Triage again</em> below asks now.
        </p>
      )}
      <ul class="citations">
        {t.policy_citations.map((c) => (
          <li key={c.passage_id} data-testid="citation">
            <details>
              <summary>
                <span class="doc">{c.document}</span> › {c.section}
              </summary>
              <blockquote cite={c.passage_id}>{c.passage}</blockquote>
            </details>
          </li>
        ))}
      </ul>
      {t.precedent_citations && t.precedent_citations.length > 0 && (
        <>
          <h3>Precedents ({t.precedent_citations.length})</h3>
          <ul class="citations" data-testid="precedents">
            {t.precedent_citations.map((p) => (
              <li key={p.exception_id} data-testid="precedent">
                <a href={`#/exceptions/${encodeURIComponent(p.exception_id)}`}>{p.exception_id}</a> ({p.business_date},{' '}
                {p.status.toLowerCase().replace('_', ' ')}
                {p.resolved_by ? ` by ${p.resolved_by}` : ''}){p.note ? <blockquote>{p.note}</blockquote> : null}
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  );
}

function Workflow({ e, onChanged }: { e: ExceptionItem; onChanged: (next: ExceptionItem | null) => void }) {
  const [note, setNote] = useState('');
  const [assignee, setAssignee] = useState(e.assignee ?? '');
  const [team, setTeam] = useState(e.team ?? '');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [conflict, setConflict] = useState<string | null>(null);
  useEffect(() => setAssignee(e.assignee ?? ''), [e.assignee, e.version]);
  useEffect(() => setTeam(e.team ?? ''), [e.team, e.version]);

  const send = async (change: { status?: string; assignee?: string | null; team?: string | null; note?: string }) => {
    setBusy(true);
    setError(null);
    setConflict(null);
    try {
      const next = await api<ExceptionItem>(`/exceptions/${e.exception_id}`, {
        method: 'PATCH',
        body: { version: e.version, ...change },
      });
      setNote('');
      onChanged(next);
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) {
        setConflict(
          `Someone else changed this exception while you were looking at it (you had version ${e.version}, it is now at version ${String(err.details.current_version ?? '?')}). Nothing was saved. Reload it, check their change, then try again.`,
        );
      } else setError(err);
    } finally {
      setBusy(false);
    }
  };
  const noteValue = note.trim() || undefined;
  return (
    <section class="workflow" aria-labelledby="work-title">
      <h2 id="work-title">Work it</h2>
      {conflict && (
        <div class="conflict" role="alert">
          <p>
            <strong>Version conflict.</strong> {conflict}
          </p>
          <button
            type="button"
            onClick={() => {
              setConflict(null);
              onChanged(null);
            }}
          >
            Reload exception
          </button>
        </div>
      )}
      <ErrorMessage error={error} />
      <div class="field">
        <label for="note">Note (optional, recorded with the change)</label>
        <textarea
          id="note"
          rows={2}
          maxLength={2000}
          value={note}
          onInput={(ev) => setNote((ev.currentTarget as HTMLTextAreaElement).value)}
        />
      </div>
      <div class="actions" role="group" aria-label="Change status">
        {transitionsFrom(e.status).map((t) => (
          <button
            key={t.to}
            type="button"
            disabled={busy}
            onClick={() => send({ status: t.to, ...(noteValue ? { note: noteValue } : {}) })}
          >
            {t.label}
          </button>
        ))}
        <button type="button" class="secondary" disabled={busy || !noteValue} onClick={() => send({ note: noteValue })}>
          Add note
        </button>
      </div>
      <form
        class="assign"
        onSubmit={(ev) => {
          ev.preventDefault();
          void send({ assignee: assignee.trim() || null, ...(noteValue ? { note: noteValue } : {}) });
        }}
      >
        <div class="field">
          <label for="assignee">Assignee</label>
          <input
            id="assignee"
            type="text"
            maxLength={200}
            value={assignee}
            placeholder="e.g. ana@example.com"
            onInput={(ev) => setAssignee((ev.currentTarget as HTMLInputElement).value)}
          />
        </div>
        <button type="submit" class="secondary" disabled={busy || assignee.trim() === (e.assignee ?? '')}>
          {assignee.trim() || !e.assignee ? 'Assign' : 'Unassign'}
        </button>
      </form>
      <form
        class="assign"
        onSubmit={(ev) => {
          ev.preventDefault();
          void send({ team: team.trim() || null, ...(noteValue ? { note: noteValue } : {}) });
        }}
      >
        <div class="field">
          <label for="team">Team</label>
          <input
            id="team"
            type="text"
            maxLength={200}
            value={team}
            placeholder="e.g. payments-ops"
            onInput={(ev) => setTeam((ev.currentTarget as HTMLInputElement).value)}
          />
        </div>
        <button type="submit" class="secondary" disabled={busy || team.trim() === (e.team ?? '')}>
          {team.trim() || !e.team ? 'Set team' : 'Clear team'}
        </button>
      </form>
    </section>
  );
}

export function ExceptionDetailView({ id }: { id: string }) {
  const [e, setE] = useState<ExceptionItem | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [reload, setReload] = useState(0);
  const [saved, setSaved] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    setError(null);
    api<ExceptionItem>(`/exceptions/${encodeURIComponent(id)}`)
      .then((x) => live && setE(x))
      .catch((err: unknown) => live && setError(err));
    return () => {
      live = false;
    };
  }, [id, reload]);

  if (error)
    return (
      <section>
        <h1>Exception</h1>
        <ErrorMessage error={error} />
        <p>
          <a href="#/exceptions">Back to exceptions</a>
        </p>
      </section>
    );
  if (!e) return <Loading what="the exception" />;
  return (
    <article aria-labelledby="exception-title" class="detail">
      <p>
        <a href="#/exceptions">← Exceptions</a>
      </p>
      <h1 id="exception-title">
        {humanize(e.exception_type)} · {keyText(e.key)}
      </h1>
      <dl class="facts">
        <div>
          <dt>Status</dt>
          <dd data-testid="status">
            <Badge kind="status" value={e.status} />
          </dd>
        </div>
        <div>
          <dt>Severity</dt>
          <dd data-testid="severity">
            <Badge kind="severity" value={e.severity ?? e.policy_severity} />
            <SeveritySources e={e} />
          </dd>
        </div>
        <div>
          <dt>Dataset / date</dt>
          <dd>
            {e.dataset} / {e.business_date}
          </dd>
        </div>
        <div>
          <dt>Run</dt>
          <dd>
            <a href={`#/runs?run=${encodeURIComponent(e.run_id)}`}>{e.run_id}</a>
          </dd>
        </div>
        <div>
          <dt>Assignee</dt>
          <dd>{e.assignee ?? <span class="muted">nobody</span>}</dd>
        </div>
        <div>
          <dt>Team</dt>
          <dd data-testid="team">{e.team ?? <span class="muted">none</span>}</dd>
        </div>
        <div>
          <dt>Due</dt>
          <dd data-testid="due">
            <Due e={e} />
          </dd>
        </div>
        <MatchLinkFact e={e} />
        <div>
          <dt>Version</dt>
          <dd>{e.version}</dd>
        </div>
      </dl>
      {saved && (
        <p class="ok" role="status">
          {saved}
        </p>
      )}
      <section aria-labelledby="rows-title">
        <h2 id="rows-title">Rows</h2>
        <Rows e={e} />
      </section>
      <section aria-labelledby="triage-title">
        <h2 id="triage-title">Triage</h2>
        <TriagePanel e={e} />
        <RetriageControl
          // Another exception's page starts with no request of its own.
          key={e.exception_id}
          e={e}
          onTriaged={(next) => {
            setE(next);
            setSaved(`Triaged again by ${next.triage?.provider ?? '?'} at ${when(next.triage?.triaged_at)}.`);
          }}
        />
      </section>
      <ApprovalPanel
        e={e}
        onDecided={() => {
          setSaved(null);
          setReload(reload + 1);
        }}
      />
      {isMatchable(e.exception_type) && !e.match && (
        <SuggestionsPanel
          e={e}
          onChanged={() => {
            setSaved('Match asked: both exceptions wait for an approver who is not you.');
            setReload(reload + 1);
          }}
        />
      )}
      <Workflow
        e={e}
        onChanged={(next) => {
          if (next) {
            setE(next);
            setSaved(`Saved: status ${next.status}, version ${next.version}.`);
          } else {
            setSaved(null);
            setReload(reload + 1);
          }
        }}
      />
      <section aria-labelledby="history-title">
        <h2 id="history-title">History</h2>
        <ol class="history" data-testid="history">
          {e.history.map((h, i) => (
            <li key={i}>
              <span class="nowrap">{when(h.at)}</span> · <strong>{humanize(h.action)}</strong> by {h.by}
              {h.from || h.to ? ` (${h.from ?? '—'} → ${h.to ?? '—'})` : ''}
              {h.run_id ? ` in run ${h.run_id}` : ''}
              {h.note && <q>{h.note}</q>}
            </li>
          ))}
        </ol>
      </section>
    </article>
  );
}
