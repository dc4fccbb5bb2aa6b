/**
 * Builds the configured embedder and vector indexes from the environment. Callers only ever see
 * the interfaces in ports.ts.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { Client } from '@opensearch-project/opensearch';
import { AwsSigv4Signer } from '@opensearch-project/opensearch/aws';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { ConfigError, loadConfig } from '../config.ts';
import { ENV, LAMBDA_ENV, indexNames, type IndexKind } from '../resources.ts';
import { BedrockTitanEmbedder } from './bedrock-embedder.ts';
import { HashingEmbedder } from './hashing-embedder.ts';
import { AnnVectorIndex } from './ann-index.ts';
import { OpenAICompatibleEmbedder } from './openai-embedder.ts';
import { OpenSearchVectorIndex } from './opensearch-index.ts';
import type { Embedder, VectorIndex } from './ports.ts';

export type { IndexKind };

/** Keyword fields each index filters on. */
export const INDEX_FIELDS: Record<IndexKind, readonly string[]> = {
  exceptions: ['exception_id', 'exception_type', 'status', 'severity', 'dataset', 'business_date', 'run_id', 'key'],
  policies: ['document', 'section', 'passage_id', 'exception_types', 'source_key', 'etag'],
};

function searchConfig(env: NodeJS.ProcessEnv) {
  return loadConfig(
    {
      [ENV.embedder]: z.enum(['hashing', 'bedrock-titan', 'openai']).default('hashing'),
      [ENV.embeddingModelId]: z.string().optional(),
      [ENV.vectorStore]: z.enum(['local', 'opensearch']).default('local'),
      [ENV.vectorDir]: z.string().default('.tally/vectors'),
      [ENV.opensearchEndpoint]: z.string().url().optional(),
      [ENV.exceptionsIndex]: z.string().optional(),
      [ENV.policiesIndex]: z.string().optional(),
      [ENV.openaiBaseUrl]: z.string().url().optional(),
      [ENV.openaiApiKey]: z.string().optional(),
      [ENV.embeddingDimensions]: z.coerce.number().int().positive().default(1024),
    },
    env,
  );
}

const INDEX_ENV = { exceptions: ENV.exceptionsIndex, policies: ENV.policiesIndex } as const satisfies Record<
  IndexKind,
  string
>;

/**
 * The local-only adapters (the embedded store under the working directory, the hashing embedder
 * chosen by default) never run on Lambda: there the task root is read-only and nothing persists.
 * A deployment that leaves the choice to the defaults fails at cold start, naming what to set.
 */
function refuseLocalOnLambda(env: NodeJS.ProcessEnv, what: string, missing: readonly string[]): void {
  if (!env[LAMBDA_ENV.functionName] || missing.length === 0) return;
  throw new ConfigError(
    `invalid configuration: on AWS Lambda the ${what} needs ${missing.join(', ')} (the local-only default cannot run there)`,
  );
}

export function createEmbedder(env: NodeJS.ProcessEnv = process.env): Embedder {
  refuseLocalOnLambda(env, 'embedder', env[ENV.embedder] ? [] : [`${ENV.embedder} (bedrock-titan or openai)`]);
  const config = searchConfig(env);
  switch (config[ENV.embedder]) {
    case 'bedrock-titan':
      return new BedrockTitanEmbedder(
        new BedrockRuntimeClient({}),
        config[ENV.embeddingModelId] ?? 'amazon.titan-embed-text-v2:0',
      );
    case 'openai': {
      const baseUrl = config[ENV.openaiBaseUrl];
      const model = config[ENV.embeddingModelId];
      if (!baseUrl || !model)
        throw new Error(`${ENV.embedder}=openai needs ${ENV.openaiBaseUrl} and ${ENV.embeddingModelId}`);
      return new OpenAICompatibleEmbedder({
        baseUrl,
        model,
        dimensions: config[ENV.embeddingDimensions],
        ...(config[ENV.openaiApiKey] ? { apiKey: config[ENV.openaiApiKey] } : {}),
      });
    }
    default:
      return new HashingEmbedder(config[ENV.embeddingDimensions]);
  }
}

export function createVectorIndex(
  kind: IndexKind,
  env: NodeJS.ProcessEnv = process.env,
  dimensions = 1024,
): VectorIndex {
  refuseLocalOnLambda(env, `${kind} index`, [
    ...(env[ENV.vectorStore] === 'opensearch' ? [] : [`${ENV.vectorStore}=opensearch`]),
    ...(env[ENV.opensearchEndpoint] ? [] : [ENV.opensearchEndpoint]),
    ...(env[INDEX_ENV[kind]] ? [] : [INDEX_ENV[kind]]),
  ]);
  const config = searchConfig(env);
  const name = config[INDEX_ENV[kind]] ?? indexNames()[kind];
  if (config[ENV.vectorStore] === 'local') {
    return AnnVectorIndex.at(join(config[ENV.vectorDir], `${name}.jsonl`));
  }
  const endpoint = config[ENV.opensearchEndpoint];
  if (!endpoint)
    throw new ConfigError(`invalid configuration: ${ENV.vectorStore}=opensearch needs ${ENV.opensearchEndpoint}`);
  const client = new Client({
    ...AwsSigv4Signer({ region: env.AWS_REGION ?? 'us-east-1', service: 'aoss', getCredentials: defaultProvider() }),
    node: endpoint,
  });
  return new OpenSearchVectorIndex({ client, index: name, dimensions, keywordFields: INDEX_FIELDS[kind] });
}
