/**
 * The embedders' vector length (shared/search/vector-norm.ts) against `Math.hypot` over the same
 * values spread as arguments, which it replaces: the same double in every case, so the vectors
 * embedded (and stored on items) do not move.
 */
import { describe, expect, it } from 'vitest';
import { hypot } from '../../functions/shared/search/vector-norm.ts';
import { HashingEmbedder } from '../../functions/shared/search/hashing-embedder.ts';

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
