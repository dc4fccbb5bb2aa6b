/** The runs table on DynamoDB: ingest's requests, recon's claims and results, the query API's reads. */
import { GetCommand, PutCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { TransientError } from '../errors.ts';
import { LeaseLostError } from '../lease.ts';
import type { LeaseTerms } from './idempotency.ts';
import { datasetDateKey } from '../keys.ts';
import { RUN_RECORD_TYPE } from '../resources.ts';
import { applied, conditionalWrite, updateExpression } from './dynamo-expressions.ts';
import type { IndexPage, IndexQuery } from './index-query.ts';
import { queryIndexPage } from './index-query-dynamo.ts';
import type { UsageCounts } from './usage.ts';
import type {
  AthenaMarker,
  RunCostStore,
  RunChunkStore,
  RunQueries,
  RunRecord,
  RunStore,
  RunTriageState,
  RunTriageStateName,
  RunTriageStore,
  StoreCounts,
  StoringUpdate,
  TriagePlan,
} from './runs.ts';

export class DynamoRunStore implements RunStore, RunChunkStore, RunTriageStore {
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
    { owner, now, leaseMs }: LeaseTerms,
  ): Promise<{ claimed: true } | { claimed: false; run: RunRecord | undefined }> {
    const claimed = await applied(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { run_id: runId },
          UpdateExpression: 'SET #s = :running, started_at = :started, lease_until = :lease, lease_owner = :owner',
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
            ':owner': owner,
          },
        }),
      ),
    );
    return claimed ? { claimed: true } : { claimed: false, run: await this.get(runId) };
  }

  async renew(runId: string, { owner, now, leaseMs }: LeaseTerms): Promise<boolean> {
    return (await this.updateHeld(runId, owner, { lease_until: now + leaseMs })) !== undefined;
  }

  async passLease(
    runId: string,
    from: string,
    { owner, now, leaseMs }: LeaseTerms,
    marker: AthenaMarker,
  ): Promise<boolean> {
    return (
      (await this.updateHeld(runId, from, { ...marker, lease_owner: owner, lease_until: now + leaseMs })) !== undefined
    );
  }

  async release(runId: string, owner: string): Promise<void> {
    // An expired lease: the retry claims it at once. Quietly nothing when the run is no longer ours.
    await this.renew(runId, { owner, now: 0, leaseMs: 0 });
  }

  async finish(runId: string, owner: string, update: Pick<RunRecord, 'status'> & Partial<RunRecord>): Promise<void> {
    // Only the lease's holder records the outcome: a worker that lost it must not finish over its successor.
    if ((await this.updateHeld(runId, owner, { ...update, lease_until: 0 })) === undefined)
      throw new LeaseLostError(`run ${runId}`);
  }

  async startStoring(runId: string, owner: string, update: StoringUpdate): Promise<RunRecord> {
    const run = await this.updateHeld(runId, owner, { ...update, status: 'STORING', lease_until: 0 });
    if (run === undefined) throw new LeaseLostError(`run ${runId}`);
    return run;
  }

  /**
   * The one write a lease's holder makes: applied only while the run is RUNNING under `owner`'s
   * lease; the run as written, or undefined when the lease is not (or no longer) theirs.
   */
  private async updateHeld(runId: string, owner: string, set: Partial<RunRecord>): Promise<RunRecord | undefined> {
    const parts = updateExpression({ set });
    const out = await conditionalWrite(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { run_id: runId },
          ...parts,
          ConditionExpression: '#fs = :running AND #fo = :owner',
          ExpressionAttributeNames: { ...parts.ExpressionAttributeNames, '#fs': 'status', '#fo': 'lease_owner' },
          ExpressionAttributeValues: { ...parts.ExpressionAttributeValues, ':running': 'RUNNING', ':owner': owner },
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    return out?.Attributes as RunRecord | undefined;
  }

  async markChunkStored(runId: string, chunk: number, counts: StoreCounts): Promise<RunRecord | undefined> {
    const out = await conditionalWrite(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { run_id: runId },
          // One update: the chunk's number joins the set and every count moves with it, or nothing does.
          UpdateExpression:
            'ADD stored_chunks :chunk, chunks_stored :one, stored_new :n, stored_changed :c, stored_unchanged :u, stored_triage :t, stored_cut :x',
          ConditionExpression:
            'attribute_exists(run_id) AND #s IN (:running, :storing) AND NOT contains(stored_chunks, :number)',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: {
            ':chunk': new Set([chunk]),
            ':number': chunk,
            ':one': 1,
            ':n': counts.new,
            ':c': counts.changed,
            ':u': counts.unchanged,
            ':t': counts.triage_enqueued,
            ':x': counts.cut_for_storage,
            ':running': 'RUNNING',
            ':storing': 'STORING',
          },
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    return out?.Attributes as RunRecord | undefined;
  }

  async complete(runId: string, update: Pick<RunRecord, 'status'> & Partial<RunRecord>): Promise<boolean> {
    // The final summary carries the engine's: its copy kept while storing is dropped.
    const parts = updateExpression({ set: update, ...(update.summary ? { remove: ['engine_summary'] } : {}) });
    return applied(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { run_id: runId },
          ...parts,
          ConditionExpression: '#fs = :storing AND chunks_stored = chunks_total',
          ExpressionAttributeNames: { ...parts.ExpressionAttributeNames, '#fs': 'status' },
          ExpressionAttributeValues: { ...parts.ExpressionAttributeValues, ':storing': 'STORING' },
        }),
      ),
    );
  }

  async claimHeldNotification(runId: string): Promise<boolean> {
    return applied(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { run_id: runId },
          UpdateExpression: 'SET #t.notified = :yes',
          ConditionExpression: '#t.#st = :held AND (attribute_not_exists(#t.notified) OR #t.notified = :no)',
          ExpressionAttributeNames: { '#t': 'triage', '#st': 'state' },
          ExpressionAttributeValues: { ':yes': true, ':no': false, ':held': 'HELD' },
        }),
      ),
    );
  }

  async releaseHeldNotification(runId: string): Promise<void> {
    await applied(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { run_id: runId },
          UpdateExpression: 'SET #t.notified = :no',
          ConditionExpression: 'attribute_exists(#t)',
          ExpressionAttributeNames: { '#t': 'triage' },
          ExpressionAttributeValues: { ':no': false },
        }),
      ),
    );
  }

  async markDispatchQueued(runId: string, at: string): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { run_id: runId },
        UpdateExpression: 'SET dispatch_queued_at = if_not_exists(dispatch_queued_at, :at)',
        ExpressionAttributeValues: { ':at': at },
      }),
    );
  }

  async moveTriage(
    runId: string,
    from: readonly RunTriageStateName[],
    next: RunTriageState,
  ): Promise<RunRecord | undefined> {
    const values: Record<string, unknown> = { ':next': next };
    from.forEach((state, i) => (values[`:f${i}`] = state));
    const states = from.map((_, i) => `:f${i}`).join(', ');
    // A run recorded before the guard has no triage state: it counts as PENDING.
    const absent = from.includes('PENDING') ? 'attribute_not_exists(#t) OR ' : '';
    const out = await conditionalWrite(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { run_id: runId },
          UpdateExpression: 'SET #t = :next',
          ConditionExpression: `attribute_exists(run_id) AND (${absent}#t.#st IN (${states}))`,
          ExpressionAttributeNames: { '#t': 'triage', '#st': 'state' },
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      ),
    );
    return out?.Attributes as RunRecord | undefined;
  }

  async recordTriagePlan(runId: string, plan: TriagePlan): Promise<void> {
    // The first complete pass's plan stays: a duplicate dispatch finds little or nothing left to do.
    await applied(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { run_id: runId },
          UpdateExpression: 'SET triage_plan = :plan',
          ConditionExpression: 'attribute_exists(run_id) AND attribute_not_exists(triage_plan)',
          ExpressionAttributeValues: { ':plan': plan },
        }),
      ),
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

