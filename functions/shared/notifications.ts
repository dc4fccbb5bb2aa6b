/**
 * Business notifications: what an operations team is told (a run held by the runaway guard), on a
 * topic of their own — never the on-call topic the DLQ alarms page. A port, so the store core
 * never imports the SNS SDK; the adapter is functions/shared/adapters/sns-notifier.ts.
 */

/** A run the runaway guard held: stored, not triaged, waiting for an analyst to release or abandon it. */
export interface RunHeldEvent {
  readonly type: 'RUN_TRIAGE_HELD';
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
}

export type BusinessEvent = RunHeldEvent;

export interface BusinessNotifier {
  publish(event: BusinessEvent): Promise<void>;
}

/** The subject line a person's mail client shows (SNS caps subjects at 100 characters). */
export function subjectOf(event: BusinessEvent): string {
  return `Tally: run ${event.run_id} held before triage (${event.dataset} ${event.business_date})`.slice(0, 100);
}
