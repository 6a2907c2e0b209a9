import type { _Object } from '@aws-sdk/client-s3';
import { isAwsError, type AwsClients } from '../sdk.js';

/** Every object under `prefix`, following ListObjectsV2's pages; none when the bucket does not exist (yet). */
export async function listObjects(aws: AwsClients, bucket: string, prefix: string): Promise<_Object[]> {
  const { client, sdk } = await aws.get('s3');
  const out: _Object[] = [];
  let ContinuationToken: string | undefined;
  do {
    let page;
    try {
      page = await client.send(new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken }), aws.sendOptions);
    } catch (e) {
      if (isAwsError(e, 'NoSuchBucket')) return [];
      throw e;
    }
    out.push(...(page.Contents ?? []));
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken);
  return out;
}
