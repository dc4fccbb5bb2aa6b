/**
 * `tally region status|promote|fence`: the operator's hand on which region serves. One region is
 * active; the others are standby (ready, fed by replication) or fenced (taken out of service).
 * Failover and failback are both this command (docs/runbooks/region-failover.md): Route 53
 * follows /health, which answers 200 only in the active region.
 *
 * Local mode (default): the regions of the two-region local stack, `<data dir>/<region>/`
 * (npm run drill:failover, or startTwoRegions). `--aws`: the SSM parameter `/<prefix>/region-role`
 * in each region named by --regions.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../../functions/shared/paths.ts';
import {
  FileRegionRole,
  SsmRegionRole,
  supersededBy,
  type RegionRole,
  type RegionRoleRecord,
  type RegionRoleStore,
} from '../../functions/shared/region-role.ts';
import { DEFAULT_PREFIX, regionRoleParameterName } from '../../functions/shared/resources.ts';
import { UsageError } from './usage.ts';

export const regionHelp = `Usage: tally region <status|promote|fence> [REGION] [options]

Which region serves. Exactly one is active: its /health answers 200 (Route 53 sends traffic there),
its API takes writes and its queue consumers work. A standby or fenced region answers /health 503,
refuses writes (503 REGION_NOT_ACTIVE) and leaves queued messages in place. See
docs/runbooks/region-failover.md.

Commands:
  status            each region's role, since when, and whether an active region yields to
                    one made active later (then it acts as fenced)
  promote REGION    make REGION active. Refused while another region reads active: fence it
                    first (a region that cannot be read, e.g. during an outage, is reported and
                    left: fence it as soon as it is reachable again, before it can serve)
  fence REGION      take REGION out of service (fenced)

Where (default: the local two-region stack):
  --data-dir DIR     the local regions' state: npm start's --data-dir (its regions/) or
                     that regions/ directory itself, DIR/<region>/              [default: .tally]
  --aws              the SSM parameter /<prefix>/region-role in each of --regions
  --regions A,B      the deployment's regions (with --aws)           [default: $TALLY_REGIONS]
  --prefix PREFIX    resource name prefix on AWS                               [default: ${DEFAULT_PREFIX}]

Options:
  --json             JSON instead of text
  -h, --help         show this help

A role change takes effect within 5 s (the functions cache it that long).

Exit status: 0 done; 1 refused, or a region could not be read or written; 2 bad usage.

Examples:
  npx tally region status --aws --regions us-east-1,us-west-2
  npx tally region fence us-east-1 --aws --regions us-east-1,us-west-2
  npx tally region promote us-west-2 --aws --regions us-east-1,us-west-2
`;

export interface Io {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown };
}

/** Where the regions' roles are: each region's store. */
export type RegionStores = ReadonlyMap<string, RegionRoleStore>;

/**
 * The regions under a data directory: `npm start -- --two-regions --data-dir D` keeps them in
 * D/regions/<region>/, so D itself is taken as well as D/regions.
 */
export function localRegionStores(given: string): RegionStores {
  const dataDir = existsSync(join(given, 'regions')) ? join(given, 'regions') : given;
  const stores = new Map<string, RegionRoleStore>();
  if (!existsSync(dataDir)) return stores;
  for (const entry of readdirSync(dataDir, { withFileTypes: true }))
    if (entry.isDirectory() && existsSync(join(dataDir, entry.name, 'region-role.json')))
      stores.set(entry.name, new FileRegionRole(entry.name, join(dataDir, entry.name, 'region-role.json')));
  return stores;
}

export function awsRegionStores(regions: readonly string[], prefix: string): RegionStores {
  return new Map(regions.map((r) => [r, new SsmRegionRole(r, regionRoleParameterName(prefix))]));
}

type Reading =
  | {
      region: string;
      role: RegionRole;
      changed_at?: string;
      /** Set when this region reads active but another was made active later: it acts as fenced. */
      yields_to?: string;
    }
  | { region: string; error: string };

