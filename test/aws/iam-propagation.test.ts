/**
 * IAM is eventually consistent: for seconds after CreateRole / PutRolePolicy the consuming service refuses the
 * role with its own error. Through the realism proxy (aws-realism.ts: a role younger than iamPropagationSeconds
 * cannot be assumed, answered as each service answers) every create-then-use of a role must be retried on that
 * error, bounded, and nothing else. One moto for the file; each test switches the fault on for its operations.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { AwsFunctions } from '../../src/targets/aws/functions.js';
import { AwsRules } from '../../src/targets/aws/rules.js';
import { applyDatalake, datalakeContext, planDatalake, transformArtifact } from '../../src/targets/aws/analytics/datalake.js';
import { checkNames, AwsScheduledCheck } from '../../src/targets/aws/check-schedule.js';
import { AwsDatabaseOps } from '../../src/targets/aws/database-ops.js';
import { databaseOpsLogical, databaseOpsNames, stageNames } from '../../src/targets/aws/naming.js';
import type { PlanItem } from '../../src/iot/plan/index.js';
import { ownerOf } from '../../src/targets/aws/ownership.js';
import { specSchema, type RuleSpec } from '../../src/spec/schema.js';
import type { FunctionDeployment } from '../../src/ports.js';

const PROPAGATION_S = 0.8;
const ACCOUNT = '123456789012';
let moto: Moto;
let restore: () => void;
let aws: AwsClients;
let dir: string;

/** The fault on for these operations only; the calls the proxy refused for it, from here on. */
function propagation(ops: string[]): () => string[] {
  const from = moto.realism!.calls().length;
  moto.realism!.set({ iamPropagationSeconds: PROPAGATION_S, iamPropagationOps: ops, creating: {} });
  return () => moto.realism!.calls().slice(from).filter((c) => c.injected === 'iam-propagation').map((c) => c.key);
}

