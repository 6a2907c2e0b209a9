// `iotctl check` on the aws target against moto_server: the init spec applied by the built CLI, then the stage
// observers read moto where it serves (IoT rules, CloudWatch Logs, Kinesis GetRecords, Lambda mappings, SQS, S3,
// Firehose, Athena) and the real PostgreSQL. What moto cannot run is done by this file at the SDK/MQTT boundary:
// the canary's MQTT publish (an injected connector standing for AWS IoT Core), the rules' execution (it writes to
// Kinesis, S3 and the error log group what the rules would), and the ingest Lambda (the real template's handler,
// called here with the Kinesis event Lambda would build).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { cli, makeProject, type Project } from '../helpers/project.js';
import { freshDatabase } from '../helpers/pg.js';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';
import { initSpec } from '../../src/spec/init-template.js';
import { Context } from '../../src/context.js';
import { openTarget } from '../../src/targets/index.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { stageNames, stageDatalakeNames } from '../../src/targets/aws/naming.js';
import { runCheck, scheduleCheck, type CanaryConnector, type CheckReport, type CheckOptions } from '../../src/services/check.js';
import { checkNames } from '../../src/targets/aws/check-schedule.js';

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const NAMES = stageNames({ project: 'ck', stage: 'default' });
const STREAM = NAMES.stream('telemetry');
const LOG_GROUP = '/iotctl/ck/default/rule-errors';

let moto: Moto;
let project: Project;
let env: Record<string, string>;
let drop: (() => Promise<void>) | undefined;
let aws: AwsClients;
let restore: () => void;
let dir: string;

/** What the fake IoT Core and rules do with the canary's message (each test sets what it breaks). */
interface World {
  deny?: boolean;
  /** The stream rule fails: its error goes to the errorAction log group instead of Kinesis. */
  streamRuleError?: string;
  /** The ingest Lambda fails: Lambda's on-failure record goes to the mapping's SQS queue. */
  lambdaFails?: boolean;
  /** Nothing reaches S3 (Firehose has not flushed). */
  noLake?: boolean;
  /** The ingest Lambda does not run (it could not reach the database either). */
  noLambda?: boolean;
}
let world: World = {};
const published: { topic: string; payload: Record<string, unknown> }[] = [];

/** AWS IoT Core and the rules, standing at the MQTT boundary: the PUBACK, then what each rule's action writes. */
const fakeIot: CanaryConnector = async (creds) => ({
  async publish(topic, text) {
    if (world.deny) throw new Error('the broker closed the connection');
    const payload = JSON.parse(text) as Record<string, unknown>;
    published.push({ topic, payload });
    const thing = topic.split('/')[2]!;
    const selected = { ...payload, device_id: thing, topic, message_id: `trace-${payload.check_id}`, ts: Date.now() };
    assert.is(thing, creds.thingName);
    // Run "asynchronously", as the rules engine does after the PUBACK.
    setTimeout(() => void rules(selected).catch((e) => console.error('fake rules:', e)), 20);
  },
  async close() {},
});

async function rules(msg: Record<string, unknown>): Promise<void> {
  const data = Buffer.from(JSON.stringify(msg));
  if (world.streamRuleError) {
    const logs = await aws.get('logs');
    const event = {
      ruleName: NAMES.rule('telemetry_to_stream'),
      topic: msg.topic,
      cloudwatchTraceId: `trace-${msg.check_id}`,
      clientId: msg.device_id,
      base64OriginalPayload: data.toString('base64'),
      failures: [{ failedAction: 'KinesisAction', failedResource: STREAM, errorMessage: world.streamRuleError }],
    };
    await logs.client.send(new logs.sdk.CreateLogStreamCommand({ logGroupName: LOG_GROUP, logStreamName: `s-${msg.check_id}` })).catch(() => undefined);
    await logs.client.send(new logs.sdk.PutLogEventsCommand({ logGroupName: LOG_GROUP, logStreamName: `s-${msg.check_id}`, logEvents: [{ timestamp: Date.now(), message: JSON.stringify(event) }] }));
  } else {
    const k = await aws.get('kinesis');
    const put = await k.client.send(new k.sdk.PutRecordCommand({ StreamName: STREAM, PartitionKey: String(msg.device_id), Data: data }));
    if (!world.noLambda) await lambda(put.ShardId!, put.SequenceNumber!, data);
  }
  if (!world.noLake) await lake(msg);
}

