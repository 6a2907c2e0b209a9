// Plans computed in AWS's own shape, against moto_server: a rule that feeds a channel's delivery streams
// changes when a pipeline of the channel is added; a new starting position replaces the event source mapping
// (shown as such in the plan) and the plan settles; code changed outside iotctl reads back as changed; a datastore holding files cannot change its format, refused
// at plan time with how to fix it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';
import { formatPlan, planResources, type PlanItem } from '../../src/iot/plan/index.js';
import { parseSpec } from '../../src/spec/loader.js';
import { specSchema, type Spec, type SpecInput } from '../../src/spec/schema.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { AwsRules } from '../../src/targets/aws/rules.js';
import { AwsFunctions, zipArtifact } from '../../src/targets/aws/functions.js';
import { explicitNames, stageNames } from '../../src/targets/aws/naming.js';
import { ownerOf } from '../../src/targets/aws/ownership.js';
import { channelDeliveryStreams } from '../../src/targets/aws/analytics/model.js';
import { applyDatalake, datalakeContext, planDatalake } from '../../src/targets/aws/analytics/datalake.js';
import { applyRulePlan, planRules } from '../../src/services/rules.js';
import { functionConfig, withArtifact } from '../../src/services/functions.js';
import { LAMBDA_MAPPING_FIXED } from '../../src/services/apply.js';
import { assertApplicable } from '../../src/services/refusals.js';
import type { EventSourceSpec } from '../../src/spec/schema.js';
import type { FunctionDeployment } from '../../src/ports.js';

let moto: Moto;
let restore: () => void;
let aws: AwsClients;

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

const changed = (items: PlanItem[]) => items.filter((i) => i.action !== 'noop');

/** The rules adapter as index.ts builds it on the datalake engine. */
function rulesOf(spec: Spec): AwsRules {
  const names = stageNames({ project: spec.project, stage: 'default' }, explicitNames(spec));
  const declared = { rules: spec.rules.map((r) => r.name), streams: spec.streams.map((s) => s.name), functions: spec.functions.map((f) => f.name) };
  const datalake = { channels: spec.analytics.channels.map((c) => c.name), streams: (channel: string, scope: { accountId: string; region: string }) => channelDeliveryStreams(spec, channel, scope) };
  return new AwsRules(aws, { owner: ownerOf(spec.project, 'default'), names, declared, datalake });
}

test('a pipeline added to a channel changes the rule feeding it, which then feeds the new delivery stream', async () => {
  const yaml = (pipelines: string) => `project: shapes
analytics:
  channels: [{ name: raw }]
  datastores: [{ name: store }]
  pipelines:
${pipelines}
rules:
  - name: to_lake
    sql: "SELECT * FROM 'dt/#'"
    actions:
      - iotAnalytics: { channel: raw }
`;
  const one = parseSpec(yaml('    - { name: main, channel: raw, datastore: store }')).spec;
  const two = parseSpec(yaml('    - { name: main, channel: raw, datastore: store }\n    - { name: hot, channel: raw, datastore: store }')).spec;
  const physical = stageNames({ project: 'shapes', stage: 'default' }).rule;
  await applyRulePlan(rulesOf(one), await planRules(rulesOf(one), one, {}, physical));
  assert.equal(changed(await planRules(rulesOf(one), one, {}, physical)), [], 'applied: no change');

  const plan = await planRules(rulesOf(two), two, {}, physical);
  // The rule's managed role changes too (it may now write the new delivery stream); the rule itself is what this checks.
  const item = changed(plan).find((i) => i.kind === 'rule');
  assert.ok(item, `the new pipeline's delivery stream changes the rule:\n${formatPlan(plan)}`);
  assert.is(item!.action, 'replace');
  const hot = stageNames({ project: 'shapes', stage: 'default' }).stream('pl-hot');
  assert.equal(item!.changes.map((c) => c.path), ['target:actions[2]'], formatPlan(plan));
  assert.match(formatPlan(plan), hot);
  await applyRulePlan(rulesOf(two), plan);

  const { client, sdk } = await aws.get('iot');
  const rule = (await client.send(new sdk.GetTopicRuleCommand({ ruleName: physical('to_lake') }))).rule!;
  assert.equal(rule.actions!.map((a) => a.firehose?.deliveryStreamName), channelDeliveryStreams(two, 'raw', { accountId: '123456789012', region: 'us-east-1' }));
  assert.equal(changed(await planRules(rulesOf(two), two, {}, physical)), [], 'applied: no change');
  // Back to one pipeline: the stream is dropped from the rule.
  const back = await planRules(rulesOf(one), one, {}, physical);
  assert.equal(changed(back).filter((i) => i.kind === 'rule').map((i) => i.action), ['replace'], formatPlan(back));
  await applyRulePlan(rulesOf(one), back);
  assert.is((await client.send(new sdk.GetTopicRuleCommand({ ruleName: physical('to_lake') }))).rule!.actions!.length, 2);
  assert.equal(changed(await planRules(rulesOf(one), one, {}, physical)), []);
});

