import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';

/**
 * SDK clients, built once per container. Endpoints come from the SDK's own environment
 * variables (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_DYNAMODB), which is
 * how the local stack points the same code at its emulators.
 */
export interface AwsClients {
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  readonly dynamo: DynamoDBDocumentClient;
}

export function createAwsClients(options: { s3ForcePathStyle: boolean }): AwsClients {
  return {
    // WHEN_REQUIRED: no checksum headers the emulator or a pre-signed URL would not expect.
    s3: new S3Client({
      forcePathStyle: options.s3ForcePathStyle,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    }),
    // Queue URLs name the queue; the endpoint (AWS or AWS_ENDPOINT_URL_SQS) says where it lives.
    sqs: new SQSClient({ useQueueUrlAsEndpoint: false }),
    dynamo: DynamoDBDocumentClient.from(new DynamoDBClient({}), {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    }),
  };
}