test.before(async () => {
  moto = await startMoto({ realism: { latencyMs: 0 } });
  restore = useEnv({ ...moto.env, IOTCTL_AWS_WAIT_SECONDS: '30' });
  aws = new AwsClients({});
  dir = mkdtempSync(join(tmpdir(), 'iotctl-iam-propagation-'));
  writeFileSync(join(dir, 'index.js'), 'exports.handler = async () => 1;\n');
});
test.after(async () => {
  aws?.destroy();
  restore?.();
  await moto?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('functions: CreateEventSourceMapping and UpdateEventSourceMapping right after the role policy is put are retried until the role has propagated', async () => {
  const names = stageNames({ project: 'prop', stage: 'default' });
  const kinesis = await aws.get('kinesis');
  await kinesis.client.send(new kinesis.sdk.CreateStreamCommand({ StreamName: names.stream('telemetry'), ShardCount: 1 }));
  const fns = new AwsFunctions(aws, { project: 'prop', pollMs: 50 });
  const deployment = (over: Partial<FunctionDeployment['eventSource']> = {}): FunctionDeployment => ({
    name: 'ingest',
    template: 'ingest-rds',
    handler: 'handler',
    timeoutSeconds: 30,
    memoryMb: 128,
    environment: {},
    eventSource: { stream: 'telemetry', batchSize: 100, maximumBatchingWindowSeconds: 1, startingPosition: 'LATEST', maximumRetryAttempts: 3, maximumRecordAgeInSeconds: 3600, bisectBatchOnFunctionError: false, reportBatchItemFailures: false, ...over },
    artifact: { dir, entry: 'index.js', sha256: 'a'.repeat(64), bytes: 30 },
  });
  const refused = propagation(['lambda:CreateEventSourceMapping', 'lambda:UpdateEventSourceMapping']);
  assert.is(await fns.deploy(deployment()), 'created');
  assert.ok(refused().includes('lambda:CreateEventSourceMapping'), `refused first: ${refused()}`);

  // A failure destination changes the role's policy (PutRolePolicy) and the mapping: the update is refused for a while too.
  const sqs = await aws.get('sqs');
  await sqs.client.send(new sqs.sdk.CreateQueueCommand({ QueueName: 'prop-failures' }));
  const again = propagation(['lambda:CreateEventSourceMapping', 'lambda:UpdateEventSourceMapping']);
  assert.is(await fns.deploy(deployment({ onFailure: `arn:aws:sqs:us-east-1:${ACCOUNT}:prop-failures` })), 'updated');
  assert.ok(again().includes('lambda:UpdateEventSourceMapping'), `refused first: ${again()}`);
  const [mapping] = await fns.mappings('ingest');
  assert.ok(mapping, 'the mapping exists');
});

test('functions: a function in a VPC is retried on the network-interface variant of the propagation error', async () => {
  const fns = new AwsFunctions(aws, { project: 'propvpc', pollMs: 50 });
  const refused = propagation(['lambda:CreateFunction']);
  const created = await fns.deploy({
    name: 'vpcfn',
    template: 'ingest-rds',
    handler: 'handler',
    timeoutSeconds: 30,
    memoryMb: 128,
    environment: {},
    vpc: { subnetIds: ['subnet-0123456789abcdef0'], securityGroupIds: ['sg-0123456789abcdef0'] },
    artifact: { dir, entry: 'index.js', sha256: 'b'.repeat(64), bytes: 30 },
  });
  assert.is(created, 'created');
  assert.ok(refused().includes('lambda:CreateFunction'), `refused first: ${refused()}`);
});

test('rules: ReplaceTopicRule after the rule role\'s policy was updated is retried; AddPermission waits out an update in progress instead of taking it as allowed', async () => {
  const names = stageNames({ project: 'proprules', stage: 'default' });
  const rules = new AwsRules(aws, { owner: ownerOf('proprules'), names, declared: { rules: ['r'], streams: ['s'], functions: ['target'] } });
  const rule = (actions: RuleSpec['actions']): RuleSpec => ({ name: 'r', description: '', sql: "SELECT * FROM 'dt/#'", enabled: true, actions });
  const created = propagation(['iot:CreateTopicRule', 'iot:ReplaceTopicRule']);
  await rules.put(rule([{ kinesis: { stream: 's', partitionKey: '${newuuid()}' } }]));
  assert.ok(created().includes('iot:CreateTopicRule'), 'a new role: refused first');

  // The role exists; its policy changes with the new action, and IoT refuses it "just updated".
  const updated = propagation(['iot:CreateTopicRule', 'iot:ReplaceTopicRule']);
  await rules.put(rule([{ kinesis: { stream: 's', partitionKey: '${newuuid()}' } }, { republish: { topic: 'out/x', qos: 0 } }]));
  assert.ok(updated().includes('iot:ReplaceTopicRule'), `refused first: ${updated()}`);
  assert.is((await rules.get('r'))?.actions.length, 2);

  // A function just updated: AddPermission answers ResourceConflictException (an operation in progress) for a while.
  const lambda = await aws.get('lambda');
  const iam = await aws.get('iam');
  const { Role } = await iam.client.send(
    new iam.sdk.CreateRoleCommand({ RoleName: 'proprules-target', AssumeRolePolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }] }) }),
  );
  const FunctionName = names.function('target');
  const { zipSync } = await import('fflate');
  moto.realism!.set({ iamPropagationSeconds: 0, creating: {} });
  await lambda.client.send(new lambda.sdk.CreateFunctionCommand({ FunctionName, Role: Role!.Arn!, Runtime: 'nodejs22.x', Handler: 'index.handler', Code: { ZipFile: zipSync({ 'index.js': new TextEncoder().encode('exports.handler=async()=>1') }) } }));
  moto.realism!.set({ creating: { lambdaUpdateMs: 1_500 } });
  await lambda.client.send(new lambda.sdk.UpdateFunctionConfigurationCommand({ FunctionName, MemorySize: 256 }));
  const from = moto.realism!.calls().length;
  await rules.put(rule([{ lambda: { function: 'target' } }]));
  const conflicts = moto.realism!.calls().slice(from).filter((c) => c.key === 'lambda:AddPermission' && c.injected === 'creating');
  assert.ok(conflicts.length > 0, 'AddPermission was refused while the update was in progress');
  const policy = JSON.parse((await lambda.client.send(new lambda.sdk.GetPolicyCommand({ FunctionName }))).Policy!) as { Statement: { Principal: unknown }[] };
  assert.ok(JSON.stringify(policy.Statement).includes('iot.amazonaws.com'), 'IoT may invoke the function');
  moto.realism!.set({ creating: {} });
});

