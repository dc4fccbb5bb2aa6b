/** The patterns table: one item per break pattern of a run (session contract, #12; owner: patterns). */
import type { ExceptionType, Triage } from '../types.ts';

export interface PatternRecord {
  run_id: string;
  pattern_id: string;
  dataset: string;
  business_date: string;
  exception_type: ExceptionType;
  signature: Record<string, unknown>;
  description: string;
  size: number;
  segments: { field: string; value: string; count: number; share: number }[];
  stats: Record<string, string | number>; // e.g. delta min/max/median, ratio
  representatives: string[]; // exception ids, up to 5, deterministic
  triage?: Triage; // set by B
}
export interface PatternStore {
  putAll(patterns: readonly PatternRecord[]): Promise<void>;
  list(runId: string): Promise<PatternRecord[]>;
  get(runId: string, patternId: string): Promise<PatternRecord | undefined>;
  saveTriage(runId: string, patternId: string, triage: Triage): Promise<void>; // B calls it
}
