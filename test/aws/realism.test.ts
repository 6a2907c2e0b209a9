/**
 * The realism proxy (test/helpers/aws-realism.ts) against moto_server with plain SDK clients: each operation
 * identified as AWS does, each injected fault answered as the service answers it, and conformance to the botocore
 * models (violations found, conforming calls clean). One moto for the file; the proxy is reconfigured per test.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { CreateStreamCommand, DescribeStreamSummaryCommand, KinesisClient, ListShardsCommand, ListStreamsCommand, PutRecordCommand, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { CreateEventSourceMappingCommand, CreateFunctionCommand, GetFunctionConfigurationCommand, InvokeCommand, LambdaClient, ListFunctionsCommand, UpdateFunctionConfigurationCommand } from '@aws-sdk/client-lambda';
import { CreateRoleCommand, IAMClient, ListRolesCommand, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { CreateThingCommand, CreateTopicRuleCommand, IoTClient, ListThingsCommand } from '@aws-sdk/client-iot';
import { CreateDeliveryStreamCommand, DescribeDeliveryStreamCommand, FirehoseClient, PutRecordCommand as FirehosePutRecordCommand } from '@aws-sdk/client-firehose';
import { CreateScheduleCommand, SchedulerClient } from '@aws-sdk/client-scheduler';
import { CopyObjectCommand, CreateBucketCommand, GetBucketLifecycleConfigurationCommand, GetObjectCommand, PutBucketLifecycleConfigurationCommand, ListObjectsV2Command, PutBucketTaggingCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { GetDatabasesCommand, GlueClient } from '@aws-sdk/client-glue';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startMoto, type Moto } from '../helpers/moto.js';
import { startBlackhole, startRealism, type Realism, type RealismOptions } from '../helpers/aws-realism.js';

let moto: Moto;
let realism: Realism;
const BASE: Omit<RealismOptions, 'target'> = { latencyMs: 0, conformance: true, throttle: undefined, iamPropagationSeconds: 0, iamPropagationOps: undefined, creating: {}, hang: [], slow: {}, latency: {} };
const TRUST = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }] });
const ZIP = new Uint8Array(Buffer.from('UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==', 'base64')); // an empty zip archive

/** Plain SDK clients at `endpoint`, one attempt (the raw answer, no SDK retry), HTTP/1.1 as the CLI uses. */
function clients(endpoint: string, extra: { requestTimeout?: number; maxAttempts?: number } = {}) {
  const cfg = { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' }, maxAttempts: extra.maxAttempts ?? 1, requestHandler: new NodeHttpHandler({ connectionTimeout: 1000, requestTimeout: extra.requestTimeout ?? 10_000, throwOnRequestTimeout: true }) };
  return {
    kinesis: new KinesisClient(cfg),
    lambda: new LambdaClient(cfg),
    iam: new IAMClient(cfg),
    iot: new IoTClient(cfg),
    firehose: new FirehoseClient(cfg),
    scheduler: new SchedulerClient(cfg),
    s3: new S3Client({ ...cfg, forcePathStyle: true }),
    sts: new STSClient(cfg),
    glue: new GlueClient(cfg),
    sqs: new SQSClient(cfg),
  };
}
let c: ReturnType<typeof clients>;

/** The error a call rejects with (name, message, HTTP status), or a failure when it succeeds. */
async function failure(p: Promise<unknown>): Promise<{ name: string; message: string; status?: number }> {
  try {
    await p;
  } catch (e) {
    const err = e as Error & { $metadata?: { httpStatusCode?: number } };
    return { name: err.name, message: err.message, status: err.$metadata?.httpStatusCode };
  }
  throw new Error('expected the call to fail');
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let n = 0;
const unique = (p: string) => `${p}-${++n}`;

async function role(name = unique('role')): Promise<string> {
  const r = await c.iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: TRUST }));
  return r.Role!.Arn!;
}

