/** Routing rules: which provider chain triages an exception, and the configuration errors that stop a deployment. */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../functions/shared/config.ts';
import { triageConfig } from '../../functions/triage/config.ts';
import {
  bedrockModelsOf,
  buildRouteTable,
  chooseRoute,
  DEFAULT_ROUTE,
  parseProviderChain,
  parseRouteTable,
} from '../../functions/triage/routing.ts';

const DEFAULT_CHAIN = parseProviderChain('bedrock:primary,bedrock:fallback,rules').providers;
const STRONG = 'anthropic.claude-3-5-sonnet-20240620-v1:0';
const ROUTES = JSON.stringify([
  {
    name: 'critical-amounts',
    match: { exception_type: 'AMOUNT_MISMATCH', policy_severity: ['CRITICAL'] },
    providers: `bedrock:${STRONG}`,
  },
  { name: 'invalid-rows', match: { exception_type: 'INVALID_RECORD' }, providers: 'rules' },
  {
    name: 'payments',
    match: { dataset: ['payments', 'payments-eu'] },
    providers: 'bedrock:amazon.nova-micro-v1:0,rules',
  },
]);
const table = parseRouteTable(ROUTES, DEFAULT_CHAIN, { openaiConfigured: false });
const ctx = { dataset: 'trades', exceptionType: 'AMOUNT_MISMATCH', policySeverity: 'MEDIUM' } as const;

describe('choosing a route', () => {
  it('sends CRITICAL amount mismatches to the strong model, with rules appended to end the chain', () => {
    const route = chooseRoute(table, { ...ctx, policySeverity: 'CRITICAL' });

    expect(route.name).toBe('critical-amounts');
    expect(route.providers).toEqual([
      { kind: 'bedrock', model: STRONG },
      { kind: 'rules', model: '' },
    ]);
  });

  it('needs every field given to match: a HIGH amount mismatch is not critical-amounts', () => {
    expect(chooseRoute(table, { ...ctx, policySeverity: 'HIGH' }).name).toBe(DEFAULT_ROUTE);
  });

  it('sends INVALID_RECORD to rules only, whatever the dataset', () => {
    const route = chooseRoute(table, { ...ctx, dataset: 'payments', exceptionType: 'INVALID_RECORD' });

    expect(route.name).toBe('invalid-rows');
    expect(route.providers).toEqual([{ kind: 'rules', model: '' }]);
  });

  it('takes the first rule that matches, in configuration order', () => {
    // critical-amounts comes before payments: a CRITICAL amount mismatch of payments goes there.
    expect(chooseRoute(table, { ...ctx, dataset: 'payments', policySeverity: 'CRITICAL' }).name).toBe(
      'critical-amounts',
    );
    expect(chooseRoute(table, { ...ctx, dataset: 'payments-eu' }).name).toBe('payments');
  });

  it('falls back to the default chain (TALLY_TRIAGE_PROVIDERS) when nothing matches, or with no rules at all', () => {
    expect(chooseRoute(table, ctx)).toMatchObject({ name: 'default', providers: DEFAULT_CHAIN });
    const empty = parseRouteTable(undefined, parseProviderChain('bedrock:m').providers, { openaiConfigured: false });
    expect(chooseRoute(empty, ctx).providers).toEqual([
      { kind: 'bedrock', model: 'm' },
      { kind: 'rules', model: '' },
    ]);
  });

  it('treats a rule without match as a catch-all', () => {
    const all = parseRouteTable('[{"name":"all","providers":"rules"}]', DEFAULT_CHAIN, { openaiConfigured: false });
    expect(chooseRoute(all, { ...ctx, exceptionType: 'MISSING_IN_SOURCE' }).name).toBe('all');
  });
});

describe('building the routes once', () => {
  it('builds one provider per distinct kind and model, shared by the routes that name it', () => {
    const built: string[] = [];
    const providers = buildRouteTable(table, (spec) => {
      built.push(`${spec.kind}:${spec.model}`);
      return { id: `${spec.kind}:${spec.model}` };
    });

    expect(built.sort()).toEqual(
      ['bedrock:amazon.nova-micro-v1:0', `bedrock:${STRONG}`, 'bedrock:fallback', 'bedrock:primary', 'rules:'].sort(),
    );
    expect(providers.rules[0]?.providers[1]).toBe(providers.rules[1]?.providers[0]); // the same rules instance
    expect(bedrockModelsOf(table).sort()).toEqual(['amazon.nova-micro-v1:0', STRONG, 'fallback', 'primary'].sort());
  });
});

