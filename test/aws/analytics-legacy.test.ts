import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatPlan, type PlanItem } from '../../src/iot/plan/index.js';
import { specSchema, type SpecInput } from '../../src/spec/schema.js';
import { AwsAnalytics } from '../../src/targets/aws/analytics/index.js';
import { pipelineActivities, pipelineFromActivities } from '../../src/targets/aws/analytics/iotanalytics-model.js';
import {
  applyIotAnalytics,
  iotAnalyticsDatasetContent,
  MIGRATE_COMMAND,
  planIotAnalytics,
  runIotAnalyticsDataset,
} from '../../src/targets/aws/analytics/iotanalytics.js';
import { AwsCallError, AwsClients } from '../../src/targets/aws/sdk.js';
import { UserError } from '../../src/ui/errors.js';
import { FakeIotAnalytics } from '../helpers/fake-iotanalytics.js';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';

// The legacy iotanalytics engine on a stateful fake of IoT Analytics (moto has none); IAM and STS (the
// enrichment role, the account id) are moto's.

let moto: Moto;
let restore: () => void;
let aws: AwsClients;
let fake: FakeIotAnalytics;
let stderr: string[] = [];
const realWrite = process.stderr.write.bind(process.stderr);

const analytics: NonNullable<SpecInput['analytics']> = {
  engine: 'iotanalytics',
  channels: [{ name: 'raw', retentionDays: 30 }, { name: 'audit' }],
  // Three datastores: more than one List page (the fake's pages hold two).
  datastores: [{ name: 'telemetry' }, { name: 'auditlog', format: 'json' }, { name: 'scratch', retentionDays: 7 }],
  pipelines: [
    {
      name: 'main',
      channel: 'raw',
      datastore: 'telemetry',
      activities: [{ filter: { filter: 'temp >= 0' } }, { math: { attribute: 'tempF', math: 'temp * 1.8 + 32' } }, { deviceRegistryEnrich: { attribute: 'registry', thingName: 'device' } }],
    },
    { name: 'audit', channel: 'audit', datastore: 'auditlog', activities: [] },
  ],
  datasets: [
    { name: 'daily', sql: 'SELECT device, avg(tempF) FROM telemetry GROUP BY device', schedule: 'cron(0 2 * * ? *)', deltaTime: { offsetSeconds: -60, timeExpression: 'from_unixtime(__received_at / 1000)' }, versionsToKeep: 7 },
    { name: 'everything', sql: 'SELECT * FROM telemetry' },
  ],
};
const specOf = (a: NonNullable<SpecInput['analytics']>) => specSchema.parse({ project: 'legacy', target: 'aws', analytics: a });
const changed = (items: PlanItem[]) => items.filter((i) => i.action !== 'noop').map((i) => `${i.action} ${i.kind} ${i.name}`);

test.before(async () => {
  moto = await startMoto();
  restore = useEnv(moto.env);
  aws = new AwsClients({ endpointUrl: moto.url });
  fake = new FakeIotAnalytics().install();
  // Capture stderr (the end-of-life warning) while still showing it.
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    stderr.push(String(chunk));
    return realWrite(chunk as never, ...(rest as []));
  }) as typeof process.stderr.write;
});
test.after(async () => {
  process.stderr.write = realWrite;
  fake.restore();
  aws.destroy();
  restore();
  await moto.stop();
});

test('activities map to a channel-first, datastore-last chain and back', () => {
  const p = specOf(analytics).analytics.pipelines[0]!;
  const chain = pipelineActivities(p, 'arn:aws:iam::123456789012:role/x');
  assert.equal(
    chain.map((a) => Object.keys(a)[0]),
    ['channel', 'filter', 'math', 'deviceRegistryEnrich', 'datastore'],
  );
  assert.equal(chain[0], { channel: { name: 'channel', channelName: 'raw', next: 'filter_1' } });
  assert.equal(chain[3]!.deviceRegistryEnrich, { name: 'deviceRegistryEnrich_3', attribute: 'registry', thingName: 'device', roleArn: 'arn:aws:iam::123456789012:role/x', next: 'datastore' });
  assert.equal(chain[4], { datastore: { name: 'datastore', datastoreName: 'telemetry' } });
  // Read back in a shuffled order, the chain still gives the spec's pipeline.
  const { pipeline, warnings } = pipelineFromActivities('main', [chain[2]!, chain[4]!, chain[0]!, chain[3]!, chain[1]!]);
  assert.equal(pipeline, p);
  assert.equal(warnings, []);
});

