/** Pre-signed uploads: the server chooses the key; the client only says what it is sending. */
import type { UploadTicket } from '../shared/api-types.ts';
import { incomingKey } from '../shared/keys.ts';
import type { UploadBody } from './schemas.ts';
import type { UploadSigner } from './ports.ts';

/** Long enough to start a large upload by hand; S3 checks expiry when the PUT starts, not when it ends. */
export const UPLOAD_URL_TTL_SECONDS = 300;

export async function createUpload(
  body: UploadBody,
  deps: { uploads: UploadSigner; now: () => number },
): Promise<UploadTicket> {
  const key = incomingKey({ dataset: body.dataset, businessDate: body.business_date, side: body.side });
  const url = await deps.uploads.presignPut({
    key,
    contentType: body.content_type,
    contentLength: body.content_length,
    expiresInSeconds: UPLOAD_URL_TTL_SECONDS,
  });
  return {
    url,
    method: 'PUT',
    key,
    headers: { 'content-type': body.content_type, 'content-length': String(body.content_length) },
    expires_at: new Date(deps.now() + UPLOAD_URL_TTL_SECONDS * 1000).toISOString(),
  };
}
