/**
 * `tally exceptions list|get|ack|start|resolve|false-positive|reopen|bulk|approve|reject|match|
 * suggestions|decline|retriage`: work exceptions through the API.
 */
import { parseArgs } from 'node:util';
import {
  LATE_ARRIVAL_STATUS,
  TRANSITION_VERBS,
  transitionSources,
  type ExceptionStatus,
} from '../../functions/shared/exception-lifecycle.ts';
import type {
  ApiException,
  ApprovalResponse,
  BulkResponse,
  RetriageAccepted,
  SuggestionsResponse,
} from '../../functions/shared/api-types.ts';
import { MATCH_REASON_CODES } from '../../functions/shared/manual-match.ts';
import { sleep } from '../../functions/shared/retry.ts';
import { answersRequest, RETRIAGE_WAIT_MS } from '../../functions/shared/retriage.ts';
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
  ApiRequestError,
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

/** How often `retriage --wait` looks for the new triage. */
const RETRIAGE_POLL_MS = 1_000;
/** Which of the matched exceptions `retriage` over filters asks for. */
const RETRIAGE_ONLY = ['degraded', 'uncited', 'all'] as const;
/** Past this many, `retriage` over filters wants --yes: each is a model call. */
const RETRIAGE_CONFIRM_OVER = 100;

/** Subcommands beyond list, get and the moves: bulk work, maker-checker decisions, manual matching. */
const WORK_COMMANDS = ['bulk', 'approve', 'reject', 'match', 'suggestions', 'decline', 'retriage'] as const;
const SUBCOMMANDS = ['list', 'get', ...Object.keys(TRANSITION_COMMANDS), ...WORK_COMMANDS];

