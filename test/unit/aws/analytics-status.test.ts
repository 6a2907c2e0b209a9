import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { specSchema } from '../../../src/spec/schema.js';
import { lakeNames } from '../../../src/targets/aws/analytics/model.js';
import {
  datasetStatus,
  failureOf,
  metricQueries,
  metricsWindow,
  metricWants,
  pipelineStatus,
  summariseObjects,
  type MetricSeries,
} from '../../../src/targets/aws/analytics/status.js';

// The pure half of `analytics status` on AWS: the CloudWatch window and queries, and the mapping of what
// CloudWatch, S3, CloudWatch Logs and Scheduler answer to the status. The AWS calls are tested on moto (test/aws).

const NOW = Date.parse('2030-03-10T12:34:56.789Z');
const HOUR = 3_600_000;
const spec = specSchema.parse({
  project: 'demo',
  target: 'aws',
  analytics: {
    channels: [{ name: 'raw' }],
    datastores: [{ name: 'store' }],
    pipelines: [{ name: 'main', channel: 'raw', datastore: 'store' }],
    datasets: [{ name: 'hourly', sql: 'SELECT 1', schedule: 'rate(1 hour)' }],
  },
});
const n = lakeNames(spec, { accountId: '123456789012', region: 'eu-west-1' });
const pipeline = spec.analytics.pipelines[0]!;

test('the window: start to the minute, one period covering it, in the multiple CloudWatch wants for its age', () => {
  const day = metricsWindow(NOW - 24 * HOUR, NOW);
  assert.equal(day, { start: Date.parse('2030-03-09T12:34:00Z'), end: NOW, period: 86_460, lagPeriod: 300 });
  assert.ok(day.start + day.period * 1000 >= day.end, 'one period covers the window');
  assert.equal(metricsWindow(NOW - 20 * 24 * HOUR, NOW).period % 300, 0, 'older than 15 days: multiples of 5 minutes');
  const old = metricsWindow(NOW - 90 * 24 * HOUR, NOW);
  assert.equal([old.period % 3600, old.lagPeriod], [0, 3600], 'older than 63 days: multiples of an hour');
  assert.throws(() => metricsWindow(NOW + 1, NOW), /--since must be in the past/);
});

test('the queries: Firehose metrics per delivery stream, the transform metrics per project and pipeline', () => {
  const window = metricsWindow(NOW - 24 * HOUR, NOW);
  const wants = metricWants(spec, n, window);
  assert.equal(
    wants.map((w) => `${w.key} ${w.namespace} ${w.stat} ${JSON.stringify(w.dimensions)}`),
    [
      'channel/raw/IncomingRecords AWS/Firehose Sum {"DeliveryStreamName":"iotctl-demo-default--ch-raw"}',
      'channel/raw/IncomingBytes AWS/Firehose Sum {"DeliveryStreamName":"iotctl-demo-default--ch-raw"}',
      'channel/raw/DeliveryToS3.Records AWS/Firehose Sum {"DeliveryStreamName":"iotctl-demo-default--ch-raw"}',
      'pipeline/main/IncomingRecords AWS/Firehose Sum {"DeliveryStreamName":"iotctl-demo-default--pl-main"}',
      'pipeline/main/SucceedProcessing.Records AWS/Firehose Sum {"DeliveryStreamName":"iotctl-demo-default--pl-main"}',
      'pipeline/main/DeliveryToS3.Records AWS/Firehose Sum {"DeliveryStreamName":"iotctl-demo-default--pl-main"}',
      'pipeline/main/DeliveryToS3.DataFreshness AWS/Firehose Maximum {"DeliveryStreamName":"iotctl-demo-default--pl-main"}',
      'pipeline/main/In iotctl/Pipelines Sum {"Project":"demo","Stage":"default","Pipeline":"main"}',
      'pipeline/main/Out iotctl/Pipelines Sum {"Project":"demo","Stage":"default","Pipeline":"main"}',
      'pipeline/main/Filtered iotctl/Pipelines Sum {"Project":"demo","Stage":"default","Pipeline":"main"}',
      'pipeline/main/Failed iotctl/Pipelines Sum {"Project":"demo","Stage":"default","Pipeline":"main"}',
    ],
  );
  const queries = metricQueries(wants);
  assert.equal(queries[0], {
    Id: 'm0',
    MetricStat: { Metric: { Namespace: 'AWS/Firehose', MetricName: 'IncomingRecords', Dimensions: [{ Name: 'DeliveryStreamName', Value: 'iotctl-demo-default--ch-raw' }] }, Period: 86_460, Stat: 'Sum' },
  });
  assert.is(queries[6]!.MetricStat!.Period, 300, 'the lag is read per 5 minutes, for its latest value');
});

