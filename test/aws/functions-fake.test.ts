import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mockClient } from 'aws-sdk-client-mock';
import {
  CreateFunctionCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  InvokeCommand,
  LambdaClient,
  ListEventSourceMappingsCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
} from '@aws-sdk/client-lambda';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import {
  CreateRoleCommand,
  DeleteRoleCommand,
  DeleteRolePolicyCommand,
  GetRoleCommand,
  IAMClient,
  ListAttachedRolePoliciesCommand,
  ListRolePoliciesCommand,
  ListRoleTagsCommand,
  PutRolePolicyCommand,
} from '@aws-sdk/client-iam';
import { useEnv } from '../helpers/moto.js';
import { AwsCallError, AwsClients } from '../../src/targets/aws/sdk.js';
import { AwsFunctions, zipArtifact } from '../../src/targets/aws/functions.js';
import type { FunctionDeployment } from '../../src/ports.js';
import { stageNames } from '../../src/targets/aws/naming.js';

/**
 * What moto cannot serve, faked at the SDK boundary: a function that stays Pending before Active,
 * an update InProgress, IAM's "cannot be assumed" while a new role propagates, and Invoke.
 * (The mock replaces client.send, so errors are given already translated, as AwsCallError.)
 */

const lambda = mockClient(LambdaClient);
const sts = mockClient(STSClient);
const iam = mockClient(IAMClient);
let restore: () => void;
let dir: string;
let aws: AwsClients;
let fns: AwsFunctions;
const slept: number[] = [];

const ROLE = 'arn:aws:iam::123456789012:role/ops-lambda';
const NAMES = stageNames({ project: 'demo', stage: 'default' });
const OWNED = { 'iotctl:managed': 'true', 'iotctl:project': 'demo', 'iotctl:stage': 'default' };
const notFound = () => new AwsCallError('not found', undefined, 'ResourceNotFoundException', 'GetFunction', 'lambda');

function deployment(): FunctionDeployment {
  return { name: 'ingest', template: 'ingest-rds', handler: 'handler', timeoutSeconds: 30, memoryMb: 256, environment: { AUTO_MIGRATE: 'true' }, roleArn: ROLE, artifact: { dir, entry: 'index.js', sha256: 'a'.repeat(64), bytes: 10 } };
}

const config = (over: Record<string, unknown>) => ({
  FunctionName: 'ingest',
  FunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:ingest',
  Runtime: 'nodejs22.x' as const,
  Handler: 'index.handler',
  Role: ROLE,
  MemorySize: 256,
  Timeout: 30,
  Environment: { Variables: { AUTO_MIGRATE: 'true' } },
  ...over,
});

