/**
 * The search factory on Lambda: a configuration that would fall back to a local-only adapter
 * fails at cold start with one error naming every variable to set (issue 9, defect 1).
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../functions/shared/config.ts';
import { createEmbedder, createVectorIndex } from '../../functions/shared/search/factory.ts';
import { OpenSearchVectorIndex } from '../../functions/shared/search/opensearch-index.ts';

const ON_LAMBDA = { AWS_LAMBDA_FUNCTION_NAME: 'acme-tally-recon', AWS_REGION: 'eu-west-1' };

describe('createVectorIndex on Lambda', () => {
  it('refuses the local store when no search settings are given, naming each missing variable', () => {
    const attempt = () => createVectorIndex('exceptions', { ...ON_LAMBDA });

    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(
      'on AWS Lambda the exceptions index needs TALLY_VECTOR_STORE=opensearch, TALLY_OPENSEARCH_ENDPOINT, TALLY_EXCEPTIONS_INDEX',
    );
  });

  it('refuses an explicit local store', () => {
    expect(() =>
      createVectorIndex('policies', {
        ...ON_LAMBDA,
        TALLY_VECTOR_STORE: 'local',
        TALLY_OPENSEARCH_ENDPOINT: 'https://x.eu-west-1.aoss.amazonaws.com',
        TALLY_POLICIES_INDEX: 'acme-tally-policies',
      }),
    ).toThrow('needs TALLY_VECTOR_STORE=opensearch (');
  });

  it('builds the OpenSearch adapter when the collection and index are named', () => {
    const index = createVectorIndex('exceptions', {
      ...ON_LAMBDA,
      TALLY_VECTOR_STORE: 'opensearch',
      TALLY_OPENSEARCH_ENDPOINT: 'https://x.eu-west-1.aoss.amazonaws.com',
      TALLY_EXCEPTIONS_INDEX: 'acme-tally-exceptions',
    });

    expect(index).toBeInstanceOf(OpenSearchVectorIndex);
  });

  it('off Lambda, the defaults still pick the embedded store', () => {
    expect(() => createVectorIndex('exceptions', { TALLY_VECTOR_DIR: '/tmp/tally-factory-test' })).not.toThrow();
  });
});

describe('createEmbedder on Lambda', () => {
  it('refuses to fall back to the hashing embedder', () => {
    expect(() => createEmbedder({ ...ON_LAMBDA })).toThrow(
      'on AWS Lambda the embedder needs TALLY_EMBEDDER (bedrock-titan or openai)',
    );
  });

  it('builds the configured embedder', () => {
    const embedder = createEmbedder({
      ...ON_LAMBDA,
      TALLY_EMBEDDER: 'bedrock-titan',
      TALLY_EMBEDDING_MODEL_ID: 'amazon.titan-embed-text-v2:0',
    });

    expect(embedder.id).toBe('amazon.titan-embed-text-v2:0');
  });
});
