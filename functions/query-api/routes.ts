/** The API's routes: each validates its input, calls a core function and shapes the response. */
import type { Logger } from '@aws-lambda-powertools/logger';
import { BadRequestError, NotFoundError } from './errors.ts';
import { sensitiveRunViewFor, sensitiveViewFor } from './sensitive-view.ts';
import { canSee, datasetScope, describeCaller, requireDataset, requireRole, type Caller } from './access.ts';
import { callerIdentity, json, parseJsonBody, queryParameters, type HttpEvent, type HttpResult } from './http.ts';
import { checkHealth } from './health.ts';
import { listExceptions } from './listing.ts';
import { countExceptions } from './counts.ts';
import { listFiles, withLatestUploads } from './files.ts';
import { API_ROUTES, routeKey, type ApiRoute, type RouteKey } from './route-table.ts';
import { createRouter, type RouteDef } from './router.ts';
import {
  approvalBodySchema,
  retriageBodySchema,
  bulkBodySchema,
  countsQuerySchema,
  type ListFilters,
  EXCEPTION_ID_PATTERN,
  LIST_FILTER_NAMES,
  filesQuerySchema,
  listQuerySchema,
  matchBodySchema,
  parseInput,
  patchBodySchema,
  patternActionBodySchema,
  PATTERN_ID_PATTERN,
  runsQuerySchema,
  searchQuerySchema,
  suggestionsQuerySchema,
  policyUploadBodySchema,
  reportQuerySchema,
  runTriageBodySchema,
  uploadBodySchema,
  usageQuerySchema,
} from './schemas.ts';
import { changeRunTriage } from './run-triage.ts';
import { requestTriage } from './retriage.ts';
import { listRuns } from './runs.ts';
import { searchExceptions } from './search.ts';
import { createPolicyUpload, createUpload } from './uploads.ts';
import { REPORT_CONTENT_TYPES, runReport } from './run-report.ts';
import { decideApproval, getException, patchException } from './workflow.ts';
import { applyBulk } from './bulk.ts';
import { declineSuggestion, requestMatch, suggestMatches } from './matching.ts';
import { applyPatternAction, listPatterns } from './patterns.ts';
import { usageReport } from './usage.ts';
import type { QueryApiDeps } from './ports.ts';
import type { ApiRun } from '../shared/api-types.ts';
import type { RunRecord } from '../shared/tables/runs.ts';
import { listPolicyDocuments, readDatasetPolicy, readGovernanceDocument } from './policy-documents.ts';
import { serveMcp } from './mcp/http.ts';
import { inProcessApi } from './mcp/in-process.ts';
import { withinResponseBudget } from './response-size.ts';

export interface RouteContext {
  readonly event: HttpEvent;
  readonly params: Record<string, string>;
  readonly deps: QueryApiDeps;
  readonly logger: Logger;
}

/** What a route's handler is given once the caller holds one of the route's roles. */
interface AuthorizedContext extends RouteContext {
  readonly caller: Caller;
}

type RouteHandler = (ctx: RouteContext) => Promise<HttpResult>;
type AuthorizedHandler = (ctx: AuthorizedContext) => Promise<HttpResult>;

/** A public route's caller: no identity, no role, no dataset. */
const ANONYMOUS: Caller = Object.freeze({ id: 'anonymous', roles: new Set<never>(), datasets: new Set<string>() });

/** Where on-call starts when a DLQ is not empty (the dashboard serves a copy at this path). */
const RUNBOOK = 'docs/runbooks/dlq-depth.md';

/** Run ids are short (`run-{date}-{hash}`); DynamoDB would reject a key over 2 KB with a 500. */
const MAX_RUN_ID_LENGTH = 256;

function runIdParam(params: Record<string, string>): string {
  const runId = params.run_id as string;
  if (runId.length > MAX_RUN_ID_LENGTH)
    throw new BadRequestError('INVALID_RUN_ID', `run ids are at most ${MAX_RUN_ID_LENGTH} characters`);
  return runId;
}

