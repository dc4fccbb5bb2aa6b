/**
 * The region role: its stores (file locally, SSM on AWS over signed JSON calls), the short cache,
 * and how a region that is not active holds queue messages back (shared/sqs-batch.ts).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../functions/shared/logger.ts';
import { mockClient } from 'aws-sdk-client-mock';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { createServer, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import {
  AlwaysActive,
  CachedRegionRole,
  FileRegionRole,
  PeerAwareRegionRole,
  RegionNotActiveError,
  SsmRegionRole,
  regionRoleFromEnv,
  supersededBy,
  type RegionRole,
  type RegionRoleReader,
  type RegionRoleRecord,
  type RegionRoleStore,
} from '../../functions/shared/region-role.ts';
import { createSqsHandler, notActiveHoldSeconds } from '../../functions/shared/sqs-batch.ts';
import { lambdaContext, sqsEvent, sqsRecord } from '../support/events.ts';

/**
 * A loopback SSM endpoint answering each signed JSON call with `answer(request)`, and credentials
 * for the default chain (it reads the process environment), for the length of `use(endpoint)`.
 */
async function withFakeSsm(
  answer: (req: IncomingMessage) => unknown,
  use: (endpoint: string) => Promise<void>,
): Promise<void> {
  const server = createServer((req, res) => {
    const body = JSON.stringify(answer(req));
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
    res.end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'a');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'b');
  try {
    await use(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  } finally {
    vi.unstubAllEnvs();
    server.close();
  }
}

function fixedRole(role: RegionRole, region = 'eu-west-1'): RegionRoleReader & { reads: number } {
  return {
    region,
    reads: 0,
    async read() {
      this.reads++;
      return role;
    },
  };
}

describe('region role stores', () => {
  it('the file store reads back what it wrote; a missing file is fenced, not active', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-role-'));
    const store = new FileRegionRole('primary', join(dir, 'nested', 'region-role.json'));

    expect(await store.read()).toBe('fenced');
    await store.write('active');
    expect(await store.read()).toBe('active');
    await store.write('standby');
    expect(await store.read()).toBe('standby');
  });

  it('the file store refuses a file that holds no role', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-role-'));
    writeFileSync(join(dir, 'r.json'), '{"role":"leader"}');

    await expect(new FileRegionRole('x', join(dir, 'r.json')).read()).rejects.toThrow(/no region role/);
  });

  it('SSM: GetParameter names the parameter, and its value is the role', async () => {
    const ssm = mockClient(SSMClient);
    ssm.on(GetParameterCommand).resolves({ Parameter: { Name: '/tally/region-role', Value: 'standby' } });
    const store = new SsmRegionRole('eu-west-1', '/tally/region-role', { client: new SSMClient({}) });

    expect(await store.read()).toBe('standby');
    expect(ssm.commandCalls(GetParameterCommand)[0]?.args[0].input).toEqual({ Name: '/tally/region-role' });
    ssm.restore();
  });

  it('SSM: PutParameter overwrites the String parameter; an error names its SSM code', async () => {
    const ssm = mockClient(SSMClient);
    ssm
      .on(PutParameterCommand, { Value: 'fenced' })
      .resolves({ Version: 2 })
      .on(PutParameterCommand, { Value: 'active' })
      .rejects(Object.assign(new Error('no'), { name: 'AccessDeniedException' }));
    const store = new SsmRegionRole('us-east-1', '/tally/region-role', { client: new SSMClient({}) });

    await store.write('fenced');
    expect(ssm.commandCalls(PutParameterCommand)[0]?.args[0].input).toEqual({
      Name: '/tally/region-role',
      Value: 'fenced',
      Type: 'String',
      Overwrite: true,
    });
    await expect(store.write('active')).rejects.toMatchObject({ code: 'AccessDeniedException' });
    ssm.restore();
  });

  it('SSM: a value that is not a role is an error, never read as active', async () => {
    const ssm = mockClient(SSMClient);
    ssm.on(GetParameterCommand).resolves({ Parameter: { Value: 'primary' } });
    const store = new SsmRegionRole('us-east-1', '/p', { client: new SSMClient({}) });

    await expect(store.read()).rejects.toMatchObject({ code: 'InvalidRegionRole' });
    ssm.restore();
  });

  it('the cache asks the store at most once per TTL', async () => {
    const store = fixedRole('active');
    let now = 1_000;
    const cached = new CachedRegionRole(store, 5_000, () => now);

    await Promise.all([cached.read(), cached.read()]);
    now += 4_999;
    await cached.read();
    expect(store.reads).toBe(1);
    now += 1;
    await cached.read();
    expect(store.reads).toBe(2);
  });

  it('from the environment: the SSM parameter, else the local file, else always active', async () => {
    expect(regionRoleFromEnv({ AWS_REGION: 'us-east-1' })).toBeInstanceOf(AlwaysActive);
    expect(await regionRoleFromEnv({}).read()).toBe('active');
    const dir = mkdtempSync(join(tmpdir(), 'tally-role-'));
    const file = join(dir, 'role.json');
    await new FileRegionRole('r', file).write('standby');
    expect(await regionRoleFromEnv({ TALLY_REGION_ROLE_FILE: file }).read()).toBe('standby');
  });

  it('SSM honours the SDK endpoint override (AWS_ENDPOINT_URL_SSM)', async () => {
    const targets: string[] = [];
    await withFakeSsm(
      (req) => {
        targets.push(String(req.headers['x-amz-target']));
        return { Parameter: { Value: 'fenced' } };
      },
      async (endpoint) => {
        const role = regionRoleFromEnv({
          AWS_REGION: 'us-west-2',
          TALLY_REGION_ROLE_PARAMETER: '/tally/region-role',
          AWS_ENDPOINT_URL_SSM: endpoint,
        });
        expect(await role.read()).toBe('fenced');
      },
    );
    expect(targets).toEqual(['AmazonSSM.GetParameter']);
  });

  it('the refusal names the region, its role and what to do', () => {
    const error = new RegionNotActiveError('us-west-2', 'fenced');
    expect(error.code).toBe('REGION_NOT_ACTIVE');
    expect(error.message).toMatch(/us-west-2 is fenced/);
    expect(error.message).toMatch(/tally region status/);
    expect(error.message).toMatch(/tally region promote/);
  });
});

