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
import { S3DatasetPolicies } from '../shared/adapters/s3-dataset-policies.ts';
import { withBundledPolicies } from '../shared/dataset-policies.ts';
import { triageConfig } from './config.ts';
import { datasetTriagePolicies } from './dataset-policy.ts';
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
  const providers: TriageProvider[] = config[ENV.triageProviders].map((p) => {
    if (p.kind === 'bedrock')
      return new BedrockConverseProvider(bedrock, p.model, { guardrail: config[ENV.bedrockGuardrail] });
    if (p.kind === 'openai') {
      const baseUrl = config[ENV.openaiBaseUrl];
      if (!baseUrl)
        throw new ConfigError(`${ENV.triageProviders} names openai:${p.model} but ${ENV.openaiBaseUrl} is not set`);
      return new OpenAICompatibleProvider({
        baseUrl,
        model: p.model,
        ...(config[ENV.openaiApiKey] ? { apiKey: config[ENV.openaiApiKey] } : {}),
      });
    }
    return new RulesProvider(policy);
  });
  // Nothing is left untriaged: rules end every chain.
  if (!providers.some((p) => p.kind === 'rules')) providers.push(new RulesProvider(policy));
  return {
    store: new DynamoTriageStore(aws.dynamo, config[ENV.exceptionsTable]),
    policies: datasetTriagePolicies(
      withBundledPolicies(new S3DatasetPolicies(aws.s3)),
      config[ENV.bucket],
      config[ENV.maskingSecret],
    ),
    embedder: createEmbedder(),
    policyIndex: createVectorIndex('policies'),
    exceptionsIndex: createVectorIndex('exceptions'),
    providers,
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
  if (outcome.degraded) metrics?.count('triageDegraded');
}

export const handler = createHandler();
