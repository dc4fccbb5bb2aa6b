/**
 * The offline default embedder: feature hashing of words, word pairs and identifier-like tokens
 * into a fixed-size, L2-normalised vector. No weights, no downloads, deterministic.
 *
 * What it is good for: finding exceptions and passages that share words with the query —
 * "amount differs" finds amount mismatches, "T0005" finds that trade, "duplicate settlement"
 * finds duplicates and the runbook section on them. What it cannot do: synonyms or meaning
 * ("break" does not find "mismatch" unless both words appear). README gives its recall@5 on the
 * labelled retrieval set; use Bedrock Titan or an OpenAI-compatible endpoint for semantic search.
 */
import type { Embedder } from './ports.ts';
import { hypot } from './vector-norm.ts';

const STOP_WORDS = new Set([
  'a',
  'an',
  'and',
  'are',
  'as',
  'at',
  'be',
  'by',
  'for',
  'from',
  'has',
  'have',
  'in',
  'is',
  'it',
  'its',
  'of',
  'on',
  'or',
  'that',
  'the',
  'this',
  'to',
  'was',
  'were',
  'will',
  'with',
  'which',
  'what',
  'when',
  'who',
  'why',
]);

/** Collapses inflections crudely so "amounts"/"amount", "differs"/"different"/"difference" meet. */
function stem(word: string): string {
  if (/^\d/.test(word) || word.length <= 4) return word;
  for (const suffix of ['ences', 'ence', 'ents', 'ent', 'ings', 'ing', 'ies', 'ied', 'ed', 'es', 's']) {
    if (word.endsWith(suffix) && word.length - suffix.length >= 4) return word.slice(0, -suffix.length);
  }
  return word;
}

export function tokenize(text: string): string[] {
  return (text.toLowerCase().match(/[a-z0-9]+(?:[_-][a-z0-9]+)*/g) ?? [])
    .flatMap((t) => (t.includes('_') ? [t, ...t.split('_')] : [t]))
    .filter((t) => !STOP_WORDS.has(t))
    .map(stem);
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class HashingEmbedder implements Embedder {
  readonly id: string;
  readonly dimensions: number;

  constructor(dimensions = 1024) {
    this.dimensions = dimensions;
    this.id = `hashing-bow-${dimensions}`;
  }

  async embed(texts: string[]): Promise<number[][]> {
    return texts.map((t) => this.embedOne(t));
  }

  private embedOne(text: string): number[] {
    const counts = new Map<string, number>();
    const tokens = tokenize(text);
    const add = (feature: string, weight: number) => counts.set(feature, (counts.get(feature) ?? 0) + weight);
    tokens.forEach((t, i) => {
      add(`w:${t}`, 1);
      if (i > 0) add(`b:${tokens[i - 1]} ${t}`, 0.5);
    });
    const vector = new Array<number>(this.dimensions).fill(0);
    for (const [feature, count] of counts) {
      const h = fnv1a(feature);
      // The top bit picks the sign so collisions cancel out on average instead of piling up.
      const sign = h & 0x80000000 ? -1 : 1;
      vector[h % this.dimensions] = (vector[h % this.dimensions] as number) + sign * (1 + Math.log(count));
    }
    const norm = hypot(vector);
    return norm === 0 ? vector : vector.map((v) => v / norm);
  }
}
