/**
 * Stream-index Lambda: DynamoDB stream records of the exceptions table (NEW_AND_OLD_IMAGES) ->
 * the region's exceptions index. Each region runs it on its own table replica's stream, so
 * replicated writes are indexed where they land and either region's index follows the table.
 * It runs whatever the region's role: a standby's index must be current when it is promoted.
 *
 * A batch keeps only the latest record per exception (the index needs the newest image, not
 * every step), projects those concurrently, and reports failed ones by sequence number: Lambda
 * retries from the lowest reported, so nothing after a failure is lost, and what is replayed is
 * idempotent (replace by id, delete by id).
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { createAwsClients } from '../shared/adapters/clients.ts';
import { S3DatasetPolicies } from '../shared/adapters/s3-dataset-policies.ts';
import { withBundledPolicies } from '../shared/dataset-policies.ts';
import { createLogger } from '../shared/logger.ts';
import { ENV } from '../shared/resources.ts';
import { createVectorIndex, embedderIdentity } from '../shared/search/factory.ts';
import { datasetTriagePolicies } from '../triage/dataset-policy.ts';
import { streamIndexConfig } from './config.ts';
import { isExceptionItem, projectChange, type ProjectionDeps, type TableChange } from './project.ts';

const logger = createLogger('stream-index');

export function defaultDeps(): ProjectionDeps {
  const config = streamIndexConfig();
  const aws = createAwsClients({ s3ForcePathStyle: config[ENV.s3ForcePathStyle] });
  const embedder = embedderIdentity();
  return {
    index: createVectorIndex('exceptions', process.env, embedder.dimensions),
    policies: datasetTriagePolicies(
      withBundledPolicies(new S3DatasetPolicies(aws.s3)),
      config[ENV.bucket],
      config[ENV.maskingSecret],
    ),
    embedderId: embedder.id,
  };
}

/** What a stream record means for the index; undefined for anything that is not an exception. */
export function tableChange(record: DynamoDBRecord): TableChange | undefined {
  const image = (value: unknown) => unmarshall(value as Record<string, AttributeValue>);
  if (record.eventName === 'REMOVE') {
    const keys = record.dynamodb?.Keys ? image(record.dynamodb.Keys) : {};
    return typeof keys.exception_id === 'string' ? { kind: 'remove', exceptionId: keys.exception_id } : undefined;
  }
  const item = record.dynamodb?.NewImage ? image(record.dynamodb.NewImage) : undefined;
  return item && isExceptionItem(item) ? { kind: 'upsert', item } : undefined;
}

function keyOf(record: DynamoDBRecord): string {
  return JSON.stringify(record.dynamodb?.Keys ?? {});
}

export function createHandler(makeDeps: () => ProjectionDeps = defaultDeps) {
  let deps: ProjectionDeps | undefined;
  let ensured = false;
  return middy<DynamoDBStreamEvent, DynamoDBBatchResponse>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .handler(async (event) => {
      const latest = new Map<string, DynamoDBRecord>();
      for (const record of event.Records) latest.set(keyOf(record), record);
      const failures: string[] = [];
      const outcomes: Record<string, number> = {};
      await Promise.all(
        [...latest.values()].map(async (record) => {
          try {
            deps ??= makeDeps();
            const change = tableChange(record);
            if (!change) return;
            if (!ensured && change.kind === 'upsert') {
              await deps.index.ensure();
              ensured = true;
            }
            const outcome = await projectChange(change, deps);
            outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
          } catch (error) {
            logger.error('stream record not indexed', {
              eventId: record.eventID,
              sequenceNumber: record.dynamodb?.SequenceNumber,
              error: error as Error,
            });
            failures.push(record.dynamodb?.SequenceNumber ?? (record.eventID as string));
          }
        }),
      );
      logger.info('stream batch projected', { records: event.Records.length, outcomes, failed: failures.length });
      return { batchItemFailures: failures.map((itemIdentifier) => ({ itemIdentifier })) };
    });
}

export const handler = createHandler();
