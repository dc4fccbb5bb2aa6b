/**
 * A random key generated once by Secrets Manager and kept there (encrypted with our key). The
 * functions read it from their environment, so it is also in the Lambda configuration
 * (KMS-encrypted) and the Terraform state (encrypted S3). Two exist per region:
 * - the pagination key (functions/query-api/config.ts): rotate by tainting the secret version;
 *   outstanding page cursors then stop validating, nothing else;
 * - the masking key (functions/shared/masking.ts): rotating it changes every token, so exceptions
 *   indexed before no longer match a search for their sensitive values until re-triaged.
 * With `replicas`, Secrets Manager keeps a copy of the secret (same name, same value) in each
 * other region, encrypted with a key there; that region's stack reads the replica by name
 * (`replicaSecretValue`), so both regions hold one key: the pagination cursors a client holds
 * keep validating after failover (issue 15).
 */
import { Construct } from 'constructs';
import { DataAwsSecretsmanagerRandomPassword } from '@cdktf/provider-aws/lib/data-aws-secretsmanager-random-password/index.js';
import { DataAwsSecretsmanagerSecretVersion } from '@cdktf/provider-aws/lib/data-aws-secretsmanager-secret-version/index.js';
import { SecretsmanagerSecret } from '@cdktf/provider-aws/lib/secretsmanager-secret/index.js';
import { SecretsmanagerSecretVersion } from '@cdktf/provider-aws/lib/secretsmanager-secret-version/index.js';

export class RandomSecret extends Construct {
  readonly value: string;

  constructor(
    scope: Construct,
    id: string,
    props: {
      name: string;
      kmsKeyArn: string;
      /** Regions that hold a replica, each encrypted with a key of its own region. */
      replicas?: readonly { readonly region: string; readonly kmsKeyArn: string }[];
    },
  ) {
    super(scope, id);
    const random = new DataAwsSecretsmanagerRandomPassword(this, 'random', {
      passwordLength: 64,
      excludePunctuation: true,
    });
    const secret = new SecretsmanagerSecret(this, 'secret', {
      name: props.name,
      kmsKeyId: props.kmsKeyArn,
      recoveryWindowInDays: 7,
      ...(props.replicas && props.replicas.length > 0
        ? {
            replica: props.replicas.map((r) => ({ region: r.region, kmsKeyId: r.kmsKeyArn })),
            // A region that had a secret of its own by this name (before issue 15) takes the replica over.
            forceOverwriteReplicaSecret: true,
          }
        : {}),
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

/** The current value of a secret replicated here from another region's stack (read by name). */
export function replicaSecretValue(scope: Construct, id: string, name: string): string {
  return new DataAwsSecretsmanagerSecretVersion(scope, id, { secretId: name }).secretString;
}
