/**
 * Hybrid retrieval's two halves, shared by every vector index adapter: a document filter (equality
 * on keyword fields, multi-valued fields, inclusive ranges) and reciprocal rank fusion.
 *
 * Reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009): a document's fused score is
 * Σ 1/(RRF_K + rank) over the rankings it appears in. It needs no score calibration between
 * cosine and BM25, and a document that both rankings hold beats one that only one holds unless
 * the latter ranks far higher: an exact trade id (lexical rank 1, found by vector too) comes
 * first, while a paraphrase no word of which occurs still arrives through the vector ranking.
 *
 * RRF alone does not make an exact id first: with a semantic embedder the trade a query names can
 * sit 15th by vector, behind a document 1st by vector and 2nd by words ("what happened to trade
 * T0126" against a trade_date mismatch). So identifiers in the query (tokens holding a digit, four
 * characters or more: T0126, ACCT2042, 150000, 2025-12-10) add a third ranking: the lexical hits
 * holding every one of them. A document in all three outranks any document in two.
 */
import { tokenize } from './hashing-embedder.ts';
import type { FieldRange, FieldValue, SearchOptions, VectorHit } from './ports.ts';

/** The constant of the original paper; it damps the weight of the very first ranks. */
export const RRF_K = 60;

/** How deep each ranking is read before fusing: deeper than k so a document ranked low in one still counts. */
export function fusionDepth(k: number): number {
  return Math.max(50, 2 * k);
}

/**
 * Fuses rankings (each best first) into one, best first, cut to k. Scores are scaled so a
 * document first in every ranking scores 1; ties break on id for reproducible answers.
 */
export function reciprocalRankFusion(rankings: readonly (readonly VectorHit[])[], k: number): VectorHit[] {
  const fused = new Map<string, { hit: VectorHit; score: number }>();
  for (const ranking of rankings) {
    ranking.forEach((hit, rank) => {
      const entry = fused.get(hit.id);
      const add = 1 / (RRF_K + rank + 1);
      if (entry) entry.score += add;
      else fused.set(hit.id, { hit, score: add });
    });
  }
  const best = rankings.length / (RRF_K + 1);
  return [...fused.values()]
    .sort((a, b) => b.score - a.score || a.hit.id.localeCompare(b.hit.id))
    .slice(0, k)
    .map(({ hit, score }) => ({ ...hit, score: score / best }));
}

/** A lexical hit with the text it was matched on (to check the query's identifiers against). */
export interface LexicalHit extends VectorHit {
  readonly lexical: string;
}

/** The query's identifier-like tokens: holding a digit, at least four characters. */
export function identifiers(query: string): string[] {
  return [...new Set(tokenize(query).filter((t) => t.length >= 4 && /\d/.test(t)))];
}

/**
 * Whether the text's tokens (tokenize) include every one wanted. A token is a lower-cased piece of
 * the text, perhaps shortened by stemming, so a text that does not contain a wanted token as a
 * substring cannot have it: most texts fail that cheap check and are never tokenised (tokenising
 * every lexical hit's text had been a fifth of a search's CPU at 2,000 exceptions).
 */
export function hasTokens(text: string, wanted: readonly string[]): boolean {
  const lower = text.toLowerCase();
  if (!wanted.every((token) => lower.includes(token))) return false;
  const have = new Set(tokenize(text));
  return wanted.every((token) => have.has(token));
}

/** Vector and lexical rankings fused, plus the exact-identifier ranking when the query names any. */
export function fuseHybrid(
  query: string,
  byVector: readonly VectorHit[],
  byWords: readonly LexicalHit[],
  k: number,
): VectorHit[] {
  const wanted = identifiers(query);
  const exact = wanted.length === 0 ? [] : byWords.filter((hit) => hasTokens(hit.lexical, wanted));
  const strip = (hits: readonly LexicalHit[]): VectorHit[] =>
    hits.map(({ id, score, fields, text }) => ({ id, score, fields, text }));
  return reciprocalRankFusion(
    [byVector, strip(byWords), strip(exact)].filter((ranking) => ranking.length > 0),
    k,
  );
}

export type FieldFilter = (fields: Readonly<Record<string, FieldValue>>) => boolean;

/** One predicate for the equality filter and the ranges; null when nothing is filtered. */
export function compileFilter(
  filter: Readonly<Record<string, string>> = {},
  ranges: SearchOptions['ranges'] = {},
): FieldFilter | null {
  const equals = Object.entries(filter);
  const bounds = Object.entries(ranges).filter(([, r]) => r.from !== undefined || r.to !== undefined) as [
    string,
    FieldRange,
  ][];
  if (equals.length === 0 && bounds.length === 0) return null;
  return (fields) => {
    for (const [field, value] of equals) if (!fieldEquals(fields[field], value)) return false;
    for (const [field, range] of bounds) if (!withinRange(fields[field], range)) return false;
    return true;
  };
}

/** Whether a stored value is within an inclusive range: only a single string value can be. */
export function withinRange(value: FieldValue | undefined, range: FieldRange): boolean {
  if (typeof value !== 'string') return false;
  if (range.from !== undefined && value < range.from) return false;
  return range.to === undefined || value <= range.to;
}

export function fieldEquals(stored: FieldValue | undefined, value: string): boolean {
  return Array.isArray(stored) ? stored.includes(value) : stored === value;
}

/** The keyword values a field holds (one, several, or none when not a string). */
export function keywordValues(value: FieldValue | undefined): readonly string[] {
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value : [];
}
