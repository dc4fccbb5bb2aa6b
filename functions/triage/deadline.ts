/**
 * What triage's severity means for the workflow: the exception's due date under its policy's
 * resolution targets (a raised severity shortens it), and — when triage first rates it CRITICAL —
 * the business notification. Kept apart from the triage call so the two change independently.
 *
 * The notice goes out before the triage is stored: a failure in between re-delivers the request,
 * which announces again (at least once); stored first, a failure would lose it for good, since the
 * re-delivery finds the exception already triaged.
 */
import { deadlineStart, dueAtFor } from '../shared/deadlines.ts';
import { LATE_ARRIVAL_STATUS } from '../shared/exception-lifecycle.ts';
import { criticalEvent, type BusinessNotifier } from '../shared/notifications.ts';
import type { ReconPolicy } from '../shared/policy.ts';
import type { ExceptionRecord, Severity } from '../shared/types.ts';

/** The attributes to store beside the triage: a due date when the severity gives a different one. */
export function deadlineAfterTriage(
  exception: ExceptionRecord,
  severity: Severity,
  policy: ReconPolicy | undefined,
): { due_at?: string } {
  // A policy's `workflow` is always parsed; a hand-built one (tests, tools) may lack it.
  const targets = (policy as Partial<ReconPolicy> | undefined)?.workflow?.resolutionTargets;
  if (targets === undefined || exception.status === LATE_ARRIVAL_STATUS) return {};
  const due = dueAtFor(deadlineStart(exception), severity, targets);
  return due === undefined || due === exception.due_at ? {} : { due_at: due };
}

/** Announces a CRITICAL rating the exception's previous triage did not have (none: nothing sent). */
export async function announceCritical(
  exception: ExceptionRecord,
  severity: Severity,
  deps: { readonly notifier?: BusinessNotifier; readonly now: () => number },
): Promise<void> {
  if (deps.notifier === undefined || severity !== 'CRITICAL' || exception.triage?.severity === 'CRITICAL') return;
  await deps.notifier.publish(criticalEvent(exception, new Date(deps.now()).toISOString()));
}