function exceptionIdParam(params: Record<string, string>): string {
  const id = params.id as string;
  if (!EXCEPTION_ID_PATTERN.test(id)) {
    throw new BadRequestError(
      'INVALID_EXCEPTION_ID',
      `"${id}" is not an exception id: ids are 32 lower-case hexadecimal characters`,
    );
  }
  return id;
}

/**
 * `assignee: me` — in a listing or bulk filter, and in a change (PATCH, a bulk change) — is the
 * caller, as history records them: a change stored the word "me", which no listing of `me` finds.
 */
function withCaller<F extends { assignee?: string | null | undefined }>(fields: F, caller: Caller): F {
  return fields.assignee === 'me' ? { ...fields, assignee: caller.id } : fields;
}

function otherIdParam(params: Record<string, string>): string {
  return exceptionIdParam({ id: params.other_id as string });
}

function patternIdParam(params: Record<string, string>): string {
  const id = params.pattern_id as string;
  if (!PATTERN_ID_PATTERN.test(id))
    throw new BadRequestError(
      'INVALID_PATTERN_ID',
      `"${id}" is not a pattern id: ids are pat_ and 16 lower-case hexadecimal characters`,
    );
  return id;
}

/**
 * A run the caller may see, or 404 as if it did not exist: a run of another dataset is not
 * confirmed to exist.
 */
async function entitledRun(runId: string, caller: Caller, deps: QueryApiDeps) {
  const run = await deps.store.getRun(runId);
  if (!run || !canSee(caller, run.dataset)) throw new NotFoundError(`no run with id ${runId}`, { run_id: runId });
  return run;
}

/** The stored exception, or 404 when it is missing or of a dataset the caller is not entitled to. */
async function entitledException(id: string, caller: Caller, deps: QueryApiDeps) {
  const item = await deps.store.getException(id);
  if (!item || !canSee(caller, String(item.dataset)))
    throw new NotFoundError(`no exception with id ${id}`, { exception_id: id });
  return item;
}

