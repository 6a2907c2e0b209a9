import { lambdaLogGroup } from '../naming.js';
import type { MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { PIPELINE_METRICS } from '../../../iot/pipeline/firehose.js';
import { nextFireTime, parseSchedule } from '../../../iot/pipeline/schedule.js';
import type { AnalyticsStatus, ChannelStatus, DatasetStatus, DatasetVersion, DatastoreStatus, PipelineStatus } from '../../../ports.js';
import { UserError } from '../../../ui/errors.js';
import { DEFAULT_STAGE } from '../ownership.js';
import { isAwsError, type AwsClients } from '../sdk.js';
import { lakePlace, type DatalakeSpec } from './datalake.js';
import type { LakeNames } from './model.js';
import { listObjects } from './s3-objects.js';

/**
 * `analytics status` on the datalake engine. Counters come from CloudWatch over [since, now] (default: the
 * last 24 hours): Firehose's own metrics per delivery stream, and the transform's iotctl/Pipelines metrics
 * (In/Out/Filtered/Failed, see pipelineMetricsLine) per pipeline. Object counts and sizes are all-time, listed
 * from S3; recent failures are the transform's "record failed" log lines. Schema changes and reprocessing are
 * not tracked on AWS (empty lists).
 *
 * The pure mapping functions (exported, tested with fixtures) are separate from the SDK calls below them.
 */

type Names = LakeNames;

export const DEFAULT_WINDOW_MS = 24 * 3_600_000;
const MINUTE = 60_000;
const RECENT_FAILURES = 5;

// ---------------------------------------------------------------------------------------------- pure

export interface Window {
  /** Epoch ms, rounded down to the minute (CloudWatch does so too). */
  start: number;
  end: number;
  /** Seconds: one period for the whole window, in the multiple CloudWatch requires for data that old. */
  period: number;
  /** Seconds: the period of the lag metric (its latest value is the current lag). */
  lagPeriod: number;
}

export function metricsWindow(since: number, now: number): Window {
  if (!(since < now)) throw new UserError('--since must be in the past.', 'Use a duration ago like 6h or 7d, or an ISO time.');
  const start = Math.floor(since / MINUTE) * MINUTE;
  const age = (now - start) / 86_400_000;
  // GetMetricData: periods are multiples of 60 s; of 300 s for data 15 to 63 days old; of 3600 s beyond.
  const unit = age > 63 ? 3600 : age > 15 ? 300 : 60;
  const period = Math.ceil((now - start) / 1000 / unit) * unit;
  return { start, end: now, period, lagPeriod: Math.max(300, unit) };
}

/** One metric `status` reads; `key` names it in the results. */
export interface MetricWant {
  key: string;
  namespace: string;
  metric: string;
  dimensions: Record<string, string>;
  stat: 'Sum' | 'Maximum';
  period: number;
}

const FIREHOSE = 'AWS/Firehose';

/** Every metric the status needs, for one GetMetricData batch. */
export function metricWants(spec: DatalakeSpec, n: Names, window: Window): MetricWant[] {
  const out: MetricWant[] = [];
  const sum = (key: string, namespace: string, metric: string, dimensions: Record<string, string>) => out.push({ key, namespace, metric, dimensions, stat: 'Sum', period: window.period });
  for (const ch of spec.analytics.channels) {
    const stream = { DeliveryStreamName: n.channelStream(ch.name) };
    sum(`channel/${ch.name}/IncomingRecords`, FIREHOSE, 'IncomingRecords', stream);
    sum(`channel/${ch.name}/IncomingBytes`, FIREHOSE, 'IncomingBytes', stream);
    sum(`channel/${ch.name}/DeliveryToS3.Records`, FIREHOSE, 'DeliveryToS3.Records', stream);
  }
  for (const p of spec.analytics.pipelines) {
    const stream = { DeliveryStreamName: n.pipelineStream(p.name) };
    for (const metric of ['IncomingRecords', 'SucceedProcessing.Records', 'DeliveryToS3.Records']) sum(`pipeline/${p.name}/${metric}`, FIREHOSE, metric, stream);
    out.push({ key: `pipeline/${p.name}/DeliveryToS3.DataFreshness`, namespace: FIREHOSE, metric: 'DeliveryToS3.DataFreshness', dimensions: stream, stat: 'Maximum', period: window.lagPeriod });
    for (const metric of PIPELINE_METRICS.names) sum(`pipeline/${p.name}/${metric}`, PIPELINE_METRICS.namespace, metric, { Project: spec.project, Stage: spec.stage ?? DEFAULT_STAGE, Pipeline: p.name });
  }
  return out;
}

/** GetMetricData queries for the wants; a query's Id is its index (Ids must start with a lower-case letter). */
export function metricQueries(wants: MetricWant[]): MetricDataQuery[] {
  return wants.map((w, i) => ({
    Id: `m${i}`,
    MetricStat: {
      Metric: { Namespace: w.namespace, MetricName: w.metric, Dimensions: Object.entries(w.dimensions).map(([Name, Value]) => ({ Name, Value })) },
      Period: w.period,
      Stat: w.stat,
    },
  }));
}

/** A metric's datapoints (epoch ms, value); a metric with no data in the window has none. */
export type MetricSeries = Map<string, { at: number; value: number }[]>;

const points = (m: MetricSeries, key: string) => m.get(key) ?? [];
const has = (m: MetricSeries, key: string) => points(m, key).length > 0;
/** The window's total (CloudWatch may split one window into two periods when it rounds the start). */
const total = (m: MetricSeries, key: string) => points(m, key).reduce((s, p) => s + p.value, 0);

/** The latest lag datapoint, when it is recent: Firehose reports freshness only while it holds data. */
function currentLag(m: MetricSeries, key: string, window: Window): number {
  const latest = points(m, key).reduce<{ at: number; value: number } | undefined>((a, p) => (!a || p.at > a.at ? p : a), undefined);
  if (!latest || latest.at < window.end - window.lagPeriod * 1000 - 10 * MINUTE) return 0;
  return Math.round(latest.value);
}

/** What a listing of S3 objects under one prefix adds up to. */
export interface ObjectSummary {
  objects: number;
  bytes: number;
  /** Distinct dt= partitions. */
  days: number;
}

export function summariseObjects(objects: { Key?: string; Size?: number }[]): ObjectSummary {
  const days = new Set<string>();
  let count = 0;
  let bytes = 0;
  for (const o of objects) {
    if (!o.Key || o.Key.endsWith('/')) continue; // a folder placeholder, not data
    count++;
    bytes += o.Size ?? 0;
    const dt = /(?:^|\/)dt=([^/]+)\//.exec(o.Key)?.[1];
    if (dt) days.add(dt);
  }
  return { objects: count, bytes, days: days.size };
}

export function channelStatus(ch: DatalakeSpec['analytics']['channels'][number], m: MetricSeries, raw: ObjectSummary): ChannelStatus {
  return {
    name: ch.name,
    messages: total(m, `channel/${ch.name}/IncomingRecords`),
    bytes: total(m, `channel/${ch.name}/IncomingBytes`),
    delivered: total(m, `channel/${ch.name}/DeliveryToS3.Records`),
    segments: raw.objects,
    // Firehose does not deduplicate; a replay is stored again.
    duplicatesDropped: null,
    retentionDays: ch.retentionDays ?? null,
  };
}

export type Failure = PipelineStatus['recentFailures'][number];

export function pipelineStatus(p: DatalakeSpec['analytics']['pipelines'][number], m: MetricSeries, window: Window, failures: Failure[]): PipelineStatus {
  const k = (metric: string) => `pipeline/${p.name}/${metric}`;
  const incoming = total(m, k('IncomingRecords'));
  // The transform's own counts when it published any; otherwise what Firehose can tell: it counts records the
  // transform did not fail, so filtered (Dropped) records cannot be told from delivered ones.
  const own = PIPELINE_METRICS.names.some((metric) => has(m, k(metric)));
  return {
    name: p.name,
    channel: p.channel,
    datastore: p.datastore,
    messagesIn: own ? total(m, k('In')) : incoming,
    messagesOut: own ? total(m, k('Out')) : total(m, k('DeliveryToS3.Records')),
    filtered: own ? total(m, k('Filtered')) : 0,
    failed: own ? total(m, k('Failed')) : Math.max(0, incoming - total(m, k('SucceedProcessing.Records'))),
    lagMessages: null,
    lagSeconds: currentLag(m, k('DeliveryToS3.DataFreshness'), window),
    lastError: failures[0]?.reason ?? null,
    recentFailures: failures,
  };
}

/**
 * A "record failed" line of the transform (handler.ts log()) from its log event, whichever way Lambda wrote it:
 * text format prefixes `<time>\t<request id>\tERROR\t`, JSON format wraps it as {"message": "<the line>", ...}.
 */
export function failureOf(event: { message?: string; timestamp?: number }): Failure | undefined {
  const text = event.message ?? '';
  const start = text.indexOf('{');
  if (start < 0) return undefined;
  let line = parseObject(text.slice(start));
  if (line && line.message !== 'record failed') line = typeof line.message === 'string' ? parseObject(line.message) : (line.message as Record<string, unknown> | undefined);
  if (!line || line.message !== 'record failed' || typeof line.recordId !== 'string') return undefined;
  return {
    messageId: line.recordId,
    // Lines from before receivedAt was logged: when the failure was logged instead.
    receivedAt: typeof line.receivedAt === 'string' ? line.receivedAt : new Date(event.timestamp ?? 0).toISOString(),
    activity: typeof line.activity === 'number' ? line.activity : -1,
    activityType: String(line.activityType ?? ''),
    reason: String(line.reason ?? ''),
  };
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(text.trim());
    return v && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

export function datastoreStatus(ds: DatalakeSpec['analytics']['datastores'][number], objects: ObjectSummary, columns: { name: string; type: string }[]): DatastoreStatus {
  // Rows would need a query (Athena scans cost money): unknown here.
  return { name: ds.name, format: ds.format, rows: null, files: objects.objects, bytes: objects.bytes, partitions: objects.days, columns };
}

/** A schedule as EventBridge Scheduler has it; undefined when it does not exist (not applied yet). */
export interface ScheduleState {
  enabled: boolean;
  createdAt: number;
}

/**
 * A dataset's schedule, next run, last run and kept versions (newest first, from AwsDatasets.versions). EventBridge
 * Scheduler does not skip runs, so nothing counts as missed.
 * A schedule that is missing or disabled has no next run; rate schedules count from their creation.
 */
export function datasetStatus(d: DatalakeSpec['analytics']['datasets'][number], schedule: ScheduleState | undefined, now: number, versions: DatasetVersion[] = []): DatasetStatus {
  let nextRun: number | undefined;
  if (d.schedule && schedule?.enabled) {
    try {
      nextRun = nextFireTime(parseSchedule(d.schedule), now, schedule.createdAt);
    } catch {
      nextRun = undefined;
    }
  }
  const last = versions[0];
  return {
    name: d.name,
    schedule: d.schedule ?? null,
    lastRun: last ? { version: last.version, status: last.status, at: new Date(last.createdAt).toISOString(), rows: last.rows, error: last.error } : null,
    nextRun: nextRun === undefined ? null : new Date(nextRun).toISOString(),
    versions: versions.filter((v) => v.status === 'SUCCEEDED').length,
    missedRuns: 0,
    recentMissed: [],
  };
}

// ---------------------------------------------------------------------------------------------- AWS calls

export async function datalakeStatus(
  aws: AwsClients,
  spec: DatalakeSpec,
  opts: { since?: number; now?: number; datasetVersions?: (dataset: string) => Promise<DatasetVersion[]> } = {},
): Promise<AnalyticsStatus> {
  const now = opts.now ?? Date.now();
  const window = metricsWindow(opts.since ?? now - DEFAULT_WINDOW_MS, now);
  const a = spec.analytics;
  // The stage's names need only the account, the region and the bucket; no transform bundle.
  const n = await lakePlace(aws, spec);
  const wants = metricWants(spec, n, window);

  const [metrics, raws, stores, columns, failures, datasets] = await Promise.all([
    getMetrics(aws, wants, window),
    Promise.all(a.channels.map((ch) => listPrefix(aws, n.bucket, `raw/${ch.name}/`))),
    Promise.all(a.datastores.map((ds) => listPrefix(aws, n.bucket, `datastore/${ds.name}/`))),
    Promise.all(a.datastores.map((ds) => tableColumns(aws, n.database, n.table(ds.name)))),
    Promise.all(a.pipelines.map((p) => recentFailures(aws, n.transformFunction(p.name), window))),
    datasetStatuses(aws, spec, n, now, opts.datasetVersions),
  ]);

  return {
    countersSince: new Date(window.start).toISOString(),
    channels: a.channels.map((ch, i) => channelStatus(ch, metrics, raws[i]!)),
    pipelines: a.pipelines.map((p, i) => pipelineStatus(p, metrics, window, failures[i]!)),
    datastores: a.datastores.map((ds, i) => datastoreStatus(ds, stores[i]!, columns[i]!)),
    datasets,
    // Not tracked on AWS: Glue keeps no history of column changes, and `analytics reprocess` runs in the CLI and leaves no record.
    schemaChanges: [],
    reprocessing: [],
  };
}

/** GetMetricData in batches of 500 queries (its limit), following NextToken. */
async function getMetrics(aws: AwsClients, wants: MetricWant[], window: Window): Promise<MetricSeries> {
  const out: MetricSeries = new Map();
  if (!wants.length) return out;
  const { client, sdk } = await aws.get('cloudwatch');
  const queries = metricQueries(wants);
  for (let i = 0; i < queries.length; i += 500) {
    let NextToken: string | undefined;
    do {
      const page = await client.send(
        new sdk.GetMetricDataCommand({ MetricDataQueries: queries.slice(i, i + 500), StartTime: new Date(window.start), EndTime: new Date(window.end), NextToken }),
        aws.sendOptions,
      );
      for (const r of page.MetricDataResults ?? []) {
        const want = wants[Number(r.Id!.slice(1))]!;
        const series = out.get(want.key) ?? [];
        (r.Timestamps ?? []).forEach((t, j) => series.push({ at: t.getTime(), value: r.Values?.[j] ?? 0 }));
        out.set(want.key, series);
      }
      NextToken = page.NextToken;
    } while (NextToken);
  }
  return out;
}

/** The objects under a prefix, added up; none when the bucket does not exist yet. */
async function listPrefix(aws: AwsClients, bucket: string, prefix: string): Promise<ObjectSummary> {
  return summariseObjects(await listObjects(aws, bucket, prefix));
}

/** The datastore's Glue table columns (the transform widens them as data arrives); none before it exists. */
async function tableColumns(aws: AwsClients, database: string, table: string): Promise<{ name: string; type: string }[]> {
  const { client, sdk } = await aws.get('glue');
  try {
    const out = await client.send(new sdk.GetTableCommand({ DatabaseName: database, Name: table }), aws.sendOptions);
    return (out.Table?.StorageDescriptor?.Columns ?? []).map((c) => ({ name: c.Name!, type: c.Type! }));
  } catch (e) {
    if (isAwsError(e, 'EntityNotFoundException')) return [];
    throw e;
  }
}

/**
 * The newest "record failed" lines of a transform function, newest first. FilterLogEvents returns events oldest
 * first, so it searches backwards in growing slices (15 min, 1 h, 4 h, ...) and stops once it has enough.
 */
async function recentFailures(aws: AwsClients, fn: string, window: Window): Promise<Failure[]> {
  const { client, sdk } = await aws.get('logs');
  const found: Failure[] = [];
  let end = window.end;
  let span = 15 * MINUTE;
  while (end >= window.start && found.length < RECENT_FAILURES) {
    const start = Math.max(window.start, end - span);
    const events: { message?: string; timestamp?: number }[] = [];
    let nextToken: string | undefined;
    do {
      let page;
      try {
        page = await client.send(
          new sdk.FilterLogEventsCommand({ logGroupName: lambdaLogGroup(fn), filterPattern: '"record failed"', startTime: start, endTime: end, nextToken }),
          aws.sendOptions,
        );
      } catch (e) {
        // No log group: the function has not logged anything (or does not exist yet).
        if (isAwsError(e, 'ResourceNotFoundException')) return [];
        throw e;
      }
      events.push(...(page.events ?? []));
      nextToken = page.nextToken;
    } while (nextToken);
    events.sort((x, y) => (y.timestamp ?? 0) - (x.timestamp ?? 0));
    for (const e of events) {
      const failure = failureOf(e);
      if (failure) found.push(failure);
    }
    // Both bounds are inclusive: the next slice ends just before this one.
    end = start - 1;
    span *= 4;
  }
  return found.slice(0, RECENT_FAILURES);
}

/**
 * The datasets: schedule and next run from EventBridge Scheduler. One function, so dataset runs (lastRun,
 * versions) can replace it when they are read on AWS.
 */
async function datasetStatuses(aws: AwsClients, spec: DatalakeSpec, n: Names, now: number, versions?: (dataset: string) => Promise<DatasetVersion[]>): Promise<DatasetStatus[]> {
  return Promise.all(
    spec.analytics.datasets.map(async (d) => {
      const [schedule, runs] = await Promise.all([d.schedule ? scheduleState(aws, n.schedule(d.name)) : undefined, versions?.(d.name) ?? []]);
      return datasetStatus(d, schedule, now, runs);
    }),
  );
}

async function scheduleState(aws: AwsClients, name: string): Promise<ScheduleState | undefined> {
  const { client, sdk } = await aws.get('scheduler');
  try {
    const s = await client.send(new sdk.GetScheduleCommand({ Name: name }), aws.sendOptions);
    return { enabled: s.State !== 'DISABLED', createdAt: s.CreationDate?.getTime() ?? 0 };
  } catch (e) {
    if (isAwsError(e, 'ResourceNotFoundException')) return undefined;
    throw e;
  }
}
