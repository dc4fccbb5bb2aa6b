/**
 * A random key generated once by Secrets Manager and kept there (encrypted with our key). The
 * query API reads it from its environment (functions/query-api/config.ts), so it is also in the
 * Lambda configuration (KMS-encrypted) and the Terraform state (encrypted S3): rotate it by
 * tainting the secret version; outstanding page cursors then stop validating, nothing else.
 */
import { Construct } from 'constructs';
import { DataAwsSecretsmanagerRandomPassword } from '@cdktf/provider-aws/lib/data-aws-secretsmanager-random-password/index.js';
import { SecretsmanagerSecret } from '@cdktf/provider-aws/lib/secretsmanager-secret/index.js';
import { SecretsmanagerSecretVersion } from '@cdktf/provider-aws/lib/secretsmanager-secret-version/index.js';

export class PaginationSecret extends Construct {
  readonly value: string;

  constructor(scope: Construct, id: string, props: { name: string; kmsKeyArn: string }) {
    super(scope, id);
    const random = new DataAwsSecretsmanagerRandomPassword(this, 'random', {
      passwordLength: 64,
      excludePunctuation: true,
    });
    const secret = new SecretsmanagerSecret(this, 'secret', {
      name: props.name,
      kmsKeyId: props.kmsKeyArn,
      recoveryWindowInDays: 7,
    });
    const version = new SecretsmanagerSecretVersion(this, 'version', {
      secretId: secret.id,
      secretString: random.randomPassword,
      // The data source draws a new password on every plan; keep the first one.
      lifecycle: { ignoreChanges: ['secret_string'] },
    });
    this.value = version.secretString;
  }
}
