/**
 * Alarms that see failures, and a dashboard that plots only what the functions emit: both read
 * from the METRICS registry, checked here on the synthesised Terraform.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRICS, METRIC_KEYS, QUEUES } from '../../functions/shared/resources.ts';
import { RUNBOOKS } from '../../infra/constructs/alarms.ts';
import { resourcesOf, synth, type Json, type Synthesised } from './synth.ts';

let out: Synthesised;
beforeAll(() => {
  out = synth();
});
afterAll(() => out.cleanup());

const alarms = (stack: Json) => resourcesOf(stack, 'aws_cloudwatch_metric_alarm').map(([, a]) => a as Json);
const alarmNamed = (stack: Json, name: string) => alarms(stack).find((a) => a.alarm_name === name) as Json;

/** Every custom metric name a dashboard widget plots, from metric arrays and SEARCH expressions. */
function plottedCustomMetrics(stack: Json): string[] {
  const [, dashboard] = resourcesOf(stack, 'aws_cloudwatch_dashboard')[0] as [string, Json];
  const body = JSON.parse(dashboard.dashboard_body as string) as { widgets: { properties: { metrics: unknown[] } }[] };
  const names: string[] = [];
  for (const widget of body.widgets) {
    for (const entry of widget.properties.metrics as unknown[][]) {
      const [first, second] = entry;
      if (first === METRICS.namespace) names.push(second as string);
      if (typeof first === 'object' && first !== null && 'expression' in first) {
        const expression = (first as { expression: string }).expression;
        if (expression.includes(`{${METRICS.namespace},`)) {
          const m = /MetricName="([^"]+)"/.exec(expression);
          if (m) names.push(m[1] as string);
        }
      }
    }
  }
  return names;
}

describe('the dashboard', () => {
  it('plots only metrics of the registry (a plotted metric nothing emits fails here)', () => {
    const registered = new Set<string>(METRIC_KEYS.map((k) => METRICS[k].name));
    const plotted = plottedCustomMetrics(out.primary);

    expect(plotted.length).toBeGreaterThan(0);
    expect(plotted.filter((name) => !registered.has(name))).toEqual([]);
  });

  it('plots every metric of the registry', () => {
    const plotted = new Set(plottedCustomMetrics(out.secondary));

    expect(METRIC_KEYS.map((k) => METRICS[k].name).filter((name) => !plotted.has(name))).toEqual([]);
  });
});

describe('alarms', () => {
  it.each(Object.values(QUEUES).map((q) => q.consumer))(
    '%s alarms on any failed record (partial batch failures keep Lambda Errors at 0)',
    (service) => {
      for (const stack of [out.primary, out.secondary]) {
        const alarm = alarmNamed(stack, `acme-tally-${service}-failed-records`);
        expect(alarm).toMatchObject({
          namespace: 'Tally',
          metric_name: 'FailedRecords',
          dimensions: { service },
          statistic: 'Sum',
          comparison_operator: 'GreaterThanThreshold',
          threshold: 0,
        });
      }
    },
  );

  it('the API alarms on any 5xx and on p95 latency, by API id', () => {
    const errors = alarmNamed(out.primary, 'acme-tally-api-5xx');
    const latency = alarmNamed(out.primary, 'acme-tally-api-latency-p95');

    expect(errors).toMatchObject({ namespace: 'AWS/ApiGateway', metric_name: '5xx', threshold: 0 });
    expect(String(errors.dimensions.ApiId)).toMatch(/aws_apigatewayv2_api\./);
    expect(latency).toMatchObject({ metric_name: 'Latency', extended_statistic: 'p95', evaluation_periods: 3 });
  });

  it('triage alarms on the share of degraded answers, quiet when nothing is triaged', () => {
    const alarm = alarmNamed(out.primary, 'acme-tally-triage-degraded');
    const queries = alarm.metric_query as Json[];

    expect(queries.map((q) => q.id)).toEqual(['degraded', 'total', 'share']);
    expect(queries[0]?.metric.metric_name).toBe(METRICS.triageDegraded.name);
    expect(queries[1]?.metric.metric_name).toBe(METRICS.triages.name);
    expect(queries[2]?.expression).toBe('IF(total > 0, degraded / total, 0)');
    expect(alarm.threshold).toBe(0.2);
  });

  it('the global stack alarms on the health check in us-east-1, to its own encrypted topic', () => {
    const global = out.global as Json;
    const alarm = alarmNamed(global, 'acme-tally-primary-health-check');
    const [, topic] = resourcesOf(global, 'aws_sns_topic')[0] as [string, Json];

    expect(global.provider.aws[0].region).toBe('us-east-1');
    expect(alarm).toMatchObject({
      namespace: 'AWS/Route53',
      metric_name: 'HealthCheckStatus',
      comparison_operator: 'LessThanThreshold',
      threshold: 1,
    });
    expect(String(alarm.dimensions.HealthCheckId)).toMatch(/aws_route53_health_check\./);
    expect(topic.kms_master_key_id).toBeTruthy();
    expect(resourcesOf(global, 'aws_sns_topic_subscription')).toHaveLength(1);
  });

  it('the sweep runs every five minutes, invocable by its schedule only, and alarms when it finds anything', () => {
    for (const stack of [out.primary, out.secondary]) {
      const rule = resourcesOf(stack, 'aws_cloudwatch_event_rule')
        .map(([, r]) => r as Json)
        .find((r) => r.name === 'acme-tally-sweep');
      const [, permission] = resourcesOf(stack, 'aws_lambda_permission').find(([, p]) =>
        String((p as Json).function_name).includes('sweep'),
      ) as [string, Json];
      // The deadline sweep, the same way every fifteen minutes.
      expect(
        resourcesOf(stack, 'aws_cloudwatch_event_rule')
          .map(([, r]) => r as Json)
          .find((r) => r.name === 'acme-tally-deadlines'),
      ).toMatchObject({ schedule_expression: 'rate(15 minutes)' });

      expect(rule).toMatchObject({ name: 'acme-tally-sweep', schedule_expression: 'rate(5 minutes)' });
      expect(permission).toMatchObject({ principal: 'events.amazonaws.com', action: 'lambda:InvokeFunction' });
      expect(String(permission.source_arn)).toMatch(/aws_cloudwatch_event_rule\..*\.arn/);
      expect(alarmNamed(stack, 'acme-tally-unrecorded-uploads')).toMatchObject({
        metric_name: METRICS.unrecordedUploads.name,
        dimensions: { service: 'sweep' },
        threshold: 0,
      });
    }
  });

  it("every alarm's description names a runbook page that exists", () => {
    const all = [out.primary, out.secondary, out.global as Json].flatMap(alarms);
    expect(all.length).toBeGreaterThan(10);
    for (const alarm of all) {
      const page = /see (docs\/runbooks\/[a-z0-9-]+\.md)/.exec(alarm.alarm_description as string)?.[1];
      expect(page, alarm.alarm_name as string).toBeDefined();
      expect(existsSync(page as string), page).toBe(true);
    }
    for (const page of Object.values(RUNBOOKS)) expect(existsSync(page), page).toBe(true);
  });
});
