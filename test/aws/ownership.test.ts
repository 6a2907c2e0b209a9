// Ownership on the aws target, against moto_server: other teams' resources and a second iotctl project in
// the same account are never listed, planned or pruned; a resource of the spec's name that iotctl does not
// own is refused before anything is written; a deployment of an older iotctl (no project tags) is tagged.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bundleTemplate } from '../../src/services/bundle.js';
import type { FunctionArtifact, FunctionDeployment } from '../../src/ports.js';
import { AwsFunctions } from '../../src/targets/aws/functions.js';
import { stageNames } from '../../src/targets/aws/naming.js';
import { ownerOf } from '../../src/targets/aws/ownership.js';
import { AwsStreams } from '../../src/targets/aws/stream.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { createTeamResources, EMPTY_ZIP, LAMBDA_TRUST } from '../helpers/foreign-resources.js';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';
import { cli, makeProject, NO_DB, type Project } from '../helpers/project.js';

let moto: Moto;
let restore: () => void;
let aws: AwsClients;
let fleet: Project;
let staging: Project;
let dir: string;
let artifact: FunctionArtifact;

const ACCOUNT = '123456789012';

// The device policy is scoped per project and stage on AWS (devices-stages.test.ts); each project still names its own.
// moto has no DeleteNamedQuery: only fleet-staging, which is never pruned here, has a dataset.
const specOf = (project: string, prefix: string, datasets = '') => `project: ${project}
target: aws
region: us-east-1
devices:
  policy: { name: ${project}-device }
streams:
  - { name: ${prefix}telemetry, shards: 1 }
rules:
  - name: ${prefix.replace(/-/g, '_')}to_stream
    sql: SELECT * FROM 'dt/#'
    actions:
      - kinesis: { stream: ${prefix}telemetry }
analytics:
  channels: [{ name: raw }]
  datastores: [{ name: ${prefix.replace(/-/g, '_')}telemetry }]
  pipelines: [{ name: main, channel: raw, datastore: ${prefix.replace(/-/g, '_')}telemetry, activities: [] }]
${datasets}`;

/** The CLI's output, both streams (the plan and the steps go to stderr when piped). */
const run = async (p: Project, ...args: string[]) => {
  const r = await cli(args, { cwd: p.dir, env: { ...moto.env, ...NO_DB }, timeoutMs: 120_000 });
  return { ...r, out: r.stdout + r.stderr };
};
const FLEET_HEAD = 'project: fleet\ntarget: aws\nregion: us-east-1\ndevices:\n  policy: { name: fleet-device }\n';

/** Every name a plan or status output mentions of the foreign resources. */
/** The stage-scoped names the projects' streams and functions get (naming.ts). */
const FLEET = stageNames({ project: 'fleet', stage: 'default' });
const STAGING = stageNames({ project: 'fleet-staging', stage: 'default' });
const FOREIGN = ['payments-team-orders', 'payments-fn', 'payments-role', 'payments-queue', 'payments-nightly', 'payments-report', 'payments-firehose', 'iotctl-fleet-ch-ch-other'];

function deployment(name: string, over: Partial<FunctionDeployment> = {}): FunctionDeployment {
  return { name, template: 'ingest-rds', handler: 'handler', timeoutSeconds: 30, memoryMb: 128, environment: { AUTO_MIGRATE: 'false' }, artifact, ...over };
}

