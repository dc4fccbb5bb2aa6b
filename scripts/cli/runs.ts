/**
 * `tally runs`: reconciliation runs (via the API) and what an analyst does with one the runaway
 * guard held: `tally runs triage RUN_ID --release` starts its triage, `--abandon` leaves its
 * exceptions stored and untriaged.
 */
import { parseArgs } from 'node:util';
import type { ApiRun } from '../../functions/shared/api-types.ts';
import { RUNS_LIMIT } from '../../functions/query-api/schemas.ts';
import { RUN_TRIAGE_STATES, storedText, triagesPlanned } from '../../functions/shared/tables/runs.ts';
import {
  apiOptionsHelp,
  apiParseOptions,
  clientFor,
  intOption,
  processIo,
  readPages,
  reportApiError,
  table,
  type CliIo,
} from './api-client.ts';
import { filterParseOptions } from './filters.ts';
import { UsageError } from './usage.ts';

export const runsHelp = `Usage: tally runs [list] [options]
       tally runs show RUN_ID [--json]
       tally runs triage RUN_ID --release | --abandon

Reconciliation runs, newest first, with their triage: ${RUN_TRIAGE_STATES.join(', ')}. TRIAGES is
what its dispatch planned (one per pattern, one per singleton); MODEL CALLS what triage has spent
so far (fewer where the rules answered: no model is configured, or the models were down). A run whose
break rate or exception count is above its policy's triage.hold_above is HELD: its exceptions are
stored, no model is called, and the business events topic is told. Check its files, then:

  triage RUN_ID --release   start its triage (its exceptions are dispatched by pattern)
  triage RUN_ID --abandon   leave its exceptions stored, untriaged

Options (list):
  --dataset NAME          e.g. trades
  --date YYYY-MM-DD       business date (with --dataset)
  --limit N               ${RUNS_LIMIT.min}-${RUNS_LIMIT.max} per page                                  [default: ${RUNS_LIMIT.default}]
  --next-token TOKEN      the next page, as printed after the previous one
  --all                   follow every page

Common options:
${apiOptionsHelp}

Examples:
  npx tally runs
  npx tally runs show run-2025-12-10-3f2a
  npx tally runs triage run-2025-12-10-3f2a --release
`;

export async function runsCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...apiParseOptions,
      dataset: filterParseOptions.dataset,
      date: filterParseOptions.date,
      limit: { type: 'string' },
      'next-token': { type: 'string' },
      all: { type: 'boolean', default: false },
      release: { type: 'boolean', default: false },
      abandon: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.stdout.write(runsHelp);
    return 0;
  }
  const [action = 'list', runId, ...extra] = positionals;
  if (extra.length > 0) throw new UsageError(`unexpected arguments "${extra.join(' ')}"`, runsHelp);
  const api = clientFor(values, io, runsHelp);
  try {
    if (action === 'list') {
      if (runId !== undefined) throw new UsageError('runs list takes no run id (use runs show RUN_ID)', runsHelp);
      const query = {
        dataset: values.dataset,
        business_date: values.date,
        limit: intOption('limit', values.limit, RUNS_LIMIT.min, RUNS_LIMIT.max, runsHelp)?.toString(),
      };
      const { items, next } = await readPages<ApiRun>(api, '/runs', query, {
        token: values['next-token'],
        all: values.all,
      });
      if (values.json) {
        io.stdout.write(`${JSON.stringify({ items, count: items.length, next_token: next })}\n`);
        return 0;
      }
      if (items.length === 0) io.stdout.write('No runs match.\n');
      else
        io.stdout.write(
          table(
            ['RUN', 'DATASET', 'DATE', 'STATUS', 'OUTCOME', 'TRIAGE', 'TRIAGES', 'MODEL CALLS'],
            items.map((r) => [
              r.run_id,
              r.dataset,
              r.business_date,
              r.status,
              r.summary?.outcome ?? '-',
              r.triage?.state ?? '-',
              plannedTriages(r),
              r.triage_plan ? String(r.cost?.calls ?? 0) : '-',
            ]),
          ),
        );
      const held = items.filter((r) => r.triage?.state === 'HELD');
      for (const r of held) io.stderr.write(`HELD ${r.run_id}: ${r.triage?.reason ?? ''}\n`);
      io.stderr.write(`${items.length} run(s)${next ? `; more: --next-token ${next}` : ''}\n`);
      return 0;
    }
    if (runId === undefined) throw new UsageError(`runs ${action} needs a RUN_ID`, runsHelp);
    if (action === 'show') {
      const run = await api.request<ApiRun>('GET', `/runs/${encodeURIComponent(runId)}`);
      io.stdout.write(values.json ? `${JSON.stringify(run)}\n` : describeRun(run));
      return 0;
    }
    if (action === 'triage') {
      if (values.release === values.abandon)
        throw new UsageError('runs triage needs exactly one of --release or --abandon', runsHelp);
      const run = await api.request<ApiRun>('POST', `/runs/${encodeURIComponent(runId)}/triage`, {
        body: { action: values.release ? 'release' : 'abandon' },
      });
      io.stdout.write(
        values.json
          ? `${JSON.stringify(run)}\n`
          : `run ${run.run_id}: triage ${run.triage?.state ?? '-'} by ${run.triage?.by ?? '-'} at ${run.triage?.at ?? '-'}\n`,
      );
      return 0;
    }
    throw new UsageError(`unknown runs action "${action}"; expected list, show or triage`, runsHelp);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    return reportApiError('runs', io, error);
  }
}

/**
 * The triages a dispatched run planned: one per pattern plus one per singleton. Each is a model
 * call unless the chain answers it with the rules (usage --run counts the calls made).
 */
function plannedTriages(run: ApiRun): string {
  const plan = run.triage_plan;
  return plan ? `${triagesPlanned(plan)} (${plan.patterns} patterns + ${plan.singletons} singletons)` : '-';
}

export function describeRun(run: ApiRun): string {
  const s = run.summary;
  const lines = [
    `run       ${run.run_id}`,
    `dataset   ${run.dataset} ${run.business_date}`,
    `status    ${run.status}${s?.outcome ? ` (${s.outcome})` : ''}`,
    ...(s
      ? [
          `stored    ${storedText(s)}` +
            ((s.cut_for_storage ?? 0) > 0
              ? `; ${s.cut_for_storage} cut to fit one DynamoDB item (each says what in _omitted)`
              : ''),
        ]
      : []),
    `triage    ${run.triage?.state ?? '-'}${run.triage?.reason ? ` — ${run.triage.reason}` : ''}${run.triage?.by ? ` (by ${run.triage.by})` : ''}`,
  ];
  if (run.triage_plan) {
    lines.push(
      `triages   ${plannedTriages(run)} planned; ${run.triage_plan.members} exception(s) take their pattern's triage`,
    );
    lines.push(
      `model calls ${run.cost?.calls ?? 0} so far (the rules answer without one; npx tally usage --run for cost)`,
    );
  }
  if (run.triage?.state === 'HELD')
    lines.push(`next      npx tally runs triage ${run.run_id} --release   (or --abandon)`);
  return `${lines.join('\n')}\n`;
}
