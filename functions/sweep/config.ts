import { z } from 'zod';
import { flag, loadConfig, required } from '../shared/config.ts';
import { ENV } from '../shared/resources.ts';

/** How old an unrecorded upload must be before it counts as missed (default 5 minutes). */
export const DEFAULT_SWEEP_MIN_AGE_SECONDS = 300;

export function sweepConfig(env: NodeJS.ProcessEnv = process.env) {
  const config = loadConfig(
    {
      [ENV.bucket]: required,
      [ENV.filesTable]: required,
      [ENV.ingestQueueUrl]: required,
      [ENV.sweepMinAgeSeconds]: z
        .string()
        .regex(/^\d{1,6}$/, 'must be a whole number of seconds')
        .default(String(DEFAULT_SWEEP_MIN_AGE_SECONDS))
        .transform(Number),
      [ENV.s3ForcePathStyle]: flag,
      AWS_REGION: z.string().default('us-east-1'),
    },
    env,
  );
  return Object.freeze({
    bucket: config[ENV.bucket],
    filesTable: config[ENV.filesTable],
    ingestQueueUrl: config[ENV.ingestQueueUrl],
    minAgeMs: config[ENV.sweepMinAgeSeconds] * 1000,
    s3ForcePathStyle: config[ENV.s3ForcePathStyle],
    region: config.AWS_REGION,
  });
}
