/**
 * `tally reindex`: rebuild a region's exceptions index from its exceptions table, the source of
 * truth (after a region's index was lost, or came up empty, or fell behind its stream). Each item
 * is projected exactly as the stream consumer projects it (functions/stream-index/project.ts):
 * from the vector stored on the item, with no model call. A parallel Scan, one worker per
 * segment; after every page the position of each segment is written to a checkpoint file, so an
 * interrupted run goes on from there when started again. Progress on stderr.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { REPO_ROOT } from '../../functions/shared/paths.ts';
import { DEFAULT_PREFIX, ENV, awsBucketName, indexNames, resourceNames } from '../../functions/shared/resources.ts';
import { S3DatasetPolicies } from '../../functions/shared/adapters/s3-dataset-policies.ts';
import { withBundledPolicies } from '../../functions/shared/dataset-policies.ts';
import { LOCAL_MASKING_SECRET } from '../../functions/shared/masking.ts';
import { createVectorIndex, embedderIdentity } from '../../functions/shared/search/factory.ts';
import { datasetTriagePolicies } from '../../functions/triage/dataset-policy.ts';
import {
  isExceptionItem,
  projectChange,
  type ProjectionDeps,
  type ProjectionOutcome,
} from '../../functions/stream-index/project.ts';
import { UsageError } from './usage.ts';

export const reindexHelp = `Usage: tally reindex [options]

Rebuild a region's exceptions search index from its exceptions table: every exception with a
stored vector is indexed again (no model call), every other one has its indexed fields refreshed.
Resumable: the position of each scan segment is saved after every page; run the same command
again to go on. Progress is written to stderr.

Where (default: the local stack):
  --data-dir DIR     local stack state, holding endpoints.json                  [default: .tally]
                     (a region of the two-region stack: .tally/regions/<region>)
  --aws              the deployed table and OpenSearch index, in --region
  --region REGION    with --aws                                          [default: $AWS_REGION]
  --prefix PREFIX    resource name prefix on AWS                                  [default: ${DEFAULT_PREFIX}]
                     (on AWS also set ${ENV.opensearchEndpoint}, ${ENV.maskingSecret} and ${ENV.embedder},
                     as the region's functions have them)

Options:
  --segments N       parallel scan segments                                           [default: 4]
  --checkpoint FILE  where progress is kept     [default: <data dir>/reindex-checkpoint.json, or
                                                  ./tally-reindex-<region>.json with --aws]
  --restart          ignore a saved checkpoint and start from the beginning
  --dry-run          read and count only; write nothing (neither index nor checkpoint)
  -h, --help         show this help

Exit status: 0 done; 1 an error (the checkpoint keeps what was done); 2 bad usage.
`;

/** One page of one scan segment: unmarshalled items and where the next page starts. */
export type ScanPage = (
  segment: number,
  totalSegments: number,
  startKey: Record<string, unknown> | undefined,
) => Promise<{ items: Record<string, unknown>[]; nextKey: Record<string, unknown> | undefined }>;

export interface Checkpoint {
  readonly table: string;
  readonly totalSegments: number;
  /** Per segment: where its next page starts (undefined: from the beginning) and whether it is done. */
  readonly segments: { startKey?: Record<string, unknown>; done: boolean }[];
  readonly counts: Record<ProjectionOutcome | 'scanned' | 'skipped', number>;
}

export interface ReindexOptions {
  readonly table: string;
  readonly scan: ScanPage;
  readonly project: ProjectionDeps;
  readonly segments: number;
  readonly checkpointFile: string;
  readonly restart?: boolean;
  readonly dryRun?: boolean;
  readonly progress?: (line: string) => void;
  /** Test seam: called after each page is checkpointed (a throw interrupts the run there). */
  readonly afterPage?: (checkpoint: Checkpoint) => void;
}

function loadCheckpoint(file: string, table: string, totalSegments: number): Checkpoint | undefined {
  if (!existsSync(file)) return undefined;
  const saved = JSON.parse(readFileSync(file, 'utf8')) as Checkpoint;
  if (saved.table !== table || saved.totalSegments !== totalSegments)
    throw new Error(
      `${file} is the checkpoint of a reindex of ${saved.table} in ${saved.totalSegments} segments: pass the same --segments, or --restart`,
    );
  return saved;
}

