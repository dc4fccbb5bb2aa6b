/**
 * Issue 15, read from the synthesised stacks: what the secondary region holds and can do when it
 * takes over — the data bucket's replica, an exceptions index kept by its own stream consumer,
 * the same pagination key, the dashboard's failover origin, a region role every function reads —
 * and that neither region's stack needs the other region (or the state) to be up to be applied.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DLQ_RETENTION_SECONDS,
  ENV,
  FUNCTION_NAMES,
  PREFIXES,
  awsBucketName,
  regionRoleParameterName,
  resourceNames,
} from '../../functions/shared/resources.ts';
import { FUNCTION_ACCESS, STREAM_ACTIONS, streamFailureQueueName } from '../../infra/access.ts';
import { parseInfraConfig } from '../../infra/config.ts';
import { ORIGIN_FAILOVER_STATUS_CODES } from '../../infra/constructs/static-site.ts';
import { FULL_CONFIG, dataOf, ref, referenced, resourcesOf, synth, type Json, type Synthesised } from './synth.ts';

let out: Synthesised;
beforeAll(() => {
  out = synth();
});
afterAll(() => out?.cleanup());

const regional = () =>
  [
    ['primary', out.primary],
    ['secondary', out.secondary],
  ] as const;
const prefix = () => out.config.prefix;
const regionOf = (role: 'primary' | 'secondary') => out.config.regions[role];
const ACCOUNT = '${data.aws_caller_identity.account.account_id}';
const PARTITION = '${data.aws_partition.partition.partition}';

const fn = (stack: Json, name: string) => {
  const found = resourcesOf(stack, 'aws_lambda_function').filter(([, f]) => f.function_name === `${prefix()}-${name}`);
  expect(found, name).toHaveLength(1);
  return found[0] as [string, Json];
};
/** The statements of a function's own role policy. */
const roleStatements = (stack: Json, name: string): Json[] => {
  const [, f] = fn(stack, name);
  const roleId = /^\$\{aws_iam_role\.([^.]+)\.arn\}$/.exec(f.role as string)?.[1];
  const policy = resourcesOf(stack, 'aws_iam_role_policy').find(([, p]) => p.role === `\${aws_iam_role.${roleId}.id}`);
  const doc = /data\.aws_iam_policy_document\.([^.]+)\.json/.exec(policy?.[1].policy as string)?.[1] as string;
  return stack.data.aws_iam_policy_document[doc].statement as Json[];
};
const documentOf = (stack: Json, reference: string): Json[] => {
  const id = /data\.aws_iam_policy_document\.([^.]+)\.json/.exec(reference)?.[1] as string;
  return stack.data.aws_iam_policy_document[id].statement as Json[];
};

