import { z } from 'zod';
import { flag, loadConfig, required } from '../shared/config.ts';
import { ENV } from '../shared/resources.ts';

export function ingestConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadConfig(
    {
      [ENV.reconQueueUrl]: required,
      [ENV.triageQueueUrl]: required,
      [ENV.filesTable]: required,
      [ENV.runsTable]: required,
      [ENV.idempotencyTable]: required,
      [ENV.s3ForcePathStyle]: flag,
      [ENV.failuresTable]: z.string().optional(),
      [ENV.deadLetterQueueUrl]: z.string().optional(),
    },
    env,
  );
}
