import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { DatasetPolicyStore } from '../dataset-policies.ts';
import { validateDatasetPolicy } from '../dataset-policies.ts';
import { parsePolicyInForceKey, policyInForceKey } from '../keys.ts';
import { PREFIXES } from '../resources.ts';
import type { ReconPolicy } from '../policy.ts';

/** Accepted policies as objects `policies-in-force/{dataset}.md` of the data bucket. */
export class S3DatasetPolicies implements DatasetPolicyStore {
  private readonly s3: S3Client;
  constructor(s3: S3Client) {
    this.s3 = s3;
  }

  async current(bucket: string, dataset: string): Promise<ReconPolicy | undefined> {
    const key = policyInForceKey(dataset);
    let text: string;
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      if (!out.Body) return undefined;
      const chunks: Uint8Array[] = [];
      for await (const chunk of out.Body as AsyncIterable<Uint8Array>) chunks.push(chunk);
      text = Buffer.concat(chunks).toString('utf8');
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      // Without s3:ListBucket (ingest and recon hold none), S3 answers a missing key with 403,
      // not 404: GetObject on this prefix is granted, so a 403 here means "no such policy".
      if (status === 404 || status === 403 || (error as Error).name === 'NoSuchKey') return undefined;
      throw error;
    }
    // Only validated text is written here, so this fails only if someone wrote around ingest.
    return validateDatasetPolicy(dataset, text, `s3://${bucket}/${key}`);
  }

  async accept(bucket: string, dataset: string, text: string): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: policyInForceKey(dataset),
        Body: text,
        ContentType: 'text/markdown',
      }),
    );
  }

  async known(bucket: string): Promise<string[]> {
    const datasets: string[] = [];
    let token: string | undefined;
    do {
      const out = await this.s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: PREFIXES.policiesInForce, ContinuationToken: token }),
      );
      for (const o of out.Contents ?? []) {
        const dataset = parsePolicyInForceKey(o.Key ?? '');
        if (dataset !== undefined) datasets.push(dataset);
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token !== undefined);
    return datasets.sort();
  }
}
