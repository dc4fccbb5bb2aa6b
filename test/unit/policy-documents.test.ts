import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  listPolicyDocuments,
  readDatasetPolicy,
  readGovernanceDocument,
  type PolicyObjects,
} from '../../functions/query-api/policy-documents.ts';
import { NotFoundError } from '../../functions/query-api/errors.ts';

function bucket(objects: Record<string, string>): PolicyObjects {
  return {
    list: async (prefix) =>
      Object.entries(objects)
        .filter(([key]) => key.startsWith(prefix))
        .map(([key, text]) => ({
          key,
          etag: `"${key.length}-${text.length}"`,
          size: text.length,
          lastModified: '2026-01-01T00:00:00.000Z',
        })),
    read: async (key) =>
      objects[key] === undefined
        ? undefined
        : { text: objects[key] as string, etag: '"e1"', lastModified: '2026-01-01T00:00:00.000Z' },
  };
}

function bundled(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tally-policies-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe('policy documents (GET /policies)', () => {
  it('lists governance documents from the bucket and each dataset policy in force, else the bundled one', async () => {
    const objects = bucket({
      'policies/recon-policy.md': '# Recon',
      // An upload not (yet) accepted is not what runs apply: the in-force copy is listed instead.
      'policies/datasets/trades.md': '# Trades, uploaded',
      'policies-in-force/trades.md': '# Trades, in force',
      'incoming/trades/2025-12-10/source.csv': 'a,b',
    });
    const bundledDir = bundled({ 'trades.md': '# Trades, shipped', 'payments.md': '# Payments, shipped' });

    const items = await listPolicyDocuments({ objects, bundledDir });

    expect(items.map((p) => [p.name, p.document, p.kind, p.source])).toEqual([
      ['datasets/payments', 'datasets/payments.md', 'dataset', 'bundled'],
      ['datasets/trades', 'datasets/trades.md', 'dataset', 'bucket'],
      ['recon-policy', 'recon-policy.md', 'governance', 'bucket'],
    ]);
    expect(items.every((p) => p.etag.length > 0 && !p.etag.includes('"'))).toBe(true);
  });

  it('reads a dataset policy in force, or the bundled one, and refuses unknown names with 404', async () => {
    const objects = bucket({ 'policies-in-force/trades.md': '# Trades, in force', 'policies/runbook.md': '# Runbook' });
    const bundledDir = bundled({ 'payments.md': '# Payments, shipped' });

    expect((await readDatasetPolicy('trades', { objects, bundledDir })).text).toBe('# Trades, in force');
    expect(await readDatasetPolicy('payments', { objects, bundledDir })).toMatchObject({
      text: '# Payments, shipped',
      source: 'bundled',
      last_modified: null,
    });
    expect((await readGovernanceDocument('runbook', { objects, bundledDir })).text).toBe('# Runbook');
    await expect(readDatasetPolicy('nope', { objects, bundledDir })).rejects.toBeInstanceOf(NotFoundError);
    await expect(readGovernanceDocument('../secrets', { objects, bundledDir })).rejects.toBeInstanceOf(NotFoundError);
  });
});
