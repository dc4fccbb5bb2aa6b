/**
 * INTERIM stream consumer, written on the infrastructure branch (issue 15, F2) so the stack's
 * stream-index Lambda has code the parity test can run: F1 owns the real consumer, which indexes
 * the whole document from the item (its stored embedding, masked for its dataset), and the lead
 * keeps F1's at merge.
 *
 * What this one does: each change on the exceptions table's stream (replicated ones included)
 * mirrors the item's status and severity into the region's exceptions index — the fields the API
 * and recon change after triage indexed the document. A record that fails is reported alone
 * (partial batch response); the event source mapping retries it, then sends it to the failure queue.
 */
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { createVectorIndex } from '../shared/search/factory.ts';
import type { VectorIndex } from '../shared/search/ports.ts';
import { createLogger } from '../shared/logger.ts';

const logger = createLogger('stream-index');

export interface StreamIndexDeps {
  readonly exceptionsIndex: Pick<VectorIndex, 'updateFields' | 'deleteWhere'>;
}

export function defaultDeps(): StreamIndexDeps {
  return { exceptionsIndex: createVectorIndex('exceptions') };
}

/** The change one stream record makes to the index, or nothing (an item that is not an exception). */
async function indexChange(record: DynamoDBRecord, deps: StreamIndexDeps): Promise<void> {
  const image = record.eventName === 'REMOVE' ? undefined : record.dynamodb?.NewImage;
  const keys = record.dynamodb?.Keys;
  const id = keys?.exception_id?.S;
  if (!id) throw new Error(`stream record ${record.dynamodb?.SequenceNumber} has no exception_id key`);
  if (!image) {
    await deps.exceptionsIndex.deleteWhere('exception_id', id);
    return;
  }
  const item = unmarshall(image as Record<string, AttributeValue>) as {
    status?: string;
    severity?: string;
    policy_severity?: string;
    triage?: { severity?: string };
  };
  const severity = item.triage?.severity ?? item.severity ?? item.policy_severity;
  await deps.exceptionsIndex.updateFields(id, {
    ...(item.status ? { status: item.status } : {}),
    ...(severity ? { severity } : {}),
  });
}

export function createHandler(makeDeps: () => StreamIndexDeps = defaultDeps) {
  let deps: StreamIndexDeps | undefined;
  return middy<DynamoDBStreamEvent, DynamoDBBatchResponse>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .handler(async (event) => {
      // Only documents triage indexed are mirrored: where there is no index yet, there is nothing to update.
      deps ??= makeDeps();
      const batchItemFailures: { itemIdentifier: string }[] = [];
      // In stream order: two changes of one item are applied as they happened.
      for (const record of event.Records) {
        const sequence = record.dynamodb?.SequenceNumber ?? '';
        if (batchItemFailures.length > 0) {
          // Lambda retries from the first reported failure: later records must not run ahead of it.
          batchItemFailures.push({ itemIdentifier: sequence });
          continue;
        }
        try {
          await indexChange(record, deps);
        } catch (error) {
          logger.error('could not index a stream record', {
            sequence,
            exception_id: record.dynamodb?.Keys?.exception_id?.S,
            error: (error as Error).message,
          });
          batchItemFailures.push({ itemIdentifier: sequence });
        }
      }
      logger.info('indexed stream records', { records: event.Records.length, failed: batchItemFailures.length });
      return { batchItemFailures };
    });
}

export const handler = createHandler();
