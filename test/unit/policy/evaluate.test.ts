import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  evaluatePolicies,
  evaluatePolicy,
  iotArn,
  PolicyDocumentError,
  type PolicyDocument,
  type PolicyRequest,
  type PolicyStatement,
} from '../../../src/iot/policy/index.js';

const ARN = 'arn:aws:iot:us-east-1:123456789012';
const doc = (...Statement: PolicyStatement[]): PolicyDocument => ({ Version: '2012-10-17', Statement });
const publish = (topic: string, extra: Partial<PolicyRequest> = {}): PolicyRequest => ({
  action: 'iot:Publish',
  resource: `${ARN}:topic/${topic}`,
  clientId: 'c1',
  ...extra,
});

test('no statement matching is the implicit deny', () => {
  const result = evaluatePolicy(doc({ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }), publish('a'));
  assert.equal(result, {
    decision: 'deny',
    reason: 'implicit-deny',
    statements: [{ index: 0, effect: 'Allow', matched: false, reason: 'action iot:Publish is not in Action' }],
  });
});

test('explicit deny wins over an allow, whatever the order', () => {
  const allow: PolicyStatement = { Sid: 'All', Effect: 'Allow', Action: 'iot:*', Resource: '*' };
  const deny: PolicyStatement = { Sid: 'NoAdmin', Effect: 'Deny', Action: 'iot:Publish', Resource: `${ARN}:topic/admin/*` };
  for (const document of [doc(allow, deny), doc(deny, allow)]) {
    const result = evaluatePolicy(document, publish('admin/reset'));
    assert.is(result.decision, 'deny');
    assert.is(result.reason, 'explicit-deny');
    assert.ok(result.statements.every((s) => s.matched));
  }
  assert.is(evaluatePolicy(doc(allow, deny), publish('data/x')).reason, 'explicit-allow');
});

test('statement results carry Sid and effect, in document order', () => {
  const result = evaluatePolicy(
    doc({ Sid: 'A', Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/a` }, { Effect: 'Deny', Action: 'iot:Publish', Resource: `${ARN}:topic/b` }),
    publish('a'),
  );
  assert.equal(result.statements, [
    { index: 0, sid: 'A', effect: 'Allow', matched: true, reason: `Action "iot:Publish" matches; Resource "${ARN}:topic/a" matches` },
    { index: 1, effect: 'Deny', matched: false, reason: `resource ${ARN}:topic/a is not in Resource` },
  ]);
});

test('Statement may be a single object; Action and Resource plain strings', () => {
  const result = evaluatePolicy({ Version: '2012-10-17', Statement: { Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/a` } }, publish('a'));
  assert.is(result.decision, 'allow');
});

test('the document may be JSON text', () => {
  const text = JSON.stringify(doc({ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/a` }));
  assert.is(evaluatePolicy(text, publish('a')).decision, 'allow');
  assert.is(evaluatePolicy(text, publish('b')).decision, 'deny');
});

test('action names are case-insensitive and take wildcards', () => {
  const cases: [string, boolean][] = [
    ['iot:Publish', true],
    ['IOT:PUBLISH', true],
    ['iot:Pub*', true],
    ['iot:P?blish', true],
    ['iot:*', true],
    ['*', true],
    ['iot:Publ', false],
    ['iot:Subscribe', false],
    ['iotjobsdata:*', false],
  ];
  for (const [action, allowed] of cases) {
    const result = evaluatePolicy(doc({ Effect: 'Allow', Action: action, Resource: '*' }), publish('a'));
    assert.is(result.decision, allowed ? 'allow' : 'deny', action);
  }
  assert.is(evaluatePolicy(doc({ Effect: 'Allow', Action: 'iot:publish', Resource: '*' }), publish('a', { action: 'IoT:Publish' })).decision, 'allow');
});

test('resources are case-sensitive; * spans characters and levels, ? is exactly one character', () => {
  const cases: [string, string, boolean][] = [
    ['topic/a/b', 'a/b', true],
    ['topic/a/b', 'A/b', false],
    ['topic/a/*', 'a/b/c/d', true],
    ['topic/a/*', 'a/', true],
    ['topic/a/*', 'a', false],
    ['topic/a/?', 'a/b', true],
    ['topic/a/?', 'a/bc', false],
    ['topic/a/??', 'a/é€', true],
    ['topic/*/temp', 'x/y/temp', true],
    ['topic/*', '$aws/things/t1/shadow/update', true],
  ];
  for (const [pattern, topic, allowed] of cases) {
    const result = evaluatePolicy(doc({ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:${pattern}` }), publish(topic));
    assert.is(result.decision, allowed ? 'allow' : 'deny', `${pattern} vs ${topic}`);
  }
});

