/**
 * The patterns table: a run's break patterns (functions/shared/patterns/), one item per pattern
 * under (run_id, pattern_id). Recon writes those with at least the policy's
 * triage.pattern_min_members members before the run is STORING; triage adds each pattern's
 * triage; the query API lists them. Members are found through the exceptions' by_pattern_sharded
 * index, not stored here.
 */
import type { ExceptionType, Triage } from '../types.ts';

/** One value most members share, for one attribute: "97.8% of members have currency=JPY". */
export interface PatternSegment {
  readonly field: string;
  readonly value: string;
  readonly count: number;
  /** count ÷ size, 4 decimals. */
  readonly share: number;
}

export interface PatternRecord {
  readonly run_id: string;
  readonly pattern_id: string;
  readonly dataset: string;
  readonly business_date: string;
  readonly exception_type: ExceptionType;
  /** functions/shared/patterns/signature.ts Signature, as stored. */
  readonly signature: Record<string, unknown>;
  readonly description: string;
  /** Members in this run. */
  readonly size: number;
  readonly segments: PatternSegment[];
  /** Per numeric or date field that differs: `<field>.delta_min`, `.delta_max`, `.delta_median`, `.ratio`. */
  readonly stats: Record<string, string | number>;
  /** Up to 5 member exception ids: the smallest ids, so the same members whatever the order. */
  readonly representatives: string[];
  /** Set by triage when it has triaged the pattern. */
  readonly triage?: Triage;
}

export interface PatternStore {
  /** Puts every record (replacing one of the same key: a re-claimed run writes the same ones). */
  putAll(patterns: readonly PatternRecord[]): Promise<void>;
  /** Every pattern of a run, by pattern id. */
  list(runId: string): Promise<PatternRecord[]>;
  get(runId: string, patternId: string): Promise<PatternRecord | undefined>;
  saveTriage(runId: string, patternId: string, triage: Triage): Promise<void>;
}

/** What the query API reads of patterns. */
export interface PatternQueries {
  listPatterns(runId: string): Promise<PatternRecord[]>;
  getPattern(runId: string, patternId: string): Promise<PatternRecord | undefined>;
}