const COST_COUNTERS = [
  'micro_usd',
  'input_tokens',
  'output_tokens',
  'calls',
] as const satisfies readonly (keyof UsageCounts)[];

/** Triage's view of runs: the cost of its model calls, summed with ADD on the run's `cost` map. */
export class DynamoRunCosts implements RunCostStore {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc;
    this.table = table;
  }

  async addCost(runId: string, counts: UsageCounts): Promise<boolean> {
    // ADD on cost.<counter> needs the map to exist (DynamoDB rejects the path otherwise), and
    // SET of the whole map would overwrite a concurrent call's: ADD when the map is there, else
    // create it with this call's counts, else (another call created it first) ADD again. A cost
    // map is never removed, so a third failure means there is no such run: nothing is created.
    if (await this.addTo(runId, counts)) return true;
    const created = await applied(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { run_id: runId },
          UpdateExpression: 'SET #cost = :cost',
          ConditionExpression: 'attribute_exists(run_id) AND attribute_not_exists(#cost)',
          ExpressionAttributeNames: { '#cost': 'cost' },
          ExpressionAttributeValues: { ':cost': Object.fromEntries(COST_COUNTERS.map((c) => [c, counts[c]])) },
        }),
      ),
    );
    return created || (await this.addTo(runId, counts));
  }

  private addTo(runId: string, counts: UsageCounts): Promise<boolean> {
    return applied(
      this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { run_id: runId },
          UpdateExpression: `ADD ${COST_COUNTERS.map((_, i) => `#cost.#c${i} :c${i}`).join(', ')}`,
          ConditionExpression: 'attribute_exists(#cost)',
          ExpressionAttributeNames: {
            '#cost': 'cost',
            ...Object.fromEntries(COST_COUNTERS.map((c, i) => [`#c${i}`, c])),
          },
          ExpressionAttributeValues: Object.fromEntries(COST_COUNTERS.map((c, i) => [`:c${i}`, counts[c]])),
        }),
      ),
    );
  }
}