/** A store answering `record` (or failing when it is an Error), counting its reads. */
function recordStore(region: string, record: RegionRoleRecord | Error): RegionRoleStore & { reads: number } {
  return {
    region,
    reads: 0,
    async read() {
      return (await this.readRecord()).role;
    },
    async readRecord() {
      this.reads++;
      if (record instanceof Error) throw record;
      return record;
    },
    async write() {
      throw new Error('read only');
    },
  };
}

describe('two regions that both read active (the old primary back from an outage, never fenced)', () => {
  const before = new Date('2026-12-01T10:00:00Z');
  const after = new Date('2026-12-01T11:00:00Z');

  it('the one made active later serves; the other acts as fenced and says why', async () => {
    const primary = recordStore('us-east-1', { role: 'active', changedAt: before });
    const secondary = recordStore('us-west-2', { role: 'active', changedAt: after });
    const atPrimary = new PeerAwareRegionRole(primary, secondary);
    const atSecondary = new PeerAwareRegionRole(secondary, primary);

    expect(await atPrimary.read()).toBe('fenced');
    expect(atPrimary.reason).toMatch(/us-west-2 was made active later \(2026-12-01T11:00:00.000Z\)/);
    expect(await atSecondary.read()).toBe('active');
    expect(atSecondary.reason).toBeUndefined();
    const refusal = new RegionNotActiveError('us-east-1', 'fenced', atPrimary.reason);
    expect(refusal.message).toMatch(/us-east-1 is fenced \(its role reads active, but us-west-2 was made active later/);
  });

  it('a standby or fenced peer, or a region not itself active, changes nothing', async () => {
    const active = recordStore('us-east-1', { role: 'active', changedAt: before });
    for (const peerRole of ['standby', 'fenced'] as const)
      expect(
        await new PeerAwareRegionRole(active, recordStore('us-west-2', { role: peerRole, changedAt: after })).read(),
      ).toBe('active');
    const standby = recordStore('us-west-2', { role: 'standby', changedAt: after });
    const peer = recordStore('us-east-1', { role: 'active', changedAt: before });
    expect(await new PeerAwareRegionRole(standby, peer).read()).toBe('standby');
    expect(peer.reads).toBe(0);
  });

  it('a peer that cannot be read leaves the own role, and is asked again only after the peer TTL', async () => {
    const own = recordStore('us-west-2', { role: 'active', changedAt: after });
    const down = recordStore('us-east-1', new Error('connect ETIMEDOUT'));
    let now = 0;
    const role = new PeerAwareRegionRole(own, down, { peerTtlMs: 30_000, now: () => now });

    expect(await role.read()).toBe('active');
    now += 29_999;
    expect(await role.read()).toBe('active');
    expect(down.reads).toBe(1);
    now += 1;
    await role.read();
    expect(down.reads).toBe(2);
  });

  it('exactly one of two regions wins, whatever the times (ties by region name, untimed loses)', () => {
    const times = [undefined, before, after];
    for (const a of times)
      for (const b of times) {
        const east = { region: 'us-east-1', record: { role: 'active' as const, ...(a ? { changedAt: a } : {}) } };
        const west = { region: 'us-west-2', record: { role: 'active' as const, ...(b ? { changedAt: b } : {}) } };
        expect(supersededBy(east, west)).not.toBe(supersededBy(west, east));
      }
  });

  it('the file records when the role changed; SSM its LastModifiedDate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-role-'));
    const file = new FileRegionRole('r', join(dir, 'role.json'));
    const start = Date.now();
    await file.write('active');
    const record = await file.readRecord();
    expect(record.role).toBe('active');
    expect(record.changedAt?.getTime()).toBeGreaterThanOrEqual(start - 1);

    const ssm = mockClient(SSMClient);
    ssm.on(GetParameterCommand).resolves({ Parameter: { Value: 'active', LastModifiedDate: after } });
    const store = new SsmRegionRole('us-east-1', '/p', { client: new SSMClient({}) });
    expect(await store.readRecord()).toEqual({ role: 'active', changedAt: after });
    ssm.restore();
  });

  it("from the environment: the peer file (locally) or the peer region's parameter of the same name (AWS)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-role-'));
    const own = join(dir, 'own.json');
    const peer = join(dir, 'peer.json');
    await new FileRegionRole('us-east-1', own).write('active');
    await new Promise((r) => setTimeout(r, 5));
    await new FileRegionRole('us-west-2', peer).write('active');
    const local = regionRoleFromEnv({
      AWS_REGION: 'us-east-1',
      TALLY_REGION_ROLE_FILE: own,
      TALLY_PEER_REGION: 'us-west-2',
      TALLY_PEER_REGION_ROLE_FILE: peer,
    });
    expect(await local.read()).toBe('fenced');
    expect(local.reason).toMatch(/us-west-2 was made active later/);

    // On AWS: one GetParameter in each region, the peer's signed for the peer's region.
    const regions: string[] = [];
    await withFakeSsm(
      (req) => {
        const region = /Credential=[^/]+\/\d+\/([^/]+)\//.exec(String(req.headers.authorization))?.[1] ?? '?';
        regions.push(region);
        const changed = region === 'us-west-2' ? after : before;
        return { Parameter: { Value: 'active', LastModifiedDate: changed.getTime() / 1000 } };
      },
      async (endpoint) => {
        const onAws = regionRoleFromEnv({
          AWS_REGION: 'us-east-1',
          TALLY_REGION_ROLE_PARAMETER: '/tally/region-role',
          TALLY_PEER_REGION: 'us-west-2',
          AWS_ENDPOINT_URL_SSM: endpoint,
        });
        expect(await onAws.read()).toBe('fenced');
      },
    );
    expect(regions.sort()).toEqual(['us-east-1', 'us-west-2']);
  });
});

