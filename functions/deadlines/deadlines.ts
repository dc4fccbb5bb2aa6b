/**
 * The deadline sweep (on AWS an EventBridge schedule, locally a timer in the local stack):
 * - promotes each PENDING late arrival whose window has ended to OPEN (history PROMOTED), with its
 *   due date from the policy's targets, and queues its triage — which dispatch skipped;
 * - announces each open exception past its due date on the business events topic, once;
 * - while a model's circuit breaker waits for its trial call, asks one degraded triage again
 *   (recovery-probe.ts).
 *
 * Safe to repeat: promotion is a versioned change of a PENDING exception (a second sweep, or an
 * analyst's move, finds it no longer PENDING and leaves it); an overdue notice is published, then
 * recorded (`overdue_notified_at`) — a crash in between announces it again at the next sweep (at
 * least once), never not at all.
 */
import { deadlineStart, dueAtFor } from '../shared/deadlines.ts';
import { INITIAL_STATUS, LATE_ARRIVAL_STATUS } from '../shared/exception-lifecycle.ts';
import type { TriageRequest } from '../shared/messages.ts';
import { overdueEvent, type BusinessNotifier } from '../shared/notifications.ts';
import type { WorkflowSettings } from '../shared/policy.ts';
import type { MessageQueue } from '../shared/ports.ts';
import type { DeadlineStore, StoredException } from '../shared/tables/exceptions.ts';
import { updateWithRetry } from '../store/exception-writes.ts';
import { probeRecovery, type RecoveryProbe, type RecoveryProbeDeps } from './recovery-probe.ts';

export const SWEEPER = 'system:deadlines';

export interface DeadlineDeps {
  readonly exceptions: DeadlineStore;
  /** Promoted exceptions' triage requests (functions/triage/). */
  readonly triageQueue: MessageQueue<TriageRequest>;
  readonly notifier: BusinessNotifier;
  /** Each dataset's workflow settings from its policy in force (the promoted ones' due dates). */
  readonly workflows: (dataset: string) => Promise<WorkflowSettings>;
  readonly now: () => number;
  /** The breakers waiting for a trial and the degraded triages (absent: no probe). */
  readonly recovery?: Omit<RecoveryProbeDeps, 'triageQueue' | 'now'>;
}

export interface DeadlineSweepResult {
  readonly promoted: string[];
  readonly overdue: string[];
  /** Made when a breaker waited for its trial. */
  readonly probe?: RecoveryProbe;
}

export async function sweepDeadlines(deps: DeadlineDeps): Promise<DeadlineSweepResult> {
  const now = new Date(deps.now()).toISOString();
  const promoted: string[] = [];
  for (const e of await deps.exceptions.listExpiredPending(now))
    if (await promote(e, now, deps)) promoted.push(e.exception_id);
  const overdue: string[] = [];
  for (const e of await deps.exceptions.listOverdueUnannounced(now)) {
    // Promoted a moment ago with a due date already past: announced at the next sweep, from its stored state.
    if (promoted.includes(e.exception_id)) continue;
    await deps.notifier.publish(overdueEvent(e, now));
    await updateWithRetry(deps.exceptions, e, (s) =>
      s.status === LATE_ARRIVAL_STATUS
        ? undefined
        : {
            exceptionId: s.exception_id,
            expectedVersion: s.version,
            // Bookkeeping, not a change an analyst's PATCH must be refused over.
            bumpVersion: false,
            history: [],
            set: { overdue_notified_at: now },
          },
    );
    overdue.push(e.exception_id);
  }
  const probe = deps.recovery
    ? await probeRecovery({ ...deps.recovery, triageQueue: deps.triageQueue, now: deps.now })
    : undefined;
  return { promoted, overdue, ...(probe ? { probe } : {}) };
}

async function promote(e: StoredException, now: string, deps: DeadlineDeps): Promise<boolean> {
  const workflow = await deps.workflows(e.dataset);
  const due = dueAtFor(deadlineStart(e), e.severity ?? e.policy_severity, workflow.resolutionTargets);
  const applied = await updateWithRetry(deps.exceptions, e, (s) =>
    s.status !== LATE_ARRIVAL_STATUS
      ? undefined
      : {
          exceptionId: s.exception_id,
          expectedVersion: s.version,
          bumpVersion: true,
          set: { status: INITIAL_STATUS, updated_at: now, ...(due === undefined ? {} : { due_at: due }) },
          history: [
            {
              at: now,
              by: SWEEPER,
              action: 'PROMOTED',
              from: LATE_ARRIVAL_STATUS,
              to: INITIAL_STATUS,
              note: `late-arrival window ended ${e.pending_until ?? ''}`.trim(),
            },
          ],
        },
  );
  if (applied)
    await deps.triageQueue.send([
      { kind: 'exception', exception_id: e.exception_id, run_id: e.run_id, content_hash: e.content_hash },
    ]);
  return applied;
}
