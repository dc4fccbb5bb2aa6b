/**
 * Deployment configuration: one JSON file (TALLY_INFRA_CONFIG, default infra/tally.config.json
 * when present) or inline JSON in TALLY_INFRA_CONFIG_JSON, validated once. Every field has a
 * default, so `npm run synth` works on a clean clone with no AWS account; a real deployment sets
 * at least the state bucket, the prefix, the JWT issuer/audience and (for failover) the domain.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { DEFAULT_PREFIX, FUNCTION_NAMES, FUNCTIONS, type FunctionName } from '../functions/shared/resources.ts';
import { DEFAULT_ACCESS } from '../functions/query-api/access.ts';
import { priceTableSchema } from '../functions/triage/cost.ts';
import { parseProviderChain, parseRouteTable, type RouteTable } from '../functions/triage/routing.ts';

const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('./tally.config.json', import.meta.url));

const region = z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'must be an AWS region such as eu-west-1');

const functionSettings = z
  .object({
    memoryMb: z.number().int().min(128).max(10240).optional(),
    // Lambda's own ceiling; the queue's visibility timeout is derived from this (x6).
    timeoutSeconds: z.number().int().min(1).max(900).optional(),
    // Lambda's /tmp: 512 MB to 10 GB (recon's partition files go there).
    ephemeralStorageMb: z.number().int().min(512).max(10240).optional(),
    /**
     * A queue consumer's SQS event source maximum concurrency (Lambda's minimum is 2): how many
     * batches it handles at once, e.g. how many findings chunks `store` writes side by side.
     */
    maxConcurrency: z.number().int().min(2).max(1000).optional(),
  })
  .strict();

