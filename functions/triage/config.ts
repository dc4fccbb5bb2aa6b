import { z } from 'zod';
import { loadConfig, required } from '../shared/config.ts';
import { LOCAL_MASKING_SECRET } from '../shared/masking.ts';
import { ENV } from '../shared/resources.ts';

/** Provider chain syntax: comma-separated `bedrock:<model id>`, `openai:<model>`, `rules`. */
const providerChain = z
  .string()
  .default('rules')
  .transform((s, ctx) => {
    const entries = s
      .split(',')
      .map((e) => e.trim())
      .filter(Boolean);
    const parsed = entries.map((entry) => {
      const [kind, ...rest] = entry.split(':');
      const model = rest.join(':');
      if (kind === 'rules' && model === '') return { kind: 'rules' as const, model: '' };
      if ((kind === 'bedrock' || kind === 'openai') && model !== '') return { kind, model };
      ctx.addIssue({
        code: 'custom',
        message: `"${entry}" is not a provider; expected bedrock:<model id>, openai:<model> or rules`,
      });
      return undefined;
    });
    return parsed.filter((p) => p !== undefined);
  });

export function triageConfig(env: NodeJS.ProcessEnv = process.env) {
  const onLambda = Boolean(env.AWS_LAMBDA_FUNCTION_NAME);
  return loadConfig(
    {
      [ENV.bucket]: required,
      [ENV.maskingSecret]: onLambda
        ? z.string({ error: 'is required on AWS' }).min(32, 'must be at least 32 characters')
        : z.string().min(16).default(LOCAL_MASKING_SECRET),
      [ENV.exceptionsTable]: required,
      [ENV.circuitBreakerTable]: required,
      [ENV.triageProviders]: providerChain,
      [ENV.bedrockGuardrail]: z
        .string()
        .regex(/^[a-z0-9]+:(DRAFT|\d+)$/, 'must be <guardrail id>:<version>, e.g. gr1abc2def3:1')
        .transform((s) => {
          const [id, version] = s.split(':') as [string, string];
          return { id, version };
        })
        .optional(),
      [ENV.openaiBaseUrl]: z.string().url().optional(),
      [ENV.openaiApiKey]: z.string().optional(),
      [ENV.reconPolicyPath]: z.string().default('policies/recon-policy.md'),
      [ENV.failuresTable]: z.string().optional(),
      [ENV.deadLetterQueueUrl]: z.string().optional(),
      [ENV.breakerThreshold]: z.coerce.number().int().positive().default(3),
      [ENV.breakerCooldownSeconds]: z.coerce.number().int().positive().default(60),
    },
    env,
  );
}
