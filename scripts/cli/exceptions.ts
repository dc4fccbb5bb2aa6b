/** `tally exceptions list|get|ack|resolve|false-positive|reopen`: work exceptions through the API. */
import { parseArgs } from 'node:util';
import {
  TRANSITION_VERBS,
  transitionSources,
  type ExceptionStatus,
} from '../../functions/shared/exception-lifecycle.ts';
import type { ApiException } from '../../functions/shared/api-types.ts';
import {
  apiOptionsHelp,
  apiParseOptions,
  clientFor,
  intOption,
  keyText,
  oneOf,
  processIo,
  reportApiError,
  readPages,
  table,
  type ApiClient,
  type CliIo,
} from './api-client.ts';
import { filterOptionsHelp, filterParseOptions, filterQuery } from './filters.ts';
import { DUE_SORT_CAP, LIST_SORTS } from '../../functions/shared/deadlines.ts';
import { UsageError } from './usage.ts';

/** Statuses an analyst can move an exception to, in the order the lifecycle names their verbs. */
const TARGETS = (Object.keys(TRANSITION_VERBS) as ExceptionStatus[]).filter((to) => transitionSources(to).length > 0);

/** Subcommand per target status (ack -> ACKNOWLEDGED, ...), from the lifecycle module. */
const TRANSITION_COMMANDS: Readonly<Record<string, ExceptionStatus>> = Object.fromEntries(
  TARGETS.map((to) => [TRANSITION_VERBS[to].command, to]),
);

/** `  ack ID                  OPEN -> ACKNOWLEDGED`: one line per move an analyst may make. */
function transitionHelp(): string {
  return TARGETS.map(
    (to) => `  ${`${TRANSITION_VERBS[to].command} ID`.padEnd(24)}${transitionSources(to).join(' or ')} -> ${to}`,
  ).join('\n');
}

const SUBCOMMANDS = ['list', 'get', ...Object.keys(TRANSITION_COMMANDS)];

export const exceptionsHelp = `Usage: tally exceptions <subcommand> [options]

List, read and work the exceptions reconciliation found.

Subcommands:
  list                    newest first, filtered (see below)
  get ID                  one exception: diffs, triage, citations, history
${transitionHelp()}

list options:
${filterOptionsHelp({ dateNeedsDataset: true })}
  --pattern PATTERN_ID    the members of one break pattern (tally patterns RUN_ID lists them)
  --overdue               only open exceptions past their due date
  --sort created|due      newest first (default), or soonest due first (one page, at most ${DUE_SORT_CAP} read)
  --limit N               1-200 per page                                  [default: 25]
  --next-token TOKEN      the next page, as printed after the previous one
  --all                   follow every page

${Object.keys(TRANSITION_COMMANDS).join(', ')} options (the current version is read first):
  --note TEXT             recorded in the history with the change
  --assignee NAME         assign at the same time

Common options:
${apiOptionsHelp}

Examples:
  npx tally exceptions list --status OPEN --dataset trades --date 2025-12-10
  npx tally exceptions list --overdue --sort due
  npx tally exceptions ack 5f1c... --note "checking with the desk" --assignee ana
`;

