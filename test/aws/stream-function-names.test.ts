// Streams and functions under stage-scoped names, against moto_server: two stages of one spec and a second
// project in one account, each with its own stream, function, role and failure queue; other teams' resources
// never listed, planned or pruned; a same-named foreign one refused, then taken over with --adopt; a
// deployment of an older iotctl (bare names) moved without losing the stream's records.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bundleTemplate } from '../../src/services/bundle.js';
import { AwsFunctions } from '../../src/targets/aws/functions.js';
import { stageNames } from '../../src/targets/aws/naming.js';
import { ownerOf } from '../../src/targets/aws/ownership.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { AwsStreams } from '../../src/targets/aws/stream.js';
import { createTeamResources, EMPTY_ZIP, LAMBDA_TRUST } from '../helpers/foreign-resources.js';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';
import { cli, makeProject, NO_DB, type Project } from '../helpers/project.js';

const ACCOUNT = '123456789012';
/** Another team's resources beside the projects. */
const FOREIGN = ['payments-team-orders', 'payments-fn', 'payments-role', 'payments-queue'];
const OLD_TAGS = { 'iotctl:managed': 'true', 'iotctl:project': 'old', 'iotctl:stage': 'default' };

// pipeline-transform needs no database, so a second apply of the function is a no-op without one.
const FUNCTION = (project: string, extra = '') => `functions:
  - name: ingest
    template: pipeline-transform
    environment: { PIPELINE_NAME: main, IOTCTL_PROJECT: ${project}, IOTCTL_STAGE: x }
    eventSource: { stream: telemetry${extra} }
`;
const HEAD = (project: string) => `project: ${project}\ntarget: aws\nregion: us-east-1\n`;
const FLEET = `${HEAD('fleet')}streams:\n  - { name: telemetry, shards: 1 }\n${FUNCTION('fleet', ', onFailure: ingest-failures')}stages:\n  dev:\n  prod:\n`;

let moto: Moto;
let restore: () => void;
let aws: AwsClients;
let dir: string;
const projects: Project[] = [];

const run = async (p: Project, ...args: string[]) => {
  const r = await cli(args, { cwd: p.dir, env: { ...moto.env, ...NO_DB }, timeoutMs: 120_000 });
  return { ...r, out: r.stdout + r.stderr };
};
const project = (yaml: string) => {
  const p = makeProject(yaml);
  projects.push(p);
  return p;
};

async function exists(kind: 'stream' | 'function' | 'role' | 'queue', name: string): Promise<boolean> {
  const ok = () => true;
  const no = () => false;
  if (kind === 'stream') {
    const k = await aws.get('kinesis');
    return k.client.send(new k.sdk.DescribeStreamSummaryCommand({ StreamName: name })).then(ok, no);
  }
  if (kind === 'function') {
    const l = await aws.get('lambda');
    return l.client.send(new l.sdk.GetFunctionCommand({ FunctionName: name })).then(ok, no);
  }
  if (kind === 'role') {
    const i = await aws.get('iam');
    return i.client.send(new i.sdk.GetRoleCommand({ RoleName: name })).then(ok, no);
  }
  const q = await aws.get('sqs');
  return q.client.send(new q.sdk.GetQueueUrlCommand({ QueueName: name })).then(ok, no);
}

async function streamTags(name: string): Promise<Record<string, string>> {
  const k = await aws.get('kinesis');
  return Object.fromEntries(((await k.client.send(new k.sdk.ListTagsForStreamCommand({ StreamName: name }))).Tags ?? []).map((t) => [t.Key!, t.Value!]));
}

async function mappingOf(fn: string) {
  const l = await aws.get('lambda');
  return (await l.client.send(new l.sdk.ListEventSourceMappingsCommand({ FunctionName: fn }))).EventSourceMappings ?? [];
}

