import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatPlan, type PlanItem } from '../../src/iot/plan/index.js';
import { defaultAthenaDatabase } from '../../src/spec/names.js';
import { specSchema, type SpecInput } from '../../src/spec/schema.js';
import { applyDatalake, datalakeContext, planDatalake, readDatalake, type DatalakeSpec } from '../../src/targets/aws/analytics/datalake.js';
import { datalakeStatus } from '../../src/targets/aws/analytics/status.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { FakeAthenaNamedQueries } from '../helpers/fake-athena-named-queries.js';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';

// The datalake engine's names per stage against one moto account: a deployment made before stage-scoped
// names is moved (its bucket and data kept), two stages and a second project whose name extends the first
// (`fleet-staging`) live side by side, foreign resources are never touched, and a 60-character project
// re-applies as a no-op (names shortened when created are read back by the same function).

let moto: Moto;
let restore: () => void;
let aws: AwsClients;
let fake: FakeAthenaNamedQueries;

const analytics: NonNullable<SpecInput['analytics']> = {
  channels: [{ name: 'raw' }],
  datastores: [{ name: 'telemetry', format: 'json' }],
  datasets: [{ name: 'daily', sql: 'SELECT count(*) AS n FROM telemetry', schedule: 'rate(1 day)' }],
};
const LONG = `fleet-${'x'.repeat(54)}`;
// athena.database as the loader defaults it (the project's name): where the deployment before stage-scoped names kept its tables.
const specOf = (project: string, stage?: string, a = analytics): DatalakeSpec => ({ ...specSchema.parse({ project, target: 'aws', analytics: a, athena: { database: defaultAthenaDatabase(project) } }), ...(stage ? { stage } : {}) });
const changed = (items: PlanItem[]) => items.filter((i) => i.action !== 'noop').map((i) => `${i.action} ${i.kind} ${i.name}${i.physical ? ` (${i.physical})` : ''}`);
async function converge(spec: DatalakeSpec, prune = false): Promise<PlanItem[]> {
  const context = await datalakeContext(aws, spec);
  const plan = await planDatalake(aws, spec, { context, prune });
  // Two phases, as `apply` runs them: creates and updates, then deletes.
  await applyDatalake(aws, spec, plan.filter((i) => i.action !== 'delete'), { context });
  await applyDatalake(aws, spec, plan.filter((i) => i.action === 'delete'), { context });
  const again = await planDatalake(aws, spec, { context, prune });
  assert.equal(changed(again), [], `applying ${spec.project}/${spec.stage ?? 'default'} again changes nothing:\n${formatPlan(again)}`);
  return plan;
}

const LEGACY_BUCKET = 'iotctl-fleet-123456789012-us-east-1';
const OLD_OWNER = [
  { Key: 'iotctl:managed', Value: 'true' },
  { Key: 'iotctl:project', Value: 'fleet' },
  { Key: 'iotctl:stage', Value: 'default' },
];

