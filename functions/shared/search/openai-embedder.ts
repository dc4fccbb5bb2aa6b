import type { Embedder } from './ports.ts';

/** Any OpenAI-compatible /embeddings endpoint (OpenAI, Ollama, vLLM, llama.cpp server). */
export class OpenAICompatibleEmbedder implements Embedder {
  readonly id: string;
  readonly dimensions: number;
  private readonly baseUrl: string;
  private readonly model: string;
  private readonly apiKey: string | undefined;
  private readonly fetchFn: typeof fetch;

  constructor(options: {
    baseUrl: string;
    model: string;
    dimensions: number;
    apiKey?: string;
    fetchFn?: typeof fetch;
  }) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.model = options.model;
    this.dimensions = options.dimensions;
    this.apiKey = options.apiKey;
    this.fetchFn = options.fetchFn ?? fetch;
    this.id = `openai:${options.model}`;
  }

  async embed(texts: string[]): Promise<number[][]> {
    const response = await this.fetchFn(`${this.baseUrl}/embeddings`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}),
      },
      body: JSON.stringify({ model: this.model, input: texts }),
    });
    if (!response.ok) throw new Error(`embeddings endpoint answered ${response.status}`);
    const body = (await response.json()) as { data: { index: number; embedding: number[] }[] };
    const vectors = [...body.data].sort((a, b) => a.index - b.index).map((d) => d.embedding);
    if (vectors.some((v) => v.length !== this.dimensions))
      throw new Error(`embeddings endpoint returned vectors of the wrong size (expected ${this.dimensions})`);
    return vectors;
  }
}
