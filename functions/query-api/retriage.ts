/**
 * POST /exceptions/{id}/triage: an analyst asks for an exception's triage again — after a policy
 * or runbook it should cite has changed, or when its triage cites nothing (it was triaged before
 * the policy corpus was indexed, or by the rules while the models were down).
 *
 * The request goes on the triage queue as a run's dispatch sends one, carrying when it was asked:
 * triage (functions/triage/triage.ts) answers it unless the exception has been triaged since, so
 * a redelivered request, or two analysts' clicks, cost one model call. The model calls count
 * against the daily budget like any other; past it the rules answer, and a later request (or the
 * next run) asks a model again.
 */
import type { RetriageAccepted } from '../shared/api-types.ts';
import type { TriageRequest } from '../shared/messages.ts';
import type { MessageQueue } from '../shared/ports.ts';
import { LATE_ARRIVAL_STATUS } from '../shared/exception-lifecycle.ts';
import { ApiError } from './errors.ts';

export interface RetriageDeps {
  readonly triageQueue: MessageQueue<TriageRequest>;
}

export async function requestTriage(
  exception: Record<string, unknown>,
  requestedAt: string,
  deps: RetriageDeps,
): Promise<RetriageAccepted> {
  const id = String(exception.exception_id);
  if (exception.status === LATE_ARRIVAL_STATUS)
    throw new ApiError(
      409,
      'EXCEPTION_PENDING',
      `exception ${id} is inside its late-arrival window (PENDING): it is triaged when the window has passed and it is still missing`,
      { exception_id: id, status: LATE_ARRIVAL_STATUS },
    );
  await deps.triageQueue.send([
    {
      kind: 'exception',
      exception_id: id,
      run_id: String(exception.run_id),
      content_hash: String(exception.content_hash),
      requested_at: requestedAt,
    },
  ]);
  const triagedAt = (exception.triage as { triaged_at?: unknown } | undefined)?.triaged_at;
  return {
    exception_id: id,
    requested_at: requestedAt,
    ...(typeof triagedAt === 'string' ? { triaged_at: triagedAt } : {}),
  };
}