describe('S3 replication of incoming/ and policies/ to the secondary', () => {
  const rules = () => {
    const configs = resourcesOf(out.replication, 'aws_s3_bucket_replication_configuration');
    expect(configs).toHaveLength(1);
    return (configs[0] as [string, Json])[1];
  };

  it('lives in a stack of its own in the primary region, with its own state key', () => {
    expect(out.replication.provider.aws[0].region).toBe(regionOf('primary'));
    const keys = [out.primary, out.secondary, out.replication].map((s) => s.terraform.backend.s3.key);
    expect(new Set(keys).size).toBe(3);
    // Everything it names is derived: it reads no other stack's outputs, and no stack reads its.
    for (const stack of [out.primary, out.secondary, out.replication, out.global as Json])
      expect(JSON.stringify(stack.data?.terraform_remote_state ?? {})).not.toContain('replication');
    expect(out.replication.data?.terraform_remote_state).toBeUndefined();
  });

  it("replicates each prefix from the primary's bucket to the secondary's, deletes too, within RTC's 15 minutes", () => {
    const config = rules();
    expect(config.bucket).toBe(awsBucketName(prefix(), regionOf('primary')));
    const byPrefix = Object.fromEntries((config.rule as Json[]).map((r) => [r.filter.prefix, r]));

    expect(Object.keys(byPrefix).sort()).toEqual([PREFIXES.incoming, PREFIXES.policies].sort());
    expect(new Set((config.rule as Json[]).map((r) => r.priority)).size).toBe(2);
    for (const rule of Object.values(byPrefix) as Json[]) {
      expect(rule).toMatchObject({
        status: 'Enabled',
        delete_marker_replication: { status: 'Enabled' },
        source_selection_criteria: { sse_kms_encrypted_objects: { status: 'Enabled' } },
        destination: {
          bucket: `arn:${PARTITION}:s3:::${awsBucketName(prefix(), regionOf('secondary'))}`,
          replication_time: { status: 'Enabled', time: { minutes: 15 } },
          metrics: { status: 'Enabled', event_threshold: { minutes: 15 } },
        },
      });
    }
  });

  it("re-encrypts the replicas with the secondary's data key, named by the alias the secondary's stack gives it", () => {
    const replicaKey = (rules().rule as Json[])[0]?.destination.encryption_configuration.replica_kms_key_id as string;
    const alias = /:alias\/.+$/.exec(replicaKey)?.[0].slice(1) as string;

    expect(replicaKey).toBe(`arn:${PARTITION}:kms:${regionOf('secondary')}:${ACCOUNT}:${alias}`);
    const secondaryAlias = resourcesOf(out.secondary, 'aws_kms_alias').find(([, a]) => a.name === alias)?.[1];
    expect(secondaryAlias, `the secondary creates ${alias}`).toBeDefined();
    expect(secondaryAlias?.provider).toBeUndefined(); // in the secondary's own region
    expect(referenced(out.secondary, (secondaryAlias as Json).target_key_id as string)).toBeDefined();
    // The source key: the primary's data key under the same alias.
    expect(resourcesOf(out.primary, 'aws_kms_alias').some(([, a]) => a.name === alias && !a.provider)).toBe(true);
  });

  it('both data buckets are versioned (replication requires it on either side)', () => {
    for (const [role, stack] of regional()) {
      const [bucketId] = resourcesOf(stack, 'aws_s3_bucket').find(
        ([, b]) => b.bucket === awsBucketName(prefix(), regionOf(role)),
      ) as [string, Json];
      const versioning = resourcesOf(stack, 'aws_s3_bucket_versioning').find(
        ([, v]) => v.bucket === ref('aws_s3_bucket', bucketId, 'id'),
      )?.[1];
      expect(versioning?.versioning_configuration.status, role).toBe('Enabled');
    }
  });

  it('its role is assumed by S3 for this source only, and holds only what replication needs', () => {
    const config = rules();
    const role = referenced(out.replication, config.role as string);
    const [trust] = documentOf(out.replication, role.assume_role_policy as string);
    const source = `arn:${PARTITION}:s3:::${awsBucketName(prefix(), regionOf('primary'))}`;
    const destination = `arn:${PARTITION}:s3:::${awsBucketName(prefix(), regionOf('secondary'))}`;
    expect(trust).toMatchObject({
      actions: ['sts:AssumeRole'],
      principals: [{ type: 'Service', identifiers: ['s3.amazonaws.com'] }],
    });
    expect((trust as Json).condition.map((c: Json) => c.variable).sort()).toEqual([
      'aws:SourceAccount',
      'aws:SourceArn',
    ]);

    const policy = resourcesOf(out.replication, 'aws_iam_role_policy')[0]?.[1] as Json;
    const statements = Object.fromEntries(documentOf(out.replication, policy.policy as string).map((s) => [s.sid, s]));
    const objects = (bucket: string) => [`${bucket}/${PREFIXES.incoming}*`, `${bucket}/${PREFIXES.policies}*`];
    expect(statements.ReadSourceVersions).toMatchObject({ resources: objects(source) });
    expect(statements.WriteReplicas).toMatchObject({
      actions: ['s3:ReplicateObject', 's3:ReplicateDelete', 's3:ReplicateTags'],
      resources: objects(destination),
    });
    expect(statements.ReadReplicationConfiguration?.resources).toEqual([source]);
    for (const [sid, region, actions] of [
      ['DecryptWithSourceKeyThroughS3', regionOf('primary'), ['kms:Decrypt']],
      ['EncryptWithDestinationKeyThroughS3', regionOf('secondary'), ['kms:Encrypt', 'kms:GenerateDataKey']],
    ] as const) {
      const s = statements[sid] as Json;
      expect(s.actions, sid).toEqual(actions);
      expect(s.resources, sid).toEqual([`arn:${PARTITION}:kms:${region}:${ACCOUNT}:key/*`]);
      const conditions = Object.fromEntries((s.condition as Json[]).map((c) => [c.variable, c]));
      expect(conditions['kms:ResourceAliases']?.values).toEqual([`alias/${prefix()}-data`]);
      expect(conditions['kms:ViaService']?.values).toEqual([`s3.${region}.amazonaws.com`]);
      expect(conditions['kms:EncryptionContext:aws:s3:arn']).toBeDefined();
    }
    for (const s of Object.values(statements) as Json[]) {
      for (const action of s.actions as string[]) expect(action).not.toContain('*');
      expect(s.resources).not.toContain('*');
    }
  });

  it("alarms on replication latency past 15 minutes and on any failed replication, per rule, to the primary's on-call topic", () => {
    const alarms = resourcesOf(out.replication, 'aws_cloudwatch_metric_alarm').map(([, a]) => a);
    const topic = `arn:${PARTITION}:sns:${regionOf('primary')}:${ACCOUNT}:${prefix()}-on-call`;
    expect(resourcesOf(out.primary, 'aws_sns_topic').some(([, t]) => t.name === `${prefix()}-on-call`)).toBe(true);

    for (const rule of ['replicate-incoming', 'replicate-policies']) {
      const mine = alarms.filter((a) => a.dimensions.RuleId === rule);
      expect(mine.map((a) => a.metric_name).sort(), rule).toEqual([
        'OperationsFailedReplication',
        'ReplicationLatency',
      ]);
      for (const a of mine) {
        expect(a).toMatchObject({
          namespace: 'AWS/S3',
          comparison_operator: 'GreaterThanThreshold',
          alarm_actions: [topic],
          dimensions: {
            SourceBucket: awsBucketName(prefix(), regionOf('primary')),
            DestinationBucket: awsBucketName(prefix(), regionOf('secondary')),
          },
        });
        expect(a.alarm_description).toContain('docs/runbooks/replication.md');
      }
      expect(mine.find((a) => a.metric_name === 'ReplicationLatency')?.threshold).toBe(900);
      expect(mine.find((a) => a.metric_name === 'OperationsFailedReplication')?.threshold).toBe(0);
    }
  });
});

