/**
 * The triage evaluation's measures, pure so each can be checked by hand: severity agreement,
 * citation validity, expected-section recall, fact coverage, latency percentiles, tokens and cost,
 * per item and summed over a group of items (a provider, a route, a whole chain).
 */
import { SEVERITIES, type Severity } from '../../../functions/shared/types.ts';
import type { Fact, GoldenCase } from './golden.ts';

/** What one chain did with one golden item, and how it scored. */
export interface ItemOutcome {
  readonly id: string;
  readonly dataset: string;
  readonly exception_type: string;
  /** The routing rule that chose the chain (`default` when there is one chain for everything). */
  readonly route: string;
  /** The provider that answered: `rules`, or `name:model`. */
  readonly provider: string;
  readonly expected_severity: Severity;
  readonly severity: Severity;
  readonly severity_exact: boolean;
  readonly severity_within_one: boolean;
  readonly summary: string;
  /** Passage ids of the citations that named a retrieved passage. */
  readonly citations: string[];
  /** Citations that named no retrieved passage (the chain drops them). */
  readonly rejected_citations: string[];
  readonly section_recall: number;
  readonly sections_missed: string[];
  /** Share of the expected sections that retrieval put in front of the provider at all. */
  readonly retrieval_ceiling: number;
  readonly facts_covered: number;
  readonly facts_total: number;
  readonly facts_missed: string[];
  readonly latency_ms: number;
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly cost_micro_usd: number;
  /** False when a model answered that has no price in the table. */
  readonly priced: boolean;
  /** Providers that failed or were skipped before the one that answered. */
  readonly fallbacks: string[];
}

export interface GroupMetrics {
  readonly items: number;
  readonly severity_exact: number;
  readonly severity_within_one: number;
  /** Valid citations over all citations; null when nothing was cited. */
  readonly citation_validity: number | null;
  readonly citations: number;
  readonly citations_rejected: number;
  readonly section_recall: number;
  readonly retrieval_ceiling: number;
  readonly fact_coverage: number;
  readonly latency_p50_ms: number | null;
  readonly latency_p95_ms: number | null;
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly cost_micro_usd: number;
  readonly unpriced_answers: number;
  /** Items on which at least one provider failed before another answered. */
  readonly fallbacks: number;
}

const RANK = new Map<Severity, number>(SEVERITIES.map((s, i) => [s, i]));

export function severityAgreement(expected: Severity, got: Severity): { exact: boolean; withinOne: boolean } {
  const distance = Math.abs((RANK.get(expected) ?? 0) - (RANK.get(got) ?? 0));
  return { exact: distance === 0, withinOne: distance <= 1 };
}

/** Share of the expected sections among the cited ones (both already canonical passage ids). */
export function sectionRecall(
  expected: readonly string[],
  cited: readonly string[],
): { recall: number; missed: string[] } {
  const have = new Set(cited);
  const wanted = [...new Set(expected)];
  const missed = wanted.filter((s) => !have.has(s));
  return { recall: wanted.length === 0 ? 1 : (wanted.length - missed.length) / wanted.length, missed };
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The text appears as a whole word (T001 is not in T0010), in any case. */
export function mentions(summary: string, text: string): boolean {
  return new RegExp(`(?<![A-Za-z0-9])${escape(text)}(?![A-Za-z0-9])`, 'i').test(summary);
}

/** `0100.50` -> `100.5`, `-3` -> `3`: the digits of a magnitude, nothing else. */
export function canonicalMagnitude(plain: string): string | undefined {
  const m = /^[+-]?(\d*)(?:\.(\d*))?$/.exec(plain);
  if (!m || (m[1] === '' && (m[2] ?? '') === '')) return undefined;
  const whole = (m[1] ?? '').replace(/^0+(?=\d)/, '') || '0';
  const fraction = (m[2] ?? '').replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : whole;
}

/**
 * Every magnitude a summary states. A number may be written `1,250.50` or, as the payment hub
 * does, `1.250,50`: both readings are kept. Digits glued to letters (`T0039`, `ACCT1023`) are ids,
 * not numbers. Signs are ignored: a delta of -15.00 may be stated as "15.00 less".
 */
export function numbersIn(summary: string): Set<string> {
  const found = new Set<string>();
  for (const [token] of summary.matchAll(/(?<![A-Za-z0-9_.,])\d(?:[\d.,]*\d)?/g)) {
    for (const reading of [token.replaceAll(',', ''), token.replaceAll('.', '').replace(',', '.')]) {
      const canonical = canonicalMagnitude(reading);
      if (canonical !== undefined) found.add(canonical);
    }
  }
  return found;
}

/**
 * A side fact is stated when the summary names that side by any of the dataset's words for it. A
 * summary naming both sides passes for either: this cannot tell which side it says is missing.
 */
export function factStated(summary: string, fact: Fact, sides: GoldenCase['sides']): boolean {
  if ('number' in fact) return numbersIn(summary).has(canonicalMagnitude(fact.number) ?? '');
  if ('side' in fact) return sides[fact.side].some((word) => mentions(summary, word));
  return (Array.isArray(fact.text) ? fact.text : [fact.text]).some((t) => mentions(summary, t));
}

export function factCoverage(
  summary: string,
  facts: readonly Fact[],
  sides: GoldenCase['sides'],
): { covered: number; total: number; missed: string[] } {
  const missed = facts.filter((f) => !factStated(summary, f, sides)).map((f) => f.what);
  return { covered: facts.length - missed.length, total: facts.length, missed };
}

/** Nearest-rank percentile: the smallest value with at least p% of the values at or below it. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

function mean(values: readonly number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

/** A group's figures: shares are over items, except citation validity, which is over citations. */
export function summarise(items: readonly ItemOutcome[]): GroupMetrics {
  const valid = items.reduce((n, i) => n + i.citations.length, 0);
  const rejected = items.reduce((n, i) => n + i.rejected_citations.length, 0);
  const latencies = items.map((i) => i.latency_ms);
  return {
    items: items.length,
    severity_exact: mean(items.map((i) => (i.severity_exact ? 1 : 0))),
    severity_within_one: mean(items.map((i) => (i.severity_within_one ? 1 : 0))),
    citation_validity: valid + rejected === 0 ? null : valid / (valid + rejected),
    citations: valid + rejected,
    citations_rejected: rejected,
    section_recall: mean(items.map((i) => i.section_recall)),
    retrieval_ceiling: mean(items.map((i) => i.retrieval_ceiling)),
    fact_coverage: mean(items.map((i) => (i.facts_total === 0 ? 1 : i.facts_covered / i.facts_total))),
    latency_p50_ms: percentile(latencies, 50),
    latency_p95_ms: percentile(latencies, 95),
    input_tokens: items.reduce((n, i) => n + i.input_tokens, 0),
    output_tokens: items.reduce((n, i) => n + i.output_tokens, 0),
    cost_micro_usd: items.reduce((n, i) => n + i.cost_micro_usd, 0),
    unpriced_answers: items.filter((i) => !i.priced).length,
    fallbacks: items.filter((i) => i.fallbacks.length > 0).length,
  };
}

/** The items grouped by a property, groups in first-seen order. */
export function groupBy(
  items: readonly ItemOutcome[],
  by: 'provider' | 'route' | 'dataset',
): Map<string, ItemOutcome[]> {
  const groups = new Map<string, ItemOutcome[]>();
  for (const item of items) {
    const list = groups.get(item[by]) ?? [];
    list.push(item);
    groups.set(item[by], list);
  }
  return groups;
}
