/** The API's routes: each validates its input, calls a core function and shapes the response. */
import type { Logger } from '@aws-lambda-powertools/logger';
import { BadRequestError, NotFoundError } from './errors.ts';
import { callerIdentity, json, parseJsonBody, queryParameters, type HttpEvent, type HttpResult } from './http.ts';
import { checkHealth } from './health.ts';
import { listExceptions } from './listing.ts';
import { countExceptions } from './counts.ts';
import { listFiles, withLatestUploads } from './files.ts';
import { API_ROUTES, routeKey, type RouteKey } from './route-table.ts';
import { createRouter, type RouteDef } from './router.ts';
import {
  countsQuerySchema,
  EXCEPTION_ID_PATTERN,
  LIST_FILTER_NAMES,
  filesQuerySchema,
  listQuerySchema,
  parseInput,
  patchBodySchema,
  patternActionBodySchema,
  PATTERN_ID_PATTERN,
  runsQuerySchema,
  searchQuerySchema,
  policyUploadBodySchema,
  reportQuerySchema,
  runTriageBodySchema,
  uploadBodySchema,
  usageQuerySchema,
} from './schemas.ts';
import { changeRunTriage } from './run-triage.ts';
import { listRuns } from './runs.ts';
import { searchExceptions } from './search.ts';
import { createPolicyUpload, createUpload } from './uploads.ts';
import { REPORT_CONTENT_TYPES, runReport } from './run-report.ts';
import { getException, patchException } from './workflow.ts';
import { applyPatternAction, listPatterns } from './patterns.ts';
import { usageReport } from './usage.ts';
import type { QueryApiDeps } from './ports.ts';

export interface RouteContext {
  readonly event: HttpEvent;
  readonly params: Record<string, string>;
  readonly deps: QueryApiDeps;
  readonly logger: Logger;
}

type RouteHandler = (ctx: RouteContext) => Promise<HttpResult>;

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

function patternIdParam(params: Record<string, string>): string {
  const id = params.pattern_id as string;
  if (!PATTERN_ID_PATTERN.test(id))
    throw new BadRequestError(
      'INVALID_PATTERN_ID',
      `"${id}" is not a pattern id: ids are pat_ and 16 lower-case hexadecimal characters`,
    );
  return id;
}

