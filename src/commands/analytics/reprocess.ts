import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import type { AnalyticsPort } from '../../ports.js';
import { withTarget } from '../../targets/index.js';
import { UserError } from '../../ui/errors.js';
import { parseTimeFlag } from '../../ui/format.js';
import { info } from '../../ui/output.js';

type ReprocessOutcome = Awaited<ReturnType<AnalyticsPort['reprocess']>>;

export default class AnalyticsReprocess extends BaseCommand<typeof AnalyticsReprocess> {
  static override summary = "Run a channel's stored messages through a pipeline's current activities again (StartPipelineReprocessing).";
  static override description =
    'Replays the raw messages received between --from and --to (default: all) and replaces the rows this pipeline wrote for them, so reprocessing twice does not duplicate rows. ' +
    'Local: the window is exact; with `iotctl local up` running, the platform does the work and this command waits for it, otherwise it runs here. ' +
    'AWS (datalake engine): it runs here over the raw channel objects in S3, on whole UTC days (the window is widened to them, since Firehose mixes messages of different times in one object); ' +
    "each day's rows replace the pipeline's datastore objects of that day, failures go to errors/<pipeline>/processing-failed/, rows carry their raw object's time as __received_at, and the current day is left until Firehose has delivered it. " +
    'AWS (iotanalytics engine): StartPipelineReprocessing, which runs on AWS and appends its output.';
  static override examples = [
    '<%= config.bin %> analytics reprocess telemetry_pipeline',
    '<%= config.bin %> analytics reprocess telemetry_pipeline --from 2030-01-31T00:00:00Z --to 2030-02-01T00:00:00Z',
    '<%= config.bin %> analytics reprocess telemetry_pipeline --from 2h',
  ];
  static override args = { pipeline: Args.string({ description: 'Pipeline name.', required: true }) };
  static override flags = {
    from: Flags.string({ description: 'Oldest receive time to replay: ISO time, epoch ms, or a duration ago (2h, 7d).', env: 'IOTCTL_REPROCESS_FROM' }),
    to: Flags.string({ description: 'Newest receive time to replay (default: no limit).', env: 'IOTCTL_REPROCESS_TO' }),
    timeout: Flags.integer({ description: 'Seconds to wait for a running platform to finish.', default: 600, env: 'IOTCTL_REPROCESS_TIMEOUT' }),
  };

  async run(): Promise<ReprocessOutcome> {
    const now = Date.now();
    const from = this.flags.from ? parseTimeFlag(this.flags.from, 'from', now) : undefined;
    const to = this.flags.to ? parseTimeFlag(this.flags.to, 'to', now) : undefined;
    if (from !== undefined && to !== undefined && from > to) throw new UserError('--from is after --to.', 'Swap them.');
    return withTarget(this.ctx, (target) => target.analytics.reprocess(this.args.pipeline, { from, to, timeoutSeconds: this.flags.timeout, progress: info }));
  }
}