test.before(async () => {
  moto = await startMoto();
  restore = useEnv(moto.env);
  aws = new AwsClients({});
  fleet = makeProject(specOf('fleet', ''));
  staging = makeProject(specOf('fleet-staging', 'stg-', "  datasets: [{ name: daily, sql: 'SELECT 1', schedule: 'cron(0 2 * * ? *)' }]\n"));
  dir = mkdtempSync(join(tmpdir(), 'iotctl-owner-'));
  const built = await bundleTemplate('ingest-rds', join(dir, 'bundle'));
  artifact = { dir: join(dir, 'bundle'), entry: 'index.js', sha256: built.sha256, bytes: built.bytes };

  // Another team's resources, one of each type, made with the SDK as their own tooling would.
  const { roleArn } = await createTeamResources(aws);
  const scheduler = await aws.get('scheduler');
  const target = { Arn: 'arn:aws:scheduler:::aws-sdk:athena:startQueryExecution', RoleArn: roleArn, Input: '{}' };
  await scheduler.client.send(new scheduler.sdk.CreateScheduleCommand({ Name: 'payments-nightly', ScheduleExpression: 'rate(1 day)', FlexibleTimeWindow: { Mode: 'OFF' }, Target: target }));
  // Under fleet's own name prefix, but another project's (the old prefix match took these).
  await scheduler.client.send(
    new scheduler.sdk.CreateScheduleCommand({ Name: 'iotctl-fleet-other', Description: 'x [iotctl:project=fleet-other stage=default]', ScheduleExpression: 'rate(1 day)', FlexibleTimeWindow: { Mode: 'OFF' }, Target: target }),
  );
  const athena = await aws.get('athena');
  await athena.client.send(new athena.sdk.CreateNamedQueryCommand({ Name: 'payments-report', Database: 'payments', QueryString: 'SELECT 1', WorkGroup: 'primary' }));
  await athena.client.send(new athena.sdk.CreateNamedQueryCommand({ Name: 'iotctl-fleet-other', Database: 'iotctl', QueryString: 'SELECT 1', Description: 'x [iotctl:project=fleet-other stage=default]', WorkGroup: 'primary' }));
  // Under the name fleet's dataset `other` gets, but marked as another project's: refused when fleet declares it.
  await athena.client.send(new athena.sdk.CreateNamedQueryCommand({ Name: 'iotctl-fleet-default--other', Database: 'iotctl', QueryString: 'SELECT 1', Description: 'x [iotctl:project=fleet-other stage=default]', WorkGroup: 'primary' }));
  const s3 = await aws.get('s3');
  await s3.client.send(new s3.sdk.CreateBucketCommand({ Bucket: 'payments-bucket' }));
  const firehose = await aws.get('firehose');
  const destination = { RoleARN: roleArn, BucketARN: 'arn:aws:s3:::payments-bucket' };
  await firehose.client.send(new firehose.sdk.CreateDeliveryStreamCommand({ DeliveryStreamName: 'payments-firehose', DeliveryStreamType: 'DirectPut', ExtendedS3DestinationConfiguration: destination, Tags: [{ Key: 'team', Value: 'payments' }] }));
  // Project fleet-ch's raw channel: its name starts with project fleet's channel prefix `iotctl-fleet-ch-`.
  await firehose.client.send(
    new firehose.sdk.CreateDeliveryStreamCommand({
      DeliveryStreamName: 'iotctl-fleet-ch-ch-other',
      DeliveryStreamType: 'DirectPut',
      ExtendedS3DestinationConfiguration: destination,
      Tags: [
        { Key: 'iotctl:project', Value: 'fleet-ch' },
        { Key: 'iotctl:stage', Value: 'default' },
      ],
    }),
  );
});

