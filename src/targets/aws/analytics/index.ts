import type { AnalyticsMigration, AnalyticsPort, AnalyticsResource, AnalyticsStatus, DatasetRunResult, DatasetVersion, LakeTrace, ReprocessResult } from '../../../ports.js';
import type { PlanItem } from '../../../iot/plan/index.js';
import type { Spec } from '../../../spec/schema.js';
import { UserError } from '../../../ui/errors.js';
import type { AwsClients } from '../sdk.js';
import { applyDatalake, datalakeContext, planDatalake, readDatalake } from './datalake.js';
import { AwsDatasets } from './datasets.js';
import { IotAnalyticsDatasets } from './iotanalytics-datasets.js';
import { applyIotAnalytics, planIotAnalytics, readIotAnalytics, startIotAnalyticsReprocessing, warnIotAnalyticsEnded } from './iotanalytics.js';

/**
 * The analytics port on AWS: the spec's channels, pipelines, datastores and datasets on the engine
 * `analytics.engine` names: `datalake` (Firehose + S3 Parquet + Glue + Athena + Scheduler, the default) or
 * `iotanalytics` (the legacy API; AWS ended the service on 2025-12-15).
 */
export class AwsAnalytics implements AnalyticsPort {
  /** Dataset runs and content on this project's engine. */
  private readonly datasets: AwsDatasets | IotAnalyticsDatasets;

  constructor(
    private readonly aws: AwsClients,
    private readonly spec: Spec,
    opts: { contentDir: string },
  ) {
    this.datasets = spec.analytics.engine === 'iotanalytics' ? new IotAnalyticsDatasets(aws, opts.contentDir) : new AwsDatasets(aws, spec, opts.contentDir);
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
    const resources = this.legacy ? await readIotAnalytics(this.aws, this.spec, 'project') : await readDatalake(this.aws, this.spec, await datalakeContext(this.aws, this.spec));
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
    return this.datasets.run(name, opts);
  }

  async datasetVersions(name: string): Promise<DatasetVersion[]> {
    return this.datasets.versions(name);
  }

  async datasetContent(name: string, version?: string): Promise<{ version: DatasetVersion; file: string }> {
    return this.datasets.content(name, version);
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

  /** `iotctl check`: the message in the channel's and datastores' S3 objects (trace.ts); datalake engine only. */
  async trace(find: { field: string; value: string }, opts: { since: number; deadline: number; signal?: AbortSignal }): Promise<LakeTrace | undefined> {
    if (this.legacy) throw new UserError('`iotctl check` cannot trace IoT Analytics channels (AWS ended the service).', 'Move to the datalake engine (`iotctl analytics migrate`), or run the check with --skip lake.', 'ENGINE_UNSUPPORTED');
    const { traceDatalake } = await import('./trace.js');
    return traceDatalake(this.aws, this.spec, find, opts);
  }

  /** The lake stage's time-out: the channel's delivery streams' buffer interval (DescribeDeliveryStream). */
  async traceTimeout(channel: string, opts: { graceMs?: number } = {}): Promise<{ ms: number; reason: string } | undefined> {
    if (this.legacy) return undefined;
    const { traceTimeout } = await import('./trace.js');
    return traceTimeout(this.aws, this.spec, channel, opts.graceMs);
  }

  async migrate(opts: { specText: string; file: string; dryRun?: boolean; export?: boolean }): Promise<AnalyticsMigration> {
    const { migrateAnalytics } = await import('./migrate.js');
    return migrateAnalytics({ aws: this.aws, spec: this.spec, ...opts });
  }
}
