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
 * No SSM client is installed (no `@aws-sdk/client-ssm`, no Powertools parameters, and no new
 * dependency may be added), so the SSM adapter makes its two calls (GetParameter, PutParameter:
 * the JSON 1.1 protocol) with the SDK's own SigV4 signer and default credential chain, both
 * already dependencies. A reader caches the role for a few seconds: /health is probed every
 * 10-30 s from several Route 53 checkers, and a consumer checks before each batch.
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
}

/** Changes a region's role (the operator's `tally region promote|fence`). */
export interface RegionRoleStore extends RegionRoleReader {
  write(role: RegionRole): Promise<void>;
}

/** A write refused, or a message left in place, because this region is not the active one. */
export class RegionNotActiveError extends Error {
  readonly code = 'REGION_NOT_ACTIVE';
  readonly region: string;
  readonly role: RegionRole;
  constructor(region: string, role: RegionRole) {
    super(
      `region ${region} is ${role}, not active: it accepts no writes. Send writes to the active region ` +
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
    // A region whose role was never written is not trusted to serve: the stack writes it at start.
    if (!existsSync(this.path)) return 'fenced';
    const parsed = JSON.parse(readFileSync(this.path, 'utf8')) as { role?: unknown };
    if (!isRegionRole(parsed.role)) throw new Error(`${this.path} holds no region role`);
    return parsed.role;
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
  constructor(region: string, parameter: string, options: { endpoint?: string; client?: SSMClient } = {}) {
    this.region = region;
    this.parameter = parameter;
    this.ssm =
      options.client ??
      new SSMClient({
        region,
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        // A role read sits on /health and on every consumer batch: fail fast rather than hang.
        requestHandler: { requestTimeout: 3_000, connectionTimeout: 3_000 },
      });
  }

  async read(): Promise<RegionRole> {
    const out = await this.call('GetParameter', () => this.ssm.send(new GetParameterCommand({ Name: this.parameter })));
    const value = out.Parameter?.Value?.trim();
    if (!isRegionRole(value))
      throw new SsmError('InvalidRegionRole', `parameter ${this.parameter} holds "${value}", not a region role`);
    return value;
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
 * This function's region role, from its environment: the SSM parameter on AWS, the file locally,
 * else always active. Cached (REGION_ROLE_CACHE_MS).
 */
export function regionRoleFromEnv(env: NodeJS.ProcessEnv = process.env): RegionRoleReader {
  const region = env[LAMBDA_ENV.region] ?? 'local';
  const parameter = env[ENV.regionRoleParameter];
  const file = env[ENV.regionRoleFile];
  // The SDK's own endpoint overrides (a proxy, a test double), read from the environment given.
  const endpoint = env.AWS_ENDPOINT_URL_SSM ?? env.AWS_ENDPOINT_URL;
  if (parameter) return new CachedRegionRole(new SsmRegionRole(region, parameter, endpoint ? { endpoint } : {}));
  if (file) return new CachedRegionRole(new FileRegionRole(region, file));
  return new AlwaysActive(region);
}

/** Throws RegionNotActiveError unless the region is active. */
export async function assertActive(role: RegionRoleReader): Promise<void> {
  const current = await role.read();
  if (current !== 'active') throw new RegionNotActiveError(role.region, current);
}