test('MQTT # and + in a resource are plain characters', () => {
  const document = doc({ Effect: 'Allow', Action: 'iot:Subscribe', Resource: `${ARN}:topicfilter/cmd/#` });
  const subscribe = (filter: string) => evaluatePolicy(document, { action: 'iot:Subscribe', resource: `${ARN}:topicfilter/${filter}`, clientId: 'c' }).decision;
  assert.is(subscribe('cmd/#'), 'allow');
  assert.is(subscribe('cmd/reboot'), 'deny');
  assert.is(subscribe('cmd/+'), 'deny');
});

test('ARN components are matched one by one: * in the region does not reach into the account', () => {
  const document = doc({ Effect: 'Allow', Action: 'iot:Publish', Resource: 'arn:aws:iot:*:123456789012:topic/a' });
  assert.is(evaluatePolicy(document, publish('a')).decision, 'allow');
  assert.is(evaluatePolicy(document, { ...publish('a'), resource: 'arn:aws:iot:eu-west-1:123456789012:topic/a' }).decision, 'allow');
  assert.is(evaluatePolicy(document, { ...publish('a'), resource: 'arn:aws:iot:eu-west-1:999999999999:topic/a' }).decision, 'deny');
  // A topic may contain colons: they belong to the last component.
  const colons = doc({ Effect: 'Allow', Action: 'iot:Publish', Resource: 'arn:aws:iot:*:*:topic/a:b/*' });
  assert.is(evaluatePolicy(colons, publish('a:b/c')).decision, 'allow');
  assert.is(evaluatePolicy(colons, publish('a/c')).decision, 'deny');
});

test('the short resource forms expand with the local region and account', () => {
  const document = doc({ Effect: 'Allow', Action: 'iot:Publish', Resource: 'arn:aws:iot:local:000000000000:topic/a' });
  assert.is(evaluatePolicy(document, { action: 'iot:Publish', resource: 'topic/a', clientId: 'c' }).decision, 'allow');
  assert.is(iotArn('topicfilter', 'cmd/#'), 'arn:aws:iot:local:000000000000:topicfilter/cmd/#');
  assert.is(iotArn('client', 'c1', 'eu-west-1', '123456789012'), 'arn:aws:iot:eu-west-1:123456789012:client/c1');
});

test('NotAction: everything but the listed actions', () => {
  const document = doc({ Effect: 'Allow', NotAction: ['iot:Publish', 'iot:RetainPublish'], Resource: '*' });
  assert.is(evaluatePolicy(document, { action: 'iot:Subscribe', resource: `${ARN}:topicfilter/a`, clientId: 'c' }).statements[0]!.reason, 'NotAction does not exclude iot:Subscribe; Resource "*" matches');
  const denied = evaluatePolicy(document, publish('a'));
  assert.is(denied.decision, 'deny');
  assert.is(denied.statements[0]!.reason, 'action iot:Publish is excluded by NotAction "iot:Publish"');
});

