/**
 * Triage Lambda: the triage queue's five kinds of message — a run's dispatch, a page of uncited
 * triages to ask again, a pattern, a page of a pattern's members, an exception (a body without
 * `kind`, as before dispatch existed).
 */
import type { SQSRecord } from 'aws-lambda';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { createAwsClients } from '../shared/adapters/clients.ts';
import { ConfigError } from '../shared/config.ts';
import { createLogger } from '../shared/logger.ts';
import type { BusinessMetrics } from '../shared/metrics.ts';
import { triageQueueMessageSchema, type TriageQueueMessage } from '../shared/messages.ts';
import { SqsQueue } from '../shared/adapters/sqs-queue.ts';
import { DynamoRunStore } from '../shared/tables/runs-dynamo.ts';
import { DynamoRunExceptionListing, DynamoUncitedListing } from '../shared/tables/run-exceptions-dynamo.ts';
import { DynamoPatternStore } from '../shared/tables/patterns-dynamo.ts';
import { dispatchRun, type DispatchDeps } from './dispatch.ts';
import { triagePattern, triagePatternMembers, type PatternOutcome, type PatternTriageDeps } from './pattern-triage.ts';
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
import { S3DatasetPolicies } from '../shared/adapters/s3-dataset-policies.ts';
import { withBundledPolicies } from '../shared/dataset-policies.ts';
import { SNSClient } from '@aws-sdk/client-sns';
import { SnsBusinessNotifier } from '../shared/adapters/sns-notifier.ts';
import { datasetTriagePolicies } from './dataset-policy.ts';
import { BedrockConverseProvider } from './providers/bedrock.ts';
import { OpenAICompatibleProvider } from './providers/openai.ts';
import { RulesProvider } from './providers/rules.ts';
import type { TriageProvider } from './providers/types.ts';
import { triageException, type TriageDeps, type TriageOutcome } from './triage.ts';
import { askUncitedAgain, type UncitedDeps } from './uncited.ts';

const logger = createLogger('triage');

// Lambda's init phase (locally: the function thread's start). A local embedding model starts
// loading now, not in a run's first retrieval: under bench:pipeline each of a run's pattern
// retrievals waited ~1 s for it. A configuration error is reported when the deps are built.
try {
  createEmbedder().prepare?.();
} catch {
  // reported by defaultDeps
}

export type TriageHandlerDeps = TriageDeps & DispatchDeps & PatternTriageDeps & UncitedDeps & SqsConsumerDeps;

export function defaultDeps(): TriageHandlerDeps {
  const config = triageConfig();
  const aws = createAwsClients({ s3ForcePathStyle: false });
  // One attempt per SDK call: the chain owns retries, backoff and the circuit breaker.
  const bedrock = new BedrockRuntimeClient({ maxAttempts: 1 });
  const policy = loadReconPolicyFile(config[ENV.reconPolicyPath]);
  const openaiBaseUrl = config[ENV.openaiBaseUrl];
  // One instance per distinct provider, shared by the routes that name it, built once per container.
  const routes = buildRouteTable(config.routes, (spec): TriageProvider => {
    if (spec.kind === 'bedrock')
      return new BedrockConverseProvider(bedrock, spec.model, { guardrail: config[ENV.bedrockGuardrail] });
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
  const triageQueue = new SqsQueue<TriageQueueMessage>(aws.sqs, config[ENV.triageQueueUrl]);
  return {
    store: new DynamoTriageStore(aws.dynamo, config[ENV.exceptionsTable]),
    runs: new DynamoRunStore(aws.dynamo, config[ENV.runsTable]),
    patterns: new DynamoPatternStore(aws.dynamo, config[ENV.patternsTable]),
    listing: new DynamoRunExceptionListing(aws.dynamo, config[ENV.exceptionsTable]),
    uncited: new DynamoUncitedListing(aws.dynamo, config[ENV.exceptionsTable]),
    uncitedSettleMs: config[ENV.uncitedSettleSeconds] * 1000,
    triageQueue,
    policies: datasetTriagePolicies(
      withBundledPolicies(new S3DatasetPolicies(aws.s3)),
      config[ENV.bucket],
      config[ENV.maskingSecret],
    ),
    embedder: createEmbedder(),
    policyIndex: createVectorIndex('policies'),
    exceptionsIndex: createVectorIndex('exceptions'),
    notifier: new SnsBusinessNotifier(new SNSClient({}), config[ENV.businessEventsTopicArn]),
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
    onRecovered: async (provider) => {
      logger.info('a model answers again after its circuit breaker opened: degraded triages asked again', {
        provider,
      });
      await triageQueue.send([{ kind: 'uncited', requested_at: new Date().toISOString(), recovered: provider }]);
    },
    ...consumerDeps(
      aws,
      { failuresTable: config[ENV.failuresTable], deadLetterQueueUrl: config[ENV.deadLetterQueueUrl] },
      { service: 'triage', queue: consumedQueue('triage') },
    ),
  };
}

export function createHandler(makeDeps: () => TriageHandlerDeps = defaultDeps) {
  return createSqsHandler(logger, makeDeps, async (record: SQSRecord, deps) => {
    const message = parseBody(record, triageQueueMessageSchema);
    if (message.kind === 'dispatch') {
      logger.appendKeys({ runId: message.run_id });
      const outcome = await dispatchRun(message, deps);
      logger.info('dispatch page handled', { messageId: record.messageId, result: outcome });
    } else if (message.kind === 'uncited') {
      const outcome = await askUncitedAgain(message, deps);
      logger.info('uncited triages asked again', {
        messageId: record.messageId,
        ...(message.document === undefined ? {} : { document: message.document }),
        ...(message.recovered === undefined ? {} : { recovered: message.recovered }),
        ...(message.dataset === undefined ? {} : { dataset: message.dataset }),
        result: outcome,
      });
    } else if (message.kind === 'pattern') {
      logger.appendKeys({ runId: message.run_id, patternId: message.pattern_id });
      const outcome = await triagePattern(message, deps);
      if (outcome.outcome === 'TRIAGED') countTriage(outcome, deps.metrics);
      logger.info('pattern triage finished', { messageId: record.messageId, result: outcome });
    } else if (message.kind === 'pattern-members') {
      logger.appendKeys({ runId: message.run_id, patternId: message.pattern_id });
      const outcome = await triagePatternMembers(message, deps);
      logger.info('pattern members triaged', { messageId: record.messageId, result: outcome });
    } else {
      logger.appendKeys({ exceptionId: message.exception_id, runId: message.run_id });
      const outcome = await triageException(message, deps);
      countTriage(outcome, deps.metrics);
      logger.info('triage finished', { messageId: record.messageId, result: outcome });
    }
  });
}

/** Business counts of one triage. */
export function countTriage(outcome: TriageOutcome | PatternOutcome, metrics: BusinessMetrics | undefined): void {
  if (outcome.outcome !== 'TRIAGED') return;
  metrics?.count('triage', 1, outcome.provider);
  metrics?.count('triages');
  // A spent budget has its own metric and alarm: it is not a model failure.
  if (outcome.degraded && outcome.degradedReason !== 'budget') metrics?.count('triageDegraded');
}

export const handler = createHandler();