test('apply creates every resource (warning once that the service ended); applying again is a no-op', async () => {
  stderr = [];
  const spec = specOf(analytics);
  const first = await planIotAnalytics(aws, spec);
  assert.equal(first.filter((i) => i.action !== 'create').length, 0, formatPlan(first));
  assert.equal(
    first.map((i) => `${i.kind} ${i.name}`),
    [
      'role iotctl-legacy-iotanalytics-enrich',
      'channel raw',
      'channel audit',
      'datastore telemetry',
      'datastore auditlog',
      'datastore scratch',
      'pipeline main',
      'pipeline audit',
      'dataset daily',
      'dataset everything',
    ],
  );
  await applyIotAnalytics(aws, spec, first);

  const warnings = stderr.join('').match(/AWS ended IoT Analytics on 2025-12-15/g) ?? [];
  assert.equal(warnings.length, 1, `one end-of-life warning per process, got: ${stderr.join('')}`);

  // What the fake now holds, as IoT Analytics would describe it.
  const main = fake.store.pipeline.get('main')!;
  assert.equal(main.tags, { 'iotctl:project': 'legacy', 'iotctl:stage': 'default' });
  assert.equal(main.body.activities[3].deviceRegistryEnrich.roleArn, 'arn:aws:iam::123456789012:role/iotctl-iotanalytics/legacy/iotctl-legacy-iotanalytics-enrich');
  assert.equal(fake.store.channel.get('raw')!.body.retentionPeriod, { unlimited: false, numberOfDays: 30 });
  assert.equal(fake.store.channel.get('audit')!.body.retentionPeriod, { unlimited: true });
  assert.equal(fake.store.datastore.get('auditlog')!.body.fileFormatConfiguration, { jsonConfiguration: {} });
  assert.equal(fake.store.datastore.get('telemetry')!.body.fileFormatConfiguration, { parquetConfiguration: {} });
  const daily = fake.store.dataset.get('daily')!.body;
  assert.equal(daily.actions, [{ actionName: 'query', queryAction: { sqlQuery: analytics.datasets![0]!.sql, filters: [{ deltaTime: { offsetSeconds: -60, timeExpression: 'from_unixtime(__received_at / 1000)' } }] } }]);
  assert.equal(daily.triggers, [{ schedule: { expression: 'cron(0 2 * * ? *)' } }]);
  assert.equal(daily.versioningConfiguration, { maxVersions: 7 });
  assert.equal(daily.retentionPeriod, { unlimited: true });

  // The enrichment role is real IAM (moto): trusted by IoT Analytics, allowed to read things only.
  const { client: iam, sdk: i } = await aws.get('iam');
  const role = await iam.send(new i.GetRoleCommand({ RoleName: 'iotctl-legacy-iotanalytics-enrich' }));
  assert.ok(decodeURIComponent(role.Role!.AssumeRolePolicyDocument!).includes('iotanalytics.amazonaws.com'));

  const before = fake.mutations().length;
  const second = await planIotAnalytics(aws, spec, { prune: true });
  assert.equal(changed(second), [], formatPlan(second));
  assert.equal(second.length, first.length);
  await applyIotAnalytics(aws, spec, second);
  assert.equal(fake.mutations().length, before, 'an unchanged plan makes no call that changes anything');
});

test('changing a pipeline activity replaces that pipeline only, in place', async () => {
  const a = structuredClone(analytics);
  a.pipelines![0]!.activities![1] = { math: { attribute: 'tempF', math: 'temp * 9 / 5 + 32' } };
  const spec = specOf(a);
  const plan = await planIotAnalytics(aws, spec);
  assert.equal(changed(plan), ['replace pipeline main']);
  assert.equal(plan.find((i) => i.action === 'replace')!.changes, [{ path: 'activities[2].math.math', before: 'temp * 1.8 + 32', after: 'temp * 9 / 5 + 32' }]);
  const created = fake.store.pipeline.get('main')!.creationTime;
  await applyIotAnalytics(aws, spec, plan);
  assert.equal(fake.store.pipeline.get('main')!.body.activities[2].math.math, 'temp * 9 / 5 + 32');
  assert.is(fake.store.pipeline.get('main')!.creationTime, created, 'UpdatePipeline, not delete and create');
  assert.equal(changed(await planIotAnalytics(aws, spec)), []);
  Object.assign(analytics, a);
});

