/**
 * API Gateway HTTP API in front of query-api: one route per entry of the query API's own route
 * table (functions/query-api/route-table.ts), a JWT authorizer on every route except
 * GET /health (with the route's roles as its authorization scopes when roles are scopes) (Route 53 and load balancers probe it without a token), stage throttling, JSON
 * access logs, and — when a domain is configured — a regional custom domain with its own ACM
 * certificate, so each region answers on the same name and Route 53 can fail over between them.
 */
import { Construct } from 'constructs';
import { AcmCertificate } from '@cdktf/provider-aws/lib/acm-certificate/index.js';
import { AcmCertificateValidation } from '@cdktf/provider-aws/lib/acm-certificate-validation/index.js';
import { Apigatewayv2Api } from '@cdktf/provider-aws/lib/apigatewayv2-api/index.js';
import { Apigatewayv2ApiMapping } from '@cdktf/provider-aws/lib/apigatewayv2-api-mapping/index.js';
import { Apigatewayv2Authorizer } from '@cdktf/provider-aws/lib/apigatewayv2-authorizer/index.js';
import { Apigatewayv2DomainName } from '@cdktf/provider-aws/lib/apigatewayv2-domain-name/index.js';
import { Apigatewayv2Integration } from '@cdktf/provider-aws/lib/apigatewayv2-integration/index.js';
import { Apigatewayv2Route } from '@cdktf/provider-aws/lib/apigatewayv2-route/index.js';
import { Apigatewayv2Stage } from '@cdktf/provider-aws/lib/apigatewayv2-stage/index.js';
import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group/index.js';
import { LambdaPermission } from '@cdktf/provider-aws/lib/lambda-permission/index.js';
import type { LambdaFunction } from '@cdktf/provider-aws/lib/lambda-function/index.js';
import { Route53Record } from '@cdktf/provider-aws/lib/route53-record/index.js';
import { Fn } from 'cdktf';
import { rolesSatisfying } from '../../functions/query-api/access.ts';
import { API_ROUTES, routeKey } from '../../functions/query-api/route-table.ts';

export interface HttpApiProps {
  readonly apiName: string;
  readonly handler: LambdaFunction;
  readonly jwt: { readonly issuer: string; readonly audience: readonly string[] };
  /**
   * Which claim carries the roles. Only `scope` can be checked by API Gateway (each route's
   * authorization scopes are the roles that satisfy it, with the prefix); with any other claim
   * the query API checks the roles itself (it always does, either way).
   */
  readonly roles: { readonly claim: string; readonly prefix: string };
  readonly throttle: { readonly ratePerSecond: number; readonly burst: number };
  readonly corsOrigins: readonly string[];
  readonly logRetentionDays: number;
  readonly kmsKeyArn: string;
  readonly domain?: { readonly name: string; readonly hostedZoneId: string };
}

export class HttpApi extends Construct {
  readonly api: Apigatewayv2Api;
  /** {api-id}.execute-api.{region}.amazonaws.com: reachable without the custom domain. */
  readonly endpointHost: string;
  readonly domainTarget?: { readonly name: string; readonly hostedZoneId: string };

