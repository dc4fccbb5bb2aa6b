/**
 * POST /runs/{id}/triage: an analyst releases a run the runaway guard held (its triage starts:
 * the dispatch is queued once the run has completed; a run still storing is dispatched by its
 * completion) or abandons it (its exceptions stay stored, untriaged). Only a HELD run moves: the
 * conditional update makes two analysts' clicks one decision, and the other gets a 409.
 */
import type { DispatchRequest } from '../shared/messages.ts';
import type { MessageQueue } from '../shared/ports.ts';
import type { RunRecord, RunTriageStore } from '../shared/tables/runs.ts';
import { ConflictError, NotFoundError } from './errors.ts';
import type { RUN_TRIAGE_ACTIONS } from './schemas.ts';

export interface RunTriageDeps {
  readonly runs: RunTriageStore;
  readonly triageQueue: MessageQueue<DispatchRequest>;
}

export async function changeRunTriage(
  runId: string,
  action: (typeof RUN_TRIAGE_ACTIONS)[number],
  actor: string,
  at: string,
  deps: RunTriageDeps,
): Promise<RunRecord> {
  const run = await deps.runs.get(runId);
  if (run === undefined) throw new NotFoundError(`no run with id ${runId}`, { run_id: runId });
  const moved = await deps.runs.moveTriage(runId, ['HELD'], {
    ...run.triage,
    state: action === 'release' ? 'RELEASED' : 'ABANDONED',
    at,
    by: actor,
  });
  if (moved === undefined) {
    const now = (await deps.runs.get(runId))?.triage?.state ?? 'PENDING';
    throw new ConflictError(
      `run ${runId} is not held (its triage is ${now}): only a held run can be released or abandoned`,
      { run_id: runId, triage: now },
      // Not a stale read: nothing a retry with fresh data would fix.
      'RUN_NOT_HELD',
    );
  }
  if (action === 'release' && moved.status === 'COMPLETED')
    await deps.triageQueue.send([{ kind: 'dispatch', run_id: runId }]);
  return moved;
}
