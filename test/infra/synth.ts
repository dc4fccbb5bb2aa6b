/**
 * Synthesises the real app into a temp directory and reads back each stack's Terraform JSON.
 * The function bundles are stubs written here (infra tests check the Terraform, not the code,
 * and must not depend on a previous `npm run build`).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { App } from 'cdktf';
import { buildTally, stackIds, type TallyStacks } from '../../infra/app.ts';
import type { Bundles } from '../../infra/bundles.ts';
import { parseInfraConfig, type InfraConfig } from '../../infra/config.ts';
import { FUNCTION_NAMES, type FunctionName } from '../../functions/shared/resources.ts';

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface Synthesised {
  readonly config: InfraConfig;
  readonly stacks: TallyStacks;
  readonly primary: Json;
  readonly secondary: Json;
  readonly replication: Json;
  readonly global?: Json;
  readonly cleanup: () => void;
}

/** A configuration a real deployment would use: domain, alarm e-mail, browser origin. */
export const FULL_CONFIG = {
  prefix: 'acme-tally',
  regions: { primary: 'eu-west-1', secondary: 'eu-central-1' },
  state: { bucket: 'acme-terraform-state', region: 'eu-north-1', keyPrefix: 'tally' },
  domain: { apiDomainName: 'api.tally.acme.example', hostedZoneId: 'Z0123456789ABCDEFGHIJ' },
  alarmEmail: 'oncall@acme.example',
  auth: { issuer: 'https://login.acme.example/', audience: ['tally'] },
  models: {
    triage: 'eu.anthropic.claude-3-7-sonnet-20250219-v1:0',
    fallback: 'anthropic.claude-3-haiku-20240307-v1:0',
    embedding: 'amazon.titan-embed-text-v2:0',
  },
  api: { corsOrigins: ['https://tally.acme.example'] },
};

/** A stand-in for `npm run build:web`'s output (dist/web). */
export const WEB_STUB_FILES: Readonly<Record<string, string>> = {
  'index.html': '<!doctype html><title>Tally</title>',
  'assets/app-ABC123.js': 'console.log("tally");',
  'assets/app-ABC123.js.map': '{}',
  'assets/app-DEF456.css': 'body{}',
  'docs/runbooks/dlq-depth.md': '# DLQ depth',
};

export function synth(
  rawConfig: unknown = FULL_CONFIG,
  functions: readonly FunctionName[] = FUNCTION_NAMES,
  options: { webBuild?: boolean } = {},
): Synthesised {
  const dir = mkdtempSync(join(tmpdir(), 'tally-infra-'));
  const distDir = join(dir, 'dist');
  for (const name of functions) {
    mkdirSync(join(distDir, name), { recursive: true });
    writeFileSync(join(distDir, name, 'index.mjs'), `export const handler = async () => '${name}';\n`);
  }
  if (options.webBuild ?? true) {
    for (const [file, content] of Object.entries(WEB_STUB_FILES)) {
      mkdirSync(dirname(join(distDir, 'web', file)), { recursive: true });
      writeFileSync(join(distDir, 'web', file), content);
    }
  }
  const bundles: Bundles = {
    distDir,
    deployed: functions,
    skipped: FUNCTION_NAMES.filter((n) => !functions.includes(n)),
  };
  const config = parseInfraConfig(rawConfig);
  const app = new App({ outdir: join(dir, 'out') });
  const stacks = buildTally(app, config, bundles);
  app.synth();
  const read = (id: string): Json =>
    JSON.parse(readFileSync(join(dir, 'out', 'stacks', id, 'cdk.tf.json'), 'utf8')) as Json;
  const ids = stackIds(config);
  return {
    config,
    stacks,
    primary: read(ids.primary),
    secondary: read(ids.secondary),
    replication: read(ids.replication),
    ...(stacks.global ? { global: read(ids.global) } : {}),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Every resource of one type in a stack, as [construct id, resource config]. */
export function resourcesOf(stack: Json, type: string): [string, Json][] {
  return Object.entries((stack.resource?.[type] ?? {}) as Record<string, Json>);
}

export function dataOf(stack: Json, type: string): [string, Json][] {
  return Object.entries((stack.data?.[type] ?? {}) as Record<string, Json>);
}

/** `${aws_sqs_queue.x.arn}` -> the resource block it points at. */
export function referenced(stack: Json, reference: string): Json {
  const m = /^\$\{([a-z0-9_]+)\.([^.]+)\.[a-z_]+\}$/.exec(reference);
  if (!m) throw new Error(`not a plain reference: ${reference}`);
  const target = stack.resource?.[m[1] as string]?.[m[2] as string];
  if (!target) throw new Error(`dangling reference: ${reference}`);
  return target as Json;
}

/** The reference expression for an attribute of a resource: `${type.id.attribute}`. */
export function ref(type: string, id: string, attribute: string): string {
  return `\${${type}.${id}.${attribute}}`;
}

/** Every statement of every aws_iam_policy_document in a stack, with the document's id. */
export function statementsIn(stack: Json): { document: string; statement: Json }[] {
  return dataOf(stack, 'aws_iam_policy_document').flatMap(([document, doc]) =>
    ((doc.statement ?? []) as Json[]).map((statement) => ({ document, statement })),
  );
}