function saveCheckpoint(file: string, checkpoint: Checkpoint): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(checkpoint)}\n`);
  renameSync(tmp, file);
}

/** Rebuilds the index; resolves with the counts once every segment is done (the checkpoint is then removed). */
export async function reindex(options: ReindexOptions): Promise<Checkpoint['counts']> {
  const fresh: Checkpoint = {
    table: options.table,
    totalSegments: options.segments,
    segments: Array.from({ length: options.segments }, () => ({ done: false })),
    counts: { scanned: 0, indexed: 0, fields: 0, removed: 0, skipped: 0 },
  };
  const resumed = options.restart ? undefined : loadCheckpoint(options.checkpointFile, options.table, options.segments);
  const checkpoint: Checkpoint = structuredClone(resumed ?? fresh);
  if (resumed)
    options.progress?.(
      `reindex: resuming ${options.table} from ${options.checkpointFile} (${resumed.counts.scanned} items already done)`,
    );
  if (!options.dryRun) await options.project.index.ensure();
  const started = Date.now();

  // One segment failing stops the others at their next page: the checkpoint then says where each stopped.
  let failed = false;
  await Promise.all(
    checkpoint.segments.map(async (position, segment) => {
      try {
        await scanSegment(position, segment);
      } catch (error) {
        failed = true;
        throw error;
      }
    }),
  );
  if (!options.dryRun) rmSync(options.checkpointFile, { force: true });
  return checkpoint.counts;

  async function scanSegment(position: Checkpoint['segments'][number], segment: number): Promise<void> {
    while (!position.done && !failed) {
      const page = await options.scan(segment, options.segments, position.startKey);
      for (const item of page.items) {
        checkpoint.counts.scanned++;
        if (!isExceptionItem(item)) {
          checkpoint.counts.skipped++;
          continue;
        }
        const outcome = options.dryRun
          ? typeof item.embedding === 'string'
            ? 'indexed'
            : 'fields'
          : await projectChange({ kind: 'upsert', item }, options.project);
        checkpoint.counts[outcome]++;
      }
      if (page.nextKey) position.startKey = page.nextKey;
      else {
        delete position.startKey;
        position.done = true;
      }
      if (!options.dryRun) saveCheckpoint(options.checkpointFile, checkpoint);
      const c = checkpoint.counts;
      const segmentsDone = checkpoint.segments.filter((s) => s.done).length;
      options.progress?.(
        `reindex: ${c.scanned} items scanned, ${c.indexed} indexed, ${c.fields} not triaged (fields only), ` +
          `${segmentsDone}/${options.segments} segments done, ${Math.round((Date.now() - started) / 1000)} s`,
      );
      options.afterPage?.(checkpoint);
    }
  }
}

export function dynamoScanPage(doc: DynamoDBDocumentClient, table: string, pageSize = 500): ScanPage {
  return async (segment, totalSegments, startKey) => {
    const out = await doc.send(
      new ScanCommand({
        TableName: table,
        Segment: segment,
        TotalSegments: totalSegments,
        Limit: pageSize,
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    );
    return { items: (out.Items ?? []) as Record<string, unknown>[], nextKey: out.LastEvaluatedKey };
  };
}

interface LocalEndpoints {
  region: string;
  endpoints: { dynamodb: string; sqs: string };
  names: { tables: Record<string, string>; bucket: string };
}

export async function reindexCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      'data-dir': { type: 'string', default: '.tally' },
      aws: { type: 'boolean', default: false },
      region: { type: 'string' },
      prefix: { type: 'string', default: DEFAULT_PREFIX },
      segments: { type: 'string', default: '4' },
      checkpoint: { type: 'string' },
      restart: { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(reindexHelp);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected arguments: ${positionals.join(' ')}`, reindexHelp);
  const segments = Number(values.segments);
  if (!Number.isInteger(segments) || segments < 1 || segments > 64)
    throw new UsageError('--segments must be a whole number from 1 to 64', reindexHelp);

  let doc: DynamoDBDocumentClient;
  let s3: S3Client;
  let table: string;
  let bucket: string;
  let env: NodeJS.ProcessEnv;
  let checkpointFile: string;
  if (values.aws) {
    const region = values.region ?? process.env.AWS_REGION;
    if (!region) throw new UsageError('--aws needs --region (or AWS_REGION)', reindexHelp);
    doc = DynamoDBDocumentClient.from(new DynamoDBClient({ region }));
    s3 = new S3Client({ region });
    table = resourceNames(values.prefix).tables.exceptions;
    bucket = awsBucketName(values.prefix, region);
    env = {
      ...process.env,
      AWS_REGION: region,
      [ENV.vectorStore]: 'opensearch',
      [ENV.exceptionsIndex]: process.env[ENV.exceptionsIndex] ?? indexNames(values.prefix).exceptions,
    };
    checkpointFile = resolve(values.checkpoint ?? `tally-reindex-${region}.json`);
  } else {
    const dataDir = resolve(REPO_ROOT, values['data-dir']);
    const file = join(dataDir, 'endpoints.json');
    // Where to reindex is the caller's to say: bad usage, reported in one line like any other.
    if (!existsSync(file))
      throw new UsageError(
        `no local stack state at ${file}: start the local stack with "npm start", pass --data-dir DIR (a local stack's state), or use --aws --region REGION`,
        reindexHelp,
      );
    const local = JSON.parse(readFileSync(file, 'utf8')) as LocalEndpoints;
    const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
    doc = DynamoDBDocumentClient.from(
      new DynamoDBClient({ region: local.region, endpoint: local.endpoints.dynamodb, credentials }),
    );
    // The emulator itself (S3 and SQS share its port), as the functions reach it.
    s3 = new S3Client({ region: local.region, endpoint: local.endpoints.sqs, forcePathStyle: true, credentials });
    table = local.names.tables.exceptions as string;
    bucket = local.names.bucket;
    env = { ...process.env, [ENV.vectorDir]: join(dataDir, 'vectors') };
    checkpointFile = resolve(values.checkpoint ?? join(dataDir, 'reindex-checkpoint.json'));
  }
  const embedder = embedderIdentity(env);
  const project: ProjectionDeps = {
    index: createVectorIndex('exceptions', env, embedder.dimensions),
    policies: datasetTriagePolicies(
      withBundledPolicies(new S3DatasetPolicies(s3)),
      bucket,
      env[ENV.maskingSecret] ?? (values.aws ? undefined : LOCAL_MASKING_SECRET),
    ),
    embedderId: embedder.id,
  };
  try {
    const counts = await reindex({
      table,
      scan: dynamoScanPage(doc, table),
      project,
      segments,
      checkpointFile,
      restart: values.restart,
      dryRun: values['dry-run'],
      progress: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(
      `${values['dry-run'] ? 'would reindex' : 'reindexed'} ${table}: ${counts.indexed} exceptions indexed, ` +
        `${counts.fields} not triaged (fields only), ${counts.skipped} other items\n`,
    );
    return 0;
  } catch (error) {
    process.stderr.write(`tally reindex: ${(error as Error).message}\n`);
    return 1;
  } finally {
    doc.destroy();
    s3.destroy();
  }
}
