import { BaseCommand, Flags } from '../../base-command.js';
import type { AnalyticsStatus } from '../../ports.js';
import { withTarget } from '../../targets/index.js';
import { formatBytes, parseTimeFlag } from '../../ui/format.js';
import { info, isTTY, printTable } from '../../ui/output.js';

export default class AnalyticsStatusCommand extends BaseCommand<typeof AnalyticsStatusCommand> {
  static override summary = 'Pipelines, channels, datastores and datasets: message counters, lag, sizes, schedules and recent failures.';
  static override description =
    'Per pipeline: messages in, out, filtered and failed (with recent failure reasons) and its lag; per channel: messages and bytes received; ' +
    'per datastore: files, bytes, days and columns; per dataset: schedule and next run. ' +
    'On the local target the counters are all-time and it also shows rows, dataset runs, runs missed while the platform was down, and recent schema changes; ' +
    'it reads the state store, so it works whether or not `iotctl local up` runs. ' +
    'On the aws target (datalake engine) the counters are CloudWatch metrics over --since (default: the last 24 hours), failures come from the transform function\'s logs, ' +
    'and files and bytes from S3.';
  static override examples = ['<%= config.bin %> analytics status', '<%= config.bin %> analytics status --since 6h --target aws', '<%= config.bin %> analytics status --json'];
  static override flags = {
    since: Flags.string({ description: 'aws target: start of the counters\' window (ISO time, epoch ms, or a duration ago like 6h or 7d; default 24h). The local target ignores it: its counters are all-time.' }),
  };

  async run(): Promise<AnalyticsStatus> {
    const since = this.flags.since ? parseTimeFlag(this.flags.since, 'since') : undefined;
    return withTarget(this.ctx, async (target) => {
      const status = await target.analytics.status({ since });
      if (!this.jsonEnabled()) await render(status);
      return status;
    });
  }
}

async function render(s: AnalyticsStatus): Promise<void> {
  const section = async <Row,>(title: string, rows: Row[], columns: { header: string; get: (r: Row) => unknown }[]) => {
    if (!rows.length) return;
    if (!isTTY()) info(`# ${title}`);
    await printTable(rows, columns, { title });
  };
  if (!s.channels.length && !s.pipelines.length && !s.datastores.length && !s.datasets.length) {
    info('No analytics resources are applied. Declare them under analytics: in iotctl.yaml and run `iotctl analytics apply`.');
    return;
  }
  // Windowed counters (AWS) say which window in the titles of the tables that show them.
  const counted = (title: string) => (s.countersSince ? `${title} (counts since ${s.countersSince})` : title);
  await section(counted('Pipelines'), s.pipelines, [
    { header: 'Pipeline', get: (p) => p.name },
    { header: 'Channel', get: (p) => p.channel },
    { header: 'Datastore', get: (p) => p.datastore },
    { header: 'In', get: (p) => p.messagesIn },
    { header: 'Out', get: (p) => p.messagesOut },
    { header: 'Filtered', get: (p) => p.filtered },
    { header: 'Failed', get: (p) => p.failed },
    { header: 'Lag', get: (p) => (p.lagMessages === null ? `${p.lagSeconds}s` : p.lagMessages ? `${p.lagMessages} msgs, ${p.lagSeconds}s` : '0') },
    { header: 'Error', get: (p) => p.lastError ?? '' },
  ]);
  const failures = s.pipelines.flatMap((p) => p.recentFailures.map((f) => ({ pipeline: p.name, ...f })));
  await section('Recent failures', failures, [
    { header: 'Pipeline', get: (f) => f.pipeline },
    { header: 'Message', get: (f) => f.messageId },
    { header: 'Received', get: (f) => f.receivedAt },
    { header: 'Activity', get: (f) => (f.activity >= 0 ? `${f.activity} ${f.activityType}` : f.activityType) },
    { header: 'Reason', get: (f) => f.reason },
  ]);
  await section(counted('Channels'), s.channels, [
    { header: 'Channel', get: (c) => c.name },
    { header: 'Messages', get: (c) => c.messages },
    { header: 'Delivered', get: (c) => c.delivered },
    { header: 'Size', get: (c) => formatBytes(c.bytes) },
    { header: 'Segments', get: (c) => c.segments },
    { header: 'Replays dropped', get: (c) => c.duplicatesDropped ?? '' },
    { header: 'Retention', get: (c) => (c.retentionDays ? `${c.retentionDays}d` : 'unlimited') },
  ]);
  await section('Datastores', s.datastores, [
    { header: 'Datastore', get: (d) => d.name },
    { header: 'Format', get: (d) => d.format },
    { header: 'Rows', get: (d) => d.rows ?? '' },
    { header: 'Files', get: (d) => d.files },
    { header: 'Size', get: (d) => formatBytes(d.bytes) },
    { header: 'Days', get: (d) => d.partitions },
    { header: 'Columns', get: (d) => d.columns.map((c) => `${c.name} ${c.type}`).join(', ') },
  ]);
  await section('Datasets', s.datasets, [
    { header: 'Dataset', get: (d) => d.name },
    { header: 'Schedule', get: (d) => d.schedule ?? 'on demand' },
    { header: 'Last run', get: (d) => (d.lastRun ? `${d.lastRun.at} ${d.lastRun.status}${d.lastRun.rows !== null ? ` (${d.lastRun.rows} rows)` : ''}` : 'never') },
    { header: 'Next run', get: (d) => d.nextRun ?? '' },
    { header: 'Versions', get: (d) => d.versions },
    { header: 'Missed', get: (d) => (d.missedRuns ? `${d.missedRuns} (last ${d.recentMissed[0]})` : 0) },
  ]);
  await section('Schema changes', s.schemaChanges.slice(0, 10), [
    { header: 'Datastore', get: (c) => c.datastore },
    { header: 'Column', get: (c) => c.column },
    { header: 'Change', get: (c) => (c.from ? `${c.change} ${c.from} -> ${c.to}` : `${c.change} ${c.to}`) },
    { header: 'Detail', get: (c) => c.detail ?? '' },
    { header: 'At', get: (c) => c.at },
  ]);
}
