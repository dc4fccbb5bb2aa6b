/**
 * The lexical half of local hybrid retrieval: Okapi BM25 over each document's `lexical` text,
 * tokenised like the hashing embedder (the same stop words and crude stemming, ids kept whole).
 *
 * Written here, not taken from a library: none is installed (MiniSearch, Lunr, wink-bm25 and
 * Orama are not dependencies), and what is needed is small — postings, lengths, one formula.
 *
 * Layout, for speed (a query of common words, "amount differs target", matches most documents):
 * each document holds a numbered slot; a term's posting is two flat arrays (slots ascending, term
 * frequencies) with bounds per block of 64; a query reads the postings document by document and
 * skips what cannot enter its top k (see `search`), keeping the best k in a small heap. A removed
 * document's slot is only marked dead (skipped when read); the postings are rebuilt without dead
 * slots once they are half of all slots. Measured on this 2-core machine (synthetic exception
 * texts, the query set of `npm run bench:api`): a hybrid query's lexical half took ~10 ms at 20k
 * with a Map per term and a sort of everything scored, a few ms with flat postings scoring every
 * match; scripts/bench/RESULTS.md has the figures of the pruned search.
 */
import { tokenize } from './hashing-embedder.ts';

/** BM25's usual parameters: term-frequency saturation and length normalisation. */
const K1 = 1.2;
const B = 0.75;
/** Dead slots are compacted away once they are this share of all slots (and at least MIN_COMPACT). */
const COMPACT_SHARE = 0.5;
const MIN_COMPACT = 1_024;

/** Postings per block for the block bounds: 2^6 = 64 entries. */
const BLOCK_SHIFT = 6;

interface Posting {
  /** Ascending (slots are only ever appended). */
  slots: number[];
  tfs: number[];
  /** Live documents in the posting (its document frequency). */
  live: number;
  /** The largest term frequency and the shortest document, overall and per block (removed ones included: still bounds). */
  maxTf: number;
  minLength: number;
  blockMaxTf: number[];
  blockMinLength: number[];
}

/** A query term during one search: its posting, weight, score bound and cursor. */
interface QueryTerm {
  readonly posting: Posting;
  readonly weight: number;
  readonly bound: number;
  at: number;
}

/** The first index at or after `from` whose slot is at least `slot` (galloping, then binary search). */
function seek(slots: readonly number[], from: number, slot: number): number {
  if (from >= slots.length || (slots[from] as number) >= slot) return from;
  let step = 1;
  let low = from;
  let high = from + 1;
  while (high < slots.length && (slots[high] as number) < slot) {
    low = high;
    step *= 2;
    high = from + step;
  }
  high = Math.min(high, slots.length);
  // slots[low] < slot, and slots[high] >= slot or high is the end.
  while (high - low > 1) {
    const mid = (low + high) >> 1;
    if ((slots[mid] as number) < slot) low = mid;
    else high = mid;
  }
  return high;
}

interface SlotEntry<D> {
  readonly doc: D;
  readonly length: number;
  readonly terms: readonly string[];
  readonly tfs: readonly number[];
}

export class Bm25Index<D> {
  /** A number per document, given to `searchByKey`'s filter (a typed-array index for the caller). */
  private readonly keyOf: ((doc: D) => number) | undefined;
  private postings = new Map<string, Posting>();
  private readonly slotOf = new Map<D, number>();
  /** By slot: the document and what it contributed; undefined once removed. */
  private entries: (SlotEntry<D> | undefined)[] = [];
  private lengths: number[] = [];
  /** By slot: the document's key (`keyOf`), or the slot itself without one. */
  private keys: number[] = [];
  private totalLength = 0;
  private dead = 0;
  /** Reused between queries: accept() answers by slot (0 unknown, 1 yes, 2 no). */
  private accepted = new Uint8Array(0);

