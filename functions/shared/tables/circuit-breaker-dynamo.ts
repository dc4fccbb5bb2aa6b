/** The circuit-breaker table on DynamoDB: a failure counter per provider; an open breaker expires by TTL. */
import { GetCommand, paginateScan, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  RECOVERY_INTERVAL_MS,
  type BreakerSettings,
  type BreakerState,
  type BreakerTrials,
  type CircuitBreaker,
  type TrialBreaker,
} from './circuit-breaker.ts';
import { applied, conditionalWrite } from './dynamo-expressions.ts';

export class DynamoCircuitBreaker implements CircuitBreaker {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  private readonly settings: BreakerSettings;

  constructor(doc: DynamoDBDocumentClient, table: string, settings: BreakerSettings) {
    this.doc = doc;
    this.table = table;
    this.settings = settings;
  }

  async state(provider: string, now: number): Promise<BreakerState> {
    const out = await this.doc.send(new GetCommand({ TableName: this.table, Key: { provider } }));
    if (out.Item?.opened_until === undefined) return 'closed';
    return Number(out.Item.opened_until) > now ? 'open' : 'trial';
  }

  async recordSuccess(provider: string): Promise<void> {
    await applied(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { provider },
          UpdateExpression: 'SET failures = :zero REMOVE opened_until',
          // Healthy providers cost no write per call.
          ConditionExpression: 'attribute_exists(provider) AND failures > :zero',
          ExpressionAttributeValues: { ':zero': 0 },
        }),
      ),
    );
  }

  async claimRecovery(provider: string, now: number): Promise<number | undefined> {
    const out = await conditionalWrite(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { provider },
          UpdateExpression: 'SET recovered_at = :now REMOVE opened_until',
          ConditionExpression: 'opened_until <= :now AND (attribute_not_exists(recovered_at) OR recovered_at < :since)',
          ExpressionAttributeValues: { ':now': now, ':since': now - RECOVERY_INTERVAL_MS },
          ReturnValues: 'UPDATED_OLD',
        }),
      ),
    );
    return out === undefined ? undefined : Number(out.Attributes?.opened_until);
  }

  async releaseRecovery(provider: string, claim: number): Promise<void> {
    await applied(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { provider },
          UpdateExpression: 'SET opened_until = :claim REMOVE recovered_at',
          ConditionExpression: 'attribute_not_exists(opened_until)',
          ExpressionAttributeValues: { ':claim': claim },
        }),
      ),
    );
  }

  async recordFailure(provider: string, now: number): Promise<void> {
    const out = await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { provider },
        UpdateExpression: 'ADD failures :one SET last_failure_at = :now, expires_at = :expires',
        ExpressionAttributeValues: { ':one': 1, ':now': now, ':expires': Math.floor(now / 1000) + 86_400 },
        ReturnValues: 'ALL_NEW',
      }),
    );
    if (Number(out.Attributes?.failures ?? 0) >= this.settings.threshold) {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { provider },
          // Kept past the failures' day while open: its trial, however late, is a recovery.
          UpdateExpression: 'SET opened_until = :until, expires_at = :expires',
          ExpressionAttributeValues: {
            ':until': now + this.settings.cooldownMs,
            ':expires': Math.floor(now / 1000) + 30 * 86_400,
          },
        }),
      );
    }
  }
}

/** BreakerTrials on DynamoDB: the table holds one item a provider, so a Scan reads a few items. */
export class DynamoBreakerTrials implements BreakerTrials {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;

  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc;
    this.table = table;
  }

  async onTrial(now: number): Promise<TrialBreaker[]> {
    const breakers: TrialBreaker[] = [];
    const pages = paginateScan(
      { client: this.doc },
      {
        TableName: this.table,
        // DynamoCircuitBreaker.state's `trial`: opened, and its cool-down over.
        FilterExpression: 'opened_until <= :now',
        ProjectionExpression: 'provider, opened_until, probed_for, probes, next_probe_at',
        ExpressionAttributeValues: { ':now': now },
      },
    );
    for await (const page of pages)
      for (const item of page.Items ?? []) {
        const openedUntil = Number(item.opened_until);
        // Probes recorded for an earlier opening do not count against this trial.
        const same = item.probed_for !== undefined && Number(item.probed_for) === openedUntil;
        breakers.push({
          provider: String(item.provider),
          openedUntil,
          probes: same ? Number(item.probes ?? 0) : 0,
          ...(same && item.next_probe_at !== undefined ? { nextProbeAt: Number(item.next_probe_at) } : {}),
        });
      }
    return breakers.sort((a, b) => (a.provider < b.provider ? -1 : a.provider > b.provider ? 1 : 0));
  }

  async claimProbe(breaker: TrialBreaker, now: number, nextProbeAt: number): Promise<boolean> {
    return applied(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { provider: breaker.provider },
          UpdateExpression: 'SET probed_for = :opened, probes = :probes, next_probe_at = :next',
          // Still this trial, and its probe still due (not recorded by a sweep running beside this one).
          ConditionExpression:
            'opened_until = :opened AND (attribute_not_exists(probed_for) OR probed_for <> :opened OR next_probe_at <= :now)',
          ExpressionAttributeValues: {
            ':opened': breaker.openedUntil,
            ':probes': breaker.probes + 1,
            ':next': nextProbeAt,
            ':now': now,
          },
        }),
      ),
    );
  }
}
