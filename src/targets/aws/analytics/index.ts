import type { AnalyticsMigration, AnalyticsPort, AnalyticsResource, ReprocessResult } from '../../../ports.js';
import type { PlanItem } from '../../../iot/plan/index.js';
import type { Spec } from '../../../spec/schema.js';
import { UserError } from '../../../ui/errors.js';
import type { AwsClients } from '../sdk.js';
import { applyDatalake, datalakeContext, planDatalake, readDatalake } from './datalake.js';
import { applyIotAnalytics, planIotAnalytics, readIotAnalytics, runIotAnalyticsDataset, startIotAnalyticsReprocessing, warnIotAnalyticsEnded } from './iotanalytics.js';

/**
 * The analytics port on AWS: the spec's channels, pipelines, datastores and datasets on the engine
 * `analytics.engine` names: `datalake` (Firehose + S3 Parquet + Glue + Athena + Scheduler, the default) or
 * `iotanalytics` (the legacy API; AWS ended the service on 2025-12-15).
 */
export class AwsAnalytics implements AnalyticsPort {
  constructor(
    private readonly aws: AwsClients,
    private readonly spec: Spec,
  ) {}

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

  async status(): Promise<never> {
    return notYet('`analytics status`');
  }

  async runDataset(name: string): Promise<never> {
    if (this.legacy) {
      const run = await runIotAnalyticsDataset(this.aws, name);
      if (run.state === 'FAILED') throw new UserError(`Dataset ${name} failed on IoT Analytics: ${run.reason ?? 'no reason given'}.`, 'Fix its SQL in iotctl.yaml, apply, and run it again.', 'DATASET_FAILED');
      throw new UserError(
        `Dataset ${name} ran on IoT Analytics (version ${run.versionId}); its content is at ${run.entries.map((e) => e.dataURI).join(', ') || 'no entries'}.`,
        'Download the content from that pre-signed URL; iotctl shows dataset content inline on the local target and the datalake engine.',
        'DATASET_CONTENT_REMOTE',
      );
    }
    return notYet('`analytics dataset run` on the datalake engine');
  }

  async datasetVersions(): Promise<never> {
    return notYet('`analytics dataset content`');
  }

  async datasetContent(): Promise<never> {
    return notYet('`analytics dataset content`');
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