export const exceptionsHelp = `Usage: tally exceptions <subcommand> [options]

List, read and work the exceptions reconciliation found.

Subcommands:
  list                    newest first, filtered (see below)
  get ID                  one exception: diffs, triage, citations, history
${transitionHelp()}
                          (false-positive waits for an approver who is not you: AWAITING_APPROVAL)
  bulk                    one change to many: --ids ID,ID,... or --filter NAME=VALUE ...
  approve ID              approve the change waiting on it (not your own request)
  reject ID               reject it: back to the status it was asked from
  match ID OTHER_ID       pair a MISSING_IN_TARGET with a MISSING_IN_SOURCE (--reason; needs approval)
  suggestions ID          likely opposite-side matches, scored, with the reasons
  decline ID OTHER_ID     OTHER_ID is not ID's match: never suggested again
  retriage ID             triage it again (one model call, within the daily budget): after a policy or
                          runbook changed, or when its triage cites nothing
  retriage --run RUN_ID   the same for every exception the list filters match (all pages), e.g. a run's
                          answered by the rules while the models were down: --only degraded

list options:
${filterOptionsHelp({ dateNeedsDataset: true })}
  --pattern PATTERN_ID    the members of one break pattern (tally patterns RUN_ID lists them)
  --assignee NAME         assigned to NAME (me: to you)
  --team NAME             in team NAME's queue
  --overdue               only open exceptions past their due date
  --sort created|due      newest first (default), or soonest due first (one page, at most ${DUE_SORT_CAP} read;
                          with --overdue alone or with --status, exact)
  --limit N               1-200 per page                                  [default: 25]
  --next-token TOKEN      the next page, as printed after the previous one
  --all                   follow every page

${Object.keys(TRANSITION_COMMANDS).join(', ')}, approve, reject, match options (the current version is read first):
  --note TEXT             recorded in the history with the change
  --assignee NAME         assign at the same time (me: to you)
  --team NAME             put it in a team's queue at the same time

bulk options (each exception is checked against the version read now, and reported on its own):
  --ids ID,ID,...         the exceptions to change (at most 500)
  --filter NAME=VALUE     instead of --ids: a listing filter (status, exception_type, severity, dataset,
                          business_date, run_id, pattern_id, assignee, team), repeatable; the first 500 matches
  --status S              move each to S
  --assignee NAME         assign each to NAME (me: to you; none: unassign)
  --team NAME             put each in team NAME's queue (none: no team)
  --note TEXT             recorded in each one's history

match options:
  --reason CODE           ${MATCH_REASON_CODES.join(', ')}

retriage options:
  --wait                  with one ID: wait for the new triage (at most ${RETRIAGE_WAIT_MS / 1000} s) and show it
  (list filters)          with no ID: the exceptions to triage again (PENDING ones are left out)
  --only WHICH            ${RETRIAGE_ONLY.join(', ')}: answered by the rules after the models failed or the budget ran
                          out, triaged citing no policy passage, or every match        [default: all]
  --dry-run               list them and ask nothing
  --yes                   needed past ${RETRIAGE_CONFIRM_OVER} exceptions (each is a model call)

Common options:
${apiOptionsHelp}

Examples:
  npx tally exceptions list --status OPEN --dataset trades --date 2025-12-10
  npx tally exceptions list --overdue --sort due
  npx tally exceptions ack 5f1c... --note "checking with the desk" --assignee ana
  npx tally exceptions list --assignee me --status IN_PROGRESS
  npx tally exceptions bulk --ids 5f1c...,9a2b... --status ACKNOWLEDGED
  npx tally exceptions bulk --filter dataset=trades --filter status=OPEN --team fx-ops
  npx tally exceptions suggestions 5f1c...
  npx tally exceptions match 5f1c... 9a2b... --reason KEY_TYPO
  npx tally exceptions retriage 5f1c... --wait
  npx tally exceptions retriage --run run-2025-12-10-... --only degraded --dry-run
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
      team: { type: 'string' },
      pattern: { type: 'string' },
      ids: { type: 'string' },
      filter: { type: 'string', multiple: true },
      reason: { type: 'string' },
      overdue: { type: 'boolean', default: false },
      sort: { type: 'string' },
      wait: { type: 'boolean', default: false },
      only: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      yes: { type: 'boolean', default: false },
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
    if (sub === 'bulk') {
      if (args.length > 0) throw new UsageError(`bulk takes no arguments, got "${args.join(' ')}"`, exceptionsHelp);
      return await bulk(api, values, io);
    }
    if (sub === 'retriage' && args.length === 0) return await retriageMany(api, values, io);
    if (sub === 'match' || sub === 'decline') {
      const [id, other, ...rest] = args;
      if (id === undefined || other === undefined || rest.length > 0)
        throw new UsageError(`${sub} takes two exception ids: ID OTHER_ID`, exceptionsHelp);
      return sub === 'match' ? await match(api, id, other, values, io) : await decline(api, id, other, io);
    }
    const target = TRANSITION_COMMANDS[sub];
    if (!['get', 'approve', 'reject', 'suggestions', 'retriage'].includes(sub) && target === undefined)
      throw new UsageError(`unknown subcommand "${sub}"`, exceptionsHelp);
    const [id, ...extra] = args;
    if (id === undefined || extra.length > 0)
      throw new UsageError(`${sub} takes exactly one exception id`, exceptionsHelp);
    if (sub === 'get') {
      const record = await api.request<ApiException>('GET', `/exceptions/${encodeURIComponent(id)}`);
      io.stdout.write(values.json ? `${JSON.stringify(record, null, 2)}\n` : describe(record));
      return 0;
    }
    if (sub === 'approve' || sub === 'reject') return await decide(api, id, sub, values, io);
    if (sub === 'suggestions') return await suggestions(api, id, values.json === true, io);
    if (sub === 'retriage') return await retriage(api, id, values, io);
    return await transition(api, id, target as ExceptionStatus, values, io, sub);
  } catch (error) {
    return reportApiError(`exceptions ${sub}`, io, error);
  }
}

/** The list filters, as `list` and `retriage` (with no id) take them. */
function listFilters(values: Values) {
  const str = (name: string) => values[name] as string | undefined;
  return {
    ...filterQuery(values, exceptionsHelp, { dateNeedsDataset: true }),
    pattern_id: str('pattern'),
    assignee: str('assignee'),
    team: str('team'),
    overdue: values.overdue === true ? 'true' : undefined,
  };
}

/** Says so, now and then, while a sparse filter's pages come back empty. */
const readingOn = (io: CliIo) => (pages: number) => {
  if (pages === 1 || pages % 10 === 0)
    io.stderr.write(`no match in the ${pages} page(s) read so far (a sparse filter); reading on\n`);
};

async function list(api: ApiClient, values: Values, io: CliIo): Promise<number> {
  const str = (name: string) => values[name] as string | undefined;
  const query = {
    ...listFilters(values),
    sort: oneOf('sort', str('sort'), LIST_SORTS, exceptionsHelp),
    limit: intOption('limit', str('limit'), 1, 200, exceptionsHelp)?.toString(),
  };
  if (query.sort === 'due' && (str('next-token') !== undefined || values.all === true))
    throw new UsageError('--sort due returns one page: leave out --next-token and --all', exceptionsHelp);
  const { items, next, truncated } = await readPages<ApiException>(api, '/exceptions', query, {
    token: str('next-token'),
    all: values.all === true,
    onEmpty: readingOn(io),
  });

  // sort=due orders the newest DUE_SORT_CAP matches: say when there were more than it sorted.
  const partial = truncated
    ? `sorted by due date over the newest ${DUE_SORT_CAP.toLocaleString('en')} matches only, not all of them: narrow the filters (--dataset, --status), or use --overdue alone (exact)\n`
    : '';
  if (values.json) {
    const sorted = query.sort === 'due' ? { truncated } : {};
    io.stdout.write(`${JSON.stringify({ items, count: items.length, next_token: next, ...sorted })}\n`);
    io.stderr.write(partial);
    return 0;
  }
  if (items.length === 0) io.stdout.write('No exceptions match.\n');
  else {
    io.stdout.write(
      table(
        ['ID', 'TYPE', 'STATUS', 'SEVERITY', 'DATASET', 'DATE', 'KEY', 'ASSIGNEE', 'TEAM', 'CREATED', 'DUE'],
        items.map((e) => [
          e.exception_id,
          e.exception_type,
          e.status,
          String(e.severity ?? `(${String(e.policy_severity ?? '-')})`),
          e.dataset,
          e.business_date,
          keyText(e.key),
          String(e.assignee ?? '-'),
          String(e.team ?? '-'),
          String(e.created_at ?? ''),
          dueText(e),
        ]),
        { 6: 40 },
      ),
    );
  }
  const more = next ? `; more: --next-token ${next}` : '';
  io.stderr.write(`${items.length} exception(s)${more}\n${partial}`);
  return 0;
}

async function transition(
  api: ApiClient,
  id: string,
  status: ExceptionStatus,
  values: Values,
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
    ...(values.team !== undefined ? { team: values.team } : {}),
  };
  try {
    const updated = await api.request<ApiException>('PATCH', path, { body });
    io.stdout.write(
      values.json
        ? `${JSON.stringify(updated, null, 2)}\n`
        : `${updated.exception_id}: ${current.status} -> ${updated.status} (version ${updated.version})${
            updated.approval ? `; waits for an approver who is not you (${updated.approval.requested_status})` : ''
          }\n`,
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
  lines.push(`  assignee   ${String(e.assignee ?? '-')}   team ${String(e.team ?? '-')}`);
  if (e.approval)
    lines.push(
      `  approval   ${e.approval.requested_status} asked by ${e.approval.requested_by} at ${e.approval.requested_at}${
        e.approval.match ? ` (match with ${e.approval.match.exception_id}, ${e.approval.match.reason_code})` : ''
      }`,
    );
  if (e.match)
    lines.push(
      `  match      ${e.match.exception_id} (${e.match.reason_code}), asked by ${e.match.by}, approved by ${e.match.approved_by}`,
    );
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
      `             by ${triage.provider ?? '?'}/${triage.model ?? '?'} at ${triage.triaged_at}${triage.degraded ? ' (degraded: rules fallback)' : ''}`,
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

type Values = Record<string, string | boolean | string[] | undefined>;

/** `--assignee none` / `--team none` clear it. */
const ownerValue = (value: unknown) => (value === undefined ? undefined : value === 'none' ? null : value);

async function bulk(api: ApiClient, values: Values, io: CliIo): Promise<number> {
  const ids =
    typeof values.ids === 'string'
      ? values.ids
          .split(',')
          .map((id) => id.trim())
          .filter(Boolean)
      : undefined;
  const filters = (values.filter as string[] | undefined) ?? [];
  if ((ids === undefined) === (filters.length === 0))
    throw new UsageError('bulk needs exactly one of --ids ID,ID,... or --filter NAME=VALUE', exceptionsHelp);
  const filter: Record<string, string> = {};
  for (const f of filters) {
    const eq = f.indexOf('=');
    if (eq <= 0) throw new UsageError(`--filter takes NAME=VALUE, got "${f}"`, exceptionsHelp);
    filter[f.slice(0, eq)] = f.slice(eq + 1);
  }
  const change = {
    ...(values.status !== undefined ? { status: values.status } : {}),
    ...(values.assignee !== undefined ? { assignee: ownerValue(values.assignee) } : {}),
    ...(values.team !== undefined ? { team: ownerValue(values.team) } : {}),
    ...(values.note !== undefined ? { note: values.note } : {}),
  };
  if (Object.keys(change).length === 0)
    throw new UsageError('bulk needs a change: --status, --assignee, --team or --note', exceptionsHelp);
  const response = await api.request<BulkResponse>('POST', '/exceptions/bulk', {
    body: { ...(ids ? { ids } : { filter }), change },
  });
  if (values.json) io.stdout.write(`${JSON.stringify(response, null, 2)}\n`);
  else
    io.stdout.write(
      table(
        ['ID', 'OUTCOME', 'VERSION', 'WHY'],
        response.results.map((r) => [r.id, r.outcome, String(r.version ?? '-'), r.error ?? '']),
      ),
    );
  const counts = Object.entries(response.counts)
    .filter(([, n]) => n > 0)
    .map(([outcome, n]) => `${n} ${outcome}`)
    .join(', ');
  io.stderr.write(
    `${response.matched} exception(s): ${counts || 'nothing to do'}${
      response.more_matched ? '; the filter matched more than 500: run it again, or narrow it' : ''
    }\n`,
  );
  const refused = response.counts.conflict + response.counts.invalid_transition + response.counts.not_found;
  return refused + response.counts.not_attempted > 0 ? 1 : 0;
}

async function decide(api: ApiClient, id: string, decision: 'approve' | 'reject', values: Values, io: CliIo) {
  const path = `/exceptions/${encodeURIComponent(id)}`;
  const current = await api.request<ApiException>('GET', path);
  const outcome = await api.request<ApprovalResponse>('POST', `${path}/approval`, {
    body: { version: current.version, decision, ...(values.note !== undefined ? { note: values.note } : {}) },
  });
  if (values.json) io.stdout.write(`${JSON.stringify(outcome, null, 2)}\n`);
  else
    for (const r of [outcome.record, ...(outcome.other ? [outcome.other] : [])])
      io.stdout.write(`${r.exception_id}: AWAITING_APPROVAL -> ${r.status} (version ${r.version})\n`);
  return 0;
}

async function match(api: ApiClient, id: string, other: string, values: Values, io: CliIo) {
  const reason = oneOf('reason', values.reason as string | undefined, MATCH_REASON_CODES, exceptionsHelp);
  if (reason === undefined)
    throw new UsageError(`match needs --reason: ${MATCH_REASON_CODES.join(', ')}`, exceptionsHelp);
  const [a, b] = await Promise.all([
    api.request<ApiException>('GET', `/exceptions/${encodeURIComponent(id)}`),
    api.request<ApiException>('GET', `/exceptions/${encodeURIComponent(other)}`),
  ]);
  const outcome = await api.request<ApprovalResponse>('POST', `/exceptions/${encodeURIComponent(id)}/match`, {
    body: {
      other_id: other,
      reason_code: reason,
      version: a.version,
      other_version: b.version,
      ...(values.note !== undefined ? { note: values.note } : {}),
    },
  });
  io.stdout.write(
    values.json
      ? `${JSON.stringify(outcome, null, 2)}\n`
      : `${id} and ${other}: match asked (${reason}); both wait for an approver who is not you\n`,
  );
  return 0;
}

async function suggestions(api: ApiClient, id: string, json: boolean, io: CliIo) {
  const response = await api.request<SuggestionsResponse>('GET', `/exceptions/${encodeURIComponent(id)}/suggestions`);
  if (json) {
    io.stdout.write(`${JSON.stringify(response, null, 2)}\n`);
    return 0;
  }
  if (response.items.length === 0) io.stdout.write('No likely matches.\n');
  else
    io.stdout.write(
      table(
        ['ID', 'SCORE', 'DATE', 'KEY', 'WHY'],
        response.items.map((m) => [
          m.exception_id,
          String(m.score),
          m.exception.business_date,
          keyText(m.exception.key),
          m.reasons.map((r) => r.text).join('; '),
        ]),
      ),
    );
  const scored = `${response.candidates} candidate(s) scored${response.complete ? '' : ' (the newest only: there were more)'}`;
  io.stderr.write(
    response.items.length === 0
      ? `${scored}\n`
      : `${scored}; accept one: tally exceptions match ${id} OTHER_ID --reason CODE\n`,
  );
  return 0;
}

async function retriage(api: ApiClient, id: string, values: Values, io: CliIo) {
  const path = `/exceptions/${encodeURIComponent(id)}`;
  const asked = await api.request<RetriageAccepted>('POST', `${path}/triage`);
  if (!values.wait) {
    io.stdout.write(
      values.json
        ? `${JSON.stringify(asked, null, 2)}\n`
        : `${id}: triage asked again${asked.triaged_at ? ` (its triage of ${asked.triaged_at} stays until the new one is written)` : ''}; see it with: tally exceptions get ${id}\n`,
    );
    return 0;
  }
  const deadline = Date.now() + RETRIAGE_WAIT_MS;
  for (;;) {
    const record = await api.request<ApiException>('GET', path);
    if (answersRequest(record.triage?.triaged_at, asked.requested_at)) {
      io.stdout.write(values.json ? `${JSON.stringify(record, null, 2)}\n` : describe(record));
      return 0;
    }
    if (Date.now() >= deadline) {
      io.stderr.write(
        `${id}: no new triage within ${RETRIAGE_WAIT_MS / 1000} s of asking (${asked.requested_at}); the request stays queued. Look at the triage queue and its DLQ: tally dlq list\n`,
      );
      return 1;
    }
    await sleep(RETRIAGE_POLL_MS);
  }
}

/** What `--only` keeps of the listing. */
function chosenForRetriage(e: ApiException, only: (typeof RETRIAGE_ONLY)[number]): boolean {
  if (e.status === LATE_ARRIVAL_STATUS) return false;
  if (only === 'degraded') return e.triage?.degraded === true;
  if (only === 'uncited') return e.triage !== undefined && e.triage.policy_citations.length === 0;
  return true;
}

function triageState(e: ApiException): string {
  if (e.triage === undefined) return 'not triaged';
  const what = [e.triage.degraded ? 'degraded' : '', e.triage.policy_citations.length === 0 ? 'uncited' : '']
    .filter(Boolean)
    .join(', ');
  return `${e.triage.provider}${what ? ` (${what})` : ''}, ${e.triage.triaged_at}`;
}

/** `retriage` with list filters: every match (all pages), or those --only names, asked one by one. */
async function retriageMany(api: ApiClient, values: Values, io: CliIo): Promise<number> {
  if (values.wait) throw new UsageError('--wait goes with one exception id', exceptionsHelp);
  const query = listFilters(values);
  if (Object.values(query).every((v) => v === undefined))
    throw new UsageError(
      'retriage takes an exception id, or list filters choosing the exceptions (e.g. --run RUN_ID)',
      exceptionsHelp,
    );
  const only = oneOf('only', values.only as string | undefined, RETRIAGE_ONLY, exceptionsHelp) ?? 'all';
  const { items } = await readPages<ApiException>(
    api,
    '/exceptions',
    { ...query, limit: '200' },
    { all: true, onEmpty: readingOn(io) },
  );
  const chosen = items.filter((e) => chosenForRetriage(e, only));
  const matched = `${chosen.length} of ${items.length} matching exception(s)${only === 'all' ? '' : ` (${only})`}`;
  if (values['dry-run'] || chosen.length === 0) {
    if (values.json) io.stdout.write(`${JSON.stringify({ items: chosen.map((e) => e.exception_id) }, null, 2)}\n`);
    else if (chosen.length > 0)
      io.stdout.write(
        table(
          ['ID', 'TYPE', 'KEY', 'TRIAGE'],
          chosen.map((e) => [e.exception_id, e.exception_type, keyText(e.key), triageState(e)]),
        ),
      );
    io.stderr.write(
      chosen.length === 0 ? `Nothing to triage again: ${matched}.\n` : `${matched} would be triaged again.\n`,
    );
    return 0;
  }
  if (chosen.length > RETRIAGE_CONFIRM_OVER && !values.yes)
    throw new UsageError(
      `${matched}: each is a model call within the daily budget; add --yes to ask for them all (--dry-run lists them)`,
      exceptionsHelp,
    );
  const results: { id: string; outcome: string; why: string }[] = [];
  for (const [i, e] of chosen.entries()) {
    try {
      await api.request<RetriageAccepted>('POST', `/exceptions/${encodeURIComponent(e.exception_id)}/triage`);
      results.push({ id: e.exception_id, outcome: 'asked', why: '' });
    } catch (error) {
      if (!(error instanceof ApiRequestError)) throw error;
      results.push({ id: e.exception_id, outcome: 'refused', why: `${error.code}: ${error.message}` });
    }
    if ((i + 1) % 50 === 0 && i + 1 < chosen.length) io.stderr.write(`asked ${i + 1} of ${chosen.length}\n`);
  }
  const refused = results.filter((r) => r.outcome !== 'asked').length;
  if (values.json) io.stdout.write(`${JSON.stringify({ results }, null, 2)}\n`);
  else
    io.stdout.write(
      table(
        ['ID', 'OUTCOME', 'WHY'],
        results.map((r) => [r.id, r.outcome, r.why]),
      ),
    );
  io.stderr.write(
    `${matched}: ${results.length - refused} asked${refused > 0 ? `, ${refused} refused` : ''}; each new triage arrives within seconds (tally exceptions get ID)\n`,
  );
  return refused > 0 ? 1 : 0;
}

async function decline(api: ApiClient, id: string, other: string, io: CliIo) {
  await api.request('POST', `/exceptions/${encodeURIComponent(id)}/suggestions/${encodeURIComponent(other)}/decline`);
  io.stdout.write(`${other} will not be suggested for ${id} again\n`);
  return 0;
}