test.before(async () => {
  moto = await startMoto();
  realism = await startRealism({ target: moto.url, ...BASE });
  c = clients(realism.url);
});
test.before.each(() => {
  realism.set(structuredClone(BASE));
  realism.clearViolations();
});
test.after(async () => {
  await realism.close();
  await moto.stop();
});

test('identifies operations by X-Amz-Target, Action, and method + path from the models; conforming calls have no violations', async () => {
  const before = realism.calls().length;
  await c.kinesis.send(new ListStreamsCommand({ Limit: 5 }));
  await c.iam.send(new ListRolesCommand({ MaxItems: 10, PathPrefix: '/' }));
  await c.sts.send(new GetCallerIdentityCommand({}));
  await c.lambda.send(new ListFunctionsCommand({ MaxItems: 5 }));
  await c.iot.send(new ListThingsCommand({ maxResults: 5 }));
  await c.glue.send(new GetDatabasesCommand({ MaxResults: 5 }));
  await c.sqs.send(new CreateQueueCommand({ QueueName: unique('q'), Attributes: { VisibilityTimeout: '30' } }));
  const bucket = unique('bucket');
  await c.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await c.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'a/b c.json', Body: '{}' }));
  await c.s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'a/b c.json' }));
  await c.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'a/' }));
  await c.s3.send(new PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet: [{ Key: 'k', Value: 'v' }] } }));
  await c.s3.send(new CopyObjectCommand({ Bucket: bucket, Key: 'copy.json', CopySource: `${bucket}/a/b c.json` }));
  await c.s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: { Rules: [{ ID: 'r', Status: 'Enabled', Filter: { Prefix: 'a/' }, Expiration: { Days: 1 } }] } }));
  await c.s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }));
  const keys = realism.calls().slice(before).map((x) => x.key);
  assert.equal(keys, ['kinesis:ListStreams', 'iam:ListRoles', 'sts:GetCallerIdentity', 'lambda:ListFunctions', 'iot:ListThings', 'glue:GetDatabases', 'sqs:CreateQueue', 's3:CreateBucket', 's3:PutObject', 's3:GetObject', 's3:ListObjectsV2', 's3:PutBucketTagging', 's3:CopyObject', 's3:PutBucketLifecycleConfiguration', 's3:GetBucketLifecycleConfiguration']);
  assert.equal(realism.violations(), []);
});

test('conformance: integer vs double, ranges, patterns, enums, required members and lengths, in every protocol', async () => {
  const stream = unique('s');
  await c.kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 1 }));
  // rest-json body: an integer member sent as 0.2 (moto stores 0).
  await c.lambda.send(new CreateEventSourceMappingCommand({ FunctionName: 'nope', EventSourceArn: `arn:aws:kinesis:us-east-1:123456789012:stream/${stream}`, StartingPosition: 'LATEST', MaximumBatchingWindowInSeconds: 0.2 })).catch(() => undefined);
  // query protocol: a range.
  await c.iam.send(new ListRolesCommand({ MaxItems: 0 })).catch(() => undefined);
  // rest-json path label: a pattern.
  await c.iot.send(new CreateThingCommand({ thingName: 'bad name!' })).catch(() => undefined);
  // json: a required member missing, and an enum.
  await c.kinesis.send(new PutRecordsCommand({ StreamName: stream, Records: [{ Data: Buffer.from('x') } as never] })).catch(() => undefined);
  await c.kinesis.send(new CreateStreamCommand({ StreamName: unique('s'), StreamModeDetails: { StreamMode: 'FAST' as never } })).catch(() => undefined);
  // rest-xml body: a required member missing.
  const bucket = unique('bucket');
  await c.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await c.s3.send(new PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet: [{ Key: 'k' } as never] } })).catch(() => undefined);
  const got = realism.violations().map((v) => `${v.service}:${v.operation} ${v.member} ${v.rule}`);
  assert.equal(got, [
    'lambda:CreateEventSourceMapping MaximumBatchingWindowInSeconds type',
    'iam:ListRoles MaxItems range',
    'iot:CreateThing thingName pattern',
    'kinesis:PutRecords Records[0].PartitionKey required',
    'kinesis:CreateStream StreamModeDetails.StreamMode enum',
    's3:PutBucketTagging Tagging.TagSet[0].Value required',
  ]);
  assert.equal(realism.violations()[0]!.value, 0.2);
});

