/**
 * Matching what the engine could not: a `MISSING_IN_TARGET` and a `MISSING_IN_SOURCE` of the same
 * dataset that an analyst says are one break (a booking delay, a typo in the key, ...). The reason
 * codes and the pairing rule the API, the CLI and the dashboard share; the scorer behind
 * `GET /exceptions/{id}/suggestions` is shared/match-scorer.ts.
 *
 * Free of imports (the dashboard bundles it).
 */

/** Why two missing rows are one break. */
export const MATCH_REASON_CODES = ['BOOKING_DELAY', 'KEY_TYPO', 'SPLIT_BOOKING', 'OTHER'] as const;
export type MatchReasonCode = (typeof MATCH_REASON_CODES)[number];

/** The two exception types a manual match pairs, each with the other. */
export const MATCHABLE_TYPES = {
  MISSING_IN_TARGET: 'MISSING_IN_SOURCE',
  MISSING_IN_SOURCE: 'MISSING_IN_TARGET',
} as const;
export type MatchableType = keyof typeof MATCHABLE_TYPES;

export function isMatchable(type: string): type is MatchableType {
  return type in MATCHABLE_TYPES;
}
