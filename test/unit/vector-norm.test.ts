/**
 * The embedders' vector length (shared/search/vector-norm.ts) against `Math.hypot` over the same
 * values spread as arguments, which it replaces: the same double in every case, so the vectors
 * embedded (and stored on items) do not move.
 */
import { describe, expect, it } from 'vitest';
import { hypot } from '../../functions/shared/search/vector-norm.ts';
import { HashingEmbedder, tokenize } from '../../functions/shared/search/hashing-embedder.ts';
import { CombinedEmbedder } from '../../functions/shared/search/combined-embedder.ts';
import type { Embedder } from '../../functions/shared/search/ports.ts';

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('hypot', () => {
  it("equals Math.hypot's double, bit for bit, over vectors like the embedders' and extreme ones", () => {
    const rnd = random(5);
    const kinds: (() => number)[] = [
      () => rnd() - 0.5, // a model's floats
      () => (rnd() < 0.05 ? (rnd() < 0.5 ? -1 : 1) * (1 + Math.log(1 + Math.floor(rnd() * 4))) : 0), // hashing counts
      () => (rnd() - 0.5) * 1e200, // squares would overflow unscaled
      () => (rnd() - 0.5) * 1e-200, // squares would underflow unscaled
      () => Math.round((rnd() - 0.5) * 10),
    ];
    let compared = 0;
    for (const length of [1, 2, 3, 7, 512, 1024, 1536])
      for (const kind of kinds)
        for (let t = 0; t < 60; t++) {
          const vector = Array.from({ length }, kind);
          expect(Object.is(hypot(vector), Math.hypot(...vector))).toBe(true);
          compared++;
        }
    expect(compared).toBe(2100);
  });

  it('answers the edge cases as Math.hypot does', () => {
    for (const vector of [
      [],
      [0, 0],
      [-0],
      [Number.NaN, 1],
      [Number.POSITIVE_INFINITY, Number.NaN],
      [-Infinity, 2],
      [3, 4],
    ])
      expect(hypot(vector)).toBe(Math.hypot(...vector));
    expect(hypot(new Float32Array([3, 4]))).toBe(5);
  });

  it('leaves the hashing embedder a unit vector', async () => {
    const [vector] = await new HashingEmbedder().embed(['amount mismatch on trade T0005 account ACCT1']);
    expect(vector?.reduce((sum, x) => sum + x * x, 0)).toBeCloseTo(1, 12);
  });
});

/**
 * The vectors the embedders make are stored on items and in the index: a faster way to build them
 * must give the same doubles. References written the plain way (Math.hypot, map, push).
 */
describe("the embedders' vectors", () => {
  function fnv(text: string): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
    return h >>> 0;
  }
  function hashingReference(text: string, dimensions: number): number[] {
    const counts = new Map<string, number>();
    const tokens = tokenize(text);
    tokens.forEach((t, i) => {
      counts.set(`w:${t}`, (counts.get(`w:${t}`) ?? 0) + 1);
      if (i > 0) counts.set(`b:${tokens[i - 1]} ${t}`, (counts.get(`b:${tokens[i - 1]} ${t}`) ?? 0) + 0.5);
    });
    const vector = new Array<number>(dimensions).fill(0);
    for (const [feature, count] of counts) {
      const h = fnv(feature);
      vector[h % dimensions] = (vector[h % dimensions] as number) + (h & 0x80000000 ? -1 : 1) * (1 + Math.log(count));
    }
    const norm = Math.hypot(...vector);
    return norm === 0 ? vector : vector.map((v) => v / norm);
  }
  const texts = [
    'AMOUNT_MISMATCH trade T000004217 account ACCT4217 amount differs 1,250.25 against 1,250.75 USD',
    'missing in target: the of and', // stop words only past the first words
    '', // no words: a zero vector, left as it is
    'duplicate duplicate duplicate in source payments P-0001_a',
  ];

  it('hashing: the normalised counts, bit for bit', async () => {
    const vectors = await new HashingEmbedder(1024).embed(texts);
    texts.forEach((text, i) => {
      const expected = hashingReference(text, 1024);
      expect(vectors[i]?.length).toBe(1024);
      expect(vectors[i]?.every((x, j) => Object.is(x, expected[j]))).toBe(true);
    });
  });

  it("combined: each part's unit vector times √weight, concatenated, bit for bit", async () => {
    // A part whose third vector is all zeros, and one that answers longer vectors than it declares.
    const model: Embedder = {
      id: 'model',
      dimensions: 8,
      embed: async (batch) =>
        batch.map((_, i) => Array.from({ length: 8 }, (_, j) => (i === 2 ? 0 : Math.sin(i * 8 + j)))),
    };
    const loose: Embedder = {
      id: 'loose',
      dimensions: 3,
      embed: async (batch) => batch.map((_, i) => [i + 1, -2, 0.5, 4]),
    };
    const hashing = new HashingEmbedder(64);
    const combined = new CombinedEmbedder([
      { embedder: model, weight: 0.6 },
      { embedder: hashing, weight: 0.3 },
      { embedder: loose, weight: 0.1 },
    ]);
    const vectors = await combined.embed(texts);
    const parts = await Promise.all([model.embed(texts), hashing.embed(texts), loose.embed(texts)]);
    const weights = [0.6, 0.3, 0.1];
    const total = weights.reduce((a, b) => a + b, 0);
    texts.forEach((_, i) => {
      const expected: number[] = [];
      parts.forEach((part, p) => {
        const v = part[i] as number[];
        const norm = Math.hypot(...v);
        const scale = Math.sqrt((weights[p] as number) / total);
        for (const x of v) expected.push(norm === 0 ? 0 : (x / norm) * scale);
      });
      expect(vectors[i]?.length).toBe(8 + 64 + 4);
      expect(vectors[i]?.every((x, j) => Object.is(x, expected[j]))).toBe(true);
    });
  });
});
