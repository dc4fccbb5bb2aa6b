/**
 * Which region serves: exactly one is `active` at a time. A `standby` region (the secondary, fed
 * by replication) and a `fenced` one (taken out of service by an operator, e.g. the old primary
 * after a failover) answer /health with 503 so Route 53 sends nobody there, refuse API writes,
 * and their queue consumers leave messages in place. Failback is an operator action
 * (`npx tally region promote|fence REGION`), never automatic.
 *
 * Where the role lives: on AWS an SSM String parameter per region (env TALLY_REGION_ROLE_PARAMETER,
 * created by infra/ with the primary `active`, the secondary `standby`); locally a small JSON file
 * in the region's data dir (env TALLY_REGION_ROLE_FILE). Neither set: a single-region deployment,
 * always `active` (today's behaviour).
 *
 * Two regions that both read `active` (the old primary back from an outage nobody could fence it
 * through, while the secondary was promoted): the one promoted later serves and the other acts as
 * fenced until an operator decides (PeerAwareRegionRole). So failback stays an operator action
 * even when the fence could not reach the old primary.
 *
 * A reader caches the role for a few seconds: /health is probed every 10-30 s from several Route
 * 53 checkers, and a consumer checks before each batch.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { ENV, LAMBDA_ENV } from './resources.ts';

export const REGION_ROLES = ['active', 'standby', 'fenced'] as const;
export type RegionRole = (typeof REGION_ROLES)[number];

export function isRegionRole(value: unknown): value is RegionRole {
  return typeof value === 'string' && (REGION_ROLES as readonly string[]).includes(value);
}

/** Reads this region's role. */
export interface RegionRoleReader {
  /** The region this role belongs to (named in messages). */
  readonly region: string;
  read(): Promise<RegionRole>;
  /** Why the last read differs from the stored role, when it does (a later-promoted peer). */
  readonly reason?: string | undefined;
}

/** A stored role and when it was last written (SSM's LastModifiedDate, the file's changed_at). */
export interface RegionRoleRecord {
  readonly role: RegionRole;
  readonly changedAt?: Date;
}

/** Changes a region's role (the operator's `tally region promote|fence`). */
export interface RegionRoleStore extends RegionRoleReader {
  readRecord(): Promise<RegionRoleRecord>;
  write(role: RegionRole): Promise<void>;
}

/** A write refused, or a message left in place, because this region is not the active one. */
export class RegionNotActiveError extends Error {
  readonly code = 'REGION_NOT_ACTIVE';
  readonly region: string;
  readonly role: RegionRole;
  constructor(region: string, role: RegionRole, reason?: string) {
    super(
      `region ${region} is ${role}${reason ? ` (${reason})` : ''}, not active: it accepts no writes. Send writes to the active region ` +
        "(the API name follows it after a failover); `npx tally region status` shows each region's role, " +
        'and an operator makes a region active with `npx tally region promote REGION`.',
    );
    this.name = 'RegionNotActiveError';
    this.region = region;
    this.role = role;
  }
}

/** How long a read role is trusted: a promote or fence takes effect within this much. */
export const REGION_ROLE_CACHE_MS = 5_000;

/** A reader that asks its store at most once per `ttlMs`; concurrent readers share one request. */
export class CachedRegionRole implements RegionRoleReader {
  private readonly store: RegionRoleReader;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private cached: { role: RegionRole; at: number } | undefined;
  private pending: Promise<RegionRole> | undefined;
  constructor(store: RegionRoleReader, ttlMs: number = REGION_ROLE_CACHE_MS, now: () => number = Date.now) {
    this.store = store;
    this.ttlMs = ttlMs;
    this.now = now;
  }

  get region(): string {
    return this.store.region;
  }

  get reason(): string | undefined {
    return this.store.reason;
  }