test('a datastore cannot change format in place: refused at plan time, and apply refuses before changing anything', async () => {
  const a = structuredClone(analytics);
  a.datastores![1] = { name: 'auditlog', format: 'parquet' };
  a.channels![0] = { name: 'raw', retentionDays: 90 };
  const spec = specOf(a);
  const plan = await planIotAnalytics(aws, spec);
  assert.equal(changed(plan), ['replace channel raw', 'replace datastore auditlog']);
  // Refused in the plan already, so apply refuses before asking (assertApplicable).
  assert.match(plan.find((i) => i.kind === 'datastore' && i.name === 'auditlog')!.refused?.[0]?.reason ?? '', /cannot change datastore auditlog's file format/);
  assert.match(formatPlan(plan), /! cannot apply/);
  const before = fake.mutations().length;
  const err = await applyIotAnalytics(aws, spec, plan).catch((e) => e);
  assert.instance(err, UserError);
  assert.match(err.message, /auditlog cannot change its file format/);
  assert.equal(fake.mutations().length, before);
});

test('prune deletes what the spec dropped; channels and datastores (their data) only with deleteData; never what iotctl did not make', async () => {
  fake.seed('datastore', 'someone_elses', { fileFormatConfiguration: { jsonConfiguration: {} } });
  // The same project's other stage: never the default stage's to prune.
  fake.seed('datastore', 'staging_store', { fileFormatConfiguration: { jsonConfiguration: {} } }, { 'iotctl:project': 'legacy', 'iotctl:stage': 'staging' });
  const a = structuredClone(analytics);
  a.pipelines = a.pipelines!.filter((p) => p.name !== 'audit');
  a.datastores = a.datastores!.filter((d) => d.name !== 'auditlog');
  a.channels = a.channels!.filter((c) => c.name !== 'audit');
  a.datasets = a.datasets!.filter((d) => d.name !== 'everything');
  const spec = specOf(a);
  assert.equal(changed(await planIotAnalytics(aws, spec)), [], 'without prune nothing is deleted');
  const plan = await planIotAnalytics(aws, spec, { prune: true });
  assert.equal(changed(plan), ['delete dataset everything', 'delete pipeline audit']);
  const withData = await planIotAnalytics(aws, spec, { prune: true, deleteData: true });
  assert.equal(changed(withData), ['delete dataset everything', 'delete pipeline audit', 'delete datastore auditlog', 'delete channel audit']);
  await applyIotAnalytics(aws, spec, withData);
  assert.equal([...fake.store.datastore.keys()].sort(), ['scratch', 'someone_elses', 'staging_store', 'telemetry']);
  assert.equal([...fake.store.pipeline.keys()], ['main']);
  assert.equal(changed(await planIotAnalytics(aws, spec, { prune: true, deleteData: true })), []);
});

test('dataset run polls with backoff until SUCCEEDED; content gives the dataURI', async () => {
  fake.rows.set('telemetry', [{ device: 'd1', temp: 20 }]);
  const sleeps: number[] = [];
  const run = await runIotAnalyticsDataset(aws, 'daily', { delayMs: 100, maxDelayMs: 300, sleep: async (ms) => void sleeps.push(ms) });
  assert.is(run.state, 'SUCCEEDED');
  assert.is(run.polls, 3, 'the fake settles on the third poll');
  // Doubling from delayMs, each with ±25 % jitter (retry.ts).
  assert.is(sleeps.length, 2);
  sleeps.forEach((ms, i) => assert.ok(ms >= 75 * 2 ** i && ms <= 125 * 2 ** i, `sleep ${i}: ${ms}`));
  assert.match(run.entries[0]!.dataURI!, new RegExp(`results/${run.versionId}\\.csv`));

  const content = await iotAnalyticsDatasetContent(aws, 'daily');
  assert.is(content.state, 'SUCCEEDED');
  assert.equal(content.entries.map((e) => e.dataURI), [run.entries[0]!.dataURI]);
  const byVersion = await iotAnalyticsDatasetContent(aws, 'daily', run.versionId);
  assert.equal(byVersion.entries, content.entries);
});

test('dataset run and content through the port: the CSV is downloaded from its pre-signed URL, counted and previewed', async () => {
  const server = createServer((req, res) => {
    const csv = fake.csv(/results\/([^/.]+)\.csv/.exec(req.url ?? '')?.[1] ?? '');
    res.writeHead(csv === undefined ? 403 : 200, { 'content-type': 'text/csv' }).end(csv ?? '<Error><Code>AccessDenied</Code></Error>');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.opts.dataUri = (id) => `${base}/results/${id}.csv?X-Amz-Signature=fake`;
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-legacy-content-'));
  try {
    fake.rows.set('telemetry', [
      { device: 'd1', temp: 20, note: 'a, "quoted" note' },
      { device: 'd2', temp: 21 },
    ]);
    fake.seed('dataset', 'dump', { actions: [{ actionName: 'query', queryAction: { sqlQuery: 'SELECT * FROM telemetry' } }] });
    const port = new AwsAnalytics(aws, specOf(analytics), { contentDir: dir });
    const run = await port.runDataset('dump', { previewRows: 1 });
    assert.is(run.status, 'SUCCEEDED');
    assert.is(run.rows, 2);
    assert.equal(run.columns.map((c) => c.name), ['device', 'temp', 'note']);
    assert.equal(run.preview, [['d1', '20', 'a, "quoted" note']]);
    assert.is(readFileSync(run.file!, 'utf8'), fake.csv(run.version));

    const versions = await port.datasetVersions('dump');
    assert.is(versions[0]!.version, run.version);
    const content = await port.datasetContent('dump');
    assert.is(content.version.version, run.version);
    assert.is(content.version.rows, 2);

    fake.opts.dataUri = (id) => `${base}/expired/${id}.csv`;
    const expired = await port.datasetContent('dump').catch((e) => e);
    assert.instance(expired, UserError);
    assert.match(expired.message, /HTTP 403/);
    assert.match(expired.hint, /expired/);
  } finally {
    fake.opts.dataUri = undefined;
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('dataset run: a failing query ends FAILED with its reason; a slow one stops at the deadline; no content is a clear error', async () => {
  fake.seed('dataset', 'broken', { actions: [{ actionName: 'query', queryAction: { sqlQuery: 'SELECT * FROM nowhere' } }] });
  const failed = await runIotAnalyticsDataset(aws, 'broken', { sleep: async () => undefined });
  assert.is(failed.state, 'FAILED');
  assert.match(failed.reason!, /nowhere/);

  const slow = await runIotAnalyticsDataset(aws, 'daily', { timeoutMs: 0, sleep: async () => undefined }).catch((e) => e);
  assert.instance(slow, UserError);
  assert.match(slow.hint, /dataset content daily --version /);

  fake.seed('dataset', 'never_run', { actions: [{ actionName: 'query', queryAction: { sqlQuery: 'SELECT 1' } }] });
  const none = await iotAnalyticsDatasetContent(aws, 'never_run').catch((e) => e);
  assert.instance(none, UserError);
  assert.is(none.hint, 'Run it first: iotctl analytics dataset run never_run');
});

test('reprocess starts StartPipelineReprocessing over the window and returns its id; unknown pipelines are NOT_FOUND', async () => {
  const target = new AwsAnalytics(aws, specOf(analytics), { contentDir: join(tmpdir(), 'iotctl-legacy-unused') });
  const progress: string[] = [];
  const from = Date.parse('2030-03-17T00:00:00Z');
  const to = Date.parse('2030-03-18T00:00:00Z');
  const started = await target.reprocess('main', { from, to, timeoutSeconds: 60, progress: (l) => progress.push(l) });
  const requests = fake.reprocessing.get('main')!;
  assert.equal(started, { id: requests[0]!.id, pipeline: 'main', status: 'RUNNING' });
  assert.equal([requests[0]!.startTime?.getTime(), requests[0]!.endTime?.getTime()], [from, to]);
  assert.match(progress[0]!, /appends its output/);

  const notInSpec = await target.reprocess('nope', { timeoutSeconds: 60 }).catch((e) => e);
  assert.instance(notInSpec, UserError);
  assert.equal([notInSpec.code, notInSpec.hint], ['NOT_FOUND', 'Pipelines: main, audit']);
  // In the spec, but pruned from IoT Analytics by the test above.
  const notOnAws = await target.reprocess('audit', { timeoutSeconds: 60 }).catch((e) => e);
  assert.instance(notOnAws, UserError);
  assert.equal([notOnAws.code, notOnAws.message], ['NOT_FOUND', 'Pipeline audit does not exist on IoT Analytics.']);
});

test('an ended service (refused, unknown operation, or no endpoint) points to analytics migrate; a plain AccessDenied does not', async () => {
  const spec = specOf(analytics);
  for (const how of [
    { code: 'AccessDeniedException', message: 'AWS IoT Analytics is no longer available. The service reached end of support on December 15, 2025.' },
    { code: 'UnknownOperationException', message: '' },
    'dns' as const,
  ]) {
    fake.end(how);
    const err = await planIotAnalytics(aws, spec).catch((e) => e);
    assert.instance(err, UserError, String(err));
    assert.is(err.code, 'IOTANALYTICS_ENDED', `${JSON.stringify(how)}: ${err.message}`);
    assert.match(err.message, /AWS ended the service on 2025-12-15/);
    assert.ok(err.hint.includes(MIGRATE_COMMAND));
  }
  fake.end({ code: 'AccessDeniedException', message: 'User: arn:aws:iam::123456789012:user/ci is not authorized to perform: iotanalytics:ListChannels' });
  const denied = await planIotAnalytics(aws, spec).catch((e) => e);
  assert.instance(denied, AwsCallError);
  assert.is(denied.awsCode, 'AccessDeniedException');
  assert.match(denied.hint, /Grant iotanalytics:ListChannels/);
  fake.revive();
});

test.run();