export const infraConfigSchema = z
  .object({
    /** Prefix of every resource name; S3 bucket names are global, so make it unique to the org. */
    prefix: z
      .string()
      .regex(/^[a-z][a-z0-9-]{1,15}$/, 'lowercase letters, digits and "-", 2-16 characters')
      .default(DEFAULT_PREFIX),
    regions: z
      .object({
        primary: region.default('eu-west-1'),
        secondary: region.default('eu-central-1'),
      })
      .strict()
      .refine((r) => r.primary !== r.secondary, 'primary and secondary must differ')
      .default({ primary: 'eu-west-1', secondary: 'eu-central-1' }),
    /**
     * Terraform state: one S3 bucket, one key per stack, S3-native locking (Terraform >= 1.10), in a
     * third region (checked below), so either regional stack can be planned and applied while the
     * other region is down.
     */
    state: z
      .object({
        bucket: z.string().min(3).default('tally-terraform-state'),
        region: region.default('eu-north-1'),
        keyPrefix: z.string().default('tally'),
      })
      .strict()
      .default({ bucket: 'tally-terraform-state', region: 'eu-north-1', keyPrefix: 'tally' }),
    /** Without a domain there is no custom domain, certificate or failover record (synth says so). */
    domain: z
      .object({
        /** The public API name both regions serve, e.g. api.tally.example.com. */
        apiDomainName: z.string().regex(/^([a-z0-9-]+\.)+[a-z]{2,}$/),
        hostedZoneId: z.string().regex(/^Z[A-Z0-9]+$/),
      })
      .strict()
      .optional(),
    alarmEmail: z.email().optional(),
    /**
     * Chat webhooks (Slack-compatible incoming webhooks) the business events are posted to: new
     * CRITICAL exceptions, overdue ones, assignments, held runs. https only.
     */
    notifications: z
      .object({
        webhookUrls: z.array(z.url().refine((u) => u.startsWith('https://'), 'must be an https URL')).default([]),
      })
      .strict()
      .default({ webhookUrls: [] }),
    /**
     * The OIDC issuer whose access tokens the API accepts, and which claims carry the caller's
     * roles and datasets (functions/query-api/access.ts; docs/access.md). With `roleClaim: "scope"`
     * API Gateway also checks each route's roles as its authorization scopes; with any other claim
     * (`cognito:groups`) only the function checks them (the JWT authorizer checks scopes only).
     */
    auth: z
      .object({
        issuer: z.url().default('https://auth.example.com/'),
        audience: z.array(z.string().min(1)).min(1).default(['tally-api']),
        roleClaim: z.string().min(1).default(DEFAULT_ACCESS.roleClaim),
        /** e.g. `tally/` when the roles are Cognito resource-server scopes `tally/analyst`. */
        rolePrefix: z.string().default(DEFAULT_ACCESS.rolePrefix),
        datasetsClaim: z.string().min(1).default(DEFAULT_ACCESS.datasetsClaim),
      })
      .strict()
      .default({
        issuer: 'https://auth.example.com/',
        audience: ['tally-api'],
        roleClaim: DEFAULT_ACCESS.roleClaim,
        rolePrefix: DEFAULT_ACCESS.rolePrefix,
        datasetsClaim: DEFAULT_ACCESS.datasetsClaim,
      }),
    /** Bedrock model ids (or inference profile ids): IAM is scoped to exactly these. */
    models: z
      .object({
        triage: z.string().min(1).default('anthropic.claude-3-5-sonnet-20240620-v1:0'),
        fallback: z.string().min(1).default('anthropic.claude-3-haiku-20240307-v1:0'),
        embedding: z.string().min(1).default('amazon.titan-embed-text-v2:0'),
      })
      .strict()
      .default({
        triage: 'anthropic.claude-3-5-sonnet-20240620-v1:0',
        fallback: 'anthropic.claude-3-haiku-20240307-v1:0',
        embedding: 'amazon.titan-embed-text-v2:0',
      }),
    /** Triage's spending and routing (functions/triage/: cost.ts, routing.ts, call.ts). */
    triage: z
      .object({
        /**
         * USD a UTC day's triage model calls may cost; past it triage answers with the rules
         * (degraded, reason "budget") and the budget alarm fires. Micro-dollar precision at most.
         */
        dailyBudgetUsd: z
          .number()
          .positive()
          .refine((v) => /^\d+(\.\d{1,6})?$/.test(String(v)), 'at most 6 decimal places')
          .default(50),
        /** TALLY_TRIAGE_ROUTES rules: {name, match: {dataset?, exception_type?, policy_severity?}, providers}. */
        routes: z.array(z.unknown()).optional(),
        /** USD per million tokens by model id, over the defaults of functions/triage/cost.ts. */
        prices: priceTableSchema.optional(),
      })
      .strict()
      .default({ dailyBudgetUsd: 50 }),
    /**
     * Bedrock Guardrails per region (a guardrail is a regional resource): triage passes the one of
     * its region to every Converse call; an intervention counts as a failed answer.
     */
    guardrails: z
      .partialRecord(
        region,
        z
          .object({
            id: z.string().regex(/^[a-z0-9]+$/, 'must be a guardrail id such as "gr1abc2def3"'),
            version: z.string().regex(/^(DRAFT|\d+)$/, 'must be DRAFT or a version number'),
          })
          .strict(),
      )
      .default({}),
    functions: z
      .partialRecord(z.enum(FUNCTION_NAMES as [FunctionName, ...FunctionName[]]), functionSettings)
      .default({}),
    retention: z
      .object({
        logDays: z
          .union([
            z.literal(7),
            z.literal(14),
            z.literal(30),
            z.literal(60),
            z.literal(90),
            z.literal(180),
            z.literal(365),
            z.literal(731),
          ])
          .default(30),
        processedDays: z.number().int().min(1).default(90),
        rejectedDays: z.number().int().min(1).default(365),
        noncurrentVersionDays: z.number().int().min(1).default(30),
        /** Runs' findings chunks under results/: needed only until the run is stored (or redriven). */
        resultsDays: z.number().int().min(1).default(7),
      })
      .strict()
      .default({ logDays: 30, processedDays: 90, rejectedDays: 365, noncurrentVersionDays: 30, resultsDays: 7 }),
    api: z
      .object({
        throttleRatePerSecond: z.number().positive().default(50),
        throttleBurst: z.number().int().positive().default(100),
        /** Browser origins allowed to PUT to pre-signed URLs and call the API. */
        corsOrigins: z.array(z.url()).default([]),
      })
      .strict()
      .default({ throttleRatePerSecond: 50, throttleBurst: 100, corsOrigins: [] }),
    logLevel: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
    /**
     * The dashboard as a static site (S3 + CloudFront) in the primary region, off by default. It
     * answers on its own name in the hosted zone of `domain`, and signs in with authorization
     * code + PKCE at auth.issuer as a public client (no secret).
     */
    web: z
      .object({
        enabled: z.boolean().default(false),
        /** e.g. tally.acme.example; its certificate is issued in us-east-1, as CloudFront requires. */
        domainName: z
          .string()
          .regex(/^([a-z0-9-]+\.)+[a-z]{2,}$/)
          .optional(),
        /** The OIDC client the page signs in as (registered at auth.issuer, PKCE, no secret). */
        oidcClientId: z.string().min(1).optional(),
        oidcScope: z.string().min(1).default('openid email'),
      })
      .strict()
      .default({ enabled: false, oidcScope: 'openid email' }),
  })
  .strict()
  .superRefine((c, ctx) => {
    // State beside either region would be down with it: that region's outage would also stop the
    // plan and apply of the stack that must take over (issue 15).
    if (c.state.region === c.regions.primary || c.state.region === c.regions.secondary)
      ctx.addIssue({
        code: 'custom',
        path: ['state', 'region'],
        message: `must be a third region, neither the primary (${c.regions.primary}) nor the secondary (${c.regions.secondary}): the state must outlive either region's outage`,
      });
  })
  .superRefine((c, ctx) => {
    // The routes are checked as the function checks them at its cold start, before anything deploys.
    try {
      triageRoutesFor(c);
    } catch (error) {
      ctx.addIssue({ code: 'custom', path: ['triage', 'routes'], message: (error as Error).message });
    }
  })
  .superRefine((c, ctx) => {
    if (!c.web.enabled) return;
    if (!c.web.domainName)
      ctx.addIssue({
        code: 'custom',
        path: ['web', 'domainName'],
        message: 'is required when web.enabled is true (the site and the API CORS rule need its origin)',
      });
    if (!c.web.oidcClientId)
      ctx.addIssue({
        code: 'custom',
        path: ['web', 'oidcClientId'],
        message: 'is required when web.enabled is true (the page signs in at auth.issuer)',
      });
    if (!c.domain)
      ctx.addIssue({
        code: 'custom',
        path: ['domain'],
        message:
          "is required when web.enabled is true (the site's name lives in domain.hostedZoneId; the page calls the API at domain.apiDomainName)",
      });
  });

