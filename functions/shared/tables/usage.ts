/**
 * The usage table: what triage's model calls cost, one item per UTC day (`YYYY-MM-DD`), summed
 * by atomic ADDs from every triage worker. Triage reads the day's total against the daily budget;
 * the query API lists days (GET /usage).
 */

/** What model calls cost: the run record's `cost` and a day's usage have this shape. */
export interface UsageCounts {
  /** Micro-dollars (functions/triage/cost.ts): integers, so sums stay exact. */
  readonly micro_usd: number;
  readonly input_tokens: number;
  readonly output_tokens: number;
  /** Model calls that answered (a rules answer costs nothing and is not counted). */
  readonly calls: number;
}

export interface UsageDay extends UsageCounts {
  readonly day: string;
}

export const NO_USAGE: UsageCounts = Object.freeze({ micro_usd: 0, input_tokens: 0, output_tokens: 0, calls: 0 });

/** Micro-dollars as dollars for display: `$0.000123`. */
export function formatUsd(microUsd: number): string {
  return `$${(microUsd / 1e6).toFixed(6)}`;
}

/** The UTC day of an instant, the usage table's key. */
export function usageDay(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 10);
}

/** The `days` UTC days ending with the one of `epochMs`, newest first. */
export function lastDays(epochMs: number, days: number): string[] {
  const start = Date.UTC(
    new Date(epochMs).getUTCFullYear(),
    new Date(epochMs).getUTCMonth(),
    new Date(epochMs).getUTCDate(),
  );
  return Array.from({ length: days }, (_, i) => usageDay(start - i * 86_400_000));
}

/** Triage's view. */
export interface UsageStore {
  /** Adds a call's counts to the day (atomic: concurrent adds all count). */
  add(day: string, counts: UsageCounts): Promise<void>;
  /** The day's sums so far; zeros for a day with no call. */
  get(day: string): Promise<UsageCounts>;
}

/** The query API's view. */
export interface UsageQueries {
  /** The given days, in the order given; zeros for days with no call. */
  getDays(days: readonly string[]): Promise<UsageDay[]>;
}