test.before(() => {
  restore = useEnv({ AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
  dir = mkdtempSync(join(tmpdir(), 'iotctl-awsfn-fake-'));
  writeFileSync(join(dir, 'index.js'), 'exports.handler = async () => 1;\n');
});

test.before.each(() => {
  lambda.reset();
  sts.reset();
  sts.on(GetCallerIdentityCommand).resolves({ Account: '123456789012' });
  lambda.on(ListEventSourceMappingsCommand).resolves({ EventSourceMappings: [] });
  slept.length = 0;
  aws = new AwsClients({});
  fns = new AwsFunctions(aws, { project: 'demo', pollMs: 100, sleep: async (ms) => void slept.push(ms) });
});

test.after(() => {
  restore?.();
  rmSync(dir, { recursive: true, force: true });
});

test('deploy waits while a new function stays Pending, then returns once it is Active', async () => {
  lambda.on(GetFunctionCommand).rejects(notFound());
  lambda.on(CreateFunctionCommand).resolves(config({ State: 'Pending', StateReasonCode: 'Creating' }));
  lambda
    .on(GetFunctionConfigurationCommand)
    .resolvesOnce(config({ State: 'Pending' }))
    .resolvesOnce(config({ State: 'Pending' }))
    .resolvesOnce(config({ State: 'Pending' }))
    .resolves(config({ State: 'Active', LastUpdateStatus: 'Successful' }));
  assert.is(await fns.deploy(deployment()), 'created');
  assert.is(lambda.commandCalls(GetFunctionConfigurationCommand).length, 4);
  // Backoff doubles from pollMs, each with ±25 % jitter (retry.ts).
  assertBackoff(slept, [100, 200, 400]);
  const create = lambda.commandCalls(CreateFunctionCommand)[0]!.args[0].input;
  assert.is(create.Handler, 'index.handler');
  assert.is(create.Runtime, 'nodejs22.x');
  assert.is(create.Role, ROLE);
});

test('a function that fails to become Active is an error naming the reason', async () => {
  lambda.on(GetFunctionCommand).rejects(notFound());
  lambda.on(CreateFunctionCommand).resolves(config({ State: 'Pending' }));
  lambda.on(GetFunctionConfigurationCommand).resolvesOnce(config({ State: 'Pending' })).resolves(config({ State: 'Failed', StateReasonCode: 'SubnetOutOfIPAddresses', StateReason: 'no free IPs' }));
  await fns.deploy(deployment()).then(
    () => assert.unreachable('should fail'),
    (e: Error) => assert.match(e.message, /SubnetOutOfIPAddresses no free IPs/),
  );
});

test('an update waits for LastUpdateStatus Successful between the code and the configuration', async () => {
  const { codeSha256 } = await zipArtifact(dir);
  lambda.on(GetFunctionCommand).resolves({ Configuration: config({ State: 'Active', LastUpdateStatus: 'Successful', CodeSha256: 'old', MemorySize: 128 }), Tags: { ...OWNED, 'iotctl:template': 'ingest-rds', 'iotctl:sha256': 'a'.repeat(64) } });
  const order: string[] = [];
  lambda.on(UpdateFunctionCodeCommand).callsFake(async () => {
    order.push('code');
    return config({ LastUpdateStatus: 'InProgress', CodeSha256: codeSha256 });
  });
  lambda.on(UpdateFunctionConfigurationCommand).callsFake(async () => {
    order.push('config');
    return config({ LastUpdateStatus: 'InProgress' });
  });
  // Ready before the update; InProgress twice after the code update; then ready; ready after the config update.
  const states = ['Successful', 'InProgress', 'InProgress', 'Successful', 'InProgress', 'Successful'];
  lambda.on(GetFunctionConfigurationCommand).callsFake(async () => {
    const s = states.shift() ?? 'Successful';
    order.push(`poll:${s}`);
    return config({ State: 'Active', LastUpdateStatus: s });
  });
  assert.is(await fns.deploy(deployment()), 'updated');
  assert.equal(order, ['poll:Successful', 'code', 'poll:InProgress', 'poll:InProgress', 'poll:Successful', 'config', 'poll:InProgress', 'poll:Successful']);
  assert.is(lambda.commandCalls(UpdateFunctionConfigurationCommand)[0]!.args[0].input.MemorySize, 256);
});

test('CreateFunction is retried while IAM has not propagated a new role, and only that error', async () => {
  lambda.on(GetFunctionCommand).rejects(notFound());
  const roleNotReady = () => new AwsCallError('lambda:CreateFunction failed: InvalidParameterValueException: The role defined for the function cannot be assumed by Lambda.', undefined, 'InvalidParameterValueException', 'CreateFunction', 'lambda');
  lambda.on(CreateFunctionCommand).rejectsOnce(roleNotReady()).rejectsOnce(roleNotReady()).resolves(config({ State: 'Active' }));
  lambda.on(GetFunctionConfigurationCommand).resolves(config({ State: 'Active' }));
  assert.is(await fns.deploy(deployment()), 'created');
  assert.is(lambda.commandCalls(CreateFunctionCommand).length, 3);
  assertBackoff(slept, [1000, 2000]);

  // Any other invalid parameter fails at once.
  lambda.reset();
  sts.on(GetCallerIdentityCommand).resolves({ Account: '123456789012' });
  lambda.on(ListEventSourceMappingsCommand).resolves({ EventSourceMappings: [] });
  lambda.on(GetFunctionCommand).rejects(notFound());
  lambda.on(CreateFunctionCommand).rejects(new AwsCallError('Unsupported runtime', undefined, 'InvalidParameterValueException', 'CreateFunction', 'lambda'));
  await fns.deploy(deployment()).then(
    () => assert.unreachable('should fail'),
    (e: Error) => assert.match(e.message, /Unsupported runtime/),
  );
  assert.is(lambda.commandCalls(CreateFunctionCommand).length, 1);
});

test('a create that fails deletes the role it made for the function: nothing is left half-created', async () => {
  iam.reset();
  const RoleName = NAMES.functionRole('ingest');
  const roleArn = `arn:aws:iam::123456789012:role${NAMES.rolePath}${RoleName}`;
  const noRole = () => new AwsCallError('no role', undefined, 'NoSuchEntity', 'GetRole', 'iam');
  iam.on(GetRoleCommand).rejects(noRole());
  iam.on(CreateRoleCommand).resolves({ Role: { Arn: roleArn, RoleName, Path: NAMES.rolePath, RoleId: 'r', CreateDate: new Date() } });
  iam.on(PutRolePolicyCommand).resolves({});
  // None before the create; then the role made for this function.
  iam.on(ListRoleTagsCommand).rejectsOnce(noRole()).resolves({ Tags: [...Object.entries(OWNED).map(([Key, Value]) => ({ Key, Value })), { Key: 'iotctl:function', Value: NAMES.function('ingest') }] });
  iam.on(ListRolePoliciesCommand).resolves({ PolicyNames: ['iotctl-function'] });
  iam.on(ListAttachedRolePoliciesCommand).resolves({ AttachedPolicies: [] });
  iam.on(DeleteRolePolicyCommand).resolves({});
  iam.on(DeleteRoleCommand).resolves({});
  lambda.on(GetFunctionCommand).rejects(notFound());
  lambda.on(CreateFunctionCommand).rejects(new AwsCallError('CodeStorageExceededException', undefined, 'CodeStorageExceededException', 'CreateFunction', 'lambda'));
  await fns.deploy({ ...deployment(), roleArn: undefined }).then(
    () => assert.unreachable('should fail'),
    (e: Error) => assert.match(e.message, /CodeStorageExceeded/),
  );
  assert.is(iam.commandCalls(CreateRoleCommand).length, 1);
  assert.is(iam.commandCalls(CreateRoleCommand)[0]!.args[0].input.Path, '/iotctl/demo/default/');
  assert.equal(iam.commandCalls(DeleteRoleCommand)[0]!.args[0].input, { RoleName });
  assert.equal(iam.commandCalls(DeleteRolePolicyCommand)[0]!.args[0].input, { RoleName, PolicyName: 'iotctl-function' });
});

test('invoke: RequestResponse with the log tail; payload, function error and REPORT figures decoded', async () => {
  const id = '0f9e8d7c-aaaa-4bbb-8ccc-ddddeeeeffff';
  const tail = [
    `START RequestId: ${id} Version: $LATEST`,
    `2024-05-01T10:00:00.000Z\t${id}\tERROR\t{"level":"error","message":"batch not written"}`,
    `END RequestId: ${id}`,
    `REPORT RequestId: ${id}\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 256 MB\tMax Memory Used: 80 MB\tInit Duration: 150.50 ms\t`,
    '',
  ].join('\n');
  lambda.on(InvokeCommand).resolves({
    StatusCode: 200,
    FunctionError: 'Unhandled',
    Payload: Buffer.from(JSON.stringify({ errorType: 'Error', errorMessage: 'boom' })) as unknown as never,
    LogResult: Buffer.from(tail).toString('base64'),
    $metadata: { requestId: 'http-request-id' },
  });
  const r = await fns.invoke('ingest', { Records: [] });
  assert.equal(r, {
    requestId: id,
    functionName: 'ingest',
    statusCode: 200,
    functionError: 'Unhandled',
    payload: { errorType: 'Error', errorMessage: 'boom' },
    durationMs: 12.34,
    billedDurationMs: 13,
    initDurationMs: 150.5,
    maxMemoryUsedMb: 80,
    logTail: tail.split('\n').filter(Boolean),
  });
  const input = lambda.commandCalls(InvokeCommand)[0]!.args[0].input;
  assert.is(input.InvocationType, 'RequestResponse');
  assert.is(input.LogType, 'Tail');
  assert.equal(JSON.parse(Buffer.from(input.Payload as Uint8Array).toString()), { Records: [] });
});

test('invoke: a cut 4 KB tail drops its partial first line; a non-JSON payload stays text', async () => {
  const id = '0f9e8d7c-aaaa-4bbb-8ccc-ddddeeeeffff';
  const body = `${'x'.repeat(100)}\n`.repeat(40);
  let tail = `ial line\n${body}END RequestId: ${id}\nREPORT RequestId: ${id}\tDuration: 1.00 ms\tBilled Duration: 1 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB\t\n`;
  tail = tail.slice(tail.length - 4096);
  lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: Buffer.from('plain') as unknown as never, LogResult: Buffer.from(tail).toString('base64'), $metadata: {} });
  const r = await fns.invoke('ingest', {});
  assert.is(r.payload, 'plain');
  assert.is(r.functionError, undefined);
  assert.ok(r.logTail.every((l) => l === 'x'.repeat(100) || l.startsWith('END') || l.startsWith('REPORT')), r.logTail[0]);
  assert.is(r.durationMs, 1);
  assert.is(r.initDurationMs, undefined);
});

test.run();

/** Waits of a doubling backoff with ±25 % jitter. */
function assertBackoff(slept: number[], nominal: number[]): void {
  assert.is(slept.length, nominal.length, `waits: ${slept}`);
  slept.forEach((ms, i) => assert.ok(ms >= nominal[i]! * 0.75 && ms <= nominal[i]! * 1.25, `wait ${i}: ${ms} vs ${nominal[i]}`));
}
