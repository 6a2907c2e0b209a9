import { createReadStream, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { DatasetRunResult, DatasetVersion } from '../../../ports.js';
import { UserError } from '../../../ui/errors.js';
import type { AwsClients } from '../sdk.js';
import { countCsvRecords, readCsvRecords, saveStream } from './datasets.js';
import { iotAnalyticsDatasetContent, iotAnalyticsDatasetVersions, runIotAnalyticsDataset } from './iotanalytics.js';

/**
 * Datasets on the legacy iotanalytics engine, with the same results as the datalake engine's AwsDatasets:
 * CreateDatasetContent/GetDatasetContent, and the content CSV downloaded from its pre-signed URL into
 * `contentDir` and previewed.
 */
export class IotAnalyticsDatasets {
  constructor(
    private readonly aws: AwsClients,
    private readonly contentDir: string,
  ) {}

  async run(name: string, opts: { previewRows?: number } = {}): Promise<DatasetRunResult> {
    const startedAt = Date.now();
    const run = await runIotAnalyticsDataset(this.aws, name);
    const base = { dataset: name, version: run.versionId, trigger: 'manual' as const, createdAt: startedAt, scheduledFor: null, windowStart: null, windowEnd: null, rows: null, bytes: null };
    if (run.state === 'FAILED') return { ...base, status: 'FAILED', elapsedMs: Date.now() - startedAt, error: run.reason ?? 'no reason given', columns: [], preview: [] };
    const { file, rows, bytes, header, preview } = await this.download(name, run.versionId, run.entries, opts.previewRows ?? 100);
    return { ...base, status: 'SUCCEEDED', rows, bytes, elapsedMs: Date.now() - startedAt, error: null, file, columns: header.map((c) => ({ name: c, type: 'varchar' })), preview };
  }

  versions(name: string): Promise<DatasetVersion[]> {
    return iotAnalyticsDatasetVersions(this.aws, name);
  }

  async content(name: string, version?: string): Promise<{ version: DatasetVersion; file: string }> {
    const content = await iotAnalyticsDatasetContent(this.aws, name, version);
    const versions = await this.versions(name);
    // $LATEST and $LATEST_SUCCEEDED name the newest (succeeded) version; the list gives its id.
    const chosen = !version || version.startsWith('$') ? versions.find((v) => version === '$LATEST' || v.status === 'SUCCEEDED') : versions.find((v) => v.version === version);
    const id = chosen?.version ?? content.version;
    const { file, rows, bytes } = await this.download(name, id, content.entries, 0);
    const known: DatasetVersion = chosen ?? {
      dataset: name,
      version: id,
      status: 'SUCCEEDED',
      trigger: 'manual',
      createdAt: content.timestamp?.getTime() ?? 0,
      scheduledFor: null,
      windowStart: null,
      windowEnd: null,
      rows: null,
      bytes: null,
      elapsedMs: null,
      error: null,
    };
    return { version: { ...known, rows, bytes }, file };
  }

  private async download(name: string, version: string, entries: { dataURI?: string }[], previewRows: number) {
    const uri = entries.find((e) => e.dataURI)?.dataURI;
    if (!uri) throw new UserError(`Dataset ${name} version ${version} has no content entry.`, 'Its query may have returned nothing to deliver; check the dataset in the IoT Analytics console.', 'NOT_FOUND');
    const file = join(this.contentDir, name, `${version.replace(/[^\w.-]/g, '_')}.csv`);
    await downloadDataUri(uri, file, this.aws.settings.signal);
    const [records, count] = await Promise.all([readCsvRecords(createReadStream(file), previewRows + 1), countCsvRecords(createReadStream(file))]);
    const [header = [], ...preview] = records;
    return { file, rows: Math.max(0, count - 1), bytes: statSync(file).size, header, preview };
  }
}

/** Downloads a content entry from its pre-signed dataURI (valid for a few hours) to `file`. */
async function downloadDataUri(dataURI: string, file: string, signal?: AbortSignal): Promise<void> {
  const res = await fetch(dataURI, { signal });
  if (!res.ok || !res.body)
    throw new UserError(`Downloading the dataset content failed: HTTP ${res.status} from ${new URL(dataURI).host}.`, 'The pre-signed URL may have expired: run `iotctl analytics dataset content` again for a fresh one.', 'DOWNLOAD_FAILED');
  await saveStream(Readable.fromWeb(res.body as never), file);
}
