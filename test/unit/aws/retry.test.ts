/** retry.ts: the one wait/retry mechanism of the aws adapters (bounded, jittered backoff, abortable, clear errors). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AwsCallError, isAwsError } from '../../../src/targets/aws/sdk.js';
import { abortableSleep, lambdaBusy, permissionExists, retryWhen, rolePropagating, waitUntil } from '../../../src/targets/aws/retry.js';
import { UserError } from '../../../src/ui/errors.js';

const err = (code: string, message: string, service: 'lambda' | 'iot' | 'firehose' | 'scheduler' = 'lambda') => new AwsCallError(`${service}:X failed: ${code}: ${message}`, undefined, code, 'X', service);

/** A clock the fake sleep advances: no real waiting. */
function clock() {
  let t = 0;
  const slept: number[] = [];
  return { now: () => t, sleep: async (ms: number) => void (slept.push(ms), (t += ms)), slept };
}

test('retryWhen retries only what the predicate accepts, with a doubling jittered backoff', async () => {
  const c = clock();
  let calls = 0;
  const out = await retryWhen(
    async () => {
      if (++calls < 4) throw err('InvalidParameterValueException', 'The role defined for the function cannot be assumed by Lambda.');
      return 'ok';
    },
    rolePropagating.lambda,
    { service: 'lambda', operation: 'CreateFunction', what: 'the role', delayMs: 100, maxDelayMs: 300, ...c },
  );
  assert.is(out, 'ok');
  assert.is(calls, 4);
  assert.is(c.slept.length, 3);
  [100, 200, 300].forEach((n, i) => assert.ok(c.slept[i]! >= n * 0.75 && c.slept[i]! <= n * 1.25, `${c.slept}`));

  // Anything else fails at once.
  calls = 0;
  const other = await retryWhen(
    async () => {
      calls++;
      throw err('InvalidParameterValueException', 'Unsupported runtime');
    },
    rolePropagating.lambda,
    { service: 'lambda', operation: 'CreateFunction', what: 'the role', ...clock() },
  ).catch((e) => e);
  assert.is(calls, 1);
  assert.match(other.message, /Unsupported runtime/);
});

test('retryWhen is bounded: past the budget it ends in an AwsCallError naming the service, the operation, the wait and AWS\'s message', async () => {
  const c = clock();
  let calls = 0;
  const e = await retryWhen(
    async () => {
      calls++;
      throw err('InvalidArgumentException', 'Firehose is unable to assume role arn:aws:iam::1:role/r. Please check the role provided.', 'firehose');
    },
    rolePropagating.firehose,
    { service: 'firehose', operation: 'CreateDeliveryStream', what: 'Firehose to be able to assume the role r', timeoutMs: 10_000, delayMs: 1_000, maxDelayMs: 2_000, ...c },
  ).catch((x) => x);
  assert.instance(e, AwsCallError);
  assert.ok(isAwsError(e, 'InvalidArgumentException'), 'keeps the AWS code');
  assert.match(e.message, /^firehose:CreateDeliveryStream was still refused after [\d.]+ s \(\d+ attempts\) of waiting for Firehose to be able to assume the role r: .*unable to assume role/);
  assert.ok(e.hint);
  assert.ok(calls > 3 && calls < 10, `${calls} calls`);
  assert.ok(c.now() <= 10_000, 'never sleeps past the budget');
});

test('waitUntil polls until ready; a failed state thrown by ready ends it; the budget ends in WaitTimeout or the given error', async () => {
  const states = ['CREATING', 'CREATING', 'ACTIVE'];
  const got = await waitUntil(async () => states.shift()!, (s) => s === 'ACTIVE', { service: 'firehose', operation: 'DescribeDeliveryStream', what: 'stream s', state: (s) => s, ...clock() });
  assert.is(got, 'ACTIVE');

  const failed = await waitUntil(
    async () => 'CREATING_FAILED',
    (s) => {
      if (s.endsWith('FAILED')) throw new UserError('failed', undefined, 'FIREHOSE_FAILED');
      return false;
    },
    { service: 'firehose', operation: 'DescribeDeliveryStream', what: 'stream s', state: (s) => s, ...clock() },
  ).catch((e) => e);
  assert.is(failed.code, 'FIREHOSE_FAILED');

  const late = await waitUntil(async () => 'CREATING', () => false, { service: 'firehose', operation: 'DescribeDeliveryStream', what: 'Firehose delivery stream s to be ACTIVE', timeoutMs: 5_000, state: (s) => s, ...clock() }).catch((e) => e);
  assert.ok(isAwsError(late, 'WaitTimeout'));
  assert.match(late.message, /^Waited [\d.]+ s for Firehose delivery stream s to be ACTIVE; it is still CREATING \(firehose:DescribeDeliveryStream\)\.$/);

  const own = await waitUntil(async () => 'UPDATING', () => false, { service: 'kinesis', operation: 'DescribeStreamSummary', what: 's', timeoutMs: 0, state: (s) => s, onTimeout: (s) => new UserError(`still ${s}`, undefined, 'STREAM_NOT_ACTIVE'), ...clock() }).catch((e) => e);
  assert.is(own.code, 'STREAM_NOT_ACTIVE');
});

