/** The patterns table on DynamoDB: recon puts a run's patterns, triage adds their triage, the query API reads them. */
import {
  BatchWriteCommand,
  GetCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { PermanentError } from '../errors.ts';
import { retryUnprocessed } from '../retry.ts';
import { applied } from './dynamo-expressions.ts';
import type { Triage } from '../types.ts';
import type { PatternRecord, PatternStore } from './patterns.ts';

const MAX_BATCH_ATTEMPTS = 8;

export class DynamoPatternStore implements PatternStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc;
    this.table = table;
  }

  async putAll(patterns: readonly PatternRecord[]): Promise<void> {
    // BatchWriteItem: at most 25 items a call. Puts replace: a re-claimed run writes the same items.
    for (let i = 0; i < patterns.length; i += 25) {
      await retryUnprocessed(
        patterns.slice(i, i + 25).map((p) => ({ PutRequest: { Item: { ...p } as Record<string, unknown> } })),
        async (requests) => {
          const out = await this.doc.send(new BatchWriteCommand({ RequestItems: { [this.table]: requests } }));
          return (out.UnprocessedItems?.[this.table] ?? []) as typeof requests;
        },
        { maxAttempts: MAX_BATCH_ATTEMPTS, gaveUp: (left) => `BatchWriteItem left ${left} patterns unwritten` },
      );
    }
  }

  async list(runId: string): Promise<PatternRecord[]> {
    const items: PatternRecord[] = [];
    let cursor: Record<string, unknown> | undefined;
    do {
      const out = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'run_id = :run',
          ExpressionAttributeValues: { ':run': runId },
          ExclusiveStartKey: cursor,
        }),
      );
      items.push(...((out.Items ?? []) as PatternRecord[]));
      cursor = out.LastEvaluatedKey;
    } while (cursor);
    return items;
  }

  async get(runId: string, patternId: string): Promise<PatternRecord | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { run_id: runId, pattern_id: patternId } }),
    );
    return out.Item as PatternRecord | undefined;
  }

  async saveTriage(runId: string, patternId: string, triage: Triage): Promise<void> {
    const saved = await applied(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { run_id: runId, pattern_id: patternId },
          UpdateExpression: 'SET triage = :t',
          ConditionExpression: 'attribute_exists(pattern_id)',
          ExpressionAttributeValues: { ':t': triage },
        }),
      ),
    );
    // Patterns are saved before the run is STORING, so before any triage of them: none is not coming.
    if (!saved) throw new PermanentError('UNKNOWN_PATTERN', `run ${runId} has no pattern ${patternId}`);
  }
}
