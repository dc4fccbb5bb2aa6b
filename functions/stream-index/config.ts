import { z } from 'zod';
import { flag, loadConfig, required } from '../shared/config.ts';
import { LOCAL_MASKING_SECRET } from '../shared/masking.ts';
import { ENV } from '../shared/resources.ts';

/**
 * The bucket holds each dataset's policy in force, whose sensitive fields are masked in the index
 * with the masking key: the same key as triage's (and the other region's), or the tokens would
 * differ between a document triage wrote and one this consumer rebuilt.
 */
export function streamIndexConfig(env: NodeJS.ProcessEnv = process.env) {
  const onLambda = Boolean(env.AWS_LAMBDA_FUNCTION_NAME);
  return loadConfig(
    {
      [ENV.bucket]: required,
      [ENV.maskingSecret]: onLambda
        ? z.string({ error: 'is required on AWS' }).min(32, 'must be at least 32 characters')
        : z.string().min(16).default(LOCAL_MASKING_SECRET),
      [ENV.s3ForcePathStyle]: flag,
    },
    env,
  );
}
