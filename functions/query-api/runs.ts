/**
 * Listing runs, newest first: one dataset-day from by_dataset_date, otherwise every run from
 * by_requested (one constant partition); dataset and status narrow either as a FilterExpression.
 * Never a Scan. Pages behind the same signed next_token as the exceptions listing. Each run carries
 * the latest upload of each side (files.ts), so a listing shows a run that a rejected upload left behind.
 */
import { RUN_RECORD_TYPE, TABLES } from '../shared/resources.ts';
import { datasetDateKey } from '../shared/keys.ts';
import { filterHash } from './pagination.ts';
import { readPage } from './paged-query.ts';
import type { ApiRun } from '../shared/api-types.ts';
import type { RunRecord } from '../shared/tables/runs.ts';
import { withLatestUploads } from './files.ts';
import type { RunsQuery } from './schemas.ts';
import type { QueryStore } from './ports.ts';
import type { DatasetScope } from './listing.ts';

type RunIndex = keyof typeof TABLES.runs.indexes;

export interface RunsPlan {
  readonly index: RunIndex;
  readonly partition: { readonly attribute: string; readonly value: string };
  readonly filters: { readonly attribute: string; readonly value: string }[];
  readonly within?: { readonly attribute: string; readonly values: readonly string[] };
}

export function planRunsQuery(
  request: Pick<RunsQuery, 'dataset' | 'business_date' | 'status'>,
  datasets: DatasetScope = 'all',
): RunsPlan {
  // One entitled dataset is a dataset filter; several an IN condition (listing.ts planQuery).
  const query =
    datasets !== 'all' && request.dataset === undefined && datasets.length === 1
      ? { ...request, dataset: datasets[0] }
      : request;
  const within =
    datasets !== 'all' && query.dataset === undefined ? { attribute: 'dataset', values: datasets } : undefined;
  const filters: RunsPlan['filters'] = [];
  if (query.status !== undefined) filters.push({ attribute: 'status', value: query.status });
  if (query.dataset !== undefined && query.business_date !== undefined) {
    return {
      index: 'by_dataset_date',
      partition: { attribute: 'dataset_date', value: datasetDateKey(query.dataset, query.business_date) },
      filters,
    };
  }
  if (query.dataset !== undefined) filters.unshift({ attribute: 'dataset', value: query.dataset });
  return {
    index: 'by_requested',
    partition: { attribute: 'record_type', value: RUN_RECORD_TYPE },
    filters,
    ...(within ? { within } : {}),
  };
}

/** At most this many DynamoDB calls per request (see paged-query.ts). */
const MAX_QUERY_CALLS = 10;

export interface RunsResult {
  readonly items: ApiRun[];
  readonly count: number;
  readonly next_token: string | null;
}

export async function listRuns(
  query: RunsQuery,
  deps: { store: QueryStore; paginationSecret: string },
  datasets: DatasetScope = 'all',
): Promise<RunsResult> {
  const page = await readPage({
    plan: planRunsQuery(query, datasets),
    table: TABLES.runs,
    limit: query.limit,
    nextToken: query.next_token,
    filterHash: filterHash({
      scope: 'runs',
      dataset: query.dataset,
      business_date: query.business_date,
      status: query.status,
    }),
    secret: deps.paginationSecret,
    maxCalls: MAX_QUERY_CALLS,
    query: (request) => deps.store.queryRuns(request),
  });
  const items = await withLatestUploads(page.items as unknown as RunRecord[], deps.store);
  return { items, count: items.length, next_token: page.next_token };
}
