/**
 * GET /runs/{run_id}/report: the run report (functions/recon/report.ts) from the stored run and
 * the exceptions it recorded (the exceptions table's by_run_sharded index), as Markdown or HTML.
 */
import { renderReport, type ReportException, type ReportFormat } from '../recon/report.ts';
import { ApiError, NotFoundError } from './errors.ts';
import type { QueryStore } from './ports.ts';

/** DynamoDB calls for one report at most: the report shows a sample per type, the counts come from the summary. */
const MAX_EXCEPTION_PAGES = 10;
const PAGE_SIZE = 500;

export const REPORT_CONTENT_TYPES: Readonly<Record<ReportFormat, string>> = {
  md: 'text/markdown; charset=utf-8',
  html: 'text/html; charset=utf-8',
};

export async function runReport(runId: string, format: ReportFormat, deps: { store: QueryStore }): Promise<string> {
  const run = await deps.store.getRun(runId);
  if (!run) throw new NotFoundError(`no run with id ${runId}`, { run_id: runId });
  if (run.summary === undefined)
    throw new ApiError(
      409,
      'RUN_NOT_COMPLETED',
      `run ${runId} is ${run.status}; a report needs a completed run${run.error ? ` (${run.error.code}: ${run.error.message})` : ''}`,
      { run_id: runId, status: run.status },
    );
  const exceptions: ReportException[] = [];
  let startKey: Record<string, unknown> | undefined;
  for (let page = 0; page < MAX_EXCEPTION_PAGES; page++) {
    const out = await deps.store.queryExceptions({
      index: 'by_run_sharded',
      partition: { attribute: 'run_id', value: runId },
      filters: [],
      limit: PAGE_SIZE,
      ...(startKey === undefined ? {} : { startKey }),
    });
    exceptions.push(...(out.items as unknown as ReportException[]));
    startKey = out.lastKey;
    if (startKey === undefined) break;
  }
  return renderReport(
    {
      title: `Tally run ${run.run_id}: ${run.dataset} ${run.business_date}`,
      source: `s3://${run.source.bucket}/${run.source.key}`,
      target: `s3://${run.target.bucket}/${run.target.key}`,
      policyVersion: run.policy_version ?? '-',
      policyHash: run.policy_hash ?? '-',
      summary: run.summary,
      exceptions,
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
