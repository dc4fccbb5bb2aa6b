import { flag, loadConfig, required } from '../shared/config.ts';
import { ENV } from '../shared/resources.ts';

export function deadlinesConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadConfig(
    {
      [ENV.bucket]: required,
      [ENV.exceptionsTable]: required,
      [ENV.circuitBreakerTable]: required,
      [ENV.triageQueueUrl]: required,
      [ENV.businessEventsTopicArn]: required,
      [ENV.s3ForcePathStyle]: flag,
    },
    env,
  );
}
