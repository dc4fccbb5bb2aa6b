/**
 * The triage golden set: labelled exceptions, each with the severity an analyst would give it
 * under the policy (and why), the policy sections a good answer cites, and the facts its summary
 * must state. The exceptions are not stored: they are built by the real engine from the extracts
 * beside golden.json, so they look exactly like what triage sees, and the labels must cover the
 * engine's findings one for one (a change to the engine or the policy that adds, drops or renames a
 * finding breaks the set loudly instead of silently scoring fewer items).
 */
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { reconcile } from '../../../functions/recon/engine.ts';
import { toExceptionRecord } from '../../../functions/recon/exception-record.ts';
import { REPO_ROOT } from '../../../functions/shared/paths.ts';
import { parseReconPolicy } from '../../../functions/shared/policy.ts';
import { EXCEPTION_TYPES, SEVERITIES, type ExceptionRecord } from '../../../functions/shared/types.ts';

export const GOLDEN_PATH = new URL('./golden.json', import.meta.url).pathname;

/** A fact the summary must state: a text (any of the alternatives), a number, or the side it names. */
const factSchema = z.union([
  z.object({ what: z.string(), text: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]) }).strict(),
  z.object({ what: z.string(), number: z.string().regex(/^-?\d+(\.\d+)?$/) }).strict(),
  z.object({ what: z.string(), side: z.enum(['source', 'target']) }).strict(),
]);
export type Fact = z.infer<typeof factSchema>;

const itemSchema = z
  .object({
    /** `dataset:EXCEPTION_TYPE:key` (the engine's key text; `side:line` for an invalid record). */
    id: z.string().regex(new RegExp(`^[A-Za-z0-9_-]+:(${EXCEPTION_TYPES.join('|')}):.+$`)),
    severity: z.enum(SEVERITIES),
    why: z.string().min(10),
    /** Passage ids (`document#section-path`) a good answer cites. */
    sections: z.array(z.string().includes('#')).min(1),
    facts: z.array(factSchema).min(1),
  })
  .strict();
export type GoldenItem = z.infer<typeof itemSchema>;

const goldenSchema = z
  .object({
    about: z.string(),
    business_date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
    datasets: z.record(
      z.string(),
      z
        .object({
          /** Repository-relative policy file the engine applies (the one the local stack uses). */
          policy: z.string(),
          /** Paths relative to golden.json. */
          source: z.string(),
          target: z.string(),
          /** Words a summary may use for each side (the policy's names for the two systems). */
          sides: z.object({ source: z.array(z.string()).min(1), target: z.array(z.string()).min(1) }).strict(),
        })
        .strict(),
    ),
    /** Documents that state the same sections: a citation of either counts for both. */
    equivalent_documents: z.array(z.array(z.string()).min(2)),
    items: z.array(itemSchema).min(1),
  })
  .strict();
export type GoldenSet = z.infer<typeof goldenSchema>;

export interface GoldenCase extends GoldenItem {
  readonly dataset: string;
  readonly exception: ExceptionRecord;
  /** The dataset's words for source and target. */
  readonly sides: GoldenSet['datasets'][string]['sides'];
}

export class GoldenSetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GoldenSetError';
  }
}

export function loadGoldenSet(path = GOLDEN_PATH): GoldenSet {
  const parsed = goldenSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!parsed.success)
    throw new GoldenSetError(
      `${path}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  const ids = parsed.data.items.map((i) => i.id);
  const repeated = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (repeated.length > 0) throw new GoldenSetError(`${path}: items labelled twice: ${repeated.join(', ')}`);
  return parsed.data;
}

/** Reconciles each dataset's extracts with the engine and pairs every finding with its label. */
export async function buildCases(golden: GoldenSet, path = GOLDEN_PATH): Promise<GoldenCase[]> {
  const labels = new Map(golden.items.map((i) => [i.id, i]));
  const cases: GoldenCase[] = [];
  const unlabelled: string[] = [];
  const now = `${golden.business_date}T12:00:00.000Z`;
  for (const [dataset, spec] of Object.entries(golden.datasets)) {
    const policyPath = join(REPO_ROOT, spec.policy);
    const policy = parseReconPolicy(readFileSync(policyPath, 'utf8'), policyPath);
    const source = resolve(dirname(path), spec.source);
    const target = resolve(dirname(path), spec.target);
    // Checked first: a stream the engine never reads would throw its ENOENT out of band.
    for (const file of [source, target])
      if (!existsSync(file)) throw new GoldenSetError(`${path}: ${dataset}'s extract ${file} does not exist`);
    const { findings } = await reconcile(
      { name: source, stream: createReadStream(source) },
      { name: target, stream: createReadStream(target) },
      policy,
    );
    const ctx = { runId: 'triage-eval', dataset, businessDate: golden.business_date, now };
    for (const finding of findings) {
      const id = `${dataset}:${finding.type}:${finding.keyText}`;
      const label = labels.get(id);
      if (!label) {
        unlabelled.push(id);
        continue;
      }
      labels.delete(id);
      cases.push({ ...label, dataset, exception: toExceptionRecord(finding, ctx), sides: spec.sides });
    }
  }
  if (unlabelled.length > 0 || labels.size > 0)
    throw new GoldenSetError(
      [
        unlabelled.length ? `findings without a label: ${unlabelled.join(', ')}` : '',
        labels.size ? `labels without a finding: ${[...labels.keys()].join(', ')}` : '',
      ]
        .filter(Boolean)
        .join('; '),
    );
  // Label order, so reports read like the file.
  const order = new Map(golden.items.map((item, i) => [item.id, i]));
  return cases.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
}

/** The passage id as compared: equivalent documents are folded onto the first of their group. */
export function canonicalPassageId(passageId: string, equivalents: GoldenSet['equivalent_documents']): string {
  const hash = passageId.indexOf('#');
  const document = passageId.slice(0, hash);
  const group = equivalents.find((g) => g.includes(document));
  return group ? `${group[0]}${passageId.slice(hash)}` : passageId;
}
