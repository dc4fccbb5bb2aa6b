/**
 * Listing exceptions: every filter combination is served by a key query on the most selective
 * GSI (never a Scan), the other filters applied as a FilterExpression, newest first, in pages of
 * exactly `limit` items behind an opaque next_token.
 */
import { TABLES } from '../shared/resources.ts';
import { EXCEPTION_RECORD_TYPE } from '../shared/exceptions.ts';
import { datasetDateKey } from '../shared/keys.ts';
import type { ListFilters } from './schemas.ts';
import { filterHash } from './pagination.ts';
import { readPage } from './paged-query.ts';
import { API_EXCEPTION_ATTRIBUTES, toApiException } from './records.ts';
import { DUE_SORT_CAP, isOverdue } from '../shared/deadlines.ts';
import { BadRequestError } from './errors.ts';
import type { StoredItem } from '../shared/tables/index-query.ts';
import type { QueryStore } from './ports.ts';
import { isOpen, OPEN_STATUSES, EXCEPTION_STATUSES, LATE_ARRIVAL_STATUS } from '../shared/exception-lifecycle.ts';
import type { IndexQuery } from '../shared/tables/index-query.ts';

type IndexName = keyof typeof TABLES.exceptions.indexes;

export interface QueryPlan {
  readonly index: IndexName;
  readonly partition: { readonly attribute: string; readonly value: string };
  readonly filters: IndexQuery['filters'][number][];
  /** The caller's datasets, when restricted to more than one (access.ts datasetScope). */
  readonly within?: { readonly attribute: string; readonly values: readonly string[] };
  /** `field` + `value`: the field of the key or of either row. */
  readonly anyOf?: IndexQuery['anyOf'];
}

/** A caller restricted to datasets: `all`, or the list (a dataset the caller named is already checked). */
export type DatasetScope = 'all' | readonly string[];

/**
 * Most selective first: an analyst's queue, a pattern, a run and a dataset-day are small partitions;
 * a team's queue holds what a team owns; severity is sparse (only triaged exceptions carry it);
 * type, then status, split the table seven and four ways.
 * With no filter at all, by_created_sharded lists everything newest first. Each index is sharded:
 * the partition named here is the logical one, whose shards the store reads and merges.
 */
