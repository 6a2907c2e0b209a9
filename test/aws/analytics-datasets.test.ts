import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Row } from '@aws-sdk/client-athena';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { specSchema, type Spec } from '../../src/spec/schema.js';
import { AwsAnalytics } from '../../src/targets/aws/analytics/index.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { UserError } from '../../src/ui/errors.js';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';

// Datasets on the datalake engine against moto_server: apply, run (Athena writes the result CSV to S3),
// versions, content, versionsToKeep pruning, scheduled runs, and the delta window in the applied SQL.
// moto does not execute SQL: each run's rows are queued with its moto-api, and moto writes them as the CSV.

let moto: Moto;
let restore: () => void;
let aws: AwsClients;
let dir: string;
let spec: Spec;
let analytics: AwsAnalytics;
const BUCKET = 'iotctl-lake-default--lake-123456789012-us-east-1';

const cells = (...values: (string | undefined)[]): Row => ({ Data: values.map((v) => (v === undefined ? {} : { VarCharValue: v })) });

/** Queues the rows moto's next query returns (and writes as its CSV), header first as Athena writes it. */
async function queueResult(columns: [string, string][], rows: (string | undefined)[][]): Promise<void> {
  const res = await fetch(`${moto.url}/moto-api/static/athena/query-results`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      results: [
        {
          column_info: columns.map(([Name, Type]) => ({ Name, Label: Name, Type, Nullable: 'UNKNOWN', CaseSensitive: false })),
          rows: [cells(...columns.map(([n]) => n)), ...rows.map((r) => cells(...r))],
        },
      ],
    }),
  });
  assert.ok(res.status < 300, await res.text());
}

async function objects(prefix: string): Promise<string[]> {
  const { client, sdk } = await aws.get('s3');
  const out = await client.send(new sdk.ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

async function userError(promise: Promise<unknown>): Promise<UserError> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof UserError) return e;
    throw e;
  }
  throw new Error('expected a UserError');
}

