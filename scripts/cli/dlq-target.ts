/**
 * Where `tally dlq` works: the local stack of `npm start` (names and endpoints from its
 * endpoints.json) or the deployed queues in one AWS region (names from the resource registry).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { resourceNames, type QueueName } from '../../functions/shared/resources.ts';
import type { FailureReader } from '../../functions/shared/tables/failures.ts';
import { DynamoFailureStore } from '../../functions/shared/tables/failures-dynamo.ts';

/** A failure of the tool's own making, reported as its message alone (exit status 1). */
export class DlqError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DlqError';
  }
}

export interface QueuePair {
  readonly name: QueueName;
  readonly mainUrl: string;
  readonly dlqUrl: string;
  readonly mainArn: string;
  readonly dlqArn: string;
}

export interface Target {
  readonly mode: 'local' | 'aws';
  readonly where: string;
  readonly sqs: SQSClient;
  /** Why messages failed, as the consumers recorded it. */
  readonly failures: FailureReader;
  queue(name: QueueName): Promise<QueuePair>;
  close(): void;
}

interface LocalEndpoints {
  region: string;
  endpoints: { sqs: string; dynamodb: string };
  names: { tables: Record<string, string> };
  queues: Record<QueueName, { main: string; dlq: string; mainArn: string; dlqArn: string }>;
}

export function localTarget(dataDir: string): Target {
  const file = join(dataDir, 'endpoints.json');
  let local: LocalEndpoints;
  try {
    local = JSON.parse(readFileSync(file, 'utf8')) as LocalEndpoints;
  } catch {
    throw new DlqError(
      `no local stack state at ${file}: start it with "npm start" (or pass --data-dir), or use --region for AWS`,
    );
  }
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  const sqs = new SQSClient({
    region: local.region,
    endpoint: local.endpoints.sqs,
    credentials,
    useQueueUrlAsEndpoint: false,
  });
  const dynamo = DynamoDBDocumentClient.from(
    new DynamoDBClient({ region: local.region, endpoint: local.endpoints.dynamodb, credentials }),
  );
  return {
    mode: 'local',
    where: `local stack (${file})`,
    sqs,
    failures: new DynamoFailureStore(dynamo, local.names.tables.failures ?? resourceNames().tables.failures),
    async queue(name) {
      const q = local.queues[name];
      if (!q) throw new DlqError(`${file} has no ${name} queue`);
      return { name, mainUrl: q.main, dlqUrl: q.dlq, mainArn: q.mainArn, dlqArn: q.dlqArn };
    },
    close() {
      sqs.destroy();
      dynamo.destroy();
    },
  };
}

export function awsTarget(region: string, prefix: string): Target {
  const names = resourceNames(prefix);
  const sqs = new SQSClient({ region });
  const dynamo = DynamoDBDocumentClient.from(new DynamoDBClient({ region }));
  const arnOf = async (url: string) =>
    (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))).Attributes
      ?.QueueArn as string;
  const urlOf = async (queueName: string) => {
    try {
      return (await sqs.send(new GetQueueUrlCommand({ QueueName: queueName }))).QueueUrl as string;
    } catch (error) {
      if ((error as Error).name.includes('NonExistentQueue'))
        throw new DlqError(`queue ${queueName} does not exist in ${region} (wrong --prefix or --region?)`);
      throw error;
    }
  };
  return {
    mode: 'aws',
    where: `AWS ${region}, prefix ${prefix}`,
    sqs,
    failures: new DynamoFailureStore(dynamo, names.tables.failures),
    async queue(name) {
      const [mainUrl, dlqUrl] = await Promise.all([urlOf(names.queues[name].main), urlOf(names.queues[name].dlq)]);
      const [mainArn, dlqArn] = await Promise.all([arnOf(mainUrl), arnOf(dlqUrl)]);
      return { name, mainUrl, dlqUrl, mainArn, dlqArn };
    },
    close() {
      sqs.destroy();
      dynamo.destroy();
    },
  };
}
