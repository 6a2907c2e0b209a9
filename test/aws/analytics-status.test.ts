import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { nextFireTime, parseSchedule } from '../../src/iot/pipeline/schedule.js';
import type { AnalyticsStatus } from '../../src/ports.js';
import { specSchema, type SpecInput } from '../../src/spec/schema.js';
import { AwsAnalytics } from '../../src/targets/aws/analytics/index.js';
import { applyDatalake, datalakeContext, planDatalake } from '../../src/targets/aws/analytics/datalake.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { cli, makeProject, rejects } from '../helpers/project.js';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';

// `analytics status` on the datalake engine against moto_server. moto runs neither Firehose nor the Lambda, and
// does not turn EMF log lines into metrics, so the test puts what those services would: objects in S3, the
// Firehose and iotctl/Pipelines metrics (PutMetricData), and the transform's "record failed" log lines.

let moto: Moto;
let restore: () => void;
let aws: AwsClients;

const BUCKET = 'iotctl-stat-default--lake-123456789012-us-east-1';
const HOUR = 3_600_000;
const now = Date.now();

const analytics: NonNullable<SpecInput['analytics']> = {
  channels: [{ name: 'raw', retentionDays: 30 }],
  datastores: [{ name: 'telemetry' }],
  pipelines: [
    { name: 'main', channel: 'raw', datastore: 'telemetry', activities: [{ filter: { filter: 'temp >= 0' } }] },
    { name: 'quiet', channel: 'raw', datastore: 'telemetry', activities: [] },
  ],
  datasets: [
    { name: 'daily', sql: 'SELECT count(*) FROM telemetry', schedule: 'cron(0 2 * * ? *)' },
    { name: 'hourly', sql: 'SELECT count(*) FROM telemetry', schedule: 'rate(1 hour)' },
    { name: 'adhoc', sql: 'SELECT * FROM telemetry' },
  ],
};
const specOf = (a: NonNullable<SpecInput['analytics']>, extra: Partial<SpecInput> = {}) => specSchema.parse({ project: 'stat', target: 'aws', analytics: a, ...extra });
const SPEC = specOf(analytics);
/** Dataset content downloads (status reads dataset versions only, so nothing is written here). */
const CONTENT = { contentDir: join(tmpdir(), `iotctl-status-content-${process.pid}`) };

/** A "record failed" line as Lambda's text log format writes the handler's console.error. */
const failedLine = (recordId: string, reason: string, receivedAt: number) =>
  `${new Date(receivedAt + 1000).toISOString()}\t6f1a2b3c-0000-4000-8000-000000000000\tERROR\t` +
  JSON.stringify({ level: 'warn', message: 'record failed', pipeline: 'main', recordId, receivedAt: new Date(receivedAt).toISOString(), activity: 0, activityType: 'filter', reason });

