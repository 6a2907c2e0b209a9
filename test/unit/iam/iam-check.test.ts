import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { checkPolicy, patternsIntersect, simulate, type Policy } from '../../helpers/iam-check.js';

// The offline checker reports each kind of mistake a policy writer makes, and accepts correct documents.

const A = '123456789012';
const doc = (...Statement: object[]): Policy => ({ Version: '2012-10-17', Statement: Statement as Policy['Statement'] });
const problems = async (p: Policy, kind?: 'identity' | 'trust' | 'iot') => (await checkPolicy(p, kind)).map((v) => `${v.problem}: ${v.detail}`);

test('a correct least-privilege policy has no violations', async () => {
  const p = doc(
    { Sid: 'Read', Effect: 'Allow', Action: ['kinesis:GetRecords', 'kinesis:DescribeStream'], Resource: `arn:aws:kinesis:us-east-1:${A}:stream/iotctl-x` },
    { Sid: 'List', Effect: 'Allow', Action: 'kinesis:ListStreams', Resource: '*' },
    { Sid: 'Logs', Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: `arn:aws:logs:us-east-1:${A}:log-group:/aws/lambda/f:*` },
    { Sid: 'Obj', Effect: 'Allow', Action: 's3:PutObject', Resource: 'arn:aws:s3:::bucket/raw/*', Condition: { StringEquals: { 'aws:ResourceAccount': A, 's3:x-amz-acl': 'private' } } },
  );
  assert.equal(await problems(p), []);
});

test('a wrong action name is reported', async () => {
  const v = await problems(doc({ Effect: 'Allow', Action: ['kinesis:ReadRecords', 'kinesiss:GetRecords'], Resource: '*' }));
  assert.is(v.length, 2, v.join('\n'));
  assert.ok(v.every((x) => x.startsWith('unknown-action')), v.join('\n'));
});

test('a resource of the wrong type is reported', async () => {
  // GetSecretValue on a stream ARN; PutObject on the bucket (not its objects); ListBucket on objects.
  const v = await problems(
    doc(
      { Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: `arn:aws:kinesis:us-east-1:${A}:stream/s` },
      { Effect: 'Allow', Action: 's3:PutObject', Resource: 'arn:aws:s3:::bucket' },
      { Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::bucket/raw/*' },
    ),
  );
  assert.is(v.length, 3, v.join('\n'));
  assert.ok(v.every((x) => x.startsWith('resource-type')), v.join('\n'));
});

test('"*" on an action that has resource types, and an ARN on one that has none, are reported', async () => {
  const v = await problems(doc({ Effect: 'Allow', Action: 'kinesis:PutRecord', Resource: '*' }, { Effect: 'Allow', Action: 'kinesis:ListStreams', Resource: `arn:aws:kinesis:us-east-1:${A}:stream/s` }));
  assert.equal(v.map((x) => x.split(':')[0]), ['wildcard-resource', 'resource-type'], v.join('\n'));
});

test('an unknown condition key, and one that does not apply to the action, are reported', async () => {
  const v = await problems(
    doc(
      { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: `arn:aws:sqs:us-east-1:${A}:q`, Condition: { StringEquals: { 'aws:SourceArns': 'x' } } },
      { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: `arn:aws:sqs:us-east-1:${A}:q`, Condition: { StringEquals: { 'sqs:NoSuchKey': 'x' } } },
      { Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::b/*', Condition: { StringEquals: { 's3:max-keys': '1' } } },
    ),
  );
  assert.equal(v.map((x) => x.split(':')[0]), ['unknown-condition-key', 'unknown-condition-key', 'condition-key-not-applicable'], v.join('\n'));
});

test('trust policies: a service principal, no Resource; IoT policies: client/topic ARNs with policy variables', async () => {
  const trust = doc({ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole', Condition: { StringEquals: { 'aws:SourceAccount': A } } });
  assert.equal(await problems(trust, 'trust'), []);
  assert.equal((await problems(doc({ Effect: 'Allow', Principal: { Service: 'lambda' }, Action: 'sts:AssumeRole' }), 'trust')).length, 1);
  const iot = doc(
    { Effect: 'Allow', Action: 'iot:Connect', Resource: `arn:aws:iot:us-east-1:${A}:client/\${iot:Connection.Thing.ThingName}` },
    { Effect: 'Allow', Action: 'iot:Publish', Resource: `arn:aws:iot:us-east-1:${A}:topic/dt/p/\${iot:Connection.Thing.ThingName}/telemetry` },
  );
  assert.equal(await problems(iot, 'iot'), []);
  // IoT Core's thing variables are condition keys of IoT policies only.
  const attached = doc({ Effect: 'Allow', Action: 'iot:Connect', Resource: `arn:aws:iot:us-east-1:${A}:client/x`, Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } } });
  assert.equal(await problems(attached, 'iot'), []);
  assert.is((await problems(attached, 'identity')).length, 1);
  // Subscribe takes a topicfilter, not a topic.
  const sub = await problems(doc({ Effect: 'Allow', Action: 'iot:Subscribe', Resource: `arn:aws:iot:us-east-1:${A}:topic/cmd/x` }), 'iot');
  assert.is(sub.length, 1, sub.join('\n'));
});

test('patternsIntersect: wildcards on either side', () => {
  assert.ok(patternsIntersect('arn:aws:logs:r:1:log-group:/aws/lambda/f:*', 'arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:log-stream:${LogStreamName}'));
  assert.not.ok(patternsIntersect('arn:aws:s3:::bucket', 'arn:${Partition}:s3:::${BucketName}/${ObjectName}'));
  assert.ok(patternsIntersect('arn:aws:s3:::bucket/*', 'arn:${Partition}:s3:::${BucketName}/${ObjectName}'));
  // A bucket name holds no '/': an object ARN is no bucket.
  assert.not.ok(patternsIntersect('arn:aws:s3:::bucket/raw/*', 'arn:${Partition}:s3:::${BucketName}'));
  assert.ok(patternsIntersect('arn:aws:s3:::*', 'arn:${Partition}:s3:::${BucketName}'));
  assert.not.ok(patternsIntersect('arn:aws:kinesis:us-east-1:1:stream/s', 'arn:${Partition}:kinesis:${Region}:${Account}:${ConsumerType}/${StreamName}/consumer/${ConsumerName}:${ConsumerCreationTimpstamp}'));
});

test('simulate: allowed on the granted resource, implicitly denied elsewhere; trust by service principal', async () => {
  const role = `arn:aws:iam::${A}:role/r`;
  const p = doc({ Effect: 'Allow', Action: 'kinesis:PutRecord', Resource: `arn:aws:kinesis:us-east-1:${A}:stream/a` });
  assert.is(await simulate({ principal: role, action: 'kinesis:PutRecord', resource: `arn:aws:kinesis:us-east-1:${A}:stream/a`, account: A }, { identity: [p] }), 'Allowed');
  assert.is(await simulate({ principal: role, action: 'kinesis:PutRecord', resource: `arn:aws:kinesis:us-east-1:${A}:stream/b`, account: A }, { identity: [p] }), 'ImplicitlyDenied');
  const trust = doc({ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' });
  assert.is(await simulate({ principal: 'lambda.amazonaws.com', action: 'sts:AssumeRole', resource: role, account: A }, { trust }), 'Allowed');
  assert.is(await simulate({ principal: 'firehose.amazonaws.com', action: 'sts:AssumeRole', resource: role, account: A }, { trust }), 'ImplicitlyDenied');
});

test.run();