/** One handler per declared route; the compiler rejects a route without one, or one without a route. */
const handlers: Readonly<Record<RouteKey, AuthorizedHandler>> = {
  'GET /health': async ({ deps, logger }) => {
    const report = await checkHealth(deps.healthChecks, logger);
    return json(report.status === 'ok' ? 200 : 503, report);
  },
  'GET /me': async ({ caller }) => json(200, describeCaller(caller)),
  'POST /uploads': async ({ event, deps, logger, caller }) => {
    const body = parseInput(uploadBodySchema, parseJsonBody(event), 'upload request');
    requireDataset(caller, body.dataset);
    const ticket = await createUpload(body, deps);
    logger.info('upload url issued', { fileKey: ticket.key, contentLength: body.content_length });
    return json(201, ticket);
  },
  'POST /policies': async ({ event, deps, logger, caller }) => {
    const body = parseInput(policyUploadBodySchema, parseJsonBody(event), 'policy upload request');
    requireDataset(caller, body.dataset);
    const ticket = await createPolicyUpload(body, deps);
    logger.info('policy upload url issued', { fileKey: ticket.key, contentLength: body.content_length });
    return json(201, ticket);
  },
  'GET /exceptions': async ({ event, deps, caller }) => {
    const query = parseInput(listQuerySchema, queryParameters(event), 'query');
    const filters = withCaller<ListFilters>(
      {
        ...Object.fromEntries(LIST_FILTER_NAMES.map((name) => [name, query[name]])),
        ...(query.overdue ? { overdue: query.overdue } : {}),
      },
      caller,
    );
    const datasets = datasetScope(caller, query.dataset);
    const page = await listExceptions(
      { filters, datasets, limit: query.limit, nextToken: query.next_token, sort: query.sort },
      deps,
    );
    const view = sensitiveViewFor(caller, deps);
    return json(200, { ...page, items: withinResponseBudget(await Promise.all(page.items.map(view))) });
  },
  // The dashboard's charts: counts by type and severity for the listing's filters, in one call.
  'GET /exception-counts': async ({ event, deps, caller }) => {
    const filters = withCaller(parseInput(countsQuerySchema, queryParameters(event), 'query'), caller);
    return json(200, await countExceptions(filters, deps, datasetScope(caller, filters.dataset)));
  },
  'GET /exceptions/{id}': async ({ params, deps, caller }) => {
    const id = exceptionIdParam(params);
    await entitledException(id, caller, deps);
    return json(200, await sensitiveViewFor(caller, deps)(await getException(id, deps)));
  },
  'PATCH /exceptions/{id}': async ({ event, params, deps, logger, caller }) => {
    const id = exceptionIdParam(params);
    const body = withCaller(parseInput(patchBodySchema, parseJsonBody(event), 'change'), caller);
    const current = await entitledException(id, caller, deps);
    const outcome = await patchException(id, body, caller.id, deps, logger, current);
    logger.info('exception changed', {
      exceptionId: id,
      status: outcome.record.status,
      version: outcome.record.version,
    });
    return json(200, outcome.record);
  },
  // One change to many exceptions (ids, or a listing filter's first 500), each reported on its own;
  // an exception of a dataset the caller may not see is not found, as on its own.
  'POST /exceptions/bulk': async ({ event, deps, logger, caller }) => {
    const body = parseInput(bulkBodySchema, parseJsonBody(event), 'bulk change');
    const filter = body.filter ? withCaller(body.filter, caller) : undefined;
    const outcome = await applyBulk(
      { ...body, change: withCaller(body.change, caller), ...(filter ? { filter } : {}) },
      caller.id,
      { ...deps, datasets: datasetScope(caller, filter?.dataset), canSee: (dataset) => canSee(caller, dataset) },
      logger,
    );
    logger.info('bulk change', { counts: outcome.counts, moreMatched: outcome.more_matched });
    return json(200, outcome);
  },
  // Maker-checker: someone other than the maker approves or rejects the change waiting on it.
  'POST /exceptions/{id}/approval': async ({ event, params, deps, logger, caller }) => {
    const id = exceptionIdParam(params);
    const body = parseInput(approvalBodySchema, parseJsonBody(event), 'decision');
    await entitledException(id, caller, deps);
    const outcome = await decideApproval(id, body, caller, deps, logger);
    logger.info('approval decided', { exceptionId: id, decision: body.decision, status: outcome.record.status });
    return json(200, outcome);
  },
  // A manual match: this missing row and the opposite side's are one break (waits for approval).
  'POST /exceptions/{id}/match': async ({ event, params, deps, logger, caller }) => {
    const id = exceptionIdParam(params);
    const body = parseInput(matchBodySchema, parseJsonBody(event), 'match');
    await entitledException(id, caller, deps);
    await entitledException(body.other_id, caller, deps);
    const outcome = await requestMatch(id, body, caller.id, deps, logger);
    logger.info('manual match requested', { exceptionId: id, otherId: body.other_id, reason: body.reason_code });
    return json(200, outcome);
  },
  'GET /exceptions/{id}/suggestions': async ({ event, params, deps, caller }) => {
    const id = exceptionIdParam(params);
    const { limit } = parseInput(suggestionsQuerySchema, queryParameters(event), 'query');
    await entitledException(id, caller, deps);
    const suggestions = await suggestMatches(id, limit, deps);
    const view = sensitiveViewFor(caller, deps);
    const exceptions = withinResponseBudget(await Promise.all(suggestions.items.map((s) => view(s.exception))));
    return json(200, {
      ...suggestions,
      items: suggestions.items.map((s, i) => ({ ...s, exception: exceptions[i] })),
    });
  },
  'POST /exceptions/{id}/suggestions/{other_id}/decline': async ({ params, deps, logger, caller }) => {
    const id = exceptionIdParam(params);
    const otherId = otherIdParam(params);
    await entitledException(id, caller, deps);
    await entitledException(otherId, caller, deps);
    const outcome = await declineSuggestion(id, otherId, caller.id, deps);
    logger.info('suggested match declined', { exceptionId: id, otherId });
    return json(200, outcome);
  },
  'POST /exceptions/{id}/triage': async ({ event, params, deps, logger, caller }) => {
    const id = exceptionIdParam(params);
    if (event.body) parseInput(retriageBodySchema, parseJsonBody(event), 'triage request');
    if (deps.retriage === undefined) throw new Error('internal: the query API has no triage queue configured');
    const exception = await entitledException(id, caller, deps);
    const accepted = await requestTriage(exception, new Date(deps.now()).toISOString(), deps.retriage);
    logger.info('triage requested again', { exceptionId: id, by: caller.id, previous: accepted.triaged_at });
    return json(202, accepted);
  },
  'GET /search': async ({ event, deps, caller }) => {
    const query = parseInput(searchQuerySchema, queryParameters(event), 'search');
    return json(200, await searchExceptions(query, deps, datasetScope(caller, query.dataset)));
  },
  'GET /runs': async ({ event, deps, caller }) => {
    const query = parseInput(runsQuerySchema, queryParameters(event), 'query');
    const page = await listRuns(query, deps, datasetScope(caller, query.dataset));
    const view = sensitiveRunViewFor(caller, deps);
    return json(200, { ...page, items: withinResponseBudget(await Promise.all(page.items.map(view))) });
  },
  // The intake view: every side's current file, accepted or rejected with the reason.
  'GET /files': async ({ event, deps, caller }) => {
    const query = parseInput(filesQuerySchema, queryParameters(event), 'query');
    return json(200, await listFiles(query, deps, datasetScope(caller, query.dataset)));
  },
  // On-call's view: depth of each main queue and its DLQ, and (on AWS) the oldest message's age.
  'GET /queues': async ({ deps }) => json(200, { queues: await deps.queues.depths(), runbook: RUNBOOK }),
  // What triage's model calls cost per day, against the daily budget.
  'GET /usage': async ({ event, deps }) => {
    if (!deps.usage) throw new Error('internal: the query API was built without the usage table');
    const query = parseInput(usageQuerySchema, queryParameters(event), 'query');
    return json(200, await usageReport(query, { usage: deps.usage, now: deps.now }));
  },
  // The run report people read (functions/recon/report.ts): HTML by default, or Markdown.
  'GET /runs/{run_id}/report': async ({ event, params, deps, caller }) => {
    const runId = params.run_id as string;
    if (runId.length > MAX_RUN_ID_LENGTH)
      throw new BadRequestError('INVALID_RUN_ID', `run ids are at most ${MAX_RUN_ID_LENGTH} characters`);
    const run = await entitledRun(runId, caller, deps);
    const { format } = parseInput(reportQuerySchema, queryParameters(event), 'query');
    return {
      statusCode: 200,
      headers: {
        'content-type': REPORT_CONTENT_TYPES[format],
        'cache-control': 'no-store',
        // Self-contained: inline styles, no scripts, nothing fetched.
        'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
      },
      // As the listing and the run show them to this caller (a viewer: sensitive values as tokens).
      body: await runReport(await sensitiveRunViewFor(caller, deps)(run), format, deps, sensitiveViewFor(caller, deps)),
    };
  },
  // A run's break patterns, largest first, with their members by status.
  'GET /runs/{run_id}/patterns': async ({ params, deps, caller }) => {
    const runId = runIdParam(params);
    return json(200, await listPatterns(await entitledRun(runId, caller, deps), deps));
  },
  // Acknowledge, resolve or dismiss a whole pattern: each member moved (or not) on its own.
  'POST /runs/{run_id}/patterns/{pattern_id}/actions': async ({ event, params, deps, logger, caller }) => {
    const runId = runIdParam(params);
    const patternId = patternIdParam(params);
    const body = parseInput(patternActionBodySchema, parseJsonBody(event), 'pattern action');
    await entitledRun(runId, caller, deps);
    const outcome = await applyPatternAction(runId, patternId, body, caller.id, deps, logger);
    logger.info('pattern action', { runId, patternId, action: body.action, counts: outcome.counts });
    return json(200, outcome);
  },
  // Release or abandon a run held by the runaway guard.
  'POST /runs/{run_id}/triage': async ({ event, params, deps, logger, caller }) => {
    const runId = runIdParam(params);
    const { action } = parseInput(runTriageBodySchema, parseJsonBody(event), 'triage action');
    if (deps.runTriage === undefined) throw new Error('internal: the query API has no run triage store configured');
    await entitledRun(runId, caller, deps);
    const run = await changeRunTriage(runId, action, caller.id, new Date(deps.now()).toISOString(), deps.runTriage);
    logger.info('run triage changed', { runId, action, triage: run.triage?.state });
    return json(200, await runAsSeen(run, caller, deps));
  },
  // The policy documents: governance documents triage cites and each dataset's policy in force.
  'GET /policies': async ({ deps }) => json(200, { items: await listPolicyDocuments(policyDocumentsOf(deps)) }),
  'GET /policies/{name}': async ({ params, deps }) =>
    json(200, await readGovernanceDocument(params.name as string, policyDocumentsOf(deps))),
  'GET /policies/datasets/{dataset}': async ({ params, deps, caller }) => {
    requireDataset(caller, params.dataset as string);
    return json(200, await readDatasetPolicy(params.dataset as string, policyDocumentsOf(deps)));
  },
  // The MCP server (stateless Streamable HTTP): its tools call this router in-process as the caller.
  'POST /mcp': async ({ event, deps, logger }) =>
    serveMcp(
      event,
      inProcessApi(event, (call) => dispatch(call, deps, logger)),
      (error) => logger.error('mcp tool failed', { error: error as Error }),
    ),
  'GET /runs/{run_id}': async ({ params, deps, caller }) => {
    const runId = params.run_id as string;
    if (runId.length > MAX_RUN_ID_LENGTH)
      throw new BadRequestError('INVALID_RUN_ID', `run ids are at most ${MAX_RUN_ID_LENGTH} characters`);
    const run = await entitledRun(runId, caller, deps);
    return json(200, await runAsSeen(run, caller, deps));
  },
};

