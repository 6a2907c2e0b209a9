import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatPlan, type PlanItem } from '../../src/iot/plan/index.js';
import { specSchema, type SpecInput } from '../../src/spec/schema.js';
import { applyDatalake, datalakeContext, planDatalake } from '../../src/targets/aws/analytics/datalake.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';

// The datalake engine against moto_server: apply, apply again (no-op), change a pipeline activity, prune.

let moto: Moto;
let restore: () => void;
let aws: AwsClients;

const analytics: NonNullable<SpecInput['analytics']> = {
  channels: [{ name: 'raw' }, { name: 'audit' }],
  datastores: [{ name: 'telemetry' }, { name: 'auditlog', format: 'json' }],
  pipelines: [
    {
      name: 'main',
      channel: 'raw',
      datastore: 'telemetry',
      activities: [{ filter: { filter: 'temp >= 0' } }, { math: { attribute: 'tempF', math: 'temp * 1.8 + 32' } }, { deviceRegistryEnrich: { attribute: 'registry', thingName: 'device' } }],
    },
    { name: 'audit', channel: 'audit', datastore: 'auditlog', activities: [] },
  ],
  datasets: [{ name: 'daily', sql: 'SELECT device, avg(tempF) FROM telemetry GROUP BY device', schedule: 'cron(0 2 * * ? *)' }],
};
/** The spec applied last (each test starts from where the previous one left the account). */
let current = analytics;
const specOf = (a: NonNullable<SpecInput['analytics']>) => specSchema.parse({ project: 'lake', target: 'aws', analytics: a });
const changed = (items: PlanItem[]) => items.filter((i) => i.action !== 'noop').map((i) => `${i.action} ${i.kind} ${i.name}`);

test.before(async () => {
  moto = await startMoto();
  restore = useEnv(moto.env);
  aws = new AwsClients({ endpointUrl: moto.url });
});
test.after(async () => {
  aws.destroy();
  restore();
  await moto.stop();
});

test('apply creates every resource; applying again plans no change', async () => {
  const spec = specOf(analytics);
  const ctx = await datalakeContext(aws, spec);
  const first = await planDatalake(aws, spec, { context: ctx });
  assert.equal(first.filter((i) => i.action !== 'create').length, 0, formatPlan(first));
  assert.equal(
    first.map((i) => `${i.kind} ${i.name}`),
    [
      'bucket lake',
      'database lake',
      'role ch-raw-firehose',
      'role ch-audit-firehose',
      'role transform-main-lambda',
      'role pl-main-firehose',
      'role transform-audit-lambda',
      'role pl-audit-firehose',
      'role daily-scheduler',
      'table telemetry',
      'table auditlog',
      'function transform-main',
      'function transform-audit',
      'stream ch-raw',
      'stream ch-audit',
      'stream pl-main',
      'stream pl-audit',
      'query daily',
      'schedule daily',
    ],
  );
  await applyDatalake(aws, spec, first, { context: ctx });
  const second = await planDatalake(aws, spec, { context: ctx, prune: true });
  assert.equal(changed(second), [], formatPlan(second));
  assert.equal(second.length, first.length);

  // What AWS holds, read back independently of the engine's reader.
  const { client: fh, sdk: f } = await aws.get('firehose');
  const main = (await fh.send(new f.DescribeDeliveryStreamCommand({ DeliveryStreamName: 'iotctl-lake-default--pl-main' }))).DeliveryStreamDescription!;
  const dest = main.Destinations![0]!.ExtendedS3DestinationDescription!;
  assert.equal(dest.Prefix, 'datastore/telemetry/dt=!{partitionKeyFromLambda:dt}/');
  assert.equal(dest.ProcessingConfiguration!.Processors![0]!.Type, 'Lambda');
  assert.equal(dest.ProcessingConfiguration!.Processors![0]!.Parameters!.find((p) => p.ParameterName === 'LambdaArn')!.ParameterValue, 'arn:aws:lambda:us-east-1:123456789012:function:iotctl-lake-default--transform-main');
  assert.equal(dest.DataFormatConversionConfiguration!.SchemaConfiguration!.TableName, 'telemetry');
  assert.ok(dest.DataFormatConversionConfiguration!.OutputFormatConfiguration!.Serializer!.ParquetSerDe);
  assert.equal(dest.DynamicPartitioningConfiguration!.Enabled, true);
  const raw = (await fh.send(new f.DescribeDeliveryStreamCommand({ DeliveryStreamName: 'iotctl-lake-default--ch-raw' }))).DeliveryStreamDescription!;
  assert.equal(raw.Destinations![0]!.ExtendedS3DestinationDescription!.Prefix, 'raw/raw/dt=!{timestamp:yyyy-MM-dd}/');
  assert.equal(raw.Destinations![0]!.ExtendedS3DestinationDescription!.DynamicPartitioningConfiguration?.Enabled ?? false, false, 'the raw stream partitions by the timestamp namespace alone');

  const { client: s3, sdk: s } = await aws.get('s3');
  const enc = await s3.send(new s.GetBucketEncryptionCommand({ Bucket: 'iotctl-lake-default--lake-123456789012-us-east-1' }));
  assert.equal(enc.ServerSideEncryptionConfiguration!.Rules![0]!.ApplyServerSideEncryptionByDefault!.SSEAlgorithm, 'AES256');
  const pab = await s3.send(new s.GetPublicAccessBlockCommand({ Bucket: 'iotctl-lake-default--lake-123456789012-us-east-1' }));
  assert.equal(pab.PublicAccessBlockConfiguration, { BlockPublicAcls: true, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: true });

  const { client: glue, sdk: g } = await aws.get('glue');
  const table = (await glue.send(new g.GetTableCommand({ DatabaseName: 'iotctl_lake_default__lake', Name: 'telemetry' }))).Table!;
  assert.equal(table.Parameters!['projection.enabled'], 'true');
  assert.equal(table.Parameters!['storage.location.template'], 's3://iotctl-lake-default--lake-123456789012-us-east-1/datastore/telemetry/dt=${dt}/');
  assert.equal(table.PartitionKeys, [{ Name: 'dt', Type: 'string' }]);

  const { client: lambda, sdk: l } = await aws.get('lambda');
  const fn = await lambda.send(new l.GetFunctionConfigurationCommand({ FunctionName: 'iotctl-lake-default--transform-main' }));
  assert.equal(JSON.parse(fn.Environment!.Variables!.PIPELINE_ACTIVITIES!), analytics.pipelines![0]!.activities);

  const { client: iam, sdk: i } = await aws.get('iam');
  const policy = JSON.parse(decodeURIComponent((await iam.send(new i.GetRolePolicyCommand({ RoleName: 'iotctl-lake-default--transform-main-lambda', PolicyName: 'iotctl' }))).PolicyDocument!));
  assert.ok(policy.Statement.some((st: { Action: string[] }) => st.Action.includes('iot:DescribeThing')), 'registry enrichment may describe things');
  const auditPolicy = JSON.parse(decodeURIComponent((await iam.send(new i.GetRolePolicyCommand({ RoleName: 'iotctl-lake-default--transform-audit-lambda', PolicyName: 'iotctl' }))).PolicyDocument!));
  assert.not.ok(JSON.stringify(auditPolicy).includes('iot:DescribeThing'), 'a pipeline without enrichment may not');

  const { client: sch, sdk: sc } = await aws.get('scheduler');
  const schedule = await sch.send(new sc.GetScheduleCommand({ Name: 'iotctl-lake-default--daily' }));
  assert.equal(schedule.ScheduleExpression, 'cron(0 2 * * ? *)');
  assert.equal(JSON.parse(schedule.Target!.Input!).QueryString, analytics.datasets![0]!.sql);
});