test.before(async () => {
  moto = await startMoto();
  restore = useEnv(moto.env);
  aws = new AwsClients({ endpointUrl: moto.url });

  const ctx = await datalakeContext(aws, SPEC);
  await applyDatalake(aws, SPEC, await planDatalake(aws, SPEC, { context: ctx }), { context: ctx });

  // S3: raw objects of the channel, files of the datastore, and neighbours that must not be counted.
  const { client: s3, sdk: s } = await aws.get('s3');
  const put = (Key: string, bytes: number) => s3.send(new s.PutObjectCommand({ Bucket: BUCKET, Key, Body: Buffer.alloc(bytes) }));
  await put('raw/raw/dt=2030-01-01/iotctl-stat-default--ch-raw-1.gz', 10);
  await put('raw/raw/dt=2030-01-02/iotctl-stat-default--ch-raw-2.gz', 20);
  await put('raw/raw-old/dt=2030-01-02/other.gz', 999);
  await put('datastore/telemetry/dt=2030-01-01/a.parquet', 100);
  await put('datastore/telemetry/dt=2030-01-02/b.parquet', 200);
  await put('datastore/telemetry/dt=2030-01-02/c.parquet', 300);
  await put('errors/main/processing-failed/dt=2030-01-02/x.gz', 50);

  // Glue: the transform widened the table with a column learnt from data.
  const { client: glue, sdk: g } = await aws.get('glue');
  const table = (await glue.send(new g.GetTableCommand({ DatabaseName: 'iotctl_stat_default__lake', Name: 'telemetry' }))).Table!;
  await glue.send(
    new g.UpdateTableCommand({
      DatabaseName: 'iotctl_stat_default__lake',
      TableInput: { Name: 'telemetry', TableType: table.TableType, Parameters: table.Parameters, PartitionKeys: table.PartitionKeys, StorageDescriptor: { ...table.StorageDescriptor, Columns: [...table.StorageDescriptor!.Columns!, { Name: 'temp', Type: 'bigint' }] } },
    }),
  );

  // CloudWatch: what Firehose and the transform's EMF lines would have put.
  const { client: cw, sdk: c } = await aws.get('cloudwatch');
  const metric = (Namespace: string, MetricName: string, dims: Record<string, string>, Value: number, at: number) =>
    cw.send(new c.PutMetricDataCommand({ Namespace, MetricData: [{ MetricName, Dimensions: Object.entries(dims).map(([Name, Value]) => ({ Name, Value })), Value, Timestamp: new Date(at), Unit: 'Count' }] }));
  const raw = { DeliveryStreamName: 'iotctl-stat-default--ch-raw' };
  await metric('AWS/Firehose', 'IncomingRecords', raw, 100, now - 3 * HOUR);
  await metric('AWS/Firehose', 'IncomingRecords', raw, 50, now - HOUR);
  await metric('AWS/Firehose', 'IncomingRecords', raw, 1000, now - 48 * HOUR); // before the default window
  await metric('AWS/Firehose', 'IncomingBytes', raw, 15_000, now - HOUR);
  await metric('AWS/Firehose', 'DeliveryToS3.Records', raw, 140, now - HOUR); // 10 still buffered
  const main = { DeliveryStreamName: 'iotctl-stat-default--pl-main' };
  await metric('AWS/Firehose', 'IncomingRecords', main, 120, now - HOUR);
  await metric('AWS/Firehose', 'SucceedProcessing.Records', main, 115, now - HOUR);
  await metric('AWS/Firehose', 'DeliveryToS3.Records', main, 90, now - HOUR);
  await metric('AWS/Firehose', 'DeliveryToS3.DataFreshness', main, 900, now - 3 * HOUR); // an old backlog, since delivered
  await metric('AWS/Firehose', 'DeliveryToS3.DataFreshness', main, 42, now - 2 * 60_000);
  const emf = { Project: 'stat', Stage: 'default', Pipeline: 'main' };
  for (const [name, first, second] of [['In', 100, 20], ['Out', 70, 20], ['Filtered', 25, 0], ['Failed', 5, 0]] as const) {
    await metric('iotctl/Pipelines', name, emf, first, now - 2 * HOUR);
    await metric('iotctl/Pipelines', name, emf, second, now - HOUR);
  }
  await metric('iotctl/Pipelines', 'In', { Project: 'other', Stage: 'default', Pipeline: 'main' }, 999, now - HOUR); // another project's pipeline of that name
  await metric('iotctl/Pipelines', 'In', { Project: 'stat', Stage: 'dev', Pipeline: 'main' }, 999, now - HOUR); // another stage's
  const quiet = { DeliveryStreamName: 'iotctl-stat-default--pl-quiet' };
  await metric('AWS/Firehose', 'IncomingRecords', quiet, 40, now - HOUR);
  await metric('AWS/Firehose', 'SucceedProcessing.Records', quiet, 37, now - HOUR);
  await metric('AWS/Firehose', 'DeliveryToS3.Records', quiet, 30, now - HOUR);

  // CloudWatch Logs: the transform's log group, failures among other lines, oldest first.
  const { client: logs, sdk: l } = await aws.get('logs');
  const logGroupName = '/aws/lambda/iotctl-stat-default--transform-main';
  await logs.send(new l.CreateLogGroupCommand({ logGroupName }));
  await logs.send(new l.CreateLogStreamCommand({ logGroupName, logStreamName: '2030/01/02/[$LATEST]abc' }));
  const events = [
    { timestamp: now - 30 * HOUR, message: failedLine('r-old', 'outside the window', now - 30 * HOUR) },
    ...Array.from({ length: 6 }, (_, i) => ({ timestamp: now - (8 - i) * HOUR, message: failedLine(`r${i}`, `reason ${i}`, now - (8 - i) * HOUR - 5000) })),
    { timestamp: now - 90 * 60_000, message: `${new Date(now - 90 * 60_000).toISOString()}\t6f1a\tINFO\t{"level":"debug","message":"batch transformed"}` },
    // Lambda's JSON log format wraps the line.
    {
      timestamp: now - 20 * 60_000,
      message: JSON.stringify({ timestamp: new Date(now - 20 * 60_000).toISOString(), level: 'ERROR', requestId: '6f1a', message: failedLine('r-json', 'the payload is not valid JSON; pipelines process JSON messages', now - 21 * 60_000).split('\t').pop() }),
    },
  ];
  await logs.send(new l.PutLogEventsCommand({ logGroupName, logStreamName: '2030/01/02/[$LATEST]abc', logEvents: events }));
});

