/**
 * The SQL engine's ports on AWS (functions/recon/sql/athena.ts): AthenaPort on
 * @aws-sdk/client-athena in the regional workgroup, DelayedQueue on SQS DelaySeconds.
 */
import {
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  StartQueryExecutionCommand,
  type AthenaClient,
} from '@aws-sdk/client-athena';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { AthenaPort, DelayedQueue, QueryState } from '../../recon/sql/athena.ts';
import type { TextRow } from '../../recon/sql/summary.ts';

const STATES: ReadonlySet<string> = new Set(['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED']);

export class AwsAthena implements AthenaPort {
  private readonly athena: AthenaClient;
  private readonly workgroup: string;
  constructor(athena: AthenaClient, workgroup: string) {
    this.athena = athena;
    this.workgroup = workgroup;
  }

  async start(sql: string, database: string | undefined, token?: string): Promise<string> {
    // The workgroup enforces its result location and encryption: none given here.
    const out = await this.athena.send(
      new StartQueryExecutionCommand({
        QueryString: sql,
        WorkGroup: this.workgroup,
        ...(database === undefined ? {} : { QueryExecutionContext: { Database: database } }),
        ...(token === undefined ? {} : { ClientRequestToken: token }),
      }),
    );
    if (!out.QueryExecutionId) throw new Error('StartQueryExecution returned no QueryExecutionId');
    return out.QueryExecutionId;
  }

  async status(queryId: string): Promise<{ state: QueryState; reason?: string }> {
    const out = await this.athena.send(new GetQueryExecutionCommand({ QueryExecutionId: queryId }));
    const status = out.QueryExecution?.Status;
    const state = status?.State ?? 'QUEUED';
    if (!STATES.has(state)) throw new Error(`query ${queryId} has an unknown state ${state}`);
    const reason = status?.StateChangeReason ?? status?.AthenaError?.ErrorMessage;
    return { state: state as QueryState, ...(reason ? { reason } : {}) };
  }

  async rows(queryId: string): Promise<TextRow[]> {
    const rows: TextRow[] = [];
    let columns: string[] | undefined;
    let token: string | undefined;
    do {
      const out = await this.athena.send(new GetQueryResultsCommand({ QueryExecutionId: queryId, NextToken: token }));
      for (const row of out.ResultSet?.Rows ?? []) {
        const values = (row.Data ?? []).map((d) => d.VarCharValue);
        // The first row of the first page is the column names (SELECT results).
        if (columns === undefined) {
          columns = values.map((v) => v ?? '');
          continue;
        }
        // A NULL cell has no VarCharValue.
        const record: Record<string, string | null> = {};
        for (const [i, name] of columns.entries()) record[name] = values[i] ?? null;
        rows.push(record);
      }
      token = out.NextToken;
    } while (token);
    return rows;
  }
}

/** SQS caps DelaySeconds at 15 minutes. */
const MAX_DELAY_SECONDS = 900;

export class SqsDelayedQueue<T> implements DelayedQueue<T> {
  private readonly sqs: SQSClient;
  private readonly queueUrl: string;
  constructor(sqs: SQSClient, queueUrl: string) {
    this.sqs = sqs;
    this.queueUrl = queueUrl;
  }

  async sendDelayed(message: T, delaySeconds: number): Promise<void> {
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify(message),
        DelaySeconds: Math.max(0, Math.min(MAX_DELAY_SECONDS, Math.round(delaySeconds))),
      }),
    );
  }
}