test('latency per call, per operation, and slow answers', async () => {
  realism.set({ latencyMs: 150, latency: { 'iot:ListThings': 0 } });
  let t = Date.now();
  await c.kinesis.send(new ListStreamsCommand({}));
  assert.ok(Date.now() - t >= 150, `kinesis took ${Date.now() - t} ms`);
  t = Date.now();
  await c.iot.send(new ListThingsCommand({}));
  assert.ok(Date.now() - t < 150, `iot took ${Date.now() - t} ms`);
  realism.set({ latencyMs: 0, slow: { 'kinesis:ListStreams': 300 } });
  t = Date.now();
  await c.kinesis.send(new ListStreamsCommand({}));
  assert.ok(Date.now() - t >= 300);
});

test('an operation that never answers, and an endpoint that accepts connections and never answers, time out the client', async () => {
  realism.set({ hang: ['kinesis:ListStreams'] });
  const quick = clients(realism.url, { requestTimeout: 300 });
  const t = Date.now();
  const e = await failure(quick.kinesis.send(new ListStreamsCommand({})));
  assert.match(e.name + e.message, /Timeout/i);
  assert.ok(Date.now() - t < 3000);
  await quick.iot.send(new ListThingsCommand({})); // other operations still answer
  assert.equal(realism.calls().at(-2)!.injected, 'hang');

  const hole = await startBlackhole();
  try {
    const lost = clients(hole.url, { requestTimeout: 300 });
    const e2 = await failure(lost.iot.send(new ListThingsCommand({})));
    assert.match(e2.name + e2.message, /Timeout/i);
    assert.equal(hole.connections(), 1);
  } finally {
    await hole.close();
  }
});

test("throttling at per-API rates, with each service's own throttling error", async () => {
  realism.set({ throttle: { 'iot:*': 2, 'iot:ListThingGroups': 1000, 'kinesis:*': 1, 'lambda:*': 1, 'iam:*': 1 } });
  const burst = async (f: () => Promise<unknown>, times = 4) => {
    const out = await Promise.allSettled(Array.from({ length: times }, f));
    return out.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as Error & { $metadata: { httpStatusCode: number } });
  };
  const iot = await burst(() => c.iot.send(new ListThingsCommand({})));
  assert.equal(iot.length, 2); // a bucket of 2
  assert.equal([iot[0]!.name, iot[0]!.$metadata.httpStatusCode], ['ThrottlingException', 400]); // the status IoT's model gives it
  const stream = unique('s');
  await sleep(1100);
  await c.kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 1 }));
  await sleep(1100);
  const puts = await burst(() => c.kinesis.send(new PutRecordCommand({ StreamName: stream, PartitionKey: 'p', Data: Buffer.from('x') })), 2);
  assert.equal(puts.map((e) => e.name), ['ProvisionedThroughputExceededException']);
  const lists = await burst(() => c.kinesis.send(new ListStreamsCommand({})), 2);
  assert.equal(lists.map((e) => e.name), ['LimitExceededException']);
  const fns = await burst(() => c.lambda.send(new ListFunctionsCommand({})), 2);
  assert.equal([fns[0]!.name, fns[0]!.$metadata.httpStatusCode], ['TooManyRequestsException', 429]);
  const roles = await burst(() => c.iam.send(new ListRolesCommand({})), 2);
  assert.equal(roles.map((e) => e.name), ['Throttling']);
  // The SDK classifies these as throttling and retries them: with retries the burst goes through.
  realism.set({ throttle: { 'iot:*': 5 } });
  const patient = clients(realism.url, { maxAttempts: 6 });
  assert.equal(await burst(() => patient.iot.send(new ListThingsCommand({})), 8), []);
});

