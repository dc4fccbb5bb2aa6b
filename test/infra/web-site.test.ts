/**
 * The dashboard on AWS: an optional static site (S3 + CloudFront), off by default; and what the
 * query API needs for the dashboard's Operations view (queue depths) in every region.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseInfraConfig, InfraConfigError } from '../../infra/config.ts';
import { MissingWebBuildError } from '../../infra/constructs/static-site.ts';
import { QUEUE_NAMES, resourceNames } from '../../functions/shared/resources.ts';
import {
  FULL_CONFIG,
  WEB_STUB_FILES,
  dataOf,
  ref,
  referenced,
  resourcesOf,
  synth,
  type Json,
  type Synthesised,
} from './synth.ts';

const WEB = { enabled: true, domainName: 'tally.acme.example', oidcClientId: 'tally-dashboard' };
const WEB_CONFIG = { ...FULL_CONFIG, api: { corsOrigins: ['https://ops.acme.example'] }, web: WEB };

const queryApi = (stack: Json, prefix: string) => {
  const found = resourcesOf(stack, 'aws_lambda_function').find(([, f]) => f.function_name === `${prefix}-query-api`);
  return found?.[1] as Json;
};

describe('static site: off by default', () => {
  let out: Synthesised;
  beforeAll(() => {
    out = synth();
  });
  afterAll(() => out?.cleanup());

  it('creates no distribution, site bucket or us-east-1 provider, and says so', () => {
    for (const stack of [out.primary, out.secondary]) {
      expect(resourcesOf(stack, 'aws_cloudfront_distribution')).toEqual([]);
      // The policy corpus is the only object then (test/infra/stacks.test.ts checks it).
      expect(resourcesOf(stack, 'aws_s3_object').filter(([, o]) => !String(o.key).startsWith('policies/'))).toEqual([]);
      expect((stack.provider.aws as Json[]).map((p) => p.alias)).not.toContain('us-east-1');
    }
    expect(out.config.web.enabled).toBe(false);
    expect(out.stacks.notes.join('\n')).toContain('web.enabled is false');
  });

  it('query-api knows every queue and DLQ and may read their depth and age, in each region', () => {
    for (const stack of [out.primary, out.secondary]) {
      const env = queryApi(stack, out.config.prefix).environment.variables as Record<string, string>;
      const monitored = JSON.parse(env.TALLY_MONITORED_QUEUES as string) as Record<
        string,
        { main: string; dlq: string }
      >;

      expect(Object.keys(monitored)).toEqual(QUEUE_NAMES);
      for (const q of QUEUE_NAMES) {
        expect(referenced(stack, monitored[q]?.main as string).name).toBe(
          resourceNames(out.config.prefix).queues[q].main,
        );
        expect(referenced(stack, monitored[q]?.dlq as string).name).toBe(
          resourceNames(out.config.prefix).queues[q].dlq,
        );
      }
      expect(env.TALLY_QUEUE_METRICS).toBe('cloudwatch');

      const doc = /data\.aws_iam_policy_document\.([^.]+)\.json/.exec(
        resourcesOf(stack, 'aws_iam_role_policy')
          .map(([, p]) => p.policy as string)
          .find((p) => p.includes('query-api')) as string,
      )?.[1] as string;
      const statements = stack.data.aws_iam_policy_document[doc].statement as Json[];
      const depths = statements.find((s) => s.sid === 'ReadQueueDepths') as Json;
      expect(depths.actions).toEqual(['sqs:GetQueueAttributes']);
      expect((depths.resources as string[]).map((r) => referenced(stack, r).name).sort()).toEqual(
        QUEUE_NAMES.flatMap((q) => [
          resourceNames(out.config.prefix).queues[q].main,
          resourceNames(out.config.prefix).queues[q].dlq,
        ]).sort(),
      );
      expect(statements.find((s) => s.sid === 'ReadQueueAgeMetrics')).toMatchObject({
        actions: ['cloudwatch:GetMetricData'],
        resources: ['*'],
      });
    }
  });

  it("no other function may read a DLQ's attributes (consumers read only their own queue)", () => {
    const dlqNames = new Set(QUEUE_NAMES.map((q) => resourceNames(out.config.prefix).queues[q].dlq));
    const readers = dataOf(out.primary, 'aws_iam_policy_document')
      .filter(([, d]) =>
        ((d.statement ?? []) as Json[]).some(
          (s) =>
            (s.actions as string[]).includes('sqs:GetQueueAttributes') &&
            (s.resources as string[]).some(
              (r) => r.startsWith('${aws_sqs_queue.') && dlqNames.has(referenced(out.primary, r).name as string),
            ),
        ),
      )
      .map(([id]) => id);
    expect(readers).toHaveLength(1);
    expect(readers[0]).toMatch(/^query-api/);
  });
});

describe('static site: enabled', () => {
  let out: Synthesised;
  beforeAll(() => {
    out = synth(WEB_CONFIG);
  });
  afterAll(() => out?.cleanup());

  const one = (type: string, stack: Json = out.primary) => {
    const found = resourcesOf(stack, type).filter(([id]) => id.startsWith('web_'));
    expect(found, type).toHaveLength(1);
    return found[0] as [string, Json];
  };

  it('lives in the primary only: CloudFront over a private bucket, HTTPS on the configured name', () => {
    const [, distribution] = one('aws_cloudfront_distribution');

    expect(resourcesOf(out.secondary, 'aws_cloudfront_distribution')).toEqual([]);
    expect(distribution).toMatchObject({
      enabled: true,
      aliases: ['tally.acme.example'],
      default_root_object: 'index.html',
      default_cache_behavior: { viewer_protocol_policy: 'redirect-to-https', allowed_methods: ['GET', 'HEAD'] },
      viewer_certificate: { ssl_support_method: 'sni-only', minimum_protocol_version: 'TLSv1.2_2021' },
    });
    const [, block] = one('aws_s3_bucket_public_access_block');
    expect(block).toMatchObject({
      block_public_acls: true,
      block_public_policy: true,
      ignore_public_acls: true,
      restrict_public_buckets: true,
    });
    const [bucketId] = one('aws_s3_bucket');
    expect(distribution.origin[0].domain_name).toBe(ref('aws_s3_bucket', bucketId, 'bucket_regional_domain_name'));
    const [oacId, oac] = one('aws_cloudfront_origin_access_control');
    expect(oac).toMatchObject({
      origin_access_control_origin_type: 's3',
      signing_behavior: 'always',
      signing_protocol: 'sigv4',
    });
    expect(distribution.origin[0].origin_access_control_id).toBe(
      ref('aws_cloudfront_origin_access_control', oacId, 'id'),
    );
  });

  it('only that distribution may read the bucket, and only over TLS', () => {
    const [distributionId] = one('aws_cloudfront_distribution');
    const [, policy] = one('aws_s3_bucket_policy');
    const docId = /data\.aws_iam_policy_document\.([^.]+)\.json/.exec(policy.policy as string)?.[1] as string;
    const statements = out.primary.data.aws_iam_policy_document[docId].statement as Json[];

    expect(statements.find((s) => s.sid === 'CloudFrontReads')).toMatchObject({
      effect: 'Allow',
      actions: ['s3:GetObject'],
      principals: [{ type: 'Service', identifiers: ['cloudfront.amazonaws.com'] }],
      condition: [
        {
          test: 'StringEquals',
          variable: 'AWS:SourceArn',
          values: [ref('aws_cloudfront_distribution', distributionId, 'arn')],
        },
      ],
    });
    expect(statements.find((s) => s.sid === 'DenyInsecureTransport')).toMatchObject({
      effect: 'Deny',
      condition: [{ variable: 'aws:SecureTransport', values: ['false'] }],
    });
  });

  it("its certificate comes from us-east-1 (CloudFront's rule) and the name aliases the distribution", () => {
    const [, certificate] = one('aws_acm_certificate');
    const [distributionId] = one('aws_cloudfront_distribution');
    const alias = resourcesOf(out.primary, 'aws_route53_record').find(([id]) =>
      id.startsWith('web_alias'),
    )?.[1] as Json;

    expect(certificate).toMatchObject({
      domain_name: 'tally.acme.example',
      provider: 'aws.us-east-1',
      validation_method: 'DNS',
    });
    expect((out.primary.provider.aws as Json[]).find((p) => p.alias === 'us-east-1')?.region).toBe('us-east-1');
    expect(alias).toMatchObject({
      name: 'tally.acme.example',
      type: 'A',
      zone_id: FULL_CONFIG.domain.hostedZoneId,
      alias: { name: ref('aws_cloudfront_distribution', distributionId, 'domain_name') },
    });
  });

  it('uploads every built file (not source maps) with its content type and cache policy, and config.json', () => {
    const objects = resourcesOf(out.primary, 'aws_s3_object')
      .map(([, o]) => o)
      .filter((o) => !String(o.key).startsWith('policies/'));
    const byKey = Object.fromEntries(objects.map((o) => [o.key as string, o]));

    expect(Object.keys(byKey).sort()).toEqual(
      [...Object.keys(WEB_STUB_FILES).filter((f) => !f.endsWith('.map')), 'config.json'].sort(),
    );
    expect(byKey['index.html']).toMatchObject({ content_type: 'text/html; charset=utf-8', cache_control: 'no-cache' });
    expect(byKey['assets/app-ABC123.js']).toMatchObject({
      content_type: 'text/javascript; charset=utf-8',
      cache_control: 'public, max-age=31536000, immutable',
    });
    expect(byKey['assets/app-ABC123.js']?.source_hash).toMatch(/^\$\{filemd5\(/);
    expect(JSON.parse(byKey['config.json']?.content as string)).toEqual({
      apiUrl: 'https://api.tally.acme.example',
      auth: {
        issuer: 'https://login.acme.example/',
        clientId: 'tally-dashboard',
        scope: 'openid email',
        audience: 'tally',
      },
    });
  });

  it('sends security headers whose CSP lets the page reach only itself, the API, the issuer and S3', () => {
    const [, headers] = one('aws_cloudfront_response_headers_policy');
    const csp = headers.security_headers_config.content_security_policy.content_security_policy as string;

    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain(
      "connect-src 'self' https://api.tally.acme.example https://login.acme.example https://*.amazonaws.com",
    );
    expect(headers.security_headers_config).toMatchObject({
      frame_options: { frame_option: 'DENY' },
      strict_transport_security: { access_control_max_age_sec: 31536000 },
    });
  });

  it("the site's origin is allowed by the API and the data bucket in both regions, with the configured ones", () => {
    for (const stack of [out.primary, out.secondary]) {
      const env = queryApi(stack, out.config.prefix).environment.variables as Record<string, string>;
      const [, api] = resourcesOf(stack, 'aws_apigatewayv2_api')[0] as [string, Json];
      const [, cors] = resourcesOf(stack, 'aws_s3_bucket_cors_configuration')[0] as [string, Json];

      expect(env.TALLY_CORS_ORIGINS).toBe('https://ops.acme.example,https://tally.acme.example');
      expect(api.cors_configuration.allow_origins).toEqual(['https://ops.acme.example', 'https://tally.acme.example']);
      expect(cors.cors_rule[0].allowed_origins).toEqual(['https://ops.acme.example', 'https://tally.acme.example']);
    }
  });
});

describe('static site: configuration', () => {
  it('enabling it needs the site name, the OIDC client and the domain, each named', () => {
    expect(() => parseInfraConfig({ web: { enabled: true } })).toThrow(InfraConfigError);
    expect(() => parseInfraConfig({ web: { enabled: true } })).toThrow(
      /web\.domainName: is required.*web\.oidcClientId: is required.*domain: is required/,
    );
  });

  it('stops synth when the web build is missing, rather than deploying an empty site', () => {
    expect(() => synth(WEB_CONFIG, undefined, { webBuild: false })).toThrow(MissingWebBuildError);
  });
});