/** Project fleet's datalake as the names before stage-scoped names made it (default stage, shared database `fleet`). */
async function legacyDeployment(): Promise<void> {
  const s3 = await aws.get('s3');
  await s3.client.send(new s3.sdk.CreateBucketCommand({ Bucket: LEGACY_BUCKET }));
  await s3.client.send(new s3.sdk.PutBucketTaggingCommand({ Bucket: LEGACY_BUCKET, Tagging: { TagSet: OLD_OWNER } }));
  await s3.client.send(new s3.sdk.PutObjectCommand({ Bucket: LEGACY_BUCKET, Key: 'datastore/telemetry/dt=2030-01-01/part-0.json.gz', Body: 'old rows' }));
  await s3.client.send(new s3.sdk.PutObjectCommand({ Bucket: LEGACY_BUCKET, Key: 'raw/raw/dt=2030-01-01/iotctl-fleet-ch-raw-1.gz', Body: 'old raw' }));
  const glue = await aws.get('glue');
  await glue.client.send(new glue.sdk.CreateDatabaseCommand({ DatabaseInput: { Name: 'fleet' } }));
  await glue.client.send(
    new glue.sdk.CreateTableCommand({
      DatabaseName: 'fleet',
      TableInput: {
        Name: 'telemetry',
        TableType: 'EXTERNAL_TABLE',
        Parameters: { 'iotctl:project': 'fleet', 'iotctl:stage': 'default' },
        StorageDescriptor: { Location: `s3://${LEGACY_BUCKET}/datastore/telemetry/`, Columns: [{ Name: '__message_id', Type: 'string' }] },
      },
    }),
  );
  const iam = await aws.get('iam');
  const trust = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'firehose.amazonaws.com' }, Action: 'sts:AssumeRole' }] });
  await iam.client.send(new iam.sdk.CreateRoleCommand({ RoleName: 'iotctl-fleet-ch-raw-firehose', Path: '/iotctl/fleet/', AssumeRolePolicyDocument: trust, Tags: OLD_OWNER }));
  const firehose = await aws.get('firehose');
  await firehose.client.send(
    new firehose.sdk.CreateDeliveryStreamCommand({
      DeliveryStreamName: 'iotctl-fleet-ch-raw',
      ExtendedS3DestinationConfiguration: { RoleARN: 'arn:aws:iam::123456789012:role/iotctl/fleet/iotctl-fleet-ch-raw-firehose', BucketARN: `arn:aws:s3:::${LEGACY_BUCKET}`, Prefix: 'raw/raw/' },
      Tags: OLD_OWNER,
    }),
  );
  const athena = await aws.get('athena');
  await athena.client.send(new athena.sdk.CreateNamedQueryCommand({ Name: 'iotctl-fleet-daily', Database: 'fleet', QueryString: 'SELECT 1', Description: 'iotctl analytics dataset [iotctl:project=fleet stage=default]' }));
  const scheduler = await aws.get('scheduler');
  await scheduler.client.send(
    new scheduler.sdk.CreateScheduleCommand({
      Name: 'iotctl-fleet-daily',
      Description: 'iotctl analytics dataset schedule [iotctl:project=fleet stage=default]',
      ScheduleExpression: 'rate(1 day)',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: { Arn: 'arn:aws:scheduler:::aws-sdk:athena:startQueryExecution', RoleArn: 'arn:aws:iam::123456789012:role/iotctl/fleet/iotctl-fleet-daily-scheduler', Input: '{}' },
    }),
  );
}

/** Resources of the same kinds beside the projects that iotctl did not make (or that another part of iotctl owns). */
async function foreignResources(): Promise<void> {
  const iam = await aws.get('iam');
  const trust = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }] });
  // The functions section's role under the same stage path: not the datalake's.
  await iam.client.send(new iam.sdk.CreateRoleCommand({ RoleName: 'iotctl-fleet-dev--fn-ingest', Path: '/iotctl/fleet/dev/', AssumeRolePolicyDocument: trust, Tags: [{ Key: 'iotctl:project', Value: 'fleet' }, { Key: 'iotctl:stage', Value: 'dev' }] }));
  await iam.client.send(new iam.sdk.CreateRoleCommand({ RoleName: 'payments-firehose', Path: '/payments/', AssumeRolePolicyDocument: trust }));
  const firehose = await aws.get('firehose');
  await firehose.client.send(
    new firehose.sdk.CreateDeliveryStreamCommand({ DeliveryStreamName: 'payments-orders', ExtendedS3DestinationConfiguration: { RoleARN: 'arn:aws:iam::123456789012:role/payments/payments-firehose', BucketARN: 'arn:aws:s3:::payments' } }),
  );
  const athena = await aws.get('athena');
  await athena.client.send(new athena.sdk.CreateNamedQueryCommand({ Name: 'finance-report', Database: 'finance', QueryString: 'SELECT 2' }));
  const scheduler = await aws.get('scheduler');
  await scheduler.client.send(
    new scheduler.sdk.CreateScheduleCommand({
      Name: 'payments-nightly',
      ScheduleExpression: 'rate(1 day)',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: { Arn: 'arn:aws:scheduler:::aws-sdk:athena:startQueryExecution', RoleArn: 'arn:aws:iam::123456789012:role/payments/payments-firehose', Input: '{}' },
    }),
  );
}
const FOREIGN = ['iotctl-fleet-dev--fn-ingest', 'payments-firehose', 'payments-orders', 'finance-report', 'payments-nightly'];

async function streams(): Promise<string[]> {
  const { client, sdk } = await aws.get('firehose');
  return ((await client.send(new sdk.ListDeliveryStreamsCommand({ Limit: 100 }))).DeliveryStreamNames ?? []).sort();
}
async function schedules(): Promise<string[]> {
  const { client, sdk } = await aws.get('scheduler');
  return ((await client.send(new sdk.ListSchedulesCommand({}))).Schedules ?? []).map((s) => s.Name!).sort();
}

test.before(async () => {
  moto = await startMoto();
  restore = useEnv(moto.env);
  aws = new AwsClients({ endpointUrl: moto.url });
  fake = new FakeAthenaNamedQueries().install();
  await legacyDeployment();
  await foreignResources();
});
test.after(async () => {
  fake.restore();
  aws.destroy();
  restore();
  await moto.stop();
});