/** One handler per declared route; the compiler rejects a route without one, or one without a route. */
const handlers: Readonly<Record<RouteKey, RouteHandler>> = {
  'GET /health': async ({ deps, logger }) => {
    const report = await checkHealth(deps.healthChecks, logger);
    return json(report.status === 'ok' ? 200 : 503, report);
  },
  'POST /uploads': async ({ event, deps, logger }) => {
    const body = parseInput(uploadBodySchema, parseJsonBody(event), 'upload request');
    const ticket = await createUpload(body, deps);
    logger.info('upload url issued', { fileKey: ticket.key, contentLength: body.content_length });
    return json(201, ticket);
  },
  'POST /policies': async ({ event, deps, logger }) => {
    const body = parseInput(policyUploadBodySchema, parseJsonBody(event), 'policy upload request');
    const ticket = await createPolicyUpload(body, deps);
    logger.info('policy upload url issued', { fileKey: ticket.key, contentLength: body.content_length });
    return json(201, ticket);
  },
  'GET /exceptions': async ({ event, deps }) => {
    const query = parseInput(listQuerySchema, queryParameters(event), 'query');
    const filters = {
      ...Object.fromEntries(LIST_FILTER_NAMES.map((name) => [name, query[name]])),
      ...(query.overdue ? { overdue: query.overdue } : {}),
    };
    return json(
      200,
      await listExceptions({ filters, limit: query.limit, nextToken: query.next_token, sort: query.sort }, deps),
    );
  },
  // The dashboard's charts: counts by type and severity for the listing's filters, in one call.
  'GET /exception-counts': async ({ event, deps }) =>
    json(200, await countExceptions(parseInput(countsQuerySchema, queryParameters(event), 'query'), deps)),
  'GET /exceptions/{id}': async ({ params, deps }) => json(200, await getException(exceptionIdParam(params), deps)),
  'PATCH /exceptions/{id}': async ({ event, params, deps, logger }) => {
    const id = exceptionIdParam(params);
    const body = parseInput(patchBodySchema, parseJsonBody(event), 'change');
    const actor = callerIdentity(event, deps.localIdentity);
    const outcome = await patchException(id, body, actor, deps, logger);
    logger.info('exception changed', {
      exceptionId: id,
      status: outcome.record.status,
      version: outcome.record.version,
    });
    return json(200, outcome.record);
  },
  'GET /search': async ({ event, deps }) =>
    json(200, await searchExceptions(parseInput(searchQuerySchema, queryParameters(event), 'search'), deps)),
  'GET /runs': async ({ event, deps }) =>
    json(200, await listRuns(parseInput(runsQuerySchema, queryParameters(event), 'query'), deps)),
  // The intake view: every side's current file, accepted or rejected with the reason.
  'GET /files': async ({ event, deps }) =>
    json(200, await listFiles(parseInput(filesQuerySchema, queryParameters(event), 'query'), deps)),
  // On-call's view: depth of each main queue and its DLQ, and (on AWS) the oldest message's age.
  'GET /queues': async ({ deps }) => json(200, { queues: await deps.queues.depths(), runbook: RUNBOOK }),
  // What triage's model calls cost per day, against the daily budget.
  'GET /usage': async ({ event, deps }) => {
    if (!deps.usage) throw new Error('internal: the query API was built without the usage table');
    const query = parseInput(usageQuerySchema, queryParameters(event), 'query');
    return json(200, await usageReport(query, { usage: deps.usage, now: deps.now }));
  },
  // The run report people read (functions/recon/report.ts): HTML by default, or Markdown.
  'GET /runs/{run_id}/report': async ({ event, params, deps }) => {
    const runId = params.run_id as string;
    if (runId.length > MAX_RUN_ID_LENGTH)
      throw new BadRequestError('INVALID_RUN_ID', `run ids are at most ${MAX_RUN_ID_LENGTH} characters`);
    const { format } = parseInput(reportQuerySchema, queryParameters(event), 'query');
    return {
      statusCode: 200,
      headers: {
        'content-type': REPORT_CONTENT_TYPES[format],
        'cache-control': 'no-store',
        // Self-contained: inline styles, no scripts, nothing fetched.
        'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
      },
      body: await runReport(runId, format, deps),
    };
  },
  // A run's break patterns, largest first, with their members by status.
  'GET /runs/{run_id}/patterns': async ({ params, deps }) => json(200, await listPatterns(runIdParam(params), deps)),
  // Acknowledge, resolve or dismiss a whole pattern: each member moved (or not) on its own.
  'POST /runs/{run_id}/patterns/{pattern_id}/actions': async ({ event, params, deps, logger }) => {
    const runId = runIdParam(params);
    const patternId = patternIdParam(params);
    const body = parseInput(patternActionBodySchema, parseJsonBody(event), 'pattern action');
    const actor = callerIdentity(event, deps.localIdentity);
    const outcome = await applyPatternAction(runId, patternId, body, actor, deps, logger);
    logger.info('pattern action', { runId, patternId, action: body.action, counts: outcome.counts });
    return json(200, outcome);
  },
  // Release or abandon a run held by the runaway guard.
  'POST /runs/{run_id}/triage': async ({ event, params, deps, logger }) => {
    const runId = runIdParam(params);
    const { action } = parseInput(runTriageBodySchema, parseJsonBody(event), 'triage action');
    const actor = callerIdentity(event, deps.localIdentity);
    if (deps.runTriage === undefined) throw new Error('internal: the query API has no run triage store configured');
    const run = await changeRunTriage(runId, action, actor, new Date(deps.now()).toISOString(), deps.runTriage);
    logger.info('run triage changed', { runId, action, triage: run.triage?.state });
    return json(200, (await withLatestUploads([run], deps.store))[0]);
  },
  'GET /runs/{run_id}': async ({ params, deps }) => {
    const runId = params.run_id as string;
    if (runId.length > MAX_RUN_ID_LENGTH)
      throw new BadRequestError('INVALID_RUN_ID', `run ids are at most ${MAX_RUN_ID_LENGTH} characters`);
    const run = await deps.store.getRun(runId);
    if (!run) throw new NotFoundError(`no run with id ${runId}`, { run_id: runId });
    return json(200, (await withLatestUploads([run], deps.store))[0]);
  },
};

const routes: RouteDef<RouteHandler>[] = API_ROUTES.map((route) => ({
  ...route,
  handle: handlers[routeKey(route) as RouteKey],
}));

export const router = createRouter(routes);
