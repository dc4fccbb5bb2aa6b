/**
 * The run report people read: summary, outcome and the thresholds crossed, field statistics,
 * control totals, and a sample of each exception type with its rows side by side. One model,
 * two renderings: Markdown (for a ticket or a pull request) and self-contained HTML (inline
 * styles, no scripts, nothing fetched). Pure: the CLI writes it to a file, the API can serve it
 * from a stored run and its exceptions.
 */
import { EXCEPTION_TYPES, type Diff, type ExceptionType, type Row, type RunSummary } from '../shared/types.ts';
import { formatUsd, type UsageCounts } from '../shared/tables/usage.ts';
import { triagesPlanned } from '../shared/tables/runs.ts';
import { cutText, VIEW_LINES, VIEW_ROW_FIELDS, VIEW_VALUE_CHARS } from '../shared/exception-view.ts';

/** Exceptions of each type a report shows by default. */
export const SAMPLE_PER_TYPE = 5;

/** An exception as the report shows it (the API's record has these fields, and more). */
export interface ReportException {
  readonly exception_type: ExceptionType;
  readonly key: Row;
  readonly source: Row | null;
  readonly target: Row | null;
  readonly diffs: readonly Diff[];
  readonly lines: { readonly source: readonly number[]; readonly target: readonly number[] };
  readonly reason?: string;
  readonly policy_severity?: string;
}

export interface ReportInput {
  readonly title: string;
  readonly source: string;
  readonly target: string;
  readonly policyVersion: string;
  readonly policyHash: string;
  readonly summary: RunSummary;
  readonly exceptions: readonly ReportException[];
  /** Exceptions shown per type (default SAMPLE_PER_TYPE). */
  readonly samplePerType?: number;
  /**
   * The policy's key and compared fields with each side's column: rows are lined up by field
   * (columns named differently on each side side by side), then the other columns.
   */
  readonly columns?: readonly { readonly field: string; readonly source: string; readonly target: string }[];
  /** The run's triage (stored runs only): its state and why, and the dispatch's plan. */
  readonly triage?: {
    readonly state: string;
    readonly reason?: string;
    readonly by?: string;
    readonly plan?: { readonly patterns: number; readonly singletons: number; readonly members: number };
  };
  /** What the run's triage model calls have cost so far (a stored run; the offline CLI has none). */
  readonly triageCost?: UsageCounts;
}

export type ReportFormat = 'md' | 'html';

interface Section {
  readonly heading: string;
  readonly paragraphs?: readonly string[];
  readonly table?: { readonly header: readonly string[]; readonly rows: readonly (readonly string[])[] };
  /** Cells (row, column) to emphasise in the table: the differing values. */
  readonly marked?: ReadonlySet<string>;
}

/** The run's triage: held (and why), or how many model calls its dispatch planned. */
function triageSection(t: NonNullable<ReportInput['triage']>): Section {
  const paragraphs = [`Triage: ${t.state}${t.reason ? ` — ${t.reason}` : ''}${t.by ? ` (by ${t.by})` : ''}.`];
  if (t.state === 'HELD')
    paragraphs.push(
      'The runaway guard held this run: its exceptions are stored, none is triaged until it is released.',
    );
  if (t.plan)
    paragraphs.push(
      `Model calls: ${triagesPlanned(t.plan)} (${t.plan.patterns} patterns + ${t.plan.singletons} singletons); ${t.plan.members} exceptions take their pattern's triage.`,
    );
  return { heading: 'Triage', paragraphs };
}

export function renderReport(input: ReportInput, format: ReportFormat): string {
  const sections = model(input);
  return format === 'md' ? markdown(input.title, sections) : html(input.title, sections);
}