test('a deployment before stage-scoped names is moved: new names, old ones deleted after, the bucket and its data kept for the default stage', async () => {
  const spec = specOf('fleet');
  const context = await datalakeContext(aws, spec);
  assert.is(context.bucket, LEGACY_BUCKET, 'the default stage keeps the bucket that holds its data');
  const plan = await planDatalake(aws, spec, { context });
  const text = formatPlan(plan);
  assert.equal(changed(plan), [
    // Its settings and lifecycle rules converge; its name stays.
    `replace bucket lake (${LEGACY_BUCKET})`,
    'create database lake (iotctl_fleet_default__lake)',
    'replace role ch-raw-firehose (iotctl-fleet-default--ch-raw-firehose)',
    'create role daily-scheduler (iotctl-fleet-default--daily-scheduler)',
    'replace table telemetry (iotctl_fleet_default__lake.telemetry)',
    'replace stream ch-raw (iotctl-fleet-default--ch-raw)',
    'replace query daily (iotctl-fleet-default--daily)',
    'replace schedule daily (iotctl-fleet-default--daily)',
    'delete schedule daily (iotctl-fleet-daily)',
    'delete query daily (iotctl-fleet-daily)',
    'delete stream ch-raw (iotctl-fleet-ch-raw)',
    'delete table telemetry (fleet.telemetry)',
    'delete role ch-raw-firehose (iotctl-fleet-ch-raw-firehose)',
  ], text);
  assert.match(plan.find((i) => i.kind === 'bucket')!.note ?? '', /keeps the default stage's data in place/);
  assert.ok(plan.find((i) => i.kind === 'stream' && i.action === 'replace')!.changes.some((c) => c.path === 'physicalName' && c.before === 'iotctl-fleet-ch-raw'), text);

  await converge(spec);
  const glue = await aws.get('glue');
  const table = (await glue.client.send(new glue.sdk.GetTableCommand({ DatabaseName: 'iotctl_fleet_default__lake', Name: 'telemetry' }))).Table!;
  assert.is(table.StorageDescriptor!.Location, `s3://${LEGACY_BUCKET}/datastore/telemetry/`, "the stage's table reads the data where it is");
  assert.is(await glue.client.send(new glue.sdk.GetTableCommand({ DatabaseName: 'fleet', Name: 'telemetry' })).then(() => 'still there', () => 'gone'), 'gone');
  const s3 = await aws.get('s3');
  const body = await (await s3.client.send(new s3.sdk.GetObjectCommand({ Bucket: LEGACY_BUCKET, Key: 'datastore/telemetry/dt=2030-01-01/part-0.json.gz' }))).Body!.transformToString();
  assert.is(body, 'old rows');
  const buckets = ((await s3.client.send(new s3.sdk.ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name);
  assert.equal(buckets, [LEGACY_BUCKET], 'no second bucket for the default stage');
  assert.not.ok((await streams()).includes('iotctl-fleet-ch-raw'));
  assert.is(fake.byName('iotctl-fleet-daily'), undefined);
  assert.ok(fake.byName('iotctl-fleet-default--daily'));
  assert.equal(await schedules(), ['iotctl-fleet-default--daily', 'payments-nightly']);
});

test('two stages and a project named like a stage of the first live side by side; each sees only its own', async () => {
  const dev = specOf('fleet', 'dev');
  const other = specOf('fleet-staging');
  const devPlan = await converge(dev);
  assert.ok(devPlan.every((i) => i.action === 'create'), formatPlan(devPlan));
  assert.is((await datalakeContext(aws, dev)).bucket, 'iotctl-fleet-dev--lake-123456789012-us-east-1', 'another stage gets its own bucket');
  await converge(other);
  // The default stage re-plans as a no-op beside them.
  assert.equal(changed(await planDatalake(aws, specOf('fleet'), { prune: true })), []);

  assert.equal(await streams(), ['iotctl-fleet-default--ch-raw', 'iotctl-fleet-dev--ch-raw', 'iotctl-fleet-staging-default--ch-raw', 'payments-orders']);
  assert.equal(await schedules(), ['iotctl-fleet-default--daily', 'iotctl-fleet-dev--daily', 'iotctl-fleet-staging-default--daily', 'payments-nightly']);
  for (const [spec, scope] of [[specOf('fleet'), 'iotctl-fleet-default--'], [dev, 'iotctl-fleet-dev--'], [other, 'iotctl-fleet-staging-default--']] as const) {
    const seen = await readDatalake(aws, spec, await datalakeContext(aws, spec));
    const physical = seen.filter((r) => r.kind !== 'table' && r.kind !== 'database' && r.kind !== 'bucket').map((r) => r.physical ?? r.name);
    assert.equal(physical.filter((p) => !p.startsWith(scope)), [], `${spec.project}/${spec.stage ?? 'default'} lists only its own: ${physical.join(', ')}`);
    assert.equal(seen.map((r) => `${r.kind} ${r.name}`).sort(), ['bucket lake', 'database lake', 'query daily', 'role ch-raw-firehose', 'role daily-scheduler', 'schedule daily', 'stream ch-raw', 'table telemetry']);
  }
  // status reads the stage's bucket: the default stage's raw object is not dev's.
  const [mine, theirs] = await Promise.all([datalakeStatus(aws, specOf('fleet')), datalakeStatus(aws, dev)]);
  assert.is(mine.channels[0]!.segments, 1);
  assert.is(theirs.channels[0]!.segments, 0);
});

test("prune in one stage deletes only that stage's resources, never another stage's, project's or anyone's", async () => {
  const dev = specOf('fleet', 'dev', { ...analytics, datasets: [] });
  const plan = await converge(dev, true);
  assert.equal(changed(plan).sort(), [
    'delete query daily (iotctl-fleet-dev--daily)',
    'delete role daily-scheduler (iotctl-fleet-dev--daily-scheduler)',
    'delete schedule daily (iotctl-fleet-dev--daily)',
    // The dataset's lifecycle rule goes with it.
    'replace bucket lake (iotctl-fleet-dev--lake-123456789012-us-east-1)',
  ]);
  assert.equal(await schedules(), ['iotctl-fleet-default--daily', 'iotctl-fleet-staging-default--daily', 'payments-nightly']);
  assert.ok(fake.byName('iotctl-fleet-default--daily') && fake.byName('iotctl-fleet-staging-default--daily') && fake.byName('finance-report'));
  // Dropping the whole analytics section of project fleet's default stage still leaves fleet-staging's.
  const none = await planDatalake(aws, specOf('fleet', undefined, { channels: [], datastores: [], pipelines: [], datasets: [] }), { prune: true });
  const named = none.map((i) => i.physical ?? i.name);
  assert.equal(named.filter((n) => n.includes('staging') || n.includes('-dev--') || FOREIGN.includes(n)), [], formatPlan(none));
  const iam = await aws.get('iam');
  for (const role of ['iotctl-fleet-dev--fn-ingest', 'payments-firehose', 'iotctl-fleet-dev--ch-raw-firehose']) assert.ok(await iam.client.send(new iam.sdk.GetRoleCommand({ RoleName: role })), role);
  assert.ok((await streams()).includes('payments-orders'));
});

test("a resource under the stage's name that iotctl does not own is refused before any write", async () => {
  const firehose = await aws.get('firehose');
  await firehose.client.send(
    new firehose.sdk.CreateDeliveryStreamCommand({
      DeliveryStreamName: 'iotctl-fleet-prod--ch-raw',
      ExtendedS3DestinationConfiguration: { RoleARN: 'arn:aws:iam::123456789012:role/payments/payments-firehose', BucketARN: 'arn:aws:s3:::payments' },
      Tags: [{ Key: 'iotctl:project', Value: 'payments' }, { Key: 'iotctl:stage', Value: 'prod' }],
    }),
  );
  const refused = await planDatalake(aws, specOf('fleet', 'prod')).then(() => undefined, (e: unknown) => e as { code?: string; message: string });
  assert.is(refused?.code, 'RESOURCE_NOT_OURS', refused?.message);
  assert.match(refused!.message, /Firehose delivery stream iotctl-fleet-prod--ch-raw/);
});

test('a 60-character project: names shortened when created are read back by the same names, so applying again is a no-op', async () => {
  const spec = specOf(LONG);
  const plan = await converge(spec);
  const stream = plan.find((i) => i.kind === 'stream')!.physical!;
  assert.ok(stream.length <= 64 && /-[0-9a-f]{8}$/.test(stream), stream);
  const schedule = plan.find((i) => i.kind === 'schedule')!.physical!;
  assert.ok(schedule.length <= 64 && /-[0-9a-f]{8}$/.test(schedule), schedule);
  assert.ok(plan.every((i) => i.action === 'create'), formatPlan(plan));
  assert.equal(changed(await planDatalake(aws, spec, { prune: true })), []);
});

test.run();