test.before(async () => {
  moto = await startMoto();
  restore = useEnv(moto.env);
  aws = new AwsClients({});
  dir = mkdtempSync(join(tmpdir(), 'iotctl-names-'));

  // Another team's stream, function, role and queue, made as their own tooling would.
  await createTeamResources(aws);
  const [k, iam, lambda] = [await aws.get('kinesis'), await aws.get('iam'), await aws.get('lambda')];

  // A deployment of project `old` by an older iotctl: bare names, tagged as that version tagged them, the
  // role at path `/` tagged with its function, a mapping on the bare stream, and a record not yet read.
  await k.client.send(new k.sdk.CreateStreamCommand({ StreamName: 'telemetry', ShardCount: 1 }));
  await k.client.send(new k.sdk.AddTagsToStreamCommand({ StreamName: 'telemetry', Tags: OLD_TAGS }));
  await k.client.send(new k.sdk.PutRecordCommand({ StreamName: 'telemetry', PartitionKey: 'd1', Data: Buffer.from('{"n":1}') }));
  const oldRole = await iam.client.send(
    new iam.sdk.CreateRoleCommand({ RoleName: 'iotctl-fn-ingest', AssumeRolePolicyDocument: LAMBDA_TRUST, Tags: [...Object.entries(OLD_TAGS).map(([Key, Value]) => ({ Key, Value })), { Key: 'iotctl:function', Value: 'ingest' }] }),
  );
  await iam.client.send(new iam.sdk.PutRolePolicyCommand({ RoleName: 'iotctl-fn-ingest', PolicyName: 'iotctl-function', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['kinesis:GetRecords'], Resource: '*' }] }) }));
  await lambda.client.send(
    new lambda.sdk.CreateFunctionCommand({ FunctionName: 'ingest', Runtime: 'nodejs20.x', Role: oldRole.Role!.Arn!, Handler: 'index.handler', Code: { ZipFile: EMPTY_ZIP }, Tags: { ...OLD_TAGS, 'iotctl:template': 'pipeline-transform' } }),
  );
  await lambda.client.send(new lambda.sdk.CreateEventSourceMappingCommand({ FunctionName: 'ingest', EventSourceArn: `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/telemetry`, StartingPosition: 'TRIM_HORIZON' }));
});

