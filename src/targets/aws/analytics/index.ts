import type { AnalyticsMigration, AnalyticsPort, AnalyticsResource, AnalyticsStatus } from '../../../ports.js';
import type { PlanItem } from '../../../iot/plan/index.js';
import type { Spec } from '../../../spec/schema.js';
import { UserError } from '../../../ui/errors.js';
import type { AwsClients } from '../sdk.js';
import { applyDatalake, datalakeContext, planDatalake, readDatalake } from './datalake.js';
import { applyIotAnalytics, planIotAnalytics, readIotAnalytics, runIotAnalyticsDataset, warnIotAnalyticsEnded } from './iotanalytics.js';

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

  async status(opts: { since?: number } = {}): Promise<AnalyticsStatus> {
    if (this.legacy)
      throw new UserError(
        '`analytics status` reads the datalake engine; this project still uses IoT Analytics (analytics.engine: iotanalytics), which AWS ended on 2025-12-15.',
        'Move it to the datalake engine with `iotctl analytics migrate`; `iotctl analytics list` shows the IoT Analytics resources meanwhile.',
        'ENGINE_UNSUPPORTED',
      );
    const { datalakeStatus } = await import('./status.js');
    return datalakeStatus(this.aws, this.spec, opts);
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

  async reprocess(): Promise<never> {
    return notYet('`analytics reprocess`');
  }

  async migrate(opts: { specText: string; file: string; dryRun?: boolean; export?: boolean }): Promise<AnalyticsMigration> {
    const { migrateAnalytics } = await import('./migrate.js');
    return migrateAnalytics({ aws: this.aws, spec: this.spec, ...opts });
  }
}

function notYet(what: string): never {
  throw new UserError(`${what} is not available on the aws target yet.`, 'It runs on the local target (--target local); on AWS, query the datastores with `iotctl athena run`.', 'TARGET_UNAVAILABLE');
}
