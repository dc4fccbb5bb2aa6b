/**
 * Listing runs, newest first: one dataset-day from by_dataset_date, otherwise every run from
 * by_requested (one constant partition); dataset and status narrow either as a FilterExpression.
 * Never a Scan. Pages behind the same signed next_token as the exceptions listing.
 */
import { RUN_RECORD_TYPE, TABLES } from '../shared/resources.ts';
import { BadRequestError } from './errors.ts';
import { datasetDateKey } from './listing.ts';
import { decodeToken, encodeToken, filterHash } from './pagination.ts';
import { toApiRun } from './records.ts';
import type { RunsQuery } from './schemas.ts';
import type { IndexQuery, QueryStore, StoredItem } from './ports.ts';

type RunIndex = keyof typeof TABLES.runs.indexes;

export interface RunsPlan {
  readonly index: RunIndex;
  readonly partition: { readonly attribute: string; readonly value: string };
  readonly filters: { readonly attribute: string; readonly value: string }[];
}

export function planRunsQuery(query: Pick<RunsQuery, 'dataset' | 'business_date' | 'status'>): RunsPlan {
  const filters: RunsPlan['filters'] = [];
  if (query.status !== undefined) filters.push({ attribute: 'status', value: query.status });
  if (query.dataset !== undefined && query.business_date !== undefined) {
    return { index: 'by_dataset_date', partition: { attribute: 'dataset_date', value: datasetDateKey(query.dataset, query.business_date) }, filters };
  }
  if (query.dataset !== undefined) filters.unshift({ attribute: 'dataset', value: query.dataset });
  return { index: 'by_requested', partition: { attribute: 'record_type', value: RUN_RECORD_TYPE }, filters };
}

/** Filtered queries read at least this many items per call; at most this many calls per request. */
const FILTERED_BATCH = 100;
const MAX_QUERY_CALLS = 10;

export interface RunsResult {
  readonly items: Record<string, unknown>[];
  readonly count: number;
  readonly next_token: string | null;
}

export async function listRuns(query: RunsQuery, deps: { store: QueryStore; paginationSecret: string }): Promise<RunsResult> {
  const plan = planRunsQuery(query);
  const hash = filterHash({ scope: 'runs', dataset: query.dataset, business_date: query.business_date, status: query.status });
  let startKey: Record<string, unknown> | undefined;
  if (query.next_token !== undefined) {
    const cursor = decodeToken(deps.paginationSecret, query.next_token, hash);
    if (cursor.index !== plan.index) throw new BadRequestError('NEXT_TOKEN_FILTER_MISMATCH', 'next_token was issued for a different set of filters');
    startKey = { ...cursor.startKey };
  }
  const collected: StoredItem[] = [];
  let exhausted = false;
  for (let calls = 0; calls < MAX_QUERY_CALLS; calls++) {
    const wanted = query.limit + 1 - collected.length;
    const request: IndexQuery = {
      index: plan.index, partition: plan.partition, filters: plan.filters,
      limit: plan.filters.length > 0 ? Math.max(wanted, FILTERED_BATCH) : wanted,
      ...(startKey ? { startKey } : {}),
    };
    const page = await deps.store.queryRuns(request);
    collected.push(...page.items);
    if (!page.lastKey) {
      exhausted = true;
      break;
    }
    startKey = page.lastKey;
    if (collected.length > query.limit) break;
  }
  let items = collected;
  let resumeFrom: Record<string, unknown> | undefined;
  if (collected.length > query.limit) {
    items = collected.slice(0, query.limit);
    const last = items[items.length - 1] as StoredItem;
    const index = TABLES.runs.indexes[plan.index];
    resumeFrom = { run_id: last.run_id, [index.partitionKey.name]: last[index.partitionKey.name], [index.sortKey.name]: last[index.sortKey.name] };
  } else if (!exhausted) {
    resumeFrom = startKey;
  }
  return {
    items: items.map((item) => toApiRun(item)),
    count: items.length,
    next_token: resumeFrom ? encodeToken(deps.paginationSecret, { index: plan.index, startKey: resumeFrom }, hash) : null,
  };
}