test.after(async () => {
  aws?.destroy();
  restore?.();
  await moto?.stop();
  for (const p of projects) p.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('two stages and a second project in one account: each its own stream, function, role and queue; no-op again; prune of one stage leaves the rest', async () => {
  const fleet = project(FLEET);
  for (const stage of ['dev', 'prod']) {
    const r = await run(fleet, 'apply', '--yes', '--stage', stage);
    assert.is(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`\\+ stream telemetry \\(iotctl-fleet-${stage}--telemetry\\)`));
    assert.match(r.out, new RegExp(`\\+ function ingest \\(iotctl-fleet-${stage}--ingest\\)`));
  }
  // Project fleet2, the same logical names, through the adapters.
  const names2 = stageNames({ project: 'fleet2', stage: 'default' });
  const built = await bundleTemplate('pipeline-transform', join(dir, 'bundle'));
  await new AwsStreams(aws, { owner: ownerOf('fleet2'), physical: names2.stream }).ensure({ name: 'telemetry', shards: 1, retentionHours: 24 });
  const fns2 = new AwsFunctions(aws, { project: 'fleet2', names: names2, pollMs: 5 });
  const es = { stream: 'telemetry', batchSize: 100, maximumBatchingWindowSeconds: 0, startingPosition: 'TRIM_HORIZON' as const, maximumRetryAttempts: -1, maximumRecordAgeInSeconds: -1, bisectBatchOnFunctionError: false, reportBatchItemFailures: false };
  await fns2.deploy({ name: 'ingest', template: 'pipeline-transform', handler: 'handler', timeoutSeconds: 60, memoryMb: 512, environment: {}, eventSource: es, artifact: { dir: join(dir, 'bundle'), entry: 'index.js', sha256: built.sha256, bytes: built.bytes } });

  const iam = await aws.get('iam');
  for (const stage of ['dev', 'prod']) {
    const other = stage === 'dev' ? 'prod' : 'dev';
    const stream = `iotctl-fleet-${stage}--telemetry`;
    const fn = `iotctl-fleet-${stage}--ingest`;
    const roleName = `iotctl-fleet-${stage}--fn-ingest`;
    assert.equal(await streamTags(stream), { 'iotctl:managed': 'true', 'iotctl:project': 'fleet', 'iotctl:stage': stage });
    const role = (await iam.client.send(new iam.sdk.GetRoleCommand({ RoleName: roleName }))).Role!;
    assert.is(role.Path, `/iotctl/fleet/${stage}/`);
    // The mapping reads this stage's stream and sends failures to this stage's queue; the role grants only those.
    const [m, ...more] = await mappingOf(fn);
    assert.is(more.length, 0);
    assert.is(m!.EventSourceArn, `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${stream}`);
    assert.is(m!.DestinationConfig?.OnFailure?.Destination, `arn:aws:sqs:us-east-1:${ACCOUNT}:iotctl-fleet-${stage}--ingest-failures`);
    assert.ok(await exists('queue', `iotctl-fleet-${stage}--ingest-failures`));
    const policy = decodeURIComponent((await iam.client.send(new iam.sdk.GetRolePolicyCommand({ RoleName: roleName, PolicyName: 'iotctl-function' }))).PolicyDocument!);
    assert.ok(policy.includes(`stream/${stream}"`) && policy.includes(`:iotctl-fleet-${stage}--ingest-failures"`), policy);
    assert.not.ok(policy.includes(`fleet-${other}`) || policy.includes('fleet2') || policy.includes('stream/telemetry"'), policy);
  }
  assert.is((await mappingOf('iotctl-fleet2-default--ingest'))[0]!.EventSourceArn, `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/iotctl-fleet2-default--telemetry`);
  // Project old's bare `telemetry` and `ingest` are not fleet's: left as they were.
  assert.equal(await streamTags('telemetry'), OLD_TAGS);

  const again = await run(fleet, 'apply', '--dry-run', '--prune', '--stage', 'dev');
  assert.is(again.code, 0, again.out);
  assert.match(again.out, /No changes/, again.out);
  for (const name of [...FOREIGN, 'iotctl-fleet-prod', 'fleet2', 'iotctl-fn-ingest']) assert.not.ok(again.out.includes(name), `${name} in dev's plan:\n${again.out}`);
  const status = await run(fleet, 'status', '--json', '--stage', 'prod');
  assert.is(status.code, 0, status.out);
  assert.match(status.stdout, /iotctl-fleet-prod--telemetry/);
  for (const name of [...FOREIGN, 'iotctl-fleet-dev', 'fleet2', 'iotctl-fn-ingest']) assert.not.ok(status.stdout.includes(name), `${name} in prod's status`);
  // Callers (commands) keep naming the logical stream.
  const prod = stageNames({ project: 'fleet', stage: 'prod' });
  const described = await new AwsStreams(aws, { owner: ownerOf('fleet', 'prod'), physical: prod.stream }).describe('telemetry');
  assert.equal([described.name, described.physicalName], ['telemetry', 'iotctl-fleet-prod--telemetry']);

  writeFileSync(fleet.specFile, `${HEAD('fleet')}stages:\n  dev:\n  prod:\n`);
  const pruned = await run(fleet, 'apply', '--yes', '--prune', '--stage', 'dev');
  assert.is(pruned.code, 0, pruned.out);
  for (const [kind, name] of [['stream', 'iotctl-fleet-dev--telemetry'], ['function', 'iotctl-fleet-dev--ingest'], ['role', 'iotctl-fleet-dev--fn-ingest'], ['queue', 'iotctl-fleet-dev--ingest-failures']] as const)
    assert.not.ok(await exists(kind, name), `dev's ${kind} ${name} is still there`);
  for (const [kind, name] of [
    ['stream', 'iotctl-fleet-prod--telemetry'],
    ['function', 'iotctl-fleet-prod--ingest'],
    ['role', 'iotctl-fleet-prod--fn-ingest'],
    ['queue', 'iotctl-fleet-prod--ingest-failures'],
    ['stream', 'iotctl-fleet2-default--telemetry'],
    ['function', 'iotctl-fleet2-default--ingest'],
    ['stream', 'payments-team-orders'],
    ['function', 'payments-fn'],
    ['role', 'payments-role'],
    ['queue', 'payments-queue'],
    ['stream', 'telemetry'],
    ['function', 'ingest'],
  ] as const)
    assert.ok(await exists(kind, name), `${kind} ${name} was pruned`);
});

test("an older iotctl's deployment moves to the stage's names: the stream is kept with its records until a later --prune, the function and its role go", async () => {
  const old = project(`${HEAD('old')}streams:\n  - { name: telemetry, shards: 1 }\n${FUNCTION('old')}`);
  const r = await run(old, 'apply', '--yes');
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /~ stream telemetry \(iotctl-old-default--telemetry\)\n\s+physicalName: "telemetry" -> "iotctl-old-default--telemetry"/, r.out);
  assert.match(r.out, /note: a new stream iotctl-old-default--telemetry is created; the old telemetry keeps its data/);
  assert.match(r.out, /~ function ingest \(iotctl-old-default--ingest\)/);
  assert.match(r.out, /- function ingest\n\s+note: renamed to iotctl-old-default--ingest/);
  assert.not.match(r.out, /- stream/);

  // The old stream still holds the record the old function had not read.
  const k = await aws.get('kinesis');
  const [shard] = (await k.client.send(new k.sdk.ListShardsCommand({ StreamName: 'telemetry' }))).Shards ?? [];
  const it = await k.client.send(new k.sdk.GetShardIteratorCommand({ StreamName: 'telemetry', ShardId: shard!.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }));
  const records = (await k.client.send(new k.sdk.GetRecordsCommand({ ShardIterator: it.ShardIterator! }))).Records ?? [];
  assert.equal(records.map((x) => Buffer.from(x.Data!).toString()), ['{"n":1}']);
  // The function moved with its mapping onto the new stream; the old function and its role are gone.
  assert.is((await mappingOf('iotctl-old-default--ingest'))[0]!.EventSourceArn, `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/iotctl-old-default--telemetry`);
  assert.not.ok(await exists('function', 'ingest'));
  assert.not.ok(await exists('role', 'iotctl-fn-ingest'));
  assert.ok(await exists('role', 'iotctl-old-default--fn-ingest'));

  // Nothing but the kept stream is left to do, and only --prune deletes it.
  const pruned = await run(old, 'apply', '--yes', '--prune');
  assert.is(pruned.code, 0, pruned.out);
  assert.match(pruned.out, /- stream telemetry\n\s+note: old name of stream telemetry, kept with its data by an earlier apply/, pruned.out);
  assert.match(pruned.out, /Plan: 0 to create, 0 to replace, 1 to delete\./, pruned.out);
  assert.not.ok(await exists('stream', 'telemetry'));
  assert.ok(await exists('stream', 'iotctl-old-default--telemetry'));
  const last = await run(old, 'apply', '--dry-run', '--prune');
  assert.match(last.out, /No changes/, last.out);
});

