/**
 * POST /exceptions/bulk: one change (status, assignee, team or note) to many exceptions, each
 * moved as PATCH /exceptions/{id} would (change-each.ts) and reported on its own.
 *
 * Which version each is checked against: the one the caller sent in `versions`, else the version
 * read when the request runs. With `ids`, send `versions` to be told about changes made since you
 * read them; with a `filter` the exceptions are whatever matches now, so their versions are read
 * now (a `versions` entry still wins for an id it names). A filter changes at most BULK_MAX
 * exceptions, newest first, and says when more matched (`more_matched`): send the same request again
 * for the next ones when the change takes them out of the filter, or narrow it.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { BulkItemResult, BulkOutcome, BulkResponse } from '../shared/api-types.ts';
import type { StoredItem } from '../shared/tables/index-query.ts';
import { changeOne, forEachLimited, refusalText, type ItemOutcome } from './change-each.ts';
import { planQuery, type DatasetScope } from './listing.ts';
import type { QueryApiDeps } from './ports.ts';
import { BULK_MAX, type BulkBody } from './schemas.ts';

/** Stop starting new changes after this long; the function times out at 29 s. */
const BUDGET_MS = 20_000;
const READ_BATCH = 200;

function resultOf(id: string, outcome: ItemOutcome): BulkItemResult {
  switch (outcome.kind) {
    case 'updated':
    case 'awaiting_approval':
      return { id, outcome: outcome.kind, version: outcome.version };
    case 'conflict':
      return {
        id,
        outcome: 'conflict',
        version: outcome.version,
        error: `changed since it was read: version ${outcome.sent} was sent, it is at ${outcome.version}`,
      };
    case 'invalid_transition':
      return { id, outcome: 'invalid_transition', version: outcome.version, error: refusalText(id, outcome) };
  }
}

/** The first BULK_MAX exceptions a listing filter matches, newest first, and whether more did. */
async function readFiltered(
  filter: NonNullable<BulkBody['filter']>,
  deps: Pick<QueryApiDeps, 'store'> & BulkScope,
): Promise<{ items: StoredItem[]; more: boolean }> {
  const plan = planQuery(filter, deps.datasets);
  const items: StoredItem[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await deps.store.queryExceptions({ ...plan, limit: READ_BATCH, ...(startKey ? { startKey } : {}) });
    items.push(...page.items);
    startKey = page.lastKey;
  } while (startKey && items.length <= BULK_MAX);
  return { items: items.slice(0, BULK_MAX), more: items.length > BULK_MAX || startKey !== undefined };
}

/** What the caller may touch: a filter reads only these datasets; an id of another is not found. */
export interface BulkScope {
  readonly datasets?: DatasetScope;
  readonly canSee?: (dataset: string) => boolean;
}

export async function applyBulk(
  body: BulkBody,
  actor: string,
  deps: Pick<QueryApiDeps, 'store' | 'exceptionsIndex' | 'now'> & BulkScope,
  logger?: Logger,
): Promise<BulkResponse> {
  const deadline = deps.now() + BUDGET_MS;
  const results = new Map<string, BulkItemResult>();
  let targets: { id: string; item: StoredItem | undefined }[];
  let more = false;
  if (body.ids) {
    const ids = [...new Set(body.ids)];
    targets = await Promise.all(ids.map(async (id) => ({ id, item: await deps.store.getException(id) })));
  } else {
    const read = await readFiltered(body.filter as NonNullable<BulkBody['filter']>, deps);
    targets = read.items.map((item) => ({ id: String(item.exception_id), item }));
    more = read.more;
  }
  await forEachLimited(
    targets,
    async ({ id, item }) => {
      if (!item || (deps.canSee && !deps.canSee(String(item.dataset)))) {
        results.set(id, { id, outcome: 'not_found', error: `no exception with id ${id}` });
        return;
      }
      const version = body.versions?.[id] ?? Number(item.version);
      results.set(id, resultOf(id, await changeOne(item, body.change, version, actor, deps, logger)));
    },
    deps.now,
    deadline,
  );
  // Out of time: say which were not tried, so the caller can send them again.
  const ordered = targets.map(
    ({ id }) =>
      results.get(id) ?? {
        id,
        outcome: 'not_attempted' as const,
        error: 'the request ran out of time first; send it again',
      },
  );
  const counts = {
    updated: 0,
    conflict: 0,
    invalid_transition: 0,
    not_found: 0,
    awaiting_approval: 0,
    not_attempted: 0,
  } satisfies Record<BulkOutcome, number>;
  for (const r of ordered) counts[r.outcome]++;
  return { results: ordered, counts, matched: targets.length, more_matched: more };
}
