/** The real policy corpus in a local vector index, embedded with the offline hashing embedder: what triage retrieves from. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { POLICIES_DIR } from '../../functions/shared/paths.ts';
import { passageDocument, passageEmbeddingText, splitIntoPassages } from '../../functions/shared/policy-corpus.ts';
import type { Embedder } from '../../functions/shared/search/ports.ts';
import { LocalVectorIndex } from '../../functions/shared/search/local-index.ts';

export async function policyIndexAt(path: string, embedder: Embedder): Promise<LocalVectorIndex> {
  const index = LocalVectorIndex.load(path);
  for (const file of readdirSync(POLICIES_DIR).filter((f) => f.endsWith('.md'))) {
    const passages = splitIntoPassages(file, readFileSync(join(POLICIES_DIR, file), 'utf8'));
    const vectors = await embedder.embed(passages.map(passageEmbeddingText));
    for (const [i, p] of passages.entries()) await index.replace(passageDocument(p, vectors[i] as number[]));
  }
  return index;
}
