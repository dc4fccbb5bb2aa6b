/**
 * `node scripts/tools/backfill-exception-keys.ts --table NAME [--region R] [--dry-run]`: gives every item of
 * a deployed exceptions table the sharded GSI keys this version lists by (gsi_status, gsi_type,
 * gsi_run, gsi_dataset_date, gsi_severity, gsi_created, gsi_pattern, gsi_assignee, gsi_team,
 * gsi_uncited, gsi_sort; functions/shared/tables/
 * exceptions-index-keys.ts derives them, as every writer does). Items written before sharding
 * have none; items an older version changed since keep stale ones. Idempotent: an item whose keys
 * are already right is not written, so a second run reports 0 updated. Each write is conditional
 * on the attributes its keys come from, so a concurrent change is re-read, never overwritten.
 *
 * Upgrading a deployment from the unsharded indexes (by_status, by_type, ...):
 *  1. Run this against the table (`--dry-run` first shows how many items it would write). The new
 *     attributes are not keys yet, so the running version is unaffected.
 *  2. Deploy (`cdktf deploy` of the primary stack). The AWS provider removes the old GSIs and
 *     creates the six new ones, one UpdateTable each (DynamoDB accepts one GSI creation or deletion
 *     per UpdateTable), waiting for each to become ACTIVE; DynamoDB fills a new GSI from the items'
 *     attributes, the replica region's table follows. Listings answer 400/500 until the indexes
 *     are ACTIVE (minutes for thousands of exceptions, longer for millions): deploy in a quiet
 *     window. Writes go on meanwhile.
 *  3. Run this again: it keys what the old version wrote or changed between steps 1 and 2.
 * Changing EXCEPTION_INDEX_SHARDS later is the same procedure without step 2's index changes.
 * The owner queues (by_assignee_sharded, by_team_sharded) are the same procedure: step 1 writes
 * gsi_assignee and gsi_team on assigned exceptions, step 2 creates the two indexes, step 3 keys
 * what was assigned meanwhile. An exception assigned before step 3 is missing from its queue until then.
 * by_uncited_sharded (exceptions whose triage cites no policy passage) is the same procedure:
 * step 1 writes the stamp's triaged_uncited and gsi_uncited on them, step 2 creates the index;
 * until then a policy document's ingest asks no triage again (triage's sweep fails on the
 * missing index: its message goes to the DLQ, to be redriven once the index is ACTIVE).
 * by_status_due_sharded (the deadline sweep's) needs no run of this: its keys are gsi_status and
 * due_at, which items already have. Until DynamoDB has built it, the deadline sweep fails (its
 * errors alarm) and announces nothing; the first sweep after it is ACTIVE announces what is due.
 *
 * It also gives every triaged item the top-level stamp of its triage (resources.ts TRIAGE_STAMP:
 * the triage's content hash and prompt version), which triage's dispatch filters on now that the
 * indexes do not carry the triage. Upgrading from indexes that projected ALL: run this first (the
 * stamp is an ordinary attribute to the running version), deploy (the provider recreates each
 * index with its INCLUDE projection: the same quiet window as step 2), then run it again. Without
 * the stamp an exception triaged before would look untriaged to dispatch, and be sent to a model
 * again the next time a run finds it.
 *
 * A parallel Scan (--segments, default 4) reads the table once: about one read unit per 8 KB of
 * items (eventually consistent), plus one write unit per 1 KB of each item it updates — and every
 * GSI write the update causes. Progress goes to stderr every few seconds; the summary to stdout.
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { EXCEPTION_RECORD_TYPE } from '../../functions/shared/exceptions.ts';
import { datasetDateKey } from '../../functions/shared/keys.ts';
import { TABLES, TRIAGE_STAMP } from '../../functions/shared/resources.ts';
import {
  EXCEPTION_INDEX_ATTRIBUTES,
  exceptionIndexKeys,
  triageStamp,
} from '../../functions/shared/tables/exceptions-index-keys.ts';
import { isConditionFailure } from '../../functions/shared/tables/dynamo-expressions.ts';

/** The attributes the keys are derived from: what a write is conditional on. */
const SOURCE_ATTRIBUTES = [
  ...new Set([
    'created_at',
    'dataset',
    'business_date',
    ...Object.values(TABLES.exceptions.indexes).map((i) => i.shardedFrom as string),
  ]),
];
const STAMP_ATTRIBUTES: readonly string[] = Object.values(TRIAGE_STAMP);
const READ_ATTRIBUTES = [
  ...new Set(['exception_id', 'triage', ...SOURCE_ATTRIBUTES, ...EXCEPTION_INDEX_ATTRIBUTES, ...STAMP_ATTRIBUTES]),
];
/** Re-reads of an item that keeps changing under the backfill before it is left for the next run. */
const MAX_ATTEMPTS = 3;

export interface BackfillOptions {
  readonly dryRun?: boolean;
  /** Parallel Scan segments. */
  readonly segments?: number;
  /** Called every `progressEvery` items scanned (and at the end). */
  readonly onProgress?: (progress: BackfillReport) => void;
  readonly progressEvery?: number;
}

