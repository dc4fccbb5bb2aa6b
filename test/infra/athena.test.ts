/**
 * The SQL engine's Athena workgroup and grants, read from the synthesised Terraform: one
 * workgroup per region with its results encrypted in the data bucket, and only recon may use it,
 * on its workgroup, its run databases and its prefixes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ATHENA_DATABASE_PREFIX,
  ENV,
  FUNCTION_NAMES,
  PREFIXES,
  athenaWorkgroupName,
  awsBucketName,
} from '../../functions/shared/resources.ts';
import { resourcesOf, synth, type Json, type Synthesised } from './synth.ts';

let out: Synthesised;
beforeAll(() => {
  out = synth();
});
afterAll(() => out?.cleanup());

const regional = () =>
  [
    ['primary', () => out.primary],
    ['secondary', () => out.secondary],
  ] as const;

function workgroupOf(stack: Json): [string, Json] {
  const found = resourcesOf(stack, 'aws_athena_workgroup');
  expect(found).toHaveLength(1);
  return found[0] as [string, Json];
}

function fnStatements(stack: Json, name: string): Json[] {
  const [, fn] = resourcesOf(stack, 'aws_lambda_function').find(
    ([, f]) => f.function_name === `${out.config.prefix}-${name}`,
  ) as [string, Json];
  const role = /^\$\{aws_iam_role\.([^.]+)\.arn\}$/.exec(fn.role as string)?.[1];
  const [, policy] = resourcesOf(stack, 'aws_iam_role_policy').find(
    ([, p]) => p.role === `\${aws_iam_role.${role}.id}`,
  ) as [string, Json];
  const doc = /data\.aws_iam_policy_document\.([^.]+)\.json/.exec(policy.policy as string)?.[1] as string;
  return stack.data.aws_iam_policy_document[doc].statement as Json[];
}

describe.each(regional())('the %s stack: Athena for the SQL engine', (role, stackOf) => {
  it('has one engine v3 workgroup, settings enforced, results encrypted with the data key in the data bucket', () => {
    const stack = stackOf();
    const [, wg] = workgroupOf(stack);
    const [, bucket] = resourcesOf(stack, 'aws_s3_bucket')[0] as [string, Json];
    const config = wg.configuration as Json;
    const result = config.result_configuration as Json;

    expect(wg.name).toBe(athenaWorkgroupName(out.config.prefix));
    expect(config.enforce_workgroup_configuration).toBe(true);
    expect(config.engine_version.selected_engine_version).toBe('Athena engine version 3');
    expect(config.bytes_scanned_cutoff_per_query).toBeGreaterThan(0);
    expect(result.output_location).toBe(
      `s3://${awsBucketName(out.config.prefix, out.config.regions[role])}/${PREFIXES.athenaResults}`,
    );
    expect(bucket.bucket).toBe(awsBucketName(out.config.prefix, out.config.regions[role]));
    expect(result.encryption_configuration).toEqual({
      encryption_option: 'SSE_KMS',
      kms_key_arn: expect.stringMatching(/^\$\{(aws_kms_key|data\.aws_kms_alias)\./),
    });
  });

  it("expires the run tables and Athena's result files after a day", () => {
    const stack = stackOf();
    const [, lifecycle] = resourcesOf(stack, 'aws_s3_bucket_lifecycle_configuration')[0] as [string, Json];
    const rules = lifecycle.rule as Json[];
    for (const prefix of [PREFIXES.athenaScratch, PREFIXES.athenaResults]) {
      const rule = rules.find((r) => r.filter?.prefix === prefix || r.filter?.[0]?.prefix === prefix);
      expect(rule, prefix).toBeDefined();
      expect(JSON.stringify(rule?.expiration)).toContain('"days":1');
    }
  });

  it('lets recon alone run queries, only in its workgroup, on its run databases and its prefixes', () => {
    const stack = stackOf();
    const [wgId] = workgroupOf(stack);
    for (const name of FUNCTION_NAMES) {
      const statements = fnStatements(stack, name);
      const actions = statements.flatMap((s) => s.actions as string[]);
      const usesAthena = actions.some((a) => a.startsWith('athena:') || a.startsWith('glue:'));
      expect({ name, usesAthena }).toEqual({ name, usesAthena: name === 'recon' });
    }
    const recon = fnStatements(stack, 'recon');
    const sid = (id: string) => recon.find((s) => s.sid === id) as Json;
    expect(sid('AthenaQueriesInWorkgroup')).toMatchObject({
      actions: ['athena:StartQueryExecution', 'athena:GetQueryExecution', 'athena:GetQueryResults'],
      resources: [`\${aws_athena_workgroup.${wgId}.arn}`],
    });
    const catalog = sid('AthenaRunCatalog');
    expect(catalog.resources).toHaveLength(3);
    expect(catalog.resources.slice(1)).toEqual([
      expect.stringMatching(new RegExp(`:database/${ATHENA_DATABASE_PREFIX}\\*$`)),
      expect.stringMatching(new RegExp(`:table/${ATHENA_DATABASE_PREFIX}\\*/\\*$`)),
    ]);
    expect(catalog.actions.every((a: string) => a.startsWith('glue:') && !a.includes('*'))).toBe(true);
    const onPrefixes = (id: string) =>
      (sid(id).resources as string[]).map((r) => r.replace(/^.*\.arn\}\//, '').replace(/\*$/, ''));
    expect(onPrefixes('AthenaReadRunObjects')).toEqual([
      PREFIXES.incoming,
      PREFIXES.athenaScratch,
      PREFIXES.athenaResults,
    ]);
    expect(onPrefixes('AthenaWriteRunObjects')).toEqual([
      PREFIXES.athenaScratch,
      PREFIXES.athenaResults,
      PREFIXES.results,
    ]);
    expect(sid('AthenaUseDataKeyThroughS3').condition).toEqual([
      {
        test: 'StringEquals',
        variable: 'kms:ViaService',
        values: [`s3.${out.config.regions[role]}.amazonaws.com`],
      },
    ]);
  });

  it('tells recon the workgroup, and no other function', () => {
    const stack = stackOf();
    const [wgId] = workgroupOf(stack);
    for (const [, fn] of resourcesOf(stack, 'aws_lambda_function')) {
      const variables = (fn.environment?.variables ?? {}) as Record<string, string>;
      const isRecon = fn.function_name === `${out.config.prefix}-recon`;
      // By reference: the function is created after the workgroup it names.
      expect(variables[ENV.athenaWorkgroup]).toBe(isRecon ? `\${aws_athena_workgroup.${wgId}.name}` : undefined);
    }
  });
});
