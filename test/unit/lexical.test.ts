/** BM25 (functions/shared/search/lexical.ts) against a plain reference implementation of the same formula. */
import { describe, expect, it } from 'vitest';
import { tokenize } from '../../functions/shared/search/hashing-embedder.ts';
import { Bm25Index } from '../../functions/shared/search/lexical.ts';

/** The textbook computation: every document scored with a Map, everything sorted. */
function reference(
  docs: ReadonlyMap<string, string>,
  query: string,
  k: number,
  accept: ((id: string) => boolean) | null,
) {
  const tokens = new Map([...docs].map(([id, text]) => [id, tokenize(text)]));
  const n = docs.size;
  const average = [...tokens.values()].reduce((sum, t) => sum + t.length, 0) / n || 1;
  const scores = new Map<string, number>();
  for (const term of new Set(tokenize(query))) {
    const df = [...tokens.values()].filter((t) => t.includes(term)).length;
    if (df === 0) continue;
    const idf = Math.log(1 + (n - df + 0.5) / (df + 0.5));
    for (const [id, t] of tokens) {
      const tf = t.filter((x) => x === term).length;
      if (tf === 0 || (accept && !accept(id))) continue;
      const score = (idf * tf * 2.2) / (tf + 1.2 * (1 - 0.75 + (0.75 * t.length) / average));
      scores.set(id, (scores.get(id) ?? 0) + score);
    }
  }
  return [...scores].map(([doc, score]) => ({ doc, score })).sort((a, b) => b.score - a.score);
}

/** A deterministic generator (mulberry32), so a failure reproduces. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = [
  'amount',
  'mismatch',
  'missing',
  'target',
  'source',
  'trade',
  'currency',
  'fx',
  'rate',
  'late',
  'settle',
  'T0001',
  'ACCT42',
];

function expectSameRanking(
  actual: { doc: string; score: number }[],
  expected: { doc: string; score: number }[],
  k: number,
) {
  expect(actual).toHaveLength(Math.min(k, expected.length));
  actual.forEach((hit, i) => {
    // Same scores in the same order; among equal scores any of the tied documents may come first.
    expect(hit.score).toBeCloseTo((expected[i] as { score: number }).score, 9);
    const tied = expected.filter((e) => Math.abs(e.score - hit.score) < 1e-9).map((e) => e.doc);
    expect(tied).toContain(hit.doc);
  });
}

describe('BM25 index', () => {
  it('ranks as the reference does through adds, replacements and removals, with and without a filter', () => {
    const next = random(7);
    const index = new Bm25Index<string>();
    // The same documents, its filter asked about each document's key (kept through compactions).
    const keyed = new Bm25Index<string>((id) => Number(id.slice(1)));
    const docs = new Map<string, string>();
    const text = () =>
      Array.from({ length: 2 + Math.floor(next() * 12) }, () => WORDS[Math.floor(next() * WORDS.length)]).join(' ');
    // Enough removals to pass the compaction threshold more than once.
    for (let step = 0; step < 6_000; step++) {
      const id = `d${Math.floor(next() * 2_500)}`;
      if (next() < 0.3) {
        index.remove(id);
        keyed.remove(id);
        docs.delete(id);
      } else {
        const t = text();
        index.add(id, t);
        keyed.add(id, t);
        docs.set(id, t);
      }
      if (step % 1_500 === 1_499) {
        expect(index.size).toBe(docs.size);
        for (const query of [
          'amount mismatch',
          'missing target trade',
          'fx rate late settle',
          'T0001 ACCT42',
          'nothing',
        ]) {
          for (const k of [1, 10, 50]) {
            expectSameRanking(index.search(query, k, null), reference(docs, query, k, null), k);
            const even = (id: string) => Number(id.slice(1)) % 2 === 0;
            expectSameRanking(index.search(query, k, even), reference(docs, query, k, even), k);
            const evenKey = (key: number) => key % 2 === 0;
            expectSameRanking(keyed.searchByKey(query, k, evenKey), reference(docs, query, k, even), k);
          }
        }
      }
    }
  });

  it('ranks as the reference does with skewed words, long and short documents, repeated words and selective filters', () => {
    const next = random(11);
    const index = new Bm25Index<string>();
    const docs = new Map<string, string>();
    // Zipf-like: the first words are in most documents, the last in a few.
    const word = () => WORDS[Math.floor(WORDS.length * next() ** 2.5)] as string;
    for (let i = 0; i < 3_000; i++) {
      const length = 1 + Math.floor(next() ** 2 * 40);
      const t = Array.from({ length }, word).join(' ');
      index.add(`d${i}`, t);
      docs.set(`d${i}`, t);
    }
    const queries = [
      'amount',
      'amount mismatch',
      'missing target trade',
      'currency fx rate late',
      'settle ACCT42',
      'T0001',
    ];
    const filters: [string, ((id: string) => boolean) | null][] = [
      ['none', null],
      ['half', (id) => Number(id.slice(1)) % 2 === 0],
      ['a tenth', (id) => Number(id.slice(1)) % 10 === 3],
      ['a few', (id) => Number(id.slice(1)) % 500 === 7],
    ];
    for (const query of queries)
      for (const [, accept] of filters)
        for (const k of [1, 5, 50, 200])
          expectSameRanking(index.search(query, k, accept), reference(docs, query, k, accept), k);
  });

  it('skips what cannot enter the top k: a filter is asked about a few documents, not every match', () => {
    const index = new Bm25Index<string>();
    // Same words, same length: every document ties, so after the first k nothing can enter.
    for (let i = 0; i < 20_000; i++) index.add(`d${i}`, 'amount mismatch on trade');
    let asked = 0;
    const hits = index.search('amount mismatch', 10, () => (asked++, true));
    expect(hits.map((h) => h.doc)).toEqual(Array.from({ length: 10 }, (_, i) => `d${i}`));
    expect(asked).toBeLessThan(100);
  });

  it('answers nothing for an empty index, k 0, or words no document has; clear empties it', () => {
    const index = new Bm25Index<string>();
    expect(index.search('amount', 5, null)).toEqual([]);
    index.add('a', 'amount mismatch');
    expect(index.search('amount', 0, null)).toEqual([]);
    expect(index.search('zebra', 5, null)).toEqual([]);
    expect(index.search('amount', 5, null).map((h) => h.doc)).toEqual(['a']);
    index.clear();
    expect(index.size).toBe(0);
    expect(index.search('amount', 5, null)).toEqual([]);
  });
});
