/**
 * Reads the synthesised stacks the way `terraform apply` would leave them, for the parity test:
 * every `${type.id.attribute}` in a Lambda's environment, its role's policy and the collection's
 * data access policy becomes the concrete value AWS would have (an ARN in a fixed account, a
 * name), with the endpoints replaced by the local ones. A reference this does not know fails
 * the test: new wiring must be taught here rather than silently passed over.
 */
import type { Json } from '../infra/synth.ts';

export const ACCOUNT = '123456789012';

export interface LocalEndpoints {
  /** Queue URLs on the emulator, by queue name. */
  readonly queueUrls: Readonly<Record<string, string>>;
  /** What the collection endpoint stands for (the recording proxy). */
  readonly collectionEndpoint: string;
  /** The value of secrets drawn at apply time (the pagination key). */
  readonly secret: string;
}

export interface Statement {
  readonly sid: string;
  readonly actions: string[];
  readonly resources: string[];
  readonly conditions: { test: string; variable: string; values: string[] }[];
}

export interface DeployedFunction {
  readonly name: string;
  readonly region: string;
  readonly functionName: string;
  readonly memoryMb: number;
  readonly timeoutSeconds: number;
  readonly logGroup: string;
  readonly environment: Record<string, string>;
  readonly roleArn: string;
  readonly statements: Statement[];
  /** Data access rules naming this role: index resource -> permissions. */
  readonly searchRules: { resource: string; permissions: string[] }[];
  /** The regional key (bucket, queues). */
  readonly dataKeyArn: string;
  /** The key each table's data is encrypted with in this region (the table's, or its replica's). */
  readonly tableKeys: Readonly<Record<string, string>>;
}

interface StackRef {
  readonly id: string;
  readonly json: Json;
}

const REFERENCE = /\$\{(data\.)?([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z0-9_]+)\}/g;

export class TerraformState {
  private readonly stacks: readonly StackRef[];
  private readonly local: LocalEndpoints;

  constructor(stacks: readonly StackRef[], local: LocalEndpoints) {
    this.stacks = stacks;
    this.local = local;
  }

  regionOf(stack: StackRef, block?: Json): string {
    const providers = stack.json.provider.aws as Json[];
    const alias = typeof block?.provider === 'string' ? (block.provider as string).replace(/^aws\./, '') : undefined;
    const provider = alias ? providers.find((p) => p.alias === alias) : providers.find((p) => !p.alias);
    if (!provider) throw new Error(`no provider ${alias ?? '(default)'} in ${stack.id}`);
    return provider.region as string;
  }

  /** Replaces every reference in `text` with its applied value. */
  resolve(stack: StackRef, text: string): string {
    return text.replace(REFERENCE, (whole, data: string | undefined, type: string, id: string, attribute: string) =>
      data ? this.dataValue(stack, type, id, attribute, whole) : this.resourceValue(stack, type, id, attribute, whole),
    );
  }

  private block(stack: StackRef, kind: 'resource' | 'data', type: string, id: string, whole: string): Json {
    const block = stack.json[kind]?.[type]?.[id] as Json | undefined;
    if (!block) throw new Error(`dangling reference ${whole} in ${stack.id}`);
    return block;
  }

  private resourceValue(stack: StackRef, type: string, id: string, attribute: string, whole: string): string {
    const r = this.block(stack, 'resource', type, id, whole);
    const region = this.regionOf(stack, r);
    const key = `${type}.${attribute}`;
    switch (key) {
      case 'aws_sqs_queue.url': {
        const url = this.local.queueUrls[r.name as string];
        if (!url) throw new Error(`queue ${r.name} is not on the emulator`);
        return url;
      }
      case 'aws_sqs_queue.arn':
        return `arn:aws:sqs:${region}:${ACCOUNT}:${r.name}`;
      case 'aws_dynamodb_table.name':
        return r.name as string;
      case 'aws_dynamodb_table.arn':
        return `arn:aws:dynamodb:${region}:${ACCOUNT}:table/${r.name}`;
      case 'aws_s3_bucket.arn':
        return `arn:aws:s3:::${r.bucket}`;
      case 'aws_s3_bucket.bucket':
      case 'aws_s3_bucket.id':
        return r.bucket as string;
      case 'aws_kms_key.arn':
      case 'aws_kms_replica_key.arn':
        return `arn:aws:kms:${region}:${ACCOUNT}:key/${stack.id}.${id}`;
      case 'aws_kms_key.key_id':
      case 'aws_kms_replica_key.key_id':
        return `${stack.id}.${id}`;
      case 'aws_opensearchserverless_collection.collection_endpoint':
        return this.local.collectionEndpoint;
      case 'aws_opensearchserverless_collection.arn':
        return `arn:aws:aoss:${region}:${ACCOUNT}:collection/${r.name}`;
      case 'aws_secretsmanager_secret_version.secret_string':
        return this.local.secret;
      case 'aws_iam_role.arn':
        return `arn:aws:iam::${ACCOUNT}:role/${r.name}`;
      case 'aws_cloudwatch_log_group.arn':
        return `arn:aws:logs:${region}:${ACCOUNT}:log-group:${r.name}`;
      case 'aws_cloudwatch_log_group.name':
        return r.name as string;
      case 'aws_athena_workgroup.name':
        return r.name as string;
      case 'aws_sns_topic.arn':
        return `arn:aws:sns:${region}:${ACCOUNT}:${r.name}`;
      case 'aws_athena_workgroup.arn':
        return `arn:aws:athena:${region}:${ACCOUNT}:workgroup/${r.name}`;
      case 'aws_ssm_parameter.name':
        return r.name as string;
      case 'aws_ssm_parameter.arn':
        // A parameter named by a path (/a/b) has the ARN ...:parameter/a/b.
        return `arn:aws:ssm:${region}:${ACCOUNT}:parameter/${(r.name as string).replace(/^\//, '')}`;
      default:
        throw new Error(`the parity test cannot resolve ${whole}: teach test/parity/terraform.ts`);
    }
  }

