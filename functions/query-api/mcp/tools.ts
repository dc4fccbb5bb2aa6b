/**
 * The MCP tools: each a thin translation of one question into query API calls, with an input and
 * an output schema, the spec's annotations, the result as structuredContent and as text an
 * assistant can quote. The API does the validation, permission checks and history; a tool never
 * reaches around it. Listings keep the API's paging: a page ends with its next_token (null on the
 * last), never a silent cut.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { EXCEPTION_STATUSES } from '../../shared/exception-lifecycle.ts';
import { EXCEPTION_TYPES, SEVERITIES } from '../../shared/types.ts';
import { LIST_LIMIT, RUN_STATUSES, RUNS_LIMIT, SEARCH_K } from '../schemas.ts';
import { segment, TallyApiError, type TallyApi } from './api.ts';
import { errorResult, structuredError } from './errors.ts';
import { policyUriOfDocument } from './resources.ts';

type Json = Record<string, unknown>;
interface Page {
  readonly items: Json[];
  readonly count: number;
  readonly next_token: string | null;
}

const READ_ONLY: ToolAnnotations = {
  readOnlyHint: true,
  destructiveHint: false,
  idempotentHint: true,
  openWorldHint: false,
};

const exceptionId = z
  .string()
  .regex(/^[0-9a-f]{32}$/, 'exception ids are 32 lower-case hexadecimal characters')
  .describe('The exception id (32 hexadecimal characters), from list_exceptions or search_exceptions');
const runId = z.string().min(1).max(256).describe('The run id (run-<date>-<hash>), from list_runs');
const nextToken = z
  .string()
  .min(1)
  .optional()
  .describe("The previous page's next_token, to read the page after it; omit for the first page");

const filters = {
  status: z.enum(EXCEPTION_STATUSES).optional(),
  exception_type: z.enum(EXCEPTION_TYPES).optional(),
  severity: z.enum(SEVERITIES).optional(),
  dataset: z.string().min(1).optional().describe('Dataset name, e.g. payments'),
  business_date: z.string().optional().describe('YYYY-MM-DD; needs dataset too'),
  run_id: z.string().min(1).max(256).optional(),
};

const exceptionSummary = z.looseObject({
  exception_id: z.string(),
  run_id: z.string(),
  dataset: z.string(),
  business_date: z.string(),
  exception_type: z.string(),
  key: z.unknown(),
  status: z.string(),
  severity: z.string().nullable(),
  assignee: z.string().nullable(),
  version: z.number(),
  summary: z.string().nullable().describe("Triage's one-line summary; null until triaged"),
  updated_at: z.string(),
});

const exceptionRecord = z.looseObject({
  exception_id: z.string(),
  run_id: z.string(),
  dataset: z.string(),
  business_date: z.string(),
  exception_type: z.string(),
  key: z.unknown(),
  status: z.string(),
  version: z.number(),
  diffs: z.array(z.unknown()),
  history: z.array(z.unknown()),
});

const runSummary = z.looseObject({
  run_id: z.string(),
  dataset: z.string(),
  business_date: z.string(),
  status: z.string(),
  requested_at: z.string(),
  completed_at: z.string().nullable(),
  outcome: z.string().nullable().describe('PASS, WARN or FAIL under the policy thresholds; null while running'),
  exceptions: z.number().nullable().describe('Exceptions the run found; null while running'),
  triage_state: z.string().nullable(),
});

const keyText = (key: unknown) =>
  key && typeof key === 'object'
    ? Object.entries(key as Json)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(', ')
    : String(key ?? '');

const pageFooter = (next: string | null) =>
  next === null ? '(last page)' : `more: call again with next_token "${next}"`;

function toExceptionSummary(item: Json): z.infer<typeof exceptionSummary> {
  const triage = item.triage as { summary?: string } | undefined;
  return {
    exception_id: String(item.exception_id),
    run_id: String(item.run_id),
    dataset: String(item.dataset),
    business_date: String(item.business_date),
    exception_type: String(item.exception_type),
    key: item.key,
    status: String(item.status),
    severity: (item.severity ?? item.policy_severity ?? null) as string | null,
    assignee: (item.assignee ?? null) as string | null,
    version: Number(item.version),
    summary: triage?.summary ?? null,
    updated_at: String(item.updated_at),
  };
}

function exceptionLine(e: z.infer<typeof exceptionSummary>): string {
  return `- ${e.exception_id} ${e.exception_type} [${e.status}${e.severity ? `, ${e.severity}` : ''}] ${e.dataset} ${e.business_date} key ${keyText(e.key)} (version ${e.version})${e.summary ? `: ${e.summary}` : ''}`;
}

function toRunSummary(run: Json): z.infer<typeof runSummary> {
  const summary = run.summary as { outcome?: string; exceptions?: Record<string, number> } | undefined;
  const triage = run.triage as { state?: string } | undefined;
  return {
    run_id: String(run.run_id),
    dataset: String(run.dataset),
    business_date: String(run.business_date),
    status: String(run.status),
    requested_at: String(run.requested_at),
    completed_at: (run.completed_at ?? null) as string | null,
    outcome: summary?.outcome ?? null,
    exceptions: summary?.exceptions ? Object.values(summary.exceptions).reduce((a, b) => a + b, 0) : null,
    triage_state: triage?.state ?? null,
  };
}

function runLine(r: z.infer<typeof runSummary>): string {
  return `- ${r.run_id} ${r.dataset} ${r.business_date} ${r.status}${r.outcome ? ` ${r.outcome}` : ''}${r.exceptions === null ? '' : `, ${r.exceptions} exceptions`}${r.triage_state ? `, triage ${r.triage_state}` : ''}`;
}

const ok = (structured: Json, text: string): CallToolResult => ({
  structuredContent: structured,
  content: [{ type: 'text', text }],
});

export function registerTools(server: McpServer, api: TallyApi, onError?: (error: unknown) => void): void {
  /** Runs a tool body; any failure becomes a structured error result (never a stack trace). */
  const guarded = async (body: () => Promise<CallToolResult>): Promise<CallToolResult> => {
    try {
      return await body();
    } catch (error) {
      if (!(error instanceof TallyApiError)) onError?.(error);
      return errorResult(error);
    }
  };

  server.registerTool(
    'list_exceptions',
    {
      title: 'List exceptions',
      description:
        'Lists reconciliation breaks (exceptions), newest first, filtered by status, type, severity, dataset, ' +
        'business date (with dataset), run or break pattern. One page at a time: pass next_token back for the next page.',
      inputSchema: z.object({
        ...filters,
        pattern_id: z.string().optional().describe('A break pattern id (pat_...) from get_run'),
        limit: z
          .number()
          .int()
          .min(LIST_LIMIT.min)
          .max(LIST_LIMIT.max)
          .optional()
          .describe(`Page size (default ${LIST_LIMIT.default})`),
        next_token: nextToken,
      }),
      outputSchema: z.object({
        items: z.array(exceptionSummary),
        count: z.number(),
        next_token: z.string().nullable(),
      }),
      annotations: READ_ONLY,
    },
    (args) => guarded(() => listed(api, '/exceptions', args, toExceptionSummary, exceptionLine, 'exception')),
  );

  server.registerTool(
    'get_exception',
    {
      title: 'Get one exception',
      description:
        'One exception in full: key, source and target rows, field differences, status, version (needed to update it), triage and history.',
      inputSchema: z.object({ exception_id: exceptionId }),
      outputSchema: z.object({ exception: exceptionRecord }),
      annotations: READ_ONLY,
    },
    ({ exception_id }) =>
      guarded(async () => {
        const exception = await api.request<Json>('GET', `/exceptions/${segment(exception_id)}`);
        return ok({ exception }, JSON.stringify(exception, null, 2));
      }),
  );

  server.registerTool(
    'search_exceptions',
    {
      title: 'Search exceptions',
      description:
        'Semantic and exact search over triaged exceptions ("booking delay on EUR payments", a trade id): the k nearest, ' +
        'best first, optionally filtered. Returns at most k (the API caps k at 50); narrow the filters to see others.',
      inputSchema: z.object({
        q: z.string().min(1).max(1000).describe('What to look for, in plain words or an id'),
        k: z
          .number()
          .int()
          .min(SEARCH_K.min)
          .max(SEARCH_K.max)
          .optional()
          .describe(`How many (default ${SEARCH_K.default})`),
        ...filters,
        field: z.string().optional().describe('A key or compared field that must equal value, e.g. account_id'),
        value: z.string().optional(),
        date_from: z.string().optional().describe('YYYY-MM-DD, inclusive'),
        date_to: z.string().optional().describe('YYYY-MM-DD, inclusive'),
      }),
      outputSchema: z.object({
        items: z.array(
          z.looseObject({
            exception_id: z.string(),
            exception_type: z.string().nullable(),
            status: z.string().nullable(),
            severity: z.string().nullable(),
            dataset: z.string().nullable(),
            business_date: z.string().nullable(),
            summary: z.string(),
            score: z.number(),
          }),
        ),
      }),
      annotations: READ_ONLY,
    },
    (args) =>
      guarded(async () => {
        const query = Object.fromEntries(
          Object.entries(args).map(([k, v]) => [k, v === undefined ? undefined : String(v)]),
        );
        const { items } = await api.request<{ items: Json[] }>('GET', '/search', { query });
        const text = [
          `${items.length} match${items.length === 1 ? '' : 'es'}, best first:`,
          ...items.map(
            (i) =>
              `- ${String(i.exception_id)} ${String(i.exception_type)} [${String(i.status)}, ${String(i.severity)}] ${String(i.dataset)} ${String(i.business_date)} score ${Number(i.score).toFixed(3)}: ${String(i.summary)}`,
          ),
        ].join('\n');
        return ok({ items }, text);
      }),
  );

  server.registerTool(
    'list_runs',
    {
      title: 'List reconciliation runs',
      description:
        'Reconciliation runs, newest first, by dataset, business date (with dataset) or status: each with its outcome ' +
        '(PASS/WARN/FAIL), exception count and triage state. One page at a time: pass next_token back for the next.',
      inputSchema: z.object({
        dataset: z.string().min(1).optional(),
        business_date: z.string().optional().describe('YYYY-MM-DD; needs dataset too'),
        status: z.enum(RUN_STATUSES).optional(),
        limit: z
          .number()
          .int()
          .min(RUNS_LIMIT.min)
          .max(RUNS_LIMIT.max)
          .optional()
          .describe(`Page size (default ${RUNS_LIMIT.default})`),
        next_token: nextToken,
      }),
      outputSchema: z.object({ items: z.array(runSummary), count: z.number(), next_token: z.string().nullable() }),
      annotations: READ_ONLY,
    },
    (args) => guarded(() => listed(api, '/runs', args, toRunSummary, runLine, 'run')),
  );

  server.registerTool(
    'get_run',
    {
      title: 'Get one run',
      description:
        'One run: its summary (rows, matches, exceptions by type, thresholds crossed), outcome, triage state, and its ' +
        'break patterns (groups of exceptions with one cause) largest first, when it has any.',
      inputSchema: z.object({ run_id: runId }),
      outputSchema: z.object({
        run: z.looseObject({ run_id: z.string(), dataset: z.string(), business_date: z.string(), status: z.string() }),
        outcome: z.string().nullable(),
        patterns: z.array(
          z.looseObject({
            pattern_id: z.string(),
            exception_type: z.string(),
            description: z.string(),
            size: z.number(),
            members_by_status: z.record(z.string(), z.number()),
            severity: z.string().nullable(),
            summary: z.string().nullable(),
          }),
        ),
        patterns_summary: z.object({ patterns: z.number(), members: z.number(), singletons: z.number() }).nullable(),
      }),
      annotations: READ_ONLY,
    },
    ({ run_id }) =>
      guarded(async () => {
        const path = `/runs/${segment(run_id)}`;
        const [run, patterns] = await Promise.all([
          api.request<Json>('GET', path),
          api.request<{ items: Json[]; summary: { patterns: number; members: number; singletons: number } | null }>(
            'GET',
            `${path}/patterns`,
          ),
        ]);
        const items = patterns.items.map((p) => {
          const triage = p.triage as { severity?: string; summary?: string } | undefined;
          return {
            pattern_id: String(p.pattern_id),
            exception_type: String(p.exception_type),
            description: String(p.description),
            size: Number(p.size),
            members_by_status: (p.members_by_status ?? {}) as Record<string, number>,
            severity: triage?.severity ?? null,
            summary: triage?.summary ?? null,
          };
        });
        const s = toRunSummary(run);
        const summary = run.summary as { exceptions?: Record<string, number>; thresholds_crossed?: Json[] } | undefined;
        const text = [
          `Run ${s.run_id}: ${s.dataset} ${s.business_date}, ${s.status}${s.outcome ? `, outcome ${s.outcome}` : ''}.`,
          summary?.exceptions
            ? `Exceptions by type: ${Object.entries(summary.exceptions)
                .map(([t, n]) => `${t} ${n}`)
                .join(', ')}.`
            : 'No summary yet.',
          ...(summary?.thresholds_crossed ?? []).map(
            (t) =>
              `Threshold crossed (${String(t.level)}): ${String(t.condition)} (limit ${String(t.limit)}, actual ${String(t.actual)})`,
          ),
          items.length === 0
            ? 'No break patterns.'
            : `Break patterns, largest first:\n${items.map((p) => `- ${p.pattern_id} ${p.exception_type} x${p.size}: ${p.description}${p.summary ? ` (${p.summary})` : ''}`).join('\n')}`,
        ].join('\n');
        return ok({ run, outcome: s.outcome, patterns: items, patterns_summary: patterns.summary }, text);
      }),
  );

  server.registerTool(
    'get_run_report',
    {
      title: "Get a run's report",
      description:
        'The run report people read, in Markdown: what was compared, the outcome, the breaks and their triage.',
      inputSchema: z.object({ run_id: runId }),
      outputSchema: z.object({ run_id: z.string(), markdown: z.string() }),
      annotations: READ_ONLY,
    },
    ({ run_id }) =>
      guarded(async () => {
        const markdown = await api.request<string>('GET', `/runs/${segment(run_id)}/report`, {
          query: { format: 'md' },
          as: 'text',
        });
        return ok({ run_id, markdown }, markdown);
      }),
  );

  server.registerTool(
    'update_exception',
    {
      title: 'Update an exception',
      description:
        "Changes an exception's status, assignee or adds a note, as you (recorded in its history). Send the version you " +
        'last read (get_exception): if it changed since, nothing is changed and the result is a CONFLICT with the ' +
        'current version — read it again before retrying. Statuses that need approval (FALSE_POSITIVE) may go to ' +
        'AWAITING_APPROVAL instead.',
      inputSchema: z.object({
        exception_id: exceptionId,
        version: z.number().int().min(1).describe('The version you last read'),
        status: z.enum(EXCEPTION_STATUSES).optional(),
        assignee: z.string().min(1).max(200).nullable().optional().describe('Who works it; null clears it'),
        note: z
          .string()
          .min(1)
          .max(2000)
          .optional()
          .describe('Why: kept in the history (e.g. "booking delay, cleared T+1")'),
      }),
      outputSchema: z.object({
        exception: exceptionRecord.optional().describe('The exception after the change'),
        code: z.string().optional().describe('On a refusal: CONFLICT, VALIDATION_ERROR, FORBIDDEN, ...'),
        message: z.string().optional(),
        current_version: z.number().optional().describe('On a CONFLICT: the version to read and retry from'),
        what_to_do: z.string().optional(),
      }),
      annotations: {
        readOnlyHint: false,
        // A status change replaces what others act on (the history keeps the old one): clients should confirm.
        destructiveHint: true,
        // The version moves on each change: the same call twice is a CONFLICT the second time.
        idempotentHint: false,
        openWorldHint: false,
      },
    },
    ({ exception_id, ...change }) =>
      guarded(async () => {
        try {
          const body = Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined));
          const exception = await api.request<Json>('PATCH', `/exceptions/${segment(exception_id)}`, { body });
          const s = toExceptionSummary(exception);
          return ok(
            { exception },
            `Updated ${s.exception_id}: now ${s.status}, version ${s.version}${s.assignee ? `, assigned to ${s.assignee}` : ''}.`,
          );
        } catch (error) {
          const structured = structuredError(error);
          if (structured === undefined) throw error;
          return {
            isError: true,
            structuredContent: structured,
            content: [{ type: 'text', text: JSON.stringify(structured) }],
          };
        }
      }),
  );

  server.registerTool(
    'retriage_exception',
    {
      title: 'Triage an exception again',
      description:
        "Asks for an exception's triage again, as you: one model call within the deployment's daily budget. Worth it " +
        'when its triage cites no policy passage (it was triaged before the policies were indexed, or by the rules ' +
        'while the models were down) or a policy or runbook it should cite has changed. The new triage arrives within ' +
        'seconds: read it with explain_exception; until then the current one stays. (An open exception citing no ' +
        'passage is also triaged again by itself shortly after a policy document is indexed.)',
      inputSchema: z.object({ exception_id: exceptionId }),
      outputSchema: z.object({
        exception_id: z.string(),
        requested_at: z.string().describe('When it was asked: the new triage is written after this'),
        triaged_at: z.string().optional().describe('When the current triage was written (absent: never triaged)'),
      }),
      annotations: {
        readOnlyHint: false,
        // The old triage is replaced, not lost from view for long, and nothing else changes.
        destructiveHint: false,
        // Asked again after the new triage is written, it is triaged once more (another model call).
        idempotentHint: false,
        openWorldHint: false,
      },
    },
    ({ exception_id }) =>
      guarded(async () => {
        const accepted = await api.request<Json>('POST', `/exceptions/${segment(exception_id)}/triage`);
        return ok(
          accepted,
          `Triage of ${exception_id} asked again at ${String(accepted.requested_at)}; read the new one with explain_exception in a few seconds.`,
        );
      }),
  );

  server.registerTool(
    'explain_exception',
    {
      title: 'Explain an exception',
      description:
        'Why an exception happened and what to do: its triage (severity, summary, root-cause hypotheses, recommended ' +
        'actions), the policy passages it cites with their text (and the policy resource each comes from), and the ' +
        'resolved precedents it relied on.',
      inputSchema: z.object({ exception_id: exceptionId }),
      outputSchema: z.object({
        exception_id: z.string(),
        exception_type: z.string(),
        status: z.string(),
        key: z.unknown(),
        diffs: z.array(z.unknown()),
        triaged: z.boolean(),
        severity: z.string().nullable(),
        summary: z.string().nullable(),
        root_cause_hypotheses: z.array(z.string()),
        recommended_actions: z.array(z.string()),
        citations: z.array(
          z.object({
            passage_id: z.string(),
            document: z.string(),
            section: z.string(),
            passage: z.string(),
            resource_uri: z.string(),
          }),
        ),
        precedents: z.array(z.looseObject({ exception_id: z.string(), business_date: z.string(), status: z.string() })),
        provider: z.string().nullable(),
        model: z.string().nullable(),
        degraded: z.boolean().nullable(),
      }),
      annotations: READ_ONLY,
    },
    ({ exception_id }) =>
      guarded(async () => {
        const e = await api.request<Json>('GET', `/exceptions/${segment(exception_id)}`);
        const triage = e.triage as
          | {
              severity: string;
              summary: string;
              root_cause_hypotheses: string[];
              recommended_actions: string[];
              policy_citations: { passage_id: string; document: string; section: string; passage: string }[];
              precedent_citations?: Json[];
              provider: string;
              model: string;
              degraded: boolean;
            }
          | undefined;
        const citations = (triage?.policy_citations ?? []).map((c) => ({
          passage_id: c.passage_id,
          document: c.document,
          section: c.section,
          passage: c.passage,
          resource_uri: policyUriOfDocument(c.document),
        }));
        const precedents = (triage?.precedent_citations ?? []) as {
          exception_id: string;
          business_date: string;
          status: string;
          note?: string;
        }[];
        const explanation = {
          exception_id: String(e.exception_id),
          exception_type: String(e.exception_type),
          status: String(e.status),
          key: e.key,
          diffs: (e.diffs ?? []) as unknown[],
          triaged: triage !== undefined,
          severity: (triage?.severity ?? e.severity ?? e.policy_severity ?? null) as string | null,
          summary: triage?.summary ?? null,
          root_cause_hypotheses: triage?.root_cause_hypotheses ?? [],
          recommended_actions: triage?.recommended_actions ?? [],
          citations,
          precedents,
          provider: triage?.provider ?? null,
          model: triage?.model ?? null,
          degraded: triage?.degraded ?? null,
        };
        const text = triage
          ? [
              `${explanation.exception_type} on ${keyText(e.key)} (${explanation.status}, ${triage.severity}): ${triage.summary}`,
              `Likely causes: ${triage.root_cause_hypotheses.join('; ') || 'none given'}`,
              `Recommended: ${triage.recommended_actions.join('; ') || 'none given'}`,
              ...citations.map(
                (c) =>
                  `Policy ${c.document} › ${c.section} (${c.resource_uri}):\n> ${c.passage.replaceAll('\n', '\n> ')}`,
              ),
              ...precedents.map(
                (p) => `Precedent ${p.exception_id} (${p.business_date}, ${p.status})${p.note ? `: ${p.note}` : ''}`,
              ),
              `Triaged by ${triage.provider} (${triage.model})${triage.degraded ? ', degraded (rules fallback)' : ''}.`,
              ...(citations.length === 0 || triage.degraded
                ? [
                    `It ${citations.length === 0 ? 'cites no policy passage' : 'is the rules fallback'}: retriage_exception asks for a new triage (one model call).`,
                  ]
                : []),
            ].join('\n')
          : `${explanation.exception_type} on ${keyText(e.key)} (${explanation.status}) has not been triaged yet: no explanation, citations or precedents to show. Try again once triage has run.`;
        return ok(explanation, text);
      }),
  );

  server.registerTool(
    'queue_health',
    {
      title: 'Queue health',
      description:
        "Each pipeline queue's depth and its dead-letter queue's: a non-empty DLQ means messages failed and need on-call " +
        '(the runbook says how to inspect and redrive them).',
      inputSchema: z.object({}),
      outputSchema: z.object({
        healthy: z.boolean().describe('True when every DLQ is empty'),
        dlq_messages: z.number(),
        queues: z.array(z.looseObject({ queue: z.string(), main: z.looseObject({}), dlq: z.looseObject({}) })),
        runbook: z.string(),
      }),
      annotations: READ_ONLY,
    },
    () =>
      guarded(async () => {
        type Depth = { visible: number; in_flight: number; delayed: number; oldest_age_seconds: number | null };
        const report = await api.request<{ queues: { queue: string; main: Depth; dlq: Depth }[]; runbook: string }>(
          'GET',
          '/queues',
        );
        const dlqMessages = report.queues.reduce((n, q) => n + q.dlq.visible + q.dlq.in_flight + q.dlq.delayed, 0);
        const text = [
          dlqMessages === 0
            ? 'Every dead-letter queue is empty.'
            : `${dlqMessages} message(s) in dead-letter queues: see ${report.runbook}.`,
          ...report.queues.map(
            (q) =>
              `- ${q.queue}: ${q.main.visible} waiting, ${q.main.in_flight} in flight; DLQ ${q.dlq.visible + q.dlq.in_flight + q.dlq.delayed}`,
          ),
        ].join('\n');
        return ok({ healthy: dlqMessages === 0, dlq_messages: dlqMessages, ...report }, text);
      }),
  );
}

/** One page of a listing route as a tool result: the items, their count, the next page's token. */
async function listed<S>(
  api: TallyApi,
  path: string,
  args: Record<string, unknown>,
  summarize: (item: Record<string, unknown>) => S,
  line: (item: S) => string,
  noun: string,
) {
  const query = Object.fromEntries(Object.entries(args).map(([k, v]) => [k, v === undefined ? undefined : String(v)]));
  const page = await api.request<Page>('GET', path, { query });
  const items = page.items.map(summarize);
  const text = [
    `${items.length} ${noun}${items.length === 1 ? '' : 's'} on this page:`,
    ...items.map(line),
    pageFooter(page.next_token),
  ].join('\n');
  return ok({ items, count: items.length, next_token: page.next_token }, text);
}
