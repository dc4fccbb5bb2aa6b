/**
 * The house Lambda: the esbuild bundle as an asset, Node 22 on arm64, X-Ray tracing, JSON logs
 * into its own encrypted log group with retention, and a role of its own that holds exactly the
 * statements it is given (plus logs and tracing). Queue consumers also get their event source
 * mapping with partial batch responses and a concurrency cap.
 */
import { Construct } from 'constructs';
import { AssetType, TerraformAsset } from 'cdktf';
import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group/index.js';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role/index.js';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy/index.js';
import { LambdaEventSourceMapping } from '@cdktf/provider-aws/lib/lambda-event-source-mapping/index.js';
import { LambdaFunction } from '@cdktf/provider-aws/lib/lambda-function/index.js';
import { policyDocument, type Statement } from '../iam.ts';

export interface QueueSource {
  readonly queueArn: string;
  readonly batchSize: number;
  readonly maxConcurrency: number;
}

/** A DynamoDB stream the function consumes (the table's, or the global table replica's, stream). */
export interface StreamSource {
  readonly streamArn: string;
  readonly batchSize: number;
  /** Retries of a failing batch (halved each time: bisect on error) before it goes to `onFailureQueueArn`. */
  readonly maxRetries: number;
  readonly onFailureQueueArn: string;
}

export interface TallyFunctionProps {
  readonly functionName: string;
  /** IAM names are account-wide: the role carries the region so each regional stack has its own. */
  readonly region: string;
  /** dist/<name>: index.mjs exporting `handler`, its source map and bundled policies. */
  readonly bundleDir: string;
  readonly memoryMb: number;
  /** Size of /tmp in MB (512 to 10240). */
  readonly ephemeralStorageMb: number;
  readonly timeoutSeconds: number;
  readonly environment: Record<string, string>;
  readonly logRetentionDays: number;
  readonly kmsKeyArn: string;
  readonly accountId: string;
  readonly statements: readonly Statement[];
  readonly source?: QueueSource;
  readonly stream?: StreamSource;
}

export class TallyFunction extends Construct {
  readonly function: LambdaFunction;
  readonly role: IamRole;
  readonly logGroup: CloudwatchLogGroup;

  constructor(scope: Construct, id: string, props: TallyFunctionProps) {
    super(scope, id);
    const bundle = new TerraformAsset(this, 'bundle', { path: props.bundleDir, type: AssetType.ARCHIVE });

    this.logGroup = new CloudwatchLogGroup(this, 'logs', {
      name: `/aws/lambda/${props.functionName}`,
      retentionInDays: props.logRetentionDays,
      kmsKeyId: props.kmsKeyArn,
    });

    const assume = policyDocument(this, 'assume-role', [
      {
        sid: 'LambdaAssumesRole',
        actions: ['sts:AssumeRole'],
        resources: [],
        principals: [{ type: 'Service', identifiers: ['lambda.amazonaws.com'] }],
        // Confused-deputy guard: only Lambda acting for this account may assume the role.
        conditions: [{ test: 'StringEquals', variable: 'aws:SourceAccount', values: [props.accountId] }],
      },
    ]);
    this.role = new IamRole(this, 'role', {
      name: `${props.functionName}-${props.region}`,
      assumeRolePolicy: assume.json,
    });

    const statements: Statement[] = [
      // The log group exists already (Terraform owns it), so no logs:CreateLogGroup.
      {
        sid: 'WriteOwnLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [`${this.logGroup.arn}:*`],
      },
      // X-Ray trace segments are not resource-scoped: the API accepts only "*".
      { sid: 'WriteTraces', actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], resources: ['*'] },
      ...(props.source
        ? [
            {
              sid: 'ConsumeQueue',
              // What AWS documents the event source mapping needs (AWSLambdaSQSQueueExecutionRole);
              // it never changes a message's visibility.
              actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'],
              resources: [props.source.queueArn],
            },
          ]
        : []),
      ...props.statements,
    ];
    const policy = new IamRolePolicy(this, 'policy', {
      name: `${props.functionName}-access`,
      role: this.role.id,
      policy: policyDocument(this, 'access', statements).json,
    });

    this.function = new LambdaFunction(this, 'function', {
      functionName: props.functionName,
      role: this.role.arn,
      runtime: 'nodejs22.x',
      architectures: ['arm64'],
      handler: 'index.handler',
      filename: bundle.path,
      sourceCodeHash: bundle.assetHash,
      memorySize: props.memoryMb,
      ephemeralStorage: { size: props.ephemeralStorageMb },
      timeout: props.timeoutSeconds,
      tracingConfig: { mode: 'Active' },
      loggingConfig: { logFormat: 'JSON', logGroup: this.logGroup.name },
      kmsKeyArn: props.kmsKeyArn,
      // The bundles ship source maps: stack traces in the logs point at the TypeScript.
      environment: { variables: { NODE_OPTIONS: '--enable-source-maps', ...props.environment } },
      dependsOn: [this.logGroup, policy],
    });

    if (props.source) {
      new LambdaEventSourceMapping(this, 'queue-source', {
        eventSourceArn: props.source.queueArn,
        functionName: this.function.arn,
        batchSize: props.source.batchSize,
        // One poison message fails alone; the rest of its batch is deleted.
        functionResponseTypes: ['ReportBatchItemFailures'],
        scalingConfig: { maximumConcurrency: props.source.maxConcurrency },
        dependsOn: [policy],
      });
    }
    if (props.stream) {
      new LambdaEventSourceMapping(this, 'stream-source', {
        eventSourceArn: props.stream.streamArn,
        functionName: this.function.arn,
        // The stream keeps 24 h: a new mapping (a fresh region, a recreated one) starts from all of it.
        startingPosition: 'TRIM_HORIZON',
        batchSize: props.stream.batchSize,
        maximumBatchingWindowInSeconds: 1,
        // One failing record fails alone (partial batch responses); a failing batch is halved
        // until the bad record is isolated, and after maxRetries its description goes to the queue.
        functionResponseTypes: ['ReportBatchItemFailures'],
        bisectBatchOnFunctionError: true,
        maximumRetryAttempts: props.stream.maxRetries,
        destinationConfig: { onFailure: { destinationArn: props.stream.onFailureQueueArn } },
        // One batch per shard at a time: changes to one item are indexed in the order they happened.
        parallelizationFactor: 1,
        dependsOn: [policy],
      });
    }
  }
}