export interface BackfillReport {
  scanned: number;
  /** Written (or, with dryRun, that would be). */
  updated: number;
  upToDate: number;
  /** Changed by someone else on every attempt: run again to finish them. */
  contended: number;
}

type Item = Record<string, unknown>;

/** What `item` must set and remove for its index keys to match its attributes; undefined when they do. */
export function keyChanges(item: Item): { set: Record<string, string>; remove: string[] } | undefined {
  // Items from every version carry record_type and dataset_date; derive them anyway rather than
  // leave an item out of by_created_sharded or by_dataset_date_sharded.
  const view = {
    ...item,
    record_type: item.record_type ?? EXCEPTION_RECORD_TYPE,
    dataset_date:
      item.dataset_date ??
      (typeof item.dataset === 'string' && typeof item.business_date === 'string'
        ? datasetDateKey(item.dataset, item.business_date)
        : undefined),
  };
  // The stamp first: by_uncited_sharded's key comes from it.
  const stamp = stampOf(item);
  const expected = { ...exceptionIndexKeys({ ...view, ...stamp }), ...stamp };
  const set: Record<string, string> = {};
  for (const [name, value] of Object.entries(expected)) if (item[name] !== value) set[name] = value;
  if (item.record_type === undefined) set.record_type = EXCEPTION_RECORD_TYPE;
  if (item.dataset_date === undefined && typeof view.dataset_date === 'string') set.dataset_date = view.dataset_date;
  const remove = [...EXCEPTION_INDEX_ATTRIBUTES, ...STAMP_ATTRIBUTES].filter(
    (name) => item[name] !== undefined && !(name in expected),
  );
  return Object.keys(set).length === 0 && remove.length === 0 ? undefined : { set, remove };
}

/** The stamp of the item's triage, as saveTriage writes it (none without a triage). */
function stampOf(item: Item): Record<string, string> {
  const triage = item.triage as
    | {
        content_hash?: unknown;
        prompt_version?: unknown;
        policy_citations?: unknown;
        degraded?: unknown;
        degraded_reason?: unknown;
      }
    | undefined;
  if (typeof triage !== 'object' || triage === null) return {};
  return triageStamp({
    ...(typeof triage.content_hash === 'string' ? { content_hash: triage.content_hash } : {}),
    ...(typeof triage.prompt_version === 'string' ? { prompt_version: triage.prompt_version } : {}),
    ...(Array.isArray(triage.policy_citations) ? { policy_citations: triage.policy_citations } : {}),
    ...(typeof triage.degraded === 'boolean' ? { degraded: triage.degraded } : {}),
    ...(typeof triage.degraded_reason === 'string' ? { degraded_reason: triage.degraded_reason } : {}),
  });
}

/** The update of `item`'s keys, applied only if the attributes they come from are still what was read. */
function keyUpdate(table: string, item: Item, changes: { set: Record<string, string>; remove: string[] }) {
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const name = (attribute: string) => {
    const placeholder = `#n${Object.keys(names).length}`;
    names[placeholder] = attribute;
    return placeholder;
  };
  const sets = Object.entries(changes.set).map(([attribute, value], i) => {
    values[`:s${i}`] = value;
    return `${name(attribute)} = :s${i}`;
  });
  const removes = changes.remove.map(name);
  const conditions = SOURCE_ATTRIBUTES.map((attribute, i) => {
    if (item[attribute] === undefined) return `attribute_not_exists(${name(attribute)})`;
    values[`:c${i}`] = item[attribute];
    return `${name(attribute)} = :c${i}`;
  });
  // The stamp, from the triage as read: a triage saved since (with its own stamp) is not overwritten.
  if ([...Object.keys(changes.set), ...changes.remove].some((a) => STAMP_ATTRIBUTES.includes(a))) {
    const triage = item.triage as Record<string, unknown> | undefined;
    if (triage === undefined) conditions.push(`attribute_not_exists(${name('triage')})`);
    else {
      const path = name('triage');
      // triaged_at too: a triage asked again keeps its content and prompt but may cite otherwise.
      for (const [i, field] of ['content_hash', 'prompt_version', 'triaged_at'].entries()) {
        if (triage[field] === undefined) conditions.push(`attribute_not_exists(${path}.${name(field)})`);
        else {
          values[`:t${i}`] = triage[field];
          conditions.push(`${path}.${name(field)} = :t${i}`);
        }
      }
    }
  }
  return new UpdateCommand({
    TableName: table,
    Key: { exception_id: item.exception_id },
    UpdateExpression: [
      ...(sets.length > 0 ? [`SET ${sets.join(', ')}`] : []),
      ...(removes.length > 0 ? [`REMOVE ${removes.join(', ')}`] : []),
    ].join(' '),
    ConditionExpression: ['attribute_exists(exception_id)', ...conditions].join(' AND '),
    ExpressionAttributeNames: names,
    ...(Object.keys(values).length > 0 ? { ExpressionAttributeValues: values } : {}),
  });
}