async function readAll(stores: RegionStores): Promise<Reading[]> {
  type Read = { region: string; record: RegionRoleRecord } | { region: string; error: string };
  const read = await Promise.all(
    [...stores.values()].map(async (s): Promise<Read> => {
      try {
        return { region: s.region, record: await s.readRecord() };
      } catch (error) {
        return { region: s.region, error: (error as Error).message };
      }
    }),
  );
  return read.map((r): Reading => {
    if (!('record' in r)) return r;
    // The functions' own rule (PeerAwareRegionRole): of two active regions the later-promoted serves.
    const winner = read.find((other) => other !== r && 'record' in other && supersededBy(r, other));
    return {
      region: r.region,
      role: r.record.role,
      ...(r.record.changedAt ? { changed_at: r.record.changedAt.toISOString() } : {}),
      ...(winner ? { yields_to: winner.region } : {}),
    };
  });
}

function describe(readings: readonly Reading[]): string {
  return readings
    .map((r) => {
      if (!('role' in r)) return `${r.region.padEnd(16)} unreadable (${r.error})\n`;
      const since = r.changed_at ? `  since ${r.changed_at}` : '';
      const yields = r.yields_to
        ? `  (acts as fenced: ${r.yields_to} was made active later; fence one of the two)`
        : '';
      return `${r.region.padEnd(16)} ${r.role}${since}${yields}\n`;
    })
    .join('');
}

/** The command's core, on any stores (tests pass local ones). */
export async function runRegion(
  action: string,
  region: string | undefined,
  stores: RegionStores,
  io: Io,
  json = false,
): Promise<number> {
  if (stores.size === 0) {
    io.stderr.write('tally region: no regions found (is the two-region stack running, or pass --aws --regions)\n');
    return 1;
  }
  if (action === 'status') {
    const readings = await readAll(stores);
    io.stdout.write(json ? `${JSON.stringify(readings)}\n` : describe(readings));
    return readings.every((r) => 'role' in r) ? 0 : 1;
  }
  const store = region === undefined ? undefined : stores.get(region);
  if (!store) {
    io.stderr.write(`tally region: unknown region "${region}": the regions are ${[...stores.keys()].join(', ')}\n`);
    return 1;
  }
  const target: RegionRole = action === 'promote' ? 'active' : 'fenced';
  if (action === 'promote') {
    const others = (await readAll(stores)).filter((r) => r.region !== region);
    const active = others.filter((r) => 'role' in r && r.role === 'active');
    if (active.length > 0) {
      io.stderr.write(
        `tally region: refused: ${active.map((r) => r.region).join(', ')} is active. Two active regions would both ` +
          `take writes; fence it first: tally region fence ${active[0]?.region}\n`,
      );
      return 1;
    }
    for (const r of others)
      if ('error' in r)
        io.stderr.write(
          `tally region: warning: ${r.region} cannot be read (${r.error}); promoting anyway. Fence it as soon as it is reachable: tally region fence ${r.region}\n`,
        );
  }
  const started = Date.now();
  await store.write(target);
  const after = await readAll(stores);
  io.stdout.write(
    json
      ? `${JSON.stringify({ region, role: target, ms: Date.now() - started, regions: after })}\n`
      : `${region} is now ${target}\n${describe(after)}`,
  );
  return 0;
}

export async function regionCommand(argv: string[], io: Io = { stdout: process.stdout, stderr: process.stderr }) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      'data-dir': { type: 'string' },
      aws: { type: 'boolean', default: false },
      regions: { type: 'string' },
      prefix: { type: 'string', default: DEFAULT_PREFIX },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    io.stdout.write(regionHelp);
    return 0;
  }
  const [action, region, ...extra] = positionals;
  if (action === undefined || !['status', 'promote', 'fence'].includes(action))
    throw new UsageError(`expected status, promote or fence, not "${action ?? ''}"`, regionHelp);
  if (action !== 'status' && region === undefined) throw new UsageError(`${action} needs a REGION`, regionHelp);
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`, regionHelp);
  let stores: RegionStores;
  if (values.aws) {
    const regions = (values.regions ?? process.env.TALLY_REGIONS ?? '').split(',').filter(Boolean);
    if (regions.length === 0) throw new UsageError('--aws needs --regions (or TALLY_REGIONS)', regionHelp);
    stores = awsRegionStores(regions, values.prefix);
  } else stores = localRegionStores(resolve(REPO_ROOT, values['data-dir'] ?? '.tally'));
  return runRegion(action, region, stores, io, values.json);
}
