import { ConverseCommand, type BedrockRuntimeClient, type ToolInputSchema } from '@aws-sdk/client-bedrock-runtime';
import { TRIAGE_ANSWER_JSON_SCHEMA, TRIAGE_TOOL_NAME } from '../prompt.ts';
import {
  ProviderError,
  ProviderThrottledError,
  type ProviderAnswer,
  type ProviderInput,
  type TriageProvider,
} from './types.ts';

const THROTTLING = new Set([
  'ThrottlingException',
  'ServiceUnavailableException',
  'ModelNotReadyException',
  'TooManyRequestsException',
]);

/** A Bedrock Guardrail applied to every call (configuration: id and version). */
export interface GuardrailRef {
  readonly id: string;
  readonly version: string;
}

/**
 * Amazon Bedrock through the Converse API. Structured output comes from a forced tool call:
 * the model must call record_triage, whose input schema is the answer schema. With a guardrail
 * configured, Converse applies it to the prompt and the answer; an intervention is a failed
 * answer (the chain moves on to its next provider), never a triage built from a blocked reply.
 */
export class BedrockConverseProvider implements TriageProvider {
  readonly name = 'bedrock';
  readonly kind = 'model' as const;
  readonly model: string;
  private readonly client: BedrockRuntimeClient;
  private readonly guardrail: GuardrailRef | undefined;

  constructor(client: BedrockRuntimeClient, modelId: string, options: { guardrail?: GuardrailRef | undefined } = {}) {
    this.client = client;
    this.model = modelId;
    this.guardrail = options.guardrail;
  }

  async triage(input: ProviderInput): Promise<ProviderAnswer> {
    let response;
    try {
      response = await this.client.send(
        new ConverseCommand({
          modelId: this.model,
          system: [{ text: input.system }],
          messages: [{ role: 'user', content: [{ text: input.user }] }],
          inferenceConfig: { maxTokens: 1200, temperature: 0 },
          ...(this.guardrail
            ? {
                guardrailConfig: {
                  guardrailIdentifier: this.guardrail.id,
                  guardrailVersion: this.guardrail.version,
                  trace: 'enabled' as const,
                },
              }
            : {}),
          toolConfig: {
            tools: [
              {
                toolSpec: {
                  name: TRIAGE_TOOL_NAME,
                  description: 'Record the triage of the exception.',
                  inputSchema: { json: TRIAGE_ANSWER_JSON_SCHEMA } as unknown as ToolInputSchema,
                },
              },
            ],
            toolChoice: { tool: { name: TRIAGE_TOOL_NAME } },
          },
        }),
      );
    } catch (error) {
      const name = (error as Error).name;
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (THROTTLING.has(name) || status === 429) throw new ProviderThrottledError(`${this.model}: ${name}`);
      throw new ProviderError(`${this.model}: ${name}: ${(error as Error).message}`);
    }
    if (response.stopReason === 'guardrail_intervened')
      throw new ProviderError(
        `${this.model}: guardrail ${this.guardrail?.id ?? ''}:${this.guardrail?.version ?? ''} intervened`,
      );
    const toolUse = response.output?.message?.content?.find((c) => c.toolUse?.name === TRIAGE_TOOL_NAME)?.toolUse;
    if (!toolUse)
      throw new ProviderError(`${this.model} did not call ${TRIAGE_TOOL_NAME} (stop reason ${response.stopReason})`);
    return {
      answer: toolUse.input,
      ...(response.usage?.inputTokens === undefined ? {} : { inputTokens: response.usage.inputTokens }),
      ...(response.usage?.outputTokens === undefined ? {} : { outputTokens: response.usage.outputTokens }),
      ...(response.metrics?.latencyMs === undefined ? {} : { latencyMs: response.metrics.latencyMs }),
    };
  }
}
