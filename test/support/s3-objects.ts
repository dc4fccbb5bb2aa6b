import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import {
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  type GetObjectCommandInput,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';

/** S3 mocked with aws-sdk-client-mock, serving an in-memory bucket and honouring IfMatch. */
export function mockS3Objects() {
  const objects = new Map<string, { body: Buffer; etag: string }>();
  const s3 = mockClient(S3Client);
  const reads: string[] = [];
  s3.on(GetObjectCommand).callsFake(async (input: GetObjectCommandInput) => {
    const object = objects.get(input.Key as string);
    if (!object) throw Object.assign(new Error('NoSuchKey'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } });
    if (input.IfMatch && input.IfMatch.replaceAll('"', '') !== object.etag) {
      throw Object.assign(new Error('PreconditionFailed'), {
        name: 'PreconditionFailed',
        $metadata: { httpStatusCode: 412 },
      });
    }
    reads.push(input.Key as string);
    return { Body: Readable.from([object.body]), ETag: `"${object.etag}"` };
  });
  const put = (key: string, content: string | Buffer): string => {
    const body = Buffer.isBuffer(content) ? content : Buffer.from(content);
    const etag = createHash('md5').update(body).digest('hex');
    objects.set(key, { body, etag });
    return etag;
  };
  s3.on(PutObjectCommand).callsFake(async (input: PutObjectCommandInput) => ({
    ETag: `"${put(input.Key as string, Buffer.from(input.Body as string | Uint8Array))}"`,
  }));
  return {
    s3,
    reads,
    /** The object's content, or undefined. */
    text: (key: string): string | undefined => objects.get(key)?.body.toString('utf8'),
    /** Stores the object and returns its ETag (MD5, as S3 does for a single-part upload). */
    put,
    /** Every key stored. */
    keys: (): string[] => [...objects.keys()],
  };
}
