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
import { runCheck, type CanaryConnector, type CheckReport, type CheckOptions } from '../../src/services/check.js';

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

test.run();
