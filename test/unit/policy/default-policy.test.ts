import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultDevicePolicy, evaluatePolicy, iotArn, validatePolicyDocument, type PolicyRequest, type PolicyStatement } from '../../../src/iot/policy/index.js';

const policy = defaultDevicePolicy({ telemetryTopic: 'dt/acme/${thing}/telemetry', commandsFilter: 'cmd/acme/${thing}/#' });
const T = '${iot:Connection.Thing.ThingName}';

const device = (action: string, resource: string, extra: Partial<PolicyRequest> = {}) =>
  evaluatePolicy(policy, { action, resource, clientId: 'pump-1', thingName: 'pump-1', ...extra });

test('the document follows AWS examples: thing-name client id, own topics only, wildcard region/account', () => {
  assert.equal(policy, {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'Connect',
        Effect: 'Allow',
        Action: 'iot:Connect',
        Resource: `arn:aws:iot:*:*:client/${T}`,
        Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } },
      },
      { Sid: 'PublishTelemetry', Effect: 'Allow', Action: 'iot:Publish', Resource: [`arn:aws:iot:*:*:topic/dt/acme/${T}/telemetry`] },
      { Sid: 'SubscribeCommands', Effect: 'Allow', Action: 'iot:Subscribe', Resource: [`arn:aws:iot:*:*:topicfilter/cmd/acme/${T}/#`] },
      {
        Sid: 'ReceiveCommands',
        Effect: 'Allow',
        Action: 'iot:Receive',
        Resource: [`arn:aws:iot:*:*:topic/cmd/acme/${T}`, `arn:aws:iot:*:*:topic/cmd/acme/${T}/*`],
      },
    ],
  });
  assert.equal(validatePolicyDocument(policy), []);
});

test('what a device may do', () => {
  for (const arn of [iotArn('client', 'pump-1'), 'arn:aws:iot:eu-west-1:123456789012:client/pump-1']) {
    assert.is(device('iot:Connect', arn).reason, 'explicit-allow', arn);
  }
  assert.is(device('iot:Publish', iotArn('topic', 'dt/acme/pump-1/telemetry')).decision, 'allow');
  assert.is(device('iot:Subscribe', iotArn('topicfilter', 'cmd/acme/pump-1/#')).decision, 'allow');
  assert.is(device('iot:Receive', iotArn('topic', 'cmd/acme/pump-1/reboot')).decision, 'allow');
  assert.is(device('iot:Receive', iotArn('topic', 'cmd/acme/pump-1')).decision, 'allow', 'MQTT # also matches the parent level');
});

test('what a device may not do', () => {
  const denied: [string, string, Partial<PolicyRequest>?][] = [
    ['iot:Connect', iotArn('client', 'pump-2')],
    ['iot:Connect', iotArn('client', 'pump-1'), { isAttached: false }],
    ['iot:Connect', iotArn('client', 'pump-1'), { thingName: undefined }],
    ['iot:Publish', iotArn('topic', 'dt/acme/pump-2/telemetry')],
    ['iot:Publish', iotArn('topic', 'dt/acme/pump-1/telemetry/extra')],
    ['iot:Publish', iotArn('topic', 'cmd/acme/pump-1/reboot')],
    ['iot:RetainPublish', iotArn('topic', 'dt/acme/pump-1/telemetry')],
    ['iot:Subscribe', iotArn('topicfilter', 'cmd/acme/+/#')],
    ['iot:Subscribe', iotArn('topicfilter', 'cmd/acme/#')],
    ['iot:Subscribe', iotArn('topicfilter', 'dt/acme/pump-1/telemetry')],
    ['iot:Receive', iotArn('topic', 'cmd/acme/pump-2/reboot')],
    ['iot:Receive', iotArn('topic', 'cmd/acme/pump-10/reboot')],
    ['iot:Receive', iotArn('topic', 'dt/acme/pump-2/telemetry')],
    ['iot:UpdateThingShadow', iotArn('thing', 'pump-1')],
  ];
  for (const [action, resource, extra] of denied) {
    assert.is(device(action, resource, extra).reason, 'implicit-deny', `${action} ${resource} ${JSON.stringify(extra ?? {})}`);
  }
});

test('a device with a thing name full of wildcard characters gets nothing extra', () => {
  const star = (action: string, resource: string) => evaluatePolicy(policy, { action, resource, clientId: '*', thingName: '*' });
  assert.is(star('iot:Publish', iotArn('topic', 'dt/acme/pump-1/telemetry')).decision, 'deny');
  assert.is(star('iot:Publish', iotArn('topic', 'dt/acme/*/telemetry')).decision, 'allow');
});

test('several topics, + in a filter, and literal * and ? in templates', () => {
  const multi = defaultDevicePolicy({
    telemetryTopic: ['dt/p/${thing}/telemetry', 'dt/p/${thing}/events'],
    commandsFilter: ['cmd/p/${thing}/+/set', 'ota/p/${thing}'],
  });
  assert.equal(validatePolicyDocument(multi), []);
  const can = (action: string, resource: string) => evaluatePolicy(multi, { action, resource, clientId: 't', thingName: 't' }).decision;
  assert.is(can('iot:Publish', iotArn('topic', 'dt/p/t/events')), 'allow');
  assert.is(can('iot:Subscribe', iotArn('topicfilter', 'cmd/p/t/+/set')), 'allow');
  assert.is(can('iot:Subscribe', iotArn('topicfilter', 'cmd/p/t/valve/set')), 'deny');
  assert.is(can('iot:Receive', iotArn('topic', 'cmd/p/t/valve/set')), 'allow');
  assert.is(can('iot:Receive', iotArn('topic', 'ota/p/t')), 'allow');
  assert.is(can('iot:Receive', iotArn('topic', 'ota/p/t/x')), 'deny');

  const odd = defaultDevicePolicy({ telemetryTopic: 'dt/what?/${thing}/*', commandsFilter: 'cmd/${thing}' });
  assert.equal((odd.Statement as readonly PolicyStatement[])[1]!.Resource, ['arn:aws:iot:*:*:topic/dt/what${?}/${iot:Connection.Thing.ThingName}/${*}']);
  const publishOdd = (topic: string) => evaluatePolicy(odd, { action: 'iot:Publish', resource: iotArn('topic', topic), clientId: 't', thingName: 't' }).decision;
  assert.is(publishOdd('dt/what?/t/*'), 'allow');
  assert.is(publishOdd('dt/whatX/t/anything'), 'deny');
});

test('bad templates are refused', () => {
  assert.throws(() => defaultDevicePolicy({ telemetryTopic: 'dt/${project}/${thing}', commandsFilter: 'cmd/${thing}/#' }), /Unknown placeholder \$\{project\}/);
  assert.throws(() => defaultDevicePolicy({ telemetryTopic: 'dt/+/${thing}', commandsFilter: 'cmd/${thing}/#' }), /may not contain the MQTT wildcards/);
  assert.throws(() => defaultDevicePolicy({ telemetryTopic: 'dt/${thing}', commandsFilter: 'cmd/#/${thing}' }), /not a valid MQTT topic filter/);
  assert.throws(() => defaultDevicePolicy({ telemetryTopic: 'dt/${thing}', commandsFilter: 'cmd/a+/${thing}' }), /not a valid MQTT topic filter/);
});

test.run();