function model(input: ReportInput): Section[] {
  const s = input.summary;
  const sections: Section[] = [];
  const total = Object.values(s.exceptions).reduce((a, b) => a + (b ?? 0), 0);
  sections.push({
    heading: `Outcome: ${s.outcome ?? 'not evaluated'}`,
    paragraphs: [
      `Source ${input.source} (${s.rows.source} rows), target ${input.target} (${s.rows.target} rows); policy ${input.policyVersion} (sha256 ${input.policyHash.slice(0, 12)}).`,
      `${s.matched} keys matched of ${s.keys ?? '?'} (match rate ${s.match_rate ?? '?'}, break rate ${s.break_rate ?? '?'}); ${total} exceptions; rows rejected as invalid: ${s.rejected.source} source, ${s.rejected.target} target.`,
      ...(s.thresholds_crossed && s.thresholds_crossed.length > 0
        ? []
        : [s.outcome === 'PASS' ? 'No threshold crossed.' : '']),
      input.triageCost
        ? `Triage cost so far: ${formatUsd(input.triageCost.micro_usd)} for ${input.triageCost.calls} model calls (${input.triageCost.input_tokens} input, ${input.triageCost.output_tokens} output tokens).`
        : '',
    ].filter((p) => p !== ''),
    ...(s.thresholds_crossed && s.thresholds_crossed.length > 0
      ? {
          table: {
            header: ['level', 'condition', 'limit', 'run'],
            rows: s.thresholds_crossed.map((c) => [c.level, c.condition, c.limit, c.actual]),
          },
        }
      : {}),
  });
  if (input.triage) sections.push(triageSection(input.triage));
  sections.push({
    heading: 'Exceptions by type',
    table: {
      header: ['type', 'count'],
      rows: EXCEPTION_TYPES.filter((t) => (s.exceptions[t] ?? 0) > 0).map((t) => [t, String(s.exceptions[t])]),
    },
  });
  if (s.fields && Object.keys(s.fields).length > 0)
    sections.push({
      heading: 'Compared fields',
      paragraphs: ['Unequal values among matched keys; those within tolerance are not exceptions.'],
      table: {
        header: ['field', 'unequal', 'within tolerance', 'breaks', 'largest difference'],
        rows: Object.entries(s.fields).map(([f, v]) => [
          f,
          String(v.unequal),
          String(v.within_tolerance),
          String(v.unequal - v.within_tolerance),
          v.largest_difference ?? '',
        ]),
      },
    });
  if (s.amount_totals)
    sections.push({
      heading: 'Amount totals',
      table: {
        header: ['source', 'target', 'net difference'],
        rows: [[s.amount_totals.source, s.amount_totals.target, s.amount_totals.net_difference]],
      },
    });
  if (s.control_totals && s.control_totals.length > 0) {
    const first = s.control_totals[0];
    const groupNames = Object.keys(first?.group ?? {});
    const sumNames = Object.keys(first?.source.sums ?? {});
    sections.push({
      heading: 'Control totals',
      table: {
        header: [
          ...groupNames,
          'source rows',
          'target rows',
          'row difference',
          ...sumNames.flatMap((n) => [`source Σ ${n}`, `target Σ ${n}`, `difference Σ ${n}`]),
        ],
        rows: s.control_totals.map((g) => [
          ...groupNames.map((n) => g.group[n] ?? ''),
          String(g.source.rows),
          String(g.target.rows),
          String(g.difference.rows),
          ...sumNames.flatMap((n) => [g.source.sums[n] ?? '', g.target.sums[n] ?? '', g.difference.sums[n] ?? '']),
        ]),
      },
    });
  }
  const per = input.samplePerType ?? SAMPLE_PER_TYPE;
  for (const type of EXCEPTION_TYPES) {
    const ofType = input.exceptions.filter((e) => e.exception_type === type);
    if (ofType.length === 0) continue;
    sections.push({
      heading: `${type}: ${ofType.length === (s.exceptions[type] ?? ofType.length) ? '' : 'a sample of '}${Math.min(per, ofType.length)} of ${s.exceptions[type] ?? ofType.length}`,
    });
    for (const e of ofType.slice(0, per)) sections.push(exceptionSection(e, input.columns ?? []));
  }
  return sections;
}

/**
 * What a report shows of a long exception (exception-view.ts's bounds, as triage reads it): a key
 * on 120,000 rows, or rows of long values or hundreds of columns, would make one section of
 * megabytes, and a report API answer past what a Lambda may return.
 */
const shown = (value: string) => cutText(value, VIEW_VALUE_CHARS);
const listed = (lines: readonly number[]) =>
  lines.length === 0
    ? '-'
    : `${lines.slice(0, VIEW_LINES).join(', ')}${lines.length > VIEW_LINES ? `, … (${lines.length} in all)` : ''}`;