  private dataValue(stack: StackRef, type: string, id: string, attribute: string, whole: string): string {
    const d = this.block(stack, 'data', type, id, whole);
    switch (`${type}.${attribute}`) {
      case 'aws_caller_identity.account_id':
        return ACCOUNT;
      case 'aws_partition.partition':
        return 'aws';
      case 'aws_secretsmanager_secret_version.secret_string':
        // A replica of a secret another stack draws (the pagination key): the same value.
        return this.local.secret;
      case 'aws_kms_alias.target_key_arn': {
        // The alias is created elsewhere (the primary's stack makes the replica key and its alias).
        const region = this.regionOf(stack);
        for (const other of this.stacks) {
          for (const alias of Object.values((other.json.resource?.aws_kms_alias ?? {}) as Record<string, Json>)) {
            if (alias.name !== d.name || this.regionOf(other, alias) !== region) continue;
            const keyRef = /^\$\{(aws_kms_(?:replica_)?key)\.([^.]+)\.key_id\}$/.exec(alias.target_key_id as string);
            if (!keyRef) throw new Error(`alias ${d.name} targets ${alias.target_key_id}`);
            return this.resourceValue(other, keyRef[1] as string, keyRef[2] as string, 'arn', whole);
          }
        }
        throw new Error(`no stack creates the KMS alias ${d.name} in ${region}`);
      }
      default:
        throw new Error(`the parity test cannot resolve ${whole}: teach test/parity/terraform.ts`);
    }
  }

  /** Table name -> the KMS key its data in `region` is encrypted with. */
  private tableKeys(region: string): Record<string, string> {
    const keys: Record<string, string> = {};
    for (const owner of this.stacks) {
      for (const table of Object.values((owner.json.resource?.aws_dynamodb_table ?? {}) as Record<string, Json>)) {
        const sse = (
          Array.isArray(table.server_side_encryption) ? table.server_side_encryption[0] : table.server_side_encryption
        ) as Json;
        if (this.regionOf(owner, table) === region)
          keys[table.name as string] = this.resolve(owner, sse.kms_key_arn as string);
        for (const replica of (table.replica ?? []) as Json[])
          if (replica.region_name === region)
            keys[table.name as string] = this.resolve(owner, replica.kms_key_arn as string);
      }
    }
    return keys;
  }

  /** Every Lambda function of a stack as AWS would run it. */
  functions(stack: StackRef, prefix: string): DeployedFunction[] {
    const region = this.regionOf(stack);
    const accessPolicies = Object.values(
      (stack.json.resource?.aws_opensearchserverless_access_policy ?? {}) as Record<string, Json>,
    ).flatMap(
      (p) =>
        JSON.parse(this.resolve(stack, p.policy as string)) as {
          Rules: { ResourceType: string; Resource: string[]; Permission: string[] }[];
          Principal: string[];
        }[],
    );
    const tableKeys = this.tableKeys(region);
    const dataKeys = Object.keys((stack.json.resource?.aws_kms_key ?? {}) as object);
    if (dataKeys.length !== 1)
      throw new Error(`${stack.id} has ${dataKeys.length} KMS keys, expected its one data key`);
    const dataKeyArn = this.resourceValue(stack, 'aws_kms_key', dataKeys[0] as string, 'arn', 'data key');
    const rolePolicies = Object.values((stack.json.resource?.aws_iam_role_policy ?? {}) as Record<string, Json>);
    return Object.values((stack.json.resource?.aws_lambda_function ?? {}) as Record<string, Json>).map((fn) => {
      const roleArn = this.resolve(stack, fn.role as string);
      const roleRef = /^\$\{aws_iam_role\.([^.]+)\.arn\}$/.exec(fn.role as string)?.[1];
      const policy = rolePolicies.find((p) => p.role === `\${aws_iam_role.${roleRef}.id}`);
      if (!policy) throw new Error(`no policy for ${fn.function_name}`);
      const documentId = /data\.aws_iam_policy_document\.([^.]+)\.json/.exec(policy.policy as string)?.[1] as string;
      const document = stack.json.data.aws_iam_policy_document[documentId] as Json;
      const statements = (document.statement as Json[]).map((s) => ({
        sid: s.sid as string,
        actions: s.actions as string[],
        resources: ((s.resources ?? []) as string[]).map((r) => this.resolve(stack, r)),
        conditions: ((s.condition ?? []) as Json[]).map((c) => ({
          test: c.test as string,
          variable: c.variable as string,
          values: (c.values as string[]).map((v) => this.resolve(stack, v)),
        })),
      }));
      const environment = Object.fromEntries(
        Object.entries((fn.environment?.variables ?? {}) as Record<string, string>).map(([k, v]) => [
          k,
          this.resolve(stack, v),
        ]),
      );
      return {
        name: (fn.function_name as string).slice(prefix.length + 1),
        region,
        functionName: fn.function_name as string,
        memoryMb: fn.memory_size as number,
        timeoutSeconds: fn.timeout as number,
        logGroup: this.resolve(stack, (fn.logging_config as Json).log_group as string),
        environment,
        roleArn,
        statements,
        dataKeyArn,
        tableKeys,
        searchRules: accessPolicies
          .filter((p) => p.Principal.includes(roleArn))
          .flatMap((p) =>
            p.Rules.flatMap((r) => r.Resource.map((resource) => ({ resource, permissions: r.Permission }))),
          ),
      };
    });
  }
}
