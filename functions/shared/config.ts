import { z } from 'zod';

/**
 * Reads and validates a function's environment once. Every missing or malformed variable is
 * named in one error, so a misconfigured deployment fails on its first cold start, loudly.
 */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function loadConfig<T extends z.ZodRawShape>(
  shape: T,
  env: NodeJS.ProcessEnv = process.env,
): Readonly<z.infer<z.ZodObject<T>>> {
  const parsed = z.object(shape).safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  return Object.freeze(parsed.data);
}

export const required = z.string({ error: 'is required' }).min(1, 'is required');
export const flag = z
  .enum(['true', 'false'])
  .default('false')
  .transform((v) => v === 'true');