test.before(async () => {
  moto = await startMoto();
  restore = useEnv(moto.env);
  aws = new AwsClients({ endpointUrl: moto.url });
  dir = mkdtempSync(join(tmpdir(), 'iotctl-datasets-'));
  spec = specSchema.parse({
    project: 'lake',
    target: 'aws',
    analytics: {
      channels: [{ name: 'raw', retentionDays: 30 }],
      datastores: [{ name: 'telemetry' }],
      pipelines: [{ name: 'main', channel: 'raw', datastore: 'telemetry', activities: [] }],
      datasets: [
        { name: 'adhoc', sql: 'SELECT device, count(*) AS n FROM telemetry GROUP BY device', versionsToKeep: 2 },
        { name: 'hourly', sql: 'SELECT count(*) AS n FROM telemetry', schedule: 'rate(1 hour)', deltaTime: { offsetSeconds: -60, timeExpression: '__received_at' }, versionsToKeep: 24 },
      ],
    },
  });
  analytics = new AwsAnalytics(aws, spec, { contentDir: join(dir, 'content') });
  const plan = await analytics.plan({});
  await analytics.apply(plan.items);
});
test.after(async () => {
  aws.destroy();
  restore();
  await moto.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('apply: the schedule and the named query carry the delta window; the bucket expires old content; apply again is a no-op', async () => {
  const { client, sdk } = await aws.get('scheduler');
  const schedule = await client.send(new sdk.GetScheduleCommand({ Name: 'iotctl-lake-default--hourly' }));
  const input = JSON.parse(schedule.Target!.Input!) as { QueryString: string; ResultConfiguration: { OutputLocation: string } };
  assert.is(input.ResultConfiguration.OutputLocation, `s3://${BUCKET}/datasets/hourly/scheduled/`);
  assert.match(input.QueryString, /^WITH "telemetry" AS \(SELECT \* FROM "iotctl_lake_default__lake"\."telemetry" WHERE dt >= .*\(__received_at\) >= date_add\('second', -3660, current_timestamp\) AND \(__received_at\) < date_add\('second', -60, current_timestamp\)\)\nSELECT count\(\*\) AS n FROM telemetry$/);
  const resources = await analytics.list();
  assert.is(resources.find((r) => r.name === 'hourly' && r.kind === 'query')!.config.sql, input.QueryString);

  const s3 = await aws.get('s3');
  const lifecycle = await s3.client.send(new s3.sdk.GetBucketLifecycleConfigurationCommand({ Bucket: BUCKET }));
  assert.equal(
    lifecycle.Rules!.map((r) => [r.ID, r.Filter?.Prefix, r.Expiration?.Days]).sort(),
    [
      ['iotctl-channel-raw', 'raw/raw/', 30],
      ['iotctl-dataset-hourly', 'datasets/hourly/scheduled/', 1],
    ],
  );
  const again = await analytics.plan({});
  assert.equal(again.items.filter((i) => i.action !== 'noop'), []);
});

test('dataset run: Athena runs the named query; the content CSV is downloaded, counted and previewed', async () => {
  await queueResult(
    [
      ['device', 'varchar'],
      ['n', 'bigint'],
    ],
    [
      ['sensor-1', '3'],
      ['sensor-2', '5'],
      ['sensor-3', '1'],
    ],
  );
  const progress: string[] = [];
  const run = await analytics.runDataset('adhoc', { previewRows: 2, progress: (l) => progress.push(l) });
  assert.is(run.status, 'SUCCEEDED');
  assert.match(progress.at(-1)!, new RegExp(`^Athena query ${run.version}: SUCCEEDED \\(\\d+ s, 0 B scanned\\)$`));
  assert.is(new Set(progress).size, progress.length, 'a line per state, not per poll');
  assert.is(run.trigger, 'manual');
  assert.is(run.rows, 3);
  assert.equal(run.columns, [
    { name: 'device', type: 'varchar' },
    { name: 'n', type: 'bigint' },
  ]);
  assert.equal(run.preview, [
    ['sensor-1', 3],
    ['sensor-2', 5],
  ]);
  assert.equal(await objects('datasets/adhoc/'), [`datasets/adhoc/manual/${run.version}.csv`]);
  assert.equal(readFileSync(run.file!, 'utf8').trim().split('\n'), ['"device","n"', '"sensor-1","3"', '"sensor-2","5"', '"sensor-3","1"']);
});

test('versionsToKeep: older content is deleted after a run; versions and content follow', async () => {
  const ids: string[] = [];
  for (const n of ['10', '20', '30']) {
    await queueResult([['n', 'bigint']], [[n]]);
    ids.push((await analytics.runDataset('adhoc', {})).version);
    await new Promise((r) => setTimeout(r, 1100)); // S3 LastModified has second resolution
  }
  const kept = await objects('datasets/adhoc/manual/');
  assert.equal(kept, [`datasets/adhoc/manual/${ids[1]}.csv`, `datasets/adhoc/manual/${ids[2]}.csv`].sort());

  const versions = await analytics.datasetVersions('adhoc');
  assert.equal(
    versions.map((v) => [v.version, v.status, v.trigger]),
    [
      [ids[2], 'SUCCEEDED', 'manual'],
      [ids[1], 'SUCCEEDED', 'manual'],
    ],
  );
  const latest = await analytics.datasetContent('adhoc');
  assert.is(latest.version.version, ids[2]);
  assert.is(latest.version.rows, 1);
  assert.is(readFileSync(latest.file, 'utf8'), '"n"\n"30"\n');
  assert.is((await analytics.datasetContent('adhoc', ids[1])).version.version, ids[1]);
  assert.is((await analytics.datasetContent('adhoc', '$LATEST')).version.version, ids[2]);

  const pruned = await userError(analytics.datasetContent('adhoc', ids[0]));
  assert.is(pruned.code, 'NOT_FOUND');
  assert.match(pruned.message, new RegExp(`no version "${ids[0]}". Its content was deleted: the dataset keeps 2 version`));
  assert.ok(pruned.hint?.includes(ids[2]!));
});

test('a scheduled run (as EventBridge Scheduler starts it) is a version with trigger schedule and its delta window', async () => {
  const { client, sdk } = await aws.get('scheduler');
  const input = JSON.parse((await client.send(new sdk.GetScheduleCommand({ Name: 'iotctl-lake-default--hourly' }))).Target!.Input!);
  await queueResult([['n', 'bigint']], [['42']]);
  const athena = await aws.get('athena');
  const { QueryExecutionId } = await athena.client.send(new athena.sdk.StartQueryExecutionCommand(input));
  const versions = await analytics.datasetVersions('hourly');
  assert.is(versions.length, 1);
  const v = versions[0]!;
  assert.is(v.version, QueryExecutionId);
  assert.is(v.trigger, 'schedule');
  assert.is(v.windowEnd! - v.windowStart!, 3_600_000);
  assert.ok(Math.abs(v.windowEnd! - (v.createdAt - 60_000)) < 1000, 'the window ends offsetSeconds after the run');
  const content = await analytics.datasetContent('hourly');
  assert.is(content.version.rows, 1);
  assert.ok(existsSync(content.file));
});

test('analytics status shows each dataset\'s last run and kept versions', async () => {
  const status = await new AwsAnalytics(aws, spec, { contentDir: join(dir, 'content') }).status();
  const adhoc = status.datasets.find((d) => d.name === 'adhoc')!;
  const latest = (await analytics.datasetVersions('adhoc'))[0]!;
  assert.equal(adhoc.lastRun, { version: latest.version, status: 'SUCCEEDED', at: new Date(latest.createdAt).toISOString(), rows: null, error: null });
  assert.is(adhoc.versions, 2);
  const hourly = status.datasets.find((d) => d.name === 'hourly')!;
  assert.is(hourly.versions, 1);
  assert.ok(hourly.nextRun, 'a scheduled dataset has a next run');
});

test('bad input: an unknown dataset, a dataset not applied yet, content before any run', async () => {
  const unknown = await userError(analytics.runDataset('nope', {}));
  assert.is(unknown.code, 'NOT_FOUND');
  assert.match(unknown.hint!, /adhoc, hourly/);

  const later = specSchema.parse({ ...spec, analytics: { ...spec.analytics, datasets: [...spec.analytics.datasets, { name: 'later', sql: 'SELECT 1' }] } });
  const withLater = new AwsAnalytics(aws, later, { contentDir: join(dir, 'content') });
  const notApplied = await userError(withLater.runDataset('later', {}));
  assert.is(notApplied.code, 'NOT_FOUND');
  assert.match(notApplied.hint!, /analytics apply/);
  const empty = await userError(withLater.datasetContent('later'));
  assert.match(empty.message, /no content yet/);
  assert.match(empty.hint!, /dataset run later/);
});

test.run();