  async read(): Promise<RegionRole> {
    if (this.cached && this.now() - this.cached.at < this.ttlMs) return this.cached.role;
    this.pending ??= this.store
      .read()
      .then((role) => {
        this.cached = { role, at: this.now() };
        return role;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }
}

/** A single-region deployment: always active. */
export class AlwaysActive implements RegionRoleReader {
  readonly region: string;
  constructor(region: string) {
    this.region = region;
  }
  async read(): Promise<RegionRole> {
    return 'active';
  }
}

/** The local stack's role: `{ "role": ..., "changed_at": ... }` in the region's data dir. */
export class FileRegionRole implements RegionRoleStore {
  readonly region: string;
  private readonly path: string;
  constructor(region: string, path: string) {
    this.region = region;
    this.path = path;
  }

  async read(): Promise<RegionRole> {
    return (await this.readRecord()).role;
  }

  async readRecord(): Promise<RegionRoleRecord> {
    // A region whose role was never written is not trusted to serve: the stack writes it at start.
    if (!existsSync(this.path)) return { role: 'fenced' };
    const parsed = JSON.parse(readFileSync(this.path, 'utf8')) as { role?: unknown; changed_at?: unknown };
    if (!isRegionRole(parsed.role)) throw new Error(`${this.path} holds no region role`);
    const changedAt = typeof parsed.changed_at === 'string' ? new Date(parsed.changed_at) : undefined;
    return { role: parsed.role, ...(changedAt && !Number.isNaN(changedAt.getTime()) ? { changedAt } : {}) };
  }

  async write(role: RegionRole): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true });
    // Renamed into place: a reader never sees half a file.
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ role, changed_at: new Date().toISOString() })}\n`);
    renameSync(tmp, this.path);
  }
}

/** An SSM error, by its name (e.g. ParameterNotFound, AccessDeniedException). */
export class SsmError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'SsmError';
    this.code = code;
  }
}

/** The role as an SSM String parameter (GetParameter / PutParameter with Overwrite). */
export class SsmRegionRole implements RegionRoleStore {
  readonly region: string;
  private readonly parameter: string;
  private readonly ssm: SSMClient;
  constructor(
    region: string,
    parameter: string,
    options: { endpoint?: string; client?: SSMClient; timeoutMs?: number } = {},
  ) {
    this.region = region;
    this.parameter = parameter;
    // A role read sits on /health and on every consumer batch: fail fast rather than hang.
    const timeout = options.timeoutMs ?? 3_000;
    this.ssm =
      options.client ??
      new SSMClient({
        region,
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        requestHandler: { requestTimeout: timeout, connectionTimeout: timeout },
        ...(options.timeoutMs !== undefined ? { maxAttempts: 1 } : {}),
      });
  }

  async read(): Promise<RegionRole> {
    return (await this.readRecord()).role;
  }

  async readRecord(): Promise<RegionRoleRecord> {
    const out = await this.call('GetParameter', () => this.ssm.send(new GetParameterCommand({ Name: this.parameter })));
    const value = out.Parameter?.Value?.trim();
    if (!isRegionRole(value))
      throw new SsmError('InvalidRegionRole', `parameter ${this.parameter} holds "${value}", not a region role`);
    const changedAt = out.Parameter?.LastModifiedDate;
    return { role: value, ...(changedAt ? { changedAt } : {}) };
  }

  async write(role: RegionRole): Promise<void> {
    await this.call('PutParameter', () =>
      this.ssm.send(new PutParameterCommand({ Name: this.parameter, Value: role, Type: 'String', Overwrite: true })),
    );
  }

  private async call<T>(action: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      const code = (error as { name?: string }).name ?? 'Error';
      throw new SsmError(code, `SSM ${action} ${this.parameter}: ${code}: ${(error as Error).message}`);
    }
  }
}

/**
 * Whether `own` yields to `peer`: both read active and the peer was made active later (ties go to
 * the region whose name sorts first, so the two regions always agree on one winner). A record
 * without a time (never written by an operator) never wins over one with a time.
 */
export function supersededBy(
  own: { readonly region: string; readonly record: RegionRoleRecord },
  peer: { readonly region: string; readonly record: RegionRoleRecord },
): boolean {
  if (own.record.role !== 'active' || peer.record.role !== 'active') return false;
  const ownAt = own.record.changedAt?.getTime() ?? Number.NEGATIVE_INFINITY;
  const peerAt = peer.record.changedAt?.getTime() ?? Number.NEGATIVE_INFINITY;
  if (peerAt !== ownAt) return peerAt > ownAt;
  return peer.region < own.region;
}

/** How long the peer's role is trusted (an answer or a failure to answer) before it is asked again. */
export const PEER_ROLE_CACHE_MS = 30_000;
/** How long a read of the peer's role may take: /health must answer Route 53 within 2 s. */
export const PEER_ROLE_TIMEOUT_MS = 1_000;

/**
 * This region's role, yielding to a peer promoted later. The case it covers: the primary was
 * unreachable during an outage, so the operator promoted the secondary without fencing it; when
 * the primary comes back its own parameter still reads active. Read alone, its /health would pass
 * and Route 53 would fail back on its own, with both regions writing. Read against the peer it
 * acts as fenced (503 on /health, writes refused, messages left) until an operator fences the
 * secondary and promotes it again.
 *
 * A peer that cannot be read (its region down, which is when this region must serve) leaves this
 * region's own role in force; the failure is remembered for PEER_ROLE_CACHE_MS, so a dead peer
 * costs /health at most PEER_ROLE_TIMEOUT_MS once per period.
 */
export class PeerAwareRegionRole implements RegionRoleReader {
  private readonly own: RegionRoleStore;
  private readonly peer: RegionRoleStore;
  private readonly peerTtlMs: number;
  private readonly now: () => number;
  private peerCached: { record: RegionRoleRecord | undefined; at: number } | undefined;
  private lastReason: string | undefined;
  constructor(own: RegionRoleStore, peer: RegionRoleStore, options: { peerTtlMs?: number; now?: () => number } = {}) {
    this.own = own;
    this.peer = peer;
    this.peerTtlMs = options.peerTtlMs ?? PEER_ROLE_CACHE_MS;
    this.now = options.now ?? Date.now;
  }

  get region(): string {
    return this.own.region;
  }

  get reason(): string | undefined {
    return this.lastReason;
  }

  async read(): Promise<RegionRole> {
    const own = await this.own.readRecord();
    this.lastReason = undefined;
    if (own.role !== 'active') return own.role;
    const peer = await this.peerRecord();
    if (!peer || !supersededBy({ region: this.region, record: own }, { region: this.peer.region, record: peer }))
      return own.role;
    this.lastReason =
      `its role reads active, but ${this.peer.region} was made active later` +
      (peer.changedAt ? ` (${peer.changedAt.toISOString()})` : '') +
      `: it acts as fenced until an operator fences one of the two`;
    return 'fenced';
  }

  private async peerRecord(): Promise<RegionRoleRecord | undefined> {
    if (this.peerCached && this.now() - this.peerCached.at < this.peerTtlMs) return this.peerCached.record;
    let record: RegionRoleRecord | undefined;
    try {
      record = await this.peer.readRecord();
    } catch {
      record = undefined;
    }
    this.peerCached = { record, at: this.now() };
    return record;
  }
}

/**
 * This function's region role, from its environment: the SSM parameter on AWS, the file locally,
 * else always active. Cached (REGION_ROLE_CACHE_MS).
 */
export function regionRoleFromEnv(env: NodeJS.ProcessEnv = process.env): RegionRoleReader {
  const region = env[LAMBDA_ENV.region] ?? 'local';
  const parameter = env[ENV.regionRoleParameter];
  const file = env[ENV.regionRoleFile];
  const peerRegion = env[ENV.peerRegion];
  // The SDK's own endpoint overrides (a proxy, a test double), read from the environment given.
  const endpoint = env.AWS_ENDPOINT_URL_SSM ?? env.AWS_ENDPOINT_URL;
  const withPeer = (own: RegionRoleStore, peer: RegionRoleStore | undefined) =>
    new CachedRegionRole(peer ? new PeerAwareRegionRole(own, peer) : own);
  if (parameter) {
    const at = endpoint ? { endpoint } : {};
    // The peer's parameter has the same name in its region (regionRoleParameterName).
    const peer = peerRegion
      ? new SsmRegionRole(peerRegion, parameter, { ...at, timeoutMs: PEER_ROLE_TIMEOUT_MS })
      : undefined;
    return withPeer(new SsmRegionRole(region, parameter, at), peer);
  }
  if (file) {
    const peerFile = env[ENV.peerRegionRoleFile];
    const peer = peerRegion && peerFile ? new FileRegionRole(peerRegion, peerFile) : undefined;
    return withPeer(new FileRegionRole(region, file), peer);
  }
  return new AlwaysActive(region);
}

/** Throws RegionNotActiveError unless the region is active. */
export async function assertActive(role: RegionRoleReader): Promise<void> {
  const current = await role.read();
  if (current !== 'active') throw new RegionNotActiveError(role.region, current, role.reason);
}
