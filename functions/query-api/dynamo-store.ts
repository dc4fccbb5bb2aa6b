/** DynamoDB behind the query API's QueryStore: key reads, GSI queries, conditional patches. */
import { GetCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { RunRecord } from '../shared/ports.ts';
import type { ExceptionPatch, HealthCheck, IndexQuery, QueryStore, StoredItem } from './ports.ts';

/** A key no exception can have (ids are 32 hex characters): the health probe reads nothing. */
const HEALTH_PROBE_KEY = '__health_check__';

export class DynamoQueryStore implements QueryStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly exceptionsTable: string;
  private readonly runsTable: string;
  constructor(doc: DynamoDBDocumentClient, tables: { exceptions: string; runs: string }) {
    this.doc = doc;
    this.exceptionsTable = tables.exceptions;
    this.runsTable = tables.runs;
  }

  async getException(id: string): Promise<StoredItem | undefined> {
    // Consistent: a PATCH compares versions against this read.
    const out = await this.doc.send(
      new GetCommand({ TableName: this.exceptionsTable, Key: { exception_id: id }, ConsistentRead: true }),
    );
    return out.Item;
  }

  async queryExceptions(query: IndexQuery): Promise<{ items: StoredItem[]; lastKey?: Record<string, unknown> }> {
    return this.queryIndex(this.exceptionsTable, query);
  }

  async queryRuns(query: IndexQuery): Promise<{ items: StoredItem[]; lastKey?: Record<string, unknown> }> {
    return this.queryIndex(this.runsTable, query);
  }

  private async queryIndex(
    table: string,
    query: IndexQuery,
  ): Promise<{ items: StoredItem[]; lastKey?: Record<string, unknown> }> {
    const names: Record<string, string> = { '#pk': query.partition.attribute };
    const values: Record<string, unknown> = { ':pk': query.partition.value };
    const conditions = query.filters.map((f, i) => {
      names[`#f${i}`] = f.attribute;
      values[`:f${i}`] = f.value;
      return `#f${i} = :f${i}`;
    });
    const out = await this.doc.send(
      new QueryCommand({
        TableName: table,
        IndexName: query.index,
        KeyConditionExpression: '#pk = :pk',
        ...(conditions.length > 0 ? { FilterExpression: conditions.join(' AND ') } : {}),
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
        ScanIndexForward: false,
        Limit: query.limit,
        ...(query.startKey ? { ExclusiveStartKey: { ...query.startKey } } : {}),
      }),
    );
    return { items: out.Items ?? [], ...(out.LastEvaluatedKey ? { lastKey: out.LastEvaluatedKey } : {}) };
  }

  async patchException(patch: ExceptionPatch): Promise<StoredItem | undefined> {
    const entries = Object.entries(patch.set);
    const names: Record<string, string> = Object.fromEntries(entries.map(([k], i) => [`#s${i}`, k]));
    const values: Record<string, unknown> = Object.fromEntries(entries.map(([, v], i) => [`:s${i}`, v]));
    const sets = entries.map((_, i) => `#s${i} = :s${i}`);
    sets.push('#history = list_append(if_not_exists(#history, :empty), :history)', '#version = #version + :one');
    names['#history'] = 'history';
    names['#version'] = 'version';
    Object.assign(values, { ':history': patch.history, ':empty': [], ':one': 1, ':expected': patch.expectedVersion });
    patch.remove.forEach((k, i) => {
      names[`#r${i}`] = k;
    });
    const removes = patch.remove.map((_, i) => `#r${i}`);
    try {
      const out = await this.doc.send(
        new UpdateCommand({
          TableName: this.exceptionsTable,
          Key: { exception_id: patch.exceptionId },
          UpdateExpression: `SET ${sets.join(', ')}${removes.length > 0 ? ` REMOVE ${removes.join(', ')}` : ''}`,
          // Also false for a missing item (no version attribute): the caller re-reads to tell which.
          ConditionExpression: '#version = :expected',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return out.Attributes;
    } catch (error) {
      if (
        error instanceof ConditionalCheckFailedException ||
        (error as Error).name === 'ConditionalCheckFailedException'
      )
        return undefined;
      throw error;
    }
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.runsTable, Key: { run_id: runId } }));
    return out.Item as RunRecord | undefined;
  }

  /** GetItem on a key that does not exist: proves the table answers, costs half a read unit. */
  healthCheck(): HealthCheck {
    return {
      name: 'dynamodb',
      check: async () => {
        await this.doc.send(
          new GetCommand({
            TableName: this.exceptionsTable,
            Key: { exception_id: HEALTH_PROBE_KEY },
            ProjectionExpression: 'exception_id',
          }),
        );
      },
    };
  }
}
