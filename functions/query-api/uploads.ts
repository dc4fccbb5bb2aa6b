/** Pre-signed uploads: the server chooses the key; the client only says what it is sending. */
import type { UploadTicket } from '../shared/api-types.ts';
import { contentTypeOf, datasetPolicyKey, incomingKey } from '../shared/keys.ts';
import { BadRequestError } from './errors.ts';
import type { PolicyUploadBody, UploadBody } from './schemas.ts';
import type { QueryApiDeps, UploadSigner } from './ports.ts';
import { formatMismatch } from '../shared/policy.ts';

/** Long enough to start a large upload by hand; S3 checks expiry when the PUT starts, not when it ends. */
export const UPLOAD_URL_TTL_SECONDS = 300;

export async function createUpload(
  body: UploadBody,
  deps: { uploads: UploadSigner; datasets?: QueryApiDeps['datasets']; now: () => number },
): Promise<UploadTicket> {
  const format = body.format ?? 'csv';
  // An extract of a dataset with no policy could only be rejected at ingest: say so now. The
  // policy in force answers both checks; the listing of known datasets only words a refusal.
  const policy = await deps.datasets?.policy?.(body.dataset);
  if (policy === undefined) {
    const known = await deps.datasets?.known();
    if (known !== undefined && !known.includes(body.dataset))
      throw new BadRequestError(
        'UNKNOWN_DATASET',
        `dataset "${body.dataset}" has no policy; known datasets: ${known.join(', ') || '(none)'} (a new dataset starts with uploading ${datasetPolicyKey(body.dataset)})`,
        { known_datasets: known },
      );
  }
  // Ingest would reject it (FORMAT_MISMATCH) once uploaded: say so before the bytes are sent.
  const mismatch = policy && formatMismatch(policy, body.dataset, body.side, format);
  if (policy && mismatch) {
    const expected = policy.sides[body.side].format;
    throw new BadRequestError(
      'FORMAT_MISMATCH',
      `${mismatch} (send format "${expected}", or change the policy's ${body.side} format first)`,
      { expected_format: expected },
    );
  }
  const gzip = body.gzip ?? false;
  const key = incomingKey({
    dataset: body.dataset,
    businessDate: body.business_date,
    side: body.side,
    format,
    gzip,
  });
  const contentType = body.content_type ?? contentTypeOf(format, gzip);
  const url = await deps.uploads.presignPut({
    key,
    contentType,
    contentLength: body.content_length,
    expiresInSeconds: UPLOAD_URL_TTL_SECONDS,
  });
  return {
    url,
    method: 'PUT',
    key,
    headers: { 'content-type': contentType, 'content-length': String(body.content_length) },
    expires_at: new Date(deps.now() + UPLOAD_URL_TTL_SECONDS * 1000).toISOString(),
  };
}

/**
 * A pre-signed PUT of one dataset's policy to `policies/datasets/{dataset}.md`. Ingest validates
 * it when it lands and puts it in force only if it validates (`tally policy push` checks first).
 */
export async function createPolicyUpload(
  body: PolicyUploadBody,
  deps: { uploads: UploadSigner; now: () => number },
): Promise<UploadTicket> {
  const key = datasetPolicyKey(body.dataset);
  const contentType = 'text/markdown';
  const url = await deps.uploads.presignPut({
    key,
    contentType,
    contentLength: body.content_length,
    expiresInSeconds: UPLOAD_URL_TTL_SECONDS,
  });
  return {
    url,
    method: 'PUT',
    key,
    headers: { 'content-type': contentType, 'content-length': String(body.content_length) },
    expires_at: new Date(deps.now() + UPLOAD_URL_TTL_SECONDS * 1000).toISOString(),
  };
}