describe('global tables', () => {
  it('each region alarms when any table replicates to the other slower than the stated RPO (1 minute)', () => {
    for (const [role, stack] of regional()) {
      const other = regionOf(role === 'primary' ? 'secondary' : 'primary');
      const alarms = resourcesOf(stack, 'aws_cloudwatch_metric_alarm')
        .map(([, a]) => a)
        .filter((a) => a.namespace === 'AWS/DynamoDB' && a.metric_name === 'ReplicationLatency');
      // The primary names its tables by reference, the secondary its replicas by name.
      const tableName = (value: string) => (value.startsWith('${') ? (referenced(stack, value).name as string) : value);
      expect(alarms.map((a) => tableName(a.dimensions.TableName as string)).sort(), role).toEqual(
        Object.values(resourceNames(prefix()).tables).sort(),
      );
      for (const a of alarms) {
        expect(a).toMatchObject({ threshold: 60000, dimensions: { ReceivingRegion: other } });
        expect(referenced(stack, a.alarm_actions[0] as string).name).toBe(`${prefix()}-on-call`);
      }
    }
  });
});

describe('stream consumers: each region indexes its own exceptions table stream', () => {
  const exceptionsTable = () => resourceNames(prefix()).tables.exceptions;
  const mappingOf = (stack: Json) => {
    const [consumerId] = fn(stack, 'stream-index');
    const found = resourcesOf(stack, 'aws_lambda_event_source_mapping').filter(
      ([, m]) => m.function_name === ref('aws_lambda_function', consumerId, 'arn'),
    );
    expect(found).toHaveLength(1);
    return (found[0] as [string, Json])[1];
  };

  it("the primary's table streams new and old images (global tables need it; the consumer reads it)", () => {
    const table = resourcesOf(out.primary, 'aws_dynamodb_table').find(([, t]) => t.name === exceptionsTable())?.[1];
    expect(table).toMatchObject({ stream_enabled: true, stream_view_type: 'NEW_AND_OLD_IMAGES' });
  });

  it("reads the table's stream in the primary and the replica's stream in the secondary", () => {
    const [tableId] = resourcesOf(out.primary, 'aws_dynamodb_table').find(([, t]) => t.name === exceptionsTable()) as [
      string,
      Json,
    ];
    expect(mappingOf(out.primary).event_source_arn).toBe(ref('aws_dynamodb_table', tableId, 'stream_arn'));

    const replica = dataOf(out.secondary, 'aws_dynamodb_table').find(([, t]) => t.name === exceptionsTable());
    expect(replica, 'the secondary reads the replica by name').toBeDefined();
    expect(mappingOf(out.secondary).event_source_arn).toBe(
      `\${data.aws_dynamodb_table.${(replica as [string, Json])[0]}.stream_arn}`,
    );
    expect(resourcesOf(out.secondary, 'aws_dynamodb_table')).toEqual([]);
  });

  it('bisects a failing batch, takes partial batch responses, and gives up to a failure queue that pages on-call', () => {
    for (const [, stack] of regional()) {
      const mapping = mappingOf(stack);
      expect(mapping).toMatchObject({
        starting_position: 'TRIM_HORIZON',
        bisect_batch_on_function_error: true,
        function_response_types: ['ReportBatchItemFailures'],
        maximum_retry_attempts: FUNCTION_ACCESS['stream-index'].stream?.maxRetries,
        parallelization_factor: 1,
      });
      const queue = referenced(stack, mapping.destination_config.on_failure.destination_arn as string);
      expect(queue).toMatchObject({
        name: streamFailureQueueName(prefix(), 'stream-index'),
        message_retention_seconds: DLQ_RETENTION_SECONDS,
      });
      expect(queue.kms_master_key_id).toMatch(/^\$\{aws_kms_key\./);
      const alarm = resourcesOf(stack, 'aws_cloudwatch_metric_alarm')
        .map(([, a]) => a)
        .find((a) => a.dimensions?.QueueName === queue.name);
      expect(alarm).toMatchObject({
        metric_name: 'ApproximateNumberOfMessagesVisible',
        threshold: 0,
        comparison_operator: 'GreaterThanThreshold',
      });
      expect(referenced(stack, (alarm as Json).alarm_actions[0]).name).toBe(`${prefix()}-on-call`);
    }
  });

  it("its role reads only that table's stream, sends only to its failure queue, and may write the exceptions index", () => {
    for (const [role, stack] of regional()) {
      const statements = roleStatements(stack, 'stream-index');
      const stream = statements.find((s) => s.sid === 'ReadStreamOfExceptionsTable') as Json;
      expect(stream.actions).toEqual([...STREAM_ACTIONS]);
      expect(stream.resources).toHaveLength(1);
      const streams = stream.resources[0] as string;
      // The primary names its table by reference, the secondary the replica by its derived ARN.
      const table = /^\$\{(aws_dynamodb_table\.[^.]+)\.arn\}\/stream\/\*$/.exec(streams);
      if (table) expect(referenced(stack, `\${${table[1]}.arn}`).name).toBe(exceptionsTable());
      else expect(streams).toMatch(new RegExp(`:table/${exceptionsTable()}/stream/\\*$`));
      const send = statements.find((s) => s.sid === 'SendStreamFailuresToStreamIndexQueue') as Json;
      expect(referenced(stack, send.resources[0]).name).toBe(streamFailureQueueName(prefix(), 'stream-index'));
      // The stream's records are encrypted with the table's key in this region.
      const key = statements.find((s) => s.sid === 'UseTablesKeyThroughDynamodb') as Json;
      expect(key.condition[0].values).toEqual([`dynamodb.${regionOf(role)}.amazonaws.com`]);

      const [, access] = resourcesOf(stack, 'aws_opensearchserverless_access_policy')[0] as [string, Json];
      const rules = JSON.parse(access.policy as string) as { Description: string; Rules: Json[] }[];
      const mine = rules.find((r) => r.Description === 'stream-index') as { Rules: Json[] };
      expect(mine.Rules.map((r) => r.Resource[0])).toEqual([`index/${prefix()}-search/${prefix()}-exceptions`]);
      expect(mine.Rules[0]?.Permission).toContain('aoss:WriteDocument');
    }
  });
});

describe('region role', () => {
  const parameterOf = (stack: Json) => {
    const found = resourcesOf(stack, 'aws_ssm_parameter');
    expect(found).toHaveLength(1);
    return found[0] as [string, Json];
  };

  it('one String parameter per region, active in the primary and standby in the secondary, never reset by apply', () => {
    for (const [role, stack] of regional()) {
      const [, parameter] = parameterOf(stack);
      expect(parameter).toMatchObject({
        name: regionRoleParameterName(prefix()),
        type: 'String',
        value: role === 'primary' ? 'active' : 'standby',
        lifecycle: { ignore_changes: ['value'] },
      });
      expect(parameter.provider).toBeUndefined();
    }
  });

  it("every function but stream-index is told the parameter and the peer region, and may read both regions' parameter, nothing else of SSM", () => {
    for (const [role, stack] of regional()) {
      const peer = regionOf(role === 'primary' ? 'secondary' : 'primary');
      const peerArn = `arn:${PARTITION}:ssm:${peer}:${ACCOUNT}:parameter${regionRoleParameterName(prefix())}`;
      const [parameterId] = parameterOf(stack);
      // A standby region's index follows its table too, ready for promotion: no role, no grant.
      const [, streamIndex] = fn(stack, 'stream-index');
      expect(streamIndex.environment.variables[ENV.regionRoleParameter]).toBeUndefined();
      expect(streamIndex.environment.variables[ENV.peerRegion]).toBeUndefined();
      expect(
        roleStatements(stack, 'stream-index').filter((s) => (s.actions as string[]).some((a) => a.startsWith('ssm:'))),
      ).toEqual([]);
      for (const name of FUNCTION_NAMES.filter((n) => n !== 'stream-index')) {
        const [, f] = fn(stack, name);
        expect(f.environment.variables[ENV.regionRoleParameter], name).toBe(
          ref('aws_ssm_parameter', parameterId, 'name'),
        );
        // The old primary back from an outage reads the secondary's role too (region-role.ts PeerAwareRegionRole).
        expect(f.environment.variables[ENV.peerRegion], name).toBe(peer);
        const ssm = roleStatements(stack, name).filter((s) =>
          (s.actions as string[]).some((a) => a.startsWith('ssm:')),
        );
        expect(ssm, name).toEqual([
          expect.objectContaining({
            actions: ['ssm:GetParameter'],
            resources: [ref('aws_ssm_parameter', parameterId, 'arn'), peerArn],
          }),
        ]);
      }
    }
  });

  it("outputs the operator's policy: read and put both regions' parameters (promote, fence)", () => {
    for (const [, stack] of regional()) {
      const statements = documentOf(stack, stack.output.region_operator_policy.value as string);
      const arn = (region: string) =>
        `arn:${PARTITION}:ssm:${region}:${ACCOUNT}:parameter${regionRoleParameterName(prefix())}`;
      expect(statements).toEqual([
        expect.objectContaining({
          actions: ['ssm:GetParameter', 'ssm:PutParameter'],
          resources: [arn(regionOf('primary')), arn(regionOf('secondary'))],
        }),
      ]);
    }
  });
});

describe('pagination secret', () => {
  it('is drawn once in the primary and replicated to the secondary under its replica key', () => {
    const secrets = resourcesOf(out.primary, 'aws_secretsmanager_secret')
      .map(([, s]) => s)
      .filter((s) => s.name === `${prefix()}/query-api/pagination`);
    expect(secrets).toHaveLength(1);
    const replica = (secrets[0] as Json).replica as Json[];
    expect(replica).toHaveLength(1);
    expect(replica[0]?.region).toBe(regionOf('secondary'));
    const key = referenced(out.primary, replica[0]?.kms_key_id as string);
    expect(key.provider).toBe('aws.secondary');
    expect((secrets[0] as Json).force_overwrite_replica_secret).toBe(true);
  });

  it("the secondary creates none of its own and gives query-api the replica's value", () => {
    const name = `${prefix()}/query-api/pagination`;
    expect(resourcesOf(out.secondary, 'aws_secretsmanager_secret').filter(([, s]) => s.name === name)).toEqual([]);
    const [readId] = dataOf(out.secondary, 'aws_secretsmanager_secret_version').find(
      ([, d]) => d.secret_id === name,
    ) as [string, Json];
    const [, queryApi] = fn(out.secondary, 'query-api');
    expect(queryApi.environment.variables[ENV.paginationSecret]).toBe(
      `\${data.aws_secretsmanager_secret_version.${readId}.secret_string}`,
    );
  });
});

describe('terraform state', () => {
  it('lives outside both regions, for every stack', () => {
    for (const stack of [out.primary, out.secondary, out.replication, out.global as Json]) {
      const region = stack.terraform.backend.s3.region as string;
      expect([regionOf('primary'), regionOf('secondary')]).not.toContain(region);
    }
  });

  it('a configuration with the state in either region is refused, naming the field', () => {
    for (const region of ['eu-west-1', 'eu-central-1'])
      expect(() => parseInfraConfig({ ...FULL_CONFIG, state: { ...FULL_CONFIG.state, region } })).toThrow(
        /state\.region: must be a third region/,
      );
    expect(parseInfraConfig({}).state.region).not.toMatch(/^(eu-west-1|eu-central-1)$/);
  });
});

describe('dashboard: an origin group over both regions', () => {
  let web: Synthesised;
  beforeAll(() => {
    web = synth({
      ...FULL_CONFIG,
      web: { enabled: true, domainName: 'tally.acme.example', oidcClientId: 'tally-dashboard' },
    });
  });
  afterAll(() => web?.cleanup());

  it('serves from the primary bucket and fails over to the secondary copy on 403, 404 and 5xx', () => {
    const [, distribution] = resourcesOf(web.primary, 'aws_cloudfront_distribution')[0] as [string, Json];
    const [group] = distribution.origin_group as Json[];
    const origins = Object.fromEntries((distribution.origin as Json[]).map((o) => [o.origin_id, o]));

    expect(distribution.default_cache_behavior.target_origin_id).toBe((group as Json).origin_id);
    expect((group as Json).failover_criteria.status_codes).toEqual(ORIGIN_FAILOVER_STATUS_CODES);
    const [first, second] = ((group as Json).member as Json[]).map((m) => origins[m.origin_id as string] as Json);
    const bucketOf = (origin: Json) =>
      referenced(web.primary, (origin.domain_name as string).replace('bucket_regional_domain_name', 'id'));
    expect(bucketOf(first as Json)).toMatchObject({ bucket: `${prefix()}-web-${regionOf('primary')}` });
    expect(bucketOf(first as Json).provider).toBeUndefined();
    expect(bucketOf(second as Json)).toMatchObject({
      bucket: `${prefix()}-web-${regionOf('secondary')}`,
      provider: 'aws.secondary',
    });
  });

  it('the secondary copy holds the same files, is private, and only the distribution reads it', () => {
    const [secondaryId] = resourcesOf(web.primary, 'aws_s3_bucket').find(
      ([, b]) => b.bucket === `${prefix()}-web-${regionOf('secondary')}`,
    ) as [string, Json];
    const inBucket = (id: string) =>
      resourcesOf(web.primary, 'aws_s3_object')
        .map(([, o]) => o)
        .filter((o) => o.bucket === ref('aws_s3_bucket', id, 'id'))
        .map((o) => o.key as string)
        .sort();
    const [primaryId] = resourcesOf(web.primary, 'aws_s3_bucket').find(
      ([, b]) => b.bucket === `${prefix()}-web-${regionOf('primary')}`,
    ) as [string, Json];
    expect(inBucket(secondaryId)).toEqual(inBucket(primaryId));
    expect(inBucket(secondaryId)).toContain('config.json');

    const [distributionId] = resourcesOf(web.primary, 'aws_cloudfront_distribution')[0] as [string, Json];
    const policy = resourcesOf(web.primary, 'aws_s3_bucket_policy').find(
      ([, p]) => p.bucket === ref('aws_s3_bucket', secondaryId, 'id'),
    )?.[1] as Json;
    expect(policy.provider).toBe('aws.secondary');
    expect(documentOf(web.primary, policy.policy as string).find((s) => s.sid === 'CloudFrontReads')).toMatchObject({
      condition: [{ values: [ref('aws_cloudfront_distribution', distributionId, 'arn')] }],
    });
    const block = resourcesOf(web.primary, 'aws_s3_bucket_public_access_block').find(
      ([, b]) => b.bucket === ref('aws_s3_bucket', secondaryId, 'id'),
    )?.[1];
    expect(block).toMatchObject({ block_public_acls: true, restrict_public_buckets: true });
  });
});