export async function exceptionsCommand(argv: string[], io: CliIo = processIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ...apiParseOptions,
      ...filterParseOptions,
      limit: { type: 'string' },
      'next-token': { type: 'string' },
      all: { type: 'boolean', default: false },
      note: { type: 'string' },
      assignee: { type: 'string' },
      pattern: { type: 'string' },
      overdue: { type: 'boolean', default: false },
      sort: { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  const [sub, ...args] = positionals;
  if (values.help) {
    io.stdout.write(exceptionsHelp);
    return 0;
  }
  if (sub === undefined)
    throw new UsageError(
      `name a subcommand: ${SUBCOMMANDS.slice(0, -1).join(', ')} or ${SUBCOMMANDS.at(-1)}`,
      exceptionsHelp,
    );
  const api = clientFor(values, io, exceptionsHelp);
  try {
    if (sub === 'list') {
      if (args.length > 0) throw new UsageError(`list takes no arguments, got "${args.join(' ')}"`, exceptionsHelp);
      return await list(api, values, io);
    }
    const target = TRANSITION_COMMANDS[sub];
    if (sub !== 'get' && target === undefined) throw new UsageError(`unknown subcommand "${sub}"`, exceptionsHelp);
    const [id, ...extra] = args;
    if (id === undefined || extra.length > 0)
      throw new UsageError(`${sub} takes exactly one exception id`, exceptionsHelp);
    if (sub === 'get') {
      const record = await api.request<ApiException>('GET', `/exceptions/${encodeURIComponent(id)}`);
      io.stdout.write(values.json ? `${JSON.stringify(record, null, 2)}\n` : describe(record));
      return 0;
    }
    return await transition(api, id, target as ExceptionStatus, values, io, sub);
  } catch (error) {
    return reportApiError(`exceptions ${sub}`, io, error);
  }
}

async function list(api: ApiClient, values: Record<string, string | boolean | undefined>, io: CliIo): Promise<number> {
  const str = (name: string) => values[name] as string | undefined;
  const query = {
    ...filterQuery(values, exceptionsHelp, { dateNeedsDataset: true }),
    pattern_id: str('pattern'),
    overdue: values.overdue === true ? 'true' : undefined,
    sort: oneOf('sort', str('sort'), LIST_SORTS, exceptionsHelp),
    limit: intOption('limit', str('limit'), 1, 200, exceptionsHelp)?.toString(),
  };
  if (query.sort === 'due' && (str('next-token') !== undefined || values.all === true))
    throw new UsageError('--sort due returns one page: leave out --next-token and --all', exceptionsHelp);
  const { items, next } = await readPages<ApiException>(api, '/exceptions', query, {
    token: str('next-token'),
    all: values.all === true,
  });

  if (values.json) {
    io.stdout.write(`${JSON.stringify({ items, count: items.length, next_token: next })}\n`);
    return 0;
  }
  if (items.length === 0) io.stdout.write('No exceptions match.\n');
  else {
    io.stdout.write(
      table(
        ['ID', 'TYPE', 'STATUS', 'SEVERITY', 'DATASET', 'DATE', 'KEY', 'ASSIGNEE', 'CREATED', 'DUE'],
        items.map((e) => [
          e.exception_id,
          e.exception_type,
          e.status,
          String(e.severity ?? `(${String(e.policy_severity ?? '-')})`),
          e.dataset,
          e.business_date,
          keyText(e.key),
          String(e.assignee ?? '-'),
          String(e.created_at ?? ''),
          dueText(e),
        ]),
        { 6: 40 },
      ),
    );
  }
  const more = next ? `; more: --next-token ${next}` : '';
  io.stderr.write(`${items.length} exception(s)${more}\n`);
  return 0;
}

async function transition(
  api: ApiClient,
  id: string,
  status: ExceptionStatus,
  values: Record<string, string | boolean | undefined>,
  io: CliIo,
  sub: string,
): Promise<number> {
  const path = `/exceptions/${encodeURIComponent(id)}`;
  const current = await api.request<ApiException>('GET', path);
  const body = {
    version: current.version,
    status,
    ...(values.note !== undefined ? { note: values.note } : {}),
    ...(values.assignee !== undefined ? { assignee: values.assignee } : {}),
  };
  try {
    const updated = await api.request<ApiException>('PATCH', path, { body });
    io.stdout.write(
      values.json
        ? `${JSON.stringify(updated, null, 2)}\n`
        : `${updated.exception_id}: ${current.status} -> ${updated.status} (version ${updated.version})\n`,
    );
    return 0;
  } catch (error) {
    const code = reportApiError(`exceptions ${sub}`, io, error);
    if ((error as { status?: number }).status === 409)
      io.stderr.write(`  someone changed it after it was read; look at it again: tally exceptions get ${id}\n`);
    return code;
  }
}

/** The due date, marked when past it; `-` when the policy sets no target for its severity. */
function dueText(e: ApiException): string {
  const due = typeof e.due_at === 'string' ? e.due_at : '-';
  return e.overdue === true ? `${due} OVERDUE` : due;
}

function describe(e: ApiException): string {
  const lines: string[] = [];
  const triage = e.triage;
  lines.push(`${e.exception_id}  ${e.exception_type}  ${e.status}  (version ${e.version})`);
  lines.push(`  dataset    ${e.dataset} ${e.business_date}   run ${String(e.run_id ?? '-')}`);
  lines.push(`  key        ${keyText(e.key)}`);
  lines.push(`  severity   ${String(e.severity ?? '-')} (policy: ${String(e.policy_severity ?? '-')})`);
  lines.push(`  assignee   ${String(e.assignee ?? '-')}`);
  if (e.first_seen_at !== undefined || e.due_at !== undefined || e.pending_until !== undefined)
    lines.push(
      `  deadline   first seen ${String(e.first_seen_at ?? e.created_at ?? '-')}, age ${String(e.age_hours ?? '-')} h, due ${dueText(e)}${
        e.pending_until ? `, pending until ${String(e.pending_until)}` : ''
      }`,
    );
  if (e.reason) lines.push(`  reason     ${String(e.reason)}`);
  // Older records or a newer API may lack a field: print what is there.
  const diffs = e.diffs ?? [];
  for (const [i, d] of diffs.entries()) {
    lines.push(
      `  ${i === 0 ? 'diffs     ' : '          '} ${d.field}: ${d.source} -> ${d.target}${d.delta ? ` (delta ${d.delta})` : ''}`,
    );
  }
  if (triage) {
    lines.push(`  triage     ${triage.severity}: ${triage.summary}`);
    lines.push(
      `             by ${triage.provider ?? '?'}/${triage.model ?? '?'}${triage.degraded ? ' (degraded: rules fallback)' : ''}`,
    );
    for (const a of triage.recommended_actions ?? []) lines.push(`             - ${a}`);
    for (const c of triage.policy_citations ?? []) lines.push(`  cites      ${c.document} § ${c.section}`);
  } else {
    lines.push('  triage     not yet triaged');
  }
  lines.push('  history');
  for (const h of e.history ?? []) {
    const change = h.from || h.to ? ` ${h.from ?? ''} -> ${h.to ?? ''}` : '';
    lines.push(`    ${h.at}  ${h.by}  ${h.action}${change}${h.note ? `  "${h.note}"` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}