export function planQuery(filters: ListFilters, datasets: DatasetScope = 'all', nowMs: number = Date.now()): QueryPlan {
  const { overdue, field, value, date_from: dateFrom, date_to: dateTo, ...attributes } = filters;
  const remaining = new Map<string, string>();
  for (const [k, v] of Object.entries(attributes)) if (v !== undefined) remaining.set(k, v);
  // One entitled dataset is an ordinary dataset filter (and may pick the dataset-day index);
  // several are an IN condition beside the other filters, in the query, so pages stay full.
  let within: QueryPlan['within'];
  if (datasets !== 'all' && !remaining.has('dataset')) {
    if (datasets.length === 1) remaining.set('dataset', datasets[0] as string);
    else within = { attribute: 'dataset', values: datasets };
  }
  const take = (attribute: string) => {
    const value = remaining.get(attribute) as string;
    remaining.delete(attribute);
    return value;
  };
  let index: IndexName;
  let partition: QueryPlan['partition'];
  // A person's queue is the smallest: what one analyst holds. A pattern is a part of one
  // dataset-day (its id hashes them in): smaller than a run.
  if (remaining.has('assignee')) {
    index = 'by_assignee_sharded';
    partition = { attribute: 'assignee', value: take('assignee') };
  } else if (remaining.has('pattern_id')) {
    index = 'by_pattern_sharded';
    partition = { attribute: 'pattern_id', value: take('pattern_id') };
  } else if (remaining.has('run_id')) {
    index = 'by_run_sharded';
    partition = { attribute: 'run_id', value: take('run_id') };
  } else if (remaining.has('dataset') && remaining.has('business_date')) {
    index = 'by_dataset_date_sharded';
    partition = { attribute: 'dataset_date', value: datasetDateKey(take('dataset'), take('business_date')) };
  } else if (remaining.has('team')) {
    index = 'by_team_sharded';
    partition = { attribute: 'team', value: take('team') };
  } else if (remaining.has('severity')) {
    index = 'by_severity_sharded';
    partition = { attribute: 'severity', value: take('severity') };
  } else if (remaining.has('exception_type')) {
    index = 'by_type_sharded';
    partition = { attribute: 'exception_type', value: take('exception_type') };
  } else if (remaining.has('status')) {
    index = 'by_status_sharded';
    partition = { attribute: 'status', value: take('status') };
  } else {
    index = 'by_created_sharded';
    partition = { attribute: 'record_type', value: EXCEPTION_RECORD_TYPE };
  }
  const filterList: QueryPlan['filters'] = [...remaining]
    .map(([attribute, value]) => ({ attribute, value }))
    .sort((a, b) => (a.attribute < b.attribute ? -1 : 1));
  if (overdue === 'true') filterList.push(...overdueConditions(nowMs));
  // A business-date range: conditions on the partition chosen above (dates compare as strings).
  if (dateFrom !== undefined) filterList.push({ attribute: 'business_date', op: '>=', value: dateFrom });
  if (dateTo !== undefined) filterList.push({ attribute: 'business_date', op: '<=', value: dateTo });
  // An account (any key or compared field, by name) on either side: the rows are maps on the item.
  const anyOf =
    field !== undefined && value !== undefined
      ? { paths: ['key', 'source', 'target'].map((part) => [part, field]), value }
      : undefined;
  return { index, partition, filters: filterList, ...(within ? { within } : {}), ...(anyOf ? { anyOf } : {}) };
}

/**
 * Overdue (functions/shared/deadlines.ts isOverdue): due at or before now (an exception with no
 * due date never compares), in an open status other than PENDING.
 */
function overdueConditions(nowMs: number): QueryPlan['filters'] {
  const closed = EXCEPTION_STATUSES.filter((s) => !isOpen(s) || s === LATE_ARRIVAL_STATUS);
  return [
    { attribute: 'due_at', op: '<=', value: new Date(nowMs).toISOString() },
    ...closed.map((status) => ({ attribute: 'status', op: '<>' as const, value: status })),
  ];
}

/** Open statuses that can be overdue (every open one but PENDING). */
export const OVERDUE_STATUSES = OPEN_STATUSES.filter((s) => s !== LATE_ARRIVAL_STATUS);

/**
 * Upper bound on DynamoDB round trips per request (each reads every shard at once). A very sparse
 * filter returns a shorter page with a next_token rather than holding the request until API
 * Gateway's 30 s timeout.
 */
const MAX_QUERY_CALLS = 25;

export interface ListRequest {
  readonly filters: ListFilters;
  readonly datasets?: DatasetScope;
  readonly limit: number;
  readonly nextToken?: string | undefined;
  /** `due`: soonest due first (no due date last), over the first DUE_SORT_CAP matches. */
  readonly sort?: 'created' | 'due' | undefined;
}

export interface ListResult {
  readonly items: Record<string, unknown>[];
  readonly count: number;
  readonly next_token: string | null;
}

export async function listExceptions(
  request: ListRequest,
  deps: { store: QueryStore; paginationSecret: string; now?: () => number },
): Promise<ListResult> {
  const nowMs = (deps.now ?? Date.now)();
  if (request.sort === 'due') return listByDue(request, deps, nowMs);
  const page = await readPage({
    plan: planQuery(request.filters, request.datasets, nowMs),
    table: TABLES.exceptions,
    limit: request.limit,
    nextToken: request.nextToken,
    filterHash: filterHash(request.filters),
    secret: deps.paginationSecret,
    maxCalls: MAX_QUERY_CALLS,
    // The keys place an entry and resume the read: nothing else of it is used.
    query: (query) => deps.store.queryExceptionEntries({ ...query, attributes: [] }),
    whole: (entries) => deps.store.wholeExceptions(entries, API_EXCEPTION_ATTRIBUTES),
  });
  return {
    items: page.items.map((item) => toApiException(item, nowMs)),
    count: page.items.length,
    next_token: page.next_token,
  };
}

