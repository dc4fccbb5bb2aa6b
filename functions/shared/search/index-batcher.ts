/**
 * Embeds and indexes documents in batches for callers that each hand in one: the records of an
 * SQS batch are handled concurrently, and each one's document waits a few milliseconds for the
 * others, then all are embedded in one call and written with one `replaceMany` (one append
 * locally, `_bulk` on OpenSearch) instead of one embedding call and one write each.
 *
 * Each caller still succeeds or fails on its own: a failed embedding or write rejects the callers
 * in that flush, and a bulk write that names the documents it could not index rejects only theirs.
 */
import { BulkIndexError } from './opensearch-index.ts';
import type { Embedder, VectorDocument, VectorIndex } from './ports.ts';

export interface IndexBatcherOptions {
  /** Documents per flush at most (one embedding call, one bulk write). */
  readonly maxBatch?: number;
  /** How long the first document of a flush waits for others. */
  readonly windowMs?: number;
}

interface Waiting {
  /** What to embed; absent for a document whose vector the caller already has. */
  readonly text: string | undefined;
  readonly toDocument: (vector: number[] | undefined) => VectorDocument;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

export class IndexBatcher {
  private readonly embedder: Embedder;
  private readonly index: VectorIndex;
  private readonly maxBatch: number;
  private readonly windowMs: number;
  private waiting: Waiting[] = [];
  private timer: NodeJS.Timeout | null = null;
  private ensured = false;

  constructor(embedder: Embedder, index: VectorIndex, options: IndexBatcherOptions = {}) {
    this.embedder = embedder;
    this.index = index;
    this.maxBatch = options.maxBatch ?? 100;
    this.windowMs = options.windowMs ?? 5;
  }

  /** Resolves once the document built from `text`'s vector is written. */
  add(text: string, toDocument: (vector: number[]) => VectorDocument): Promise<void> {
    return this.enqueue(text, (vector) => toDocument(vector as number[]));
  }

  /** Resolves once this document, already embedded, is written (with the next flush's others). */
  addDocument(document: VectorDocument): Promise<void> {
    return this.enqueue(undefined, () => document);
  }

  private enqueue(text: string | undefined, toDocument: Waiting['toDocument']): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ text, toDocument, resolve, reject });
      if (this.waiting.length >= this.maxBatch) this.flushNow();
      else this.timer ??= setTimeout(() => this.flushNow(), this.windowMs);
    });
  }

  private flushNow(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.waiting;
    this.waiting = [];
    if (batch.length > 0) void this.write(batch);
  }

  private async write(batch: Waiting[]): Promise<void> {
    let docs: VectorDocument[] = [];
    try {
      const texts = batch.flatMap((w) => (w.text === undefined ? [] : [w.text]));
      const vectors = texts.length === 0 ? [] : await this.embedder.embed(texts);
      if (vectors.length !== texts.length)
        throw new Error(`embedder returned ${vectors.length} vectors for ${texts.length} texts`);
      let next = 0;
      docs = batch.map((w) => w.toDocument(w.text === undefined ? undefined : vectors[next++]));
      if (!this.ensured) {
        await this.index.ensure();
        this.ensured = true;
      }
      await this.index.replaceMany(docs);
    } catch (error) {
      if (error instanceof BulkIndexError) {
        batch.forEach((w, i) => {
          const reason = error.failed.get((docs[i] as VectorDocument).id);
          if (reason === undefined) w.resolve();
          else w.reject(new Error(`document ${(docs[i] as VectorDocument).id} not indexed: ${reason}`));
        });
        return;
      }
      for (const w of batch) w.reject(error as Error);
      return;
    }
    for (const w of batch) w.resolve();
  }
}