test('Ctrl-C ends a wait at once with AWS\'s cancellation, and a cancelled call is never retried', async () => {
  const abort = new AbortController();
  const t0 = performance.now();
  setTimeout(() => abort.abort(), 30);
  const e = await retryWhen(
    async () => {
      throw err('InvalidRequestException', 'AWS IoT is unable to assume role x. If the role was just created or updated, please try again in a few seconds.', 'iot');
    },
    rolePropagating.iot,
    { service: 'iot', operation: 'CreateTopicRule', what: 'IoT', signal: abort.signal, delayMs: 5_000 },
  ).catch((x) => x);
  assert.ok(isAwsError(e, 'Cancelled'), String(e));
  assert.ok(performance.now() - t0 < 1_000);
  assert.ok(isAwsError(await abortableSleep(10, AbortSignal.abort()).catch((x) => x), 'Cancelled'));

  let calls = 0;
  await retryWhen(
    async () => {
      calls++;
      throw new AwsCallError('Cancelled during X.', undefined, 'Cancelled', 'X', 'lambda');
    },
    () => true,
    { service: 'lambda', operation: 'X', what: 'x', ...clock() },
  ).catch(() => undefined);
  assert.is(calls, 1);
});

test('predicates: each service\'s propagation error, and Lambda\'s two ResourceConflictExceptions told apart', () => {
  assert.ok(rolePropagating.eventSourceMapping(err('InvalidParameterValueException', 'Cannot access stream arn:aws:kinesis:us-east-1:1:stream/s. Please ensure the role can perform the GetRecords, GetShardIterator, DescribeStream, ListShards, and ListStreams Actions on your stream in IAM.')));
  assert.ok(rolePropagating.eventSourceMapping(err('InvalidParameterValueException', 'The provided execution role does not have permissions to call ReceiveMessage on SQS')));
  assert.ok(rolePropagating.eventSourceMapping(err('InvalidParameterValueException', 'The provided execution role does not have permissions to call CreateNetworkInterface on EC2')));
  assert.not.ok(rolePropagating.eventSourceMapping(err('InvalidParameterValueException', 'Unsupported starting position')));
  assert.ok(rolePropagating.scheduler(err('ValidationException', 'The execution role you provide must allow AWS EventBridge Scheduler to assume the role.', 'scheduler')));
  assert.ok(rolePropagating.iot(err('InvalidRequestException', 'AWS IoT (iot.amazonaws.com) is unable to assume role (sts:AssumeRole) on resource: arn. If the role was just created or updated, please try again in a few seconds.', 'iot')));
  assert.not.ok(rolePropagating.iot(err('InvalidRequestException', 'sql is invalid', 'iot')));
  assert.ok(rolePropagating.iotProvisioning(err('InvalidRequestException', 'The provisioning role cannot be assumed by AWS IoT.', 'iot')));
  assert.not.ok(rolePropagating.iotProvisioning(err('InvalidRequestException', 'The template body is not valid JSON.', 'iot')));

  const exists = err('ResourceConflictException', 'The statement id (iotctl-rule) provided already exists. Please provide a new statement id, or remove the existing statement.');
  const busy = err('ResourceConflictException', 'The operation cannot be performed at this time. An update is in progress for resource: arn:aws:lambda:us-east-1:1:function:f');
  const pending = err('ResourceConflictException', 'The operation cannot be performed at this time. The function is currently in the following state: Pending');
  assert.ok(permissionExists(exists));
  assert.not.ok(permissionExists(busy));
  assert.not.ok(lambdaBusy(exists));
  assert.ok(lambdaBusy(busy));
  assert.ok(lambdaBusy(pending));
  assert.not.ok(lambdaBusy(new Error('ResourceConflictException')), 'only AWS errors');
});

test.run();