test('objects: data files only, their bytes, and distinct dt= days', () => {
  assert.equal(
    summariseObjects([
      { Key: 'datastore/store/', Size: 0 },
      { Key: 'datastore/store/dt=2030-03-09/a.parquet', Size: 10 },
      { Key: 'datastore/store/dt=2030-03-10/b.parquet', Size: 20 },
      { Key: 'datastore/store/dt=2030-03-10/c.parquet', Size: 30 },
      { Key: 'datastore/store/loose.parquet', Size: 5 },
    ]),
    { objects: 4, bytes: 65, days: 2 },
  );
  assert.equal(summariseObjects([]), { objects: 0, bytes: 0, days: 0 });
});

const line = { level: 'warn', message: 'record failed', pipeline: 'main', recordId: 'r1', receivedAt: '2030-03-10T12:00:00.000Z', activity: 2, activityType: 'math', reason: 'boom' };
const failure = { messageId: 'r1', receivedAt: '2030-03-10T12:00:00.000Z', activity: 2, activityType: 'math', reason: 'boom' };

test('failure lines: Lambda text and JSON log formats; other lines are ignored', () => {
  assert.equal(failureOf({ message: `2030-03-10T12:00:01.000Z\tabc\tERROR\t${JSON.stringify(line)}\n`, timestamp: 1 }), failure);
  assert.equal(failureOf({ message: JSON.stringify({ timestamp: 'x', level: 'ERROR', requestId: 'abc', message: JSON.stringify(line) }) }), failure);
  assert.equal(failureOf({ message: JSON.stringify({ timestamp: 'x', level: 'ERROR', requestId: 'abc', message: line }) }), failure);
  // A line from before receivedAt was logged: the time of the log event instead.
  const { receivedAt: _, ...older } = line;
  assert.equal(failureOf({ message: JSON.stringify(older), timestamp: Date.parse('2030-03-10T12:00:05Z') })!.receivedAt, '2030-03-10T12:00:05.000Z');
  assert.is(failureOf({ message: 'START RequestId: abc Version: $LATEST' }), undefined);
  assert.is(failureOf({ message: '2030\tabc\tINFO\t{"level":"debug","message":"batch transformed"}' }), undefined);
  assert.is(failureOf({ message: 'record failed {not json' }), undefined);
});

const series = (entries: Record<string, [number, number][]>): MetricSeries => new Map(Object.entries(entries).map(([k, v]) => [`pipeline/main/${k}`, v.map(([at, value]) => ({ at, value }))]));

test("a pipeline: the transform's counts, summed over the window's periods; lag only while it is current", () => {
  const window = metricsWindow(NOW - 24 * HOUR, NOW);
  const m = series({
    In: [[window.start, 10], [window.start + 86_460_000, 2]],
    Out: [[window.start, 7]],
    Filtered: [[window.start, 4]],
    Failed: [[window.start, 1]],
    IncomingRecords: [[window.start, 500]],
    'DeliveryToS3.DataFreshness': [[NOW - 2 * HOUR, 900], [NOW - 4 * 60_000, 61.6]],
  });
  const s = pipelineStatus(pipeline, m, window, [failure]);
  assert.equal([s.messagesIn, s.messagesOut, s.filtered, s.failed, s.lagMessages, s.lagSeconds, s.lastError], [12, 7, 4, 1, null, 62, 'boom']);
  const stale = series({ 'DeliveryToS3.DataFreshness': [[NOW - 2 * HOUR, 900]] });
  assert.is(pipelineStatus(pipeline, stale, window, []).lagSeconds, 0, 'no recent freshness: nothing held back');
});

test('a pipeline without transform metrics: Firehose in and out, failed = incoming - processed, no filtered count', () => {
  const window = metricsWindow(NOW - 24 * HOUR, NOW);
  const m = series({ IncomingRecords: [[window.start, 50]], 'SucceedProcessing.Records': [[window.start, 45]], 'DeliveryToS3.Records': [[window.start, 40]] });
  const s = pipelineStatus(pipeline, m, window, []);
  assert.equal([s.messagesIn, s.messagesOut, s.filtered, s.failed, s.lastError], [50, 40, 0, 5, null]);
});

test('a dataset: next run from its schedule (rates from the schedule creation); none when missing or disabled', () => {
  const d = spec.analytics.datasets[0]!;
  const created = Date.parse('2030-03-01T00:20:00Z');
  assert.equal(datasetStatus(d, { enabled: true, createdAt: created }, NOW), {
    name: 'hourly',
    schedule: 'rate(1 hour)',
    lastRun: null,
    nextRun: '2030-03-10T13:20:00.000Z',
    versions: 0,
    missedRuns: 0,
    recentMissed: [],
  });
  assert.is(datasetStatus(d, { enabled: false, createdAt: created }, NOW).nextRun, null);
  assert.is(datasetStatus(d, undefined, NOW).nextRun, null);
  assert.is(datasetStatus({ name: 'adhoc', sql: 'SELECT 1' } as typeof d, undefined, NOW).schedule, null);
});

test.run();
