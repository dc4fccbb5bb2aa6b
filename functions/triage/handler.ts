/** Triage Lambda: SQS triage requests -> triageException. */
import type { SQSRecord } from 'aws-lambda';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { createAwsClients } from '../shared/adapters/clients.ts';
import { ConfigError } from '../shared/config.ts';
import { createLogger } from '../shared/logger.ts';
import type { BusinessMetrics } from '../shared/metrics.ts';
import { triageRequestSchema } from '../shared/messages.ts';
import { loadReconPolicyFile } from '../shared/recon-policy-file.ts';
import { ENV } from '../shared/resources.ts';
import { createEmbedder, createVectorIndex } from '../shared/search/factory.ts';
import { sleep } from '../shared/retry.ts';
import { consumedQueue, createSqsHandler, consumerDeps, parseBody, type SqsConsumerDeps } from '../shared/sqs-batch.ts';
import { DynamoCircuitBreaker } from '../shared/tables/circuit-breaker-dynamo.ts';
import { DynamoTriageStore } from '../shared/tables/exceptions-dynamo.ts';
import { DynamoRunCosts } from '../shared/tables/runs-dynamo.ts';
import { DynamoUsageStore } from '../shared/tables/usage-dynamo.ts';
import { triageConfig } from './config.ts';
import { buildRouteTable } from './routing.ts';
import { BedrockConverseProvider } from './providers/bedrock.ts';
import { OpenAICompatibleProvider } from './providers/openai.ts';
import { RulesProvider } from './providers/rules.ts';
import type { TriageProvider } from './providers/types.ts';
import { triageException, type TriageDeps, type TriageOutcome } from './triage.ts';

const logger = createLogger('triage');

export function defaultDeps(): TriageDeps & SqsConsumerDeps {
  const config = triageConfig();
  const aws = createAwsClients({ s3ForcePathStyle: false });
  // One attempt per SDK call: the chain owns retries, backoff and the circuit breaker.
  const bedrock = new BedrockRuntimeClient({ maxAttempts: 1 });
  const policy = loadReconPolicyFile(config[ENV.reconPolicyPath]);
  const openaiBaseUrl = config[ENV.openaiBaseUrl];
  // One instance per distinct provider, shared by the routes that name it, built once per container.
  const routes = buildRouteTable(config.routes, (spec): TriageProvider => {
    if (spec.kind === 'bedrock') return new BedrockConverseProvider(bedrock, spec.model);
    if (spec.kind === 'openai' && openaiBaseUrl)
      return new OpenAICompatibleProvider({
        baseUrl: openaiBaseUrl,
        model: spec.model,
        ...(config[ENV.openaiApiKey] ? { apiKey: config[ENV.openaiApiKey] } : {}),
      });
    if (spec.kind === 'openai')
      throw new ConfigError(`openai:${spec.model} is configured but ${ENV.openaiBaseUrl} is not set`);
    return new RulesProvider(policy);
  });
  return {
    store: new DynamoTriageStore(aws.dynamo, config[ENV.exceptionsTable]),
    embedder: createEmbedder(),
    policyIndex: createVectorIndex('policies'),
    exceptionsIndex: createVectorIndex('exceptions'),
    routes,
    prices: config.prices,
    dailyBudgetMicroUsd: config[ENV.triageDailyBudgetUsd],
    usage: new DynamoUsageStore(aws.dynamo, config[ENV.usageTable]),
    runCosts: new DynamoRunCosts(aws.dynamo, config[ENV.runsTable]),
    breaker: new DynamoCircuitBreaker(aws.dynamo, config[ENV.circuitBreakerTable], {
      threshold: config[ENV.breakerThreshold],
      cooldownMs: config[ENV.breakerCooldownSeconds] * 1000,
    }),
    now: Date.now,
    sleep,
    maxThrottleRetries: 3,
    ...consumerDeps(
      aws,
      { failuresTable: config[ENV.failuresTable], deadLetterQueueUrl: config[ENV.deadLetterQueueUrl] },
      { service: 'triage', queue: consumedQueue('triage') },
    ),
  };
}

export function createHandler(makeDeps: () => TriageDeps & SqsConsumerDeps = defaultDeps) {
  return createSqsHandler(logger, makeDeps, async (record: SQSRecord, deps) => {
    const request = parseBody(record, triageRequestSchema);
    logger.appendKeys({ exceptionId: request.exception_id, runId: request.run_id });
    const outcome = await triageException(request, deps);
    countTriage(outcome, deps.metrics);
    logger.info('triage finished', { messageId: record.messageId, result: outcome });
  });
}

/** Business counts of one triage. */
export function countTriage(outcome: TriageOutcome, metrics: BusinessMetrics | undefined): void {
  if (outcome.outcome !== 'TRIAGED') return;
  metrics?.count('triage', 1, outcome.provider);
  metrics?.count('triages');
  // A spent budget has its own metric and alarm: it is not a model failure.
  if (outcome.degraded && outcome.degradedReason !== 'budget') metrics?.count('triageDegraded');
}

export const handler = createHandler();
