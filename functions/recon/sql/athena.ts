/**
 * The SQL engine on Amazon Athena (engine v3, Trino): the compiled policy (`compile.ts`, Trino
 * dialect) over the two objects under incoming/, for runs above the policy's
 * `engine.large_above_bytes` on AWS.
 *
 * A run is a fixed list of statements (`planAthenaRun`) executed one after another in the
 * regional stack's workgroup: a Glue database of the run's own, an external table over each
 * side's folder (read through `"$path"`, so only the run's object), one CTAS table per compiled
 * stage (Parquet under `athena/{run_id}/`), UNLOAD of the findings as gzip JSON Lines, one
 * `Finding` per line, to `results/{run_id}/` (the store consumer reads any object there), the
 * summary queries, and the database dropped. Polling never holds a Lambda: each step ends by
 * re-enqueueing an `athena-check` message with a delay on the recon queue (`advanceAthenaRun`).
 *
 * No `@aws-sdk/client-athena` here: `AthenaPort` is what the runner needs of it; the SDK adapter
 * (StartQueryExecution / GetQueryExecution / GetQueryResults) implements it.
 *
 * What the SQL relies on in Athena (Trino): CTAS with `external_location`, UNLOAD (TEXTFILE,
 * GZIP), the `"$path"` pseudo-column, OpenCSVSerde (quotes, `""` escapes, missing trailing
 * fields as NULL), `skip.header.line.count`, window functions, `count(*) FILTER`, `try`,
 * `try_cast`, DECIMAL(38, 17), `regexp_like` / `regexp_extract` / `regexp_extract_all`,
 * `json_parse` / `json_format` / `json_extract_scalar`, MAP and ARRAY casts to JSON, lambdas in
 * `filter` / `transform`, `md5` / `to_hex`, `trim(BOTH … FROM …)`, `date_diff`. Not supported on
 * Athena (the run stays in memory, or fails with AthenaUnsupportedError): Latin-1 CSV (OpenCSVSerde
 * reads UTF-8 only) and Parquet sides (their columns would need typed DDL). Athena has no file
 * order: which row of a duplicated key is shown is not the first row as it is elsewhere.
 */
import { createHash } from 'node:crypto';
import { athenaCheckSchema, type AthenaCheck } from '../../shared/messages.ts';
import type { ReconPolicy } from '../../shared/policy.ts';
import { ATHENA_DATABASE_PREFIX, PREFIXES } from '../../shared/resources.ts';
import type { Side } from '../../shared/types.ts';
import type { ReconSummary } from '../engine.ts';
import { compileRecon, EXTRA_FIELDS, rawFromColumns, rawFromJsonLines, type SideLayout } from './compile.ts';
import { trino as dialect } from './dialect.ts';
import { summaryFromRows, type SummaryRows, type TextRow } from './summary.ts';

export type QueryState = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';

/** What the runner needs of Athena. */
export interface AthenaPort {
  /**
   * StartQueryExecution in the workgroup; returns the QueryExecutionId. `token` is its
   * ClientRequestToken: a redelivered check starting the same step gets the same query back.
   */
  start(sql: string, database: string | undefined, token?: string): Promise<string>;
  /** GetQueryExecution: the state and, when it failed, why. */
  status(queryId: string): Promise<{ state: QueryState; reason?: string }>;
  /** GetQueryResults, every page: the rows by column name (the header row removed). */
  rows(queryId: string): Promise<TextRow[]>;
}

/** Sends a message that becomes visible after `delaySeconds` (SQS DelaySeconds, at most 900). */
export interface DelayedQueue<T> {
  sendDelayed(message: T, delaySeconds: number): Promise<void>;
}

export class AthenaUnsupportedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AthenaUnsupportedError';
  }
}

export class AthenaQueryError extends Error {
  readonly step: string;
  constructor(step: string, reason: string) {
    super(`Athena step ${step} failed: ${reason}`);
    this.name = 'AthenaQueryError';
    this.step = step;
  }
}

export interface ObjectLocation {
  readonly bucket: string;
  readonly key: string;
}

export interface AthenaRunInput {
  readonly runId: string;
  readonly policy: ReconPolicy;
  /** Each side's header, read from the object's first record (`probe.ts`). */
  readonly layouts: Readonly<Record<Side, SideLayout>>;
  readonly source: ObjectLocation;
  readonly target: ObjectLocation;
  /** The bucket for the run's scratch tables (athena/) and its findings (results/). */
  readonly bucket: string;
  /**
   * One attempt of the run (its first check's start time): the database, the scratch tables and
   * the UNLOAD target are the attempt's own, because CTAS and UNLOAD refuse a non-empty location;
   * a run restarted after a partial attempt starts clean without deleting anything.
   */
  readonly attempt?: string;
}

type SummaryKey = keyof SummaryRows;

export interface AthenaStep {
  readonly name: string;
  readonly sql: string;
  /** The run's database, or none (creating it). */
  readonly database: string | undefined;
  /** A summary query: its rows are read at the end. */
  readonly summary?: SummaryKey;
}

export interface AthenaRunPlan {
  readonly database: string;
  readonly resultsPrefix: string;
  readonly steps: readonly AthenaStep[];
}

