import { z } from 'zod';
import { loadConfig } from '../shared/config.ts';
import { ENV } from '../shared/resources.ts';

/** Comma-separated webhook URLs; https only on Lambda (a chat webhook's secret travels in the URL). */
export function notifyConfig(env: NodeJS.ProcessEnv = process.env) {
  const onLambda = env.AWS_LAMBDA_FUNCTION_NAME !== undefined;
  const url = z
    .string()
    .url()
    .refine((u) => !onLambda || u.startsWith('https://'), 'must be an https URL');
  return loadConfig(
    {
      [ENV.webhookUrls]: z
        .string()
        .default('')
        .transform((s) =>
          s
            .split(',')
            .map((u) => u.trim())
            .filter((u) => u !== ''),
        )
        .pipe(z.array(url)),
      [ENV.failuresTable]: z.string().optional(),
      [ENV.deadLetterQueueUrl]: z.string().optional(),
    },
    env,
  );
}