test('a new starting position replaces the event source mapping, the plan says so before applying, and it settles', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-shapes-'));
  try {
    const { client, sdk } = await aws.get('kinesis');
    const names = stageNames({ project: 'shapes', stage: 'default' });
    await client.send(new sdk.CreateStreamCommand({ StreamName: names.stream('telemetry'), ShardCount: 1 }));
    const fns = new AwsFunctions(aws, { project: 'shapes', pollMs: 5 });
    const eventSource = (startingPosition: EventSourceSpec['startingPosition']): EventSourceSpec => ({
      stream: 'telemetry',
      batchSize: 100,
      maximumBatchingWindowSeconds: 0,
      startingPosition,
      maximumRetryAttempts: 2,
      maximumRecordAgeInSeconds: -1,
      bisectBatchOnFunctionError: false,
      reportBatchItemFailures: false,
    });
    await withArtifact('query-rds', async (artifact) => {
      const deployment = (es: EventSourceSpec): FunctionDeployment => ({ name: 'ingest', template: 'query-rds', handler: 'handler', timeoutSeconds: 10, memoryMb: 128, environment: {}, eventSource: es, artifact });
      await fns.deploy(deployment(eventSource('TRIM_HORIZON')));
      const lambda = await aws.get('lambda');
      const mappings = async () => (await lambda.client.send(new lambda.sdk.ListEventSourceMappingsCommand({ FunctionName: names.function('ingest') }))).EventSourceMappings ?? [];
      const [before] = await mappings();
      assert.is(before!.StartingPosition, 'TRIM_HORIZON');

      // The plan apply makes: the listed function against the spec's, with the fields Lambda fixes marked.
      const listed = async () => (await fns.list({ desired: ['ingest'] })).map((f) => ({ kind: 'function', name: f.name, config: functionConfig(f) }));
      const desired = (es: EventSourceSpec) => [{ kind: 'function', name: 'ingest', config: functionConfig({ template: 'query-rds', sha256: artifact.sha256, handler: 'handler', timeoutSeconds: 10, memoryMb: 128, environment: {}, eventSource: es }), immutable: LAMBDA_MAPPING_FIXED }];
      assert.equal(changed(planResources(desired(eventSource('TRIM_HORIZON')), await listed())), []);
      const plan = planResources(desired(eventSource('LATEST')), await listed());
      const [change] = changed(plan).flatMap((i) => i.changes);
      assert.equal([change!.path, change!.before, change!.after], ['eventSource.startingPosition', 'TRIM_HORIZON', 'LATEST']);
      assert.match(change!.replaces ?? '', /event source mapping/);
      assert.match(formatPlan(plan), /cannot change in place: replaces the event source mapping/);

      assert.is(await fns.deploy(deployment(eventSource('LATEST'))), 'updated');
      const after = await mappings();
      assert.is(after.length, 1);
      assert.is(after[0]!.StartingPosition, 'LATEST', 'the new position is applied');
      assert.is.not(after[0]!.UUID, before!.UUID, 'by a new mapping');
      assert.equal(changed(planResources(desired(eventSource('LATEST')), await listed())), [], 'the plan settles');
      assert.is(await fns.deploy(deployment(eventSource('LATEST'))), 'unchanged');

      // Code changed outside iotctl (its bundle tag still names iotctl's bundle): read back as changed, redeployed.
      mkdirSync(join(dir, 'other'));
      writeFileSync(join(dir, 'other', 'index.js'), 'exports.handler = async () => "not iotctl";\n');
      await lambda.client.send(new lambda.sdk.UpdateFunctionCodeCommand({ FunctionName: names.function('ingest'), ZipFile: (await zipArtifact(join(dir, 'other'))).zip }));
      const drift = changed(planResources(desired(eventSource('LATEST')), await listed())).flatMap((i) => i.changes);
      assert.equal(drift.map((c) => c.path), ['sha256']);
      assert.match(String(drift[0]!.before), /code changed outside iotctl/);
      assert.is(await fns.deploy(deployment(eventSource('LATEST'))), 'updated');
      assert.equal(changed(planResources(desired(eventSource('LATEST')), await listed())), []);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a datastore that holds files cannot change its format: refused at plan time, with how to fix it', async () => {
  const analytics = (format: 'parquet' | 'json'): NonNullable<SpecInput['analytics']> => ({
    channels: [{ name: 'raw' }],
    datastores: [{ name: 'store', format }],
    pipelines: [{ name: 'main', channel: 'raw', datastore: 'store', activities: [] }],
    datasets: [],
  });
  const specOf = (format: 'parquet' | 'json') => specSchema.parse({ project: 'formats', target: 'aws', analytics: analytics(format) });
  const ctx = await datalakeContext(aws, specOf('parquet'));
  await applyDatalake(aws, specOf('parquet'), await planDatalake(aws, specOf('parquet'), { context: ctx }), { context: ctx });

  // The transform's code changed outside iotctl: its bundle hash alone would hide it; it reads back as changed.
  const fn = changed(await planDatalake(aws, specOf('parquet'), { context: ctx }));
  assert.equal(fn, [], formatPlan(fn));
  const transform = stageNames({ project: 'formats', stage: 'default' }).function('transform-main');
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-shapes-'));
  writeFileSync(join(dir, 'index.js'), 'exports.handler = async () => ({ records: [] });\n');
  const lambda = await aws.get('lambda');
  await lambda.client.send(new lambda.sdk.UpdateFunctionCodeCommand({ FunctionName: transform, ZipFile: (await zipArtifact(dir)).zip }));
  rmSync(dir, { recursive: true, force: true });
  const drift = changed(await planDatalake(aws, specOf('parquet'), { context: ctx }));
  assert.equal(drift.map((i) => [i.kind, i.changes.map((c) => c.path)]), [['function', ['environment.IOTCTL_BUNDLE_SHA256']]], formatPlan(drift));
  await applyDatalake(aws, specOf('parquet'), drift, { context: ctx });
  assert.equal(changed(await planDatalake(aws, specOf('parquet'), { context: ctx })), []);

  // Empty: the format may change (the table and the delivery stream are updated in place).
  const empty = await planDatalake(aws, specOf('json'), { context: ctx });
  assert.ok(changed(empty).some((i) => i.kind === 'table' && i.changes.some((c) => c.path === 'format')), formatPlan(empty));
  assert.not.ok(empty.some((i) => i.refused), formatPlan(empty));

  const { client, sdk } = await aws.get('s3');
  await client.send(new sdk.PutObjectCommand({ Bucket: ctx.bucket!, Key: 'datastore/store/dt=2030-01-01/part-0.parquet', Body: 'PAR1' }));
  const plan = await planDatalake(aws, specOf('json'), { context: ctx });
  const table = plan.find((i) => i.kind === 'table')!;
  assert.ok(table.refused?.length, formatPlan(plan));
  assert.match(formatPlan(plan), /! cannot apply: datastore store holds parquet files/);
  try {
    assertApplicable(plan);
    assert.unreachable('refused');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'PLAN_REFUSED');
    assert.match((e as { hint?: string }).hint ?? '', /Keep format: parquet/);
  }
  assert.not.throws(() => assertApplicable(empty));
});

test.run();