test("a same-named stream or function no iotctl deployment owns is refused; --adopt takes it over, and the next apply is a no-op", async () => {
  const hand = project(`${HEAD('hand')}streams:\n  - { name: orders, shards: 1, physicalName: payments-team-orders }\nfunctions:\n  - name: fn\n    physicalName: payments-fn\n    template: pipeline-transform\n    environment: { PIPELINE_NAME: main, IOTCTL_PROJECT: hand, IOTCTL_STAGE: x }\n`);
  const refused = await run(hand, 'apply', '--yes');
  assert.is(refused.code, 1, refused.out);
  assert.match(refused.stderr, /Kinesis stream payments-team-orders already exists.*no iotctl project/s);
  assert.match(refused.stderr, /--adopt/);
  assert.equal(await streamTags('payments-team-orders'), { team: 'payments' }, 'nothing written before the refusal');

  const adopted = await run(hand, 'apply', '--yes', '--adopt');
  assert.is(adopted.code, 0, adopted.out);
  assert.match(adopted.out, /~ stream orders \(payments-team-orders\)\n\s+tags: \(unset\) -> \{"iotctl:managed":"true","iotctl:project":"hand","iotctl:stage":"default"\}/, adopted.out);
  assert.match(adopted.out, /~ function fn \(payments-fn\)/);
  assert.equal(await streamTags('payments-team-orders'), { team: 'payments', 'iotctl:managed': 'true', 'iotctl:project': 'hand', 'iotctl:stage': 'default' });
  const l = await aws.get('lambda');
  assert.is((await l.client.send(new l.sdk.GetFunctionCommand({ FunctionName: 'payments-fn' }))).Tags?.['iotctl:project'], 'hand');
  const again = await run(hand, 'apply', '--dry-run', '--prune');
  assert.is(again.code, 0, again.out);
  assert.match(again.out, /No changes/, again.out);
  // Another project's resource is never adopted (now it is hand's).
  const thief = new AwsStreams(aws, { owner: ownerOf('thief', 'default', true), physical: () => 'payments-team-orders' });
  const stolen = await thief.list({ desired: ['orders'] }).then(() => undefined, (e: Error) => e);
  assert.match(String(stolen?.message), /iotctl project hand, stage default/);
});

test.run();
