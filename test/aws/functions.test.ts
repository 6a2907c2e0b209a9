import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';
import { AwsClients, type ServiceName } from '../../src/targets/aws/sdk.js';
import { AwsFunctions, zipArtifact } from '../../src/targets/aws/functions.js';
import { ensureDatabaseSecret } from '../../src/targets/aws/secrets.js';
import { databaseSecretName, stageNames } from '../../src/targets/aws/naming.js';
import { bundleTemplate } from '../../src/services/bundle.js';
import { functionConfig } from '../../src/services/functions.js';
import type { FunctionArtifact, FunctionDeployment } from '../../src/ports.js';

/**
 * AwsFunctions against moto_server: real Lambda, IAM, Kinesis, SQS, CloudWatch Logs and Secrets Manager
 * APIs. Invoke (moto needs Docker for it) and slow state transitions are in functions-fake.test.ts.
 */

let moto: Moto;
let restore: () => void;
let aws: AwsClients;
let fns: AwsFunctions;
let dir: string;
let artifact: FunctionArtifact;
/** Every command each client sent, by service: a spy on client.send. */
const calls: string[] = [];

const ACCOUNT = '123456789012';
/** The names the adapter gives project demo's default stage (naming.ts). */
const NAMES = stageNames({ project: 'demo', stage: 'default' });
const FN = NAMES.function('ingest');
const ROLE = NAMES.functionRole('ingest');
const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/iotctl/demo/default/${ROLE}`;
const QUEUE_ARN = `arn:aws:sqs:us-east-1:${ACCOUNT}:ingest-failures`;
const STREAM_ARN = `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${NAMES.stream('telemetry')}`;

function deployment(over: Partial<FunctionDeployment> = {}): FunctionDeployment {
  return {
    name: 'ingest',
    template: 'ingest-rds',
    handler: 'handler',
    timeoutSeconds: 60,
    memoryMb: 256,
    environment: { DATABASE_URL: 'postgres://iot:s3cret-pw@db.example.com:5432/telemetry?sslmode=verify-full', AUTO_MIGRATE: 'true', LOG_LEVEL: '' },
    eventSource: {
      stream: 'telemetry',
      batchSize: 500,
      maximumBatchingWindowSeconds: 1,
      startingPosition: 'TRIM_HORIZON',
      maximumRetryAttempts: 3,
      maximumRecordAgeInSeconds: 3600,
      bisectBatchOnFunctionError: true,
      reportBatchItemFailures: true,
      onFailure: QUEUE_ARN,
    },
    artifact,
    ...over,
  };
}

async function spy(service: ServiceName): Promise<void> {
  const { client } = await aws.get(service);
  const c = client as unknown as { send: (cmd: { constructor: { name: string } }, o?: unknown) => Promise<unknown> };
  const send = c.send.bind(c);
  c.send = (cmd, o) => {
    calls.push(`${service}:${cmd.constructor.name.replace(/Command$/, '')}`);
    return send(cmd, o);
  };
}

const writes = () => calls.filter((c) => /:(Create|Update|Put|Tag|Delete|Untag|Attach|Detach)/.test(c));

test.before(async () => {
  moto = await startMoto();
  restore = useEnv(moto.env);
  aws = new AwsClients({});
  fns = new AwsFunctions(aws, { project: 'demo', pollMs: 5, followMs: 50 });
  for (const s of ['lambda', 'iam', 'secrets', 'logs', 'sqs'] as const) await spy(s);
  dir = mkdtempSync(join(tmpdir(), 'iotctl-awsfn-'));
  const built = await bundleTemplate('ingest-rds', join(dir, 'bundle'));
  artifact = { dir: join(dir, 'bundle'), entry: 'index.js', sha256: built.sha256, bytes: built.bytes };
  const kinesis = await aws.get('kinesis');
  await kinesis.client.send(new kinesis.sdk.CreateStreamCommand({ StreamName: NAMES.stream('telemetry'), ShardCount: 1 }));
  const sqs = await aws.get('sqs');
  await sqs.client.send(new sqs.sdk.CreateQueueCommand({ QueueName: 'ingest-failures' }));
});

test.after(async () => {
  aws?.destroy();
  restore?.();
  await moto?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the zip is deterministic: same bundle, same bytes, same CodeSha256', async () => {
  const a = await zipArtifact(artifact.dir);
  const b = await zipArtifact(artifact.dir);
  assert.equal(Buffer.from(a.zip), Buffer.from(b.zip));
  assert.is(a.codeSha256, createHash('sha256').update(a.zip).digest('base64'));
});

test('deploy creates the function, its least-privilege role, the secret and the mapping', async () => {
  const steps: string[] = [];
  assert.is(await fns.deploy(deployment(), (s) => steps.push(s)), 'created');
  assert.ok(steps.includes('create the function') && steps.includes('wait until active'), steps.join(','));

  const { client, sdk } = await aws.get('lambda');
  const fn = await client.send(new sdk.GetFunctionCommand({ FunctionName: FN }));
  const c = fn.Configuration!;
  assert.is(c.Runtime, 'nodejs22.x');
  assert.is(c.Handler, 'index.handler');
  assert.is(c.MemorySize, 256);
  assert.is(c.Timeout, 60);
  assert.is(c.FunctionName, 'iotctl-demo-default--ingest');
  assert.is(c.Role, ROLE_ARN);
  assert.is(c.CodeSha256, (await zipArtifact(artifact.dir)).codeSha256);
  assert.equal(fn.Tags, { 'iotctl:managed': 'true', 'iotctl:project': 'demo', 'iotctl:stage': 'default', 'iotctl:template': 'ingest-rds', 'iotctl:sha256': artifact.sha256, 'iotctl:code-sha256': c.CodeSha256, 'iotctl:stream': 'telemetry' });
  // The URL went into Secrets Manager; the empty placeholder was dropped; no password anywhere.
  const vars = c.Environment!.Variables!;
  assert.equal(Object.keys(vars).sort(), ['AUTO_MIGRATE', 'DATABASE_SECRET_ARN']);
  assert.match(vars.DATABASE_SECRET_ARN!, /^arn:aws:secretsmanager:us-east-1:123456789012:secret:iotctl\/demo\/database-/);
  assert.not.match(JSON.stringify(fn), /s3cret-pw/);

  const secrets = await aws.get('secrets');
  const secret = await secrets.client.send(new secrets.sdk.GetSecretValueCommand({ SecretId: vars.DATABASE_SECRET_ARN }));
  assert.equal(JSON.parse(secret.SecretString!), { username: 'iot', password: 's3cret-pw', host: 'db.example.com', port: 5432, dbname: 'telemetry', engine: 'postgres', sslmode: 'verify-full' });

  const iam = await aws.get('iam');
  const role = await iam.client.send(new iam.sdk.GetRoleCommand({ RoleName: ROLE }));
  assert.match(decodeURIComponent(role.Role!.AssumeRolePolicyDocument!), /lambda\.amazonaws\.com/);
  const policy = JSON.parse(decodeURIComponent((await iam.client.send(new iam.sdk.GetRolePolicyCommand({ RoleName: ROLE, PolicyName: 'iotctl-function' }))).PolicyDocument!)) as {
    Statement: Array<{ Sid: string; Action: string[]; Resource: string }>;
  };
  const bySid = Object.fromEntries(policy.Statement.map((s) => [s.Sid, s]));
  assert.is(bySid.ReadStream!.Resource, STREAM_ARN);
  assert.ok(bySid.ReadStream!.Action.includes('kinesis:GetRecords'));
  assert.is(bySid.DatabaseSecret!.Resource, vars.DATABASE_SECRET_ARN);
  assert.equal(bySid.OnFailureDestination!.Action, ['sqs:SendMessage']);
  assert.is(bySid.OnFailureDestination!.Resource, QUEUE_ARN);
  assert.is(bySid.LogEvents!.Resource, `arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/aws/lambda/${FN}:*`);
  assert.is(bySid.VpcNetworkInterfaces, undefined, 'no ENI rights without a VPC');

  const m = (await client.send(new sdk.ListEventSourceMappingsCommand({ FunctionName: FN }))).EventSourceMappings!;
  assert.is(m.length, 1);
  assert.is(m[0]!.EventSourceArn, STREAM_ARN);
  assert.is(m[0]!.BatchSize, 500);
  assert.is(m[0]!.MaximumBatchingWindowInSeconds, 1);
  assert.is(m[0]!.StartingPosition, 'TRIM_HORIZON');
  assert.is(m[0]!.BisectBatchOnFunctionError, true);
  assert.is(m[0]!.MaximumRetryAttempts, 3);
  assert.is(m[0]!.MaximumRecordAgeInSeconds, 3600);
  assert.equal(m[0]!.FunctionResponseTypes, ['ReportBatchItemFailures']);
  assert.is(m[0]!.DestinationConfig?.OnFailure?.Destination, QUEUE_ARN);
});

test('a second deploy of the same bundle and settings is a no-op: no write call at all', async () => {
  calls.length = 0;
  assert.is(await fns.deploy(deployment()), 'unchanged');
  assert.equal(writes(), []);
  assert.ok(calls.includes('lambda:GetFunction'), calls.join(','));
});

test('a new database password updates the secret only; the function keeps the same secret ARN', async () => {
  const d = deployment();
  calls.length = 0;
  assert.is(await fns.deploy({ ...d, environment: { ...d.environment, DATABASE_URL: d.environment.DATABASE_URL!.replace('s3cret-pw', 'n3w-pw') } }), 'updated');
  assert.equal(writes(), ['secrets:PutSecretValue']);
  calls.length = 0;
  assert.is(await fns.deploy(d), 'updated');
  assert.equal(writes(), ['secrets:PutSecretValue']);
});

test('a configuration change updates the configuration only; a code change updates the code', async () => {
  calls.length = 0;
  const vpc = { subnetIds: ['subnet-b', 'subnet-a'], securityGroupIds: ['sg-1'] };
  assert.is(await fns.deploy(deployment({ memoryMb: 512, vpc })), 'updated');
  assert.equal(writes(), ['iam:PutRolePolicy', 'lambda:UpdateFunctionConfiguration']);
  const { client, sdk } = await aws.get('lambda');
  const c = await client.send(new sdk.GetFunctionConfigurationCommand({ FunctionName: FN }));
  assert.is(c.MemorySize, 512);
  assert.equal(c.VpcConfig?.SubnetIds, ['subnet-a', 'subnet-b']);
  const iam = await aws.get('iam');
  const doc = decodeURIComponent((await iam.client.send(new iam.sdk.GetRolePolicyCommand({ RoleName: ROLE, PolicyName: 'iotctl-function' }))).PolicyDocument!);
  assert.match(doc, /ec2:CreateNetworkInterface/);

  // The same again is unchanged (subnet order does not matter).
  calls.length = 0;
  assert.is(await fns.deploy(deployment({ memoryMb: 512, vpc: { subnetIds: ['subnet-a', 'subnet-b'], securityGroupIds: ['sg-1'] } })), 'unchanged');
  assert.equal(writes(), []);

  // New code: a different bundle.
  const other = join(dir, 'bundle2');
  mkdirSync(other);
  writeFileSync(join(other, 'index.js'), 'exports.handler = async () => ({ batchItemFailures: [] });\n');
  calls.length = 0;
  assert.is(await fns.deploy(deployment({ memoryMb: 512, vpc, artifact: { dir: other, entry: 'index.js', sha256: 'f'.repeat(64), bytes: 60 } })), 'updated');
  assert.equal(writes(), ['lambda:UpdateFunctionCode', 'lambda:TagResource']);
  const after = await client.send(new sdk.GetFunctionCommand({ FunctionName: FN }));
  assert.is(after.Configuration!.CodeSha256, (await zipArtifact(other)).codeSha256);
  assert.is(after.Tags!['iotctl:sha256'], 'f'.repeat(64));

  // Back to the spec's settings and bundle.
  assert.is(await fns.deploy(deployment()), 'updated');
});

test('a runtime set in the spec (nodejs24.x) updates the configuration, reads back, and shows in the plan', async () => {
  calls.length = 0;
  assert.is(await fns.deploy(deployment({ runtime: 'nodejs24.x' })), 'updated');
  assert.equal(writes().filter((w) => w.startsWith('lambda:')), ['lambda:UpdateFunctionConfiguration']);
  const { client, sdk } = await aws.get('lambda');
  assert.is((await client.send(new sdk.GetFunctionConfigurationCommand({ FunctionName: FN }))).Runtime, 'nodejs24.x');
  const read = (await fns.get('ingest'))!;
  assert.is(read.runtime, 'nodejs24.x');
  assert.is(functionConfig(read).runtime, 'nodejs24.x', 'a runtime other than the default is compared by plans');
  assert.is(await fns.deploy(deployment({ runtime: 'nodejs24.x' })), 'unchanged');
  // Back to the default.
  assert.is(await fns.deploy(deployment()), 'updated');
  assert.is((await client.send(new sdk.GetFunctionConfigurationCommand({ FunctionName: FN }))).Runtime, 'nodejs22.x');
  assert.is(functionConfig((await fns.get('ingest'))!).runtime, undefined, 'the default runtime stays out of plans');
});

test('a mapping change updates the mapping only', async () => {
  calls.length = 0;
  const d = deployment();
  assert.is(await fns.deploy({ ...d, eventSource: { ...d.eventSource!, batchSize: 100, bisectBatchOnFunctionError: false } }), 'updated');
  assert.equal(writes(), ['lambda:UpdateEventSourceMapping']);
  const [m] = await fns.mappings('ingest');
  assert.is(m!.batchSize, 100);
  assert.is(await fns.deploy(d), 'updated');
  assert.is((await fns.mappings('ingest'))[0]!.batchSize, 500);
});

test('list, get and mappings read back what was deployed', async () => {
  // A function iotctl did not deploy is not listed.
  const { client, sdk } = await aws.get('lambda');
  await client.send(
    new sdk.CreateFunctionCommand({ FunctionName: 'someone-elses', Runtime: 'nodejs22.x', Handler: 'index.handler', Role: ROLE_ARN, Code: { ZipFile: (await zipArtifact(artifact.dir)).zip } }),
  );
  const list = await fns.list();
  assert.equal(
    list.map((f) => f.name),
    ['ingest'],
  );
  const got = await fns.get('ingest');
  assert.ok(got);
  assert.is(got!.template, 'ingest-rds');
  assert.is(got!.handler, 'handler');
  assert.is(got!.sha256, artifact.sha256);
  assert.is(got!.memoryMb, 256);
  assert.is(got!.state, 'Active');
  assert.equal(got!.eventSource, deployment().eventSource);
  assert.equal(list[0], got);
  assert.is(got!.physicalName, FN);
  assert.is(await fns.get('missing'), undefined);

  const mappings = await fns.mappings();
  const mine = mappings.filter((m) => m.functionName === 'ingest');
  assert.is(mine.length, 1);
  assert.equal({ ...mine[0], uuid: 'x' }, { uuid: 'x', functionName: 'ingest', stream: 'telemetry', state: 'Enabled', batchSize: 500, startingPosition: 'TRIM_HORIZON' });
  await client.send(new sdk.DeleteFunctionCommand({ FunctionName: 'someone-elses' }));
});

test('logs: FilterLogEvents on /aws/lambda/<name>, parsed; --follow picks up new events once', async () => {
  const { client, sdk } = await aws.get('logs');
  const logGroupName = `/aws/lambda/${FN}`;
  await client.send(new sdk.CreateLogGroupCommand({ logGroupName }));
  await client.send(new sdk.CreateLogStreamCommand({ logGroupName, logStreamName: 's1' }));
  const id = '6f1b2c3d-1111-4222-8333-444455556666';
  const t0 = Date.now() - 60_000;
  await client.send(
    new sdk.PutLogEventsCommand({
      logGroupName,
      logStreamName: 's1',
      logEvents: [
        { timestamp: t0, message: `START RequestId: ${id} Version: $LATEST\n` },
        { timestamp: t0 + 1, message: `2024-05-01T10:00:00.000Z\t${id}\tERROR\t{"level":"error","message":"batch not written"}\n` },
        { timestamp: t0 + 2, message: `END RequestId: ${id}\n` },
        { timestamp: t0 + 3, message: `REPORT RequestId: ${id}\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 256 MB\tMax Memory Used: 80 MB\n` },
      ],
    }),
  );
  const events = [];
  for await (const e of fns.logs('ingest', {})) events.push(e);
  assert.equal(
    events.map((e) => [e.level, e.requestId, e.timestamp]),
    [
      ['START', id, t0],
      ['ERROR', id, t0 + 1],
      ['END', id, t0 + 2],
      ['REPORT', id, t0 + 3],
    ],
  );
  assert.is(events[1]!.message, '{"level":"error","message":"batch not written"}');
  assert.is(events[0]!.functionName, 'ingest');

  const limited = [];
  for await (const e of fns.logs('ingest', { since: t0 + 1, limit: 2 })) limited.push(e.level);
  assert.equal(limited, ['ERROR', 'END']);

  // Follow: the existing events once, then a new one, no duplicates, until the signal aborts.
  const ac = new AbortController();
  const seen: string[] = [];
  const following = (async () => {
    for await (const e of fns.logs('ingest', { since: t0, follow: true, signal: ac.signal })) {
      seen.push(e.level);
      if (seen.length === 4)
        await client.send(new sdk.PutLogEventsCommand({ logGroupName, logStreamName: 's1', logEvents: [{ timestamp: t0 + 3, message: `2024-05-01T10:00:01.000Z\t${id}\tWARN\tlate, same ms\n` }] }));
      if (seen.length === 5) ac.abort();
    }
  })();
  await Promise.race([following, new Promise((_, reject) => setTimeout(() => reject(new Error(`follow saw ${seen.join(',')}`)), 5_000))]);
  assert.equal(seen, ['START', 'ERROR', 'END', 'REPORT', 'WARN']);

  const none = [];
  for await (const e of fns.logs('never-ran', {})) none.push(e);
  assert.equal(none, []);
});

test('failures: the on-failure queue read without deleting (records stay for the next reader)', async () => {
  const sqs = await aws.get('sqs');
  const { QueueUrl } = await sqs.client.send(new sqs.sdk.GetQueueUrlCommand({ QueueName: 'ingest-failures' }));
  for (let i = 0; i < 3; i++) {
    const body = {
      requestContext: { requestId: `r${i}`, functionArn: `arn:aws:lambda:us-east-1:${ACCOUNT}:function:ingest`, condition: 'RetryAttemptsExhausted', approximateInvokeCount: 4 },
      version: '1.0',
      timestamp: `2024-05-01T10:0${i}:00.000Z`,
      KinesisBatchInfo: { shardId: 'shardId-000000000000', startSequenceNumber: `${i}`, endSequenceNumber: `${i}`, batchSize: 1, streamArn: STREAM_ARN },
    };
    await sqs.client.send(new sqs.sdk.SendMessageCommand({ QueueUrl, MessageBody: JSON.stringify(body) }));
  }
  const first = await fns.failures('ingest', {});
  assert.is(first.length, 3);
  assert.equal(
    first.map((f) => [f.createdAt, (f.record.requestContext as { requestId: string }).requestId, f.destination, f.functionName]),
    [0, 1, 2].map((i) => [`2024-05-01T10:0${i}:00.000Z`, `r${i}`, QUEUE_ARN, 'ingest']),
  );
  const again = await fns.failures('ingest', { limit: 2 });
  assert.is(again.length, 2);
  const attrs = await sqs.client.send(new sqs.sdk.GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
  assert.is(attrs.Attributes!.ApproximateNumberOfMessages, '3');
  assert.ok(!calls.some((c) => c === 'sqs:DeleteMessage' || c === 'sqs:DeleteMessageBatch'));
});

test('remove deletes the mapping, the function and the role iotctl created; the second time it is false', async () => {
  assert.is(await fns.remove('ingest'), true);
  const { client, sdk } = await aws.get('lambda');
  assert.equal((await client.send(new sdk.ListEventSourceMappingsCommand({}))).EventSourceMappings ?? [], []);
  assert.is(await fns.get('ingest'), undefined);
  const iam = await aws.get('iam');
  const roles = (await iam.client.send(new iam.sdk.ListRolesCommand({}))).Roles ?? [];
  assert.ok(!roles.some((r) => r.RoleName === ROLE));
  assert.is(await fns.remove('ingest'), false);
});

test('a given role is used as is, and remove leaves it alone', async () => {
  const iam = await aws.get('iam');
  const role = await iam.client.send(
    new iam.sdk.CreateRoleCommand({ RoleName: 'ops-lambda', AssumeRolePolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }] }) }),
  );
  calls.length = 0;
  assert.is(await fns.deploy(deployment({ name: 'ingest2', roleArn: role.Role!.Arn, eventSource: undefined })), 'created');
  assert.ok(!calls.some((c) => c.startsWith('iam:')), calls.join(','));
  assert.equal(await fns.mappings('ingest2'), []);
  assert.is(await fns.remove('ingest2'), true);
  // Switching a function from its own role to a given one deletes the role iotctl had made for it.
  assert.is(await fns.deploy(deployment({ name: 'ingest3', eventSource: undefined })), 'created');
  await iam.client.send(new iam.sdk.GetRoleCommand({ RoleName: NAMES.functionRole('ingest3') }));
  assert.is(await fns.deploy(deployment({ name: 'ingest3', roleArn: role.Role!.Arn, eventSource: undefined })), 'updated');
  const roles = (await iam.client.send(new iam.sdk.ListRolesCommand({}))).Roles ?? [];
  assert.ok(!roles.some((r) => r.RoleName === NAMES.functionRole('ingest3')));
  assert.is(await fns.remove('ingest3'), true);
  const still = await iam.client.send(new iam.sdk.GetRoleCommand({ RoleName: 'ops-lambda' }));
  assert.is(still.Role!.RoleName, 'ops-lambda');
});

test('a bare onFailure names a queue iotctl keeps for the stage: created tagged, read back by its name, removed with its function; anyone else\'s refused', async () => {
  const sqs = await aws.get('sqs');
  const queue = NAMES.queue('alerts');
  const d = deployment({ name: 'ingest4', environment: { AUTO_MIGRATE: 'true' } });
  assert.is(await fns.deploy({ ...d, eventSource: { ...d.eventSource!, onFailure: 'alerts' } }), 'created');
  const { QueueUrl } = await sqs.client.send(new sqs.sdk.GetQueueUrlCommand({ QueueName: queue }));
  assert.equal((await sqs.client.send(new sqs.sdk.ListQueueTagsCommand({ QueueUrl }))).Tags, { 'iotctl:managed': 'true', 'iotctl:project': 'demo', 'iotctl:stage': 'default' });
  assert.is((await fns.get('ingest4'))!.eventSource!.onFailure, 'alerts');
  const iam = await aws.get('iam');
  const doc = decodeURIComponent((await iam.client.send(new iam.sdk.GetRolePolicyCommand({ RoleName: NAMES.functionRole('ingest4'), PolicyName: 'iotctl-function' }))).PolicyDocument!);
  assert.ok(doc.includes(`arn:aws:sqs:us-east-1:${ACCOUNT}:${queue}`), doc);
  calls.length = 0;
  assert.is(await fns.deploy({ ...d, eventSource: { ...d.eventSource!, onFailure: 'alerts' } }), 'unchanged');
  assert.equal(writes(), []);
  assert.is(await fns.remove('ingest4'), true);
  const gone = await sqs.client.send(new sqs.sdk.GetQueueUrlCommand({ QueueName: queue })).then(() => false, () => true);
  assert.ok(gone, 'the queue went with its function');

  // The stage's queue name held by someone else's queue: refused before any write.
  await sqs.client.send(new sqs.sdk.CreateQueueCommand({ QueueName: NAMES.queue('theirs'), tags: { team: 'payments' } }));
  calls.length = 0;
  const err = await fns.deploy({ ...d, name: 'ingest5', eventSource: { ...d.eventSource!, onFailure: 'theirs' } }).then(() => undefined, (e: Error) => e);
  assert.match(String(err?.message), /SQS queue iotctl-demo-default--theirs already exists/);
  assert.equal(writes(), []);
});

test('the database secret: created once, unchanged without a write, updated when the URL changes', async () => {
  calls.length = 0;
  const url = 'postgres://app:pw1@db.internal:6432/iot';
  const a = await ensureDatabaseSecret(aws, 'other', url);
  assert.is(a.result, 'created');
  const b = await ensureDatabaseSecret(aws, 'other', url);
  assert.equal(b, { arn: a.arn, result: 'unchanged' });
  assert.equal(
    calls.filter((c) => c.startsWith('secrets:')),
    ['secrets:GetSecretValue', 'secrets:CreateSecret', 'secrets:GetSecretValue'],
  );
  const c = await ensureDatabaseSecret(aws, 'other', 'postgres://app:pw2@db.internal:6432/iot');
  assert.equal(c, { arn: a.arn, result: 'updated' });
  const secrets = await aws.get('secrets');
  const v = await secrets.client.send(new secrets.sdk.GetSecretValueCommand({ SecretId: databaseSecretName('other', 'default') }));
  assert.equal(JSON.parse(v.SecretString!), { username: 'app', password: 'pw2', host: 'db.internal', port: 6432, dbname: 'iot', engine: 'postgres' });
});

test('a password given directly in the environment is refused before any write', async () => {
  calls.length = 0;
  await fns.deploy(deployment({ name: 'leaky', environment: { PGPASSWORD: 'x' } })).then(
    () => assert.unreachable('should refuse'),
    (e: Error & { code?: string }) => assert.match(e.message, /PGPASSWORD/),
  );
  // Any secret-looking variable, by name or by value, not only the two PostgreSQL ones; the value is never echoed.
  const leaks: Record<string, string>[] = [{ DB_PASSWORD: 'hunter2' }, { WEBHOOK: 'https://bot:hunter2@hooks.example.com/' }, { API_TOKEN: 'hunter2' }];
  for (const environment of leaks) {
    const e = (await fns.deploy(deployment({ name: 'leaky', environment })).then(() => undefined, (err: Error) => err)) as Error & { code?: string };
    assert.ok(e, 'refused');
    assert.is(e.code, 'PASSWORD_IN_ENV');
    assert.match(e.message, new RegExp(Object.keys(environment)[0]!));
    assert.not.match(e.message + ((e as { hint?: string }).hint ?? ''), /hunter2/);
  }
  assert.equal(writes(), []);
});

let tStart = 0;
test.before.each(() => { tStart = Date.now(); });
test.after.each((ctx) => { if (process.env.TEST_TIMING) console.error(`${Date.now() - tStart} ms  ${ctx.__test__}`); });
test.run();
