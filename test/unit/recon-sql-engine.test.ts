/**
 * The SQL engine's own promises, beyond equivalence: what it says instead of line numbers, how it
 * keys an invalid row, and the few summary rules the fixtures do not reach.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { parseReconPolicy, type ReconPolicy } from '../../functions/shared/policy.ts';
import { reconcile, type ReconResult } from '../../functions/recon/engine.ts';
import { LINES_NOTE } from '../../functions/recon/sql/compile.ts';
import { hasSpaceBesideQuote, reconcileSql } from '../../functions/recon/sql/duckdb.ts';

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

describe("the SQL engine's note of a side read by the in-memory engine's reader", () => {
  it.each([
    ['source', 'blank lines before the header', lines('', 'id,v', 'A,1'), lines('id,v', 'A,1')],
    ['source', 'spaces between a quote and the delimiter', lines('id,v', 'A, "1"'), lines('id,v', 'A,1')],
    [
      'target',
      'a line ends in a carriage return alone',
      lines('id,v', 'A,1'),
      '{"id":"A","v":"1"}\r{"id":"B","v":"2"}\n',
    ],
  ])('names the %s and why: %s', async (side, why, source, target) => {
    const policy = policyOf({
      key: [{ field: 'id' }],
      fields: [{ field: 'v' }],
      target: { format: side === 'target' ? 'jsonl' : 'csv' },
    });
    const notes: unknown[] = [];
    await reconcileSql(input('s.csv', source), input('t', target), policy, { note: (m, d) => notes.push([m, d]) });
    expect(notes).toEqual([
      [
        `${side} read by the in-memory engine's reader, not DuckDB's (slower)`,
        { side, file: side === 'source' ? 's.csv' : 't', why },
      ],
    ]);
  });

  it("gives DuckDB's own error when its reader fails a file", async () => {
    const policy = policyOf({ key: [{ field: 'id' }], fields: [{ field: 'v' }] });
    const notes: { why: string }[] = [];
    await reconcileSql(input('s', 'id,v\r\nA,1\nB,2\r\n'), input('t', lines('id,v', 'A,1')), policy, {
      note: (_m, d) => notes.push(d as { why: string }),
    });
    expect(notes.map((n) => n.why)).toEqual([expect.stringMatching(/^DuckDB's reader failed: \S/)]);
  });

  it('says nothing of a side DuckDB reads', async () => {
    const policy = policyOf({ key: [{ field: 'id' }], fields: [{ field: 'v' }] });
    const notes: unknown[] = [];
    await reconcileSql(input('s', lines('id,v', 'A,"1"')), input('t', lines('id,v', 'A,1')), policy, {
      note: (m) => notes.push(m),
    });
    expect(notes).toEqual([]);
  });
});

describe('hasSpaceBesideQuote (a CSV file DuckDB would read otherwise than the engine)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tally-space-quote-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const file = (bytes: string | Buffer) => {
    const path = join(dir, `f${n++}.csv`);
    writeFileSync(path, bytes);
    return path;
  };
  // Quoted fields with spaces inside their quotes only, over several of the reader's chunks.
  const clean = 'id,v\n' + '"P1","ACME Corp ","12.50"," a note "\n'.repeat(6000);

  it('finds none in quoted fields whose spaces are inside the quotes', async () => {
    expect(await hasSpaceBesideQuote(file(clean), ',', 'utf-8')).toBe(false);
    expect(await hasSpaceBesideQuote(file(gzipSync(clean)), ',', 'utf-8')).toBe(false);
  });

  it.each([
    ['before an opening quote', 'A, "y"\n'],
    ['after a closing quote', '"y"  ,A\n'],
    ['before a line break', 'A,"y" \r\n'],
  ])('finds a space %s, wherever the chunks break', async (_case, row) => {
    // The reader's chunks are 64 KiB: move the row across the first break.
    for (let shift = 0; shift < row.length + 2; shift++) {
      const pad = 65536 - 4 - shift;
      const text = `${clean.slice(0, pad)}\n${row}${clean.slice(pad)}`;
      expect(await hasSpaceBesideQuote(file(text), ',', 'utf-8'), `shift ${shift}`).toBe(true);
    }
  });

  it('finds a space at the start or the end of the file', async () => {
    expect(await hasSpaceBesideQuote(file(` "y",A\n${clean}`), ',', 'utf-8')).toBe(true);
    expect(await hasSpaceBesideQuote(file(`${clean}A,"y"  `), ',', 'utf-8')).toBe(true);
    expect(await hasSpaceBesideQuote(file(`${clean.slice(0, 65535)}"  `), ',', 'utf-8')).toBe(true);
  });

  it('knows the delimiter, in the file encoding', async () => {
    expect(await hasSpaceBesideQuote(file('id;v\nA; "y"\n'), ';', 'utf-8')).toBe(true);
    expect(await hasSpaceBesideQuote(file('id;v\nA, "y"\n'), ';', 'utf-8')).toBe(false);
    expect(await hasSpaceBesideQuote(file('id§v\nA§ "y"\n'), '§', 'utf-8')).toBe(true);
    expect(await hasSpaceBesideQuote(file(Buffer.from('id§v\nA§ "y"\n', 'latin1')), '§', 'latin-1')).toBe(true);
    expect(await hasSpaceBesideQuote(file(gzipSync('id,v\nA, "y"\n')), ',', 'utf-8')).toBe(true);
  });
});
