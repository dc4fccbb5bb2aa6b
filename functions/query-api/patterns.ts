/**
 * A run's break patterns as the API shows them, and actions on a whole pattern. Members are read
 * from the exceptions' by_pattern_sharded index (the pattern's partition, this run's members),
 * never a Scan. A pattern action moves each member as PATCH /exceptions/{id} would
 * (change-each.ts, shared with bulk changes: the lifecycle's rules and maker-checker, the member's
 * own history entry, its version checked, the search copy's status mirrored), and reports each
 * member's outcome instead of failing the lot.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { ApiPattern, PatternActionResponse, PatternMemberResult, PatternsResponse } from '../shared/api-types.ts';
import { PATTERN_ACTIONS, type PatternAction } from '../shared/exception-lifecycle.ts';
import type { ExceptionQueries } from '../shared/tables/exceptions.ts';
import { COUNTING_PAGE, type IndexPage, type IndexQuery, type StoredItem } from '../shared/tables/index-query.ts';
import type { PatternQueries } from '../shared/tables/patterns.ts';
import type { RunQueries, RunRecord } from '../shared/tables/runs.ts';
import { changeOne, forEachLimited, refusalText } from './change-each.ts';
import { NotFoundError } from './errors.ts';
import type { QueryApiDeps } from './ports.ts';

/**
 * Members read per round when a pattern's are moved: a round queries every shard at once and
 * splits this among them (63 a shard), and the moves of one round go before the next is read.
 */
const MEMBER_BATCH = 1000;
/** Stop reading (or moving) members after this long; the function times out at 29 s. */
const BUDGET_MS = 20_000;

type Deps = { store: ExceptionQueries & RunQueries & PatternQueries; now: () => number };

/** The query plan of a pattern's members in one run (the listing's `pattern_id` + `run_id` filters give the same). */
function membersQuery(runId: string, patternId: string) {
  return {
    index: 'by_pattern_sharded',
    partition: { attribute: 'pattern_id', value: patternId },
    filters: [{ attribute: 'run_id', value: runId }],
  } as const;
}

/**
 * Reads every member of the pattern in this run, a page at a time, until the deadline; returns
 * whether it got to the end. (A pattern id is per dataset and date, so a later run's members share
 * the partition: the run_id filter keeps this run's.) `read`: one page, of whole items (an action
 * moves them) or of index entries (counting needs their status only).
 */
async function forEachMember(
  runId: string,
  patternId: string,
  deps: Deps,
  deadline: number,
  read: (query: IndexQuery) => Promise<IndexPage>,
  visit: (items: StoredItem[]) => Promise<void> | void,
  batch = MEMBER_BATCH,
): Promise<boolean> {
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await read({
      ...membersQuery(runId, patternId),
      limit: batch,
      order: 'any',
      ...(startKey ? { startKey } : {}),
    });
    await visit(page.items);
    startKey = page.lastKey;
  } while (startKey && deps.now() < deadline);
  return startKey === undefined;
}

/** `run`: as the route read it (entitled: it exists and the caller may see its dataset). */
export async function listPatterns(run: RunRecord, deps: Deps): Promise<PatternsResponse> {
  const runId = run.run_id;
  const patterns = await deps.store.listPatterns(runId);
  const deadline = deps.now() + BUDGET_MS;
  const items: ApiPattern[] = await Promise.all(
    patterns.map(async (pattern) => {
      const byStatus: Record<string, number> = {};
      // The index entries carry the status: counting reads no member whole (at 5,322 members in
      // 9 patterns, locally, 1.8-3.3 s whole against 0.29-0.37 s from the entries).
      const read = (query: IndexQuery) => deps.store.queryExceptionEntries({ ...query, attributes: ['status'] });
      const complete = await forEachMember(
        runId,
        pattern.pattern_id,
        deps,
        deadline,
        read,
        (members) => {
          for (const m of members) byStatus[String(m.status)] = (byStatus[String(m.status)] ?? 0) + 1;
        },
        COUNTING_PAGE,
      );
      return { ...pattern, members_by_status: byStatus, members_complete: complete };
    }),
  );
  items.sort((a, b) => b.size - a.size || (a.pattern_id < b.pattern_id ? -1 : 1));
  return { run_id: runId, items, summary: run.patterns ?? null };
}

export interface PatternActionRequest {
  readonly action: PatternAction;
  readonly note?: string | undefined;
  /** The version the caller last read of each member; members not named are checked against the version read here. */
  readonly versions?: Readonly<Record<string, number>> | undefined;
}

export async function applyPatternAction(
  runId: string,
  patternId: string,
  request: PatternActionRequest,
  actor: string,
  deps: Deps & Pick<QueryApiDeps, 'exceptionsIndex'> & { store: QueryApiDeps['store'] },
  logger?: Logger,
): Promise<PatternActionResponse> {
  const pattern = await deps.store.getPattern(runId, patternId);
  if (!pattern)
    throw new NotFoundError(`run ${runId} has no pattern ${patternId}`, { run_id: runId, pattern_id: patternId });
  const status = PATTERN_ACTIONS[request.action];
  const deadline = deps.now() + BUDGET_MS;
  const results: PatternMemberResult[] = [];
  const seen = new Set<string>();
  const move = async (item: StoredItem): Promise<PatternMemberResult> => {
    const id = String(item.exception_id);
    const version = request.versions?.[id] ?? Number(item.version);
    const change = { status, ...(request.note ? { note: request.note } : {}) };
    const outcome = await changeOne(item, change, version, actor, deps, logger);
    switch (outcome.kind) {
      case 'updated':
        return { exception_id: id, outcome: 'APPLIED', version: outcome.version };
      // Maker-checker: the member waits for an approver (the same rule as one exception's move).
      case 'awaiting_approval':
        return {
          exception_id: id,
          outcome: 'APPLIED',
          version: outcome.version,
          reason: `awaiting approval: ${status} needs an approver who is not the maker`,
        };
      case 'conflict':
        return {
          exception_id: id,
          outcome: 'CONFLICT',
          version: outcome.version,
          reason: `changed since it was read: version ${outcome.sent} was sent, it is at ${outcome.version}`,
        };
      case 'invalid_transition':
        // The lifecycle refuses this member's move (already there, or not from its status).
        return { exception_id: id, outcome: 'SKIPPED', version: outcome.version, reason: refusalText(id, outcome) };
    }
  };
  const complete = await forEachMember(
    runId,
    patternId,
    deps,
    deadline,
    (query) => deps.store.queryExceptions(query),
    async (items) => {
      await forEachLimited(
        items,
        async (item) => {
          seen.add(String(item.exception_id));
          results.push(await move(item));
        },
        deps.now,
        deadline,
      );
    },
  );
  const allMoved = complete && deps.now() < deadline;
  for (const id of Object.keys(request.versions ?? {}))
    if (!seen.has(id) && allMoved)
      results.push({
        exception_id: id,
        outcome: 'SKIPPED',
        version: Number(request.versions?.[id]),
        reason: `exception ${id} is not a member of pattern ${patternId} in run ${runId}`,
      });
  results.sort((a, b) => (a.exception_id < b.exception_id ? -1 : 1));
  const counts = { APPLIED: 0, CONFLICT: 0, SKIPPED: 0 };
  for (const r of results) counts[r.outcome]++;
  return { run_id: runId, pattern_id: patternId, action: request.action, results, counts, complete: allMoved };
}
