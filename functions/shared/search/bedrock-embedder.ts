import type { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { InvokeModelCommand } from '@aws-sdk/client-bedrock-runtime';
import type { Embedder } from './ports.ts';

/** Amazon Titan Text Embeddings V2 through Bedrock: 1024 dimensions, normalised. */
export class BedrockTitanEmbedder implements Embedder {
  readonly id: string;
  readonly dimensions = 1024;
  private readonly client: BedrockRuntimeClient;
  private readonly modelId: string;

  constructor(client: BedrockRuntimeClient, modelId = 'amazon.titan-embed-text-v2:0') {
    this.client = client;
    this.modelId = modelId;
    this.id = modelId;
  }

  async embed(texts: string[]): Promise<number[][]> {
    // Titan takes one text per call; a few in parallel keeps a batch quick without throttling.
    const out: number[][] = new Array(texts.length);
    let next = 0;
    const worker = async () => {
      while (next < texts.length) {
        const i = next++;
        const response = await this.client.send(
          new InvokeModelCommand({
            modelId: this.modelId,
            contentType: 'application/json',
            accept: 'application/json',
            body: JSON.stringify({
              inputText: (texts[i] as string).slice(0, 50_000),
              dimensions: this.dimensions,
              normalize: true,
            }),
          }),
        );
        out[i] = (JSON.parse(new TextDecoder().decode(response.body)) as { embedding: number[] }).embedding;
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, texts.length) }, worker));
    return out;
  }
}
