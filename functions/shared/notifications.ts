/**
 * Business notifications: what an operations team is told — a run held by the runaway guard, a
 * new CRITICAL exception, an exception past its due date, an exception assigned to someone — on a
 * topic of their own, never the on-call topic the DLQ alarms page. A port, so no core imports the
 * SNS SDK; the adapter is functions/shared/adapters/sns-notifier.ts. The webhook consumer
 * (functions/notify/) delivers each event to the configured chat webhooks.
 *
 * Every event has a `kind` and a one-line `text` a person can read as it is.
 */

/** A run the runaway guard held: stored, not triaged, waiting for an analyst to release or abandon it. */
export interface RunHeldEvent {
  readonly type: 'RUN_TRIAGE_HELD';
  readonly kind: 'run_held';
  readonly run_id: string;
  readonly dataset: string;
  readonly business_date: string;
  readonly reason: string;
  /** Exceptions the run found, and those that would be triaged. */
  readonly exceptions: number;
  readonly needing_triage: number;
  readonly at: string;
  /** What to do next, for a person reading the message. */
  readonly action: string;
  readonly text: string;
}

/** Something happened to one exception that its owners must hear of. */
export interface ExceptionEvent extends NotifiedException {
  /** critical: triage rated it CRITICAL; overdue: past its due date (once); assigned: given to someone. */
  readonly kind: 'critical' | 'overdue' | 'assigned';
  readonly assignee?: string;
  /** Who made the change (assigned). */
  readonly by?: string;
  readonly text: string;
  readonly at: string;
}

export type BusinessEvent = RunHeldEvent | ExceptionEvent;
export type BusinessEventKind = BusinessEvent['kind'];

export interface BusinessNotifier {
  publish(event: BusinessEvent): Promise<void>;
}

/** The subject line a person's mail client shows (SNS caps subjects at 100 characters). */
export function subjectOf(event: BusinessEvent): string {
  if (event.kind === 'run_held')
    return `Tally: run ${event.run_id} held before triage (${event.dataset} ${event.business_date})`.slice(0, 100);
  return `Tally: ${event.text}`.slice(0, 100);
}

/** What the exception events say about one exception. */
export interface NotifiedException {
  readonly exception_id: string;
  readonly dataset: string;
  readonly business_date?: string;
  readonly run_id?: string;
  readonly exception_type?: string;
  readonly severity?: string;
  readonly due_at?: string;
}

function about(e: NotifiedException): string {
  const what = [e.severity, e.exception_type].filter(Boolean).join(' ');
  return `${what ? `${what} ` : ''}exception ${e.exception_id} (${e.dataset}${e.business_date ? ` ${e.business_date}` : ''})`;
}

function fieldsOf(e: NotifiedException) {
  return {
    exception_id: e.exception_id,
    dataset: e.dataset,
    ...(e.business_date === undefined ? {} : { business_date: e.business_date }),
    ...(e.run_id === undefined ? {} : { run_id: e.run_id }),
    ...(e.exception_type === undefined ? {} : { exception_type: e.exception_type }),
    ...(e.severity === undefined ? {} : { severity: e.severity }),
    ...(e.due_at === undefined ? {} : { due_at: e.due_at }),
  };
}

export function criticalEvent(e: NotifiedException, at: string): ExceptionEvent {
  return {
    kind: 'critical',
    ...fieldsOf(e),
    severity: 'CRITICAL',
    text: `New CRITICAL ${about({ ...e, severity: undefined })}`,
    at,
  };
}

export function overdueEvent(e: NotifiedException, at: string): ExceptionEvent {
  return { kind: 'overdue', ...fieldsOf(e), text: `Overdue: ${about(e)} was due ${e.due_at ?? 'earlier'}`, at };
}

export function assignedEvent(e: NotifiedException, assignee: string, by: string, at: string): ExceptionEvent {
  return { kind: 'assigned', ...fieldsOf(e), assignee, by, text: `${about(e)} assigned to ${assignee} by ${by}`, at };
}

/**
 * Announces that an exception was assigned (PATCH /exceptions/{id} with an assignee, and bulk
 * assignment): the one call the query API makes. Unassigning announces nothing.
 */
export async function notifyAssigned(
  notifier: BusinessNotifier,
  exception: NotifiedException,
  assignee: string | null | undefined,
  by: string,
  now: number = Date.now(),
): Promise<void> {
  if (assignee === null || assignee === undefined || assignee === '') return;
  await notifier.publish(assignedEvent(exception, assignee, by, new Date(now).toISOString()));
}
