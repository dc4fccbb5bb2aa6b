/**
 * The local stack as two regions, for the failover drill: two emulator sets with their own data
 * dirs and ports, two API ports, each region with its own role (primary active, secondary
 * standby), and what AWS replicates between them:
 *
 * - "global tables": every committed write of either region's DynamoDB, captured as a stream
 *   record (NEW_AND_OLD_IMAGES, scripts/local/table-streams.ts), is applied to the other region,
 *   last writer wins. The applied write is itself a change in that region, so its own stream
 *   delivers it to its own stream-index function: replicated writes reach the index by the code
 *   path local ones take, as on AWS. It is not sent back (ReplicaWrites), and a replicated write
 *   is skipped when the target itself wrote the item later than the origin did.
 * - S3 replication of `incoming/` and `policies/`: each object the front door accepted there is
 *   copied to the other region's bucket, straight into its emulator. Replicas raise no "Object
 *   Created" event: ingest ran in the region written to, and its records arrive by the tables.
 *
 * Limits, compared with AWS: replication is immediate and in commit order (AWS: typically under
 * a second, and a conflict window as wide); last-writer-wins compares the origin's commit time
 * with the target's last local commit, to the millisecond, where AWS uses its own timestamps.
 */
import { join } from 'node:path';
import { PutItemCommand, DeleteItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { DynamoDBRecord } from 'aws-lambda';
import { isDeepStrictEqual } from 'node:util';
import type { TableChange } from './dynalite-atomic.ts';
import { startLocalStack, type LocalStack, type LocalStackOptions } from './stack.ts';

export const LOCAL_REGIONS = { primary: 'us-east-1', secondary: 'us-west-2' } as const;

export interface TwoRegions {
  readonly primary: LocalStack;
  readonly secondary: LocalStack;
  /** By region name. */
  region(name: string): LocalStack;
  /** Resolves once both regions' pipelines, streams and the replication between them are quiet. */
  waitForIdle(timeoutMs?: number): Promise<void>;
  /** Replicated writes applied / skipped (already there, or older than the target's). */
  replicationCounts(): { applied: number; skipped: number; objects: number };
  stop(): Promise<void>;
}

type Options = Omit<LocalStackOptions, 'dataDir' | 'region' | 'multiRegion' | 'apiPort'> & {
  readonly dataDir: string;
  readonly apiPorts?: { primary?: number; secondary?: number };
};

export async function startTwoRegions(options: Options): Promise<TwoRegions> {
  const { apiPorts, ...common } = options;
  // Side by side: each region's emulators, functions and API are its own.
  const [primary, secondary] = (await Promise.allSettled([
    startLocalStack({
      ...common,
      dataDir: join(options.dataDir, LOCAL_REGIONS.primary),
      region: LOCAL_REGIONS.primary,
      apiPort: apiPorts?.primary ?? 0,
      multiRegion: {
        initialRole: 'active',
        peer: { region: LOCAL_REGIONS.secondary, dataDir: join(options.dataDir, LOCAL_REGIONS.secondary) },
      },
    }),
    startLocalStack({
      ...common,
      dataDir: join(options.dataDir, LOCAL_REGIONS.secondary),
      region: LOCAL_REGIONS.secondary,
      apiPort: apiPorts?.secondary ?? 0,
      multiRegion: {
        initialRole: 'standby',
        peer: { region: LOCAL_REGIONS.primary, dataDir: join(options.dataDir, LOCAL_REGIONS.primary) },
      },
    }),
  ]).then(async (started) => {
    const failed = started.find((s) => s.status === 'rejected');
    if (!failed) return started.map((s) => (s as PromiseFulfilledResult<LocalStack>).value);
    await Promise.all(started.map((s) => (s.status === 'fulfilled' ? s.value.stop() : undefined)));
    throw failed.reason;
  })) as [LocalStack, LocalStack];
  const counts = { applied: 0, skipped: 0, objects: 0 };
  const ends = [
    { stack: primary, replicas: new ReplicaWrites(primary) },
    { stack: secondary, replicas: new ReplicaWrites(secondary) },
  ] as const;
  const links = [
    replicate(ends[0], ends[1], counts, options.onRouterError),
    replicate(ends[1], ends[0], counts, options.onRouterError),
  ];
  const stacks = [primary, secondary];

  return {
    primary,
    secondary,
    region(name) {
      const found = stacks.find((s) => s.region === name);
      if (!found) throw new Error(`no local region ${name}: the regions are ${stacks.map((s) => s.region).join(', ')}`);
      return found;
    },
    async waitForIdle(timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      // Work in one region replicates to the other, which may start work there: until all is still.
      for (let quiet = 0; quiet < 2;) {
        if (Date.now() > deadline) throw new Error(`regions still busy after ${timeoutMs} ms`);
        const busyBefore = links.some((l) => l.pending() > 0);
        await Promise.all(stacks.map((s) => s.waitForIdle(Math.max(1, deadline - Date.now()))));
        await Promise.all(links.map((l) => l.drained()));
        quiet = busyBefore || links.some((l) => l.pending() > 0) ? 0 : quiet + 1;
      }
    },
    replicationCounts: () => ({ ...counts }),
    async stop() {
      await Promise.all(links.map((l) => l.drained()));
      await secondary.stop();
      await primary.stop();
    },
  };
}

const itemKey = (table: string, keys: Record<string, unknown>) => `${table}\u0000${JSON.stringify(keys)}`;

/**
 * Which of a region's changes the replicator itself made: registered before the write is sent,
 * recognised when the region's stream delivers it. Those are not forwarded back (an echo applied
 * late to the origin would overwrite a newer write there) and are not the region's own writes in
 * last-writer-wins.
 */
class ReplicaWrites {
  private readonly expected = new Map<string, (Record<string, unknown> | null)[]>();
  private readonly replicas = new WeakSet<TableChange>();
  constructor(stack: LocalStack) {
    // Subscribed before the links, so every record is classified before they see it.
    stack.multiRegion?.streams.subscribe((_record, change) => {
      const key = itemKey(change.table, change.keys);
      const images = this.expected.get(key);
      const i = images?.findIndex((image) => isDeepStrictEqual(image, change.newImage ?? null)) ?? -1;
      if (!images || i < 0) return;
      images.splice(i, 1);
      if (images.length === 0) this.expected.delete(key);
      this.replicas.add(change);
    });
  }
  expect(table: string, keys: Record<string, unknown>, image: Record<string, unknown> | undefined): void {
    const key = itemKey(table, keys);
    this.expected.set(key, [...(this.expected.get(key) ?? []), image ?? null]);
  }
  isReplica(change: TableChange): boolean {
    return this.replicas.has(change);
  }
}

/** One direction: `from`'s own writes applied to `to`, one at a time, in commit order. */
function replicate(
  from: { stack: LocalStack; replicas: ReplicaWrites },
  to: { stack: LocalStack; replicas: ReplicaWrites },
  counts: { applied: number; skipped: number; objects: number },
  onError?: (error: Error) => void,
) {
  const source = from.stack.multiRegion;
  const target = to.stack.multiRegion;
  if (!source || !target) throw new Error('both regions must run in multi-region mode');
  const tableIn = (name: string) => {
    const logical = Object.entries(from.stack.names.tables).find(([, t]) => t === name)?.[0];
    return logical ? (to.stack.names.tables as Record<string, string>)[logical] : undefined;
  };
  // The target's own (not replicated) commit time of each item: what last-writer-wins compares.
  const lastLocalWrite = new Map<string, number>();
  target.streams.subscribe((_record: DynamoDBRecord, change: TableChange) => {
    if (!to.replicas.isReplica(change)) lastLocalWrite.set(itemKey(change.table, change.keys), change.at);
  });

  let chain: Promise<void> = Promise.resolve();
  let pending = 0;
  const enqueue = (work: () => Promise<void>) => {
    pending++;
    chain = chain
      .then(work)
      .catch((error: Error) =>
        onError?.(new Error(`replication ${from.stack.region} -> ${to.stack.region}: ${error.message}`)),
      )
      .finally(() => {
        pending--;
      });
  };

  source.streams.subscribe((_record, change) => {
    if (from.replicas.isReplica(change)) return;
    enqueue(async () => {
      const table = tableIn(change.table);
      if (!table) return;
      const keys = change.keys as Record<string, AttributeValue>;
      if ((lastLocalWrite.get(itemKey(table, change.keys)) ?? 0) > change.at) {
        counts.skipped++;
        return;
      }
      to.replicas.expect(table, change.keys, change.newImage);
      if (change.newImage)
        await target.dynamoDirect.send(
          new PutItemCommand({ TableName: table, Item: change.newImage as Record<string, AttributeValue> }),
        );
      else await target.dynamoDirect.send(new DeleteItemCommand({ TableName: table, Key: keys }));
      counts.applied++;
    });
  });

  source.onObjectCreated((event) =>
    enqueue(async () => {
      const { key, etag } = event.detail.object;
      const object = await source.s3Direct.send(new GetObjectCommand({ Bucket: from.stack.names.bucket, Key: key }));
      // Overwritten since: the newer version's own event replicates it.
      if (!object.Body || (object.ETag ?? '').replaceAll('"', '') !== etag.replaceAll('"', '')) return;
      await target.s3Direct.send(
        new PutObjectCommand({
          Bucket: to.stack.names.bucket,
          Key: key,
          Body: await object.Body.transformToByteArray(),
          ...(object.ContentType ? { ContentType: object.ContentType } : {}),
        }),
      );
      counts.objects++;
    }),
  );

  return { pending: () => pending, drained: () => chain };
}
