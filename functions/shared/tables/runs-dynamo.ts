/** The runs table on DynamoDB: ingest's requests, recon's claims and results, the query API's reads. */
import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { TransientError } from '../errors.ts';
import { datasetDateKey } from '../keys.ts';
import { RUN_RECORD_TYPE } from '../resources.ts';
import { applied, updateExpression } from './dynamo-expressions.ts';
import type { IndexPage, IndexQuery } from './index-query.ts';
import { queryIndexPage } from './index-query-dynamo.ts';
import type { RunQueries, RunRecord, RunStore } from './runs.ts';

export class DynamoRunStore implements RunStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc;
    this.table = table;
  }

  async request(run: RunRecord): Promise<{ created: boolean; run: RunRecord }> {
    const created = await applied(
      this.doc.send(
        new PutCommand({
          TableName: this.table,
          // record_type: the constant partition of by_requested (recent runs across datasets).
          Item: { ...run, dataset_date: datasetDateKey(run.dataset, run.business_date), record_type: RUN_RECORD_TYPE },
          ConditionExpression: 'attribute_not_exists(run_id)',
        }),
      ),
    );
    if (created) return { created: true, run };
    const existing = await this.get(run.run_id);
    if (!existing) throw new TransientError(`run ${run.run_id} exists but could not be read`);
    return { created: false, run: existing };
  }

  async get(runId: string): Promise<RunRecord | undefined> {
    const out = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: { run_id: runId }, ConsistentRead: true }),
    );
    return out.Item as RunRecord | undefined;
  }

  async claim(
    runId: string,
    now: number,
    leaseMs: number,
  ): Promise<{ claimed: true } | { claimed: false; run: RunRecord | undefined }> {
    const claimed = await applied(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { run_id: runId },
          UpdateExpression: 'SET #s = :running, started_at = :started, lease_until = :lease',
          ConditionExpression:
            'attribute_exists(run_id) AND (#s IN (:requested, :failed) OR (#s = :running AND lease_until < :now))',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: {
            ':running': 'RUNNING',
            ':requested': 'REQUESTED',
            ':failed': 'FAILED',
            ':started': new Date(now).toISOString(),
            ':lease': now + leaseMs,
            ':now': now,
          },
        }),
      ),
    );
    return claimed ? { claimed: true } : { claimed: false, run: await this.get(runId) };
  }

  async finish(runId: string, update: Pick<RunRecord, 'status'> & Partial<RunRecord>): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { run_id: runId },
        ...updateExpression({ set: { ...update, lease_until: 0 } }),
      }),
    );
  }
}

export class DynamoRunQueries implements RunQueries {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc;
    this.table = table;
  }

  async getRun(runId: string): Promise<RunRecord | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.table, Key: { run_id: runId } }));
    return out.Item as RunRecord | undefined;
  }

  async queryRuns(query: IndexQuery): Promise<IndexPage> {
    return queryIndexPage(this.doc, this.table, query);
  }
}
