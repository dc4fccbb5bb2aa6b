/**
 * The search factory on Lambda: a configuration that would fall back to a local-only adapter
 * fails at cold start with one error naming every variable to set (issue 9, defect 1).
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../functions/shared/config.ts';
import { indexNames } from '../../functions/shared/resources.ts';
import { AnnVectorIndex } from '../../functions/shared/search/ann-index.ts';
import { CombinedEmbedder } from '../../functions/shared/search/combined-embedder.ts';
import {
  createEmbedder,
  createVectorIndex,
  embedderIdentity,
  embedderOfLocalIndexes,
  hybridEmbedder,
  localIndexOptions,
  OFFLINE_DEFAULT_EMBEDDER,
  prepareLocalIndex,
} from '../../functions/shared/search/factory.ts';
import { IndexEmbedderMismatchError } from '../../functions/shared/search/local-index-meta.ts';
import { OpenSearchVectorIndex } from '../../functions/shared/search/opensearch-index.ts';

const ON_LAMBDA = { AWS_LAMBDA_FUNCTION_NAME: 'acme-tally-recon', AWS_REGION: 'eu-west-1' };

describe('createVectorIndex on Lambda', () => {
  it('refuses the local store when no search settings are given, naming each missing variable', () => {
    const attempt = () => createVectorIndex('exceptions', { ...ON_LAMBDA });

    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(
      'on AWS Lambda the exceptions index needs TALLY_VECTOR_STORE=opensearch, TALLY_OPENSEARCH_ENDPOINT, TALLY_EXCEPTIONS_INDEX',
    );
  });

  it('refuses an explicit local store', () => {
    expect(() =>
      createVectorIndex('policies', {
        ...ON_LAMBDA,
        TALLY_VECTOR_STORE: 'local',
        TALLY_OPENSEARCH_ENDPOINT: 'https://x.eu-west-1.aoss.amazonaws.com',
        TALLY_POLICIES_INDEX: 'acme-tally-policies',
      }),
    ).toThrow('needs TALLY_VECTOR_STORE=opensearch (');
  });

  it('builds the OpenSearch adapter when the collection and index are named', () => {
    const index = createVectorIndex('exceptions', {
      ...ON_LAMBDA,
      TALLY_VECTOR_STORE: 'opensearch',
      TALLY_OPENSEARCH_ENDPOINT: 'https://x.eu-west-1.aoss.amazonaws.com',
      TALLY_EXCEPTIONS_INDEX: 'acme-tally-exceptions',
    });

    expect(index).toBeInstanceOf(OpenSearchVectorIndex);
  });

  it('off Lambda, the defaults still pick the embedded store', () => {
    expect(() =>
      createVectorIndex('exceptions', { TALLY_VECTOR_DIR: mkdtempSync(join(tmpdir(), 'tally-factory-')) }),
    ).not.toThrow();
  });
});

describe('createEmbedder on Lambda', () => {
  it('refuses to fall back to the hashing embedder', () => {
    expect(() => createEmbedder({ ...ON_LAMBDA })).toThrow(
      'on AWS Lambda the embedder needs TALLY_EMBEDDER (bedrock-titan or openai)',
    );
  });

  it('builds the configured embedder', () => {
    const embedder = createEmbedder({
      ...ON_LAMBDA,
      TALLY_EMBEDDER: 'bedrock-titan',
      TALLY_EMBEDDING_MODEL_ID: 'amazon.titan-embed-text-v2:0',
    });

    expect(embedder.id).toBe('amazon.titan-embed-text-v2:0');
  });
});

describe('the offline embedders', () => {
  it('refuses the semantic and hybrid embedders on Lambda: their model is in no Lambda bundle', () => {
    for (const name of ['semantic', 'hybrid'])
      expect(() => createEmbedder({ ...ON_LAMBDA, TALLY_EMBEDDER: name })).toThrow(
        'on AWS Lambda the embedder needs TALLY_EMBEDDER (bedrock-titan or openai)',
      );
    // The infra's offline-models deployment names the hashing embedder, which runs anywhere.
    expect(createEmbedder({ ...ON_LAMBDA, TALLY_EMBEDDER: 'hashing' }).id).toBe('hashing-bow-1024');
  });

  it('makes the hybrid the default off Lambda: 512 semantic dimensions beside 1024 hashing ones', () => {
    expect(createEmbedder({}).id).toBe('hybrid-use-lite-512x0.60+hashing-bow-1024');

    const embedder = createEmbedder({ TALLY_EMBEDDER: 'hybrid' });

    expect(embedder.id).toBe('hybrid-use-lite-512x0.60+hashing-bow-1024');
    expect(embedder.dimensions).toBe(1536);
  });

  it('names the embedder createEmbedder builds without building it, for every choice', () => {
    const envs: NodeJS.ProcessEnv[] = [
      {},
      { TALLY_EMBEDDER: 'hashing', EMBEDDING_DIMENSIONS: '256' },
      { TALLY_EMBEDDER: 'semantic' },
      { TALLY_EMBEDDER: 'hybrid', EMBEDDING_DIMENSIONS: '512' },
      { TALLY_EMBEDDER: 'bedrock-titan' },
      { TALLY_EMBEDDER: 'openai', TALLY_OPENAI_BASE_URL: 'http://127.0.0.1:1', TALLY_EMBEDDING_MODEL_ID: 'e5' },
    ];
    for (const env of envs) {
      const built = createEmbedder(env);
      expect(embedderIdentity(env)).toEqual({ id: built.id, dimensions: built.dimensions });
    }
  });

  it('embeds so that cosine is the weighted sum of the parts’ cosines', async () => {
    const a = { id: 'a', dimensions: 2, embed: async (t: string[]) => t.map((x) => (x === 'p' ? [1, 0] : [0, 3])) };
    const b = { id: 'b', dimensions: 2, embed: async (t: string[]) => t.map((x) => (x === 'p' ? [2, 2] : [0, 5])) };
    const combined = new CombinedEmbedder([
      { embedder: a, weight: 0.3 },
      { embedder: b, weight: 0.7 },
    ]);

    const [p, q] = (await combined.embed(['p', 'q'])) as [number[], number[]];
    const dot = p.reduce((s, x, i) => s + x * (q[i] as number), 0);

    expect(combined.dimensions).toBe(4);
    expect(Math.hypot(...p)).toBeCloseTo(1, 12);
    // cos_a(p, q) = 0, cos_b(p, q) = 1/√2.
    expect(dot).toBeCloseTo(0.3 * 0 + 0.7 * Math.SQRT1_2, 12);
  });
});

describe('a local index and its embedder', () => {
  const vectorDir = () => mkdtempSync(join(tmpdir(), 'tally-meta-'));

  it('records the embedder of a new index and opens it again with the same one', () => {
    const dir = vectorDir();
    createVectorIndex('exceptions', { TALLY_VECTOR_DIR: dir, TALLY_EMBEDDER: 'hashing' });

    expect(() => createVectorIndex('exceptions', { TALLY_VECTOR_DIR: dir, TALLY_EMBEDDER: 'hashing' })).not.toThrow();
    expect(JSON.parse(readFileSync(join(dir, `${indexNames().exceptions}.jsonl.embedder.json`), 'utf8'))).toEqual({
      embedder: 'hashing-bow-1024',
      dimensions: 1024,
    });
  });

  it('refuses another embedder, naming both and how to rebuild', () => {
    const dir = vectorDir();
    createVectorIndex('policies', { TALLY_VECTOR_DIR: dir, TALLY_EMBEDDER: 'hashing' });

    const attempt = () => createVectorIndex('policies', { TALLY_VECTOR_DIR: dir, TALLY_EMBEDDER: 'hybrid' });

    expect(attempt).toThrow(IndexEmbedderMismatchError);
    expect(attempt).toThrow(
      /holds vectors of hashing-bow-1024 \(1024 dimensions\), but TALLY_EMBEDDER selects hybrid-use-lite-512x0\.60\+hashing-bow-1024 \(1536 dimensions\).*delete/,
    );
  });

  it('adopts an index written before the record when its vectors have the size, refuses it otherwise', async () => {
    const dir = vectorDir();
    const path = join(dir, `${indexNames().exceptions}.jsonl`);
    await AnnVectorIndex.load(path).replace({ id: 'x', vector: new Array(1024).fill(1), fields: {}, text: 'x' });

    expect(() => createVectorIndex('exceptions', { TALLY_VECTOR_DIR: dir, TALLY_EMBEDDER: 'hybrid' })).toThrow(
      'holds vectors of an earlier embedder (1024 dimensions)',
    );
    expect(() => createVectorIndex('exceptions', { TALLY_VECTOR_DIR: dir, TALLY_EMBEDDER: 'hashing' })).not.toThrow();
    expect(existsSync(`${path}.embedder.json`)).toBe(true);
  });

  it('reads the size of a vector the log keeps in the sparse form', async () => {
    const dir = vectorDir();
    const path = join(dir, `${indexNames().exceptions}.jsonl`);
    // Mostly zeros, as the hashing half of every hybrid vector: the log writes it sparse.
    const vector = new Array(1536).fill(0);
    vector[3] = 0.5;
    vector[1200] = -0.25;
    await AnnVectorIndex.load(path).replace({ id: 'x', vector, fields: {}, text: 'x' });
    expect(readFileSync(path, 'utf8')).toContain('"vector":"sparse:');

    expect(() => createVectorIndex('exceptions', { TALLY_VECTOR_DIR: dir, TALLY_EMBEDDER: 'hashing' })).toThrow(
      'holds vectors of an earlier embedder (1536 dimensions)',
    );
    expect(() => createVectorIndex('exceptions', { TALLY_VECTOR_DIR: dir, TALLY_EMBEDDER: 'hybrid' })).not.toThrow();
  });

  it('tells which offline embedder built a data directory, so the local stack keeps it', async () => {
    const empty = vectorDir();
    expect(embedderOfLocalIndexes(empty)).toBeUndefined();

    const hybrid = vectorDir();
    createVectorIndex('policies', { TALLY_VECTOR_DIR: hybrid, TALLY_EMBEDDER: 'hybrid' });
    expect(embedderOfLocalIndexes(hybrid)).toBe('hybrid');

    // An index from before the record: its 1024-float vectors are the hashing embedder's.
    const old = vectorDir();
    const path = join(old, `${indexNames().exceptions}.jsonl`);
    await AnnVectorIndex.load(path).replace({ id: 'x', vector: new Array(1024).fill(1), fields: {}, text: 'x' });
    expect(embedderOfLocalIndexes(old)).toBe('hashing');
  });

  it('defaults to the hybrid, which beats hashing on both labelled sets', () => {
    expect(OFFLINE_DEFAULT_EMBEDDER).toBe('hybrid');
    expect(embedderIdentity({}).id).toBe(hybridEmbedder().id);
  });
});

describe('the local index layout of the hybrid embedder', () => {
  it('keeps the model part as a dense head: exceptions differing only in ids and amounts share it', async () => {
    const embedder = hybridEmbedder();
    const options = localIndexOptions('hybrid');
    expect(options).toEqual({ denseHead: 512 });
    for (const other of ['semantic', 'hashing', 'bedrock-titan', 'openai', undefined])
      expect(localIndexOptions(other)).toEqual({});

    const [a, b, c] = await embedder.embed([
      'amount mismatch trade T000004217 account ACCT4217 amount 1200.50',
      'amount mismatch trade T000009931 account ACCT0001 amount 77.10',
      'missing in target trade T000004217',
    ]);
    const head = (v: number[] | undefined) => (v as number[]).slice(0, options.denseHead);
    // The same head, float for float (what the index keeps once), and different tails.
    expect(head(a)).toEqual(head(b));
    expect(a?.slice(512)).not.toEqual(b?.slice(512));
    expect(head(a)).not.toEqual(head(c));
    expect(embedder.dimensions).toBe(512 + 1024);
  });

  it('is the layout the factory gives the local stack index', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-layout-'));
    const index = createVectorIndex('exceptions', {
      TALLY_VECTOR_DIR: dir,
      TALLY_EMBEDDER: 'hybrid',
    }) as AnnVectorIndex;
    const vector = (head: number, word: number) =>
      Array.from({ length: 1536 }, (_, i) => (i < 512 ? ((i * (head + 1)) % 7) / 10 : i === 512 + word ? 1 : 0));
    await index.replaceMany(
      Array.from({ length: 40 }, (_, i) => ({ id: `e${i}`, vector: vector(i % 2, i), fields: {}, text: '' })),
    );

    expect((await index.search(vector(1, 3), 1))[0]?.id).toBe('e3');
    expect(index.graphStats()).toMatchObject({ postings: true, heads: 2, sparseAnswers: 1 });
  });
});

describe('loading a local index before its first search', () => {
  it("loads the query API's exceptions index when the local stack calls its warm()", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-warm-'));
    const path = join(dir, `${indexNames().exceptions}.jsonl`);
    const vector = new Array<number>(1024).fill(0);
    vector[3] = 1;
    await AnnVectorIndex.load(path).replaceMany([{ id: 'e1', vector, fields: { status: 'OPEN' }, text: 'a break' }]);
    const saved = { dir: process.env.TALLY_VECTOR_DIR, embedder: process.env.TALLY_EMBEDDER };
    process.env.TALLY_VECTOR_DIR = dir;
    process.env.TALLY_EMBEDDER = 'hashing';
    try {
      const { warm } = await import('../../functions/query-api/handler.ts');
      // The instance the handler's own createVectorIndex gets in this thread: not loaded yet.
      expect(AnnVectorIndex.at(path).graphStats().postings).toBe(false);

      expect(await warm()).toEqual({ exceptionsIndexDocuments: 1 });

      expect(AnnVectorIndex.at(path).graphStats().postings).toBe(true);
    } finally {
      for (const [name, value] of [
        ['TALLY_VECTOR_DIR', saved.dir],
        ['TALLY_EMBEDDER', saved.embedder],
      ] as const)
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
    }
  });

  it('loads nothing where the index is OpenSearch', async () => {
    await expect(prepareLocalIndex('exceptions', { TALLY_VECTOR_STORE: 'opensearch' })).resolves.toBeNull();
  });
});
