import { createReadStream, statSync } from 'node:fs';
import { join } from 'node:path';
import type { AnalyticsMigration, AnalyticsPort, AnalyticsResource, AnalyticsStatus, DatasetRunResult, DatasetVersion, ReprocessResult } from '../../../ports.js';
import type { PlanItem } from '../../../iot/plan/index.js';
import type { Spec } from '../../../spec/schema.js';
import { UserError } from '../../../ui/errors.js';
import type { AwsClients } from '../sdk.js';
import { applyDatalake, datalakeContext, planDatalake, readDatalake } from './datalake.js';
import { AwsDatasets, countCsvRecords, readCsvRecords } from './datasets.js';
import {
  applyIotAnalytics,
  downloadDataUri,
  iotAnalyticsDatasetContent,
  iotAnalyticsDatasetVersions,
  planIotAnalytics,
  readIotAnalytics,
  runIotAnalyticsDataset,
  startIotAnalyticsReprocessing,
  warnIotAnalyticsEnded,
} from './iotanalytics.js';

/**
 * The analytics port on AWS: the spec's channels, pipelines, datastores and datasets on the engine
 * `analytics.engine` names: `datalake` (Firehose + S3 Parquet + Glue + Athena + Scheduler, the default) or
 * `iotanalytics` (the legacy API; AWS ended the service on 2025-12-15).
 */
export class AwsAnalytics implements AnalyticsPort {
  private readonly datasets: AwsDatasets;
  private readonly contentDir: string;

  constructor(
    private readonly aws: AwsClients,
    private readonly spec: Spec,
    opts: { contentDir: string },
  ) {
    this.contentDir = opts.contentDir;
    this.datasets = new AwsDatasets(aws, spec, opts.contentDir);
  }

  private get legacy(): boolean {
    return this.spec.analytics.engine === 'iotanalytics';
  }

  async plan(opts: { prune?: boolean }): Promise<{ items: PlanItem[]; warnings: string[] }> {
    if (this.legacy) {
      warnIotAnalyticsEnded();
      return { items: await planIotAnalytics(this.aws, this.spec, opts), warnings: [] };
    }
    const warnings = this.spec.analytics.datasets.length ? ["Datasets' SQL is checked by Athena when it first runs (`iotctl analytics dataset run <name>`)."] : [];
    return { items: await planDatalake(this.aws, this.spec, opts), warnings };
  }

  async apply(items: PlanItem[]): Promise<void> {
    if (this.legacy) await applyIotAnalytics(this.aws, this.spec, items);
    else await applyDatalake(this.aws, this.spec, items);
  }

  async list(): Promise<AnalyticsResource[]> {
    const resources = this.legacy ? await readIotAnalytics(this.aws, this.spec, 'project') : await readDatalake(this.aws, this.spec, await datalakeContext(this.aws));
    return resources.map((r) => ({ kind: r.kind, name: r.name, config: r.config as Record<string, unknown> }));
  }

  async status(opts: { since?: number } = {}): Promise<AnalyticsStatus> {
    if (this.legacy)
      throw new UserError(
        '`analytics status` reads the datalake engine; this project still uses IoT Analytics (analytics.engine: iotanalytics), which AWS ended on 2025-12-15.',
        'Move it to the datalake engine with `iotctl analytics migrate`; `iotctl analytics list` shows the IoT Analytics resources meanwhile.',
        'ENGINE_UNSUPPORTED',
      );
    const { datalakeStatus } = await import('./status.js');
    return datalakeStatus(this.aws, this.spec, { ...opts, datasetVersions: (name) => this.datasets.versions(name) });
  }

  async runDataset(name: string, opts: { previewRows?: number; progress?: (line: string) => void }): Promise<DatasetRunResult> {
    if (!this.legacy) return this.datasets.run(name, opts);
    const startedAt = Date.now();
    const run = await runIotAnalyticsDataset(this.aws, name);
    const base = { dataset: name, version: run.versionId, trigger: 'manual' as const, createdAt: startedAt, scheduledFor: null, windowStart: null, windowEnd: null, rows: null, bytes: null };
    if (run.state === 'FAILED') return { ...base, status: 'FAILED', elapsedMs: Date.now() - startedAt, error: run.reason ?? 'no reason given', columns: [], preview: [] };
    const { file, rows, bytes, header, preview } = await this.downloadLegacy(name, run.versionId, run.entries, opts.previewRows ?? 100);
    return { ...base, status: 'SUCCEEDED', rows, bytes, elapsedMs: Date.now() - startedAt, error: null, file, columns: header.map((c) => ({ name: c, type: 'varchar' })), preview };
  }

