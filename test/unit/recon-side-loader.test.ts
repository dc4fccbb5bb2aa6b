import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readCsvInto } from '../../functions/shared/csv.ts';
import { parseReconPolicy, type ReconPolicy } from '../../functions/shared/policy.ts';
import { FindingBuilder } from '../../functions/recon/findings.ts';
import { MAX_FIELD_CHARS, SideLoader } from '../../functions/recon/side-loader.ts';
import { SourceIndex } from '../../functions/recon/source-index.ts';

const policy = parseReconPolicy(readFileSync(new URL('../../policies/recon-policy.md', import.meta.url), 'utf8'));
const HEADER = 'trade_id,account_id,trade_date,amount';

async function* streamOf(text: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(text, 'utf8');
}

async function loadSource(text: string, p: ReconPolicy = policy): Promise<{ loader: SideLoader; index: SourceIndex }> {
  const index = new SourceIndex();
  const loader = new SideLoader('source', 'source.csv', index, p, new FindingBuilder(p));
  await readCsvInto(streamOf(text), loader);
  index.build();
  return { loader, index };
}

/** Every field quoted: the same row as the reader's quoted path sees it. */
function quoted(row: string): string {
  return row
    .split(',')
    .map((f) => `"${f}"`)
    .join(',');
}

describe('SideLoader row rules', () => {
  it.each([
    ['a short ragged row', 'T2,A2,2025-12-02', 'expected 4 fields, found 3'],
    ['a long ragged row', 'T2,A2,2025-12-02,1.00,extra', 'expected 4 fields, found 5'],
    ['an empty key', '   ,A2,2025-12-02,1.00', 'key column trade_id is empty'],
    ['an exponent amount', 'T2,A2,2025-12-02,1E5', 'amount: amount "1E5" is not a decimal number'],
    ['an empty amount', 'T2,A2,2025-12-02,', 'amount: amount is empty'],
    ['an over-long field', `T2,${'x'.repeat(MAX_FIELD_CHARS + 1)},2025-12-02,1.00`, 'a field is longer than'],
  ])('rejects %s for the same reason whether it is quoted or not', async (_name, row, reason) => {
    // Act
    const plain = await loadSource(`${HEADER}\n${row}\n`);
    const inQuotes = await loadSource(`${HEADER}\n${quoted(row)}\n`);
    // Assess
    expect(plain.loader.invalid.map((f) => f.reason)).toEqual([expect.stringContaining(reason)]);
    expect(inQuotes.loader.invalid.map((f) => f.reason)).toEqual(plain.loader.invalid.map((f) => f.reason));
    expect(inQuotes.loader.invalid[0]?.source).toEqual(plain.loader.invalid[0]?.source);
    expect(plain.index.size + inQuotes.index.size).toBe(0);
  });

  it('keys a valid row by its trimmed key, quoted or not', async () => {
    // Act
    const { loader, index } = await loadSource(
      `${HEADER}\n  T1 ,A1,2025-12-01,1.00\n" T2\t","A,2",2025-12-02,"(3.50)"\n`,
    );
    // Assess
    expect(loader.invalid).toEqual([]);
    expect(loader.rows).toBe(2);
    expect([index.keyText(0), index.keyText(1)]).toEqual(['T1', 'T2']);
    expect(index.sourceEntry(1).text).toEqual([' T2\t', 'A,2', '2025-12-02', '(3.50)']);
  });

  it('joins composite keys in the policy order', async () => {
    // Prepare
    const composite = parseReconPolicy(
      `# P\n\n\`\`\`json tally-policy\n${JSON.stringify({
        policy_version: 't',
        key_columns: ['account_id', 'trade_id'],
        compared_fields: ['amount'],
        amount_field: 'amount',
        severity_rules: [],
        default_severity: 'LOW',
      })}\n\`\`\`\n`,
    );
    // Act
    const { index } = await loadSource(`${HEADER}\nT1, A1 ,2025-12-01,1.00\n"T2","A2",2025-12-02,2\n`, composite);
    // Assess
    expect([index.keyText(0), index.keyText(1)]).toEqual(['A1\u001fT1', 'A2\u001fT2']);
  });

  it('reports a damaged record with the reader’s reason', async () => {
    const { loader } = await loadSource(`${HEADER}\nT1,A\u00001,2025-12-01,1.00\n`);
    expect(loader.invalid.map((f) => [f.reason, f.lines.source])).toEqual([['record contains a NUL byte', [2]]]);
  });
});