/** One run as the API shows it to this caller: with its sides' latest uploads, sensitive values as the caller may see them. */
async function runAsSeen(run: RunRecord, caller: Caller, deps: QueryApiDeps): Promise<ApiRun> {
  const [shown] = await withLatestUploads([run], deps.store);
  return sensitiveRunViewFor(caller, deps)(shown as ApiRun);
}

/**
 * The route's rule, before its handler: who is calling (401 without an identity) and whether they
 * hold one of the route's roles (403 FORBIDDEN naming them). Here rather than in the Lambda
 * handler, so that anything dispatching through the router (the MCP endpoint) is checked alike.
 */
function guarded(route: ApiRoute, handle: AuthorizedHandler): RouteHandler {
  const what = routeKey(route);
  return async (ctx) => {
    if (route.public) return handle({ ...ctx, caller: ANONYMOUS });
    const caller = callerIdentity(ctx.event, ctx.deps.localIdentity, ctx.deps.access);
    requireRole(caller, route.roles, what);
    return handle({ ...ctx, caller });
  };
}

const routes: RouteDef<RouteHandler>[] = API_ROUTES.map((route) => ({
  ...route,
  handle: guarded(route, handlers[routeKey(route) as RouteKey]),
}));

export const router = createRouter(routes);

/**
 * One request through the router: the Lambda handler's path, and the MCP tools' in-process one,
 * so a check made here applies to both.
 */
export async function dispatch(event: HttpEvent, deps: QueryApiDeps, logger: Logger): Promise<HttpResult> {
  const { route, params } = router.match(event.requestContext.http.method, event.rawPath);
  return route.handle({ event, params, deps, logger });
}

function policyDocumentsOf(deps: QueryApiDeps) {
  if (!deps.policyDocuments) throw new Error('internal: the query API was built without the policy documents');
  return deps.policyDocuments;
}
