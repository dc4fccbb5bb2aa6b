import { z } from 'zod';
import { flag, loadConfig, required } from '../shared/config.ts';
import { ENV } from '../shared/resources.ts';
import { DEFAULT_CHUNK_FINDINGS } from './chunks.ts';

export function reconConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadConfig(
    {
      [ENV.storeQueueUrl]: required,
      [ENV.chunkFindings]: z.coerce.number().int().positive().default(DEFAULT_CHUNK_FINDINGS),
      [ENV.filesTable]: required,
      [ENV.runsTable]: required,
      [ENV.s3ForcePathStyle]: flag,
      [ENV.failuresTable]: z.string().optional(),
      [ENV.deadLetterQueueUrl]: z.string().optional(),
      [ENV.reconMemoryBudgetBytes]: z.coerce.number().int().positive().optional(),
      [ENV.reconTmpDir]: z.string().min(1).optional(),
    },
    env,
  );
}
