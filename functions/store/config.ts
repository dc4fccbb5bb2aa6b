import { z } from 'zod';
import { flag, loadConfig, required } from '../shared/config.ts';
import { ENV } from '../shared/resources.ts';

export function storeConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadConfig(
    {
      [ENV.triageQueueUrl]: required,
      [ENV.businessEventsTopicArn]: required,
      [ENV.filesTable]: required,
      [ENV.runsTable]: required,
      [ENV.exceptionsTable]: required,
      [ENV.s3ForcePathStyle]: flag,
      [ENV.failuresTable]: z.string().optional(),
      [ENV.deadLetterQueueUrl]: z.string().optional(),
    },
    env,
  );
}
