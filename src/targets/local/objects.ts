import { mkdir, rename, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { dirname, join, resolve, sep } from 'node:path';
import type { ObjectSink } from './sinks.js';

/** The local S3: objects are files under lake/s3/<bucket>/<key>, written then renamed so none is half-visible. */
export class LocalObjects implements ObjectSink {
  constructor(private readonly root: string) {}

  async putObject(bucket: string, key: string, body: Uint8Array): Promise<void> {
    const root = resolve(this.root);
    const bucketDir = resolve(root, bucket);
    const path = resolve(bucketDir, key);
    if (!bucketDir.startsWith(root + sep) || bucketDir.slice(root.length + 1).includes(sep)) throw new Error(`invalid bucket name "${bucket}"`);
    if (!path.startsWith(bucketDir + sep)) throw new Error(`object key "${key}" escapes its bucket`);
    await mkdir(dirname(path), { recursive: true });
    const tmp = join(dirname(path), `.${randomUUID()}.tmp`);
    await writeFile(tmp, body);
    await rename(tmp, path);
  }
}