export type InfraConfig = z.infer<typeof infraConfigSchema>;

/**
 * The triage routing table the deployed function will build: the configured routes over the
 * default chain the stacks give it (the triage model, the fallback model, rules). Bedrock only:
 * no OpenAI endpoint is configured on AWS.
 */
export function triageRoutesFor(config: Pick<InfraConfig, 'models' | 'triage'>): RouteTable {
  const defaultChain = parseProviderChain(
    `bedrock:${config.models.triage},bedrock:${config.models.fallback},rules`,
  ).providers;
  return parseRouteTable(
    config.triage.routes === undefined ? undefined : JSON.stringify(config.triage.routes),
    defaultChain,
    { openaiConfigured: false },
  );
}

export class InfraConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InfraConfigError';
  }
}

/** Validates a raw object; every problem is named in one error. */
export function parseInfraConfig(raw: unknown, source = 'configuration'): InfraConfig {
  const parsed = infraConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new InfraConfigError(`invalid ${source}: ${problems.join('; ')}`);
  }
  return parsed.data;
}

export function loadInfraConfig(env: NodeJS.ProcessEnv = process.env): InfraConfig {
  if (env.TALLY_INFRA_CONFIG_JSON)
    return parseInfraConfig(
      readJson(env.TALLY_INFRA_CONFIG_JSON, 'TALLY_INFRA_CONFIG_JSON'),
      'TALLY_INFRA_CONFIG_JSON',
    );
  const path = env.TALLY_INFRA_CONFIG ?? DEFAULT_CONFIG_PATH;
  if (!existsSync(path)) {
    if (env.TALLY_INFRA_CONFIG) throw new InfraConfigError(`TALLY_INFRA_CONFIG names ${path}, which does not exist`);
    return parseInfraConfig({});
  }
  return parseInfraConfig(readJson(readFileSync(path, 'utf8'), path), path);
}

function readJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InfraConfigError(`${source} is not valid JSON: ${(error as Error).message}`);
  }
}

/** Browser origins allowed by the API and the data bucket: the configured ones plus the dashboard's own. */
export function corsOriginsFor(config: InfraConfig): string[] {
  const site = config.web.enabled && config.web.domainName ? [`https://${config.web.domainName}`] : [];
  return [...new Set([...config.api.corsOrigins, ...site])];
}

/** A function's memory, /tmp size, timeout and (for a queue consumer) concurrency: the shared defaults, overridden by configuration. */
export function functionSettingsFor(
  config: InfraConfig,
  name: FunctionName,
): { memoryMb: number; ephemeralStorageMb: number; timeoutSeconds: number; maxConcurrency: number | undefined } {
  const override = config.functions[name] ?? {};
  const defaults: { memoryMb: number; ephemeralStorageMb?: number; timeoutSeconds: number; maxConcurrency?: number } =
    FUNCTIONS[name];
  return {
    memoryMb: override.memoryMb ?? defaults.memoryMb,
    ephemeralStorageMb: override.ephemeralStorageMb ?? defaults.ephemeralStorageMb ?? LAMBDA_DEFAULT_EPHEMERAL_MB,
    timeoutSeconds: override.timeoutSeconds ?? defaults.timeoutSeconds,
    maxConcurrency: override.maxConcurrency ?? defaults.maxConcurrency,
  };
}

/** What Lambda gives a function's /tmp when nothing is set. */
export const LAMBDA_DEFAULT_EPHEMERAL_MB = 512;