test('IAM propagation: a new role is refused by each consuming service with its own error until N s have passed', async () => {
  realism.set({ iamPropagationSeconds: 1.5 });
  const arn = await role();
  const fn = unique('fn');
  const lambda = await failure(c.lambda.send(new CreateFunctionCommand({ FunctionName: fn, Runtime: 'nodejs22.x', Role: arn, Handler: 'index.handler', Code: { ZipFile: ZIP } })));
  assert.equal([lambda.name, lambda.message, lambda.status], ['InvalidParameterValueException', 'The role defined for the function cannot be assumed by Lambda.', 400]);
  const firehose = await failure(c.firehose.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: unique('d'), ExtendedS3DestinationConfiguration: { RoleARN: arn, BucketARN: 'arn:aws:s3:::b' } })));
  assert.equal([firehose.name, firehose.message], ['InvalidArgumentException', `Firehose is unable to assume role ${arn}. Please check the role provided.`]);
  const rule = await failure(c.iot.send(new CreateTopicRuleCommand({ ruleName: unique('r').replace(/-/g, '_'), topicRulePayload: { sql: "SELECT * FROM 't'", actions: [{ kinesis: { roleArn: arn, streamName: 's' } }] } })));
  assert.equal(rule.name, 'InvalidRequestException');
  assert.match(rule.message, `unable to assume role (sts:AssumeRole) on resource: ${arn}`);
  const schedule = await failure(c.scheduler.send(new CreateScheduleCommand({ Name: unique('sch'), ScheduleExpression: 'rate(1 hour)', FlexibleTimeWindow: { Mode: 'OFF' }, Target: { Arn: 'arn:aws:lambda:us-east-1:123456789012:function:f', RoleArn: arn } })));
  assert.equal([schedule.name, schedule.message], ['ValidationException', 'The execution role you provide must allow AWS EventBridge Scheduler to assume the role.']);
  await sleep(1600);
  await c.lambda.send(new CreateFunctionCommand({ FunctionName: fn, Runtime: 'nodejs22.x', Role: arn, Handler: 'index.handler', Code: { ZipFile: ZIP } }));
  // A policy put on the function's role: the event source mapping cannot use it yet.
  await c.iam.send(new PutRolePolicyCommand({ RoleName: arn.split('/').pop()!, PolicyName: 'read', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kinesis:GetRecords', Resource: '*' }] }) }));
  const stream = `arn:aws:kinesis:us-east-1:123456789012:stream/${unique('s')}`;
  const esm = await failure(c.lambda.send(new CreateEventSourceMappingCommand({ FunctionName: fn, EventSourceArn: stream, StartingPosition: 'LATEST' })));
  assert.equal([esm.name, esm.message], ['InvalidParameterValueException', `Cannot access stream ${stream}. Please ensure the role can perform the GetRecords, GetShardIterator, DescribeStream, ListShards, and ListStreams Actions on your stream in IAM.`]);
  assert.equal(realism.calls().filter((x) => x.injected === 'iam-propagation').length, 5);
  // Limited to chosen consumers: Lambda takes a brand-new role while Firehose would not.
  realism.set({ iamPropagationOps: ['firehose:CreateDeliveryStream'] });
  await c.lambda.send(new CreateFunctionCommand({ FunctionName: unique('fn'), Runtime: 'nodejs22.x', Role: await role(), Handler: 'index.handler', Code: { ZipFile: ZIP } }));
});

test('asynchronous states: Kinesis and Firehose CREATING, Lambda Pending, with the errors AWS gives meanwhile', async () => {
  realism.set({ creating: { kinesisMs: 800, firehoseMs: 800, lambdaMs: 800, lambdaUpdateMs: 400 } });
  const stream = unique('s');
  await c.kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 1 }));
  const d = await c.kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
  assert.equal(d.StreamDescriptionSummary!.StreamStatus, 'CREATING');
  assert.equal((await failure(c.kinesis.send(new PutRecordCommand({ StreamName: stream, PartitionKey: 'p', Data: Buffer.from('x') })))).name, 'ResourceNotFoundException');
  assert.equal((await failure(c.kinesis.send(new ListShardsCommand({ StreamName: stream })))).name, 'ResourceInUseException');

  const ds = unique('d');
  await c.firehose.send(new CreateDeliveryStreamCommand({ DeliveryStreamName: ds, ExtendedS3DestinationConfiguration: { RoleARN: await role(), BucketARN: 'arn:aws:s3:::b' } }));
  assert.equal((await c.firehose.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: ds }))).DeliveryStreamDescription!.DeliveryStreamStatus, 'CREATING');
  assert.equal((await failure(c.firehose.send(new FirehosePutRecordCommand({ DeliveryStreamName: ds, Record: { Data: Buffer.from('x') } })))).name, 'ResourceNotFoundException');

  const fn = unique('fn');
  await c.lambda.send(new CreateFunctionCommand({ FunctionName: fn, Runtime: 'nodejs22.x', Role: await role(), Handler: 'index.handler', Code: { ZipFile: ZIP } }));
  assert.equal((await c.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: fn }))).State, 'Pending');
  const invoke = await failure(c.lambda.send(new InvokeCommand({ FunctionName: fn })));
  assert.equal([invoke.name, invoke.status, invoke.message], ['ResourceConflictException', 409, 'The operation cannot be performed at this time. The function is currently in the following state: Pending']);
  assert.equal((await failure(c.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: fn, Timeout: 10 })))).name, 'ResourceConflictException');

  await sleep(850);
  assert.equal((await c.kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }))).StreamDescriptionSummary!.StreamStatus, 'ACTIVE');
  await c.kinesis.send(new PutRecordCommand({ StreamName: stream, PartitionKey: 'p', Data: Buffer.from('x') }));
  assert.equal((await c.firehose.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: ds }))).DeliveryStreamDescription!.DeliveryStreamStatus, 'ACTIVE');
  assert.equal((await c.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: fn }))).State, 'Active');
  await c.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: fn, Timeout: 10 }));
  // After an update: LastUpdateStatus InProgress, and the next update refused until it is done.
  assert.equal((await c.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: fn }))).LastUpdateStatus, 'InProgress');
  const busy = await failure(c.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: fn, Timeout: 11 })));
  assert.equal([busy.name, busy.status], ['ResourceConflictException', 409]);
  assert.match(busy.message, 'An update is in progress for resource');
  await sleep(450);
  await c.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: fn, Timeout: 11 }));
});

