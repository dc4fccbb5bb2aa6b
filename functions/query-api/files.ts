/**
 * The intake view: GET /files lists the current file of each side of each dataset-day, accepted
 * or rejected with its reason, newest ingest first. A date reads its own partition
 * (by_business_date, dataset as a filter: at most two files per dataset there), a dataset its
 * own (by_dataset), neither the constant partition of by_ingested; status is a filter. Never a
 * Scan. Pages behind the same signed next_token as the other listings.
 *
 * Runs read the same records to say whether the run shown is behind the latest upload of a side.
 */
import type { ApiFile, ApiRun, LatestUpload } from '../shared/api-types.ts';
import { datasetDateKey } from '../shared/keys.ts';
import { FILE_RECORD_TYPE, TABLES } from '../shared/resources.ts';
import type { FileQueries, FileRecord } from '../shared/tables/files.ts';
import type { RunRecord } from '../shared/tables/runs.ts';
import type { Page } from '../shared/api-types.ts';
import { readPage, type PagePlan } from './paged-query.ts';
import { filterHash } from './pagination.ts';
import { toApiFile, toApiRun } from './records.ts';
import type { FilesQuery } from './schemas.ts';
import type { DatasetScope } from './listing.ts';

type FileIndex = keyof typeof TABLES.files.indexes;

export interface FilesPlan extends PagePlan {
  readonly index: FileIndex;
}

export function planFilesQuery(
  request: Pick<FilesQuery, 'dataset' | 'business_date' | 'status'>,
  datasets: DatasetScope = 'all',
): FilesPlan {
  // One entitled dataset is a dataset filter; several an IN condition (listing.ts planQuery).
  const query =
    datasets !== 'all' && request.dataset === undefined && datasets.length === 1
      ? { ...request, dataset: datasets[0] }
      : request;
  const within =
    datasets !== 'all' && query.dataset === undefined ? { within: { attribute: 'dataset', values: datasets } } : {};
  const filters: { attribute: string; value: string }[] = [];
  if (query.status !== undefined) filters.push({ attribute: 'status', value: query.status });
  if (query.business_date !== undefined) {
    if (query.dataset !== undefined) filters.unshift({ attribute: 'dataset', value: query.dataset });
    return {
      index: 'by_business_date',
      partition: { attribute: 'business_date', value: query.business_date },
      filters,
      ...within,
    };
  }
  if (query.dataset !== undefined)
    return { index: 'by_dataset', partition: { attribute: 'dataset', value: query.dataset }, filters };
  return {
    index: 'by_ingested',
    partition: { attribute: 'record_type', value: FILE_RECORD_TYPE },
    filters,
    ...within,
  };
}

/** At most this many DynamoDB calls per request (see paged-query.ts). */
const MAX_QUERY_CALLS = 10;

export async function listFiles(
  query: FilesQuery,
  deps: { store: FileQueries; paginationSecret: string },
  datasets: DatasetScope = 'all',
): Promise<Page<ApiFile>> {
  const page = await readPage({
    plan: planFilesQuery(query, datasets),
    table: TABLES.files,
    limit: query.limit,
    nextToken: query.next_token,
    filterHash: filterHash({
      scope: 'files',
      dataset: query.dataset,
      business_date: query.business_date,
      status: query.status,
    }),
    secret: deps.paginationSecret,
    maxCalls: MAX_QUERY_CALLS,
    query: (request) => deps.store.queryFiles(request),
  });
  return { items: page.items.map((item) => toApiFile(item)), count: page.items.length, next_token: page.next_token };
}

function latestUpload(run: RunRecord, file: FileRecord | undefined): LatestUpload | null {
  if (!file) return null;
  const { dataset: _d, business_date: _b, side, ...upload } = toApiFile(file);
  const used = run[side];
  return { ...upload, in_run: used.key === file.key && used.etag === file.etag };
}

/**
 * Runs in their API form with the latest upload of each side: one read of the files table per
 * dataset-day (a partition of at most two items), shared by the runs of that day.
 */
export async function withLatestUploads(runs: readonly RunRecord[], store: FileQueries): Promise<ApiRun[]> {
  const days = new Map<string, Promise<FileRecord[]>>();
  for (const run of runs) {
    const day = datasetDateKey(run.dataset, run.business_date);
    if (!days.has(day)) days.set(day, store.currentFiles(run.dataset, run.business_date));
  }
  return Promise.all(
    runs.map(async (run) => {
      const files = await (days.get(datasetDateKey(run.dataset, run.business_date)) as Promise<FileRecord[]>);
      const of = (side: 'source' | 'target') =>
        latestUpload(
          run,
          files.find((f) => f.side === side),
        );
      return { ...toApiRun(run), latest_uploads: { source: of('source'), target: of('target') } } as ApiRun;
    }),
  );
}