test.after(async () => {
  aws?.destroy();
  restore?.();
  await moto?.stop();
  fleet?.cleanup();
  staging?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function streamTags(name: string): Promise<Record<string, string>> {
  const k = await aws.get('kinesis');
  const out = await k.client.send(new k.sdk.ListTagsForStreamCommand({ StreamName: name }));
  return Object.fromEntries((out.Tags ?? []).map((t) => [t.Key!, t.Value!]));
}

async function exists(kind: 'stream' | 'function' | 'role' | 'schedule' | 'firehose' | 'rule', name: string): Promise<boolean> {
  const ok = () => true;
  const no = () => false;
  if (kind === 'stream') return (await aws.get('kinesis')).client.send(new (await aws.get('kinesis')).sdk.DescribeStreamSummaryCommand({ StreamName: name })).then(ok, no);
  if (kind === 'function') return (await aws.get('lambda')).client.send(new (await aws.get('lambda')).sdk.GetFunctionCommand({ FunctionName: name })).then(ok, no);
  if (kind === 'role') return (await aws.get('iam')).client.send(new (await aws.get('iam')).sdk.GetRoleCommand({ RoleName: name })).then(ok, no);
  if (kind === 'schedule') return (await aws.get('scheduler')).client.send(new (await aws.get('scheduler')).sdk.GetScheduleCommand({ Name: name })).then(ok, no);
  if (kind === 'firehose') return (await aws.get('firehose')).client.send(new (await aws.get('firehose')).sdk.DescribeDeliveryStreamCommand({ DeliveryStreamName: name })).then(ok, no);
  return (await aws.get('iot')).client.send(new (await aws.get('iot')).sdk.GetTopicRuleCommand({ ruleName: name })).then((r) => !!r.rule, no);
}

test('two projects apply into one account beside another team; neither plans, shows nor prunes anything not its own', async () => {
  for (const p of [fleet, staging]) {
    const r = await run(p, 'apply', '--yes');
    assert.is(r.code, 0, r.out);
  }
  assert.equal((await streamTags(FLEET.stream('telemetry')))['iotctl:project'], 'fleet');
  assert.equal((await streamTags(FLEET.stream('telemetry')))['iotctl:stage'], 'default');
  for (const p of [fleet, staging]) {
    const plan = await run(p, 'apply', '--dry-run', '--prune');
    assert.is(plan.code, 0, plan.stderr);
    assert.match(plan.out, /No changes/, plan.out);
    for (const name of [...FOREIGN, 'iotctl-fleet-other']) assert.not.ok(plan.out.includes(name), `${name} in the plan:\n${plan.out}`);
    const status = await run(p, 'status', '--json');
    assert.is(status.code, 0, status.stderr);
    for (const name of [...FOREIGN, 'iotctl-fleet-other']) assert.not.ok(status.out.includes(name), `${name} in status`);
  }
  const other = await run(staging, 'status', '--json');
  assert.not.ok(/"name":\s*"telemetry"/.test(other.out) || other.out.includes(FLEET.stream('telemetry')), 'fleet-staging does not see fleet\'s stream');
});

test("another stage of the project sees the default stage's stream as not its own: never listed, planned or taken over", async () => {
  const file = join(fleet.dir, 'iotctl.yaml');
  const base = readFileSync(file, 'utf8');
  writeFileSync(file, `${base}stages:\n  prod:\n`);
  try {
    const status = await run(fleet, 'stream', 'list', '--json', '--stage', 'prod');
    assert.is(status.code, 0, status.out);
    assert.not.ok(/"telemetry"/.test(status.stdout) || status.stdout.includes(FLEET.stream('telemetry')), `prod lists default's stream: ${status.stdout}`);
  } finally {
    writeFileSync(file, base);
  }
  // Declared in prod too, it is prod's own stream there: default's is neither refused nor planned (the whole
  // plan of two stages: stream-function-names.test.ts).
  const prod = stageNames({ project: 'fleet', stage: 'prod' });
  assert.equal(await new AwsStreams(aws, { owner: ownerOf('fleet', 'prod'), physical: prod.stream }).list({ desired: ['telemetry'] }), []);
  assert.equal((await streamTags(FLEET.stream('telemetry')))['iotctl:stage'], 'default');
});

test('prune in one project deletes its own resources, in reverse dependency order, and leaves the other project and the other team untouched', async () => {
  writeFileSync(join(fleet.dir, 'iotctl.yaml'), FLEET_HEAD);
  const plan = await run(fleet, 'apply', '--dry-run', '--prune');
  assert.is(plan.code, 0, plan.stderr);
  assert.match(plan.out, /- stream telemetry/);
  assert.match(plan.out, /- rule to_stream/);
  for (const name of [...FOREIGN, 'iotctl-fleet-other', 'stg-telemetry', 'iotctl-fleet-staging']) assert.not.ok(plan.out.includes(name), `${name} in the prune plan:\n${plan.out}`);
  const r = await run(fleet, 'apply', '--yes', '--prune');
  assert.is(r.code, 0, r.out);
  // The rule that wrote to the stream went before the stream.
  const steps = r.out.split('\n').filter((l) => /Prune /.test(l));
  const at = (s: string) => steps.findIndex((l) => l.includes(`Prune ${s}`));
  assert.ok(at('rules') >= 0 && at('streams') > at('rules') && at('analytics') > at('rules'), steps.join('\n'));
  assert.not.ok(await exists('stream', FLEET.stream('telemetry')));
  assert.not.ok(await exists('rule', 'iotctl_fleet_default__to_stream'));
  assert.not.ok(await exists('firehose', 'iotctl-fleet-default--ch-raw'));
  // Everyone else's is still there.
  for (const [kind, name] of [
    ['stream', STAGING.stream('stg-telemetry')],
    ['rule', 'iotctl_fleet_staging_default__stg_to_stream'],
    ['schedule', 'iotctl-fleet-staging-default--daily'],
    ['firehose', 'iotctl-fleet-staging-default--ch-raw'],
    ['stream', 'payments-team-orders'],
    ['function', 'payments-fn'],
    ['role', 'payments-role'],
    ['schedule', 'payments-nightly'],
    ['schedule', 'iotctl-fleet-other'],
    ['firehose', 'payments-firehose'],
    ['firehose', 'iotctl-fleet-ch-ch-other'],
  ] as const)
    assert.ok(await exists(kind, name), `${kind} ${name} was pruned`);
  const athena = await aws.get('athena');
  const ids = (await athena.client.send(new athena.sdk.ListNamedQueriesCommand({ WorkGroup: 'primary' }))).NamedQueryIds ?? [];
  const queries = await Promise.all(ids.map(async (id) => (await athena.client.send(new athena.sdk.GetNamedQueryCommand({ NamedQueryId: id }))).NamedQuery!.Name));
  for (const q of ['payments-report', 'iotctl-fleet-other', 'iotctl-fleet-staging-default--daily']) assert.ok(queries.includes(q), `query ${q} was pruned: ${queries.join()}`);
  const sqs = await aws.get('sqs');
  assert.ok((await sqs.client.send(new sqs.sdk.GetQueueUrlCommand({ QueueName: 'payments-queue' }))).QueueUrl);
  // The other project's plan is still a no-op.
  const again = await run(staging, 'apply', '--dry-run', '--prune');
  assert.match(again.out, /No changes/, again.out);
});

test("a resource of the spec's name that iotctl does not own is refused at plan time, nothing written", async () => {
  const cases: [string, string, RegExp][] = [
    // Streams are named by stage (a same-named one of another team no longer collides): physicalName points at them.
    ['streams:\n  - { name: orders, physicalName: payments-team-orders }\n', 'stream', /Kinesis stream payments-team-orders already exists.*does not manage it.*no iotctl project/s],
    // fleet-staging's stream, for project fleet
    [`streams:\n  - { name: stg, physicalName: ${STAGING.stream('stg-telemetry')} }\n`, 'stream', /Kinesis stream iotctl-fleet-staging-default--stg-telemetry already exists.*iotctl project fleet-staging, stage default/s],
    // fleet-staging's rule, named explicitly: never taken over, not even with --adopt (below)
    ["rules:\n  - name: stg_to_stream\n    physicalName: iotctl_fleet_staging_default__stg_to_stream\n    sql: SELECT * FROM 'x'\n    actions:\n      - republish: { topic: y }\n", 'rule', /topic rule iotctl_fleet_staging_default__stg_to_stream already exists.*fleet-staging/s],
    ['analytics:\n  datasets: [{ name: other, sql: SELECT 1, schedule: "cron(0 2 * * ? *)" }]\n', 'query', /Athena named query iotctl-fleet-default--other already exists.*fleet-other/s],
  ];
  // A role in iotctl's namespace that someone else made: the rule needing it is refused at plan time, so the
  // stream before it in the same apply is not created either.
  const iam = await aws.get('iam');
  await iam.client.send(new iam.sdk.CreateRoleCommand({ RoleName: 'iotctl-fleet-default--rule-collide', AssumeRolePolicyDocument: LAMBDA_TRUST, Tags: [{ Key: 'team', Value: 'payments' }] }));
  cases.push(["streams:\n  - { name: fresh }\nrules:\n  - name: collide\n    sql: SELECT * FROM 'x'\n    actions:\n      - kinesis: { stream: fresh }\n", 'role', /IAM role iotctl-fleet-default--rule-collide already exists.*no iotctl project/s]);
  for (const [yaml, kind, message] of cases) {
    writeFileSync(join(fleet.dir, 'iotctl.yaml'), `${FLEET_HEAD}${yaml}`);
    const r = await run(fleet, 'apply', '--yes');
    assert.is(r.code, 1, `${kind}: ${r.out}`);
    assert.match(r.stderr, message);
    assert.match(r.stderr, /Rename the .* in iotctl.yaml/);
    assert.not.match(r.stderr, /Error \(bug\)/);
  }
  assert.not.ok(await exists('stream', FLEET.stream('fresh')), 'nothing was written before the refusal');
  // --adopt takes over only what no iotctl deployment owns: fleet-staging's rule stays refused.
  writeFileSync(join(fleet.dir, 'iotctl.yaml'), `${FLEET_HEAD}${cases.find(([, kind]) => kind === 'rule')![0]}`);
  const adopt = await run(fleet, 'apply', '--yes', '--adopt');
  assert.is(adopt.code, 1, adopt.out);
  assert.match(adopt.stderr, /iotctl_fleet_staging_default__stg_to_stream already exists.*fleet-staging/s);
  const roleTags = (await iam.client.send(new iam.sdk.ListRoleTagsCommand({ RoleName: 'iotctl-fleet-default--rule-collide' }))).Tags;
  assert.equal(roleTags, [{ Key: 'team', Value: 'payments' }], 'the foreign role was not touched');
  assert.equal(await streamTags('payments-team-orders'), { team: 'payments' }, 'the foreign stream was not tagged');
  assert.equal((await streamTags(STAGING.stream('stg-telemetry')))['iotctl:project'], 'fleet-staging');
});

test('functions and their roles: foreign ones are not listed and are refused by name before any write; prune of one project cannot remove another\'s', async () => {
  const fns = new AwsFunctions(aws, { project: 'fleet', pollMs: 5 });
  const other = new AwsFunctions(aws, { project: 'fleet-staging', pollMs: 5 });
  assert.is(await other.deploy(deployment('stg-ingest')), 'created');
  assert.equal((await fns.list()).map((f) => f.name), []);
  assert.equal((await other.list()).map((f) => f.name), ['stg-ingest']);
  // Another team's function and another project's, named by physicalName: refused.
  for (const physical of ['payments-fn', STAGING.function('stg-ingest')]) {
    const named = new AwsFunctions(aws, { project: 'fleet', names: stageNames({ project: 'fleet', stage: 'default' }, { functions: { mine: physical } }), pollMs: 5 });
    const err = await named.list({ desired: ['mine'] }).then(() => undefined, (e: Error) => e);
    assert.match(String(err?.message), new RegExp(`Lambda function ${physical} already exists`));
    const deploy = await named.deploy(deployment('mine')).then(() => undefined, (e: Error) => e);
    assert.match(String(deploy?.message), /already exists.*does not manage it/s);
    const remove = await named.remove('mine').then(() => undefined, (e: Error) => e);
    assert.match(String(remove?.message), /does not manage it/);
  }
  assert.not.ok(await exists('role', FLEET.functionRole('mine')), 'no role was made for a refused function');
  assert.ok(await exists('function', STAGING.function('stg-ingest')));
  assert.ok(await exists('role', STAGING.functionRole('stg-ingest')));
  // A role of the function's role name that someone else made is refused too.
  const iam = await aws.get('iam');
  await iam.client.send(new iam.sdk.CreateRoleCommand({ RoleName: FLEET.functionRole('collide'), AssumeRolePolicyDocument: LAMBDA_TRUST, Tags: [{ Key: 'team', Value: 'payments' }] }));
  const err = await fns.deploy(deployment('collide')).then(() => undefined, (e: Error) => e);
  assert.match(String(err?.message), /IAM role iotctl-fleet-default--fn-collide already exists/);
  assert.not.ok(await exists('function', FLEET.function('collide')));
});

test('a deployment of an older iotctl (no project tags) is moved to the stage\'s names: the stream kept and tagged, the function replaced', async () => {
  // What older versions made: an untagged stream, a function and role with only `iotctl:managed`.
  const k = await aws.get('kinesis');
  await k.client.send(new k.sdk.CreateStreamCommand({ StreamName: 'legacy-telemetry', ShardCount: 1 }));
  const iam = await aws.get('iam');
  const role = await iam.client.send(
    new iam.sdk.CreateRoleCommand({
      RoleName: 'iotctl-fn-legacy-ingest',
      AssumeRolePolicyDocument: LAMBDA_TRUST,
      Tags: [
        { Key: 'iotctl:managed', Value: 'true' },
        { Key: 'iotctl:function', Value: 'legacy-ingest' },
      ],
    }),
  );
  const lambda = await aws.get('lambda');
  await lambda.client.send(new lambda.sdk.CreateFunctionCommand({ FunctionName: 'legacy-ingest', Runtime: 'nodejs20.x', Role: role.Role!.Arn!, Handler: 'index.handler', Code: { ZipFile: EMPTY_ZIP }, Tags: { 'iotctl:managed': 'true' } }));

  writeFileSync(join(fleet.dir, 'iotctl.yaml'), FLEET_HEAD + 'streams:\n  - { name: legacy-telemetry, shards: 1 }\n');
  const plan = await run(fleet, 'apply', '--dry-run', '--prune');
  assert.is(plan.code, 0, plan.stderr);
  assert.match(
    plan.out,
    /~ stream legacy-telemetry \(iotctl-fleet-default--legacy-telemetry\)\n\s+physicalName: "legacy-telemetry" -> "iotctl-fleet-default--legacy-telemetry"\n\s+tags: \(unset\) -> \{"iotctl:managed":"true","iotctl:project":"fleet","iotctl:stage":"default"\}/,
    plan.out,
  );
  assert.not.match(plan.out, /- (stream|function) legacy/);
  const r = await run(fleet, 'apply', '--yes', '--prune');
  assert.is(r.code, 0, r.out);
  // Kept beside the new one (its records may not be read yet), with the tags the plan showed.
  assert.equal(await streamTags('legacy-telemetry'), { 'iotctl:managed': 'true', 'iotctl:project': 'fleet', 'iotctl:stage': 'default' });
  assert.ok(await exists('stream', FLEET.stream('legacy-telemetry')));
  const again = await run(fleet, 'apply', '--dry-run');
  assert.match(again.out, /No changes/, again.out);

  // The old function: listed under its old name for the spec that declares it (the plan moves it); the
  // scoped one is deployed, then the old one goes with the role the older iotctl made for it.
  const fns = new AwsFunctions(aws, { project: 'fleet', pollMs: 5 });
  assert.equal((await fns.list()).map((f) => f.name), [], 'not listed unless the spec declares it');
  const listed = await fns.list({ desired: ['legacy-ingest'] });
  assert.equal(listed.map((f) => [f.name, f.physicalName, f.adopt, f.retired]), [['legacy-ingest', 'legacy-ingest', undefined, undefined]]);
  assert.is(await fns.deploy(deployment('legacy-ingest')), 'created');
  const moved = await fns.list({ desired: ['legacy-ingest'] });
  assert.equal(moved.map((f) => [f.physicalName, f.retired]).sort(), [[FLEET.function('legacy-ingest'), undefined], ['legacy-ingest', true]]);
  assert.is(await fns.remove('legacy-ingest', 'legacy-ingest'), true);
  assert.not.ok(await exists('function', 'legacy-ingest'));
  assert.not.ok(await exists('role', 'iotctl-fn-legacy-ingest'));
  assert.ok(await exists('function', FLEET.function('legacy-ingest')));
});

test('in aws-cn every ARN iotctl writes is in the aws-cn partition (device policy, rule role, rule actions)', async () => {
  const cn = makeProject('project: cnproj\ntarget: aws\nregion: cn-north-1\ndevices:\n  policy: { name: cn-device }\nstreams:\n  - { name: cn-telemetry, shards: 1 }\nrules:\n  - name: cn_to_stream\n    sql: SELECT * FROM \'dt/#\'\n    actions:\n      - kinesis: { stream: cn-telemetry }\n');
  try {
    const r = await cli(['apply', '--yes'], { cwd: cn.dir, env: { ...moto.env, ...NO_DB, AWS_REGION: 'cn-north-1' }, timeoutMs: 120_000 });
    assert.is(r.code, 0, r.stdout + r.stderr);
    const again = await cli(['apply', '--dry-run'], { cwd: cn.dir, env: { ...moto.env, ...NO_DB, AWS_REGION: 'cn-north-1' }, timeoutMs: 120_000 });
    assert.match(again.stdout + again.stderr, /No changes/, 'the policy read back in aws-cn compares equal');
    const regional = new AwsClients({ region: 'cn-north-1' });
    try {
      const iot = await regional.get('iot');
      const policy = (await iot.client.send(new iot.sdk.GetPolicyCommand({ policyName: 'iotctl-cnproj-default--cn-device' }))).policyDocument!;
      assert.not.ok(policy.includes('arn:aws:'), policy);
      assert.match(policy, /arn:aws-cn:iot:/);
      const rule = (await iot.client.send(new iot.sdk.GetTopicRuleCommand({ ruleName: 'iotctl_cnproj_default__cn_to_stream' }))).rule!;
      assert.match(rule.actions![0]!.kinesis!.roleArn!, /^arn:aws-cn:iam::123456789012:role\/iotctl\/cnproj\/default\/iotctl-cnproj-default--rule-cn_to_stream$/);
      const iam = await regional.get('iam');
      const doc = decodeURIComponent((await iam.client.send(new iam.sdk.GetRolePolicyCommand({ RoleName: 'iotctl-cnproj-default--rule-cn_to_stream', PolicyName: 'rule-actions' }))).PolicyDocument!);
      assert.match(doc, /arn:aws-cn:kinesis:cn-north-1:123456789012:stream\/iotctl-cnproj-default--cn-telemetry/);
      assert.not.ok(doc.includes('arn:aws:'), doc);
    } finally {
      regional.destroy();
    }
  } finally {
    cn.cleanup();
  }
});

test.run();
