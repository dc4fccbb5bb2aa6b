/**
 * The lexical half of local hybrid retrieval: Okapi BM25 over each document's `lexical` text,
 * tokenised like the hashing embedder (the same stop words and crude stemming, ids kept whole).
 *
 * Written here, not taken from a library: none is installed (MiniSearch, Lunr, wink-bm25 and
 * Orama are not dependencies), and what is needed is small — postings, lengths, one formula.
 *
 * Layout, for speed (a query of common words, "amount differs target", scores most documents):
 * each document holds a numbered slot; a term's posting is two flat arrays (slots, term
 * frequencies); a query adds into one reused Float64Array of scores, remembers the slots it
 * touched, and keeps the best k in a small heap instead of sorting every scored document. A
 * removed document's slot is only marked dead (skipped when read); the postings are rebuilt
 * without dead slots once they are half of all slots. Measured on this 2-core machine (20,000
 * synthetic exception texts, the query set of `npm run bench:api`): a hybrid query's lexical half
 * took ~10 ms with the previous Map-per-term, sort-everything version; scripts/bench/RESULTS.md
 * has the figures of this one.
 */
import { tokenize } from './hashing-embedder.ts';

/** BM25's usual parameters: term-frequency saturation and length normalisation. */
const K1 = 1.2;
const B = 0.75;
/** Dead slots are compacted away once they are this share of all slots (and at least MIN_COMPACT). */
const COMPACT_SHARE = 0.5;
const MIN_COMPACT = 1_024;

interface Posting {
  slots: number[];
  tfs: number[];
  /** Live documents in the posting (its document frequency). */
  live: number;
}

interface SlotEntry<D> {
  readonly doc: D;
  readonly length: number;
  readonly terms: readonly string[];
  readonly tfs: readonly number[];
}

export class Bm25Index<D> {
  private postings = new Map<string, Posting>();
  private readonly slotOf = new Map<D, number>();
  /** By slot: the document and what it contributed; undefined once removed. */
  private entries: (SlotEntry<D> | undefined)[] = [];
  private lengths: number[] = [];
  private totalLength = 0;
  private dead = 0;
  /** Reused between queries: scores by slot (all 0 between queries) and accept() answers (0 unknown, 1 yes, 2 no). */
  private scores = new Float64Array(0);
  private accepted = new Uint8Array(0);

  get size(): number {
    return this.slotOf.size;
  }

  add(doc: D, text: string): void {
    this.remove(doc);
    const tokens = tokenize(text);
    const counts = new Map<string, number>();
    for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
    this.place({ doc, length: tokens.length, terms: [...counts.keys()], tfs: [...counts.values()] });
  }

  remove(doc: D): void {
    const slot = this.slotOf.get(doc);
    if (slot === undefined) return;
    const entry = this.entries[slot] as SlotEntry<D>;
    for (const term of entry.terms) {
      const posting = this.postings.get(term);
      if (!posting) continue;
      posting.live--;
      if (posting.live === 0) this.postings.delete(term);
    }
    this.entries[slot] = undefined;
    this.slotOf.delete(doc);
    this.totalLength -= entry.length;
    this.dead++;
    if (this.dead >= MIN_COMPACT && this.dead >= this.entries.length * COMPACT_SHARE) this.compact();
  }

  clear(): void {
    this.postings.clear();
    this.slotOf.clear();
    this.entries = [];
    this.lengths = [];
    this.totalLength = 0;
    this.dead = 0;
  }

