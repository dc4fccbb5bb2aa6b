/**
 * GET /policies and GET /policies/{name}: the policy documents people and assistants read — the
 * governance documents triage cites (`policies/{name}.md` in the bucket) and each dataset's policy
 * in force (`policies-in-force/{dataset}.md`, else the one shipped in the bundle, exactly as runs
 * fall back: functions/shared/dataset-policies.ts). Each carries an ETag, so a client polling the
 * listing sees when one changes.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundledDatasets, bundledPoliciesDir } from '../shared/dataset-policies.ts';
import { DATASET_PATTERN, parsePolicyInForceKey, policyInForceKey } from '../shared/keys.ts';
import { PREFIXES } from '../shared/resources.ts';
import { NotFoundError } from './errors.ts';

export type PolicyKind = 'governance' | 'dataset';

/** One document of GET /policies. `document` is how triage citations name it. */
export interface PolicyDocumentInfo {
  /** `recon-policy` (governance) or `datasets/payments` (a dataset's policy). */
  readonly name: string;
  readonly document: string;
  readonly kind: PolicyKind;
  readonly etag: string;
  readonly size: number;
  /** null for a dataset policy shipped in the bundle (no accepted upload yet). */
  readonly last_modified: string | null;
  /** Where it was read: the bucket, or the bundle's shipped baseline. */
  readonly source: 'bucket' | 'bundled';
}

export interface PolicyDocument extends PolicyDocumentInfo {
  readonly text: string;
}

/** The bucket as GET /policies reads it (an S3 adapter in s3.ts). */
export interface PolicyObjects {
  list(prefix: string): Promise<{ key: string; etag: string; size: number; lastModified: string | null }[]>;
  /** undefined when there is no such object. */
  read(key: string): Promise<{ text: string; etag: string; lastModified: string | null } | undefined>;
}

export interface PolicyDocumentsDeps {
  readonly objects: PolicyObjects;
  /** The repository's policies/datasets/ as bundled (tests pass their own). */
  readonly bundledDir?: string;
}

const GOVERNANCE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,124}$/;

/** A governance document's key: directly under policies/, never a dataset's upload. */
function governanceName(key: string): string | undefined {
  if (!key.startsWith(PREFIXES.policies) || !key.endsWith('.md')) return undefined;
  const name = key.slice(PREFIXES.policies.length, -'.md'.length);
  return GOVERNANCE_NAME.test(name) ? name : undefined;
}

const etagOf = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 32);
const unquote = (etag: string) => etag.replaceAll('"', '');

export async function listPolicyDocuments(deps: PolicyDocumentsDeps): Promise<PolicyDocumentInfo[]> {
  const [objects, inForce] = await Promise.all([
    deps.objects.list(PREFIXES.policies),
    deps.objects.list(PREFIXES.policiesInForce),
  ]);
  const items: PolicyDocumentInfo[] = [];
  for (const o of objects) {
    const name = governanceName(o.key);
    if (name === undefined) continue;
    items.push({
      name,
      document: `${name}.md`,
      kind: 'governance',
      etag: unquote(o.etag),
      size: o.size,
      last_modified: o.lastModified,
      source: 'bucket',
    });
  }
  const accepted = new Set<string>();
  for (const o of inForce) {
    const dataset = parsePolicyInForceKey(o.key);
    if (dataset === undefined) continue;
    accepted.add(dataset);
    items.push(datasetInfo(dataset, { etag: unquote(o.etag), size: o.size, lastModified: o.lastModified }, 'bucket'));
  }
  const dir = deps.bundledDir ?? bundledPoliciesDir();
  for (const dataset of bundledDatasets(dir)) {
    if (accepted.has(dataset)) continue;
    const text = readFileSync(join(dir, `${dataset}.md`), 'utf8');
    items.push(
      datasetInfo(dataset, { etag: etagOf(text), size: Buffer.byteLength(text), lastModified: null }, 'bundled'),
    );
  }
  return items.sort((a, b) => a.name.localeCompare(b.name));
}

function datasetInfo(
  dataset: string,
  o: { etag: string; size: number; lastModified: string | null },
  source: PolicyDocumentInfo['source'],
): PolicyDocumentInfo {
  return {
    name: `datasets/${dataset}`,
    document: `datasets/${dataset}.md`,
    kind: 'dataset',
    etag: o.etag,
    size: o.size,
    last_modified: o.lastModified,
    source,
  };
}

export async function readGovernanceDocument(name: string, deps: PolicyDocumentsDeps): Promise<PolicyDocument> {
  if (!GOVERNANCE_NAME.test(name)) throw notFound(name);
  const o = await deps.objects.read(`${PREFIXES.policies}${name}.md`);
  if (o === undefined) throw notFound(name);
  return {
    name,
    document: `${name}.md`,
    kind: 'governance',
    etag: unquote(o.etag),
    size: Buffer.byteLength(o.text),
    last_modified: o.lastModified,
    source: 'bucket',
    text: o.text,
  };
}

export async function readDatasetPolicy(dataset: string, deps: PolicyDocumentsDeps): Promise<PolicyDocument> {
  const name = `datasets/${dataset}`;
  if (!DATASET_PATTERN.test(dataset)) throw notFound(name);
  const o = await deps.objects.read(policyInForceKey(dataset));
  if (o !== undefined)
    return {
      ...datasetInfo(
        dataset,
        { etag: unquote(o.etag), size: Buffer.byteLength(o.text), lastModified: o.lastModified },
        'bucket',
      ),
      text: o.text,
    };
  const dir = deps.bundledDir ?? bundledPoliciesDir();
  if (!bundledDatasets(dir).includes(dataset)) throw notFound(name);
  const text = readFileSync(join(dir, `${dataset}.md`), 'utf8');
  return {
    ...datasetInfo(dataset, { etag: etagOf(text), size: Buffer.byteLength(text), lastModified: null }, 'bundled'),
    text,
  };
}

function notFound(name: string) {
  return new NotFoundError(`no policy document named ${name}; GET /policies lists them`, { name });
}
