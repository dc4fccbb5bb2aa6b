/**
 * PLACEHOLDER so the bundle and the stacks build on the infrastructure branch (issue 15, F2):
 * the real consumer (F1) indexes each exception the stream carries into the region's exceptions
 * index. Until then every record is reported failed, so nothing is acknowledged that was not
 * indexed: the event source mapping retries, bisects, then sends the batch to its failure queue.
 */
import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';

export const handler = async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => ({
  batchItemFailures: event.Records.flatMap((r) =>
    r.dynamodb?.SequenceNumber ? [{ itemIdentifier: r.dynamodb.SequenceNumber }] : [],
  ),
});
