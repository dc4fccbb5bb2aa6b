/**
 * Route 53 failover for the API: a health check on the primary region's GET /health and, when a
 * domain is configured, the failover pair for the API name — PRIMARY to the primary region's
 * custom domain (answered while healthy), SECONDARY to the secondary's. The regional values
 * arrive as cross-stack references (remote state), so this stack deploys after both regions.
 *
 * Failback is an operator's act, never Route 53's (issue 15): the primary's /health answers 503
 * unless its region role (SSM /<prefix>/region-role) is `active`. Failover fences the primary
 * (or finds it down) and promotes the secondary; from then on the primary fails this check however
 * healthy it is, so Route 53 keeps answering with the secondary until an operator promotes the
 * primary back (docs/failover.md). The SECONDARY record has no health check: it answers whenever
 * the PRIMARY does not, and a standby secondary refuses writes itself (503) rather than vanish.
 */
import type { Construct } from 'constructs';
import { TerraformOutput, TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider/index.js';
import { DataAwsCallerIdentity } from '@cdktf/provider-aws/lib/data-aws-caller-identity/index.js';
import { DataAwsPartition } from '@cdktf/provider-aws/lib/data-aws-partition/index.js';
import { Route53HealthCheck } from '@cdktf/provider-aws/lib/route53-health-check/index.js';
import { Route53Record } from '@cdktf/provider-aws/lib/route53-record/index.js';
import { stateBackend } from '../backend.ts';
import type { InfraConfig } from '../config.ts';
import type { HttpApi } from '../constructs/http-api.ts';
import { healthCheckAlarm } from '../constructs/alarms.ts';
import { DataKey } from '../constructs/data-key.ts';
import { OnCallTopic } from '../constructs/observability.ts';

export interface GlobalStackProps {
  readonly config: InfraConfig;
  readonly primaryApi: HttpApi;
  readonly secondaryApi: HttpApi;
}

export class GlobalStack extends TerraformStack {
  readonly healthCheck: Route53HealthCheck;

  constructor(scope: Construct, id: string, props: GlobalStackProps) {
    super(scope, id);
    const { config } = props;
    // Route 53 is global; its health-check metrics live in us-east-1.
    new AwsProvider(this, 'aws', { region: 'us-east-1', defaultTags: [{ tags: { app: 'tally', stack: id } }] });
    stateBackend(this, config, id);

    this.healthCheck = new Route53HealthCheck(this, 'primary-health', {
      // The primary's own execute-api name: probing the failover name would probe whichever
      // region currently answers it.
      fqdn: props.primaryApi.endpointHost,
      type: 'HTTPS',
      port: 443,
      resourcePath: '/health',
      requestInterval: 30,
      failureThreshold: 3,
      enableSni: true,
      tags: { Name: `${config.prefix}-primary-api-health` },
    });
    new TerraformOutput(this, 'primary_health_check_id', { value: this.healthCheck.id });

    // The health check's metric exists only in us-east-1, and an alarm notifies a topic in its own
    // region: so this stack has its own (encrypted) on-call topic, with the same subscription.
    const key = new DataKey(this, 'alarm-key', {
      aliasName: `alias/${config.prefix}-global-alarms`,
      region: 'us-east-1',
      accountId: new DataAwsCallerIdentity(this, 'account').accountId,
      partition: new DataAwsPartition(this, 'partition').partition,
      multiRegion: false,
    });
    const onCall = new OnCallTopic(this, 'on-call', {
      topicName: `${config.prefix}-on-call-global`,
      kmsKeyArn: key.key.arn,
      email: config.alarmEmail,
    });
    healthCheckAlarm(this, 'primary-health-alarm', {
      prefix: config.prefix,
      healthCheckId: this.healthCheck.id,
      topicArn: onCall.topic.arn,
    });

    if (!config.domain) return;
    const domain = config.domain;
    const failover = (role: 'PRIMARY' | 'SECONDARY', api: HttpApi) => {
      if (!api.domainTarget) throw new Error(`the ${role.toLowerCase()} API has no custom domain`);
      new Route53Record(this, `api-${role.toLowerCase()}`, {
        zoneId: domain.hostedZoneId,
        name: domain.apiDomainName,
        type: 'A',
        setIdentifier: `${config.prefix}-${role.toLowerCase()}`,
        failoverRoutingPolicy: { type: role },
        alias: { name: api.domainTarget.name, zoneId: api.domainTarget.hostedZoneId, evaluateTargetHealth: true },
        ...(role === 'PRIMARY' ? { healthCheckId: this.healthCheck.id } : {}),
      });
    };
    failover('PRIMARY', props.primaryApi);
    failover('SECONDARY', props.secondaryApi);
  }
}
