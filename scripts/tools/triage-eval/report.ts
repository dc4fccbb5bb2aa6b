/**
 * The evaluation's reports: a table per chain (the whole chain, then per answering provider and per
 * route), two chains side by side with the items they disagree on, and the same as JSON and
 * Markdown files.
 */
import { formatUsd } from '../../../functions/triage/cost.ts';
import { groupBy, summarise, type GroupMetrics, type ItemOutcome } from './metrics.ts';

export interface ChainReport {
  /** The chain as given (`bedrock:…,rules`). */
  readonly chain: string;
  readonly overall: GroupMetrics;
  readonly by_provider: Record<string, GroupMetrics>;
  readonly by_route: Record<string, GroupMetrics>;
  readonly by_dataset: Record<string, GroupMetrics>;
  readonly items: ItemOutcome[];
}

/** An item two chains handled differently. */
export interface ItemDifference {
  readonly id: string;
  readonly expected_severity: string;
  readonly a: ItemSide;
  readonly b: ItemSide;
  readonly differs: string[];
}
interface ItemSide {
  readonly provider: string;
  readonly severity: string;
  readonly section_recall: number;
  readonly fact_coverage: number;
  readonly rejected_citations: number;
}

export interface EvalReport {
  readonly generated_at: string;
  readonly golden: { readonly path: string; readonly items: number; readonly by_dataset: Record<string, number> };
  readonly embedder: string;
  readonly chains: ChainReport[];
  /** Present with --compare: the items the first two chains handled differently. */
  readonly differences?: ItemDifference[];
}

export function chainReport(chain: string, items: ItemOutcome[]): ChainReport {
  const group = (by: 'provider' | 'route' | 'dataset') =>
    Object.fromEntries([...groupBy(items, by)].map(([name, list]) => [name, summarise(list)]));
  return {
    chain,
    overall: summarise(items),
    by_provider: group('provider'),
    by_route: group('route'),
    by_dataset: group('dataset'),
    items,
  };
}

function sideOf(item: ItemOutcome): ItemSide {
  return {
    provider: item.provider,
    severity: item.severity,
    section_recall: item.section_recall,
    fact_coverage: item.facts_total === 0 ? 1 : item.facts_covered / item.facts_total,
    rejected_citations: item.rejected_citations.length,
  };
}

export function compareChains(a: ChainReport, b: ChainReport): ItemDifference[] {
  const other = new Map(b.items.map((i) => [i.id, i]));
  const differences: ItemDifference[] = [];
  for (const left of a.items) {
    const right = other.get(left.id);
    if (!right) continue;
    const [x, y] = [sideOf(left), sideOf(right)];
    const differs = (Object.keys(x) as (keyof ItemSide)[]).filter((k) => x[k] !== y[k]);
    if (differs.length > 0)
      differences.push({ id: left.id, expected_severity: left.expected_severity, a: x, b: y, differs });
  }
  return differences;
}

const share = (n: number | null) => (n === null ? 'n/a' : n.toFixed(3));
const ms = (n: number | null) => (n === null ? 'n/a' : n < 10 ? n.toFixed(2) : n.toFixed(0));

const METRIC_COLUMNS = [
  'items',
  'severity exact',
  'severity ±1',
  'citations valid',
  'rejected',
  'section recall',
  'retrieval ceiling',
  'fact coverage',
  'p50 ms',
  'p95 ms',
  'tokens in/out',
  'cost',
  'fallbacks',
] as const;

function metricCells(m: GroupMetrics): string[] {
  return [
    String(m.items),
    share(m.severity_exact),
    share(m.severity_within_one),
    share(m.citation_validity),
    `${m.citations_rejected}/${m.citations}`,
    share(m.section_recall),
    share(m.retrieval_ceiling),
    share(m.fact_coverage),
    ms(m.latency_p50_ms),
    ms(m.latency_p95_ms),
    `${m.input_tokens}/${m.output_tokens}`,
    `${formatUsd(m.cost_micro_usd)}${m.unpriced_answers > 0 ? ` (+${m.unpriced_answers} unpriced)` : ''}`,
    String(m.fallbacks),
  ];
}

/** Rows of a chain's table: the chain, then each answering provider, each route, each dataset. */
export function metricRows(report: ChainReport): string[][] {
  return [
    ['chain', ...metricCells(report.overall)],
    ...Object.entries(report.by_provider).map(([name, m]) => [`provider ${name}`, ...metricCells(m)]),
    ...Object.entries(report.by_route).map(([name, m]) => [`route ${name}`, ...metricCells(m)]),
    ...Object.entries(report.by_dataset).map(([name, m]) => [`dataset ${name}`, ...metricCells(m)]),
  ];
}

