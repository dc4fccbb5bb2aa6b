import { z } from 'zod';
import { LOCAL_MASKING_SECRET } from '../shared/masking.ts';
import { ConfigError, flag, loadConfig, required } from '../shared/config.ts';
import { ENV } from '../shared/resources.ts';
import { dailyBudgetMicroUsd } from '../triage/config.ts';
import { DEFAULT_ACCESS } from './access.ts';

/** Local-only defaults: on Lambda these must be set explicitly (see queryApiConfig). */
const LOCAL_PAGINATION_SECRET = 'tally-local-pagination-secret';
/** None: the local dashboard is served from the API's own origin, and no other page may call it. */
const LOCAL_CORS_ORIGINS = '';
const LOCAL_IDENTITY = 'local-analyst';

// Not z.url(): Terraform writes the value, and tests read it with its references unresolved.
const queueUrl = z.string().min(1, 'must be a queue URL');
/** JSON `{"ingest":{"main":URL,"dlq":URL},...}`; unset means GET /queues reports no queues. */
const monitoredQueuesSchema = z
  .string()
  .optional()
  .transform((text, ctx) => {
    if (text === undefined || text === '') return {};
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be JSON: {"ingest":{"main":URL,"dlq":URL},...}' });
      return z.NEVER;
    }
    const parsed = z.record(z.string().min(1), z.strictObject({ main: queueUrl, dlq: queueUrl })).safeParse(raw);
    if (!parsed.success) {
      ctx.addIssue({
        code: 'custom',
        message: `must map each queue to {"main": URL, "dlq": URL}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      });
      return z.NEVER;
    }
    return parsed.data;
  });

/**
 * The query API's environment, validated once. On Lambda (AWS_LAMBDA_FUNCTION_NAME is set by the
 * runtime) the pagination secret and CORS origins have no default, and there is no fallback
 * identity: a request without JWT claims cannot change anything.
 */
export function queryApiConfig(env: NodeJS.ProcessEnv = process.env) {
  const onLambda = Boolean(env.AWS_LAMBDA_FUNCTION_NAME);
  const config = loadConfig(
    {
      [ENV.bucket]: required,
      [ENV.exceptionsTable]: required,
      [ENV.runsTable]: required,
      [ENV.filesTable]: required,
      [ENV.patternsTable]: required,
      [ENV.triageQueueUrl]: required,
      [ENV.usageTable]: required,
      // Assignments are announced there (the deployments always set it: infra/access.ts publishesTo).
      [ENV.businessEventsTopicArn]: z.string().min(1).optional(),
      [ENV.s3ForcePathStyle]: flag,
      [ENV.paginationSecret]: onLambda
        ? z.string({ error: 'is required on AWS' }).min(32, 'must be at least 32 characters')
        : z.string().min(1).default(LOCAL_PAGINATION_SECRET),
      [ENV.maskingSecret]: onLambda
        ? z.string({ error: 'is required on AWS' }).min(32, 'must be at least 32 characters')
        : z.string().min(16).default(LOCAL_MASKING_SECRET),
      [ENV.corsOrigins]: onLambda ? required : z.string().default(LOCAL_CORS_ORIGINS),
      [ENV.localIdentity]: onLambda ? z.string().optional() : z.string().min(1).default(LOCAL_IDENTITY),
      [ENV.roleClaim]: z.string().min(1).default(DEFAULT_ACCESS.roleClaim),
      [ENV.rolePrefix]: z.string().default(DEFAULT_ACCESS.rolePrefix),
      [ENV.datasetsClaim]: z.string().min(1).default(DEFAULT_ACCESS.datasetsClaim),
      [ENV.monitoredQueues]: monitoredQueuesSchema,
      [ENV.queueMetrics]: z.enum(['cloudwatch', 'none']).default('none'),
    },
    env,
  );
  if (onLambda && config[ENV.localIdentity]) {
    throw new ConfigError(
      `invalid configuration: ${ENV.localIdentity}: must not be set on AWS (history records the JWT identity)`,
    );
  }
  const corsOrigins = config[ENV.corsOrigins]
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o.length > 0);
  return Object.freeze({
    bucket: config[ENV.bucket],
    exceptionsTable: config[ENV.exceptionsTable],
    runsTable: config[ENV.runsTable],
    filesTable: config[ENV.filesTable],
    patternsTable: config[ENV.patternsTable],
    triageQueueUrl: config[ENV.triageQueueUrl],
    usageTable: config[ENV.usageTable],
    // GET /usage reports against the budget triage enforces (the same variable, the same parse).
    dailyBudgetMicroUsd: dailyBudgetMicroUsd(env),
    s3ForcePathStyle: config[ENV.s3ForcePathStyle],
    paginationSecret: config[ENV.paginationSecret],
    maskingSecret: config[ENV.maskingSecret],
    corsOrigins,
    localIdentity: config[ENV.localIdentity] || undefined,
    access: Object.freeze({
      roleClaim: config[ENV.roleClaim],
      rolePrefix: config[ENV.rolePrefix],
      datasetsClaim: config[ENV.datasetsClaim],
    }),
    monitoredQueues: config[ENV.monitoredQueues],
    queueMetrics: config[ENV.queueMetrics],
    businessEventsTopicArn: config[ENV.businessEventsTopicArn],
  });
}
export type QueryApiConfig = ReturnType<typeof queryApiConfig>;
