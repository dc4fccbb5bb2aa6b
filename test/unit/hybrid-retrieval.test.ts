/**
 * Hybrid retrieval on the retrieval evaluation's sample (reconciled, triaged by the rules provider
 * and indexed by the real code path, into the local store): an exact trade id or account ranks
 * first, a paraphrase sharing no word with its exception still finds it, and the search filters
 * (a field's value, a business-date range) narrow both rankings.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hybridEmbedder } from '../../functions/shared/search/factory.ts';
import { fieldValue } from '../../functions/shared/search/exception-document.ts';
import * as semanticModule from '../../functions/shared/search/semantic-embedder.ts';
import { SemanticEmbedder } from '../../functions/shared/search/semantic-embedder.ts';
import { cosine } from '../support/vectors.ts';
import { HashingEmbedder } from '../../functions/shared/search/hashing-embedder.ts';
import {
  buildCorpus,
  loadQuerySets,
  runQueries,
  sharedWords,
  summarise,
  type Corpus,
} from '../../scripts/tools/retrieval-eval.ts';

let dir: string;
let hybrid: Corpus;
let semantic: Corpus;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tally-hybrid-'));
  hybrid = await buildCorpus(hybridEmbedder(), dir);
  semantic = await buildCorpus(new SemanticEmbedder(), dir);
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function search(corpus: Corpus, q: string, k = 5, filter?: Record<string, string>, ranges = {}) {
  const [vector] = await corpus.embedder.embed([q]);
  const hits = await corpus.index.search(vector as number[], k, filter, { text: q, ranges });
  return hits.map((h) => corpus.labelOf.get(h.id) ?? h.id);
}

describe('hybrid retrieval (vector and BM25 fused by reciprocal rank)', () => {
  it('ranks an exact trade id first, with the hybrid embedder and with the semantic one alone', async () => {
    for (const corpus of [hybrid, semantic]) {
      expect((await search(corpus, 'T0105'))[0]).toBe('AMOUNT_MISMATCH:T0105');
      expect((await search(corpus, 'what happened to trade T0126'))[0]).toBe('DUPLICATE_IN_TARGET:T0126');
    }
  });

  it('ranks the exceptions holding an exact account first', async () => {
    for (const corpus of [hybrid, semantic]) {
      const top = await search(corpus, 'ACCT2042');
      expect(top.slice(0, 2).sort()).toEqual(['FIELD_MISMATCH:T0108', 'MISSING_IN_SOURCE:T0150']);
    }
  });

  it('finds a paraphrase that shares no word with its exception', async () => {
    const top = await search(hybrid, 'risk of paying twice');
    expect(top.some((label) => label.startsWith('DUPLICATE_IN_TARGET:'))).toBe(true);
  });

  it('beats the hashing embedder on both query sets', async () => {
    const hashing = await buildCorpus(new HashingEmbedder(), dir);
    for (const set of loadQuerySets()) {
      const ours = summarise(await runQueries(hybrid, set, 'fused'));
      const theirs = summarise(await runQueries(hashing, set, 'vector'));
      expect({ set: set.name, better: ours.recall > theirs.recall && ours.mrr > theirs.mrr }).toEqual({
        set: set.name,
        better: true,
      });
    }
  }, 60_000);

  it('keeps the paraphrase set honest: no query shares a word with what it should find', () => {
    const paraphrases = loadQuerySets().find((s) => s.name === 'paraphrase');
    expect(paraphrases?.queries.length).toBeGreaterThanOrEqual(20);
    expect(sharedWords(paraphrases!, hybrid)).toEqual([]);
  });
});

describe('the semantic embedder asked the same texts at once', () => {
  it('sends each text to the model once and gives every caller the vectors a lone call gives', async () => {
    const texts = ['late settlement of a cash leg', 'amount mismatch beyond tolerance', 'missing counterparty'];
    const alone = await new SemanticEmbedder().embed(texts);
    const embedder = new SemanticEmbedder();
    const before = semanticModule.textsSentToModel;
    // Three overlapping calls before any answer: a page's slices, as pattern triage asks them.
    const answers = await Promise.all([
      embedder.embed([texts[0] as string, texts[1] as string]),
      embedder.embed([texts[1] as string, texts[2] as string, texts[1] as string]),
      embedder.embed([...texts]),
    ]);
    expect(semanticModule.textsSentToModel - before).toBe(3);
    // The model pads a batch to its longest text, so a text's floats move a little with its
    // batch-mates: the same vector up to that.
    const same = (got: number[][] | undefined, want: (number[] | undefined)[]) => {
      expect(got?.length).toBe(want.length);
      got?.forEach((v, i) => expect(cosine(v, want[i] as number[])).toBeGreaterThan(0.999));
    };
    same(answers[0], [alone[0], alone[1]]);
    same(answers[1], [alone[1], alone[2], alone[1]]);
    same(answers[2], alone);
    expect(answers[1]?.[0]).toBe(answers[1]?.[2]);
  });

  it('sends texts asked while a request is out as one request', async () => {
    const embedder = new SemanticEmbedder();
    const requests = semanticModule.requestsSentToModel;
    const texts = ['trade booked twice', 'payment returned', 'position drift', 'stale price'];
    const answers = await Promise.all(texts.map((t) => embedder.embed([t])));
    // The first goes at once, the other three together when it is answered.
    expect(semanticModule.requestsSentToModel - requests).toBe(2);
    expect(answers.map((a) => a.length)).toEqual([1, 1, 1, 1]);
    const alone = await new SemanticEmbedder().embed(texts);
    answers.forEach((a, i) => expect(cosine(a[0] as number[], alone[i] as number[])).toBeGreaterThan(0.999));
  });
});

describe('search filters on the index', () => {
  it('a field value keeps only exceptions with it in their key or either row', async () => {
    const top = await search(hybrid, 'duplicate', 10, { values: fieldValue('account_id', 'ACCT2037') });
    expect(top.sort()).toEqual([
      'DUPLICATE_IN_TARGET:T0126',
      'DUPLICATE_IN_TARGET:T0133',
      'INVALID_RECORD:target:38',
      'MISSING_IN_TARGET:T0139',
    ]);
  });

  it('a business-date range keeps only exceptions of those days', async () => {
    // The sample is one business day, 2025-12-10.
    expect(await search(hybrid, 'T0105', 5, undefined, { business_date: { from: '2025-12-11' } })).toEqual([]);
    expect(
      (await search(hybrid, 'T0105', 5, undefined, { business_date: { from: '2025-12-10', to: '2025-12-10' } }))[0],
    ).toBe('AMOUNT_MISMATCH:T0105');
  });
});