test('changing a pipeline activity updates its transform function only', async () => {
  const a = structuredClone(analytics);
  current = a;
  a.pipelines![0]!.activities![1] = { math: { attribute: 'tempF', math: 'temp * 9 / 5 + 32' } };
  const spec = specOf(a);
  const ctx = await datalakeContext(aws, spec);
  const plan = await planDatalake(aws, spec, { context: ctx });
  assert.equal(changed(plan), ['replace function transform-main']);
  assert.equal(plan.find((i) => i.action === 'replace')!.changes.map((c) => c.path), ['environment.PIPELINE_ACTIVITIES']);
  await applyDatalake(aws, spec, plan, { context: ctx });
  assert.equal(changed(await planDatalake(aws, spec, { context: ctx })), []);
  const { client: lambda, sdk: l } = await aws.get('lambda');
  const fn = await lambda.send(new l.GetFunctionConfigurationCommand({ FunctionName: 'iotctl-lake-default--transform-main' }));
  assert.equal(JSON.parse(fn.Environment!.Variables!.PIPELINE_ACTIVITIES!)[1], { math: { attribute: 'tempF', math: 'temp * 9 / 5 + 32' } });
});

test('prune deletes what the spec dropped, never the bucket or its data', async () => {
  const { client: s3, sdk: s } = await aws.get('s3');
  await s3.send(new s.PutObjectCommand({ Bucket: 'iotctl-lake-default--lake-123456789012-us-east-1', Key: 'datastore/auditlog/dt=2030-01-01/part-0.json.gz', Body: 'x' }));
  const a = structuredClone(current);
  a.pipelines = a.pipelines!.filter((p) => p.name !== 'audit');
  a.datastores = a.datastores!.filter((d) => d.name !== 'auditlog');
  a.channels = a.channels!.filter((c) => c.name !== 'audit');
  const spec = specOf(a);
  const ctx = await datalakeContext(aws, spec);
  const kept = await planDatalake(aws, spec, { context: ctx });
  assert.equal(changed(kept), [], 'without --prune nothing is deleted');
  const plan = await planDatalake(aws, spec, { context: ctx, prune: true });
  assert.equal(changed(plan).sort(), [
    'delete function transform-audit',
    'delete role ch-audit-firehose',
    'delete role pl-audit-firehose',
    'delete role transform-audit-lambda',
    'delete stream ch-audit',
    'delete stream pl-audit',
    'delete table auditlog',
  ]);
  assert.ok(plan.findIndex((i) => i.kind === 'stream' && i.action === 'delete') < plan.findIndex((i) => i.kind === 'role' && i.action === 'delete'), 'streams go before their roles');
  await applyDatalake(aws, spec, plan, { context: ctx });
  assert.equal(changed(await planDatalake(aws, spec, { context: ctx, prune: true })), []);
  const objects = await s3.send(new s.ListObjectsV2Command({ Bucket: 'iotctl-lake-default--lake-123456789012-us-east-1' }));
  assert.equal(objects.Contents!.map((o) => o.Key), ['datastore/auditlog/dt=2030-01-01/part-0.json.gz'], 'the data stays');

  // Dropping everything still keeps the bucket and the database.
  const empty = await planDatalake(aws, specOf({ channels: [], pipelines: [], datastores: [], datasets: [] }), { context: ctx, prune: true });
  assert.not.ok(empty.some((i) => i.kind === 'bucket' || i.kind === 'database'));
});

test.run();
