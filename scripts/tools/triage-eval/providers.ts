/**
 * The chains the evaluation runs, in the syntax of TALLY_TRIAGE_PROVIDERS (`bedrock:<model id>`,
 * `openai:<model>`, `rules`) plus `fixture[:<recording.json>]`, built from the real provider classes
 * and ended by rules exactly as the triage handler ends every chain. What a real provider needs
 * (credentials, a region, an endpoint) is checked up front and named, rather than discovered as 47
 * failed calls.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { ENV } from '../../../functions/shared/resources.ts';
import type { ReconPolicy } from '../../../functions/shared/policy.ts';
import { BedrockConverseProvider } from '../../../functions/triage/providers/bedrock.ts';
import { OpenAICompatibleProvider } from '../../../functions/triage/providers/openai.ts';
import { RulesProvider } from '../../../functions/triage/providers/rules.ts';
import type { TriageProvider } from '../../../functions/triage/providers/types.ts';
import { DEFAULT_RECORDING, FixtureProvider, loadRecording } from './fixture-provider.ts';

export type ProviderEntry =
  | { readonly kind: 'bedrock' | 'openai'; readonly model: string }
  | { readonly kind: 'rules' }
  | { readonly kind: 'fixture'; readonly recording: string };

/** A chain as the user wrote it, and what it was parsed into. */
export interface ChainSpec {
  readonly label: string;
  readonly entries: readonly ProviderEntry[];
}

export class EvalUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EvalUsageError';
  }
}

export function parseChain(text: string): ChainSpec {
  const entries = text
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)
    .map((entry): ProviderEntry => {
      const [kind, ...rest] = entry.split(':');
      const model = rest.join(':');
      if (kind === 'rules' && model === '') return { kind };
      if ((kind === 'bedrock' || kind === 'openai') && model !== '') return { kind, model };
      if (kind === 'fixture') return { kind, recording: model === '' ? DEFAULT_RECORDING : model };
      throw new EvalUsageError(
        `"${entry}" is not a provider; expected bedrock:<model id>, openai:<model>, rules or fixture[:<recording.json>]`,
      );
    });
  if (entries.length === 0) throw new EvalUsageError(`no provider in "${text}"`);
  return { label: entries.map(entryLabel).join(','), entries };
}

function entryLabel(e: ProviderEntry): string {
  if (e.kind === 'rules') return 'rules';
  if (e.kind === 'fixture') return e.recording === DEFAULT_RECORDING ? 'fixture' : `fixture:${e.recording}`;
  return `${e.kind}:${e.model}`;
}

/** What is missing for the chain's real providers to be called: one line per problem. */
export function missingRequirements(spec: ChainSpec, env: NodeJS.ProcessEnv): string[] {
  const problems: string[] = [];
  for (const e of spec.entries) {
    if (e.kind === 'bedrock') {
      const credentials =
        (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) ||
        env.AWS_PROFILE ||
        env.AWS_WEB_IDENTITY_TOKEN_FILE ||
        env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI ||
        env.AWS_CONTAINER_CREDENTIALS_FULL_URI ||
        existsSync(env.AWS_SHARED_CREDENTIALS_FILE ?? join(homedir(), '.aws', 'credentials'));
      if (!credentials)
        problems.push(
          `bedrock:${e.model} needs AWS credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or ~/.aws/credentials) with bedrock:InvokeModel on the model`,
        );
      if (!env.AWS_REGION && !env.AWS_DEFAULT_REGION)
        problems.push(`bedrock:${e.model} needs a region where the model is enabled (AWS_REGION)`);
    }
    if (e.kind === 'openai' && !env[ENV.openaiBaseUrl])
      problems.push(
        `openai:${e.model} needs ${ENV.openaiBaseUrl} (an OpenAI-compatible endpoint, e.g. https://api.openai.com/v1 or a local Ollama) and, if it asks for one, ${ENV.openaiApiKey}`,
      );
    if (e.kind === 'fixture' && !existsSync(e.recording)) problems.push(`fixture: no recording at ${e.recording}`);
  }
  return problems;
}

/**
 * The providers of a chain, rules last (nothing is left untriaged). `itemOf` maps an exception id
 * to its golden item, which is how recordings are keyed.
 */
export function buildProviders(
  spec: ChainSpec,
  deps: {
    readonly env: NodeJS.ProcessEnv;
    readonly policy: Pick<ReconPolicy, 'amountTolerance'>;
    readonly itemOf: (exceptionId: string) => string | undefined;
  },
): TriageProvider[] {
  let bedrock: BedrockRuntimeClient | undefined;
  const providers = spec.entries.map((e): TriageProvider => {
    switch (e.kind) {
      case 'bedrock':
        // One attempt per SDK call, as in the handler: the chain owns retries.
        bedrock ??= new BedrockRuntimeClient({ maxAttempts: 1 });
        return new BedrockConverseProvider(bedrock, e.model);
      case 'openai': {
        const apiKey = deps.env[ENV.openaiApiKey];
        return new OpenAICompatibleProvider({
          baseUrl: deps.env[ENV.openaiBaseUrl] ?? '',
          model: e.model,
          ...(apiKey ? { apiKey } : {}),
        });
      }
      case 'fixture':
        return new FixtureProvider(loadRecording(e.recording), deps.itemOf);
      case 'rules':
        return new RulesProvider(deps.policy);
    }
  });
  if (!providers.some((p) => p.kind === 'rules')) providers.push(new RulesProvider(deps.policy));
  return providers;
}
