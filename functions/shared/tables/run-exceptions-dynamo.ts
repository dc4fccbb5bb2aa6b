/**
 * RunExceptionListing on DynamoDB: the run's partition of by_run_sharded, one shard after the
 * other, filtered to what needs triage. The cursor is the shard and DynamoDB's LastEvaluatedKey,
 * as JSON in base64url: it travels in the next SQS message, never to a client.
 *
 * Pattern members come from the pattern's own partition of by_pattern_sharded, filtered to this
 * run (a pattern id spans the re-runs of one dataset and date). Filtering the run's partition by
 * pattern instead read the whole run once per pattern: 20 patterns of a 5,000-exception run read
 * 100,000 items to find 5,000.
 */
import { QueryCommand, type DynamoDBDocumentClient, type QueryCommandOutput } from '@aws-sdk/lib-dynamodb';
import { PermanentError } from '../errors.ts';
import { answersRequest } from '../retriage.ts';
import { LATE_ARRIVAL_STATUS, OPEN_STATUSES } from '../exception-lifecycle.ts';
import { DEGRADED_TRIAGE, TABLES, TRIAGE_STAMP, UNCITED_TRIAGE } from '../resources.ts';
import type { ExceptionRecord } from '../types.ts';
import { shardedValues, type ExceptionIndexName } from './exceptions-index-keys.ts';
import { getItemsInOrder } from './index-query-dynamo.ts';
import type {
  CandidatePage,
  PageOptions,
  RunExceptionListing,
  TriageCandidate,
  UncitedCandidate,
  UncitedListing,
} from './run-exceptions.ts';

interface Cursor {
  readonly shard: number;
  readonly key?: Record<string, unknown>;
}

/** Query calls of one page at most: a sparse page (most items filtered out) ends early with a cursor. */
const MAX_CALLS_PER_PAGE = 64;

export class DynamoRunExceptionListing implements RunExceptionListing {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc;
    this.table = table;
  }

  needingTriage(runId: string, options: PageOptions): Promise<CandidatePage<TriageCandidate>> {
    return this.page<TriageCandidate>(runId, options, { projection: ['exception_id', 'content_hash', 'pattern_id'] });
  }

  patternMembersNeedingTriage(
    runId: string,
    patternId: string,
    options: PageOptions,
  ): Promise<CandidatePage<ExceptionRecord & { content_hash: string }>> {
    return this.page(runId, options, { patternId });
  }

  private async page<T>(
    runId: string,
    options: PageOptions,
    shape: { projection?: readonly string[]; patternId?: string },
  ): Promise<CandidatePage<T>> {
    const byPattern = shape.patternId !== undefined;
    const indexName = byPattern ? 'by_pattern_sharded' : 'by_run_sharded';
    // Asked again (pattern members): any member, those triaged since the request left out once
    // read whole (below). Otherwise what needs triage: untriaged, triaged for other content, or by
    // a prompt no longer current; the index carries triage's stamp (resources.ts TRIAGE_STAMP),
    // not the triage itself.
    const again = byPattern && options.requestedAt !== undefined;
    const names: Record<string, string> = { '#h': 'content_hash' };
    const values: Record<string, unknown> = {};
    let needs = ['attribute_exists(#h)'];
    if (!again) {
      names['#th'] = TRIAGE_STAMP.contentHash;
      names['#tp'] = TRIAGE_STAMP.promptVersion;
      const prompts = options.currentPrompts.map((version, i) => {
        values[`:p${i}`] = version;
        return `:p${i}`;
      });
      needs = ['attribute_not_exists(#th)', '#th <> #h', `NOT #tp IN (${prompts.join(', ')})`];
    }
    // A PENDING late arrival is not triaged until the deadline sweep promotes it (it queues it then).
    names['#st'] = 'status';
    values[':pending'] = LATE_ARRIVAL_STATUS;
    needs = needs.map((term) => `#st <> :pending AND ${term}`);
    if (byPattern) {
      names['#run'] = 'run_id';
      values[':run'] = runId;
      needs = needs.map((term) => `#run = :run AND ${term}`);
    }
    // Written without parentheses (NOT binds tighter than AND, AND than OR; the run's condition is
    // distributed over the terms): DynamoDB reads it the same, and dynalite's expression parser
    // backtracks on each level of parentheses — 6 to 26 ms a parse with two levels, against
    // 0.2 ms without, and the listing pages of one 5,000-exception run made ~200 such queries.
    const read = await readShardsInTurn<T>(this.doc, this.table, {
      index: indexName,
      shards: shardedValues(shape.patternId ?? runId),
      filter: needs.join(' OR '),
      names,
      values,
      ...(shape.projection ? { projection: shape.projection } : {}),
      limit: options.limit,
      ...(options.cursor === undefined ? {} : { cursor: options.cursor }),
    });
    // Pattern members go to triage whole: the index has only what the filter reads.
    let whole = byPattern
      ? ((await getItemsInOrder(
          this.doc,
          this.table,
          ['exception_id'],
          read.items as Record<string, unknown>[],
        )) as T[])
      : read.items;
    if (again) {
      const requestedAt = options.requestedAt as string;
      whole = whole.filter(
        (e) => !answersRequest((e as { triage?: { triaged_at?: string } }).triage?.triaged_at, requestedAt),
      );
    }
    return { items: whole, ...(read.cursor ? { cursor: read.cursor } : {}) };
  }
}