test.after(async () => {
  aws.destroy();
  restore();
  await moto.stop();
});

let status: AnalyticsStatus;

test('status: the counters window starts at --since (to the minute)', async () => {
  const since = now - 24 * HOUR;
  status = await new AwsAnalytics(aws, SPEC, CONTENT).status({ since });
  assert.is(status.countersSince, new Date(Math.floor(since / 60_000) * 60_000).toISOString());
  assert.equal(status.schemaChanges, []);
  assert.equal(status.reprocessing, []);
});

test('status: a channel counts Firehose records and bytes in the window, and its raw objects', () => {
  assert.equal(status.channels, [{ name: 'raw', messages: 150, bytes: 15_000, delivered: 140, segments: 2, duplicatesDropped: null, retentionDays: 30 }]);
});

test("status: a pipeline's counts come from the transform's metrics; lag is Firehose's current data freshness", () => {
  const main = status.pipelines.find((p) => p.name === 'main')!;
  const { recentFailures, ...counts } = main;
  assert.equal(counts, {
    name: 'main',
    channel: 'raw',
    datastore: 'telemetry',
    messagesIn: 120,
    messagesOut: 90,
    filtered: 25,
    failed: 5,
    lagMessages: null,
    lagSeconds: 42,
    lastError: 'the payload is not valid JSON; pipelines process JSON messages',
  });
  // The 5 newest failures in the window, newest first, from either log format.
  assert.equal(recentFailures.map((f) => f.messageId), ['r-json', 'r5', 'r4', 'r3', 'r2']);
  assert.equal(recentFailures[1], { messageId: 'r5', receivedAt: new Date(now - 3 * HOUR - 5000).toISOString(), activity: 0, activityType: 'filter', reason: 'reason 5' });
});

test('status: without the transform metrics a pipeline falls back on Firehose (no filtered count); no log group, no failures', () => {
  assert.equal(status.pipelines.find((p) => p.name === 'quiet'), {
    name: 'quiet',
    channel: 'raw',
    datastore: 'telemetry',
    messagesIn: 40,
    messagesOut: 30,
    filtered: 0,
    failed: 3,
    lagMessages: null,
    lagSeconds: 0,
    lastError: null,
    recentFailures: [],
  });
});

test("status: a datastore's files, bytes and days under its prefix, and its Glue columns", () => {
  assert.equal(status.datastores, [
    {
      name: 'telemetry',
      format: 'parquet',
      rows: null,
      files: 3,
      bytes: 600,
      partitions: 2,
      columns: [
        { name: '__message_id', type: 'string' },
        { name: '__received_at', type: 'timestamp' },
        { name: 'temp', type: 'bigint' },
      ],
    },
  ]);
});

test('status: datasets show their schedule and next run (runs are not read on AWS yet)', async () => {
  const { client: sch, sdk: sc } = await aws.get('scheduler');
  const created = (await sch.send(new sc.GetScheduleCommand({ Name: 'iotctl-stat-default--hourly' }))).CreationDate!.getTime();
  const at = (ms: number | undefined) => new Date(ms!).toISOString();
  const base = { lastRun: null, versions: 0, missedRuns: 0, recentMissed: [] };
  const [daily, hourly, adhoc] = status.datasets;
  assert.equal(daily, { name: 'daily', schedule: 'cron(0 2 * * ? *)', nextRun: daily!.nextRun, ...base });
  // The next 02:00 UTC after the moment the status ran (between `now` and this test).
  const cron = parseSchedule('cron(0 2 * * ? *)');
  assert.ok([at(nextFireTime(cron, now)), at(nextFireTime(cron, Date.now()))].includes(daily!.nextRun!), daily!.nextRun!);
  assert.equal(hourly, { name: 'hourly', schedule: 'rate(1 hour)', nextRun: hourly!.nextRun, ...base });
  const next = Date.parse(hourly!.nextRun!);
  assert.ok(next > now && next <= Date.now() + HOUR && (next - created) % HOUR === 0, `rate schedules count from their creation: ${hourly!.nextRun}`);
  assert.equal(adhoc, { name: 'adhoc', schedule: null, nextRun: null, ...base });
});