test('Deny with NotAction: deny everything except connect and publish', () => {
  const document = doc(
    { Effect: 'Allow', Action: 'iot:*', Resource: '*' },
    { Effect: 'Deny', NotAction: ['iot:Connect', 'iot:Publish'], Resource: '*' },
  );
  assert.is(evaluatePolicy(document, publish('a')).decision, 'allow');
  assert.is(evaluatePolicy(document, { action: 'iot:Subscribe', resource: `${ARN}:topicfilter/a`, clientId: 'c' }).reason, 'explicit-deny');
});

test('NotResource: everything but the listed resources', () => {
  const document = doc({ Effect: 'Allow', Action: 'iot:Publish', NotResource: `${ARN}:topic/private/*` });
  assert.is(evaluatePolicy(document, publish('public/a')).statements[0]!.reason, `Action "iot:Publish" matches; NotResource does not exclude ${ARN}:topic/public/a`);
  const denied = evaluatePolicy(document, publish('private/a'));
  assert.is(denied.decision, 'deny');
  assert.is(denied.statements[0]!.reason, `resource ${ARN}:topic/private/a is excluded by NotResource "${ARN}:topic/private/*"`);
});

test('an unresolved variable makes its resource match nothing, but other resources still apply', () => {
  const document = doc({
    Effect: 'Allow',
    Action: 'iot:Publish',
    Resource: [`${ARN}:topic/things/\${iot:Connection.Thing.ThingName}`, `${ARN}:topic/public`],
  });
  assert.is(evaluatePolicy(document, publish('public')).decision, 'allow');
  const result = evaluatePolicy(document, publish('things/c1'));
  assert.is(result.decision, 'deny');
  assert.is(result.statements[0]!.reason, 'policy variable ${iot:Connection.Thing.ThingName} cannot be resolved');
  assert.is(evaluatePolicy(document, publish('things/c1', { thingName: 'c1' })).decision, 'allow');
});

test('an unresolved variable in NotResource or a Condition makes the statement not apply', () => {
  const notResource = doc(
    { Effect: 'Allow', Action: 'iot:Publish', Resource: '*' },
    { Effect: 'Deny', Action: 'iot:Publish', NotResource: `${ARN}:topic/\${iot:Connection.Thing.ThingName}/*` },
  );
  const withThing = evaluatePolicy(notResource, publish('other/x', { thingName: 't1' }));
  assert.is(withThing.reason, 'explicit-deny');
  const withoutThing = evaluatePolicy(notResource, publish('other/x'));
  assert.is(withoutThing.statements[1]!.matched, false);
  assert.is(withoutThing.statements[1]!.reason, 'policy variable ${iot:Connection.Thing.ThingName} cannot be resolved');

  const condition = doc({
    Effect: 'Allow',
    Action: 'iot:Connect',
    Resource: '*',
    Condition: { StringEquals: { 'iot:ClientId': '${iot:Connection.Thing.ThingName}' } },
  });
  const connect = (extra: Partial<PolicyRequest>) => evaluatePolicy(condition, { action: 'iot:Connect', resource: `${ARN}:client/t1`, clientId: 't1', ...extra });
  assert.is(connect({ thingName: 't1' }).decision, 'allow');
  assert.is(connect({ thingName: 't2' }).decision, 'deny');
  assert.is(connect({}).statements[0]!.reason, 'policy variable ${iot:Connection.Thing.ThingName} cannot be resolved');
});

