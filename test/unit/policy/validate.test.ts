import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { validatePolicyDocument } from '../../../src/iot/policy/index.js';

const withStatement = (statement: Record<string, unknown>) => ({ Version: '2012-10-17', Statement: [statement] });

test('a good document has no problems (object or JSON text)', () => {
  const document = {
    Version: '2012-10-17',
    Statement: [
      { Sid: 'Connect', Effect: 'Allow', Action: 'iot:Connect', Resource: 'arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}' },
      { Effect: 'Allow', Action: ['iot:Publish', 'iot:Receive'], Resource: 'arn:aws:iot:us-east-1:123456789012:topic/dt/*' },
      { Effect: 'Allow', Action: 'iot:Subscribe', Resource: 'arn:aws:iot:us-east-1:123456789012:topicfilter/cmd/#' },
      { Effect: 'Allow', Action: 'iot:*Shadow', Resource: '*', Condition: { StringEquals: { 'iot:Connection.Thing.ThingTypeName': 'x' } } },
    ],
  };
  assert.equal(validatePolicyDocument(document), []);
  assert.equal(validatePolicyDocument(JSON.stringify(document)), []);
});

test('document-level problems', () => {
  assert.equal(validatePolicyDocument('nope'), ['not valid JSON: Unexpected token \'o\', "nope" is not valid JSON']);
  assert.equal(validatePolicyDocument([]), ['the policy document must be a JSON object']);
  assert.equal(validatePolicyDocument({ Version: '2012-10-17' }), ['Statement is missing']);
  assert.equal(validatePolicyDocument({ Version: '2012-10-17', Statement: [] }), ['Statement is empty']);
  assert.equal(validatePolicyDocument({ Statement: { Effect: 'Allow', Action: 'iot:Connect', Resource: '*' } }), [
    'Version is missing: AWS IoT requires "2012-10-17"',
  ]);
  assert.equal(validatePolicyDocument({ Version: '2008-10-17', Policy: 1, Statement: { Effect: 'Allow', Action: 'iot:Connect', Resource: '*' } }), [
    'Version must be "2012-10-17" (got "2008-10-17")',
    'unknown top-level element "Policy"',
  ]);
});

test('statement structure', () => {
  assert.equal(validatePolicyDocument({ Version: '2012-10-17', Statement: ['x'] }), ['Statement[0] must be an object']);
  assert.equal(validatePolicyDocument(withStatement({ Effect: 'Permit', Action: 'iot:Connect', Resource: '*' })), [
    'Statement[0]: Effect must be "Allow" or "Deny" (got "Permit")',
  ]);
  assert.equal(validatePolicyDocument(withStatement({ Effect: 'Allow', Resource: '*' })), ['Statement[0]: needs exactly one of Action or NotAction']);
  assert.equal(validatePolicyDocument(withStatement({ Effect: 'Allow', Action: [], Resource: '*' })), [
    'Statement[0]: Action must be a non-empty string or a non-empty array of strings',
  ]);
  assert.equal(validatePolicyDocument(withStatement({ Effect: 'Allow', Action: 'iot:Connect', Resources: '*' })), [
    'Statement[0]: needs exactly one of Resource or NotResource',
  ]);
  assert.equal(validatePolicyDocument(withStatement({ Sid: 'P', Effect: 'Allow', Principal: '*', Action: 'iot:Connect', Resource: '*' })), [
    'Statement[0] (Sid "P"): unknown element "Principal" (AWS IoT policies have no Principal: attach the policy to a certificate instead)',
  ]);
  assert.equal(
    validatePolicyDocument({
      Version: '2012-10-17',
      Statement: [
        { Sid: 'A', Effect: 'Allow', Action: 'iot:Connect', Resource: '*' },
        { Sid: 'A', Effect: 'Allow', Action: 'iot:Publish', Resource: '*' },
      ],
    }),
    ['Statement[1] (Sid "A"): duplicate Sid "A"'],
  );
});

test('unknown actions', () => {
  assert.equal(validatePolicyDocument(withStatement({ Effect: 'Allow', Action: ['iot:Publsh', 'iot:Conn*', 'iot:Foo*', 's3:GetObject', 'Publish'], Resource: '*' })), [
    'Statement[0]: unknown action "iot:Publsh"',
    'Statement[0]: unknown action "iot:Foo*"',
    'Statement[0]: action "s3:GetObject" is not an AWS IoT Core policy action (services: iot, iotjobsdata)',
    'Statement[0]: action "Publish" must look like "iot:Publish"',
  ]);
  assert.equal(validatePolicyDocument(withStatement({ Effect: 'Allow', Action: ['IOT:publish', 'iotjobsdata:DescribeJobExecution', '*'], Resource: '*' })), []);
});

