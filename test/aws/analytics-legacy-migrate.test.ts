import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatPlan } from '../../src/iot/plan/index.js';
import { parseSpec } from '../../src/spec/loader.js';
import { migrateAnalytics } from '../../src/targets/aws/analytics/migrate.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { FakeIotAnalytics } from '../helpers/fake-iotanalytics.js';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';

// `analytics migrate` from a fake account with IoT Analytics resources built by hand (no iotctl tags) to a
// datalake section that parses and that planDatalake plans against moto (S3, IAM, Glue, Lambda, Firehose, ...).

let moto: Moto;
let restore: () => void;
let aws: AwsClients;
let fake: FakeIotAnalytics;

const SPEC = `# Plant telemetry platform (ops owns this file)
project: plant
target: aws # moved to AWS in 2024

analytics:
  engine: iotanalytics # legacy; see ADR-7
  channels:
    # every device message
    - name: raw
      retentionDays: 30
  datasets:
    - name: planned_report # not created on AWS yet
      sql: SELECT count(*) FROM telemetry
`;

test.before(async () => {
  moto = await startMoto();
  restore = useEnv(moto.env);
  aws = new AwsClients({ endpointUrl: moto.url });
  fake = new FakeIotAnalytics({
    // Content delivery writes into moto's S3, as IoT Analytics writes into the customer's bucket.
    deliver: async (bucket, key, body) => {
      const { client, sdk } = await aws.get('s3');
      await client.send(new sdk.PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    },
  }).install();
  // The account as its operators built it in the console.
  fake.seed('channel', 'raw', { retentionPeriod: { unlimited: false, numberOfDays: 30 } });
  fake.seed('channel', 'audit', { retentionPeriod: { unlimited: true } });
  fake.seed('datastore', 'telemetry', { retentionPeriod: { unlimited: true }, fileFormatConfiguration: { parquetConfiguration: {} } });
  fake.seed('datastore', 'auditlog', { retentionPeriod: { unlimited: false, numberOfDays: 365 }, fileFormatConfiguration: { jsonConfiguration: {} } });
  fake.seed('pipeline', 'main', {
    activities: [
      { channel: { name: 'in', channelName: 'raw', next: 'hot' } },
      { filter: { name: 'hot', filter: 'temp >= 0', next: 'f' } },
      { math: { name: 'f', attribute: 'tempF', math: 'temp * 1.8 + 32', next: 'who' } },
      { deviceRegistryEnrich: { name: 'who', attribute: 'registry', thingName: 'device', roleArn: 'arn:aws:iam::123456789012:role/enrich', next: 'out' } },
      { datastore: { name: 'out', datastoreName: 'telemetry' } },
    ],
  });
  fake.seed('pipeline', 'audit', { activities: [{ channel: { name: 'c', channelName: 'audit', next: 'd' } }, { datastore: { name: 'd', datastoreName: 'auditlog' } }] });
  fake.seed('dataset', 'daily', {
    actions: [{ actionName: 'q', queryAction: { sqlQuery: 'SELECT device, avg(tempF) FROM telemetry GROUP BY device', filters: [{ deltaTime: { offsetSeconds: -60, timeExpression: 'from_unixtime(__received_at / 1000)' } }] } }],
    triggers: [{ schedule: { expression: 'cron(0 2 * * ? *)' } }],
    versioningConfiguration: { maxVersions: 5 },
  });
  fake.seed('dataset', 'notebook', { actions: [{ actionName: 'c', containerAction: { image: 'x', executionRoleArn: 'arn:aws:iam::123456789012:role/c', resourceConfiguration: { computeType: 'ACU_1', volumeSizeInGB: 1 } } }] });
  // Another iotctl project's datastore in the same account is not this project's to migrate.
  fake.seed('datastore', 'other_project', { fileFormatConfiguration: { jsonConfiguration: {} } }, { 'iotctl:project': 'elsewhere' });
  fake.rows.set('telemetry', [
    { device: 'd1', temp: 20, __received_at: 1767225600000 },
    { device: 'd2', temp: 21.5, __received_at: 1767225601000 },
  ]);
  fake.rows.set('auditlog', [{ who: 'ops', what: 'login' }]);
});
test.after(async () => {
  fake.restore();
  aws.destroy();
  restore();
  await moto.stop();
});

const bucket = 'iotctl-plant-default--lake-123456789012-us-east-1';

test('dry run: a datalake section from the account, comments kept, that parses and plans creates; nothing changes on AWS', async () => {
  const before = fake.mutations().length;
  const result = await migrateAnalytics({ aws, specText: SPEC, spec: parseSpec(SPEC).spec, dryRun: true, export: true });
  assert.is(result.source, 'iotanalytics');
  assert.ok(result.changed);

  // Comments and untouched entries stay as they were.
  for (const kept of ['# Plant telemetry platform (ops owns this file)', 'target: aws # moved to AWS in 2024', '    # every device message', '    - name: planned_report # not created on AWS yet'])
    assert.ok(result.specText.includes(kept), `kept: ${kept}\n${result.specText}`);
  assert.match(result.specText, /engine: datalake # legacy; see ADR-7/);

  const { spec } = parseSpec(result.specText);
  const a = spec.analytics;
  assert.is(a.engine, 'datalake');
  assert.equal(a.channels, [{ name: 'raw', retentionDays: 30 }, { name: 'audit' }]);
  assert.equal(a.datastores, [{ name: 'telemetry', format: 'parquet' }, { name: 'auditlog', format: 'json', retentionDays: 365 }]);
  assert.equal(a.pipelines.find((p) => p.name === 'main'), {
    name: 'main',
    channel: 'raw',
    datastore: 'telemetry',
    activities: [{ filter: { filter: 'temp >= 0' } }, { math: { attribute: 'tempF', math: 'temp * 1.8 + 32' } }, { deviceRegistryEnrich: { attribute: 'registry', thingName: 'device' } }],
  });
  assert.equal(a.datasets.map((d) => d.name), ['planned_report', 'daily']);
  assert.equal(a.datasets[1], {
    name: 'daily',
    sql: 'SELECT device, avg(tempF) FROM telemetry GROUP BY device',
    schedule: 'cron(0 2 * * ? *)',
    deltaTime: { offsetSeconds: -60, timeExpression: 'from_unixtime(__received_at / 1000)' },
    versionsToKeep: 5,
  });
  assert.ok(result.warnings.some((w) => w.includes('dataset notebook')), 'the container dataset is reported, not migrated');
  assert.not.ok(result.specText.includes('other_project'));

  // planDatalake (against moto) plans every resource of the new engine as a create.
  assert.ok(result.plan.length > 0);
  assert.equal(result.plan.filter((i) => i.action !== 'create'), [], formatPlan(result.plan));
  const planned = result.plan.map((i) => `${i.kind} ${i.name}`);
  for (const want of ['bucket lake', 'stream ch-raw', 'stream pl-main', 'table telemetry', 'query daily', 'schedule daily'])
    assert.ok(planned.includes(want), `${want} in\n${planned.join('\n')}`);

  assert.is(fake.mutations().length, before, 'dry run: no call that changes IoT Analytics');
  const { client: s3, sdk: s } = await aws.get('s3');
  const buckets = await s3.send(new s.ListBucketsCommand({}));
  assert.equal(buckets.Buckets ?? [], [], 'dry run: no bucket');
  assert.equal(result.exports, []);
});

test('--export copies each datastore through a dataset with an S3 delivery rule; deletes nothing; prints the delete commands', async () => {
  const result = await migrateAnalytics({ aws, specText: SPEC, spec: parseSpec(SPEC).spec, export: true, poll: { delayMs: 1, maxDelayMs: 1 } });
  assert.equal(result.exports.map((e) => `${e.datastore} ${e.state}`), ['telemetry SUCCEEDED', 'auditlog SUCCEEDED']);

  const { client: s3, sdk: s } = await aws.get('s3');
  const key = `datastore/telemetry/migrated/${result.exports[0]!.versionId}.csv`;
  assert.is(result.exports[0]!.s3Uri, `s3://${bucket}/${key}`);
  const csv = await (await s3.send(new s.GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();
  assert.is(csv, 'device,temp,__received_at\nd1,20,1767225600000\nd2,21.5,1767225601000\n');
  const enc = await s3.send(new s.GetBucketEncryptionCommand({ Bucket: bucket }));
  assert.is(enc.ServerSideEncryptionConfiguration!.Rules![0]!.ApplyServerSideEncryptionByDefault!.SSEAlgorithm, 'AES256');

  // The export dataset delivers with a role that may write under the migrated prefixes only.
  const rule = fake.store.dataset.get('iotctl_export_telemetry')!.body.contentDeliveryRules[0].destination.s3DestinationConfiguration;
  assert.equal(rule, { bucket, key: 'datastore/telemetry/migrated/!{iotanalytics:versionId}.csv', roleArn: 'arn:aws:iam::123456789012:role/iotctl-iotanalytics/plant/iotctl-plant-iotanalytics-export' });
  const { client: iam, sdk: i } = await aws.get('iam');
  const policy = decodeURIComponent((await iam.send(new i.GetRolePolicyCommand({ RoleName: 'iotctl-plant-iotanalytics-export', PolicyName: 'iotctl' }))).PolicyDocument!);
  assert.ok(policy.includes(`arn:aws:s3:::${bucket}/datastore/*/migrated/*`));

  assert.equal(fake.calls.filter((c) => c.startsWith('Delete')), [], 'migrate never deletes');
  assert.equal([...fake.store.channel.keys()], ['raw', 'audit']);
  assert.ok(result.deleteCommands.includes('aws iotanalytics delete-channel --channel-name raw --region us-east-1'));
  assert.ok(result.deleteCommands.includes('aws iotanalytics delete-dataset --dataset-name iotctl_export_telemetry --region us-east-1'));
  const firstStore = result.deleteCommands.findIndex((c) => c.includes('delete-datastore'));
  assert.ok(result.deleteCommands.findIndex((c) => c.includes('delete-pipeline')) < firstStore, 'pipelines before the datastores they write');
  assert.not.ok(result.deleteCommands.some((c) => c.includes('other_project')));
  // The bucket now exists, so the plan no longer creates it; the rest is still to create.
  assert.equal(result.plan.find((i) => i.kind === 'bucket')!.action, 'noop');

  // Running it again reuses the export datasets (no AlreadyExists failure).
  const again = await migrateAnalytics({ aws, specText: result.specText, spec: parseSpec(result.specText).spec, export: true, poll: { delayMs: 1, maxDelayMs: 1 } });
  assert.equal(again.exports.map((e) => e.state), ['SUCCEEDED', 'SUCCEEDED']);
  assert.not.ok(again.changed, 'the section written the first time is already the datalake equivalent');
});

test('where IoT Analytics no longer answers, the section comes from iotctl.yaml and nothing is exported', async () => {
  fake.end('dns');
  try {
    const result = await migrateAnalytics({ aws, specText: SPEC, spec: parseSpec(SPEC).spec, export: true });
    assert.is(result.source, 'spec');
    assert.equal(result.exports, []);
    assert.equal(result.deleteCommands, []);
    assert.ok(result.warnings.some((w) => /AWS ended the service on 2025-12-15/.test(w)));
    assert.is(result.specText, SPEC.replace('engine: iotanalytics', 'engine: datalake'));
    const { spec } = parseSpec(result.specText);
    assert.equal(spec.analytics.channels, [{ name: 'raw', retentionDays: 30 }]);
  } finally {
    fake.revive();
  }
});

test('against moto, which has no IoT Analytics API (it answers an HTML error page), migrate falls back to iotctl.yaml', async () => {
  fake.restore();
  const restoreAttempts = useEnv({ AWS_MAX_ATTEMPTS: '1' }); // no retries of the 500 page
  const direct = new AwsClients({ endpointUrl: moto.url });
  try {
    const result = await migrateAnalytics({ aws: direct, specText: SPEC, spec: parseSpec(SPEC).spec, dryRun: true });
    assert.is(result.source, 'spec');
    assert.ok(result.warnings[0]!.includes('AWS IoT Analytics did not answer ListChannels in us-east-1'), result.warnings[0]);
    assert.is(parseSpec(result.specText).spec.analytics.engine, 'datalake');
  } finally {
    direct.destroy();
    restoreAttempts();
    fake.install();
  }
});

test.run();