test('status: --since widens the window (counters only; object counts are all-time)', async () => {
  const wide = await new AwsAnalytics(aws, SPEC, CONTENT).status({ since: now - 72 * HOUR });
  assert.is(wide.channels[0]!.messages, 1150);
  assert.is(wide.channels[0]!.segments, 2);
  assert.equal(wide.pipelines[0]!.recentFailures.map((f) => f.messageId), ['r-json', 'r5', 'r4', 'r3', 'r2']);
  const narrow = await new AwsAnalytics(aws, SPEC, CONTENT).status({ since: now - 90 * 60_000 });
  assert.is(narrow.channels[0]!.messages, 50);
  assert.equal([narrow.pipelines[0]!.messagesIn, narrow.pipelines[0]!.failed], [20, 0]);
  assert.equal(narrow.pipelines[0]!.recentFailures.map((f) => f.messageId), ['r-json'], 'failures within the window only');
  await rejects(new AwsAnalytics(aws, SPEC, CONTENT).status({ since: Date.now() + HOUR }), /--since must be in the past/);
});

test('status: resources not applied yet (or a bucket that does not exist) show zeros, not errors', async () => {
  const spec = specOf({
    channels: [{ name: 'late' }],
    datastores: [{ name: 'later' }],
    pipelines: [{ name: 'late', channel: 'late', datastore: 'later', activities: [] }],
    datasets: [{ name: 'soon', sql: 'SELECT 1', schedule: 'rate(5 minutes)' }],
  });
  for (const s of [spec, { ...spec, project: 'ghost' }]) {
    const out = await new AwsAnalytics(aws, s, CONTENT).status();
    assert.equal(out.channels, [{ name: 'late', messages: 0, bytes: 0, delivered: 0, segments: 0, duplicatesDropped: null, retentionDays: null }]);
    assert.equal(out.pipelines.map((p) => [p.messagesIn, p.messagesOut, p.filtered, p.failed, p.lagSeconds, p.recentFailures.length]), [[0, 0, 0, 0, 0, 0]]);
    assert.equal(out.datastores, [{ name: 'later', format: 'parquet', rows: null, files: 0, bytes: 0, partitions: 0, columns: [] }]);
    assert.equal(out.datasets.map((d) => [d.name, d.nextRun]), [['soon', null]], 'no schedule yet: no next run');
  }
});

test('status on the legacy engine says to migrate', async () => {
  const legacy = specOf({ ...analytics, engine: 'iotanalytics' });
  await rejects(new AwsAnalytics(aws, legacy, CONTENT).status(), /IoT Analytics/);
  const e = await rejects(new AwsAnalytics(aws, legacy, CONTENT).status());
  assert.match((e as { hint?: string }).hint ?? '', /iotctl analytics migrate/);
});

test('the CLI renders it: --json equals the port, a table per section with the window in its title', async () => {
  // The database the in-process spec has (the loader would default it to the project name).
  const yaml = `project: stat\ntarget: aws\nathena: { database: iotctl }\nanalytics: ${JSON.stringify(analytics)}\n`;
  const project = makeProject(yaml);
  try {
    const env = { ...moto.env, IOTCTL_SPEC: project.specFile };
    const json = await cli(['analytics', 'status', '--since', '24h', '--json'], { cwd: project.dir, env, timeoutMs: 90_000 });
    assert.is(json.code, 0, json.stderr);
    const out = JSON.parse(json.stdout) as AnalyticsStatus;
    assert.equal(out.channels, status.channels);
    assert.equal(out.datastores, status.datastores);
    assert.equal(out.pipelines.map((p) => [p.name, p.messagesIn, p.failed, p.recentFailures.length]), [['main', 120, 5, 5], ['quiet', 40, 3, 0]]);

    const tsv = await cli(['analytics', 'status', '--since', '90m'], { cwd: project.dir, env, timeoutMs: 90_000 });
    assert.is(tsv.code, 0, tsv.stderr);
    assert.match(tsv.stderr, /# Pipelines \(counts since \d{4}-\d\d-\d\dT[\d:.]+Z\)/);
    assert.match(tsv.stderr, /# Channels \(counts since /);
    assert.match(tsv.stdout, /^main\traw\ttelemetry\t20\t20\t0\t0\t42s\t/m, 'the 90-minute window counts the last batch only');

    const bad = await cli(['analytics', 'status', '--since', 'yesterday-ish'], { cwd: project.dir, env, timeoutMs: 90_000 });
    assert.is(bad.code, 1);
    assert.match(bad.stderr, /--since "yesterday-ish" is not a time/);
  } finally {
    project.cleanup();
  }
});

test.run();
