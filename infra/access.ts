/**
 * What each function touches, declared once. Its IAM role (only these actions on only these
 * resources) and its environment (only the names it needs) are both derived from this, so a
 * function cannot be configured with a resource it has no permission for, or the reverse.
 */
import {
  ENV,
  type PREFIXES,
  type FunctionName,
  type QueueName,
  type TableName,
} from '../functions/shared/resources.ts';

export type ModelRole = 'triage' | 'fallback' | 'embedding';

export interface FunctionAccess {
  readonly objects?: {
    readonly read?: readonly (keyof typeof PREFIXES)[];
    readonly write?: readonly (keyof typeof PREFIXES)[];
    /** HeadBucket (a health probe), which IAM authorises as s3:ListBucket on the bucket. */
    readonly probeBucket?: boolean;
  };
  readonly tables?: Partial<Record<TableName, 'read' | 'readWrite'>>;
  readonly sendsTo?: readonly QueueName[];
  readonly models?: readonly ModelRole[];
  readonly search?: 'read' | 'readWrite';
  /** Reads every queue's and DLQ's depth (GetQueueAttributes) and their age metrics (GET /queues). */
  readonly monitorsQueues?: boolean;
}

export const FUNCTION_ACCESS: Readonly<Record<FunctionName, FunctionAccess>> = {
  // Extracts under incoming/; policy documents under policies/ are chunked, embedded and indexed.
  'ingest-worker': {
    objects: { read: ['incoming', 'policies'] },
    tables: { files: 'readWrite', runs: 'readWrite', idempotency: 'readWrite' },
    sendsTo: ['recon'],
    models: ['embedding'],
    search: 'readWrite',
  },
  recon: {
    objects: { read: ['incoming'] },
    tables: { files: 'read', runs: 'readWrite', exceptions: 'readWrite' },
    sendsTo: ['triage'],
  },
  triage: {
    tables: { exceptions: 'readWrite', circuit_breaker: 'readWrite' },
    models: ['triage', 'fallback', 'embedding'],
    search: 'readWrite',
  },
  // Signs upload URLs (the signer's role must be allowed the PUT), lists/updates exceptions, searches.
  'query-api': {
    objects: { write: ['incoming'], probeBucket: true },
    tables: { exceptions: 'readWrite', runs: 'read', files: 'read' },
    models: ['embedding'],
    search: 'read',
    monitorsQueues: true,
  },
};

/** The environment variable carrying each table's name. */
export const TABLE_ENV: Readonly<Record<TableName, string>> = {
  exceptions: ENV.exceptionsTable,
  files: ENV.filesTable,
  runs: ENV.runsTable,
  idempotency: ENV.idempotencyTable,
  circuit_breaker: ENV.circuitBreakerTable,
  failures: ENV.failuresTable,
};

export const QUEUE_URL_ENV: Readonly<Partial<Record<QueueName, string>>> = {
  recon: ENV.reconQueueUrl,
  triage: ENV.triageQueueUrl,
};

/** DynamoDB actions per access level; Query also needs the table's indexes. */
export const TABLE_ACTIONS = {
  read: ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query', 'dynamodb:ConditionCheckItem'],
  readWrite: [
    'dynamodb:GetItem',
    'dynamodb:BatchGetItem',
    'dynamodb:Query',
    'dynamodb:ConditionCheckItem',
    'dynamodb:PutItem',
    'dynamodb:UpdateItem',
    'dynamodb:DeleteItem',
    'dynamodb:BatchWriteItem',
  ],
} as const;

/** OpenSearch Serverless data-plane permissions per access level (data access policy). */
export const SEARCH_PERMISSIONS = {
  read: ['aoss:DescribeIndex', 'aoss:ReadDocument'],
  // Index creation stays in code (#3), so writers may create and update their indexes.
  readWrite: ['aoss:CreateIndex', 'aoss:DescribeIndex', 'aoss:UpdateIndex', 'aoss:ReadDocument', 'aoss:WriteDocument'],
} as const;

const PROFILE_PREFIX = /^(us|eu|apac|us-gov|global)\./;

/**
 * Bedrock resources for one model id. A cross-region inference profile (eu.anthropic...) routes
 * to the foundation model in any of its regions, so it needs the profile plus the model in every
 * region; a plain model id needs only the model in this region.
 */
export function bedrockModelArns(
  modelId: string,
  ctx: { partition: string; region: string; account: string },
): string[] {
  if (PROFILE_PREFIX.test(modelId)) {
    const base = modelId.replace(PROFILE_PREFIX, '');
    return [
      `arn:${ctx.partition}:bedrock:${ctx.region}:${ctx.account}:inference-profile/${modelId}`,
      `arn:${ctx.partition}:bedrock:*::foundation-model/${base}`,
    ];
  }
  return [`arn:${ctx.partition}:bedrock:${ctx.region}::foundation-model/${modelId}`];
}