function textTable(header: readonly string[], rows: readonly string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function markdownTable(header: readonly string[], rows: readonly string[][], numeric = true): string {
  const cell = (c: string) => c.replaceAll('|', '\\|');
  return [
    `| ${header.map(cell).join(' | ')} |`,
    `|${header.map((_, i) => (i === 0 || !numeric ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

/** Says so when providers failed: a chain whose model never answered must not read as the model's score. */
export function fallbackNote(report: ChainReport): string | undefined {
  const fell = report.items.filter((i) => i.fallbacks.length > 0);
  if (fell.length === 0) return undefined;
  return `${fell.length} of ${report.items.length} items fell back past a failing provider (the rows above name who answered); first: ${fell[0]?.fallbacks[0]}`;
}

export function chainTable(report: ChainReport): string {
  const note = fallbackNote(report);
  return `${textTable(['', ...METRIC_COLUMNS], metricRows(report))}${note ? `\n${note}` : ''}`;
}

/** Each metric of the two chains' overall rows, one line per metric. */
function sideBySideRows(a: ChainReport, b: ChainReport): string[][] {
  const [x, y] = [metricCells(a.overall), metricCells(b.overall)];
  return METRIC_COLUMNS.map((name, i) => [name, x[i] ?? '', y[i] ?? '']);
}

function differenceRows(differences: readonly ItemDifference[]): string[][] {
  const side = (s: ItemSide) =>
    `${s.severity} · ${share(s.section_recall)} · ${share(s.fact_coverage)}${s.rejected_citations ? ` · ${s.rejected_citations} rejected` : ''} · ${s.provider}`;
  return differences.map((d) => [d.id, d.expected_severity, side(d.a), side(d.b), d.differs.join(', ')]);
}

const DIFFERENCE_HEADER = ['item', 'expected', 'A: severity · sections · facts · provider', 'B', 'differs in'];

export function comparisonText(a: ChainReport, b: ChainReport, differences: readonly ItemDifference[]): string {
  return [
    textTable(['', `A: ${a.chain}`, `B: ${b.chain}`], sideBySideRows(a, b)),
    '',
    differences.length === 0
      ? 'The two chains answered every item alike.'
      : `${differences.length} items differ:\n${textTable(DIFFERENCE_HEADER, differenceRows(differences))}`,
  ].join('\n');
}

function itemRows(report: ChainReport): string[][] {
  return report.items.map((i) => [
    i.id,
    i.expected_severity,
    i.severity_exact ? i.severity : `**${i.severity}**`,
    share(i.section_recall),
    `${i.facts_covered}/${i.facts_total}${i.facts_missed.length ? ` (missing: ${i.facts_missed.join(', ')})` : ''}`,
    i.rejected_citations.length ? i.rejected_citations.join(', ') : '',
    i.provider,
  ]);
}

export function toMarkdown(report: EvalReport): string {
  const parts = [
    '# Triage evaluation',
    '',
    `${report.generated_at} · golden set \`${report.golden.path}\`: ${report.golden.items} exceptions (${Object.entries(
      report.golden.by_dataset,
    )
      .map(([d, n]) => `${d} ${n}`)
      .join(', ')}) · embedder \`${report.embedder}\``,
    '',
    'Severity agreement is against the label (exact, and within one level); citations valid is the share of',
    'citations naming a retrieved passage (rejected/all); section recall is the share of the expected',
    'sections cited, retrieval ceiling the share retrieval showed the provider at all; fact coverage is',
    'the share of the required facts the summary states. Latency is the provider-reported time where',
    'there is one, else the wall time of the chain call.',
  ];
  for (const chain of report.chains) {
    parts.push(
      '',
      `## ${chain.chain}`,
      '',
      markdownTable(['', ...METRIC_COLUMNS], metricRows(chain)),
      ...(fallbackNote(chain) ? ['', fallbackNote(chain) as string] : []),
      '',
      '<details><summary>Per item</summary>',
      '',
      markdownTable(
        ['item', 'expected', 'severity', 'sections', 'facts', 'rejected citations', 'provider'],
        itemRows(chain),
        false,
      ),
      '',
      '</details>',
    );
  }
  const [a, b] = report.chains;
  if (a && b && report.differences) {
    parts.push(
      '',
      `## ${a.chain} (A) against ${b.chain} (B)`,
      '',
      markdownTable(['', `A: ${a.chain}`, `B: ${b.chain}`], sideBySideRows(a, b)),
      '',
      report.differences.length === 0
        ? 'The two chains answered every item alike.'
        : markdownTable(DIFFERENCE_HEADER, differenceRows(report.differences), false),
    );
  }
  return `${parts.join('\n')}\n`;
}