  /** The k best-scoring accepted documents sharing a word with the query, best first (score > 0). */
  search(query: string, k: number, accept: ((doc: D) => boolean) | null): { doc: D; score: number }[] {
    const n = this.slotOf.size;
    if (n === 0 || k <= 0) return [];
    const averageLength = this.totalLength / n || 1;
    const slotCount = this.entries.length;
    if (this.scores.length < slotCount) {
      const capacity = Math.max(slotCount, this.scores.length * 2, 1_024);
      this.scores = new Float64Array(capacity);
      this.accepted = new Uint8Array(capacity);
    }
    const scores = this.scores;
    const accepted = this.accepted;
    const entries = this.entries;
    const lengths = this.lengths;
    const touched: number[] = [];
    const lengthFactor = (K1 * B) / averageLength;
    const lengthBase = K1 * (1 - B);
    for (const term of new Set(tokenize(query))) {
      const posting = this.postings.get(term);
      if (!posting) continue;
      // The "+1" form of idf keeps it positive for words in more than half the documents.
      const idf = Math.log(1 + (n - posting.live + 0.5) / (posting.live + 0.5));
      const weight = idf * (K1 + 1);
      const { slots, tfs } = posting;
      for (let i = 0; i < slots.length; i++) {
        const slot = slots[i] as number;
        const entry = entries[slot];
        if (entry === undefined) continue;
        if (accept) {
          let verdict = accepted[slot] as number;
          if (verdict === 0) accepted[slot] = verdict = accept(entry.doc) ? 1 : 2;
          if (verdict === 2) continue;
        }
        const tf = tfs[i] as number;
        if (scores[slot] === 0) touched.push(slot);
        scores[slot] =
          (scores[slot] as number) + (weight * tf) / (tf + lengthBase + lengthFactor * (lengths[slot] as number));
      }
    }
    const best = new TopScores(k);
    for (const slot of touched) {
      best.offer(slot, scores[slot] as number);
      scores[slot] = 0;
    }
    // Rejected slots were marked but never touched: clear every mark (a memset, microseconds at 100k).
    if (accept) accepted.fill(0, 0, slotCount);
    return best.sorted().map(({ slot, score }) => ({ doc: (entries[slot] as SlotEntry<D>).doc, score }));
  }

  private place(entry: SlotEntry<D>): void {
    const slot = this.entries.length;
    this.entries.push(entry);
    this.lengths.push(entry.length);
    this.slotOf.set(entry.doc, slot);
    this.totalLength += entry.length;
    entry.terms.forEach((term, i) => {
      let posting = this.postings.get(term);
      if (!posting) this.postings.set(term, (posting = { slots: [], tfs: [], live: 0 }));
      posting.slots.push(slot);
      posting.tfs.push(entry.tfs[i] as number);
      posting.live++;
    });
  }

  /** Renumbers the live documents from 0, in their order, and rebuilds the postings without dead slots. */
  private compact(): void {
    const live = this.entries.filter((e): e is SlotEntry<D> => e !== undefined);
    this.clear();
    for (const entry of live) this.place(entry);
  }
}

/** The k highest scores (ties: the lower slot, i.e. the earlier document, first), as a min-heap. */
class TopScores {
  private readonly k: number;
  private readonly slots: number[] = [];
  private readonly scores: number[] = [];
  constructor(k: number) {
    this.k = k;
  }

  /** Whether a ranks below b: lower score, or the same score and a later slot. */
  private below(a: number, b: number): boolean {
    const sa = this.scores[a] as number;
    const sb = this.scores[b] as number;
    return sa < sb || (sa === sb && (this.slots[a] as number) > (this.slots[b] as number));
  }

  offer(slot: number, score: number): void {
    if (this.slots.length < this.k) {
      this.slots.push(slot);
      this.scores.push(score);
      this.up(this.slots.length - 1);
      return;
    }
    const worstScore = this.scores[0] as number;
    if (score < worstScore || (score === worstScore && slot > (this.slots[0] as number))) return;
    this.slots[0] = slot;
    this.scores[0] = score;
    this.down(0);
  }

  sorted(): { slot: number; score: number }[] {
    return this.slots
      .map((slot, i) => ({ slot, score: this.scores[i] as number }))
      .sort((a, b) => b.score - a.score || a.slot - b.slot);
  }

  private swap(i: number, j: number): void {
    [this.slots[i], this.slots[j]] = [this.slots[j] as number, this.slots[i] as number];
    [this.scores[i], this.scores[j]] = [this.scores[j] as number, this.scores[i] as number];
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.below(i, parent)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    const n = this.slots.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let worst = i;
      if (l < n && this.below(l, worst)) worst = l;
      if (r < n && this.below(r, worst)) worst = r;
      if (worst === i) return;
      this.swap(i, worst);
      i = worst;
    }
  }
}
