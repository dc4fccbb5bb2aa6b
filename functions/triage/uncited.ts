/**
 * The policy corpus gained a document: the exceptions whose triage cites no policy passage —
 * triaged before the corpus held what they should cite (a first deployment's runs racing its
 * seeding, a dataset triaged before its runbook was written) — are triaged again, without anyone
 * asking. The ingest worker queues one `uncited` message per document it indexes; this reads
 * by_uncited_sharded (sparse: only those exceptions, still open) a page at a time:
 *  - a member of a pattern saved for its run: one `pattern` message per pattern (one model call
 *    for all of its members, as the run's dispatch does), carrying the request's time;
 *  - any other: an `exception` message carrying it.
 * Triage answers each unless it was triaged at or after the request (shared/retriage.ts), so a
 * redelivered page, a pattern listed by two pages, or a second document indexed meanwhile costs
 * no second model call for what is answered. The next page goes out as the next message.
 *
 * The first page waits until `uncitedSettleMs` after the request (the message goes back on the
 * queue, delayed, when anything is uncited): a push of several documents is indexed one at a time,
 * and an exception asked again after the first would be triaged without the others, then asked
 * again, and called a model for, by each later one. After the wait, the first document's sweep
 * triages each exception once with every document indexed meanwhile, and the later sweeps' requests
 * find it triaged since. With nothing uncited, nothing waits (a new stack's corpus being seeded).
 *
 * A triage that still cites nothing (the new document says nothing about it) stays in the index,
 * and is asked again by the next document indexed: one model call per document and exception.
 *
 * The same sweep, on the index's other partition, asks again the triages the rules gave because
 * every model failed (an outage: the breaker opened, or each exception's calls failed), when a
 * model answers again after its breaker opened (chain.ts: the one trial call that closes it queues
 * a `recovered` request). One still degraded (the models failed again) waits for the next
 * recovery, or an analyst's POST /exceptions/{id}/triage.
 */
import type { TriageQueueMessage, UncitedRequest } from '../shared/messages.ts';
import { MAX_DELAY_SECONDS, type MessageQueue } from '../shared/ports.ts';
import type { PatternStore } from '../shared/tables/patterns.ts';
import type { UncitedListing } from '../shared/tables/run-exceptions.ts';

/** Exceptions read per `uncited` message. */
export const UNCITED_PAGE = 500;

export interface UncitedDeps {
  readonly uncited: UncitedListing;
  readonly patterns: Pick<PatternStore, 'list'>;
  readonly triageQueue: MessageQueue<TriageQueueMessage>;
  /** Exceptions read per message (default UNCITED_PAGE). */
  readonly uncitedPage?: number;
  /** How long after the request the first page is read (default 0: at once). */
  readonly uncitedSettleMs?: number;
  readonly now: () => number;
}

export type UncitedOutcome = AskedAgain | Settling;

/** Back on the queue until the documents pushed with this one are indexed too. */
export interface Settling {
  readonly outcome: 'SETTLING';
  readonly delay_seconds: number;
}

export interface AskedAgain {
  readonly outcome: 'ASKED_AGAIN';
  /** Exception messages queued by this page. */
  readonly exceptions: number;
  /** Pattern messages queued by this page. */
  readonly patterns: number;
  /** Another page follows. */
  readonly more: boolean;
}

export async function askUncitedAgain(request: UncitedRequest, deps: UncitedDeps): Promise<UncitedOutcome> {
  // Which partition (the triages citing nothing, or those failing models left to the rules), and
  // of which dataset.
  const partition = {
    ...(request.dataset === undefined ? {} : { dataset: request.dataset }),
    ...(request.recovered === undefined ? {} : { degraded: true }),
  };
  if (request.cursor === undefined) {
    const waitMs = Date.parse(request.requested_at) + (deps.uncitedSettleMs ?? 0) - deps.now();
    if (waitMs > 0) {
      // One exception is enough to wait for: reads a shard or a few, not a page.
      const probe = await deps.uncited.uncited({ limit: 1, ...partition });
      if (probe.items.length > 0 || probe.cursor !== undefined) {
        const delaySeconds = Math.min(MAX_DELAY_SECONDS, Math.ceil(waitMs / 1000));
        await deps.triageQueue.send([request], { delaySeconds });
        return { outcome: 'SETTLING', delay_seconds: delaySeconds };
      }
      return { outcome: 'ASKED_AGAIN', exceptions: 0, patterns: 0, more: false };
    }
  }
  const page = await deps.uncited.uncited({
    limit: deps.uncitedPage ?? UNCITED_PAGE,
    ...(request.cursor === undefined ? {} : { cursor: request.cursor }),
    ...partition,
  });
  // After a recovery, the time the first page is read: a worker that found the breaker open just
  // before the trial answered saves its rules answer after the request, and is asked too.
  const requestedAt =
    request.recovered !== undefined && request.cursor === undefined
      ? new Date(deps.now()).toISOString()
      : request.requested_at;
  // A run's saved patterns, read once per page.
  const saved = new Map<string, Promise<Set<string>>>();
  const savedOf = (runId: string) => {
    let ids = saved.get(runId);
    if (!ids) saved.set(runId, (ids = deps.patterns.list(runId).then((ps) => new Set(ps.map((p) => p.pattern_id)))));
    return ids;
  };
  const singles: TriageQueueMessage[] = [];
  const patterns = new Map<string, TriageQueueMessage>();
  for (const e of page.items) {
    if (e.pattern_id !== undefined && (await savedOf(e.run_id)).has(e.pattern_id))
      patterns.set(`${e.run_id}\u001f${e.pattern_id}`, {
        kind: 'pattern',
        run_id: e.run_id,
        pattern_id: e.pattern_id,
        requested_at: requestedAt,
      });
    else
      singles.push({
        kind: 'exception',
        exception_id: e.exception_id,
        run_id: e.run_id,
        content_hash: e.content_hash,
        requested_at: requestedAt,
      });
  }
  // Sorted: a redelivered page queues the same messages in the same order.
  const patternMessages = [...patterns.keys()].sort().map((key) => patterns.get(key) as TriageQueueMessage);
  await deps.triageQueue.send([...singles, ...patternMessages]);
  if (page.cursor !== undefined)
    await deps.triageQueue.send([{ ...request, requested_at: requestedAt, cursor: page.cursor }]);
  return {
    outcome: 'ASKED_AGAIN',
    exceptions: singles.length,
    patterns: patternMessages.length,
    more: page.cursor !== undefined,
  };
}