  constructor(scope: Construct, id: string, props: HttpApiProps) {
    super(scope, id);
    this.api = new Apigatewayv2Api(this, 'api', {
      name: props.apiName,
      protocolType: 'HTTP',
      ...(props.corsOrigins.length > 0
        ? {
            corsConfiguration: {
              allowOrigins: [...props.corsOrigins],
              allowMethods: ['GET', 'POST', 'PATCH'],
              allowHeaders: ['authorization', 'content-type'],
              maxAge: 3600,
            },
          }
        : {}),
    });
    this.endpointHost = Fn.replace(this.api.apiEndpoint, 'https://', '');

    const authorizer = new Apigatewayv2Authorizer(this, 'jwt', {
      apiId: this.api.id,
      name: 'jwt',
      authorizerType: 'JWT',
      identitySources: ['$request.header.Authorization'],
      jwtConfiguration: { issuer: props.jwt.issuer, audience: [...props.jwt.audience] },
    });
    const integration = new Apigatewayv2Integration(this, 'query-api', {
      apiId: this.api.id,
      integrationType: 'AWS_PROXY',
      integrationUri: props.handler.invokeArn,
      payloadFormatVersion: '2.0',
    });
    for (const route of API_ROUTES) {
      new Apigatewayv2Route(this, `route-${route.method}-${route.path}`.toLowerCase().replace(/[^a-z0-9-]+/g, '-'), {
        apiId: this.api.id,
        routeKey: routeKey(route),
        target: `integrations/${integration.id}`,
        ...(route.public ? { authorizationType: 'NONE' } : { authorizationType: 'JWT', authorizerId: authorizer.id }),
        ...(!route.public && props.roles.claim === 'scope' && route.roles.length > 0
          ? { authorizationScopes: rolesSatisfying(route.roles).map((role) => `${props.roles.prefix}${role}`) }
          : {}),
      });
    }

    const accessLogs = new CloudwatchLogGroup(this, 'access-logs', {
      name: `/aws/apigateway/${props.apiName}`,
      retentionInDays: props.logRetentionDays,
      kmsKeyId: props.kmsKeyArn,
    });
    const stage = new Apigatewayv2Stage(this, 'stage', {
      apiId: this.api.id,
      name: '$default',
      autoDeploy: true,
      defaultRouteSettings: {
        throttlingRateLimit: props.throttle.ratePerSecond,
        throttlingBurstLimit: props.throttle.burst,
      },
      accessLogSettings: {
        destinationArn: accessLogs.arn,
        format: JSON.stringify({
          requestId: '$context.requestId',
          ip: '$context.identity.sourceIp',
          requestTime: '$context.requestTime',
          routeKey: '$context.routeKey',
          status: '$context.status',
          latencyMs: '$context.responseLatency',
          integrationError: '$context.integrationErrorMessage',
          authorizerError: '$context.authorizer.error',
          subject: '$context.authorizer.claims.sub',
        }),
      },
    });
    // API Gateway may invoke query-api, and only through this API's stage.
    new LambdaPermission(this, 'invoke', {
      statementId: 'AllowHttpApi',
      action: 'lambda:InvokeFunction',
      functionName: props.handler.functionName,
      principal: 'apigateway.amazonaws.com',
      sourceArn: `${this.api.executionArn}/*/*`,
    });

    if (props.domain) {
      const certificate = new AcmCertificate(this, 'certificate', {
        domainName: props.domain.name,
        validationMethod: 'DNS',
        lifecycle: { createBeforeDestroy: true },
      });
      const validationRecord = new Route53Record(this, 'certificate-validation-record', {
        zoneId: props.domain.hostedZoneId,
        name: certificate.domainValidationOptions.get(0).resourceRecordName,
        type: certificate.domainValidationOptions.get(0).resourceRecordType,
        records: [certificate.domainValidationOptions.get(0).resourceRecordValue],
        ttl: 300,
        // Every region's certificate for the same name asks for the same validation record.
        allowOverwrite: true,
      });
      const validation = new AcmCertificateValidation(this, 'certificate-validation', {
        certificateArn: certificate.arn,
        validationRecordFqdns: [validationRecord.fqdn],
      });
      const domainName = new Apigatewayv2DomainName(this, 'domain', {
        domainName: props.domain.name,
        domainNameConfiguration: {
          certificateArn: validation.certificateArn,
          endpointType: 'REGIONAL',
          securityPolicy: 'TLS_1_2',
        },
      });
      new Apigatewayv2ApiMapping(this, 'mapping', { apiId: this.api.id, domainName: domainName.id, stage: stage.id });
      this.domainTarget = {
        name: domainName.domainNameConfiguration.targetDomainName,
        hostedZoneId: domainName.domainNameConfiguration.hostedZoneId,
      };
    }
  }
}
