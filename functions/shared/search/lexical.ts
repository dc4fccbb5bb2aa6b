/**
 * The lexical half of local hybrid retrieval: Okapi BM25 over each document's `lexical` text,
 * tokenised like the hashing embedder (the same stop words and crude stemming, ids kept whole).
 *
 * Written here, not taken from a library: none is installed (MiniSearch, Lunr, wink-bm25 and
 * Orama are not dependencies, and helpers add none), and what is needed is small — postings,
 * lengths, one formula. Measured on this machine (load average 5), 20,000 synthetic exception
 * texts: built in 1.9 s; a query 22 ms at p50, 118 ms at p95 — a query of common words ("amount
 * differs target") scores every document. Not yet good enough for GET /search at 100k exceptions
 * (README's p95 target of 100 ms): a top-k heap and capped postings are the next step.
 */
import { tokenize } from './hashing-embedder.ts';

/** BM25's usual parameters: term-frequency saturation and length normalisation. */
const K1 = 1.2;
const B = 0.75;

export class Bm25Index<D> {
  private readonly postings = new Map<string, Map<D, number>>();
  private readonly lengths = new Map<D, { length: number; terms: readonly string[] }>();
  private totalLength = 0;

  get size(): number {
    return this.lengths.size;
  }

  add(doc: D, text: string): void {
    this.remove(doc);
    const tokens = tokenize(text);
    const counts = new Map<string, number>();
    for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (const [term, tf] of counts) {
      let posting = this.postings.get(term);
      if (!posting) this.postings.set(term, (posting = new Map()));
      posting.set(doc, tf);
    }
    this.lengths.set(doc, { length: tokens.length, terms: [...counts.keys()] });
    this.totalLength += tokens.length;
  }

  remove(doc: D): void {
    const entry = this.lengths.get(doc);
    if (!entry) return;
    for (const term of entry.terms) {
      const posting = this.postings.get(term);
      posting?.delete(doc);
      if (posting?.size === 0) this.postings.delete(term);
    }
    this.lengths.delete(doc);
    this.totalLength -= entry.length;
  }

  clear(): void {
    this.postings.clear();
    this.lengths.clear();
    this.totalLength = 0;
  }

  /** The k best-scoring accepted documents sharing a word with the query, best first (score > 0). */
  search(query: string, k: number, accept: ((doc: D) => boolean) | null): { doc: D; score: number }[] {
    const n = this.lengths.size;
    if (n === 0 || k <= 0) return [];
    const averageLength = this.totalLength / n || 1;
    const scores = new Map<D, number>();
    for (const term of new Set(tokenize(query))) {
      const posting = this.postings.get(term);
      if (!posting) continue;
      // The "+1" form of idf keeps it positive for words in more than half the documents.
      const idf = Math.log(1 + (n - posting.size + 0.5) / (posting.size + 0.5));
      for (const [doc, tf] of posting) {
        if (accept && !accept(doc)) continue;
        const length = (this.lengths.get(doc) as { length: number }).length;
        const score = (idf * tf * (K1 + 1)) / (tf + K1 * (1 - B + (B * length) / averageLength));
        scores.set(doc, (scores.get(doc) ?? 0) + score);
      }
    }
    return [...scores]
      .map(([doc, score]) => ({ doc, score }))
      .sort((a, b) => b.score - a.score)
      .slice(0, k);
  }
}
