/**
 * A run's break patterns, accumulated finding by finding as the engine emits them, in bounded
 * memory, with a result that does not depend on the order the findings came in (the partitioned
 * engine and the SQL engines emit them in other orders than the in-memory one):
 *
 * - sizes and segment counts are exact sums;
 * - segment values are counted exactly per attribute up to DISTINCT_VALUES_CAP distinct values;
 *   an attribute with more (a trade id, an amount) has no value most members share and is
 *   dropped as a whole — which attributes overflow depends on the set of values, not their order;
 * - delta minimum and maximum are exact;
 * - the median and the representatives come from the members with the smallest exception ids
 *   (ids are hashes, so these are a uniform sample, and the same sample whatever the order): the
 *   median is exact up to SAMPLE_SIZE members and a sample's median above (`<field>.median_of`
 *   says how many it was taken over).
 */
import { compareDecimal, formatDecimal, parseDecimal, type Decimal } from '../decimal.ts';
import { exceptionIdFor } from '../keys.ts';
import type { ReconPolicy } from '../policy.ts';
import type { PatternRecord, PatternSegment } from '../tables/patterns.ts';
import type { Row } from '../types.ts';
import { describeSignature, patternId, signatureOf, type PatternInput, type Signature } from './signature.ts';

/** Distinct values tracked per attribute and pattern; above it the attribute is not a segment. */
export const DISTINCT_VALUES_CAP = 1000;
/** Members whose deltas are kept for the median (the smallest exception ids). */
export const SAMPLE_SIZE = 1001;
/** Member ids a pattern record names as representatives. */
export const REPRESENTATIVES = 5;
/** Values of one attribute reported as segments when none is shared by at least half the members. */
const TOP_VALUES = 3;

/** A finding as the accumulator reads it (functions/recon/findings.ts Finding). */
export interface AccumulatedFinding extends PatternInput {
  readonly keyText: string;
}

interface Member {
  readonly id: string;
  /** Per numeric or date field that differs: its delta. */
  readonly deltas: ReadonlyMap<string, Decimal>;
}

interface PatternState {
  readonly id: string;
  readonly signature: Signature;
  readonly text: string;
  size: number;
  /** Per attribute: value -> members; null once more than DISTINCT_VALUES_CAP distinct values were seen. */
  readonly values: Map<string, Map<string, number> | null>;
  readonly min: Map<string, Decimal>;
  readonly max: Map<string, Decimal>;
  /** The members with the smallest ids, at most SAMPLE_SIZE, as a max-heap on the id. */
  readonly sample: Member[];
}

export interface PatternCounts {
  /** Patterns with at least the minimum members. */
  readonly patterns: number;
  /** Exceptions in those patterns. */
  readonly members: number;
  /** Exceptions in no such pattern: triaged one by one. */
  readonly singletons: number;
}

export class PatternAccumulator {
  private readonly policy: ReconPolicy;
  private readonly run: { readonly runId: string; readonly dataset: string; readonly businessDate: string };
  private readonly patterns = new Map<string, PatternState>();
  /** Signature text -> pattern id: most findings share a few signatures; hash each once. */
  private readonly ids = new Map<string, string>();
  /** Attributes and where to read them: key fields, then compared fields, source side else target. */
  private readonly attributes: readonly { field: string; source: string; target: string; key: boolean }[];
  private readonly numericFields: ReadonlySet<string>;

  constructor(policy: ReconPolicy, run: { runId: string; dataset: string; businessDate: string }) {
    this.policy = policy;
    this.run = run;
    this.attributes = [
      ...policy.keys.map((k) => ({ field: k.field, source: k.source, target: k.target, key: true })),
      ...policy.fields.map((f) => ({ field: f.field, source: f.source, target: f.target, key: false })),
    ];
    this.numericFields = new Set(policy.fields.filter((f) => f.type !== 'text').map((f) => f.field));
  }

  /** Counts the finding in its pattern; returns the pattern id. */
  add(finding: AccumulatedFinding): string {
    const signature = signatureOf(finding, this.policy);
    const signatureText = JSON.stringify(signature);
    let id = this.ids.get(signatureText);
    if (id === undefined) {
      id = patternId(this.run.dataset, this.run.businessDate, signature);
      this.ids.set(signatureText, id);
    }
    let state = this.patterns.get(id);
    if (state === undefined) {
      state = {
        id,
        signature,
        text: describeSignature(signature),
        size: 0,
        values: new Map(),
        min: new Map(),
        max: new Map(),
        sample: [],
      };
      this.patterns.set(id, state);
    }
    state.size++;
    this.countValues(state, finding);
    const deltas = this.deltasOf(finding);
    for (const [field, delta] of deltas) {
      const min = state.min.get(field);
      if (min === undefined || compareDecimal(delta, min) < 0) state.min.set(field, delta);
      const max = state.max.get(field);
      if (max === undefined || compareDecimal(delta, max) > 0) state.max.set(field, delta);
    }
    sampleMember(state, {
      // The stored exception's id, under the dataset's identity (across dates: without the date).
      id: exceptionIdFor(
        this.policy.workflow?.identity ?? 'per_date',
        this.run.dataset,
        this.run.businessDate,
        finding.type,
        finding.keyText,
      ),
      deltas,
    });
    return id;
  }

  /** How many patterns reach `minMembers`, their members, and the rest. */
  counts(minMembers: number): PatternCounts {
    let patterns = 0;
    let members = 0;
    let singletons = 0;
    for (const state of this.patterns.values()) {
      if (state.size >= minMembers) {
        patterns++;
        members += state.size;
      } else singletons += state.size;
    }
    return { patterns, members, singletons };
  }

