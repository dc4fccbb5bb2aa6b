import { z } from 'zod';
import { ConfigError, loadConfig, required } from '../shared/config.ts';
import { LOCAL_MASKING_SECRET } from '../shared/masking.ts';
import { MAX_DELAY_SECONDS } from '../shared/ports.ts';
import { ENV } from '../shared/resources.ts';
import { parsePriceTable } from './cost.ts';
import { parseProviderChain, parseRouteTable } from './routing.ts';

/** How long after a policy document is indexed its uncited exceptions are asked again (functions/triage/uncited.ts). */
export const DEFAULT_UNCITED_SETTLE_SECONDS = 60;

/** Provider chain syntax: comma-separated `bedrock:<model id>`, `openai:<model>`, `rules`. */
const providerChain = z
  .string()
  .default('rules')
  .transform((s, ctx) => {
    const { providers, problems } = parseProviderChain(s);
    for (const message of problems) ctx.addIssue({ code: 'custom', message });
    return providers;
  });

/** Dollars (a decimal string) to micro-dollars: the unit every cost is summed in (cost.ts). */
const budgetUsd = z
  .string()
  .optional()
  .transform((text, ctx) => {
    if (text === undefined || text.trim() === '') return undefined;
    if (!/^\d+(\.\d{1,6})?$/.test(text.trim())) {
      ctx.addIssue({ code: 'custom', message: 'must be an amount of US dollars, e.g. 25 or 12.50' });
      return z.NEVER;
    }
    const [whole, fraction = ''] = text.trim().split('.');
    return Number(whole) * 1_000_000 + Number(fraction.padEnd(6, '0'));
  });

/** The daily budget in micro-dollars, or undefined (no budget): triage enforces it, the query API reports it. */
export function dailyBudgetMicroUsd(env: NodeJS.ProcessEnv = process.env): number | undefined {
  return loadConfig({ [ENV.triageDailyBudgetUsd]: budgetUsd }, env)[ENV.triageDailyBudgetUsd];
}

export function triageConfig(env: NodeJS.ProcessEnv = process.env) {
  const onLambda = Boolean(env.AWS_LAMBDA_FUNCTION_NAME);
  const config = loadConfig(
    {
      [ENV.bucket]: required,
      [ENV.maskingSecret]: onLambda
        ? z.string({ error: 'is required on AWS' }).min(32, 'must be at least 32 characters')
        : z.string().min(16).default(LOCAL_MASKING_SECRET),
      [ENV.exceptionsTable]: required,
      [ENV.runsTable]: required,
      [ENV.patternsTable]: required,
      [ENV.triageQueueUrl]: required,
      // A new CRITICAL rating is announced there (functions/triage/deadline.ts).
      [ENV.businessEventsTopicArn]: required,
      [ENV.circuitBreakerTable]: required,
      [ENV.usageTable]: required,
      [ENV.triageProviders]: providerChain,
      [ENV.triageRoutes]: z.string().optional(),
      [ENV.triagePrices]: z.string().optional(),
      [ENV.triageDailyBudgetUsd]: budgetUsd,
      [ENV.bedrockGuardrail]: z
        .string()
        .regex(/^[a-z0-9]+:(DRAFT|\d+)$/, 'must be <guardrail id>:<version>, e.g. gr1abc2def3:1')
        .transform((s) => {
          const [id, version] = s.split(':') as [string, string];
          return { id, version };
        })
        .optional(),
      [ENV.openaiBaseUrl]: z.string().url().optional(),
      [ENV.openaiApiKey]: z.string().optional(),
      [ENV.reconPolicyPath]: z.string().default('policies/recon-policy.md'),
      [ENV.failuresTable]: z.string().optional(),
      [ENV.deadLetterQueueUrl]: z.string().optional(),
      [ENV.breakerThreshold]: z.coerce.number().int().positive().default(3),
      [ENV.breakerCooldownSeconds]: z.coerce.number().int().positive().default(60),
      // The sweep waits as a delayed message.
      [ENV.uncitedSettleSeconds]: z.coerce
        .number()
        .int('must be a whole number of seconds')
        .min(0)
        .max(MAX_DELAY_SECONDS)
        .default(DEFAULT_UNCITED_SETTLE_SECONDS),
    },
    env,
  );
  const openaiConfigured = Boolean(config[ENV.openaiBaseUrl]);
  const defaultOpenai = config[ENV.triageProviders].find((p) => p.kind === 'openai');
  if (defaultOpenai && !openaiConfigured)
    throw new ConfigError(
      `${ENV.triageProviders} names openai:${defaultOpenai.model} but ${ENV.openaiBaseUrl} is not set`,
    );
  let prices;
  try {
    prices = parsePriceTable(config[ENV.triagePrices]);
  } catch (error) {
    throw new ConfigError(`${ENV.triagePrices}: ${(error as Error).message}`);
  }
  return Object.freeze({
    ...config,
    routes: parseRouteTable(config[ENV.triageRoutes], config[ENV.triageProviders], { openaiConfigured }),
    prices,
  });
}
