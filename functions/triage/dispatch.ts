/**
 * A completed run's dispatch: which of its exceptions need triage, and how many model calls that
 * takes. The run's exceptions that need it (new, changed, or triaged by a prompt no longer
 * current) are listed from by_run_sharded a page at a time, projected to id, hash and pattern:
 * each page's singletons (in no saved pattern) are queued as exception messages, and one pattern
 * message for each saved pattern the page is the first to list a member of; its members are only
 * counted. The next page goes out as the next dispatch message with the counts so far. After the
 * last page, the plan on the run: model calls = patterns + singletons.
 *
 * Idempotent: a redelivered page repeats what it queued (triage skips what is already triaged),
 * with the same counts it carried; the run's state only moves PENDING/RELEASED -> DISPATCHED.
 */
import { PermanentError } from '../shared/errors.ts';
import type { DispatchRequest, TriageQueueMessage } from '../shared/messages.ts';
import type { MessageQueue } from '../shared/ports.ts';
import type { PatternStore } from '../shared/tables/patterns.ts';
import type { RunExceptionListing } from '../shared/tables/run-exceptions.ts';
import type { RunTriageStore, TriagePlan } from '../shared/tables/runs.ts';
import { PATTERN_PROMPT_VERSION } from './pattern-prompt.ts';
import { PROMPT_VERSION } from './prompt.ts';

/** Exceptions listed per dispatch message: a page's ids and messages fit well in memory and in one invocation. */
export const DISPATCH_PAGE = 1000;

/** A triage is current when made by either prompt for the content as it is now. */
export const CURRENT_PROMPTS: readonly string[] = [PROMPT_VERSION, PATTERN_PROMPT_VERSION];

export interface DispatchDeps {
  readonly runs: RunTriageStore;
  readonly patterns: Pick<PatternStore, 'list'>;
  readonly listing: Pick<RunExceptionListing, 'needingTriage'>;
  readonly triageQueue: MessageQueue<TriageQueueMessage>;
  readonly now: () => number;
  /** Exceptions listed per dispatch message (default DISPATCH_PAGE). */
  readonly dispatchPage?: number;
}

export type DispatchOutcome =
  | { outcome: 'PAGE_QUEUED'; singletons: number; members: number }
  | ({ outcome: 'DISPATCHED' } & TriagePlan)
  /** HELD or ABANDONED (a release queues the dispatch again), or not completed. */
  | { outcome: 'NOT_DISPATCHED'; reason: string };

export async function dispatchRun(request: DispatchRequest, deps: DispatchDeps): Promise<DispatchOutcome> {
  const runId = request.run_id;
  const run = await deps.runs.get(runId);
  if (run === undefined) throw new PermanentError('UNKNOWN_RUN', `run ${runId} is not recorded`);
  if (run.status !== 'COMPLETED') return { outcome: 'NOT_DISPATCHED', reason: `the run is ${run.status}` };
  const state = run.triage?.state ?? 'PENDING';
  if (state === 'HELD' || state === 'ABANDONED') return { outcome: 'NOT_DISPATCHED', reason: `triage is ${state}` };
  if (state !== 'DISPATCHED') {
    const moved = await deps.runs.moveTriage(runId, ['PENDING', 'RELEASED'], {
      ...run.triage,
      state: 'DISPATCHED',
      at: new Date(deps.now()).toISOString(),
    });
    // Abandoned (or held) in between: the analyst's word stands.
    if (moved === undefined) return { outcome: 'NOT_DISPATCHED', reason: 'triage state changed meanwhile' };
  }

  const saved = new Set((await deps.patterns.list(runId)).map((p) => p.pattern_id));
  const page = await deps.listing.needingTriage(runId, {
    limit: deps.dispatchPage ?? DISPATCH_PAGE,
    currentPrompts: CURRENT_PROMPTS,
    ...(request.cursor === undefined ? {} : { cursor: request.cursor }),
  });
  const members: Record<string, number> = { ...request.counted?.members };
  const queued = new Set(Object.keys(members).filter((id) => (members[id] ?? 0) > 0));
  const singles: TriageQueueMessage[] = [];
  for (const e of page.items) {
    if (e.pattern_id !== undefined && saved.has(e.pattern_id)) members[e.pattern_id] = (members[e.pattern_id] ?? 0) + 1;
    else singles.push({ kind: 'exception', exception_id: e.exception_id, run_id: runId, content_hash: e.content_hash });
  }
  // A pattern is queued from the first page listing a member of it that needs triage, as
  // singletons are: its model call runs while the later pages are listed. Sorted: the same run
  // queues its patterns in the same order every time.
  const patterns: TriageQueueMessage[] = Object.keys(members)
    .filter((id) => (members[id] ?? 0) > 0 && !queued.has(id))
    .sort()
    .map((pattern_id) => ({ kind: 'pattern', run_id: runId, pattern_id }));
  await deps.triageQueue.send([...singles, ...patterns]);
  const singletons = (request.counted?.singletons ?? 0) + singles.length;
  const memberCount = Object.values(members).reduce((a, n) => a + n, 0);
  if (page.cursor !== undefined) {
    await deps.triageQueue.send([
      { kind: 'dispatch', run_id: runId, cursor: page.cursor, counted: { singletons, members } },
    ]);
    return { outcome: 'PAGE_QUEUED', singletons, members: memberCount };
  }
  const toTriage = Object.keys(members).filter((id) => (members[id] ?? 0) > 0);
  const plan: TriagePlan = { patterns: toTriage.length, singletons, members: memberCount };
  await deps.runs.recordTriagePlan(runId, plan);
  return { outcome: 'DISPATCHED', ...plan };
}