/**
 * UncitedListing on DynamoDB: one of by_uncited_sharded's two logical partitions, a shard after the
 * other, filtered to open statuses (and a dataset), projected to what the sweep queues.
 */
export class DynamoUncitedListing implements UncitedListing {
  private readonly doc: DynamoDBDocumentClient;
  private readonly table: string;
  constructor(doc: DynamoDBDocumentClient, table: string) {
    this.doc = doc;
    this.table = table;
  }

  async uncited(options: {
    readonly limit: number;
    readonly cursor?: string;
    readonly dataset?: string;
    readonly degraded?: boolean;
  }): Promise<CandidatePage<UncitedCandidate>> {
    const statuses = OPEN_STATUSES.filter((s) => s !== LATE_ARRIVAL_STATUS);
    const names: Record<string, string> = { '#st': 'status' };
    const values: Record<string, unknown> = Object.fromEntries(statuses.map((s, i) => [`:s${i}`, s]));
    let filter = `#st IN (${statuses.map((_, i) => `:s${i}`).join(', ')})`;
    if (options.dataset !== undefined) {
      names['#ds'] = 'dataset';
      values[':ds'] = options.dataset;
      filter += ' AND #ds = :ds';
    }
    const read = await readShardsInTurn<UncitedCandidate>(this.doc, this.table, {
      index: 'by_uncited_sharded',
      shards: shardedValues(options.degraded === true ? DEGRADED_TRIAGE : UNCITED_TRIAGE),
      filter,
      names,
      values,
      projection: ['exception_id', 'run_id', 'content_hash', 'pattern_id'],
      limit: options.limit,
      ...(options.cursor === undefined ? {} : { cursor: options.cursor }),
    });
    return { items: read.items, ...(read.cursor ? { cursor: read.cursor } : {}) };
  }
}

/**
 * Reads a sharded partition's shards one after the other from `cursor` (FilterExpression,
 * projection) until `limit` items, MAX_CALLS_PER_PAGE calls or its last shard: the items, and
 * where the next page starts (absent after the last shard).
 */
async function readShardsInTurn<T>(
  doc: DynamoDBDocumentClient,
  table: string,
  request: {
    readonly index: ExceptionIndexName;
    readonly shards: readonly string[];
    readonly filter: string;
    readonly names: Readonly<Record<string, string>>;
    readonly values: Readonly<Record<string, unknown>>;
    readonly projection?: readonly string[];
    readonly limit: number;
    readonly cursor?: string;
  },
): Promise<{ items: T[]; cursor?: string }> {
  const names: Record<string, string> = {
    ...request.names,
    '#pk': TABLES.exceptions.indexes[request.index].partitionKey.name,
  };
  const projection = request.projection?.map((attribute, i) => {
    names[`#a${i}`] = attribute;
    return `#a${i}`;
  });
  let cursor: Cursor | undefined = request.cursor === undefined ? { shard: 0 } : decodeCursor(request.cursor);
  const items: T[] = [];
  for (let calls = 0; cursor !== undefined && items.length < request.limit && calls < MAX_CALLS_PER_PAGE; calls++) {
    const out: QueryCommandOutput = await doc.send(
      new QueryCommand({
        TableName: table,
        IndexName: request.index,
        KeyConditionExpression: '#pk = :pk',
        FilterExpression: request.filter,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: { ...request.values, ':pk': request.shards[cursor.shard] },
        ...(projection ? { ProjectionExpression: projection.join(', ') } : {}),
        Limit: request.limit - items.length,
        ...(cursor.key ? { ExclusiveStartKey: cursor.key } : {}),
      }),
    );
    items.push(...((out.Items ?? []) as T[]));
    if (out.LastEvaluatedKey) cursor = { shard: cursor.shard, key: out.LastEvaluatedKey };
    else cursor = cursor.shard + 1 < request.shards.length ? { shard: cursor.shard + 1 } : undefined;
  }
  return { items, ...(cursor ? { cursor: encodeCursor(cursor) } : {}) };
}

function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

function decodeCursor(text: string): Cursor {
  let parsed: Cursor | undefined;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Cursor;
  } catch {
    parsed = undefined;
  }
  if (typeof parsed?.shard !== 'number' || parsed.shard < 0)
    throw new PermanentError('BAD_CURSOR', `"${text.slice(0, 60)}" is not a listing cursor`);
  return parsed;
}
