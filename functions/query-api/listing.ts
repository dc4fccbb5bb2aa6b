/**
 * Listing exceptions: every filter combination is served by a key query on the most selective
 * GSI (never a Scan), the other filters applied as a FilterExpression, newest first, in pages of
 * exactly `limit` items behind an opaque next_token.
 */
import { TABLES } from '../shared/resources.ts';
import { EXCEPTION_RECORD_TYPE } from '../shared/exceptions.ts';
import type { ListFilters } from './schemas.ts';
import { decodeToken, encodeToken, filterHash } from './pagination.ts';
import { BadRequestError } from './errors.ts';
import { toApiException } from './records.ts';
import type { IndexQuery, QueryStore, StoredItem } from './ports.ts';

type IndexName = keyof typeof TABLES.exceptions.indexes;

/** The by_dataset_date partition value, as recon writes it. */
export function datasetDateKey(dataset: string, businessDate: string): string {
  return `${dataset}#${businessDate}`;
}

export interface QueryPlan {
  readonly index: IndexName;
  readonly partition: { readonly attribute: string; readonly value: string };
  readonly filters: { readonly attribute: string; readonly value: string }[];
}

/**
 * Most selective first: a run and a dataset-day are small partitions; severity is sparse (only
 * triaged exceptions carry it); type, then status, split the table seven and four ways.
 * With no filter at all, by_created lists everything newest first.
 */
export function planQuery(filters: ListFilters): QueryPlan {
  const remaining = new Map<string, string>();
  for (const [k, v] of Object.entries(filters)) if (v !== undefined) remaining.set(k, v);
  const take = (attribute: string) => {
    const value = remaining.get(attribute) as string;
    remaining.delete(attribute);
    return value;
  };
  let index: IndexName;
  let partition: QueryPlan['partition'];
  if (remaining.has('run_id')) {
    index = 'by_run';
    partition = { attribute: 'run_id', value: take('run_id') };
  } else if (remaining.has('dataset') && remaining.has('business_date')) {
    index = 'by_dataset_date';
    partition = { attribute: 'dataset_date', value: datasetDateKey(take('dataset'), take('business_date')) };
  } else if (remaining.has('severity')) {
    index = 'by_severity';
    partition = { attribute: 'severity', value: take('severity') };
  } else if (remaining.has('exception_type')) {
    index = 'by_type';
    partition = { attribute: 'exception_type', value: take('exception_type') };
  } else if (remaining.has('status')) {
    index = 'by_status';
    partition = { attribute: 'status', value: take('status') };
  } else {
    index = 'by_created';
    partition = { attribute: 'record_type', value: EXCEPTION_RECORD_TYPE };
  }
  const filterList = [...remaining].map(([attribute, value]) => ({ attribute, value })).sort((a, b) => (a.attribute < b.attribute ? -1 : 1));
  return { index, partition, filters: filterList };
}

/** The start key DynamoDB expects to resume a GSI query right after `item`. */
function startKeyAfter(plan: QueryPlan, item: StoredItem): Record<string, unknown> {
  const def = TABLES.exceptions;
  const index = def.indexes[plan.index];
  return {
    [def.partitionKey.name]: item[def.partitionKey.name],
    [index.partitionKey.name]: item[index.partitionKey.name],
    [index.sortKey.name]: item[index.sortKey.name],
  };
}

/** With a FilterExpression, read this many items per call at least: fewer round trips for sparse matches. */
const FILTERED_BATCH = 100;
/**
 * Upper bound on DynamoDB calls per request. A very sparse filter returns a shorter page with a
 * next_token rather than holding the request until API Gateway's 30 s timeout.
 */
const MAX_QUERY_CALLS = 25;

export interface ListRequest {
  readonly filters: ListFilters;
  readonly limit: number;
  readonly nextToken?: string | undefined;
}

export interface ListResult {
  readonly items: Record<string, unknown>[];
  readonly count: number;
  readonly next_token: string | null;
}

export async function listExceptions(request: ListRequest, deps: { store: QueryStore; paginationSecret: string }): Promise<ListResult> {
  const plan = planQuery(request.filters);
  const hash = filterHash(request.filters);
  let startKey: Record<string, unknown> | undefined;
  if (request.nextToken !== undefined) {
    const cursor = decodeToken(deps.paginationSecret, request.nextToken, hash);
    if (cursor.index !== plan.index) throw new BadRequestError('NEXT_TOKEN_FILTER_MISMATCH', 'next_token was issued for a different set of filters');
    startKey = { ...cursor.startKey };
  }

  const collected: StoredItem[] = [];
  let exhausted = false;
  for (let calls = 0; calls < MAX_QUERY_CALLS; calls++) {
    // One more than asked for: tells "exactly limit left" from "more to come" without an empty last page.
    const wanted = request.limit + 1 - collected.length;
    const query: IndexQuery = {
      index: plan.index,
      partition: plan.partition,
      filters: plan.filters,
      limit: plan.filters.length > 0 ? Math.max(wanted, FILTERED_BATCH) : wanted,
      ...(startKey ? { startKey } : {}),
    };
    const page = await deps.store.queryExceptions(query);
    collected.push(...page.items);
    if (!page.lastKey) {
      exhausted = true;
      break;
    }
    startKey = page.lastKey;
    if (collected.length > request.limit) break;
  }

  let items = collected;
  let resumeFrom: Record<string, unknown> | undefined;
  if (collected.length > request.limit) {
    items = collected.slice(0, request.limit);
    resumeFrom = startKeyAfter(plan, items[items.length - 1] as StoredItem);
  } else if (!exhausted) {
    resumeFrom = startKey;
  }
  return {
    items: items.map(toApiException),
    count: items.length,
    next_token: resumeFrom ? encodeToken(deps.paginationSecret, { index: plan.index, startKey: resumeFrom }, hash) : null,
  };
}
