import { z } from 'zod';
import { ConfigError, flag, loadConfig, required } from '../shared/config.ts';
import { ENV } from '../shared/resources.ts';
import { DEFAULT_CHUNK_FINDINGS } from './chunks.ts';

export function reconConfig(env: NodeJS.ProcessEnv = process.env) {
  const config = loadConfig(
    {
      [ENV.storeQueueUrl]: required,
      [ENV.chunkFindings]: z.coerce.number().int().positive().default(DEFAULT_CHUNK_FINDINGS),
      [ENV.filesTable]: required,
      [ENV.runsTable]: required,
      [ENV.patternsTable]: required,
      [ENV.s3ForcePathStyle]: flag,
      [ENV.failuresTable]: z.string().optional(),
      [ENV.deadLetterQueueUrl]: z.string().optional(),
      [ENV.reconMemoryBudgetBytes]: z.coerce.number().int().positive().optional(),
      [ENV.reconTmpDir]: z.string().min(1).optional(),
      // AWS only: runs above a dataset's engine.large_above_bytes go to Athena, their checks
      // re-enqueued on the recon queue itself (infra/access.ts: recon sendsTo recon).
      [ENV.athenaWorkgroup]: z.string().min(1).optional(),
      [ENV.reconQueueUrl]: z.string().min(1).optional(),
    },
    env,
  );
  if (config[ENV.athenaWorkgroup] !== undefined && config[ENV.reconQueueUrl] === undefined)
    throw new ConfigError(`invalid configuration: ${ENV.reconQueueUrl}: is required with ${ENV.athenaWorkgroup}`);
  return config;
}