/** Where the run's findings are UNLOADed (the store consumer reads every object under it). */
export const resultsPrefix = (runId: string): string => `${PREFIXES.results}${runId}/`;
/** Where the run's CTAS tables are written (a lifecycle rule expires them). */
export const scratchPrefix = (runId: string): string => `${PREFIXES.athenaScratch}${runId}/`;

/** A Glue database name of the run's own: lower case letters, digits and underscores. */
export function runDatabase(runId: string): string {
  return `${ATHENA_DATABASE_PREFIX}${runId.toLowerCase().replace(/[^a-z0-9]/g, '_')}`.slice(0, 250);
}

const P: Record<Side, 's' | 't'> = { source: 's', target: 't' };
const lit = dialect.literal;
const folderOf = (key: string): string => key.slice(0, key.lastIndexOf('/') + 1);

/** The statements of one run, in order. */
export function planAthenaRun(input: AthenaRunInput): AthenaRunPlan {
  const { policy, layouts, runId: run, bucket, attempt } = input;
  // Names below are the attempt's (the results prefix stays under results/{run_id}/, read by the store).
  const runId = attempt === undefined ? run : `${run}/${attempt}`;
  const database = runDatabase(attempt === undefined ? run : `${run}_${attempt}`);
  const steps: AthenaStep[] = [
    { name: 'database', sql: `CREATE DATABASE IF NOT EXISTS \`${database}\``, database: undefined },
  ];
  for (const side of ['source', 'target'] as const) {
    const options = policy.sides[side];
    const object = input[side];
    const p = P[side];
    if (options.format === 'parquet')
      throw new AthenaUnsupportedError(`${side}: Parquet sides are not read on Athena by this version`);
    if (options.format === 'csv' && options.encoding !== 'utf-8')
      throw new AthenaUnsupportedError(`${side}: OpenCSVSerde reads UTF-8 only, this side is ${options.encoding}`);
    const location = `s3://${object.bucket}/${folderOf(object.key)}`;
    const path = lit(`s3://${object.bucket}/${object.key}`);
    if (options.format === 'jsonl') {
      steps.push({
        name: `${p}_file`,
        database,
        sql: `CREATE EXTERNAL TABLE \`${p}_file\` (line string) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\001' STORED AS TEXTFILE LOCATION '${location}'`,
      });
      steps.push(
        ctas(
          `${p}_raw`,
          rawFromJsonLines(
            `(SELECT line FROM ${p}_file WHERE "$path" = ${path})`,
            layouts[side].header,
            'row_number() OVER ()',
            dialect,
          ),
          runId,
          bucket,
          database,
        ),
      );
      continue;
    }
    const n = layouts[side].header.length;
    const columns = [
      ...Array.from({ length: n }, (_, i) => `c${i} string`),
      ...Array.from({ length: EXTRA_FIELDS }, (_, i) => `x${i + 1} string`),
    ];
    const separator = options.delimiter === '\t' ? '\\t' : options.delimiter;
    steps.push({
      name: `${p}_file`,
      database,
      sql: `CREATE EXTERNAL TABLE \`${p}_file\` (${columns.join(', ')}) ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde' WITH SERDEPROPERTIES ('separatorChar' = '${separator}', 'quoteChar' = '"') STORED AS TEXTFILE LOCATION '${location}' TBLPROPERTIES ('skip.header.line.count' = '1')`,
    });
    steps.push(
      ctas(
        `${p}_raw`,
        rawFromColumns(
          `(SELECT * FROM ${p}_file WHERE "$path" = ${path})`,
          n,
          { ordinal: 'row_number() OVER ()' },
          dialect,
        ),
        runId,
        bucket,
        database,
      ),
    );
  }
  const compiled = compileRecon(policy, layouts, dialect);
  for (const stage of compiled.stages) steps.push(ctas(stage.name, stage.sql, runId, bucket, database));
  const prefix = attempt === undefined ? resultsPrefix(run) : `${resultsPrefix(run)}${attempt}/`;
  steps.push({
    name: 'unload',
    database,
    sql: `UNLOAD (${compiled.findings.replace('SELECT type, finding', 'SELECT finding')}) TO 's3://${bucket}/${prefix}' WITH (format = 'TEXTFILE', compression = 'GZIP')`,
  });
  const summaries: [SummaryKey, string | undefined][] = [
    ['counts', compiled.counts],
    ['exceptions', 'SELECT type, count(*) AS n FROM findings GROUP BY type'],
    ['fieldStats', compiled.fieldStats],
    ['controlTotals', compiled.controlTotals],
    ['amountTotals', compiled.amountTotals],
  ];
  for (const [key, sql] of summaries)
    if (sql !== undefined) steps.push({ name: `summary_${key}`, sql, database, summary: key });
  steps.push({ name: 'drop', sql: `DROP DATABASE IF EXISTS \`${database}\` CASCADE`, database: undefined });
  return { database, resultsPrefix: prefix, steps };
}

