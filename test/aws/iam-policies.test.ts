import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { initSpec } from '../../src/spec/init-template.js';
import { stageNames } from '../../src/targets/aws/naming.js';
import { provisioningRolePolicy, provisioningTrustPolicy } from '../../src/targets/aws/provisioning.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { checkPolicy, simulate, type Decision, type Policy, type Violation } from '../helpers/iam-check.js';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';
import { freshDatabase, type TestDatabase } from '../helpers/pg.js';
import { cli, makeProject, NO_DB, type Project } from '../helpers/project.js';

// Every policy iotctl writes on the aws target, read back from moto after applying the init spec (with a VPC
// function, the datalake and a device) for stages dev and prod: checked against the Service Authorization
// Reference, and each role simulated on what its service must do and on what it must not reach.

const ACCOUNT = '123456789012';
let moto: Moto;
let project: Project;
let env: Record<string, string>;
const dbs: Record<string, TestDatabase> = {};

interface Role { name: string; arn: string; path: string; trust: Policy; policies: Record<string, Policy> }
const roles: Role[] = [];
const iotPolicies: { name: string; document: Policy }[] = [];

// Each stage its own database (its own DATABASE_URL, so its own secret).
const run = (stage: string, ...args: string[]) => cli([...args, '--stage', stage], { cwd: project.dir, env: { ...env, DATABASE_URL: dbs[stage]!.url }, timeoutMs: 180_000 });

test.before(async () => {
  try {
    await setUp();
  } catch (e) {
    // uvu swallows a hook's error: show it.
    console.error(e);
    throw e;
  }
});

