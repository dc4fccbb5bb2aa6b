/**
 * Several embedders as one: each part's vector is L2-normalised and scaled by √weight, then the
 * parts are concatenated. With weights summing to 1 the result is a unit vector whose cosine with
 * another is Σ weightᵢ · cosᵢ: a weighted sum of the parts' similarities, computed by any vector
 * store (the local one, OpenSearch's knn) without knowing there are parts.
 *
 * The offline `hybrid` embedder is USE-lite (meaning) plus hashing (exact words and ids); its
 * weight was chosen on the labelled retrieval sets (scripts/tools/retrieval-eval.ts --weights).
 */
import type { Embedder } from './ports.ts';
import { hypot } from './vector-norm.ts';

export interface WeightedPart {
  readonly embedder: Embedder;
  readonly weight: number;
}

export class CombinedEmbedder implements Embedder {
  readonly id: string;
  readonly dimensions: number;
  private readonly parts: readonly { embedder: Embedder; scale: number }[];

  constructor(parts: readonly WeightedPart[], id?: string) {
    const total = parts.reduce((sum, p) => sum + p.weight, 0);
    if (parts.length === 0 || parts.some((p) => !(p.weight >= 0)) || !(total > 0))
      throw new Error('a combined embedder needs parts with non-negative weights, not all zero');
    this.parts = parts.map((p) => ({ embedder: p.embedder, scale: Math.sqrt(p.weight / total) }));
    this.dimensions = parts.reduce((sum, p) => sum + p.embedder.dimensions, 0);
    this.id = id ?? `combined(${parts.map((p) => `${p.embedder.id}*${(p.weight / total).toFixed(2)}`).join('+')})`;
  }

  prepare(): void {
    for (const part of this.parts) part.embedder.prepare?.();
  }

  async embed(texts: string[]): Promise<number[][]> {
    const vectors = await Promise.all(this.parts.map((p) => p.embedder.embed(texts)));
    return texts.map((_, i) => {
      const out: number[] = [];
      this.parts.forEach((part, p) => {
        const v = (vectors[p] as number[][])[i] as number[];
        const norm = hypot(v);
        for (const x of v) out.push(norm === 0 ? 0 : (x / norm) * part.scale);
      });
      return out;
    });
  }
}