test('a variable default applies when the key has no value', () => {
  const document = doc({ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/\${iot:Connection.Thing.ThingTypeName, 'untyped'}/*` });
  assert.is(evaluatePolicy(document, publish('untyped/x', { thingName: 't' })).decision, 'allow');
  assert.is(evaluatePolicy(document, publish('pump/x', { thingName: 't', thingTypeName: 'pump' })).decision, 'allow');
  assert.is(evaluatePolicy(document, publish('untyped/x', { thingName: 't', thingTypeName: 'pump' })).decision, 'deny');
});

test('substituted values are literal, and ${*} ${?} ${$} are the plain characters', () => {
  const byClient = doc({ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/c/\${iot:ClientId}` });
  assert.is(evaluatePolicy(byClient, publish('c/x', { clientId: '?' })).decision, 'deny');
  assert.is(evaluatePolicy(byClient, publish('c/?', { clientId: '?' })).decision, 'allow');
  assert.is(evaluatePolicy(byClient, publish('c/a:b', { clientId: 'a:b' })).decision, 'allow');

  const escaped = doc({ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/odd\${*}\${?}\${$}` });
  assert.is(evaluatePolicy(escaped, publish('odd*?$')).decision, 'allow');
  assert.is(evaluatePolicy(escaped, publish('oddxy$')).decision, 'deny');
});

test('policy variable names are case-insensitive, attribute names are not', () => {
  const document = doc({ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/\${IOT:connection.thing.ATTRIBUTES[Site]}` });
  assert.is(evaluatePolicy(document, publish('lyon', { thingName: 't', thingAttributes: { Site: 'lyon' } })).decision, 'allow');
  assert.is(evaluatePolicy(document, publish('lyon', { thingName: 't', thingAttributes: { site: 'lyon' } })).decision, 'deny');
});

test('evaluatePolicies: the union of a principal\'s policies', () => {
  const allowAll = doc({ Effect: 'Allow', Action: 'iot:*', Resource: '*' });
  const denyAdmin = doc({ Sid: 'NoAdmin', Effect: 'Deny', Action: 'iot:Publish', Resource: `${ARN}:topic/admin/*` });
  const onlyA = doc({ Effect: 'Allow', Action: 'iot:Publish', Resource: `${ARN}:topic/a` });

  const denied = evaluatePolicies([allowAll, denyAdmin], publish('admin/x'));
  assert.is(denied.reason, 'explicit-deny');
  assert.equal(
    denied.statements.map((s) => [s.policy, s.index, s.matched]),
    [
      [0, 0, true],
      [1, 0, true],
    ],
  );
  assert.is(evaluatePolicies([onlyA, denyAdmin], publish('a')).reason, 'explicit-allow');
  assert.is(evaluatePolicies([onlyA, denyAdmin], publish('b')).reason, 'implicit-deny');
  assert.equal(evaluatePolicies([], publish('a')), { decision: 'deny', reason: 'implicit-deny', statements: [] });
});

test('a document that cannot be evaluated throws PolicyDocumentError listing its problems', () => {
  const broken = (document: unknown) => {
    try {
      evaluatePolicy(document as PolicyDocument, publish('a'));
    } catch (error) {
      assert.instance(error, PolicyDocumentError);
      return (error as PolicyDocumentError).problems;
    }
    assert.unreachable('should have thrown');
  };
  const json = broken('{"Statement": [');
  assert.is(json?.length, 1);
  assert.match(json![0]!, /^not valid JSON: /);
  assert.equal(broken({ Version: '2012-10-17' }), ['Statement is missing']);
  assert.equal(broken({ Statement: [{ Effect: 'allow', Action: 'iot:Publish', Resource: '*' }] }), ['Statement[0]: Effect must be "Allow" or "Deny" (got "allow")']);
  assert.equal(broken({ Statement: [{ Effect: 'Allow', Action: 'iot:Publish', NotAction: 'iot:Connect', Resource: '*' }] }), [
    'Statement[0]: needs exactly one of Action or NotAction',
  ]);
  assert.equal(broken({ Statement: { Sid: 'X', Effect: 'Deny', Action: 'iot:Publish', Resource: '*', Condition: { StringMatches: { 'iot:ClientId': 'a' } } } }), [
    'Statement (Sid "X"): unknown condition operator "StringMatches"',
  ]);
  // One broken policy among several fails the whole check rather than being skipped.
  assert.throws(() => evaluatePolicies([doc({ Effect: 'Allow', Action: '*', Resource: '*' }), { Statement: [] } as PolicyDocument], publish('a')), (e: unknown) => e instanceof PolicyDocumentError);
});

test.run();
