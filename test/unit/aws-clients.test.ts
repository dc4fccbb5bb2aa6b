import { afterEach, describe, expect, it, vi } from 'vitest';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { createAwsClients, SDK_LOGGER } from '../../functions/shared/adapters/clients.ts';

describe('the SDK clients', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('log through SDK_LOGGER, which has no info or error for the logger middleware to feed', () => {
    vi.stubEnv('AWS_REGION', 'eu-west-1');
    const clients = createAwsClients({ s3ForcePathStyle: true });
    for (const client of [clients.s3, clients.sqs, clients.dynamo]) {
      const logger = client.config.logger as unknown as Record<string, unknown>;
      expect(logger).toBe(SDK_LOGGER);
      // With either method present, every call's input and output is copied through the
      // operation's sensitive-data filter to be logged (functions/shared/adapters/clients.ts).
      expect(logger.info).toBeUndefined();
      expect(logger.error).toBeUndefined();
    }
  });

  it('still answer and fail as before with that logger', async () => {
    const answers = [
      { status: 200, body: '{"Responses":{"t":[{"pk":{"S":"a"},"n":{"N":"1"}}]}}' },
      { status: 400, body: '{"__type":"com.amazonaws.dynamodb.v20120810#ValidationException","message":"bad key"}' },
    ];
    const requestHandler = {
      handle: async () => {
        const answer = answers.shift() ?? { status: 500, body: '{}' };
        return {
          response: {
            statusCode: answer.status,
            headers: { 'content-type': 'application/x-amz-json-1.0' },
            body: new Blob([answer.body]).stream(),
          },
        };
      },
    };
    const doc = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        region: 'eu-west-1',
        endpoint: 'http://127.0.0.1:9',
        credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
        requestHandler: requestHandler as never,
        logger: SDK_LOGGER,
        maxAttempts: 1,
      }),
    );
    const got = await doc.send(new BatchGetCommand({ RequestItems: { t: { Keys: [{ pk: 'a' }] } } }));
    expect(got.Responses?.t).toEqual([{ pk: 'a', n: 1 }]);
    await expect(doc.send(new BatchGetCommand({ RequestItems: { t: { Keys: [{ pk: 'b' }] } } }))).rejects.toThrow(
      'bad key',
    );
  });
});