function exceptionSection(e: ReportException, columns: NonNullable<ReportInput['columns']>): Section {
  const key = Object.entries(e.key)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
  const usedSource = new Set(columns.map((c) => c.source));
  const usedTarget = new Set(columns.map((c) => c.target));
  const rows: string[][] = columns.map((c) => [
    c.source === c.target ? c.field : `${c.field} (${c.source} / ${c.target})`,
    shown(e.source?.[c.source] ?? ''),
    shown(e.target?.[c.target] ?? ''),
  ]);
  const rest = [
    ...new Set([
      ...Object.keys(e.source ?? {}).filter((n) => !usedSource.has(n)),
      ...Object.keys(e.target ?? {}).filter((n) => !usedTarget.has(n)),
    ]),
  ];
  for (const n of rest.slice(0, VIEW_ROW_FIELDS))
    rows.push([n, shown(e.source?.[n] ?? ''), shown(e.target?.[n] ?? '')]);
  const differing = new Set(e.diffs.map((d) => d.field));
  const fieldOfRow = (i: number) => (i < columns.length ? (columns[i]?.field as string) : (rows[i]?.[0] as string));
  const marked = new Set<string>();
  const paragraphs = [
    `Lines: source ${listed(e.lines.source)}; target ${listed(e.lines.target)}${e.policy_severity ? `; severity ${e.policy_severity}` : ''}.`,
  ];
  if (rest.length > VIEW_ROW_FIELDS) paragraphs.push(`${rest.length - VIEW_ROW_FIELDS} more columns not shown.`);
  if (e.reason) paragraphs.push(`Reason: ${e.reason}`);
  for (const d of e.diffs)
    paragraphs.push(
      `${d.field}: ${d.source === '' ? '(empty)' : shown(d.source)} → ${d.target === '' ? '(empty)' : shown(d.target)}${d.delta === undefined ? '' : ` (Δ ${d.delta})`}`,
    );
  // The side-by-side rows: a differing field's row is marked (its mapped column names may differ).
  rows.forEach((_, i) => {
    if (differing.has(fieldOfRow(i))) marked.add(`${i}`);
  });
  return {
    heading: `Key ${key}`,
    paragraphs,
    ...(rows.length > 0 ? { table: { header: ['column', 'source', 'target'], rows }, marked } : {}),
  };
}

// --- Markdown ---------------------------------------------------------------------------------

/** Table pipes escaped, line breaks flattened, and `<` as an entity so no value is read as HTML. */
function mdCell(text: string): string {
  return text.replaceAll('\\', '\\\\').replaceAll('|', '\\|').replaceAll('<', '&lt;').replace(/\r?\n/g, ' ');
}

function markdown(title: string, sections: Section[]): string {
  const out = [`# ${mdCell(title)}`, ''];
  for (const s of sections) {
    out.push(`## ${mdCell(s.heading)}`, '');
    for (const p of s.paragraphs ?? []) out.push(mdCell(p), '');
    if (s.table) {
      out.push(`| ${s.table.header.map(mdCell).join(' | ')} |`, `|${s.table.header.map(() => '---').join('|')}|`);
      s.table.rows.forEach((r, i) => {
        const cells = r.map(mdCell);
        out.push(`| ${(s.marked?.has(`${i}`) ? cells.map((c) => (c === '' ? c : `**${c}**`)) : cells).join(' | ')} |`);
      });
      out.push('');
    }
  }
  return out.join('\n');
}

// --- HTML ---------------------------------------------------------------------------------------

function esc(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#1b1b1b}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}tr.diff td{background:#fff1c2;font-weight:600}.PASS{color:#137333}.WARN{color:#b06000}.FAIL{color:#c5221f}`;

function html(title: string, sections: Section[]): string {
  const body: string[] = [`<h1>${esc(title)}</h1>`];
  for (const s of sections) {
    const outcome = /^Outcome: (PASS|WARN|FAIL)$/.exec(s.heading)?.[1];
    body.push(outcome ? `<h2>Outcome: <span class="${outcome}">${outcome}</span></h2>` : `<h2>${esc(s.heading)}</h2>`);
    for (const p of s.paragraphs ?? []) body.push(`<p>${esc(p)}</p>`);
    if (s.table) {
      body.push('<table>', `<tr>${s.table.header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>`);
      s.table.rows.forEach((r, i) =>
        body.push(
          `<tr${s.marked?.has(`${i}`) ? ' class="diff"' : ''}>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`,
        ),
      );
      body.push('</table>');
    }
  }
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${body.join('\n')}
</body>
</html>
`;
}
