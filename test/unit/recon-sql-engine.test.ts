/**
 * The SQL engine's own promises, beyond equivalence: what it says instead of line numbers, how it
 * keys an invalid row, and the few summary rules the fixtures do not reach.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseReconPolicy, type ReconPolicy } from '../../functions/shared/policy.ts';
import { reconcile, type ReconResult } from '../../functions/recon/engine.ts';
import { LINES_NOTE } from '../../functions/recon/sql/compile.ts';
import { reconcileSql } from '../../functions/recon/sql/duckdb.ts';

function policyOf(settings: Record<string, unknown>): ReconPolicy {
  return parseReconPolicy(
    `# P\n\n\`\`\`json tally-policy\n${JSON.stringify({ policy_version: 't', ...settings })}\n\`\`\`\n`,
  );
}

const input = (name: string, text: string) => ({ name, stream: Readable.from([Buffer.from(text)]) });
const lines = (...l: string[]) => `${l.join('\n')}\n`;

async function both(policy: ReconPolicy, source: string, target: string): Promise<[ReconResult, ReconResult]> {
  return [
    await reconcile(input('s', source), input('t', target), policy),
    await reconcileSql(input('s', source), input('t', target), policy),
  ];
}

describe('the SQL engine', () => {
  it('identifies an invalid row by a digest of its fields, the same on every run, one per identical row', async () => {
    // Prepare: two identical bad rows and a different one.
    const policy = policyOf({ key: [{ field: 'id' }], fields: [{ field: 'v', type: 'decimal' }], amount_field: 'v' });
    const source = lines('id,v', 'A,x', 'A,x', 'B,y', 'C,1');
    // Act
    const first = await reconcileSql(input('s', source), input('t', lines('id,v', 'C,1')), policy);
    const again = await reconcileSql(input('s', source), input('t', lines('id,v', 'C,1')), policy);
    // Assess
    const keys = (r: ReconResult) =>
      r.findings
        .filter((f) => f.type === 'INVALID_RECORD')
        .map((f) => f.keyText)
        .sort();
    expect(keys(first)).toHaveLength(3);
    expect(new Set(keys(first)).size).toBe(3);
    expect(keys(again)).toEqual(keys(first));
    // The same findings in the same order on every run (a re-claimed run cuts the same chunks).
    expect(again.findings.map((f) => f.keyText)).toEqual(first.findings.map((f) => f.keyText));
    expect(keys(first).every((k) => /^source:[0-9a-f]{16}(-2)?$/.test(k))).toBe(true);
    expect(keys(first).filter((k) => k.endsWith('-2'))).toHaveLength(1);
    const invalid = first.findings.find((f) => f.type === 'INVALID_RECORD' && f.source?.v === 'x');
    expect(invalid?.key).toEqual({ side: 'source', record: invalid?.keyText.slice('source:'.length) });
    expect(invalid?.reason).toBe(
      `v: amount "x" is not a decimal number (expected e.g. 1250.50, -300, "1,250.50") (${LINES_NOTE})`,
    );
  });

  it('says on every finding that it has no line numbers', async () => {
    const policy = policyOf({ key: [{ field: 'id' }], fields: [{ field: 'v' }] });
    const [engine, sql] = await both(policy, lines('id,v', 'A,1', 'B,2', 'B,3'), lines('id,v', 'A,2', 'C,1'));
    expect(sql.findings.map((f) => f.type).sort()).toEqual(engine.findings.map((f) => f.type).sort());
    expect(sql.findings.length).toBe(3);
    for (const f of sql.findings) {
      expect(f.lines).toEqual({ source: [], target: [] });
      expect(f.reason).toBe(LINES_NOTE);
    }
  });

  it('gives zero amount totals, as the engine does, when totals are wanted and there is no amount field', async () => {
    const policy = policyOf({
      key: [{ field: 'id' }],
      fields: [{ field: 'v', type: 'decimal' }],
      control_totals: { group_by: [], sum: ['v'] },
    });
    const [engine, sql] = await both(policy, lines('id,v', 'A,1.50', 'B,2'), lines('id,v', 'A,1.5'));
    expect(engine.summary.amount_totals).toEqual({ source: '0', target: '0', net_difference: '0' });
    expect(sql.summary.amount_totals).toEqual(engine.summary.amount_totals);
    expect(sql.summary.control_totals).toEqual(engine.summary.control_totals);
    expect(sql.summary.control_totals[0]?.source.sums).toEqual({ v: '3.50' });
  });

  it('refuses a file the engine refuses, with the same error', async () => {
    const policy = policyOf({ key: [{ field: 'id' }], fields: [{ field: 'v' }] });
    await expect(
      reconcileSql(input('s', lines('id,w', 'A,1')), input('t', lines('id,v')), policy),
    ).rejects.toMatchObject({
      code: 'MISSING_COLUMNS',
      message: expect.stringContaining('missing required column(s) v'),
    });
    await expect(reconcileSql(input('s', ''), input('t', lines('id,v')), policy)).rejects.toMatchObject({
      code: 'FILE_EMPTY',
    });
    await expect(
      reconcileSql(input('s', lines('id,v', 'A,"1', 'B,2')), input('t', lines('id,v')), policy),
    ).rejects.toMatchObject({ code: 'CSV_UNCLOSED_QUOTE' });
  });
});
