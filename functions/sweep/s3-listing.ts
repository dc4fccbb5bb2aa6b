/** The bucket's objects under a prefix, page by page (ListObjectsV2, 1,000 a page). */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { StoredObject } from './sweep.ts';

export function s3ObjectLister(s3: S3Client, bucket: string) {
  return async function* listObjects(prefix: string): AsyncIterable<StoredObject> {
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }),
      );
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined || o.ETag === undefined || o.LastModified === undefined) continue;
        yield { key: o.Key, etag: o.ETag, size: o.Size ?? 0, lastModified: o.LastModified };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  };
}