export async function backfillExceptionKeys(
  doc: DynamoDBDocumentClient,
  table: string,
  options: BackfillOptions = {},
): Promise<BackfillReport> {
  const report: BackfillReport = { scanned: 0, updated: 0, upToDate: 0, contended: 0 };
  const every = options.progressEvery ?? 1000;
  let nextProgress = every;
  const projection = {
    ProjectionExpression: READ_ATTRIBUTES.map((_, i) => `#p${i}`).join(', '),
    ExpressionAttributeNames: Object.fromEntries(READ_ATTRIBUTES.map((a, i) => [`#p${i}`, a])),
  };

  const fix = async (scanned: Item) => {
    let item: Item | undefined = scanned;
    for (let attempt = 0; attempt < MAX_ATTEMPTS && item; attempt++) {
      const changes = keyChanges(item);
      if (!changes) {
        report.upToDate++;
        return;
      }
      if (options.dryRun) {
        report.updated++;
        return;
      }
      try {
        await doc.send(keyUpdate(table, item, changes));
        report.updated++;
        return;
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        item = (
          await doc.send(
            new GetCommand({
              TableName: table,
              Key: { exception_id: item.exception_id },
              ConsistentRead: true,
              ...projection,
            }),
          )
        ).Item;
      }
    }
    // Deleted since the scan: nothing to key. Still changing: left for the next run.
    if (item) report.contended++;
  };

  const segments = options.segments ?? 4;
  await Promise.all(
    Array.from({ length: segments }, async (_, segment) => {
      let cursor: Record<string, unknown> | undefined;
      do {
        const page = await doc.send(
          new ScanCommand({
            TableName: table,
            Segment: segment,
            TotalSegments: segments,
            ExclusiveStartKey: cursor,
            ...projection,
          }),
        );
        for (const item of page.Items ?? []) {
          report.scanned++;
          await fix(item);
          if (report.scanned >= nextProgress) {
            nextProgress += every;
            options.onProgress?.({ ...report });
          }
        }
        cursor = page.LastEvaluatedKey;
      } while (cursor);
    }),
  );
  options.onProgress?.({ ...report });
  return report;
}

/** The error of a run, in one line: what AWS's chain could not find is said with how to give it. */
function failure(error: unknown): string {
  const e = error as Error;
  if (e.name === 'CredentialsProviderError')
    return `no AWS credentials found (${e.message}): set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or --endpoint for a local table\n`;
  if (/region is missing/i.test(e.message)) return 'no AWS region: pass --region or set AWS_REGION\n';
  return `${e.name}: ${e.message}\n`;
}

async function main(): Promise<number> {
  try {
    return await backfill();
  } catch (error) {
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`backfill-exception-keys: ${(error as Error).message} (--help lists the options)\n`);
      return 2;
    }
    process.stderr.write(`backfill-exception-keys: ${failure(error)}`);
    return 1;
  }
}

async function backfill(): Promise<number> {
  const { values } = parseArgs({
    options: {
      table: { type: 'string' },
      region: { type: 'string' },
      endpoint: { type: 'string' },
      segments: { type: 'string' },
      'dry-run': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || !values.table) {
    process.stdout
      .write(`Usage: node scripts/tools/backfill-exception-keys.ts --table NAME [--region R] [--dry-run] [--segments N]

Writes the sharded GSI keys (${[...EXCEPTION_INDEX_ATTRIBUTES].join(', ')}) on every item of the
exceptions table NAME whose keys are missing or stale; items already right are not written.
--dry-run counts what it would write and writes nothing. --segments: parallel Scan segments
(default 4). Credentials and region come from the usual AWS chain; --endpoint for a local one.
Upgrade steps (backfill, deploy, backfill): scripts/tools/backfill-exception-keys.ts.
`);
    return values.help ? 0 : 2;
  }
  const segments = Number(values.segments ?? 4);
  if (!Number.isInteger(segments) || segments < 1 || segments > 64) {
    process.stderr.write('--segments must be an integer from 1 to 64\n');
    return 2;
  }
  const doc = DynamoDBDocumentClient.from(
    new DynamoDBClient({
      ...(values.region ? { region: values.region } : {}),
      ...(values.endpoint ? { endpoint: values.endpoint } : {}),
      // Throttled writes are retried with backoff rather than failing the run.
      maxAttempts: 10,
    }),
  );
  const started = Date.now();
  const report = await backfillExceptionKeys(doc, values.table, {
    dryRun: values['dry-run'] ?? false,
    segments,
    progressEvery: 5000,
    onProgress: (p) =>
      process.stderr.write(
        `${((Date.now() - started) / 1000).toFixed(0)} s: scanned ${p.scanned}, ${values['dry-run'] ? 'would update' : 'updated'} ${p.updated}, up to date ${p.upToDate}, contended ${p.contended}\n`,
      ),
  });
  process.stdout.write(`${JSON.stringify({ table: values.table, dry_run: values['dry-run'] ?? false, ...report })}\n`);
  return report.contended > 0 ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = await main();
