import { TRIAGE_ANSWER_JSON_SCHEMA, TRIAGE_TOOL_NAME } from '../prompt.ts';
import {
  ProviderError,
  ProviderThrottledError,
  type ProviderAnswer,
  type ProviderInput,
  type TriageProvider,
} from './types.ts';

/**
 * Any OpenAI-compatible chat completions endpoint (OpenAI, Ollama, vLLM, llama.cpp server), with
 * the answer forced through a function call.
 */
export class OpenAICompatibleProvider implements TriageProvider {
  readonly name = 'openai';
  readonly kind = 'model' as const;
  readonly model: string;
  private readonly baseUrl: string;
  private readonly apiKey: string | undefined;
  private readonly fetchFn: typeof fetch;

  constructor(options: { baseUrl: string; model: string; apiKey?: string; fetchFn?: typeof fetch }) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.model = options.model;
    this.apiKey = options.apiKey;
    this.fetchFn = options.fetchFn ?? fetch;
  }

  async triage(input: ProviderInput): Promise<ProviderAnswer> {
    const started = Date.now();
    let response: Response;
    try {
      response = await this.fetchFn(`${this.baseUrl}/chat/completions`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}),
        },
        body: JSON.stringify({
          model: this.model,
          temperature: 0,
          messages: [
            { role: 'system', content: input.system },
            { role: 'user', content: input.user },
          ],
          tools: [
            {
              type: 'function',
              function: {
                name: TRIAGE_TOOL_NAME,
                description: 'Record the triage of the exception.',
                parameters: TRIAGE_ANSWER_JSON_SCHEMA,
              },
            },
          ],
          tool_choice: { type: 'function', function: { name: TRIAGE_TOOL_NAME } },
        }),
        signal: AbortSignal.timeout(60_000),
      });
    } catch (error) {
      throw new ProviderError(`${this.model}: ${(error as Error).message}`);
    }
    if (response.status === 429 || response.status === 503)
      throw new ProviderThrottledError(`${this.model}: HTTP ${response.status}`);
    if (!response.ok) throw new ProviderError(`${this.model}: HTTP ${response.status}`);
    const body = (await response.json()) as {
      choices?: { message?: { tool_calls?: { function?: { name?: string; arguments?: string } }[] } }[];
      usage?: { prompt_tokens?: number; completion_tokens?: number };
    };
    const call = body.choices?.[0]?.message?.tool_calls?.find((c) => c.function?.name === TRIAGE_TOOL_NAME);
    if (!call?.function?.arguments) throw new ProviderError(`${this.model} did not call ${TRIAGE_TOOL_NAME}`);
    let answer: unknown;
    try {
      answer = JSON.parse(call.function.arguments);
    } catch {
      throw new ProviderError(`${this.model} returned arguments that are not JSON`);
    }
    return {
      answer,
      ...(body.usage?.prompt_tokens === undefined ? {} : { inputTokens: body.usage.prompt_tokens }),
      ...(body.usage?.completion_tokens === undefined ? {} : { outputTokens: body.usage.completion_tokens }),
      latencyMs: Date.now() - started,
    };
  }
}