test('datalake: the transform function, the delivery streams and the schedule are created (and updated) once their new roles have propagated', async () => {
  const spec = specSchema.parse({
    project: 'proplake',
    target: 'aws',
    analytics: {
      channels: [{ name: 'raw' }],
      datastores: [{ name: 'store' }],
      pipelines: [{ name: 'main', channel: 'raw', datastore: 'store', activities: [{ filter: { filter: 'temp >= 0' } }] }],
      datasets: [{ name: 'daily', sql: 'SELECT count(*) FROM store', schedule: 'cron(0 2 * * ? *)' }],
    },
  });
  const ops = ['lambda:CreateFunction', 'firehose:CreateDeliveryStream', 'firehose:UpdateDestination', 'scheduler:CreateSchedule', 'scheduler:UpdateSchedule'];
  const ctx = await datalakeContext(aws, spec);
  // Bundled beforehand: on a busy machine the first bundling alone outlasts the propagation window.
  await transformArtifact();
  // In three steps, so that each consumer meets roles younger than the propagation time: the channel (Firehose),
  // the pipeline (its transform function), the dataset (its schedule).
  const a = spec.analytics!;
  const steps = [
    { analytics: { ...a, pipelines: [], datastores: [], datasets: [] }, op: 'firehose:CreateDeliveryStream' },
    { analytics: { ...a, datasets: [] }, op: 'lambda:CreateFunction' },
    { analytics: a, op: 'scheduler:CreateSchedule' },
  ];
  for (const step of steps) {
    const partial = specSchema.parse({ ...spec, analytics: step.analytics });
    const refused = propagation(ops);
    await applyDatalake(aws, partial, await planDatalake(aws, partial, { context: ctx }), { context: ctx });
    assert.ok(refused().includes(step.op), `${step.op} refused first: ${refused()}`);
  }
  assert.equal((await planDatalake(aws, spec, { context: ctx })).filter((i) => i.action !== 'noop'), []);

  // Updates right after the roles changed: a delivery stream changed outside iotctl, then a new schedule.
  const iam = await aws.get('iam');
  const touchRoles = async () => {
    moto.realism!.set({ iamPropagationSeconds: 0 });
    // Every role's policy put again (as an apply that changes them does): each is "just updated".
    for (const r of (await iam.client.send(new iam.sdk.ListRolesCommand({ PathPrefix: '/iotctl/proplake/' }))).Roles ?? []) {
      const doc = (await iam.client.send(new iam.sdk.GetRolePolicyCommand({ RoleName: r.RoleName!, PolicyName: 'iotctl' }))).PolicyDocument!;
      await iam.client.send(new iam.sdk.PutRolePolicyCommand({ RoleName: r.RoleName!, PolicyName: 'iotctl', PolicyDocument: decodeURIComponent(doc) }));
    }
    return propagation(ops);
  };
  const firehose = await aws.get('firehose');
  const streamName = (await firehose.client.send(new firehose.sdk.ListDeliveryStreamsCommand({}))).DeliveryStreamNames!.find((n) => n.includes('raw'))!;
  const d = (await firehose.client.send(new firehose.sdk.DescribeDeliveryStreamCommand({ DeliveryStreamName: streamName }))).DeliveryStreamDescription!;
  await firehose.client.send(
    new firehose.sdk.UpdateDestinationCommand({ DeliveryStreamName: streamName, CurrentDeliveryStreamVersionId: d.VersionId!, DestinationId: d.Destinations![0]!.DestinationId!, ExtendedS3DestinationUpdate: { BufferingHints: { SizeInMBs: 5, IntervalInSeconds: 60 } } }),
  );
  const changedSpec = specSchema.parse({ ...spec, analytics: { ...a, datasets: [{ name: 'daily', sql: 'SELECT count(*) FROM store', schedule: 'cron(0 3 * * ? *)' }] } });
  for (const [s, kind, op] of [[spec, 'stream', 'firehose:UpdateDestination'], [changedSpec, 'schedule', 'scheduler:UpdateSchedule']] as const) {
    const refused = await touchRoles();
    const plan = await planDatalake(aws, s, { context: ctx });
    assert.equal(plan.filter((i) => i.action !== 'noop').map((i) => `${i.action} ${i.kind}`), [`replace ${kind}`]);
    await applyDatalake(aws, s, plan, { context: ctx });
    assert.ok(refused().includes(op), `${op} refused first: ${refused()}`);
    assert.equal((await planDatalake(aws, s, { context: ctx })).filter((i) => i.action !== 'noop'), []);
  }
});

/** A role's trust policy as IAM stores it. */
async function trustOf(RoleName: string) {
  const iam = await aws.get('iam');
  return JSON.parse(decodeURIComponent((await iam.client.send(new iam.sdk.GetRoleCommand({ RoleName }))).Role!.AssumeRolePolicyDocument!)) as { Statement: { Principal: unknown; Condition?: unknown }[] };
}
const SCHEDULER_CONDITION = { StringEquals: { 'aws:SourceAccount': ACCOUNT }, ArnLike: { 'aws:SourceArn': `arn:aws:scheduler:us-east-1:${ACCOUNT}:schedule-group/default` } };