test('malformed resource ARNs', () => {
  const problems = (Resource: string) => validatePolicyDocument(withStatement({ Effect: 'Allow', Action: 'iot:*', Resource }));
  assert.equal(problems('topic/a'), ['Statement[0]: malformed resource ARN "topic/a": an ARN starts with "arn:" (or use "*")']);
  assert.equal(problems('arn:aws:iot:*'), [
    'Statement[0]: malformed resource ARN "arn:aws:iot:*": an ARN has six colon-separated parts: arn:aws:iot:<region>:<account>:<type>/<name>',
  ]);
  assert.equal(problems('arn:aws:s3:::bucket'), ['Statement[0]: malformed resource ARN "arn:aws:s3:::bucket": service must be "iot", not "s3"']);
  assert.equal(problems('arn:aws:iot:us-east-1:1234:topic/a'), ['Statement[0]: malformed resource ARN "arn:aws:iot:us-east-1:1234:topic/a": the account "1234" must be 12 digits']);
  assert.equal(problems('arn:aws:iot:useast:123456789012:topic/a'), ['Statement[0]: malformed resource ARN "arn:aws:iot:useast:123456789012:topic/a": "useast" is not a region']);
  assert.equal(problems('arn:aws:iot:us-east-1:123456789012:topics/a'), [
    'Statement[0]: malformed resource ARN "arn:aws:iot:us-east-1:123456789012:topics/a": unknown resource type "topics" (expected client, topic, topicfilter, thing, rolealias, thinggroup, thingtype, cert, cacert, job)',
  ]);
  assert.equal(problems('arn:aws:iot:us-east-1:123456789012:topic/'), ['Statement[0]: malformed resource ARN "arn:aws:iot:us-east-1:123456789012:topic/": "topic/" needs a name after the slash']);
  assert.equal(problems('arn:aws:iot:*:*:*'), []);
  assert.equal(problems('arn:*:iot:${aws:Region}:*:topic/a'), []);
});

test('policy variables: unknown names and broken syntax', () => {
  const problems = (Resource: string) => validatePolicyDocument(withStatement({ Effect: 'Allow', Action: 'iot:Publish', Resource }));
  assert.equal(problems('arn:aws:iot:*:*:topic/${iot:Connection.Thing.Name}'), [
    'Statement[0]: unknown policy variable ${iot:Connection.Thing.Name} in resource "arn:aws:iot:*:*:topic/${iot:Connection.Thing.Name}"',
  ]);
  assert.equal(problems('arn:aws:iot:*:*:topic/${iot:ClientId'), [
    'Statement[0]: malformed policy variable in resource "arn:aws:iot:*:*:topic/${iot:ClientId"',
  ]);
  assert.equal(
    problems('arn:aws:iot:*:*:topic/${iot:Connection.Thing.Attributes[site]}/${iot:Certificate.Subject.CommonName}/${aws:SourceIp}/${*}'),
    [],
  );
  assert.equal(validatePolicyDocument(withStatement({ Effect: 'Allow', Action: 'iot:${x}', Resource: '*' })), [
    'Statement[0]: policy variables are not allowed in Action ("iot:${x}")',
  ]);
  assert.equal(
    validatePolicyDocument(
      withStatement({ Effect: 'Allow', Action: 'iot:Connect', Resource: '*', Condition: { StringEquals: { 'iot:ClientId': '${iot:ThingName}' } } }),
    ),
    ['Statement[0]: unknown policy variable ${iot:ThingName} in condition StringEquals iot:ClientId'],
  );
  assert.equal(
    validatePolicyDocument(withStatement({ Effect: 'Allow', Action: 'iot:Connect', Resource: '*', Condition: { StringLike: { 'iot:ClientId': 'a-${iot:ClientId' } } })),
    ['Statement[0]: malformed policy variable in condition StringLike iot:ClientId ("a-${iot:ClientId")'],
  );
});

test('conditions: unknown operators and bad values', () => {
  assert.equal(
    validatePolicyDocument(
      withStatement({
        Effect: 'Allow',
        Action: 'iot:Connect',
        Resource: '*',
        Condition: { StringEqual: { 'iot:ClientId': 'a' }, NullIfExists: { 'iot:ClientId': 'true' }, Bool: { 'iot:Connection.Thing.IsAttached': { yes: 1 } } },
      }),
    ),
    [
      'Statement[0]: unknown condition operator "StringEqual"',
      'Statement[0]: unknown condition operator "NullIfExists"',
      'Statement[0]: Condition "Bool" "iot:Connection.Thing.IsAttached" must be a string, number, boolean or a non-empty array of them',
    ],
  );
  assert.equal(
    validatePolicyDocument(
      withStatement({
        Effect: 'Allow',
        Action: 'iot:Connect',
        Resource: '*',
        Condition: { 'ForAnyValue:StringLikeIfExists': { 'iot:ConnectAttributes': ['LastWill'] }, DateLessThan: { 'aws:CurrentTime': '2030-01-01T00:00:00Z' } },
      }),
    ),
    [],
  );
});

test('an action whose resource type the statement lacks is reported', () => {
  assert.equal(validatePolicyDocument(withStatement({ Effect: 'Allow', Action: ['iot:Publish', 'iot:Subscribe'], Resource: 'arn:aws:iot:*:*:topic/a/*' })), [
    'Statement[0]: iot:Subscribe is checked against topicfilter/ resources, but this statement has none (Subscribe is checked against the topic filter, not the topic)',
  ]);
  assert.equal(validatePolicyDocument(withStatement({ Effect: 'Allow', Action: 'iot:Connect', Resource: 'arn:aws:iot:*:*:topic/a' })), [
    'Statement[0]: iot:Connect is checked against client/ resources, but this statement has none',
  ]);
  // Mixed resources, wildcard types and NotResource are fine.
  assert.equal(
    validatePolicyDocument(withStatement({ Effect: 'Allow', Action: ['iot:Publish', 'iot:Subscribe'], Resource: ['arn:aws:iot:*:*:topic/a', 'arn:aws:iot:*:*:topicfilter/a'] })),
    [],
  );
  assert.equal(validatePolicyDocument(withStatement({ Effect: 'Allow', Action: 'iot:Subscribe', Resource: 'arn:aws:iot:*:*:topic*/a' })), []);
  assert.equal(validatePolicyDocument(withStatement({ Effect: 'Deny', Action: 'iot:Subscribe', NotResource: 'arn:aws:iot:*:*:topic/a' })), []);
});

test.run();