async function setUp(): Promise<void> {
  moto = await startMoto();
  // moto's Lambda takes any subnet and security group ids: the init spec's commented ones, uncommented.
  let yaml = initSpec('fleet', 'aws')
    .replace(/# vpc: .*\n(\s+)# {3}subnetIds: (.*)\n\s+# {3}securityGroupIds: (.*)/, 'vpc:\n$1  subnetIds: $2\n$1  securityGroupIds: $3');
  assert.match(yaml, /vpc:\n      subnetIds/, 'the init spec still has its commented vpc block');
  yaml += '\nstages:\n  dev: {}\n  prod: {}\n';
  project = makeProject(yaml);
  env = { ...moto.env, ...NO_DB };
  for (const stage of ['dev', 'prod']) {
    dbs[stage] = await freshDatabase();
    const r = await run(stage, 'apply', '--yes');
    assert.is(r.code, 0, `apply --stage ${stage}: ${r.stderr}`);
    const d = await run(stage, 'device', 'register', `sensor-${stage}`);
    assert.is(d.code, 0, `device register --stage ${stage}: ${d.stderr}`);
  }
  // The scheduled check's function and Scheduler roles, for dev.
  const c = await run('dev', 'check', '--schedule', 'rate(5 minutes)', '--target', 'aws');
  assert.is(c.code, 0, `check --schedule: ${c.stderr}`);
  // Read back every role under /iotctl and every IoT policy.
  const restore2 = useEnv(moto.env);
  const aws2 = new AwsClients({});
  try {
    const iam = await aws2.get('iam');
    const listed = await iam.client.send(new iam.sdk.ListRolesCommand({ PathPrefix: '/iotctl', MaxItems: 1000 }));
    for (const r of listed.Roles ?? []) {
      const names = await iam.client.send(new iam.sdk.ListRolePoliciesCommand({ RoleName: r.RoleName! }));
      const policies: Record<string, Policy> = {};
      for (const p of names.PolicyNames ?? []) {
        const got = await iam.client.send(new iam.sdk.GetRolePolicyCommand({ RoleName: r.RoleName!, PolicyName: p }));
        policies[p] = JSON.parse(decodeURIComponent(got.PolicyDocument!));
      }
      roles.push({ name: r.RoleName!, arn: r.Arn!, path: r.Path!, trust: JSON.parse(decodeURIComponent(r.AssumeRolePolicyDocument!)), policies });
    }
    const iot = await aws2.get('iot');
    const ps = await iot.client.send(new iot.sdk.ListPoliciesCommand({}));
    for (const p of ps.policies ?? []) {
      const got = await iot.client.send(new iot.sdk.GetPolicyCommand({ policyName: p.policyName! }));
      iotPolicies.push({ name: p.policyName!, document: JSON.parse(got.policyDocument!) });
    }
    await readStages(aws2);
  } finally {
    aws2.destroy();
    restore2();
  }
}

test.after(async () => {
  project?.cleanup();
  for (const db of Object.values(dbs)) await db.drop();
  await moto?.stop();
});


/** What one stage made, read back from moto: its function's role and secret, its streams, bucket, queue, rules. */
interface StageResources {
  secrets: { owner: string; writer: string; reader: string };
  maintenanceFn: string;
  queryFn: string;
  dlq: string;
  stream: string; bucket: string; secret: string; queue: string; ingestRole: string; rulePrefix: string; table: string; deliveryStreams: string[] }
const stages: Record<string, StageResources> = {};

async function readStages(aws: AwsClients): Promise<void> {
  const kinesis = await aws.get('kinesis');
  const streams = (await kinesis.client.send(new kinesis.sdk.ListStreamsCommand({}))).StreamNames ?? [];
  const s3 = await aws.get('s3');
  const buckets = ((await s3.client.send(new s3.sdk.ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name!);
  const lambda = await aws.get('lambda');
  const sqs = await aws.get('sqs');
  const queues = (await sqs.client.send(new sqs.sdk.ListQueuesCommand({}))).QueueUrls ?? [];
  const firehose = await aws.get('firehose');
  const delivery = (await firehose.client.send(new firehose.sdk.ListDeliveryStreamsCommand({}))).DeliveryStreamNames ?? [];
  const iot = await aws.get('iot');
  const rules = (await iot.client.send(new iot.sdk.ListTopicRulesCommand({}))).rules ?? [];
  const sm = await aws.get('secrets');
  const secrets = (await sm.client.send(new sm.sdk.ListSecretsCommand({}))).SecretList ?? [];
  for (const stage of ['dev', 'prod']) {
    const mine = (n: string) => n.includes(`-${stage}--`) || n.includes(`_${stage}__`);
    const fn = (await lambda.client.send(new lambda.sdk.ListFunctionsCommand({}))).Functions!.find((f) => mine(f.FunctionName!) && f.FunctionName!.endsWith('--ingest'))!;
    const one = (what: string, xs: string[]) => {
      assert.is(xs.length, 1, `one ${what} for ${stage}: ${xs.join(', ')}`);
      return xs[0]!;
    };
    const rule = rules.find((r) => mine(r.ruleName!))!;
    const secret = (name: string) => one(`secret ${name}`, secrets.filter((x) => x.Name === name).map((x) => x.ARN!));
    const fnArn = (name: string) => `arn:aws:lambda:us-east-1:${ACCOUNT}:function:iotctl-fleet-${stage}--${name}`;
    stages[stage] = {
      secrets: { owner: secret(`iotctl/fleet/${stage}/database`), writer: secret(`iotctl/fleet/${stage}/database-writer`), reader: secret(`iotctl/fleet/${stage}/database-reader`) },
      maintenanceFn: fnArn('db-maintenance'),
      queryFn: fnArn('db-query'),
      dlq: `arn:aws:sqs:us-east-1:${ACCOUNT}:${one('dead-letter queue', queues.filter((q) => mine(q) && q.endsWith('--db-maintenance-dlq'))).split('/').pop()}`,
      stream: `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${one('stream', streams.filter(mine))}`,
      bucket: one('bucket', buckets.filter(mine)),
      secret: fn.Environment!.Variables!.DATABASE_SECRET_ARN!,
      queue: `arn:aws:sqs:us-east-1:${ACCOUNT}:${one('queue', queues.filter((q) => mine(q) && q.endsWith('--ingest-failures'))).split('/').pop()}`,
      ingestRole: fn.Role!,
      rulePrefix: rule.ruleArn!.slice(0, rule.ruleArn!.lastIndexOf('__') + 2),
      table: `arn:aws:glue:us-east-1:${ACCOUNT}:table/iotctl_fleet_${stage}__lake/telemetry_store`,
      deliveryStreams: delivery.filter(mine).map((d) => `arn:aws:firehose:us-east-1:${ACCOUNT}:deliverystream/${d}`),
    };
    assert.match(stages[stage]!.secret, /^arn:aws:secretsmanager:/, `the ${stage} function reads its database secret`);
  }
}

const roleOf = (stage: string, suffix: string) => {
  // By its whole name: several roles share a suffix (the datalake's and the maintenance schedule's `-scheduler`).
  const r = roles.find((x) => x.path === `/iotctl/fleet/${stage}/` && x.name === `iotctl-fleet-${stage}${suffix}`);
  assert.ok(r, `role *${suffix} of ${stage}: ${roles.map((x) => x.name).join(', ')}`);
  return r!;
};
const can = (role: Role, action: string, resource: string, context: Record<string, string | string[]> = {}): Promise<Decision> =>
  simulate({ principal: role.arn, action, resource, account: ACCOUNT, context }, { identity: Object.values(role.policies) });
async function expectDecisions(role: Role, cases: [action: string, resource: string, allowed: boolean][]): Promise<void> {
  const wrong: string[] = [];
  for (const [action, resource, allowed] of cases) {
    const d = await can(role, action, resource);
    if ((d === 'Allowed') !== allowed) wrong.push(`${action} on ${resource}: ${d}, expected ${allowed ? 'Allowed' : 'denied'}`);
  }
  assert.equal(wrong, [], `${role.name}:\n${wrong.join('\n')}`);
}

const report = (where: string, v: Violation[]) => v.map((x) => `${where} [${x.statement}] ${x.problem}: ${x.detail}`);

test('iotctl made the roles and IoT policies of both stages', () => {
  for (const stage of ['dev', 'prod']) {
    for (const suffix of ['--fn-ingest', '--rule-telemetry_to_stream', '--rule-telemetry_to_lake', '--ch-telemetry_raw-firehose', '--pl-telemetry_pipeline-firehose', '--transform-telemetry_pipeline-lambda', '--daily_device_summary-scheduler', '--fn-db-maintenance', '--fn-db-query', '--db-maintenance-scheduler', ...(stage === 'dev' ? ['--check-fn', '--check-scheduler'] : [])]) roleOf(stage, suffix);
    assert.ok(iotPolicies.some((p) => p.name.includes(`-${stage}--`)), `the ${stage} device policy`);
  }
});

test('every inline, trust and IoT policy fits the Service Authorization Reference', async () => {
  const found: string[] = [];
  for (const r of roles) {
    found.push(...report(`${r.name} trust`, await checkPolicy(r.trust, 'trust')));
    for (const [name, p] of Object.entries(r.policies)) found.push(...report(`${r.name} ${name}`, await checkPolicy(p, 'identity')));
  }
  for (const p of iotPolicies) found.push(...report(`IoT policy ${p.name}`, await checkPolicy(p.document, 'iot')));
  assert.equal(found, [], found.join('\n'));
});

for (const [stage, other] of [['dev', 'prod'], ['prod', 'dev']] as const) {
  test(`${stage}: the ingest function's role reads its stream and its secret, writes its queue, nothing of ${other} or another project`, async () => {
    const me = stages[stage]!;
    const them = stages[other]!;
    assert.is(me.secret, me.secrets.writer, `the ${stage} ingest function signs in as the writer`);
    const role = roles.find((r) => r.arn === me.ingestRole)!;
    assert.ok(role, `the function's role ${me.ingestRole} is under /iotctl/`);
    await expectDecisions(role, [
      ['kinesis:GetRecords', me.stream, true],
      ['kinesis:GetShardIterator', me.stream, true],
      ['kinesis:DescribeStream', me.stream, true],
      ['secretsmanager:GetSecretValue', me.secret, true],
      // It writes as the least-privilege writer: the owner's and reader's secrets are not its to read.
      ['secretsmanager:GetSecretValue', me.secrets.owner, false],
      ['secretsmanager:GetSecretValue', me.secrets.reader, false],
      ['sqs:SendMessage', me.queue, true],
      ['logs:PutLogEvents', `arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/aws/lambda/iotctl-fleet-${stage}--ingest:log-stream:2030/01/01/[$LATEST]abc`, true],
      ['ec2:CreateNetworkInterface', `arn:aws:ec2:us-east-1:${ACCOUNT}:network-interface/*`, true],
      ['ec2:CreateNetworkInterface', `arn:aws:ec2:us-east-1:${ACCOUNT}:subnet/subnet-0123456789abcdef0`, true],
      ['ec2:CreateNetworkInterface', `arn:aws:ec2:us-east-1:${ACCOUNT}:subnet/subnet-elsewhere`, false],
      ['ec2:DeleteNetworkInterface', `arn:aws:ec2:us-east-1:${ACCOUNT}:network-interface/eni-1`, true],
      ['ec2:TerminateInstances', `arn:aws:ec2:us-east-1:${ACCOUNT}:instance/i-1`, false],
      ['kinesis:GetRecords', them.stream, false],
      ['kinesis:GetRecords', `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/iotctl-other-${stage}--telemetry`, false],
      ['kinesis:PutRecord', me.stream, false],
      ['secretsmanager:GetSecretValue', them.secret, false],
      ['secretsmanager:PutSecretValue', me.secret, false],
      ['sqs:SendMessage', them.queue, false],
      ['sqs:DeleteQueue', me.queue, false],
      ['iam:PassRole', `arn:aws:iam::${ACCOUNT}:role/admin`, false],
      ['s3:DeleteObject', `arn:aws:s3:::${me.bucket}/raw/telemetry_raw/x.gz`, false],
    ]);
  });

  test(`${stage}: the rule roles put into the stage's stream and delivery streams only`, async () => {
    const me = stages[stage]!;
    const them = stages[other]!;
    const errors = (s: string) => `arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/iotctl/fleet/${s}/rule-errors:log-stream:x`;
    await expectDecisions(roleOf(stage, '--rule-telemetry_to_stream'), [
      ['kinesis:PutRecord', me.stream, true],
      ['logs:PutLogEvents', errors(stage), true],
      ['logs:DescribeLogStreams', `arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/iotctl/fleet/${stage}/rule-errors`, true],
      ['logs:DescribeLogStreams', `arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/iotctl/fleet/${other}/rule-errors`, false],
      ['kinesis:PutRecord', them.stream, false],
      ['kinesis:PutRecord', `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/iotctl-other-${stage}--telemetry`, false],
      ['kinesis:GetRecords', me.stream, false],
      ['kinesis:DeleteStream', me.stream, false],
      ['logs:PutLogEvents', errors(other), false],
      ['iam:PassRole', `arn:aws:iam::${ACCOUNT}:role/admin`, false],
    ]);
    assert.ok(me.deliveryStreams.length >= 2, me.deliveryStreams.join(', '));
    await expectDecisions(roleOf(stage, '--rule-telemetry_to_lake'), [
      ...me.deliveryStreams.map((d): [string, string, boolean] => ['firehose:PutRecordBatch', d, true]),
      ...them.deliveryStreams.map((d): [string, string, boolean] => ['firehose:PutRecordBatch', d, false]),
      ['firehose:DeleteDeliveryStream', me.deliveryStreams[0]!, false],
      ['kinesis:PutRecord', me.stream, false],
    ]);
  });

  test(`${stage}: the Firehose, transform and scheduler roles write their bucket prefixes, never delete, never ${other}'s`, async () => {
    const me = stages[stage]!;
    const them = stages[other]!;
    const obj = (bucket: string, key: string) => `arn:aws:s3:::${bucket}/${key}`;
    await expectDecisions(roleOf(stage, '--ch-telemetry_raw-firehose'), [
      ['s3:PutObject', obj(me.bucket, 'raw/telemetry_raw/2030/01/01/x.gz'), true],
      ['s3:ListBucket', `arn:aws:s3:::${me.bucket}`, true],
      ['s3:PutObject', obj(me.bucket, 'datastore/telemetry_store/x.parquet'), false],
      ['s3:PutObject', obj(them.bucket, 'raw/telemetry_raw/2030/01/01/x.gz'), false],
      ['s3:DeleteObject', obj(me.bucket, 'raw/telemetry_raw/2030/01/01/x.gz'), false],
      ['s3:DeleteBucket', `arn:aws:s3:::${me.bucket}`, false],
      ['s3:PutBucketPolicy', `arn:aws:s3:::${me.bucket}`, false],
      ['iam:PassRole', `arn:aws:iam::${ACCOUNT}:role/admin`, false],
    ]);
    await expectDecisions(roleOf(stage, '--pl-telemetry_pipeline-firehose'), [
      ['s3:PutObject', obj(me.bucket, 'datastore/telemetry_store/dt=2030-01-01/x.parquet'), true],
      ['glue:GetTableVersions', me.table, true],
      ['lambda:InvokeFunction', `arn:aws:lambda:us-east-1:${ACCOUNT}:function:iotctl-fleet-${stage}--transform-telemetry_pipeline`, true],
      ['s3:PutObject', obj(them.bucket, 'datastore/telemetry_store/x.parquet'), false],
      ['s3:DeleteObject', obj(me.bucket, 'datastore/telemetry_store/x.parquet'), false],
      ['glue:GetTable', them.table, false],
      ['lambda:InvokeFunction', `arn:aws:lambda:us-east-1:${ACCOUNT}:function:iotctl-fleet-${other}--transform-telemetry_pipeline`, false],
    ]);
    const lambdaLogs = (s: string) => `arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/aws/lambda/iotctl-fleet-${s}--transform-telemetry_pipeline`;
    await expectDecisions(roleOf(stage, '--transform-telemetry_pipeline-lambda'), [
      ['logs:CreateLogGroup', lambdaLogs(stage), true],
      ['logs:PutLogEvents', `${lambdaLogs(stage)}:log-stream:2030/01/01/x`, true],
      ['logs:CreateLogGroup', lambdaLogs(other), false],
      ['logs:PutLogEvents', `${lambdaLogs(other)}:log-stream:2030/01/01/x`, false],
      ['glue:UpdateTable', me.table, true],
      ['glue:UpdateTable', them.table, false],
      ['glue:DeleteTable', me.table, false],
      ['s3:GetObject', obj(me.bucket, 'datastore/telemetry_store/x.parquet'), false],
    ]);
    await expectDecisions(roleOf(stage, '--daily_device_summary-scheduler'), [
      ['athena:StartQueryExecution', `arn:aws:athena:us-east-1:${ACCOUNT}:workgroup/primary`, true],
      ['s3:PutObject', obj(me.bucket, 'datasets/daily_device_summary/x.csv'), true],
      ['s3:GetObject', obj(me.bucket, 'datastore/telemetry_store/x.parquet'), true],
      ['s3:PutObject', obj(me.bucket, 'datastore/telemetry_store/x.parquet'), false],
      ['s3:GetObject', obj(them.bucket, 'datastore/telemetry_store/x.parquet'), false],
      ['s3:DeleteObject', obj(me.bucket, 'datasets/daily_device_summary/x.csv'), false],
      ['glue:GetTable', them.table, false],
    ]);
  });

  test(`${stage}: the database functions read only the secrets they need, never ${other}'s; the maintenance schedule invokes only its function`, async () => {
    const me = stages[stage]!;
    const them = stages[other]!;
    const logs = (fn: string) => `arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/aws/lambda/iotctl-fleet-${stage}--${fn}:log-stream:2030/01/01/[$LATEST]abc`;
    // Maintenance migrates as the owner and sets the writer's and reader's passwords from their secrets.
    await expectDecisions(roleOf(stage, '--fn-db-maintenance'), [
      ['secretsmanager:GetSecretValue', me.secrets.owner, true],
      ['secretsmanager:GetSecretValue', me.secrets.writer, true],
      ['secretsmanager:GetSecretValue', me.secrets.reader, true],
      ['logs:PutLogEvents', logs('db-maintenance'), true],
      ['ec2:CreateNetworkInterface', `arn:aws:ec2:us-east-1:${ACCOUNT}:subnet/subnet-0123456789abcdef0`, true],
      ['ec2:CreateNetworkInterface', `arn:aws:ec2:us-east-1:${ACCOUNT}:subnet/subnet-elsewhere`, false],
      ['secretsmanager:GetSecretValue', them.secrets.owner, false],
      ['secretsmanager:GetSecretValue', them.secrets.writer, false],
      ['secretsmanager:GetSecretValue', them.secrets.reader, false],
      ['secretsmanager:PutSecretValue', me.secrets.writer, false],
      ['secretsmanager:UpdateSecret', me.secrets.reader, false],
      ['secretsmanager:DeleteSecret', me.secrets.owner, false],
      ['secretsmanager:GetSecretValue', `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:iotctl/other/${stage}/database-abcdef`, false],
      ['logs:PutLogEvents', logs('db-query').replace(`-${stage}--`, `-${other}--`), false],
      ['lambda:InvokeFunction', me.queryFn, false],
      ['iam:PassRole', `arn:aws:iam::${ACCOUNT}:role/admin`, false],
    ]);
    // Query reads as the reader only.
    await expectDecisions(roleOf(stage, '--fn-db-query'), [
      ['secretsmanager:GetSecretValue', me.secrets.reader, true],
      ['logs:PutLogEvents', logs('db-query'), true],
      ['secretsmanager:GetSecretValue', me.secrets.owner, false],
      ['secretsmanager:GetSecretValue', me.secrets.writer, false],
      ['secretsmanager:GetSecretValue', them.secrets.reader, false],
      ['secretsmanager:PutSecretValue', me.secrets.reader, false],
      ['logs:PutLogEvents', logs('db-maintenance'), false],
      ['lambda:InvokeFunction', me.maintenanceFn, false],
    ]);
    await expectDecisions(roleOf(stage, '--db-maintenance-scheduler'), [
      ['lambda:InvokeFunction', me.maintenanceFn, true],
      ['sqs:SendMessage', me.dlq, true],
      ['lambda:InvokeFunction', me.queryFn, false],
      ['lambda:InvokeFunction', them.maintenanceFn, false],
      ['lambda:InvokeFunction', `arn:aws:lambda:us-east-1:${ACCOUNT}:function:iotctl-fleet-${stage}--ingest`, false],
      ['lambda:UpdateFunctionCode', me.maintenanceFn, false],
      ['sqs:SendMessage', them.dlq, false],
      ['sqs:SendMessage', me.queue, false],
      ['sqs:ReceiveMessage', me.dlq, false],
      ['sqs:DeleteQueue', me.dlq, false],
      ['secretsmanager:GetSecretValue', me.secrets.owner, false],
    ]);
  });

  if (stage === 'dev')
    test('dev: the scheduled check reads its stream and the reader secret, publishes only its canary; its schedule invokes only the check', async () => {
      const me = stages.dev!;
      const them = stages.prod!;
      const checkFn = `arn:aws:lambda:us-east-1:${ACCOUNT}:function:iotctl-fleet-dev--iotctl-check`;
      await expectDecisions(roleOf('dev', '--check-fn'), [
        ['kinesis:GetRecords', me.stream, true],
        ['secretsmanager:GetSecretValue', me.secrets.reader, true],
        ['iot:Publish', `arn:aws:iot:us-east-1:${ACCOUNT}:topic/dt/fleet/fleet-dev-canary/telemetry`, true],
        ['ec2:CreateNetworkInterface', `arn:aws:ec2:us-east-1:${ACCOUNT}:subnet/subnet-0123456789abcdef0`, true],
        ['ec2:CreateNetworkInterface', `arn:aws:ec2:us-east-1:${ACCOUNT}:subnet/subnet-elsewhere`, false],
        ['ec2:DeleteNetworkInterface', `arn:aws:ec2:us-east-1:${ACCOUNT}:network-interface/eni-1`, true],
        ['ec2:TerminateInstances', `arn:aws:ec2:us-east-1:${ACCOUNT}:instance/i-1`, false],
        ['secretsmanager:GetSecretValue', me.secrets.owner, false],
        ['secretsmanager:GetSecretValue', me.secrets.writer, false],
        ['secretsmanager:GetSecretValue', them.secrets.reader, false],
        ['kinesis:GetRecords', them.stream, false],
        ['kinesis:PutRecord', me.stream, false],
        ['iot:Publish', `arn:aws:iot:us-east-1:${ACCOUNT}:topic/cmd/fleet/sensor-dev/reboot`, false],
      ]);
      await expectDecisions(roleOf('dev', '--check-scheduler'), [
        ['lambda:InvokeFunction', checkFn, true],
        ['lambda:InvokeFunction', me.maintenanceFn, false],
        ['lambda:InvokeFunction', `arn:aws:lambda:us-east-1:${ACCOUNT}:function:iotctl-fleet-prod--iotctl-check`, false],
      ]);
    });

  test(`${stage}: each trust policy lets its own service assume the role, and no other; a rule role only for ${stage}'s rules`, async () => {
    const me = stages[stage]!;
    const them = stages[other]!;
    // What each service puts in the request context when it assumes a role: IoT and Scheduler the calling
    // account and resource (a rule, the schedule group), Firehose the account as sts:ExternalId, Lambda nothing.
    let ruleArn = '';
    const own = {
      iot: (account: string) => ({ 'aws:SourceAccount': account, 'aws:SourceArn': ruleArn.replace(`:${ACCOUNT}:`, `:${account}:`) }),
      scheduler: (account: string) => ({ 'aws:SourceAccount': account, 'aws:SourceArn': `arn:aws:scheduler:us-east-1:${account}:schedule-group/default` }),
      firehose: (account: string) => ({ 'sts:ExternalId': account }),
      lambda: (_account: string) => ({}),
    };
    const service: Record<string, keyof typeof own> = {
      '--fn-ingest': 'lambda', '--fn-db-maintenance': 'lambda', '--fn-db-query': 'lambda', '--transform-telemetry_pipeline-lambda': 'lambda',
      '--rule-telemetry_to_stream': 'iot', '--rule-telemetry_to_lake': 'iot',
      '--ch-telemetry_raw-firehose': 'firehose', '--pl-telemetry_pipeline-firehose': 'firehose',
      '--daily_device_summary-scheduler': 'scheduler', '--db-maintenance-scheduler': 'scheduler',
      ...(stage === 'dev' ? { '--check-fn': 'lambda' as const, '--check-scheduler': 'scheduler' as const } : {}),
    };
    const wrong: string[] = [];
    for (const [suffix, svc] of Object.entries(service)) {
      const role = roleOf(stage, suffix);
      ruleArn = `${me.rulePrefix}${suffix.replace('--rule-', '')}`;
      const assume = (principal: string, context: Record<string, string>) => simulate({ principal, action: 'sts:AssumeRole', resource: role.arn, account: ACCOUNT, context }, { trust: role.trust });
      const expect = async (what: string, principal: string, context: Record<string, string>, allowed: boolean) => {
        const d = await assume(principal, context);
        if ((d === 'Allowed') !== allowed) wrong.push(`${role.name}: ${what}: ${d}, expected ${allowed ? 'Allowed' : 'denied'}`);
      };
      const principal = `${svc}.amazonaws.com`;
      await expect(`${svc} for ${ACCOUNT}`, principal, own[svc](ACCOUNT), true);
      await expect('ec2', 'ec2.amazonaws.com', own[svc](ACCOUNT), false);
      await expect('another role', `arn:aws:iam::${ACCOUNT}:role/admin`, own[svc](ACCOUNT), false);
      if (svc === 'lambda') continue;
      // Confused deputy: the service acting for another account, or saying nothing of whom it acts for.
      await expect(`${svc} for another account`, principal, own[svc]('999999999999'), false);
      await expect(`${svc} with no source in the context`, principal, {}, false);
      if (svc !== 'firehose') {
        await expect(`${svc} with this account but another account's resource`, principal, { ...own[svc](ACCOUNT), 'aws:SourceArn': own[svc]('999999999999')['aws:SourceArn'] }, false);
        await expect(`${svc} with this account's resource from another account`, principal, { ...own[svc](ACCOUNT), 'aws:SourceAccount': '999999999999' }, false);
      }
    }
    assert.equal(wrong, [], wrong.join('\n'));
    const rule = roleOf(stage, '--rule-telemetry_to_stream');
    const byRule = (arn: string, account = ACCOUNT) => simulate({ principal: 'iot.amazonaws.com', action: 'sts:AssumeRole', resource: rule.arn, account: ACCOUNT, context: { 'aws:SourceAccount': account, 'aws:SourceArn': arn } }, { trust: rule.trust });
    assert.is.not(await byRule(`${them.rulePrefix}telemetry_to_stream`), 'Allowed', `${other}'s rule cannot use ${stage}'s rule role`);
    assert.is.not(await byRule(`${me.rulePrefix}telemetry_to_stream`, '999999999999'), 'Allowed', 'another account cannot');
  });

  test(`${stage}: the device policy lets a thing publish its telemetry and read its commands, nothing of another thing`, async () => {
    const policy = iotPolicies.find((p) => p.name.includes(`-${stage}--`))!;
    const thing = `sensor-${stage}`;
    // iam-simulate knows only the SAR's context keys, not IoT Core's thing variables: they are substituted as
    // IoT Core does for a connection of `thing`, and the attached-thing condition checked where it stands.
    const statements = ([] as NonNullable<Policy['Statement']>[]).concat(policy.document.Statement) as { Sid?: string; Action?: string | string[]; Condition?: Record<string, Record<string, string>> }[];
    const connect = statements.filter((x) => [x.Action].flat().includes('iot:Connect'));
    assert.ok(connect.length && connect.every((x) => x.Condition?.Bool?.['iot:Connection.Thing.IsAttached'] === 'true'), 'iot:Connect only for the certificate of an attached thing');
    const resolved = JSON.parse(JSON.stringify(policy.document).replaceAll('${iot:Connection.Thing.ThingName}', thing).replace(/,?"Condition":\{"Bool":\{"iot:Connection\.Thing\.IsAttached":"true"\}\}/g, '')) as Policy;
    const dev = (action: string, resource: string) =>
      simulate({ principal: `arn:aws:iot:us-east-1:${ACCOUNT}:cert/abc`, action, resource: `arn:aws:iot:us-east-1:${ACCOUNT}:${resource}`, account: ACCOUNT }, { identity: [resolved] });
    assert.is(await dev('iot:Connect', `client/${thing}`), 'Allowed');
    assert.is(await dev('iot:Publish', `topic/dt/fleet/${thing}/telemetry`), 'Allowed');
    assert.is(await dev('iot:Subscribe', `topicfilter/cmd/fleet/${thing}/#`), 'Allowed');
    assert.is(await dev('iot:Receive', `topic/cmd/fleet/${thing}/reboot`), 'Allowed');
    assert.is.not(await dev('iot:Connect', 'client/sensor-other'), 'Allowed');
    assert.is.not(await dev('iot:Publish', 'topic/dt/fleet/sensor-other/telemetry'), 'Allowed');
    assert.is.not(await dev('iot:Publish', `topic/cmd/fleet/${thing}/reboot`), 'Allowed');
    assert.is.not(await dev('iot:Subscribe', 'topicfilter/cmd/fleet/#'), 'Allowed');
    assert.is.not(await dev('iot:UpdateThingShadow', `thing/${thing}`), 'Allowed');
  });
}

// moto serves no provisioning templates: the provisioning role's documents are checked as iotctl writes them.
test('the fleet provisioning role: fits the SAR, registers things in the stage group only, assumable only for its template', async () => {
  const place = { region: 'us-east-1', account: ACCOUNT };
  const names = stageNames({ project: 'fleet', stage: 'dev' });
  const template = names.provisioningTemplate('factory');
  const policy = provisioningRolePolicy(place, names, 'device') as Policy;
  const trust = provisioningTrustPolicy(place, template) as unknown as Policy;
  const found = [...report('provisioning policy', await checkPolicy(policy, 'identity')), ...report('provisioning trust', await checkPolicy(trust, 'trust'))];
  assert.equal(found, [], found.join('\n'));
  const role: Role = { name: 'provisioning', arn: `arn:aws:iam::${ACCOUNT}:role/iotctl/fleet/dev/provisioning`, path: '/iotctl/fleet/dev/', trust, policies: { p: policy } };
  const iot = (r: string) => `arn:aws:iot:us-east-1:${ACCOUNT}:${r}`;
  await expectDecisions(role, [
    ['iot:CreateThing', iot('thing/sensor-1'), true],
    ['iot:AddThingToThingGroup', iot(`thinggroup/${names.deviceGroup}`), true],
    ['iot:AttachThingPrincipal', iot('cert/abc'), true],
    ['iot:UpdateCertificate', iot('cert/abc'), true],
    ['iot:AttachPolicy', iot('cert/abc'), true],
    ['iot:ListAttachedPolicies', '*', true],
    ['iot:GetPolicy', iot(`policy/${names.devicePolicy('device')}`), true],
    ['iot:GetPolicy', iot(`policy/${stageNames({ project: 'fleet', stage: 'prod' }).devicePolicy('device')}`), false],
    ['iot:AddThingToThingGroup', iot(`thinggroup/${stageNames({ project: 'fleet', stage: 'prod' }).deviceGroup}`), false],
    ['iot:DeleteCertificate', iot('cert/abc'), false],
    ['iot:DeleteThing', iot('thing/sensor-1'), false],
    ['iot:CreatePolicy', iot('policy/x'), false],
    ['iam:PassRole', `arn:aws:iam::${ACCOUNT}:role/admin`, false],
  ]);
  const templateArn = (account: string, t = template) => `arn:aws:iot:us-east-1:${account}:provisioningtemplate/${t}`;
  const assume = (context: Record<string, string>) => simulate({ principal: 'iot.amazonaws.com', action: 'sts:AssumeRole', resource: role.arn, account: ACCOUNT, context }, { trust });
  assert.is(await assume({ 'aws:SourceAccount': ACCOUNT, 'aws:SourceArn': templateArn(ACCOUNT) }), 'Allowed');
  assert.is.not(await assume({ 'aws:SourceAccount': '999999999999', 'aws:SourceArn': templateArn('999999999999') }), 'Allowed', 'another account');
  assert.is.not(await assume({ 'aws:SourceAccount': ACCOUNT, 'aws:SourceArn': templateArn(ACCOUNT, names.provisioningTemplate('other')) }), 'Allowed', 'another template');
  assert.is.not(await assume({}), 'Allowed', 'no source');
});

test.run();
