/**
 * GET /runs/{run_id}/report: the run report (functions/recon/report.ts) from the stored run and
 * the exceptions it recorded (the exceptions table's by_run_sharded index), as Markdown or HTML.
 */
import { renderReport, SAMPLE_PER_TYPE, type ReportException, type ReportFormat } from '../recon/report.ts';
import type { StoredItem } from '../shared/tables/index-query.ts';
import type { RunRecord } from '../shared/tables/runs.ts';
import { ApiError } from './errors.ts';
import type { QueryStore } from './ports.ts';

/**
 * Index calls for one report at most: the report shows a sample of each type (the counts come from
 * the summary), so it reads the run's index entries (keys and type) until every type in the
 * summary has its sample, then only the sample's items whole. It read the first 5,000 items whole
 * (1.6-2.2 s at 5,322 exceptions, locally), and a type first met past them had no sample.
 */
const MAX_ENTRY_PAGES = 20;
const ENTRY_PAGE_SIZE = 1000;

/**
 * What the report shows of an exception (every field of ReportException: a new one is a type error
 * here until it is read), and `dataset`, which picks its masker.
 */
const REPORT_FIELDS: Readonly<Record<keyof ReportException, true>> = {
  exception_type: true,
  key: true,
  source: true,
  target: true,
  diffs: true,
  lines: true,
  reason: true,
  policy_severity: true,
};
const REPORT_ATTRIBUTES = ['dataset', ...Object.keys(REPORT_FIELDS)];

export const REPORT_CONTENT_TYPES: Readonly<Record<ReportFormat, string>> = {
  md: 'text/markdown; charset=utf-8',
  html: 'text/html; charset=utf-8',
};

/**
 * `view`: each sample exception as the caller may see it (sensitive-view.ts: a viewer gets the
 * dataset's sensitive values as their tokens, as in GET /exceptions); unchanged if not given.
 */
export async function runReport(
  run: RunRecord,
  format: ReportFormat,
  deps: { store: QueryStore },
  view: (record: Record<string, unknown>) => Promise<Record<string, unknown>> = async (record) => record,
): Promise<string> {
  const runId = run.run_id;
  if (run.summary === undefined)
    throw new ApiError(
      409,
      'RUN_NOT_COMPLETED',
      `run ${runId} is ${run.status}; a report needs a completed run${run.error ? ` (${run.error.code}: ${run.error.message})` : ''}`,
      { run_id: runId, status: run.status },
    );
  const wanted = new Map(
    Object.entries(run.summary.exceptions).map(([type, count]) => [type, Math.min(SAMPLE_PER_TYPE, count ?? 0)]),
  );
  const sample: StoredItem[] = [];
  const taken = new Map<string, number>();
  const unfilled = () => [...wanted].some(([type, n]) => (taken.get(type) ?? 0) < n);
  let startKey: Record<string, unknown> | undefined;
  for (let page = 0; page < MAX_ENTRY_PAGES && unfilled(); page++) {
    // Newest first, as a listing of the run: the sample is the newest of each type.
    const out = await deps.store.queryExceptionEntries({
      index: 'by_run_sharded',
      partition: { attribute: 'run_id', value: runId },
      filters: [],
      limit: ENTRY_PAGE_SIZE,
      attributes: ['exception_type'],
      ...(startKey === undefined ? {} : { startKey }),
    });
    for (const entry of out.items) {
      const type = String(entry.exception_type);
      const n = taken.get(type) ?? 0;
      if (n >= (wanted.get(type) ?? 0)) continue;
      taken.set(type, n + 1);
      sample.push(entry);
    }
    startKey = out.lastKey;
    if (startKey === undefined) break;
  }
  const read = await deps.store.wholeExceptions(sample, REPORT_ATTRIBUTES);
  const exceptions = (await Promise.all(read.map(view))) as unknown as ReportException[];
  return renderReport(
    {
      title: `Tally run ${run.run_id}: ${run.dataset} ${run.business_date}`,
      source: `s3://${run.source.bucket}/${run.source.key}`,
      target: `s3://${run.target.bucket}/${run.target.key}`,
      policyVersion: run.policy_version ?? '-',
      policyHash: run.policy_hash ?? '-',
      summary: run.summary,
      exceptions,
      samplePerType: SAMPLE_PER_TYPE,
      triage: {
        state: run.triage?.state ?? 'PENDING',
        ...(run.triage?.reason ? { reason: run.triage.reason } : {}),
        ...(run.triage?.by ? { by: run.triage.by } : {}),
        ...(run.triage_plan ? { plan: run.triage_plan } : {}),
      },
      ...(run.cost ? { triageCost: run.cost } : {}),
    },
    format,
  );
}