describe('invalid routes stop the configuration, naming the rule', () => {
  const parse =
    (json: string, openaiConfigured = false) =>
    () =>
      parseRouteTable(json, DEFAULT_CHAIN, { openaiConfigured });

  it.each([
    ['not JSON', '[{', /TALLY_TRIAGE_ROUTES: not JSON/],
    ['not an array', '{"name":"x"}', /expected a JSON array of rules/],
    ['a rule without a name', '[{"providers":"rules"}]', /rule 1: name: needs a "name"/],
    [
      'an unknown exception type',
      '[{"name":"t","match":{"exception_type":"AMOUNT"},"providers":"rules"}]',
      /rule 1 "t": match\.exception_type/,
    ],
    [
      'an unknown severity',
      '[{"name":"s","match":{"policy_severity":["URGENT"]},"providers":"rules"}]',
      /rule 1 "s": match\.policy_severity/,
    ],
    ['an unknown match field', '[{"name":"f","match":{"desk":"FX"},"providers":"rules"}]', /rule 1 "f": match: .*desk/],
    ['a provider of no kind', '[{"name":"p","providers":"claude"}]', /rule 1 "p": "claude" is not a provider/],
    ['rules before a model', '[{"name":"r","providers":"rules,bedrock:m"}]', /rule 1 "r": rules must end the chain/],
    [
      'openai without its endpoint',
      '[{"name":"o","providers":"openai:gpt-4o-mini"}]',
      /rule 1 "o": names an openai provider but TALLY_OPENAI_BASE_URL/,
    ],
    [
      'a name used twice',
      '[{"name":"a","providers":"rules"},{"name":"a","providers":"rules"}]',
      /rule 2 "a": the name is used twice/,
    ],
    ['the reserved name', '[{"name":"default","providers":"rules"}]', /rule 1 "default": the name is reserved/],
    ['no provider', '[{"name":"n","providers":" , "}]', /rule 1 "n": names no provider/],
  ])('%s', (_, json, message) => {
    expect(parse(json)).toThrow(ConfigError);
    expect(parse(json)).toThrow(message);
  });

  it('names every problem of every rule in one error', () => {
    expect(parse('[{"name":"a","providers":"x"},{"name":"b","match":{"dataset":""},"providers":"rules"}]')).toThrow(
      /rule 1 "a": "x" is not a provider.*rule 2 "b": match\.dataset/,
    );
  });

  it('accepts openai when its endpoint is configured', () => {
    expect(parse('[{"name":"o","providers":"openai:gpt-4o-mini"}]', true)).not.toThrow();
  });

  it('is checked when triage loads its configuration, with the prices and the budget', () => {
    const env = {
      TALLY_EXCEPTIONS_TABLE: 'e',
      TALLY_CIRCUIT_BREAKER_TABLE: 'c',
      TALLY_RUNS_TABLE: 'r',
      TALLY_USAGE_TABLE: 'u',
      TALLY_PATTERNS_TABLE: 'p',
      TALLY_TRIAGE_QUEUE_URL: 'http://queue/triage',
      TALLY_BUCKET: 'b',
      TALLY_BUSINESS_EVENTS_TOPIC_ARN: 'arn:aws:sns:us-east-1:000000000000:tally-business-events',
    };

    expect(() => triageConfig({ ...env, TALLY_TRIAGE_ROUTES: '[{"name":"x"}]' })).toThrow(/rule 1 "x": providers/);
    expect(() => triageConfig({ ...env, TALLY_TRIAGE_PRICES: '{"m":{"input_per_million_usd":-1}}' })).toThrow(
      /TALLY_TRIAGE_PRICES/,
    );
    expect(() => triageConfig({ ...env, TALLY_TRIAGE_DAILY_BUDGET_USD: 'ten' })).toThrow(
      /TALLY_TRIAGE_DAILY_BUDGET_USD: must be an amount/,
    );
    const config = triageConfig({ ...env, TALLY_TRIAGE_DAILY_BUDGET_USD: '12.345678', TALLY_TRIAGE_ROUTES: ROUTES });
    expect(config.TALLY_TRIAGE_DAILY_BUDGET_USD).toBe(12_345_678);
    expect(config.routes.rules.map((r) => r.name)).toEqual(['critical-amounts', 'invalid-rows', 'payments']);
  });
});
