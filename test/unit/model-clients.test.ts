/**
 * The HTTP-shaped model clients: the OpenAI-compatible chat provider and embedder (with a fake
 * fetch), and the Titan embedder (with a mocked Bedrock client).
 */
import { describe, expect, it } from 'vitest';
import { mockClient } from 'aws-sdk-client-mock';
import {
  BedrockRuntimeClient,
  ConverseCommand,
  InvokeModelCommand,
  type InvokeModelCommandInput,
} from '@aws-sdk/client-bedrock-runtime';
import { BedrockConverseProvider } from '../../functions/triage/providers/bedrock.ts';
import { OpenAICompatibleProvider } from '../../functions/triage/providers/openai.ts';
import { ProviderError, ProviderThrottledError } from '../../functions/triage/providers/types.ts';
import { TRIAGE_TOOL_NAME } from '../../functions/triage/prompt.ts';
import { OpenAICompatibleEmbedder } from '../../functions/shared/search/openai-embedder.ts';
import { BedrockTitanEmbedder } from '../../functions/shared/search/bedrock-embedder.ts';
import type { ExceptionRecord } from '../../functions/shared/types.ts';

function fakeFetch(
  status: number,
  body: unknown,
  seen: { url?: string; body?: unknown; headers?: unknown }[] = [],
): typeof fetch {
  return (async (url: string | URL, init?: RequestInit) => {
    seen.push({ url: String(url), body: JSON.parse(String(init?.body ?? 'null')), headers: init?.headers });
    return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
}

function bodyText(body: unknown): string {
  return typeof body === 'string' ? body : new TextDecoder().decode(body as Uint8Array);
}

const input = { exception: {} as ExceptionRecord, passages: [], system: 'sys', user: 'usr' };

describe('OpenAI-compatible triage provider', () => {
  it('forces the record_triage function and returns its arguments with token usage', async () => {
    const seen: { url?: string; body?: unknown; headers?: unknown }[] = [];
    const provider = new OpenAICompatibleProvider({
      baseUrl: 'http://127.0.0.1:11434/v1/',
      model: 'llama3.1',
      apiKey: 'k',
      fetchFn: fakeFetch(
        200,
        {
          choices: [
            { message: { tool_calls: [{ function: { name: TRIAGE_TOOL_NAME, arguments: '{"severity":"LOW"}' } }] } },
          ],
          usage: { prompt_tokens: 10, completion_tokens: 5 },
        },
        seen,
      ),
    });

    const answer = await provider.triage(input);

    expect(answer).toMatchObject({ answer: { severity: 'LOW' }, inputTokens: 10, outputTokens: 5 });
    expect(seen[0]?.url).toBe('http://127.0.0.1:11434/v1/chat/completions');
    expect(seen[0]?.body).toMatchObject({
      model: 'llama3.1',
      temperature: 0,
      tool_choice: { type: 'function', function: { name: TRIAGE_TOOL_NAME } },
    });
    expect(seen[0]?.headers).toMatchObject({ authorization: 'Bearer k' });
  });

  it('reports 429 as throttling and other failures as provider errors', async () => {
    const throttled = new OpenAICompatibleProvider({ baseUrl: 'http://x', model: 'm', fetchFn: fakeFetch(429, {}) });
    const broken = new OpenAICompatibleProvider({ baseUrl: 'http://x', model: 'm', fetchFn: fakeFetch(500, {}) });
    const noTool = new OpenAICompatibleProvider({
      baseUrl: 'http://x',
      model: 'm',
      fetchFn: fakeFetch(200, { choices: [{ message: { content: 'hi' } }] }),
    });
    const badJson = new OpenAICompatibleProvider({
      baseUrl: 'http://x',
      model: 'm',
      fetchFn: fakeFetch(200, {
        choices: [{ message: { tool_calls: [{ function: { name: TRIAGE_TOOL_NAME, arguments: '{oops' } }] } }],
      }),
    });

    await expect(throttled.triage(input)).rejects.toBeInstanceOf(ProviderThrottledError);
    await expect(broken.triage(input)).rejects.toBeInstanceOf(ProviderError);
    await expect(noTool.triage(input)).rejects.toThrow(/did not call/);
    await expect(badJson.triage(input)).rejects.toThrow(/not JSON/);
  });
});

describe('embedders', () => {
  it('OpenAI-compatible: returns vectors in input order and checks their size', async () => {
    const embedder = new OpenAICompatibleEmbedder({
      baseUrl: 'http://x/v1',
      model: 'nomic-embed-text',
      dimensions: 2,
      fetchFn: fakeFetch(200, {
        data: [
          { index: 1, embedding: [0, 1] },
          { index: 0, embedding: [1, 0] },
        ],
      }),
    });
    const wrongSize = new OpenAICompatibleEmbedder({
      baseUrl: 'http://x/v1',
      model: 'm',
      dimensions: 3,
      fetchFn: fakeFetch(200, { data: [{ index: 0, embedding: [1, 0] }] }),
    });

    expect(await embedder.embed(['a', 'b'])).toEqual([
      [1, 0],
      [0, 1],
    ]);
    await expect(wrongSize.embed(['a'])).rejects.toThrow(/wrong size/);
  });

  it('Titan V2: one normalised 1024-dimension request per text', async () => {
    const bedrock = mockClient(BedrockRuntimeClient);
    bedrock.on(InvokeModelCommand).callsFake(async (req: InvokeModelCommandInput) => {
      const { inputText } = JSON.parse(bodyText(req.body)) as { inputText: string };
      return {
        body: new TextEncoder().encode(JSON.stringify({ embedding: [inputText.length] })),
        contentType: 'application/json',
        $metadata: {},
      };
    });
    const embedder = new BedrockTitanEmbedder(new BedrockRuntimeClient({ region: 'us-east-1' }));

    const vectors = await embedder.embed(['a', 'bbb', 'cc']);

    expect(vectors).toEqual([[1], [3], [2]]);
    const sent = bedrock.commandCalls(InvokeModelCommand).map((c) => JSON.parse(bodyText(c.args[0].input.body)));
    expect(sent.every((b) => b.dimensions === 1024 && b.normalize === true)).toBe(true);
    expect(bedrock.commandCalls(InvokeModelCommand)[0]?.args[0].input.modelId).toBe('amazon.titan-embed-text-v2:0');
  });
});

describe('Bedrock Converse triage provider with a guardrail', () => {
  const answer = {
    severity: 'HIGH',
    summary: 's',
    recommended_actions: [],
    root_cause_hypotheses: [],
    policy_citations: ['P1'],
  };

  it('passes the configured guardrail to Converse and returns the tool answer', async () => {
    const bedrock = mockClient(BedrockRuntimeClient);
    bedrock.on(ConverseCommand).resolves({
      stopReason: 'tool_use',
      output: {
        message: {
          role: 'assistant',
          content: [{ toolUse: { toolUseId: 't', name: TRIAGE_TOOL_NAME, input: answer } }],
        },
      },
      usage: { inputTokens: 10, outputTokens: 5, totalTokens: 15 },
      metrics: { latencyMs: 3 },
    } as never);
    const provider = new BedrockConverseProvider(
      new BedrockRuntimeClient({ region: 'us-east-1' }),
      'amazon.nova-micro-v1:0',
      {
        guardrail: { id: 'gr-1', version: '2' },
      },
    );
    const out = await provider.triage(input);
    expect(out.answer).toEqual(answer);
    const sent = bedrock.commandCalls(ConverseCommand)[0]!.args[0].input;
    expect(sent.guardrailConfig).toEqual({ guardrailIdentifier: 'gr-1', guardrailVersion: '2', trace: 'enabled' });
    bedrock.restore();
  });

  it('counts a guardrail intervention as a failed answer, and sends no guardrail when none is configured', async () => {
    const bedrock = mockClient(BedrockRuntimeClient);
    bedrock.on(ConverseCommand).resolves({
      stopReason: 'guardrail_intervened',
      output: { message: { role: 'assistant', content: [{ text: 'blocked' }] } },
    } as never);
    const guarded = new BedrockConverseProvider(new BedrockRuntimeClient({ region: 'us-east-1' }), 'm', {
      guardrail: { id: 'gr-1', version: 'DRAFT' },
    });
    await expect(guarded.triage(input)).rejects.toThrow(ProviderError);
    await expect(guarded.triage(input)).rejects.toThrow(/guardrail gr-1:DRAFT intervened/);
    const plain = new BedrockConverseProvider(new BedrockRuntimeClient({ region: 'us-east-1' }), 'm');
    await expect(plain.triage(input)).rejects.toThrow(ProviderError);
    expect(bedrock.commandCalls(ConverseCommand).at(-1)!.args[0].input.guardrailConfig).toBeUndefined();
    bedrock.restore();
  });
});