describe('a queue consumer in a region that is not active', () => {
  const logger = createLogger('test');

  function consumer(role: RegionRole) {
    const handled: string[] = [];
    const holds: [string, number][] = [];
    const handler = createSqsHandler(
      logger,
      () => ({
        regionRole: fixedRole(role),
        visibility: {
          timeoutSeconds: 720,
          extend: async () => undefined,
          hold: async (receiptHandle: string, seconds: number) => void holds.push([receiptHandle, seconds]),
        },
      }),
      async (record) => void handled.push(record.messageId),
    );
    return { handler, handled, holds };
  }

  it('handles nothing, reports every record failed and holds each out of sight', async () => {
    const { handler, handled, holds } = consumer('standby');
    const second = sqsRecord('{}', 'b');
    second.attributes.ApproximateReceiveCount = '3';

    const response = await handler(sqsEvent(sqsRecord('{}', 'a'), second), lambdaContext);

    expect(handled).toEqual([]);
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'a' }, { itemIdentifier: 'b' }]);
    expect(holds).toEqual([
      ['rh-a', 720],
      ['rh-b', 2880],
    ]);
  });

  it('a fenced region too; an active one handles the batch', async () => {
    const fenced = consumer('fenced');
    expect((await fenced.handler(sqsEvent(sqsRecord('{}', 'a')), lambdaContext)).batchItemFailures).toHaveLength(1);
    expect(fenced.handled).toEqual([]);

    const active = consumer('active');
    expect((await active.handler(sqsEvent(sqsRecord('{}', 'a')), lambdaContext)).batchItemFailures).toEqual([]);
    expect(active.handled).toEqual(['a']);
  });

  it('a role that cannot be read leaves the batch in the queue untouched', async () => {
    const handled: string[] = [];
    const handler = createSqsHandler(
      logger,
      () => ({ regionRole: { region: 'r', read: async () => Promise.reject(new Error('ssm down')) } }),
      async (record) => void handled.push(record.messageId),
    );

    const response = await handler(sqsEvent(sqsRecord('{}', 'a')), lambdaContext);

    expect(handled).toEqual([]);
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'a' }]);
  });

  it('holds double per receive, capped at SQS maximum of 12 hours', () => {
    expect([1, 2, 3, 4, 5].map((n) => notActiveHoldSeconds(n, 720))).toEqual([720, 1440, 2880, 5760, 11520]);
    expect(notActiveHoldSeconds(9, 720)).toBe(43_200);
    expect(notActiveHoldSeconds(0, 10)).toBe(10);
  });
});
