import { S3Backend, type TerraformStack } from 'cdktf';
import type { InfraConfig } from './config.ts';

/** The state key of a stack: one per stack, so stacks plan, lock and deploy independently. */
export function stateKey(config: InfraConfig, stackId: string): string {
  return `${config.state.keyPrefix}/${stackId}.tfstate`;
}

/**
 * S3 state, encrypted, with S3-native locking (`use_lockfile`, Terraform >= 1.10): no DynamoDB
 * lock table to manage. cdktf 0.21's S3Backend predates the option, hence the override.
 */
export function stateBackend(stack: TerraformStack, config: InfraConfig, stackId: string): S3Backend {
  const backend = new S3Backend(stack, {
    bucket: config.state.bucket,
    key: stateKey(config, stackId),
    region: config.state.region,
    encrypt: true,
  });
  stack.addOverride('terraform.backend.s3.use_lockfile', true);
  return backend;
}
