/** `tally region`: one active region at a time, promote refused while another reads active. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileRegionRole, type RegionRoleStore } from '../../functions/shared/region-role.ts';
import { localRegionStores, runRegion } from '../../scripts/cli/region.ts';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

async function twoRegions() {
  const dir = mkdtempSync(join(tmpdir(), 'tally-regions-'));
  await new FileRegionRole('us-east-1', join(dir, 'us-east-1', 'region-role.json')).write('active');
  await new FileRegionRole('us-west-2', join(dir, 'us-west-2', 'region-role.json')).write('standby');
  return { dir, stores: localRegionStores(dir) };
}

describe('tally region', () => {
  it('status lists each local region with its role', async () => {
    const { stores } = await twoRegions();
    const c = capture();

    expect(await runRegion('status', undefined, stores, c.io)).toBe(0);
    expect(c.out()).toMatch(/us-east-1\s+active/);
    expect(c.out()).toMatch(/us-west-2\s+standby/);
  });

  it("finds the regions under npm start's --data-dir (its regions/) as under that regions/ itself", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tally-data-'));
    await new FileRegionRole('us-east-1', join(dataDir, 'regions', 'us-east-1', 'region-role.json')).write('active');

    expect([...localRegionStores(dataDir).keys()]).toEqual(['us-east-1']);
    expect([...localRegionStores(join(dataDir, 'regions')).keys()]).toEqual(['us-east-1']);
  });

  it('refuses to promote while another region is active, then promotes once it is fenced', async () => {
    const { stores } = await twoRegions();
    const c = capture();

    expect(await runRegion('promote', 'us-west-2', stores, c.io)).toBe(1);
    expect(c.err()).toMatch(/us-east-1 is active.*tally region fence us-east-1/);
    expect(await stores.get('us-west-2')?.read()).toBe('standby');

    expect(await runRegion('fence', 'us-east-1', stores, c.io)).toBe(0);
    expect(await runRegion('promote', 'us-west-2', stores, c.io)).toBe(0);
    expect(await stores.get('us-east-1')?.read()).toBe('fenced');
    expect(await stores.get('us-west-2')?.read()).toBe('active');
  });

  it('promotes when the other region cannot be read (it is down), with a warning to fence it', async () => {
    const down: RegionRoleStore = {
      region: 'us-east-1',
      read: async () => Promise.reject(new Error('connect ETIMEDOUT')),
      readRecord: async () => Promise.reject(new Error('connect ETIMEDOUT')),
      write: async () => Promise.reject(new Error('connect ETIMEDOUT')),
    };
    const { stores } = await twoRegions();
    const c = capture();
    const withDown = new Map([...stores, ['us-east-1', down]]);

    expect(await runRegion('promote', 'us-west-2', withDown, c.io)).toBe(0);
    expect(c.err()).toMatch(/us-east-1 cannot be read.*tally region fence us-east-1/);
    expect(await stores.get('us-west-2')?.read()).toBe('active');
  });

  it('status shows an old primary back from an outage, still active, as yielding to the region promoted later', async () => {
    const { dir, stores } = await twoRegions();
    // The outage: the secondary is promoted while the primary cannot be read (never fenced).
    await new Promise((r) => setTimeout(r, 5));
    await new FileRegionRole('us-west-2', join(dir, 'us-west-2', 'region-role.json')).write('active');
    const c = capture();

    expect(await runRegion('status', undefined, stores, c.io)).toBe(0);
    expect(c.out()).toMatch(/us-east-1\s+active\s+since \S+\s+\(acts as fenced: us-west-2 was made active later/);
    expect(c.out()).not.toMatch(/us-west-2.*acts as fenced/);
    const json = capture();
    await runRegion('status', undefined, stores, json.io, true);
    const readings = JSON.parse(json.out()) as { region: string; yields_to?: string }[];
    expect(readings.find((r) => r.region === 'us-east-1')).toMatchObject({ role: 'active', yields_to: 'us-west-2' });
    expect(readings.find((r) => r.region === 'us-west-2')).not.toHaveProperty('yields_to');
  });

  it('names the known regions when given another', async () => {
    const { stores } = await twoRegions();
    const c = capture();

    expect(await runRegion('fence', 'eu-west-1', stores, c.io)).toBe(1);
    expect(c.err()).toMatch(/unknown region "eu-west-1": the regions are us-east-1, us-west-2/);
  });
});