/** The ingest Lambda on its mapping's batch: the real template handler, or Lambda's on-failure record. */
async function lambda(shardId: string, sequenceNumber: string, data: Buffer): Promise<void> {
  if (world.lambdaFails) {
    const sqs = await aws.get('sqs');
    const { QueueUrl } = await sqs.client.send(new sqs.sdk.GetQueueUrlCommand({ QueueName: NAMES.queue('ingest-failures') }));
    const record = {
      requestContext: { requestId: 'r-1', functionArn: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${NAMES.function('ingest')}`, condition: 'RetryAttemptsExhausted', approximateInvokeCount: 11 },
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
      timestamp: new Date().toISOString(),
      KinesisBatchInfo: { shardId, startSequenceNumber: sequenceNumber, endSequenceNumber: sequenceNumber, approximateArrivalOfFirstRecord: new Date().toISOString(), batchSize: 1, streamArn: `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/${STREAM}` },
    };
    await sqs.client.send(new sqs.sdk.SendMessageCommand({ QueueUrl, MessageBody: JSON.stringify(record) }));
    return;
  }
  const { handler } = await import('../../templates/ingest-rds/handler.js');
  await handler({
    Records: [
      {
        kinesis: { kinesisSchemaVersion: '1.0', partitionKey: 'pk', sequenceNumber, data: data.toString('base64'), approximateArrivalTimestamp: Date.now() / 1000 },
        eventSource: 'aws:kinesis',
        eventVersion: '1.0',
        eventID: `${shardId}:${sequenceNumber}`,
        eventName: 'aws:kinesis:record',
        invokeIdentityArn: 'arn:aws:iam::123456789012:role/x',
        awsRegion: REGION,
        eventSourceARN: `arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/${STREAM}`,
      },
    ],
  } as never);
}

/** Firehose's deliveries: the raw channel's gzipped NDJSON and the datastore's Parquet (written with DuckDB). */
async function lake(msg: Record<string, unknown>): Promise<void> {
  const s3 = await aws.get('s3');
  const lakeNames = stageDatalakeNames({ project: 'ck', stage: 'default' }, { accountId: ACCOUNT, region: REGION });
  const day = new Date().toISOString().slice(0, 10);
  await s3.client.send(new s3.sdk.PutObjectCommand({ Bucket: lakeNames.bucket, Key: `raw/telemetry_raw/dt=${day}/raw-${msg.check_id}.gz`, Body: gzipSync(`${JSON.stringify(msg)}\n`) }));
  const { openDuck, lit } = await import('../../src/targets/local/lake/duck.js');
  const duck = await openDuck({ threads: 1 });
  const file = join(dir, `${msg.check_id}.parquet`);
  try {
    await duck.connection.run(`COPY (SELECT ${lit(String(msg.check_id))} AS check_id, true AS iotctl_check, ${lit(String(msg.device_id))} AS device_id, ${lit(`trace-${msg.check_id}`)} AS __message_id) TO ${lit(file)} (FORMAT parquet)`);
  } finally {
    duck.close();
  }
  await s3.client.send(new s3.sdk.PutObjectCommand({ Bucket: lakeNames.bucket, Key: `datastore/telemetry_store/dt=${day}/part-${msg.check_id}.parquet`, Body: readFileSync(file) }));
}

async function check(opts: Partial<CheckOptions> = {}): Promise<CheckReport & { notes: string[] }> {
  const ctx = new Context({ specFile: project.specFile, projectDir: project.dir, stateDir: project.stateDir });
  const target = await openTarget(ctx);
  const notes: string[] = [];
  try {
    const report = await runCheck(target, { spec: project.spec, stage: 'default', stateDir: join(project.stateDir, 'stages', 'default') }, { timeoutMs: 8_000, skip: new Set(), connect: fakeIot, onNote: (n) => notes.push(n), ...opts });
    return { ...report, notes };
  } finally {
    await target.close();
  }
}
const statuses = (r: CheckReport) => Object.fromEntries(r.stages.map((s) => [s.stage, s.status]));
const detail = (r: CheckReport, stage: string) => r.stages.find((s) => s.stage === stage)?.detail ?? `(no stage ${stage})`;
const explain = (r: CheckReport) => JSON.stringify(r.stages, null, 1);

test.before(async () => {
  moto = await startMoto();
  const db = await freshDatabase(undefined, 'iotctl_awscheck');
  drop = db.drop;
  env = { ...moto.env, DATABASE_URL: db.url };
  project = makeProject(initSpec('ck', 'aws'));
  dir = mkdtempSync(join(tmpdir(), 'iotctl-awscheck-'));
  const applied = await cli(['apply', '--yes'], { cwd: project.dir, env, timeoutMs: 120_000 });
  if (applied.code !== 0) console.error(applied.stderr);
  assert.is(applied.code, 0, applied.stderr);
  restore = useEnv(env);
  aws = new AwsClients({});
  // IoT creates the error action's log group on its first error; here it is made up front.
  const logs = await aws.get('logs');
  await logs.client.send(new logs.sdk.CreateLogGroupCommand({ logGroupName: LOG_GROUP })).catch(() => undefined);
});

test.after(async () => {
  aws?.destroy();
  restore?.();
  await moto?.stop();
  await drop?.();
  project?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test.before.each(() => {
  world = {};
});

test('healthy: every stage passes, each with its own evidence; the lake waits as long as the delivery streams buffer, and says so', async () => {
  const r = await check();
  assert.ok(r.ok, explain(r));
  assert.equal(statuses(r), {
    broker: 'passed',
    'rule telemetry_to_stream': 'passed',
    'rule telemetry_to_lake': 'passed',
    'stream telemetry': 'passed',
    'function ingest': 'passed',
    'lake telemetry_raw': 'passed',
  });
  assert.is(r.canary, 'ck-default-canary');
  assert.match(detail(r, 'stream telemetry'), /^shardId-\d+, sequence \d+/);
  assert.match(detail(r, 'function ingest'), /row in iot_messages/);
  assert.match(detail(r, 'lake telemetry_raw'), /datastore telemetry_store/);
  // The canary published on its own telemetry topic, with its check_id and marker.
  const sent = published.at(-1)!;
  assert.is(sent.topic, 'dt/ck/ck-default-canary/telemetry');
  assert.equal({ id: sent.payload.check_id, marker: sent.payload.iotctl_check }, { id: r.checkId, marker: true });
  // The lake's time-out comes from DescribeDeliveryStream: the pipeline stream's 300 s plus its transform's 60 s.
  assert.ok(r.notes.some((n) => /lake telemetry_raw stage waits up to .*buffers 300 s \(DescribeDeliveryStream\) \+ its transform's 60 s/.test(n)), r.notes.join('\n'));
  // The canary thing exists in IoT with its own certificate and the device policy.
  const iot = await aws.get('iot');
  const principals = await iot.client.send(new iot.sdk.ListThingPrincipalsCommand({ thingName: 'ck-default-canary' }));
  assert.is(principals.principals?.length, 1);
});

test('--athena: the datastore table returns the row (Athena on moto, its result seeded)', async () => {
  const res = await fetch(`${moto.url}/moto-api/static/athena/query-results`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ results: [{ column_info: [{ Name: 'n', Label: 'n', Type: 'bigint', Nullable: 'UNKNOWN', CaseSensitive: false }], rows: [{ Data: [{ VarCharValue: 'n' }] }, { Data: [{ VarCharValue: '1' }] }] }] }),
  });
  assert.ok(res.status < 300);
  const r = await check({ athena: true, skip: new Set(['function']) });
  assert.ok(r.ok, explain(r));
  assert.is(statuses(r)['athena telemetry_store'], 'passed');
  assert.match(detail(r, 'athena telemetry_store'), /table telemetry_store returns the row \(Athena/);
});

test('a publish the policy denies: the broker fails naming the statement, every later stage is not reached', async () => {
  const target = await openTarget(new Context({ specFile: project.specFile, projectDir: project.dir, stateDir: project.stateDir }));
  const policy = NAMES.devicePolicy('ck-device');
  const base = (await target.devices.getPolicy('ck-device'))!;
  const statements = Array.isArray(base.Statement) ? base.Statement : [base.Statement];
  try {
    await target.devices.putPolicy('ck-device', { ...base, Statement: [...statements, { Sid: 'NoCanary', Effect: 'Deny', Action: 'iot:Publish', Resource: `arn:aws:iot:${REGION}:${ACCOUNT}:topic/dt/ck/ck-default-canary/*` }] });
    world.deny = true;
    const r = await check();
    assert.not.ok(r.ok);
    assert.is(statuses(r).broker, 'failed');
    assert.match(detail(r, 'broker'), new RegExp(`denied by policy ${policy} statement NoCanary`), detail(r, 'broker'));
    for (const s of r.stages.slice(1)) assert.is(s.status, 'not reached', explain(r));
  } finally {
    await target.devices.putPolicy('ck-device', base);
    await target.close();
  }
});

test('a disabled rule fails by its name before the publish; its stream and function are not reached, the lake still passes', async () => {
  const iot = await aws.get('iot');
  await iot.client.send(new iot.sdk.DisableTopicRuleCommand({ ruleName: NAMES.rule('telemetry_to_stream') }));
  try {
    world.streamRuleError = 'would not be written: the rule is disabled';
    const r = await check();
    assert.equal(statuses(r), {
      broker: 'passed',
      'rule telemetry_to_stream': 'failed',
      'rule telemetry_to_lake': 'passed',
      'stream telemetry': 'not reached',
      'function ingest': 'not reached',
      'lake telemetry_raw': 'passed',
    });
    assert.match(detail(r, 'rule telemetry_to_stream'), /rule telemetry_to_stream is disabled/);
  } finally {
    await iot.client.send(new iot.sdk.EnableTopicRuleCommand({ ruleName: NAMES.rule('telemetry_to_stream') }));
  }
});

test("the stream rule's action fails: the rule error from its errorAction log group, the stream and function not reached", async () => {
  world.streamRuleError = 'Failed to send message to Kinesis. ResourceNotFoundException: Stream not found';
  const r = await check({ skip: new Set(['lake']) });
  assert.is(statuses(r)['rule telemetry_to_stream'], 'failed', explain(r));
  assert.match(detail(r, 'rule telemetry_to_stream'), /rule error: .*Stream not found/);
  assert.is(statuses(r)['stream telemetry'], 'not reached');
  assert.is(statuses(r)['function ingest'], 'not reached');
  assert.is(statuses(r)['lake telemetry_raw'], 'skipped');
});

test("a disabled event source mapping fails the function stage with the mapping's state", async () => {
  const lambda = await aws.get('lambda');
  const [m] = (await lambda.client.send(new lambda.sdk.ListEventSourceMappingsCommand({ FunctionName: NAMES.function('ingest') }))).EventSourceMappings ?? [];
  await lambda.client.send(new lambda.sdk.UpdateEventSourceMappingCommand({ UUID: m!.UUID!, Enabled: false }));
  try {
    const r = await check({ skip: new Set(['lake']) });
    assert.is(statuses(r)['stream telemetry'], 'passed', explain(r));
    assert.is(statuses(r)['function ingest'], 'failed');
    assert.match(detail(r, 'function ingest'), /event source mapping of ingest on telemetry is Disabled/);
  } finally {
    await lambda.client.send(new lambda.sdk.UpdateEventSourceMappingCommand({ UUID: m!.UUID!, Enabled: true }));
  }
});

test("the function's failure destination says why the row is missing (Lambda's on-failure record naming this record's batch)", async () => {
  world.lambdaFails = true;
  const r = await check({ skip: new Set(['lake']) });
  assert.is(statuses(r)['function ingest'], 'failed', explain(r));
  assert.match(detail(r, 'function ingest'), /failure destination arn:aws:sqs:us-east-1:123456789012:iotctl-ck-default--ingest-failures says: .*RetryAttemptsExhausted/);
});

test('the database refuses: the function stage says so, the others pass', async () => {
  world.noLambda = true;
  const saved = process.env.DATABASE_URL;
  process.env.DATABASE_URL = 'postgres://postgres@127.0.0.1:1/none';
  try {
    const down = await check({ skip: new Set(['lake']) });
    assert.is(statuses(down)['function ingest'], 'failed', explain(down));
    assert.match(detail(down, 'function ingest'), /the database refuses connections/);
    assert.is(statuses(down)['stream telemetry'], 'passed');
  } finally {
    process.env.DATABASE_URL = saved;
  }
});

test('the lake has not flushed within its time-out (the buffer interval read back from the delivery streams)', async () => {
  world.noLake = true;
  const firehose = await aws.get('firehose');
  const lakeNames = stageDatalakeNames({ project: 'ck', stage: 'default' }, { accountId: ACCOUNT, region: REGION });
  // Short buffers, so the test waits seconds: read back by the check from DescribeDeliveryStream.
  for (const name of [lakeNames.channelStream('telemetry_raw'), lakeNames.pipelineStream('telemetry_pipeline')]) {
    const d = (await firehose.client.send(new firehose.sdk.DescribeDeliveryStreamCommand({ DeliveryStreamName: name }))).DeliveryStreamDescription!;
    await firehose.client.send(
      new firehose.sdk.UpdateDestinationCommand({
        DeliveryStreamName: name,
        CurrentDeliveryStreamVersionId: d.VersionId!,
        DestinationId: d.Destinations![0]!.DestinationId!,
        ExtendedS3DestinationUpdate: { BufferingHints: { IntervalInSeconds: 1, SizeInMBs: 64 }, ProcessingConfiguration: { Enabled: false } },
      }),
    );
  }
  const r = await check({ skip: new Set(['function']), lakeGraceMs: 500, timeoutMs: 60_000 });
  assert.is(statuses(r)['lake telemetry_raw'], 'failed', explain(r));
  assert.match(detail(r, 'lake telemetry_raw'), /has not flushed it to channel telemetry_raw within its time-out of 1\.5 s \(delivery stream .* buffers 1 s \(DescribeDeliveryStream\)/);
  assert.is(statuses(r)['rule telemetry_to_lake'], 'passed', 'no rule error: the rule itself did its part');
});

test('--schedule on aws: the check function, its role, a schedule and its role; applied again, nothing changes', async () => {
  const ctx = new Context({ specFile: project.specFile, projectDir: project.dir, stateDir: project.stateDir });
  const target = await openTarget(ctx);
  const checkCtx = { spec: project.spec, stage: 'default', stateDir: join(project.stateDir, 'stages', 'default') };
  try {
    const first = await scheduleCheck(target, checkCtx, { expression: 'rate(5 minutes)', timeoutMs: 60_000 });
    assert.equal(first.changes.map((c) => `${c.resource} ${c.result}`), ['role created', 'function created', 'role created', 'schedule created']);
    const n = checkNames({ project: 'ck', stage: 'default' });
    assert.is(n.function, 'iotctl-ck-default--iotctl-check');

    const lambda = await aws.get('lambda');
    const fn = await lambda.client.send(new lambda.sdk.GetFunctionCommand({ FunctionName: n.function }));
    const vars = fn.Configuration!.Environment!.Variables!;
    assert.is(vars.CANARY_TOPIC, 'dt/ck/ck-default-canary/telemetry');
    assert.is(vars.METRIC_NAMESPACE, 'iotctl/check');
    // The canary only reads: it signs in as the reader role.
    assert.match(vars.DATABASE_SECRET_ARN!, /^arn:aws:secretsmanager:us-east-1:123456789012:secret:iotctl\/ck\/default\/database-reader-/);
    assert.not.ok('DATABASE_URL' in vars, 'no database URL in the environment');
    assert.equal((JSON.parse(vars.CHECK_PLAN!) as { id: string; physical?: string }[]).find((s) => s.id === 'stream telemetry')?.physical, STREAM);
    assert.equal({ check: fn.Tags!['iotctl:check'], project: fn.Tags!['iotctl:project'], stage: fn.Tags!['iotctl:stage'] }, { check: 'true', project: 'ck', stage: 'default' });

    // Least privilege: publish on the canary's topic only, metrics only in iotctl/check, read the stream, the database secret.
    const iam = await aws.get('iam');
    const doc = JSON.parse(decodeURIComponent((await iam.client.send(new iam.sdk.GetRolePolicyCommand({ RoleName: n.functionRole, PolicyName: 'iotctl-check' }))).PolicyDocument!)) as { Statement: { Sid: string; Action: string[]; Resource: string | string[]; Condition?: unknown }[] };
    const by = Object.fromEntries(doc.Statement.map((x) => [x.Sid, x]));
    assert.equal(by.PublishCanary!.Resource, `arn:aws:iot:${REGION}:${ACCOUNT}:topic/dt/ck/ck-default-canary/telemetry`);
    assert.equal(by.Metrics!.Condition, { StringEquals: { 'cloudwatch:namespace': 'iotctl/check' } });
    assert.equal(by.ReadStreams!.Resource, [`arn:aws:kinesis:${REGION}:${ACCOUNT}:stream/${STREAM}`]);
    assert.is(by.DatabaseSecret!.Resource, vars.DATABASE_SECRET_ARN);
    const role = (await iam.client.send(new iam.sdk.GetRoleCommand({ RoleName: n.functionRole }))).Role!;
    assert.is(role.Path, '/iotctl/ck/default/');

    const sched = await aws.get('scheduler');
    const s = await sched.client.send(new sched.sdk.GetScheduleCommand({ Name: n.schedule }));
    assert.is(s.ScheduleExpression, 'rate(5 minutes)');
    assert.is(s.Target!.Arn, fn.Configuration!.FunctionArn);
    assert.match(s.Description!, /\[iotctl:project=ck stage=default\]$/);
    const schedDoc = JSON.parse(decodeURIComponent((await iam.client.send(new iam.sdk.GetRolePolicyCommand({ RoleName: n.scheduleRole, PolicyName: 'iotctl-check' }))).PolicyDocument!)) as { Statement: { Action: string[] }[] };
    assert.equal(schedDoc.Statement.map((x) => x.Action), [['lambda:InvokeFunction']]);

    // The spec's functions do not include it (apply --prune leaves it alone).
    assert.not.ok((await target.functions.list({ desired: ['ingest'] })).some((f) => f.physicalName === n.function));

    const again = await scheduleCheck(target, checkCtx, { expression: 'rate(5 minutes)', timeoutMs: 60_000 });
    assert.equal(again.changes.map((c) => c.result), ['unchanged', 'unchanged', 'unchanged', 'unchanged']);
    const changed = await scheduleCheck(target, checkCtx, { expression: 'rate(10 minutes)', timeoutMs: 60_000 });
    assert.equal(changed.changes.map((c) => `${c.resource} ${c.result}`), ['role unchanged', 'function unchanged', 'role unchanged', 'schedule updated']);
    const bad = await scheduleCheck(target, checkCtx, { expression: 'every 5 minutes', timeoutMs: 60_000 }).catch((e: Error) => e);
    assert.match(String(bad), /--schedule every 5 minutes/);
  } finally {
    await target.close();
  }
});

test('the scheduled check function: publishes through the IoT data plane, follows stream and row, writes CloudWatch metrics; status reads its last line', async () => {
  const n = checkNames({ project: 'ck', stage: 'default' });
  const lambda = await aws.get('lambda');
  const vars = (await lambda.client.send(new lambda.sdk.GetFunctionConfigurationCommand({ FunctionName: n.function }))).Environment!.Variables!;
  // The IoT data plane is faked at the SDK boundary: its Publish runs the rules as IoT Core would.
  const { mockClient } = await import('aws-sdk-client-mock');
  const { IoTDataPlaneClient, PublishCommand } = await import('@aws-sdk/client-iot-data-plane');
  const iotData = mockClient(IoTDataPlaneClient);
  iotData.on(PublishCommand).callsFake(async (input: { topic: string; payload: Uint8Array }) => {
    const payload = JSON.parse(Buffer.from(input.payload).toString('utf8')) as Record<string, unknown>;
    published.push({ topic: input.topic, payload });
    world.noLake = true;
    setTimeout(() => void rules({ ...payload, device_id: input.topic.split('/')[2], topic: input.topic, message_id: `trace-${payload.check_id}`, ts: Date.now() }).catch((e) => console.error(e)), 20);
    return {};
  });
  // The Lambda environment, with the test's database URL in place of the secret (whose host the test cannot reach over TLS).
  const saved = { ...process.env };
  Object.assign(process.env, { ...vars, CHECK_TIMEOUT_MS: '8000', DATABASE_URL: env.DATABASE_URL });
  delete process.env.DATABASE_SECRET_ARN;
  const logs: string[] = [];
  const log = console.log;
  console.log = (line: string) => logs.push(line);
  let result;
  try {
    const { handler } = await import('../../templates/check-canary/handler.js');
    result = (await handler()).iotctl_check_result;
  } finally {
    console.log = log;
    process.env = saved;
    iotData.restore();
  }
  assert.ok(result.ok, JSON.stringify(result.stages, null, 1));
  assert.equal(Object.fromEntries(result.stages.map((s) => [s.stage, s.status])), {
    broker: 'passed',
    'rule telemetry_to_stream': 'passed',
    'rule telemetry_to_lake': 'skipped',
    'stream telemetry': 'passed',
    'function ingest': 'passed',
    'lake telemetry_raw': 'skipped',
  });
  assert.is(published.at(-1)!.topic, 'dt/ck/ck-default-canary/telemetry');
  // Per-stage latency and success in CloudWatch (moto's), namespace iotctl/check.
  const cw = await aws.get('cloudwatch');
  const metrics = (await cw.client.send(new cw.sdk.ListMetricsCommand({ Namespace: 'iotctl/check' }))).Metrics ?? [];
  const keys = metrics.map((m) => `${m.MetricName} ${m.Dimensions!.find((d) => d.Name === 'Step')!.Value}`).sort();
  for (const k of ['Latency stream telemetry', 'Latency function ingest', 'Success all', 'Success broker', 'Success function ingest']) assert.ok(keys.includes(k), keys.join(', '));
  // Lambda writes the function's output to its log group: `iotctl status` reads the last result from there.
  assert.is(logs.length, 1);
  const group = `/aws/lambda/${n.function}`;
  const cwl = await aws.get('logs');
  await cwl.client.send(new cwl.sdk.CreateLogGroupCommand({ logGroupName: group }));
  await cwl.client.send(new cwl.sdk.CreateLogStreamCommand({ logGroupName: group, logStreamName: 'run-1' }));
  await cwl.client.send(new cwl.sdk.PutLogEventsCommand({ logGroupName: group, logStreamName: 'run-1', logEvents: [{ timestamp: Date.now(), message: `2026-12-07T03:00:00.000Z\tr-1\tINFO\t${logs[0]}` }] }));
  const target = await openTarget(new Context({ specFile: project.specFile, projectDir: project.dir, stateDir: project.stateDir }));
  try {
    const last = await target.scheduledCheck!.last();
    assert.is(last?.schedule, 'rate(10 minutes)');
    assert.is(last?.last?.checkId, result.checkId);
    assert.is(last?.last?.ok, true);
  } finally {
    await target.close();
  }
});

test('--schedule off removes the function, the schedule and both roles; status then shows none', async () => {
  const target = await openTarget(new Context({ specFile: project.specFile, projectDir: project.dir, stateDir: project.stateDir }));
  try {
    const off = await scheduleCheck(target, { spec: project.spec, stage: 'default', stateDir: project.stateDir }, { expression: 'off', timeoutMs: 60_000 });
    assert.equal(off.changes.map((c) => `${c.resource} ${c.result}`), ['schedule deleted', 'function deleted', 'role deleted', 'role deleted']);
    assert.is(await target.scheduledCheck!.last(), undefined);
    assert.equal((await scheduleCheck(target, { spec: project.spec, stage: 'default', stateDir: project.stateDir }, { expression: 'off', timeoutMs: 60_000 })).changes, []);
  } finally {
    await target.close();
  }
});

test.run();