async function listByDue(
  request: ListRequest,
  deps: { store: QueryStore; paginationSecret: string },
  nowMs: number,
): Promise<ListResult & { truncated: boolean }> {
  if (request.nextToken !== undefined)
    throw new BadRequestError('NEXT_TOKEN_WITH_DUE_SORT', 'sort=due returns one page: leave next_token out');
  const statuses = overdueStatusesOnly(request);
  if (statuses !== undefined) return listOverdueByDue(statuses, request.limit, deps, nowMs);
  const matches: StoredItem[] = [];
  let token: string | null | undefined;
  do {
    const page = await readPage({
      plan: planQuery(request.filters, request.datasets ?? 'all', nowMs),
      table: TABLES.exceptions,
      limit: Math.min(LIST_PAGE_FOR_SORT, DUE_SORT_CAP - matches.length),
      nextToken: token ?? undefined,
      filterHash: filterHash(request.filters),
      secret: deps.paginationSecret,
      maxCalls: MAX_QUERY_CALLS,
      // Index entries carry due_at: only the page's own items are read whole, after the sort.
      query: (query) => deps.store.queryExceptionEntries({ ...query, attributes: ['due_at'] }),
    });
    matches.push(...page.items);
    token = page.next_token;
  } while (token !== null && matches.length < DUE_SORT_CAP);
  const due = (item: StoredItem) => (typeof item.due_at === 'string' ? item.due_at : '\uffff');
  const sorted = await deps.store.wholeExceptions(
    matches.sort((a, b) => (due(a) < due(b) ? -1 : due(a) > due(b) ? 1 : 0)).slice(0, request.limit),
    API_EXCEPTION_ATTRIBUTES,
  );
  return {
    items: sorted.map((item) => toApiException(item, nowMs)),
    count: sorted.length,
    next_token: null,
    truncated: token !== null,
  };
}

/**
 * The overdue statuses a `sort=due&overdue=true` listing reads when by_status_due_sharded can
 * answer it alone: no filter but `status` (that index holds only the status and the due date),
 * and no dataset restriction. Undefined otherwise.
 */
function overdueStatusesOnly(request: ListRequest): readonly string[] | undefined {
  const { overdue, status, ...others } = request.filters;
  if (overdue !== 'true' || (request.datasets !== undefined && request.datasets !== 'all')) return undefined;
  if (Object.values(others).some((v) => v !== undefined)) return undefined;
  return status === undefined ? OVERDUE_STATUSES : OVERDUE_STATUSES.filter((s) => s === status);
}

/**
 * Overdue, soonest due first, exactly (no DUE_SORT_CAP): the `limit` entries due soonest up to now
 * of each overdue status's due-date index, not every exception. The items are read whole and
 * checked again (the index may lag an analyst's change by a moment: such an item is left out).
 * At 100k stored exceptions the listing by creation read all of them: ~6 s locally.
 */
async function listOverdueByDue(
  statuses: readonly string[],
  limit: number,
  deps: { store: QueryStore },
  nowMs: number,
): Promise<ListResult & { truncated: boolean }> {
  const entries = await deps.store.soonestDue(statuses, new Date(nowMs).toISOString(), limit);
  const items = (await deps.store.wholeExceptions(entries, API_EXCEPTION_ATTRIBUTES)).filter((item) =>
    isOverdue(item as { status: string; due_at?: string }, nowMs),
  );
  return {
    items: items.map((item) => toApiException(item, nowMs)),
    count: items.length,
    next_token: null,
    truncated: false,
  };
}

/** Items read per page while collecting matches for sort=due. */
const LIST_PAGE_FOR_SORT = 200;