  constructor(keyOf?: (doc: D) => number) {
    this.keyOf = keyOf;
  }

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
    this.keys = [];
    this.totalLength = 0;
    this.dead = 0;
  }

  /**
   * The k best-scoring accepted documents sharing a word with the query, best first (score > 0).
   *
   * Exact, but it skips what cannot enter the top k (MaxScore, Turtle and Flood 1995, with
   * per-block bounds as in block-max WAND, Ding and Suel 2011): postings are read document by
   * document in slot order; each term has an upper bound on what it adds to a score (from its
   * largest term frequency and its shortest document, overall and per block of postings). Once
   * k documents are held, a document whose bound cannot beat the k-th score is skipped without
   * being scored or filtered; terms whose bounds together cannot beat it are only looked up for
   * the documents the others bring; when no term can, the search ends. Documents come in slot
   * order, so a later one must score strictly more to displace an equal score (ties: the earlier
   * document first, as before), which makes "cannot beat" an exact test.
   */
  search(query: string, k: number, accept: ((doc: D) => boolean) | null): { doc: D; score: number }[] {
    const entries = this.entries;
    return this.run(query, k, accept === null ? null : (slot) => accept((entries[slot] as SlotEntry<D>).doc));
  }

  /**
   * `search` with the filter asked about each document's key (`keyOf`) rather than the document:
   * a filter over typed arrays then costs no pointer chasing. At 100k, a filtered query asks up to
   * ~15,000 documents; reaching each through its entry and its object cost ~0.4 µs an ask.
   */
  searchByKey(query: string, k: number, accept: ((key: number) => boolean) | null): { doc: D; score: number }[] {
    const keys = this.keys;
    return this.run(query, k, accept === null ? null : (slot) => accept(keys[slot] as number));
  }

  private run(query: string, k: number, accept: ((slot: number) => boolean) | null): { doc: D; score: number }[] {
    const n = this.slotOf.size;
    if (n === 0 || k <= 0) return [];
    const averageLength = this.totalLength / n || 1;
    const lengthFactor = (K1 * B) / averageLength;
    const lengthBase = K1 * (1 - B);
    const slotCount = this.entries.length;
    if (this.accepted.length < slotCount)
      this.accepted = new Uint8Array(Math.max(slotCount, this.accepted.length * 2, 1_024));
    const accepted = this.accepted;
    const entries = this.entries;
    const lengths = this.lengths;

    // The query's terms, by upper bound ascending (the cheapest to leave out first).
    const terms: QueryTerm[] = [];
    for (const term of new Set(tokenize(query))) {
      const posting = this.postings.get(term);
      if (!posting) continue;
      // The "+1" form of idf keeps it positive for words in more than half the documents.
      const idf = Math.log(1 + (n - posting.live + 0.5) / (posting.live + 0.5));
      const weight = idf * (K1 + 1);
      const bound = (weight * posting.maxTf) / (posting.maxTf + lengthBase + lengthFactor * posting.minLength);
      terms.push({ posting, weight, bound, at: 0 });
    }
    if (terms.length === 0) return [];
    terms.sort((a, b) => a.bound - b.bound);
    const m = terms.length;
    // below[i]: the sum of the bounds of terms 0..i-1 (what the non-essential ones can add).
    const below = new Float64Array(m + 1);
    for (let i = 0; i < m; i++) below[i + 1] = (below[i] as number) + (terms[i] as QueryTerm).bound;
    const blockBound = (t: QueryTerm, block: number): number => {
      const tf = t.posting.blockMaxTf[block] as number;
      return (t.weight * tf) / (tf + lengthBase + lengthFactor * (t.posting.blockMinLength[block] as number));
    };

    const best = new TopScores(k);
    // Scores must exceed this to enter (0 until k documents are held: every score is positive).
    let threshold = 0;
    // Terms first..m-1 are essential: a document none of them holds cannot beat the threshold.
    let first = 0;
    for (;;) {
      // The essential terms with postings left to read.
      let live = -1;
      let lives = 0;
      for (let i = first; i < m; i++) {
        const t = terms[i] as QueryTerm;
        if (t.at < t.posting.slots.length) {
          live = i;
          lives++;
        }
      }
      if (lives === 0) break;
      if (lives === 1) {
        // One essential term left to read (the usual state once k documents are held).
        this.scanLast(terms, below, first, terms[live] as QueryTerm, best, threshold, lengthBase, lengthFactor, accept);
        break;
      }
      // The next document an essential term holds.
      let slot = Number.MAX_SAFE_INTEGER;
      for (let i = first; i < m; i++) {
        const t = terms[i] as QueryTerm;
        const s = t.posting.slots[t.at];
        if (s !== undefined && s < slot) slot = s;
      }
      if (slot === Number.MAX_SAFE_INTEGER) break;
      // Its bound from the blocks the essential terms are in, plus every non-essential term's.
      let bound = below[first] as number;
      let holders = 0;
      let only: QueryTerm | undefined;
      for (let i = first; i < m; i++) {
        const t = terms[i] as QueryTerm;
        if (t.posting.slots[t.at] !== slot) continue;
        bound += blockBound(t, t.at >> BLOCK_SHIFT);
        holders++;
        only = t;
      }
      const entry = entries[slot];
      if (bound <= threshold || entry === undefined) {
        if (holders === 1 && first === m - 1 && entry !== undefined) {
          // One essential term left: the rest of its block cannot beat the threshold either.
          const t = only as QueryTerm;
          t.at = Math.min(t.posting.slots.length, ((t.at >> BLOCK_SHIFT) + 1) << BLOCK_SHIFT);
        } else this.advancePast(terms, first, slot);
        continue;
      }
      if (accept) {
        let verdict = accepted[slot] as number;
        if (verdict === 0) accepted[slot] = verdict = accept(slot) ? 1 : 2;
        if (verdict === 2) {
          this.advancePast(terms, first, slot);
          continue;
        }
      }
      const length = lengths[slot] as number;
      let score = 0;
      for (let i = first; i < m; i++) {
        const t = terms[i] as QueryTerm;
        if (t.posting.slots[t.at] !== slot) continue;
        const tf = t.posting.tfs[t.at] as number;
        score += (t.weight * tf) / (tf + lengthBase + lengthFactor * length);
        t.at++;
      }
      score = this.addNonEssential(terms, below, first, slot, score, threshold, lengthBase + lengthFactor * length);
      if (score <= threshold) continue;
      best.offer(slot, score);
      if (!best.full()) continue;
      threshold = best.worst();
      while (first < m && (below[first + 1] as number) <= threshold) first++;
      if (first === m) break;
    }
    // Rejected and accepted slots were marked: clear every mark (a memset, microseconds at 100k).
    if (accept) accepted.fill(0, 0, slotCount);
    return best.sorted().map(({ slot, score }) => ({ doc: (entries[slot] as SlotEntry<D>).doc, score }));
  }

  /**
   * The rest of a search once one essential term is left to read: a tight loop over its
   * posting, each document's own share computed exactly before anything else is read.
   */
  private scanLast(
    terms: QueryTerm[],
    below: Float64Array,
    first: number,
    t: QueryTerm,
    best: TopScores,
    threshold: number,
    lengthBase: number,
    lengthFactor: number,
    accept: ((slot: number) => boolean) | null,
  ): void {
    const { slots, tfs } = t.posting;
    const { entries, lengths, accepted } = this;
    const weight = t.weight;
    const rest = below[first] as number;
    for (let at = t.at; at < slots.length; at++) {
      const slot = slots[at] as number;
      const tf = tfs[at] as number;
      const norm = lengthBase + lengthFactor * (lengths[slot] as number);
      let score = (weight * tf) / (tf + norm);
      if (score + rest <= threshold) continue;
      const entry = entries[slot];
      if (entry === undefined) continue;
      if (accept) {
        let verdict = accepted[slot] as number;
        if (verdict === 0) accepted[slot] = verdict = accept(slot) ? 1 : 2;
        if (verdict === 2) continue;
      }
      if (first > 0) score = this.addNonEssential(terms, below, first, slot, score, threshold, norm);
      if (score <= threshold) continue;
      best.offer(slot, score);
      if (!best.full()) continue;
      threshold = best.worst();
      if (rest + t.bound <= threshold) return;
    }
  }

  /**
   * Adds the non-essential terms' shares of a document's score (their cursors move to it),
   * largest bound first, while they could still lift it past the threshold.
   */
  private addNonEssential(
    terms: QueryTerm[],
    below: Float64Array,
    first: number,
    slot: number,
    score: number,
    threshold: number,
    norm: number,
  ): number {
    for (let i = first - 1; i >= 0 && score + (below[i + 1] as number) > threshold; i--) {
      const t = terms[i] as QueryTerm;
      const at = seek(t.posting.slots, t.at, slot);
      t.at = at;
      if (t.posting.slots[at] === slot) {
        const tf = t.posting.tfs[at] as number;
        score += (t.weight * tf) / (tf + norm);
      }
    }
    return score;
  }

  /** Moves the essential terms' cursors that point at `slot` past it. */
  private advancePast(terms: QueryTerm[], first: number, slot: number): void {
    for (let i = first; i < terms.length; i++) {
      const t = terms[i] as QueryTerm;
      if (t.posting.slots[t.at] === slot) t.at++;
    }
  }

  private place(entry: SlotEntry<D>): void {
    const slot = this.entries.length;
    this.entries.push(entry);
    this.lengths.push(entry.length);
    this.keys.push(this.keyOf ? this.keyOf(entry.doc) : slot);
    this.slotOf.set(entry.doc, slot);
    this.totalLength += entry.length;
    entry.terms.forEach((term, i) => {
      let posting = this.postings.get(term);
      if (!posting)
        this.postings.set(
          term,
          (posting = {
            slots: [],
            tfs: [],
            live: 0,
            maxTf: 0,
            minLength: Infinity,
            blockMaxTf: [],
            blockMinLength: [],
          }),
        );
      const tf = entry.tfs[i] as number;
      const block = posting.slots.length >> BLOCK_SHIFT;
      posting.slots.push(slot);
      posting.tfs.push(tf);
      posting.live++;
      posting.maxTf = Math.max(posting.maxTf, tf);
      posting.minLength = Math.min(posting.minLength, entry.length);
      posting.blockMaxTf[block] = Math.max(posting.blockMaxTf[block] ?? 0, tf);
      posting.blockMinLength[block] = Math.min(posting.blockMinLength[block] ?? Infinity, entry.length);
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

  full(): boolean {
    return this.slots.length >= this.k;
  }

  /** The lowest score held (the heap's root). */
  worst(): number {
    return this.scores[0] as number;
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
