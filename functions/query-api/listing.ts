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
import { toApiException } from './records.ts';
import type { QueryStore } from './ports.ts';

type IndexName = keyof typeof TABLES.exceptions.indexes;

export interface QueryPlan {
  readonly index: IndexName;
  readonly partition: { readonly attribute: string; readonly value: string };
  readonly filters: { readonly attribute: string; readonly value: string }[];
  /** The caller's datasets, when restricted to more than one (access.ts datasetScope). */
  readonly within?: { readonly attribute: string; readonly values: readonly string[] };
}

/** A caller restricted to datasets: `all`, or the list (a dataset the caller named is already checked). */
export type DatasetScope = 'all' | readonly string[];

/**
 * Most selective first: a pattern, a run and a dataset-day are small partitions; severity is sparse (only
 * triaged exceptions carry it); type, then status, split the table seven and four ways.
 * With no filter at all, by_created_sharded lists everything newest first. Each index is sharded:
 * the partition named here is the logical one, whose shards the store reads and merges.
 */
export function planQuery(filters: ListFilters, datasets: DatasetScope = 'all'): QueryPlan {
  const remaining = new Map<string, string>();
  for (const [k, v] of Object.entries(filters)) if (v !== undefined) remaining.set(k, v);
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
  // A pattern is a part of one dataset-day (its id hashes them in): smaller than a run.
  if (remaining.has('pattern_id')) {
    index = 'by_pattern_sharded';
    partition = { attribute: 'pattern_id', value: take('pattern_id') };
  } else if (remaining.has('run_id')) {
    index = 'by_run_sharded';
    partition = { attribute: 'run_id', value: take('run_id') };
  } else if (remaining.has('dataset') && remaining.has('business_date')) {
    index = 'by_dataset_date_sharded';
    partition = { attribute: 'dataset_date', value: datasetDateKey(take('dataset'), take('business_date')) };
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
  const filterList = [...remaining]
    .map(([attribute, value]) => ({ attribute, value }))
    .sort((a, b) => (a.attribute < b.attribute ? -1 : 1));
  return { index, partition, filters: filterList, ...(within ? { within } : {}) };
}

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
}

export interface ListResult {
  readonly items: Record<string, unknown>[];
  readonly count: number;
  readonly next_token: string | null;
}

export async function listExceptions(
  request: ListRequest,
  deps: { store: QueryStore; paginationSecret: string },
): Promise<ListResult> {
  const page = await readPage({
    plan: planQuery(request.filters, request.datasets),
    table: TABLES.exceptions,
    limit: request.limit,
    nextToken: request.nextToken,
    filterHash: filterHash(request.filters),
    secret: deps.paginationSecret,
    maxCalls: MAX_QUERY_CALLS,
    query: (query) => deps.store.queryExceptions(query),
  });
  return { items: page.items.map(toApiException), count: page.items.length, next_token: page.next_token };
}
