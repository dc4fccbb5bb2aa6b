/**
 * A triage asked for again (POST /exceptions/{id}/triage) and when it counts as answered: triage
 * skips a request its stored triage answers, and the CLI and the dashboard wait for one that does.
 * Free of Node and AWS imports: the dashboard imports it too.
 */

/** How long the CLI (`retriage --wait`) and the dashboard wait for the new triage before saying it is late. */
export const RETRIAGE_WAIT_MS = 120_000;

/** Whether a triage written at `triagedAt` answers a request made at `requestedAt` (both ISO times, UTC). */
export function answersRequest(triagedAt: string | undefined, requestedAt: string): boolean {
  return triagedAt !== undefined && triagedAt >= requestedAt;
}