test('overhead of the proxy at latency 0 with conformance on, against moto directly (same run)', async () => {
  const direct = clients(moto.url);
  // Direct and proxied calls alternate, and medians are compared, so load from other processes hits both alike.
  const once = async (cl: ReturnType<typeof clients>, i: number) => {
    const t = performance.now();
    await (i % 2 ? cl.iot.send(new ListThingsCommand({ maxResults: 10 })) : cl.kinesis.send(new ListStreamsCommand({})));
    return performance.now() - t;
  };
  const times = { direct: [] as number[], proxied: [] as number[] };
  for (let i = 0; i < 300; i++) {
    times.direct.push(await once(direct, i));
    times.proxied.push(await once(c, i));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const [d, p] = [median(times.direct.slice(20)), median(times.proxied.slice(20))];
  const inProxy = realism.calls().slice(-280).map((x) => x.checkMs ?? 0);
  console.log(`\n  realism proxy overhead: ${(p - d).toFixed(2)} ms per request (median of 280: direct ${d.toFixed(2)} ms, proxied ${p.toFixed(2)} ms; conformance check ${median(inProxy).toFixed(2)} ms)`);
  assert.ok(p - d < 10, `overhead ${p - d} ms`); // loose: the machine runs other suites; the figure is the point
});

test.run();
