/** `tally patterns RUN_ID` and `tally patterns ack|resolve|false-positive RUN_ID PATTERN_ID`: a run's break patterns. */
import { parseArgs } from 'node:util';
import type { ApiPattern, PatternActionResponse, PatternsResponse } from '../../functions/shared/api-types.ts';
import {
  PATTERN_ACTION_NAMES,
  PATTERN_ACTIONS,
  TRANSITION_VERBS,
  transitionSources,
  type PatternAction,
} from '../../functions/shared/exception-lifecycle.ts';
import {
  apiOptionsHelp,
  apiParseOptions,
  clientFor,
  processIo,
  reportApiError,
  table,
  type CliIo,
} from './api-client.ts';
import { UsageError } from './usage.ts';

/** Subcommand per pattern action (ack -> acknowledge, ...), with the lifecycle's verbs. */
const ACTION_COMMANDS: Readonly<Record<string, PatternAction>> = Object.fromEntries(
  PATTERN_ACTION_NAMES.map((action) => [TRANSITION_VERBS[PATTERN_ACTIONS[action]].command, action]),
);

function actionHelp(): string {
  return PATTERN_ACTION_NAMES.map((action) => {
    const to = PATTERN_ACTIONS[action];
    const usage = `${TRANSITION_VERBS[to].command} RUN_ID PATTERN_ID`;
    return `  ${usage.padEnd(38)}every member ${transitionSources(to).join(' or ')} -> ${to}`;
  }).join('\n');
}

export const patternsHelp = `Usage: tally patterns RUN_ID [options]
       tally patterns <action> RUN_ID PATTERN_ID [options]

A run's break patterns: exceptions of the same type whose differences have the same shape (an
amount ×100, a date a day late), with the values most of their members share ("97.8% currency=JPY").
Patterns of at least the policy's triage.pattern_min_members members are saved and triaged once;
the others' exceptions are singletons, triaged one by one.

Actions (each member is moved on its own, under its own version, with its own history entry; a
member that changed since it was read is a conflict, one the lifecycle does not allow is skipped):
${actionHelp()}

Options:
  --note TEXT             (actions) recorded in each member's history with the change

Common options:
${apiOptionsHelp}

Examples:
  npx tally patterns run-2025-12-10-ab12cd
  npx tally exceptions list --pattern pat_0123456789abcdef --run run-2025-12-10-ab12cd
  npx tally patterns ack run-2025-12-10-ab12cd pat_0123456789abcdef --note "JPY sent in yen hundredths"
`;

export async function patternsCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...apiParseOptions, note: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) {
    io.stdout.write(patternsHelp);
    return 0;
  }
  const [first, ...rest] = positionals;
  if (first === undefined) throw new UsageError('name a run: tally patterns RUN_ID', patternsHelp);
  const action = ACTION_COMMANDS[first];
  if (action === undefined) {
    if (rest.length > 0)
      throw new UsageError(`patterns takes one run id, got "${positionals.join(' ')}"`, patternsHelp);
    if (values.note !== undefined) throw new UsageError('--note goes with an action', patternsHelp);
  } else if (rest.length !== 2) throw new UsageError(`${first} takes a run id and a pattern id`, patternsHelp);
  const api = clientFor(values, io, patternsHelp);
  const command = action === undefined ? 'patterns' : `patterns ${first}`;
  try {
    if (action === undefined) return await list(first, values.json === true, api, io);
    const [runId, patternId] = rest as [string, string];
    const outcome = await api.request<PatternActionResponse>(
      'POST',
      `/runs/${encodeURIComponent(runId)}/patterns/${encodeURIComponent(patternId)}/actions`,
      { body: { action, ...(values.note === undefined ? {} : { note: values.note }) } },
    );
    if (values.json) {
      io.stdout.write(`${JSON.stringify(outcome)}\n`);
    } else {
      const notApplied = outcome.results.filter((r) => r.outcome !== 'APPLIED');
      if (notApplied.length > 0)
        io.stdout.write(
          table(
            ['EXCEPTION', 'OUTCOME', 'VERSION', 'WHY'],
            notApplied.map((r) => [r.exception_id, r.outcome, String(r.version), r.reason ?? '-']),
            { 3: 100 },
          ),
        );
      const { APPLIED, CONFLICT, SKIPPED } = outcome.counts;
      io.stdout.write(
        `${patternId}: ${APPLIED} moved to ${PATTERN_ACTIONS[action]}, ${CONFLICT} conflict(s), ${SKIPPED} skipped\n`,
      );
      if (!outcome.complete) io.stdout.write('  the request ran out of time: run the same action again for the rest\n');
    }
    return outcome.counts.CONFLICT > 0 ? 1 : 0;
  } catch (error) {
    return reportApiError(command, io, error);
  }
}

async function list(runId: string, json: boolean, api: ReturnType<typeof clientFor>, io: CliIo): Promise<number> {
  const response = await api.request<PatternsResponse>('GET', `/runs/${encodeURIComponent(runId)}/patterns`);
  if (json) {
    io.stdout.write(`${JSON.stringify(response)}\n`);
    return 0;
  }
  if (response.items.length === 0) io.stdout.write('No saved patterns for this run.\n');
  else
    io.stdout.write(
      table(
        ['PATTERN', 'SIZE', 'DESCRIPTION', 'SEGMENTS', 'BY STATUS', 'TRIAGE'],
        response.items.map((p) => [
          p.pattern_id,
          String(p.size),
          p.description,
          segmentsText(p),
          byStatusText(p),
          p.triage ? `${p.triage.severity}: ${p.triage.summary}` : '-',
        ]),
        { 2: 60, 3: 60, 5: 60 },
      ),
    );
  const s = response.summary;
  io.stderr.write(
    s === null
      ? `${response.items.length} pattern(s); the run recorded no pattern counts (from before patterns, or not yet stored)\n`
      : `${s.patterns} pattern(s) with ${s.members} member(s), ${s.singletons} singleton(s): ${s.patterns + s.singletons} triage call(s)\n`,
  );
  return 0;
}

/** `currency=JPY 100%, account_id=ACCT1004 61%`: the largest shares first. */
function segmentsText(p: ApiPattern): string {
  if (p.segments.length === 0) return '-';
  return p.segments
    .slice(0, 3)
    .map((s) => `${s.field}=${s.value} ${formatShare(s.share)}`)
    .join(', ');
}

export function formatShare(share: number): string {
  return `${(Math.round(share * 1000) / 10).toString()}%`;
}

function byStatusText(p: ApiPattern): string {
  const text = Object.entries(p.members_by_status)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([status, n]) => `${status} ${n}`)
    .join(', ');
  return `${text || '-'}${p.members_complete ? '' : ' (counting stopped)'}`;
}
