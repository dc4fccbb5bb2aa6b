/**
 * Triage's spending in the synthesised stacks: the daily budget reaches the functions that use it,
 * an alarm watches the metric triage emits past it, and the routing rules are checked at synth
 * and their models granted to triage alone.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV, METRICS } from '../../functions/shared/resources.ts';
import { InfraConfigError, parseInfraConfig } from '../../infra/config.ts';
import { RUNBOOKS } from '../../infra/constructs/alarms.ts';
import { DEFAULT_UNCITED_SETTLE_SECONDS } from '../../functions/triage/config.ts';
import { FULL_CONFIG, resourcesOf, statementsIn, synth, type Json, type Synthesised } from './synth.ts';

const ROUTED_MODEL = 'amazon.nova-pro-v1:0';
const ROUTES = [
  {
    name: 'critical-amounts',
    match: { exception_type: 'AMOUNT_MISMATCH', policy_severity: ['CRITICAL'] },
    providers: `bedrock:${ROUTED_MODEL},rules`,
  },
  { name: 'invalid-rows', match: { exception_type: 'INVALID_RECORD' }, providers: 'rules' },
];

let out: Synthesised;
beforeAll(() => {
  out = synth({ ...FULL_CONFIG, triage: { dailyBudgetUsd: 12.5, routes: ROUTES } });
});
afterAll(() => out.cleanup());

const fnNamed = (stack: Json, name: string) =>
  resourcesOf(stack, 'aws_lambda_function').find(([, f]) => f.function_name === `acme-tally-${name}`)?.[1] as Json;

describe('triage budget and routes in the stacks', () => {
  it('alarms when triage answers with rules for a spent budget, naming its runbook', () => {
    for (const stack of [out.primary, out.secondary]) {
      const alarm = resourcesOf(stack, 'aws_cloudwatch_metric_alarm')
        .map(([, a]) => a as Json)
        .find((a) => a.alarm_name === 'acme-tally-triage-budget') as Json;
      expect(alarm).toMatchObject({
        namespace: METRICS.namespace,
        metric_name: METRICS.triageBudgetExceeded.name,
        dimensions: { service: 'triage' },
        statistic: 'Sum',
        comparison_operator: 'GreaterThanThreshold',
        threshold: 0,
        treat_missing_data: 'notBreaching',
      });
      expect(alarm.alarm_description).toContain(RUNBOOKS.triageBudget);
      expect(alarm.alarm_description).toContain('12.5 USD');
    }
    expect(existsSync(new URL(`../../${RUNBOOKS.triageBudget}`, import.meta.url))).toBe(true);
  });

  it('gives the budget to triage (which enforces it) and the query API (which reports it), and the routes to triage', () => {
    const triage = fnNamed(out.primary, 'triage').environment.variables;
    const api = fnNamed(out.primary, 'query-api').environment.variables;

    expect(triage[ENV.triageDailyBudgetUsd]).toBe('12.5');
    expect(api[ENV.triageDailyBudgetUsd]).toBe('12.5');
    expect(JSON.parse(triage[ENV.triageRoutes] as string)).toEqual(ROUTES);
    expect(api[ENV.triageRoutes]).toBeUndefined();
    expect(fnNamed(out.primary, 'store').environment.variables[ENV.triageDailyBudgetUsd]).toBeUndefined();
  });

  it("gives triage, and nothing else, the uncited sweep's settling time, in both regions", () => {
    for (const stack of [out.primary, out.secondary]) {
      const settles = resourcesOf(stack, 'aws_lambda_function')
        .map(([, f]) => f as Json)
        .filter((f) => f.environment?.variables?.[ENV.uncitedSettleSeconds] !== undefined)
        .map((f) => [f.function_name, f.environment.variables[ENV.uncitedSettleSeconds]]);
      expect(settles).toEqual([['acme-tally-triage', String(DEFAULT_UNCITED_SETTLE_SECONDS)]]);
    }
  });

  it('grants InvokeModel on a routed model to triage only', () => {
    const granted = statementsIn(out.primary).filter(({ statement }) =>
      ((statement.resources ?? []) as string[]).some((r) => r.endsWith(`foundation-model/${ROUTED_MODEL}`)),
    );

    expect(granted).toHaveLength(1);
    expect(granted[0]?.document).toMatch(/triage/);
    expect(granted[0]?.statement.actions).toEqual(['bedrock:InvokeModel']);
  });

  it('has a default budget, so every deployment has one and its alarm', () => {
    expect(parseInfraConfig({}).triage.dailyBudgetUsd).toBe(50);
  });

  it('refuses invalid routes at synth, naming the rule', () => {
    const attempt = (routes: unknown[]) => () => parseInfraConfig({ ...FULL_CONFIG, triage: { routes } });

    expect(attempt([{ name: 'x', providers: 'rules,bedrock:m' }])).toThrow(
      /triage\.routes:.*rule 1 "x": rules must end/,
    );
    expect(attempt([{ name: 'o', providers: 'openai:gpt' }])).toThrow(/rule 1 "o": names an openai provider/);
    expect(attempt([{ name: 'a', match: { exception_type: 'NOPE' }, providers: 'rules' }])).toThrow(InfraConfigError);
    expect(() => parseInfraConfig({ triage: { dailyBudgetUsd: 0.0000001 } })).toThrow(/dailyBudgetUsd/);
  });
});
