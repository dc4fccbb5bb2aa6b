import { describe, expect, it } from 'vitest';
import { renderReport, type ReportInput } from '../../functions/recon/report.ts';

const input: ReportInput = {
  title: 'Run <1>',
  source: 's.csv',
  target: 't.csv',
  policyVersion: 'v1',
  policyHash: 'a'.repeat(64),
  summary: {
    rows: { source: 2, target: 2 },
    matched: 1,
    exceptions: { FIELD_MISMATCH: 1 },
    rejected: { source: 0, target: 0 },
    duration_ms: 1,
    outcome: 'WARN',
    thresholds_crossed: [{ level: 'warn', condition: 'break_rate', limit: '0.1', actual: '0.5' }],
    keys: 2,
    match_rate: '0.500000',
    break_rate: '0.500000',
    fields: { note: { unequal: 1, within_tolerance: 0 } },
    control_totals: [],
  },
  exceptions: [
    {
      exception_type: 'FIELD_MISMATCH',
      key: { id: '1' },
      source: { id: '1', note: '<script>alert(1)</script>' },
      target: { id: '1', note: 'a|b' },
      diffs: [{ field: 'note', source: '<script>alert(1)</script>', target: 'a|b' }],
      lines: { source: [2], target: [2] },
    },
  ],
  columns: [
    { field: 'id', source: 'id', target: 'id' },
    { field: 'note', source: 'note', target: 'note' },
  ],
};

describe('renderReport', () => {
  it('escapes every value in HTML and marks the differing row', () => {
    const page = renderReport(input, 'html');
    expect(page).not.toContain('<script>');
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page).toContain('<title>Run &lt;1&gt;</title>');
    expect(page).toContain('<span class="WARN">WARN</span>');
    expect(page).toContain('<tr class="diff"><td>note</td>');
  });

  it('escapes table pipes in Markdown and bolds the differing row', () => {
    const md = renderReport(input, 'md');
    expect(md).toContain('| **note** | **&lt;script>alert(1)&lt;/script>** | **a\\|b** |');
    expect(md).toContain('| warn | break_rate | 0.1 | 0.5 |');
    expect(md).toContain('## FIELD_MISMATCH: 1 of 1');
  });

  it("says a stored run's triage: held and why, or its model calls (patterns + singletons)", () => {
    const held = renderReport({ ...input, triage: { state: 'HELD', reason: 'break rate 0.5 is above 0.4' } }, 'md');
    const dispatched = renderReport(
      { ...input, triage: { state: 'DISPATCHED', plan: { patterns: 2, singletons: 50, members: 5000 } } },
      'md',
    );

    expect(held).toContain('## Triage');
    expect(held).toContain('Triage: HELD — break rate 0.5 is above 0.4.');
    expect(held).toContain('none is triaged until it is released');
    expect(dispatched).toContain(
      "Model calls: 52 (2 patterns + 50 singletons); 5000 exceptions take their pattern's triage.",
    );
    // The offline CLI's report has no stored run: no triage section.
    expect(renderReport(input, 'md')).not.toContain('## Triage');
  });

  it("states a stored run's triage cost, and nothing of it when there is none (the offline CLI)", () => {
    const cost = { micro_usd: 1_234_567, input_tokens: 40_000, output_tokens: 9_000, calls: 12 };

    expect(renderReport({ ...input, triageCost: cost }, 'md')).toContain(
      'Triage cost so far: $1.234567 for 12 model calls (40000 input, 9000 output tokens).',
    );
    expect(renderReport(input, 'md')).not.toContain('Triage cost');
  });

  it("shows a long exception's first lines and columns and the start of long values, saying what is left", () => {
    // Prepare: a key on 120,000 rows whose rows hold 300 columns besides the policy's, of 2,000 characters.
    const wide = {
      id: '1',
      note: 'n'.repeat(2000),
      ...Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`c${i}`, 'v'])),
    };
    const many: ReportInput = {
      ...input,
      exceptions: [
        {
          exception_type: 'DUPLICATE_IN_SOURCE',
          key: { id: '1' },
          source: wide,
          target: wide,
          diffs: [],
          lines: { source: Array.from({ length: 120_000 }, (_, i) => i + 2), target: [2] },
        },
      ],
      summary: { ...input.summary, exceptions: { DUPLICATE_IN_SOURCE: 1 } },
    };
    // Act
    const md = renderReport(many, 'md');
    // Assess
    expect(md).toContain(
      `Lines: source ${Array.from({ length: 20 }, (_, i) => i + 2).join(', ')}, … (120000 in all); target 2.`,
    );
    expect(md).toContain(`| note | ${'n'.repeat(512)}… | ${'n'.repeat(512)}… |`);
    expect(md).toContain('| c39 | v | v |');
    expect(md).not.toContain('| c40 |');
    expect(md).toContain('260 more columns not shown.');
    expect(md.length).toBeLessThan(10_000);
  });
});