function ctas(name: string, sql: string, runId: string, bucket: string, database: string): AthenaStep {
  return {
    name,
    database,
    sql: `CREATE TABLE ${name} WITH (format = 'PARQUET', write_compression = 'SNAPPY', external_location = 's3://${bucket}/${scratchPrefix(runId)}${name}/') AS ${sql}`,
  };
}

/** The recon queue message that carries a run on Athena from one step to the next (its schema is with the queues' bodies). */
export { athenaCheckSchema, type AthenaCheck };

export type AthenaAdvance =
  | { readonly action: 'waiting'; readonly check: AthenaCheck; readonly delaySeconds: number }
  | { readonly action: 'done'; readonly summary: ReconSummary; readonly resultsPrefix: string };

/** How long to wait before checking a query again: short at first, at most a minute. */
export function delayFor(polls: number): number {
  return Math.min(60, 5 * 2 ** Math.min(polls, 4));
}

/**
 * One step of a run: checks the query in flight; when it succeeded, starts the next statement;
 * when none is left, reads the summary. A waiting run is re-enqueued by the caller with the
 * returned check and delay (`continueAthenaRun` does both). A failed query throws AthenaQueryError.
 */
export async function advanceAthenaRun(
  check: AthenaCheck,
  policy: ReconPolicy,
  bucket: string,
  athena: AthenaPort,
  now: () => number,
): Promise<AthenaAdvance> {
  const plan = planAthenaRun({
    runId: check.run_id,
    policy,
    layouts: { source: { header: check.headers.source }, target: { header: check.headers.target } },
    source: check.source,
    target: check.target,
    bucket,
    attempt: String(check.started_at),
  });
  let next = check;
  if (check.query_id !== undefined) {
    const step = plan.steps[check.step] as AthenaStep;
    const status = await athena.status(check.query_id);
    if (status.state === 'QUEUED' || status.state === 'RUNNING')
      return { action: 'waiting', check: { ...check, polls: check.polls + 1 }, delaySeconds: delayFor(check.polls) };
    if (status.state !== 'SUCCEEDED') throw new AthenaQueryError(step.name, status.reason ?? status.state);
    next = {
      ...check,
      step: check.step + 1,
      query_id: undefined,
      polls: 0,
      summary_queries: step.summary
        ? { ...check.summary_queries, [step.summary]: check.query_id }
        : check.summary_queries,
    };
  }
  const step = plan.steps[next.step];
  if (step !== undefined) {
    const queryId = await athena.start(step.sql, step.database, startToken(check.run_id, check.started_at, next.step));
    return { action: 'waiting', check: { ...next, query_id: queryId, polls: 0 }, delaySeconds: delayFor(0) };
  }
  const read = async (key: SummaryKey) => {
    const id = next.summary_queries[key];
    return id === undefined ? undefined : athena.rows(id);
  };
  const rows: SummaryRows = {
    counts: (await read('counts'))?.[0] ?? {},
    exceptions: (await read('exceptions')) ?? [],
    fieldStats: (await read('fieldStats')) ?? [],
    controlTotals: await read('controlTotals'),
    amountTotals: await read('amountTotals'),
  };
  return {
    action: 'done',
    summary: summaryFromRows(policy, rows, Math.max(0, Math.round(now() - check.started_at))),
    resultsPrefix: plan.resultsPrefix,
  };
}

/** The ClientRequestToken of one step of one attempt (Athena wants 32 to 128 characters). */
export function startToken(runId: string, startedAt: number, step: number): string {
  return createHash('sha256').update(`${runId}\n${startedAt}\n${step}`).digest('hex');
}

/**
 * The lease owner of a run on Athena at one check: the run record holds the token of the one
 * check message that may advance it, so a redelivered or stale check finds another token and
 * does nothing (functions/recon/run.ts).
 */
export function checkToken(check: Pick<AthenaCheck, 'started_at' | 'step' | 'query_id' | 'polls'>): string {
  return `athena:${check.started_at}:${check.step}:${check.query_id ?? '-'}:${check.polls}`;
}

/** Advances a run and, while it waits, re-enqueues its check with the delay. */
export async function continueAthenaRun(
  check: AthenaCheck,
  policy: ReconPolicy,
  deps: {
    readonly bucket: string;
    readonly athena: AthenaPort;
    readonly queue: DelayedQueue<AthenaCheck>;
    readonly now: () => number;
  },
): Promise<AthenaAdvance> {
  const advance = await advanceAthenaRun(check, policy, deps.bucket, deps.athena, deps.now);
  if (advance.action === 'waiting') await deps.queue.sendDelayed(advance.check, advance.delaySeconds);
  return advance;
}

/** The first check of a run whose request chose the SQL engine on AWS. */
export function firstCheck(
  request: Pick<AthenaCheck, 'run_id' | 'dataset' | 'business_date' | 'source' | 'target'>,
  headers: Readonly<Record<Side, readonly string[]>>,
  now: number,
): AthenaCheck {
  return {
    kind: 'athena-check',
    run_id: request.run_id,
    dataset: request.dataset,
    business_date: request.business_date,
    source: request.source,
    target: request.target,
    headers: { source: [...headers.source], target: [...headers.target] },
    step: 0,
    summary_queries: {},
    polls: 0,
    started_at: now,
  };
}