test('database: the maintenance schedule is created (and updated) once its new role has propagated; Scheduler may assume the role for this account\'s schedule group only', async () => {
  const owner = ownerOf('propdb');
  const names = databaseOpsNames(owner);
  const L = databaseOpsLogical;
  const ops = (retentionSchedule: string) =>
    new AwsDatabaseOps(aws, { database: { retentionSchedule }, functions: [] } as never, {
      owner,
      scope: owner,
      functions: {} as never,
      // No role secrets to write: the role and the schedule alone are applied here.
      database: { roleEndpoint: async () => undefined } as never,
    });
  const items = (action: PlanItem['action']) => [{ kind: 'role', name: L.scheduleRole, action, changes: [] }, { kind: 'schedule', name: L.schedule, action, changes: [] }] as PlanItem[];
  const refused = propagation(['scheduler:CreateSchedule', 'scheduler:UpdateSchedule']);
  await ops('rate(30 minutes)').apply(items('create'));
  assert.ok(refused().includes('scheduler:CreateSchedule'), `refused first: ${refused()}`);
  const sched = await aws.get('scheduler');
  const s = await sched.client.send(new sched.sdk.GetScheduleCommand({ Name: names.schedule }));
  assert.is(s.ScheduleExpression, 'rate(30 minutes)');
  assert.match(s.Target!.RoleArn!, new RegExp(`:role/iotctl/propdb/default/${names.scheduleRole}$`));
  const trust = await trustOf(names.scheduleRole);
  assert.equal(trust.Statement[0]!.Principal, { Service: 'scheduler.amazonaws.com' });
  assert.equal(trust.Statement[0]!.Condition, SCHEDULER_CONDITION);

  // The role's policy drifted (put again by hand): rewritten, so the update meets a role "just updated".
  const iam = await aws.get('iam');
  await iam.client.send(new iam.sdk.PutRolePolicyCommand({ RoleName: names.scheduleRole, PolicyName: 'iotctl', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'sqs:SendMessage', Resource: '*' }] }) }));
  const again = propagation(['scheduler:CreateSchedule', 'scheduler:UpdateSchedule']);
  await ops('rate(1 hour)').apply(items('replace'));
  assert.ok(again().includes('scheduler:UpdateSchedule'), `refused first: ${again()}`);
  assert.is((await sched.client.send(new sched.sdk.GetScheduleCommand({ Name: names.schedule }))).ScheduleExpression, 'rate(1 hour)');
});

test('check --schedule: the check function and its schedule are created once their new roles have propagated; both roles carry their trust conditions', async () => {
  const owner = ownerOf('propcheck');
  const n = checkNames(owner);
  const check = new AwsScheduledCheck(aws, owner, async () => ({}), { pollMs: 50 });
  const refused = propagation(['lambda:CreateFunction', 'scheduler:CreateSchedule']);
  const changes = await check.apply({ expression: 'rate(5 minutes)', topic: 'dt/propcheck/canary/telemetry', timeoutMs: 10_000, stages: [] });
  assert.equal(changes.map((c) => `${c.resource} ${c.result}`), ['role created', 'function created', 'role created', 'schedule created']);
  assert.ok(refused().includes('lambda:CreateFunction'), `CreateFunction refused first: ${refused()}`);
  assert.ok(refused().includes('scheduler:CreateSchedule'), `CreateSchedule refused first: ${refused()}`);
  assert.equal((await trustOf(n.scheduleRole)).Statement[0]!.Condition, SCHEDULER_CONDITION);
  assert.equal((await trustOf(n.functionRole)).Statement[0]!.Principal, { Service: 'lambda.amazonaws.com' });

  // Applied again: nothing written, so nothing to wait for.
  moto.realism!.set({ iamPropagationSeconds: 0 });
  const again = await check.apply({ expression: 'rate(5 minutes)', topic: 'dt/propcheck/canary/telemetry', timeoutMs: 10_000, stages: [] });
  assert.equal(again.map((c) => c.result), ['unchanged', 'unchanged', 'unchanged', 'unchanged']);
  assert.equal((await check.remove()).map((c) => `${c.resource} ${c.result}`), ['schedule deleted', 'function deleted', 'role deleted', 'role deleted']);
});

test('a role that never propagates ends in a bounded error naming the service, the operation and the wait', async () => {
  const names = stageNames({ project: 'propnever', stage: 'default' });
  const rules = new AwsRules(aws, { owner: ownerOf('propnever'), names, declared: { rules: ['r'], streams: ['s'] } });
  moto.realism!.set({ iamPropagationSeconds: 3_600, iamPropagationOps: ['iot:CreateTopicRule'] });
  process.env.IOTCTL_AWS_WAIT_SECONDS = '2';
  try {
    const t0 = Date.now();
    const e = await rules.put({ name: 'r', description: '', sql: "SELECT * FROM 'dt/#'", enabled: true, actions: [{ kinesis: { stream: 's', partitionKey: 'k' } }] }).catch((x) => x);
    assert.match(e.message, /^iot:CreateTopicRule was still refused after [\d.]+ s \(\d+ attempts\) of waiting for AWS IoT to be able to assume the role of rule .*: .*unable to assume role/);
    assert.is(e.code, 'AWS_InvalidRequestException');
    assert.ok(Date.now() - t0 < 6_000, 'bounded by the budget');
  } finally {
    process.env.IOTCTL_AWS_WAIT_SECONDS = '30';
    moto.realism!.set({ iamPropagationSeconds: 0 });
  }
});

test.run();