  /** The records of the patterns with at least `minMembers` members, by pattern id. */
  records(minMembers: number): PatternRecord[] {
    return [...this.patterns.values()]
      .filter((state) => state.size >= minMembers)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((state) => this.recordOf(state));
  }

  private countValues(state: PatternState, finding: AccumulatedFinding): void {
    for (const attribute of this.attributes) {
      const value = valueOf(finding, attribute);
      if (value === undefined) continue;
      let counts = state.values.get(attribute.field);
      if (counts === null) continue;
      if (counts === undefined) {
        counts = new Map();
        state.values.set(attribute.field, counts);
      }
      const before = counts.get(value);
      if (before !== undefined) counts.set(value, before + 1);
      else if (counts.size >= DISTINCT_VALUES_CAP) state.values.set(attribute.field, null);
      else counts.set(value, 1);
    }
  }

  private deltasOf(finding: AccumulatedFinding): Map<string, Decimal> {
    const deltas = new Map<string, Decimal>();
    for (const diff of finding.diffs) {
      if (diff.delta === undefined || !this.numericFields.has(diff.field)) continue;
      const parsed = parseDecimal(diff.delta);
      if (parsed.ok) deltas.set(diff.field, parsed.value);
    }
    return deltas;
  }

  private recordOf(state: PatternState): PatternRecord {
    const sample = [...state.sample].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return {
      run_id: this.run.runId,
      pattern_id: state.id,
      dataset: this.run.dataset,
      business_date: this.run.businessDate,
      exception_type: state.signature.type,
      signature: JSON.parse(JSON.stringify(state.signature)) as Record<string, unknown>,
      description: state.text,
      size: state.size,
      segments: segmentsOf(state),
      stats: statsOf(state, sample),
      representatives: sample.slice(0, REPRESENTATIVES).map((m) => m.id),
    };
  }
}

function valueOf(
  finding: AccumulatedFinding,
  attribute: { field: string; source: string; target: string; key: boolean },
): string | undefined {
  // An invalid record's key is its side and line; its key field is in its row.
  if (attribute.key && finding.type !== 'INVALID_RECORD') return finding.key[attribute.field];
  return rowValue(finding.source, attribute.source) ?? rowValue(finding.target, attribute.target);
}

function rowValue(row: Row | null, column: string): string | undefined {
  const value = row?.[column];
  return value === undefined ? undefined : value.trim();
}

/**
 * Keeps the SAMPLE_SIZE members with the smallest ids: `sample` is a binary max-heap on the id, so
 * the largest kept id is at the root and a smaller newcomer replaces it in O(log n).
 */
function sampleMember(state: PatternState, member: Member): void {
  const heap = state.sample;
  if (heap.length < SAMPLE_SIZE) {
    heap.push(member);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((heap[parent] as Member).id >= member.id) break;
      heap[i] = heap[parent] as Member;
      i = parent;
    }
    heap[i] = member;
    return;
  }
  if (member.id >= (heap[0] as Member).id) return;
  let i = 0;
  for (;;) {
    const left = 2 * i + 1;
    if (left >= heap.length) break;
    const right = left + 1;
    const larger = right < heap.length && (heap[right] as Member).id > (heap[left] as Member).id ? right : left;
    if ((heap[larger] as Member).id <= member.id) break;
    heap[i] = heap[larger] as Member;
    i = larger;
  }
  heap[i] = member;
}

/**
 * Per attribute, the values at least half the members share, or else its top three; a value only
 * one member has is shared by none. Largest share first, then field and value.
 */
function segmentsOf(state: PatternState): PatternSegment[] {
  const segments: PatternSegment[] = [];
  for (const [field, counts] of state.values) {
    if (counts === null) continue;
    const ranked = [...counts]
      .filter(([, count]) => count > 1)
      .sort(([va, a], [vb, b]) => b - a || (va < vb ? -1 : va > vb ? 1 : 0));
    const majority = ranked.filter(([, count]) => 2 * count >= state.size);
    for (const [value, count] of majority.length > 0 ? majority : ranked.slice(0, TOP_VALUES))
      segments.push({ field, value, count, share: Math.round((count / state.size) * 10_000) / 10_000 });
  }
  return segments.sort(
    (a, b) =>
      b.count - a.count ||
      (a.field < b.field ? -1 : a.field > b.field ? 1 : 0) ||
      (a.value < b.value ? -1 : a.value > b.value ? 1 : 0),
  );
}

function statsOf(state: PatternState, sample: readonly Member[]): Record<string, string | number> {
  const stats: Record<string, string | number> = {};
  for (const field of [...state.min.keys()].sort()) {
    stats[`${field}.delta_min`] = formatDecimal(state.min.get(field) as Decimal);
    stats[`${field}.delta_max`] = formatDecimal(state.max.get(field) as Decimal);
    const deltas = sample
      .flatMap((m) => {
        const d = m.deltas.get(field);
        return d === undefined ? [] : [d];
      })
      .sort(compareDecimal);
    // The lower median: a value some member has, and no averaging of money.
    const median = deltas[Math.floor((deltas.length - 1) / 2)];
    if (median !== undefined) stats[`${field}.delta_median`] = formatDecimal(median);
    if (deltas.length < state.size) stats[`${field}.median_of`] = deltas.length;
    const shape = state.signature.shapes[field];
    if (shape !== undefined && 'ratio' in shape) stats[`${field}.ratio`] = shape.ratio;
  }
  return stats;
}