  async datasetVersions(name: string): Promise<DatasetVersion[]> {
    return this.legacy ? iotAnalyticsDatasetVersions(this.aws, name) : this.datasets.versions(name);
  }

  async datasetContent(name: string, version?: string): Promise<{ version: DatasetVersion; file: string }> {
    if (!this.legacy) return this.datasets.content(name, version);
    const content = await iotAnalyticsDatasetContent(this.aws, name, version);
    const versions = await iotAnalyticsDatasetVersions(this.aws, name);
    // $LATEST and $LATEST_SUCCEEDED name the newest (succeeded) version; the list gives its id.
    const chosen = version?.startsWith('$') || !version ? versions.find((v) => version === '$LATEST' || v.status === 'SUCCEEDED') : versions.find((v) => v.version === version);
    const id = chosen?.version ?? content.version;
    const { file, rows, bytes } = await this.downloadLegacy(name, id, content.entries, 0);
    return { version: { ...(chosen ?? { dataset: name, version: id, status: 'SUCCEEDED', trigger: 'manual', createdAt: content.timestamp?.getTime() ?? 0, scheduledFor: null, windowStart: null, windowEnd: null, elapsedMs: null, error: null }), rows, bytes }, file };
  }

  /** IoT Analytics delivers content as pre-signed URLs: downloaded here, like the datalake engine's CSVs. */
  private async downloadLegacy(name: string, version: string, entries: { dataURI?: string }[], previewRows: number) {
    const uri = entries.find((e) => e.dataURI)?.dataURI;
    if (!uri) throw new UserError(`Dataset ${name} version ${version} has no content entry.`, 'Its query may have returned nothing to deliver; check the dataset in the IoT Analytics console.', 'NOT_FOUND');
    const file = join(this.contentDir, name, `${version.replace(/[^\w.-]/g, '_')}.csv`);
    await downloadDataUri(uri, file, this.aws.settings.signal);
    const [records, count] = await Promise.all([readCsvRecords(createReadStream(file), previewRows + 1), countCsvRecords(createReadStream(file))]);
    const [header = [], ...preview] = records;
    return { file, rows: Math.max(0, count - 1), bytes: statSync(file).size, header, preview };
  }

  /**
   * datalake: re-runs the pipeline here over whole UTC days of raw channel objects and replaces what it wrote
   * for those days (reprocess.ts). iotanalytics: StartPipelineReprocessing, which runs on AWS and appends.
   */
  async reprocess(pipeline: string, opts: Parameters<AnalyticsPort['reprocess']>[1]): Promise<ReprocessResult | { id: string; pipeline: string; status: string }> {
    const { pipelineNotFound, reprocessDatalake } = await import('./reprocess.js');
    if (!this.spec.analytics.pipelines.some((p) => p.name === pipeline)) throw pipelineNotFound(this.spec, pipeline);
    if (!this.legacy) return reprocessDatalake(this.aws, this.spec, pipeline, opts);
    const id = await startIotAnalyticsReprocessing(this.aws, pipeline, opts);
    opts.progress?.(`IoT Analytics started reprocessing ${pipeline} (${id}); it runs on AWS and appends its output, so reprocessing a window twice duplicates its rows.`);
    return { id, pipeline, status: 'RUNNING' };
  }

  async migrate(opts: { specText: string; file: string; dryRun?: boolean; export?: boolean }): Promise<AnalyticsMigration> {
    const { migrateAnalytics } = await import('./migrate.js');
    return migrateAnalytics({ aws: this.aws, spec: this.spec, ...opts });
  }
}

function notYet(what: string): never {
  throw new UserError(`${what} is not available on the aws target yet.`, 'It runs on the local target (--target local); on AWS, query the datastores with `iotctl athena run`.', 'TARGET_UNAVAILABLE');
}
