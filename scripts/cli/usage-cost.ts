/** `tally usage`: what triage's model calls cost per day against the daily budget, or one run's cost. */
import { parseArgs } from 'node:util';
import type { ApiRun, UsageReport } from '../../functions/shared/api-types.ts';
import { formatUsd } from '../../functions/shared/tables/usage.ts';
import { triagesPlanned } from '../../functions/shared/tables/runs.ts';
import {
  apiOptionsHelp,
  apiParseOptions,
  clientFor,
  intOption,
  processIo,
  reportApiError,
  table,
  type CliIo,
} from './api-client.ts';
import { UsageError } from './usage.ts';

export const usageHelp = `Usage: tally usage [options]

What triage's model calls cost, per UTC day, today first: dollars, input and output tokens, calls,
and what is left of the daily budget (TALLY_TRIAGE_DAILY_BUDGET_USD; past it triage answers with
the rules). With --run, what one run's triage has cost so far.

Options:
  --days N                1-90 days, today included                        [default: 7]
  --run RUN_ID            one run's cost instead

Common options:
${apiOptionsHelp}

Examples:
  npx tally usage
  npx tally usage --days 30 --json
  npx tally usage --run run-2025-12-10-3f2a9c1b
`;

export async function usageCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...apiParseOptions, days: { type: 'string' }, run: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.stdout.write(usageHelp);
    return 0;
  }
  if (positionals.length > 0)
    throw new UsageError(`usage takes no arguments, got "${positionals.join(' ')}"`, usageHelp);
  if (values.run !== undefined && values.days !== undefined)
    throw new UsageError('--run and --days do not go together', usageHelp);
  const days = intOption('days', values.days, 1, 90, usageHelp);
  const api = clientFor(values, io, usageHelp);
  try {
    if (values.run !== undefined) {
      const run = await api.request<ApiRun>('GET', `/runs/${encodeURIComponent(values.run)}`);
      const cost = run.cost ?? { micro_usd: 0, input_tokens: 0, output_tokens: 0, calls: 0 };
      if (values.json) io.stdout.write(`${JSON.stringify({ run_id: run.run_id, cost })}\n`);
      else
        io.stdout.write(
          `${run.run_id}: ${formatUsd(cost.micro_usd)} for ${cost.calls} model call(s), ` +
            `${cost.input_tokens} input and ${cost.output_tokens} output tokens` +
            // `runs` shows the triages planned; those the rules answered cost no call.
            (run.triage_plan && cost.calls < triagesPlanned(run.triage_plan)
              ? ` (${triagesPlanned(run.triage_plan)} triages planned: the rest were answered by the rules, or are still to come)`
              : '') +
            '\n',
        );
      return 0;
    }
    const report = await api.request<UsageReport>('GET', '/usage', {
      query: { days: days === undefined ? undefined : String(days) },
    });
    if (values.json) {
      io.stdout.write(`${JSON.stringify(report)}\n`);
      return 0;
    }
    io.stdout.write(
      table(
        ['DAY', 'COST', 'CALLS', 'INPUT TOKENS', 'OUTPUT TOKENS', 'BUDGET LEFT'],
        report.days.map((d) => [
          d.day,
          formatUsd(d.micro_usd),
          String(d.calls),
          String(d.input_tokens),
          String(d.output_tokens),
          d.remaining_micro_usd === null ? '-' : formatUsd(d.remaining_micro_usd),
        ]),
      ),
    );
    const budget =
      report.budget_micro_usd === null ? 'no daily budget' : `daily budget ${formatUsd(report.budget_micro_usd)}`;
    io.stderr.write(`${report.days.length} day(s): ${formatUsd(report.total.micro_usd)} in all; ${budget}\n`);
    return 0;
  } catch (error) {
    return reportApiError('usage', io, error);
  }
}
