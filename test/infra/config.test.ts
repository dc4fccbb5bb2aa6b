/** Configuration, defaults and partial function sets: synth must work on a clean clone. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InfraConfigError, loadInfraConfig, parseInfraConfig } from '../../infra/config.ts';
import { MissingBundleError, locateBundles } from '../../infra/bundles.ts';
import { ENV, FUNCTIONS, QUEUES, VISIBILITY_TIMEOUT_FACTOR, resourceNames } from '../../functions/shared/resources.ts';
import { reconMemoryBudgetFor } from '../../infra/access.ts';
import { resourcesOf, statementsIn, synth, FULL_CONFIG, type Json } from './synth.ts';

describe('infra configuration', () => {
  it('an empty configuration synthesises primary, secondary and global stacks without a domain', () => {
    const out = synth({});
    try {
      expect(out.config.regions).toEqual({ primary: 'eu-west-1', secondary: 'eu-central-1' });
      expect(resourcesOf(out.global as never, 'aws_route53_health_check')).toHaveLength(1);
      expect(resourcesOf(out.global as never, 'aws_route53_record')).toEqual([]);
      expect(resourcesOf(out.primary, 'aws_apigatewayv2_domain_name')).toEqual([]);
      expect(out.stacks.notes.join('\n')).toContain('no domain configured');
    } finally {
      out.cleanup();
    }
  });

  it('the example configuration in the repository is valid', () => {
    const example = JSON.parse(
      readFileSync(new URL('../../infra/tally.config.example.json', import.meta.url), 'utf8'),
    ) as unknown;
    expect(parseInfraConfig(example).domain?.apiDomainName).toBe('api.tally.acme.example');
  });

  it('names every invalid field in one error', () => {
    const attempt = () =>
      parseInfraConfig({
        prefix: 'Bad_Prefix',
        regions: { primary: 'eu-west-1', secondary: 'eu-west-1' },
        alarmEmail: 'not-mail',
        extra: 1,
      });

    expect(attempt).toThrow(InfraConfigError);
    expect(attempt).toThrow(/prefix:.*regions:.*alarmEmail:/s);
  });

  it('reads a JSON file named by TALLY_INFRA_CONFIG and refuses a missing one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tally-config-'));
    try {
      const file = join(dir, 'tally.json');
      writeFileSync(file, JSON.stringify(FULL_CONFIG));
      expect(loadInfraConfig({ TALLY_INFRA_CONFIG: file }).prefix).toBe('acme-tally');
      expect(() => loadInfraConfig({ TALLY_INFRA_CONFIG: join(dir, 'nope.json') })).toThrow(/does not exist/);
      expect(loadInfraConfig({ TALLY_INFRA_CONFIG_JSON: '{"prefix":"inline"}' }).prefix).toBe('inline');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a longer consumer timeout from config stretches its queue's visibility timeout with it", () => {
    const out = synth({ ...FULL_CONFIG, functions: { recon: { timeoutSeconds: 600 } } });
    try {
      const recon = resourcesOf(out.primary, 'aws_sqs_queue')
        .map(([, q]) => q)
        .find((q) => q.name === resourceNames('acme-tally').queues.recon.main);
      expect(recon?.visibility_timeout_seconds).toBe(VISIBILITY_TIMEOUT_FACTOR * 600);
      expect(QUEUES.recon.consumerTimeoutSeconds).not.toBe(600);
    } finally {
      out.cleanup();
    }
  });
});

describe('recon settings from configuration', () => {
  it("sets recon's /tmp size and derives its memory budget from its configured memory", () => {
    const out = synth({ ...FULL_CONFIG, functions: { recon: { memoryMb: 4096, ephemeralStorageMb: 4096 } } });
    try {
      for (const stack of [out.primary, out.secondary]) {
        const recon = resourcesOf(stack, 'aws_lambda_function')
          .map(([, f]) => f)
          .find((f) => f.function_name === 'acme-tally-recon');
        expect(recon?.memory_size).toBe(4096);
        expect(recon?.ephemeral_storage).toEqual({ size: 4096 });
        expect(recon?.environment.variables[ENV.reconMemoryBudgetBytes]).toBe(String(reconMemoryBudgetFor(4096)));
      }
    } finally {
      out.cleanup();
    }
  });

  it('refuses a /tmp size Lambda does not offer', () => {
    expect(() => parseInfraConfig({ functions: { recon: { ephemeralStorageMb: 20480 } } })).toThrow(
      /ephemeralStorageMb/,
    );
    expect(() => parseInfraConfig({ functions: { recon: { ephemeralStorageMb: 256 } } })).toThrow(/ephemeralStorageMb/);
  });
});

describe('store concurrency', () => {
  it("is a setting: the store consumer's event source takes functions.store.maxConcurrency", () => {
    const out = synth({ ...FULL_CONFIG, functions: { store: { maxConcurrency: 20 } } });
    try {
      const store = resourcesOf(out.primary, 'aws_lambda_event_source_mapping')
        .map(([, m]) => m)
        .find((m) => String(m.function_name).includes('aws_lambda_function.store'));
      expect(store?.scaling_config).toEqual({ maximum_concurrency: 20 });
      expect(FUNCTIONS.store.maxConcurrency).not.toBe(20);
    } finally {
      out.cleanup();
    }
  });
});

describe('function bundles', () => {
  it('a function without handler.ts yet is left out with its wiring, and synth says so', () => {
    const out = synth(FULL_CONFIG, ['ingest-worker', 'recon', 'query-api']);
    try {
      const functions = resourcesOf(out.primary, 'aws_lambda_function').map(([, f]) => f.function_name);
      expect(functions).not.toContain('acme-tally-triage');
      expect(resourcesOf(out.primary, 'aws_lambda_event_source_mapping')).toHaveLength(2);
      // The triage queue still exists (recon sends to it) and still has its DLQ and alarm.
      expect(resourcesOf(out.primary, 'aws_sqs_queue').map(([, q]) => q.name)).toContain('acme-tally-triage-dlq');
      expect(out.stacks.notes.join('\n')).toContain('functions/triage/handler.ts does not exist yet');
    } finally {
      out.cleanup();
    }
  });

  it('without query-api there is no HTTP API and no failover stack', () => {
    const out = synth(FULL_CONFIG, ['ingest-worker', 'recon']);
    try {
      expect(resourcesOf(out.primary, 'aws_apigatewayv2_api')).toEqual([]);
      expect(out.global).toBeUndefined();
    } finally {
      out.cleanup();
    }
  });

  it('a function whose handler exists but whose bundle is missing stops synth with what to run', () => {
    const root = mkdtempSync(join(tmpdir(), 'tally-bundles-'));
    try {
      mkdirSync(join(root, 'functions', 'recon'), { recursive: true });
      writeFileSync(join(root, 'functions', 'recon', 'handler.ts'), 'export const handler = 1;\n');

      expect(() => locateBundles(root)).toThrow(MissingBundleError);
      expect(() => locateBundles(root)).toThrow(/no bundle for recon .*npm run build/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('Bedrock Guardrails from configuration', () => {
  it("gives the triage function of that region its guardrail and the grant to apply it, and no other region's", () => {
    const out = synth({ ...FULL_CONFIG, guardrails: { 'eu-west-1': { id: 'gr1abc2def3', version: '4' } } });
    try {
      const triage = (stack: Json) =>
        resourcesOf(stack, 'aws_lambda_function')
          .map(([, f]) => f)
          .find((f) => f.function_name === 'acme-tally-triage');
      const applies = (stack: Json) =>
        statementsIn(stack).filter(({ statement }) =>
          (statement.actions as string[]).includes('bedrock:ApplyGuardrail'),
        );
      expect(triage(out.primary)?.environment.variables[ENV.bedrockGuardrail]).toBe('gr1abc2def3:4');
      expect(applies(out.primary).map(({ statement }) => statement.resources)).toEqual([
        [
          'arn:${data.aws_partition.partition.partition}:bedrock:eu-west-1:${data.aws_caller_identity.account.account_id}:guardrail/gr1abc2def3',
        ],
      ]);
      expect(triage(out.secondary)?.environment.variables[ENV.bedrockGuardrail]).toBeUndefined();
      expect(applies(out.secondary)).toEqual([]);
    } finally {
      out.cleanup();
    }
  });

  it('refuses a guardrail that is not an id and a version', () => {
    expect(() => parseInfraConfig({ guardrails: { 'eu-west-1': { id: 'Bad Id', version: '1' } } })).toThrow(/id/);
    expect(() => parseInfraConfig({ guardrails: { 'eu-west-1': { id: 'gr1', version: 'latest' } } })).toThrow(
      /version/,
    );
  });
});
