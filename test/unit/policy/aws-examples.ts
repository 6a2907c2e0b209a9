/**
 * AWS's documented example IoT policies (AWS IoT Core Developer Guide: "Connect policy examples",
 * "Connect and publish policy examples", "Publish/Subscribe policy examples", "Thing policy examples",
 * "Basic AWS IoT Core policy variables"), with the outcomes the guide describes for them.
 * Documents are copied as published; the requests and expectations are ours.
 */
import type { PolicyDocument, PolicyRequest } from '../../../src/iot/policy/index.js';

export const ARN = 'arn:aws:iot:us-east-1:123456789012';

export interface ExpectedCase {
  title: string;
  request: PolicyRequest;
  decision: 'allow' | 'deny';
  reason: 'explicit-allow' | 'explicit-deny' | 'implicit-deny';
  /** Exact reasons of some statements, by statement index. */
  statementReasons?: Record<number, string>;
}

export interface AwsExample {
  name: string;
  document: PolicyDocument;
  cases: ExpectedCase[];
}

const thingName = '${iot:Connection.Thing.ThingName}';

export const AWS_EXAMPLES: AwsExample[] = [
  {
    name: 'Connect: deny client1/client2, allow a registered thing as its own client id',
    document: {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Deny', Action: ['iot:Connect'], Resource: [`${ARN}:client/client1`, `${ARN}:client/client2`] },
        {
          Effect: 'Allow',
          Action: ['iot:Connect'],
          Resource: [`${ARN}:client/${thingName}`],
          Condition: { Bool: { 'iot:Connection.Thing.IsAttached': 'true' } },
        },
      ],
    },
    cases: [
      {
        title: 'registered, attached thing connecting with its name',
        request: { action: 'iot:Connect', resource: `${ARN}:client/sensor-7`, clientId: 'sensor-7', thingName: 'sensor-7' },
        decision: 'allow',
        reason: 'explicit-allow',
        statementReasons: {
          0: `resource ${ARN}:client/sensor-7 is not in Resource`,
          1: `Action "iot:Connect" matches; Resource "${ARN}:client/${thingName}" matches; Condition holds`,
        },
      },
      {
        title: 'a thing named client1 is still denied: explicit deny wins',
        request: { action: 'iot:Connect', resource: `${ARN}:client/client1`, clientId: 'client1', thingName: 'client1' },
        decision: 'deny',
        reason: 'explicit-deny',
        statementReasons: { 0: `Action "iot:Connect" matches; Resource "${ARN}:client/client1" matches` },
      },
      {
        title: 'unregistered device: the thing name variable does not resolve',
        request: { action: 'iot:Connect', resource: `${ARN}:client/sensor-7`, clientId: 'sensor-7' },
        decision: 'deny',
        reason: 'implicit-deny',
        statementReasons: { 1: 'policy variable ${iot:Connection.Thing.ThingName} cannot be resolved' },
      },
      {
        title: 'connecting as another thing',
        request: { action: 'iot:Connect', resource: `${ARN}:client/sensor-8`, clientId: 'sensor-8', thingName: 'sensor-7' },
        decision: 'deny',
        reason: 'implicit-deny',
        statementReasons: { 1: `resource ${ARN}:client/sensor-8 is not in Resource` },
      },
    ],
  },
  {
    name: 'Connect: unregistered device with a fixed client id',
    document: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['iot:Connect'], Resource: [`${ARN}:client/client1`] }] },
    cases: [
      { title: 'client1', request: { action: 'iot:Connect', resource: `${ARN}:client/client1`, clientId: 'client1' }, decision: 'allow', reason: 'explicit-allow' },
      { title: 'client2', request: { action: 'iot:Connect', resource: `${ARN}:client/client2`, clientId: 'client2' }, decision: 'deny', reason: 'implicit-deny' },
      {
        title: 'another region',
        request: { action: 'iot:Connect', resource: 'arn:aws:iot:eu-west-1:123456789012:client/client1', clientId: 'client1' },
        decision: 'deny',
        reason: 'implicit-deny',
      },
    ],
  },
  {
    name: 'Connect and publish: registered thing publishes on its own topic',
    document: {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['iot:Publish'], Resource: [`${ARN}:topic/${thingName}`] },
        { Effect: 'Allow', Action: ['iot:Connect'], Resource: [`${ARN}:client/${thingName}`] },
      ],
    },
    cases: [
      { title: 'own topic', request: { action: 'iot:Publish', resource: `${ARN}:topic/pump-1`, clientId: 'pump-1', thingName: 'pump-1' }, decision: 'allow', reason: 'explicit-allow' },
      {
        title: "another thing's topic",
        request: { action: 'iot:Publish', resource: `${ARN}:topic/pump-2`, clientId: 'pump-1', thingName: 'pump-1' },
        decision: 'deny',
        reason: 'implicit-deny',
        statementReasons: { 0: `resource ${ARN}:topic/pump-2 is not in Resource`, 1: 'action iot:Publish is not in Action' },
      },
      {
        title: 'a subtopic of its own topic',
        request: { action: 'iot:Publish', resource: `${ARN}:topic/pump-1/x`, clientId: 'pump-1', thingName: 'pump-1' },
        decision: 'deny',
        reason: 'implicit-deny',
      },
    ],
  },
  {
    name: 'Connect and publish: unregistered client publishes on its client-id topic',
    document: {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['iot:Publish'], Resource: [`${ARN}:topic/\${iot:ClientId}`] },
        { Effect: 'Allow', Action: ['iot:Connect'], Resource: [`${ARN}:client/client1`] },
      ],
    },
    cases: [
      { title: 'own topic', request: { action: 'iot:Publish', resource: `${ARN}:topic/client1`, clientId: 'client1' }, decision: 'allow', reason: 'explicit-allow' },
      { title: 'other topic', request: { action: 'iot:Publish', resource: `${ARN}:topic/client2`, clientId: 'client1' }, decision: 'deny', reason: 'implicit-deny' },
    ],
  },
  {
    name: 'Publish/Subscribe: MQTT + is a literal character in a topicfilter resource',
    document: {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['iot:Connect'], Resource: ['*'] },
        { Effect: 'Allow', Action: ['iot:Subscribe'], Resource: [`${ARN}:topicfilter/foo/+/bar`] },
      ],
    },
    cases: [
      { title: 'subscribe foo/+/bar', request: { action: 'iot:Subscribe', resource: `${ARN}:topicfilter/foo/+/bar`, clientId: 'c' }, decision: 'allow', reason: 'explicit-allow' },
      {
        title: 'subscribe foo/baz/bar (not covered: + is not a policy wildcard)',
        request: { action: 'iot:Subscribe', resource: `${ARN}:topicfilter/foo/baz/bar`, clientId: 'c' },
        decision: 'deny',
        reason: 'implicit-deny',
        statementReasons: { 1: `resource ${ARN}:topicfilter/foo/baz/bar is not in Resource` },
      },
      { title: 'connect anywhere', request: { action: 'iot:Connect', resource: `${ARN}:client/anything`, clientId: 'anything' }, decision: 'allow', reason: 'explicit-allow' },
    ],
  },
  {
    name: 'Publish/Subscribe: * at the end of a topic filter',
    document: {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['iot:Connect'], Resource: ['*'] },
        { Effect: 'Allow', Action: ['iot:Subscribe'], Resource: [`${ARN}:topicfilter/foo/bar/*`] },
      ],
    },
    cases: [
      { title: 'foo/bar/baz', request: { action: 'iot:Subscribe', resource: `${ARN}:topicfilter/foo/bar/baz`, clientId: 'c' }, decision: 'allow', reason: 'explicit-allow' },
      { title: 'foo/bar/# (# is just a character * matches)', request: { action: 'iot:Subscribe', resource: `${ARN}:topicfilter/foo/bar/#`, clientId: 'c' }, decision: 'allow', reason: 'explicit-allow' },
      { title: 'foo/bar (no trailing level)', request: { action: 'iot:Subscribe', resource: `${ARN}:topicfilter/foo/bar`, clientId: 'c' }, decision: 'deny', reason: 'implicit-deny' },
      {
        title: 'publishing is not subscribing',
        request: { action: 'iot:Publish', resource: `${ARN}:topic/foo/bar/baz`, clientId: 'c' },
        decision: 'deny',
        reason: 'implicit-deny',
        statementReasons: { 1: 'action iot:Publish is not in Action' },
      },
    ],
  },
  {
    name: 'Publish/Subscribe: everything (iot:*, *)',
    document: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['iot:*'], Resource: ['*'] }] },
    cases: [
      { title: 'publish', request: { action: 'iot:Publish', resource: `${ARN}:topic/a/b`, clientId: 'c' }, decision: 'allow', reason: 'explicit-allow' },
      { title: 'receive', request: { action: 'iot:Receive', resource: `${ARN}:topic/a/b`, clientId: 'c' }, decision: 'allow', reason: 'explicit-allow' },
      { title: 'a jobs action is another service', request: { action: 'iotjobsdata:DescribeJobExecution', resource: `${ARN}:thing/t`, clientId: 'c' }, decision: 'deny', reason: 'implicit-deny' },
    ],
  },
  {
    name: 'Publish/Subscribe: topics specific to each registered device',
    document: {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['iot:Connect'], Resource: [`${ARN}:client/${thingName}`] },
        { Effect: 'Allow', Action: ['iot:Publish'], Resource: [`${ARN}:topic/clients/${thingName}`] },
        { Effect: 'Allow', Action: ['iot:Subscribe'], Resource: [`${ARN}:topicfilter/clients/${thingName}`] },
        { Effect: 'Allow', Action: ['iot:Receive'], Resource: [`${ARN}:topic/clients/${thingName}`] },
      ],
    },
    cases: [
      { title: 'publish own', request: { action: 'iot:Publish', resource: `${ARN}:topic/clients/t1`, clientId: 't1', thingName: 't1' }, decision: 'allow', reason: 'explicit-allow' },
      { title: 'subscribe own', request: { action: 'iot:Subscribe', resource: `${ARN}:topicfilter/clients/t1`, clientId: 't1', thingName: 't1' }, decision: 'allow', reason: 'explicit-allow' },
      { title: 'receive own', request: { action: 'iot:Receive', resource: `${ARN}:topic/clients/t1`, clientId: 't1', thingName: 't1' }, decision: 'allow', reason: 'explicit-allow' },
      { title: 'subscribe another', request: { action: 'iot:Subscribe', resource: `${ARN}:topicfilter/clients/t2`, clientId: 't1', thingName: 't1' }, decision: 'deny', reason: 'implicit-deny' },
      {
        title: 'subscribe with the topic ARN instead of the topicfilter ARN',
        request: { action: 'iot:Subscribe', resource: `${ARN}:topic/clients/t1`, clientId: 't1', thingName: 't1' },
        decision: 'deny',
        reason: 'implicit-deny',
      },
    ],
  },
  {
    name: 'Thing policy: connect only when the certificate is attached to the thing',
    document: {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['iot:Connect'], Resource: ['*'], Condition: { Bool: { 'iot:Connection.Thing.IsAttached': ['true'] } } }],
    },
    cases: [
      { title: 'attached', request: { action: 'iot:Connect', resource: `${ARN}:client/t1`, clientId: 't1', thingName: 't1' }, decision: 'allow', reason: 'explicit-allow' },
      {
        title: 'not attached',
        request: { action: 'iot:Connect', resource: `${ARN}:client/t1`, clientId: 't1', thingName: 't1', isAttached: false },
        decision: 'deny',
        reason: 'implicit-deny',
        statementReasons: { 0: 'condition Bool iot:Connection.Thing.IsAttached is not met (request value: "false")' },
      },
      {
        title: 'no thing at all',
        request: { action: 'iot:Connect', resource: `${ARN}:client/t1`, clientId: 't1' },
        decision: 'deny',
        reason: 'implicit-deny',
        statementReasons: { 0: 'condition Bool iot:Connection.Thing.IsAttached is not met (request value: "false")' },
      },
    ],
  },
  {
    name: 'Thing policy: publish with a given thing type and attribute',
    document: {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: ['iot:Publish'],
          Resource: `${ARN}:topic/device/stats`,
          Condition: {
            StringEquals: {
              'iot:Connection.Thing.Attributes[attributeName]': 'attributeValue',
              'iot:Connection.Thing.ThingTypeName': 'Thing_Type_Name',
            },
            Bool: { 'iot:Connection.Thing.IsAttached': 'true' },
          },
        },
      ],
    },
    cases: [
      {
        title: 'type and attribute match',
        request: {
          action: 'iot:Publish',
          resource: `${ARN}:topic/device/stats`,
          clientId: 't1',
          thingName: 't1',
          thingTypeName: 'Thing_Type_Name',
          thingAttributes: { attributeName: 'attributeValue' },
        },
        decision: 'allow',
        reason: 'explicit-allow',
      },
      {
        title: 'wrong thing type',
        request: {
          action: 'iot:Publish',
          resource: `${ARN}:topic/device/stats`,
          clientId: 't1',
          thingName: 't1',
          thingTypeName: 'Other',
          thingAttributes: { attributeName: 'attributeValue' },
        },
        decision: 'deny',
        reason: 'implicit-deny',
        statementReasons: { 0: 'condition StringEquals iot:Connection.Thing.ThingTypeName is not met (request value: "Other")' },
      },
      {
        title: 'attribute missing',
        request: { action: 'iot:Publish', resource: `${ARN}:topic/device/stats`, clientId: 't1', thingName: 't1', thingTypeName: 'Thing_Type_Name' },
        decision: 'deny',
        reason: 'implicit-deny',
        statementReasons: { 0: 'condition StringEquals iot:Connection.Thing.Attributes[attributeName] is not met (not in request)' },
      },
    ],
  },
  {
    name: 'Thing policy: publish under a topic named after a thing attribute',
    document: {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: ['iot:Publish'], Resource: `${ARN}:topic/\${iot:Connection.Thing.Attributes[attributeName]}/*` }],
    },
    cases: [
      {
        title: 'under the attribute',
        request: { action: 'iot:Publish', resource: `${ARN}:topic/emea/t1`, clientId: 't1', thingName: 't1', thingAttributes: { attributeName: 'emea' } },
        decision: 'allow',
        reason: 'explicit-allow',
      },
      {
        title: 'certificate not attached to the thing: the variable is not resolved, access denied',
        request: {
          action: 'iot:Publish',
          resource: `${ARN}:topic/emea/t1`,
          clientId: 't1',
          thingName: 't1',
          thingAttributes: { attributeName: 'emea' },
          isAttached: false,
        },
        decision: 'deny',
        reason: 'implicit-deny',
        statementReasons: { 0: 'policy variable ${iot:Connection.Thing.Attributes[attributeName]} cannot be resolved' },
      },
    ],
  },
  {
    name: 'Basic policy variables: client-id topic from one source IP',
    document: {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['iot:Connect'], Resource: [`${ARN}:client/clientid1`] },
        {
          Effect: 'Allow',
          Action: ['iot:Publish'],
          Resource: [`${ARN}:topic/my/topic/\${iot:ClientId}`],
          Condition: { IpAddress: { 'aws:SourceIp': '123.45.167.89' } },
        },
      ],
    },
    cases: [
      {
        title: 'from the address',
        request: { action: 'iot:Publish', resource: `${ARN}:topic/my/topic/clientid1`, clientId: 'clientid1', context: { 'aws:SourceIp': '123.45.167.89' } },
        decision: 'allow',
        reason: 'explicit-allow',
      },
      {
        title: 'from elsewhere',
        request: { action: 'iot:Publish', resource: `${ARN}:topic/my/topic/clientid1`, clientId: 'clientid1', context: { 'aws:SourceIp': '10.0.0.1' } },
        decision: 'deny',
        reason: 'implicit-deny',
        statementReasons: { 1: 'condition IpAddress aws:SourceIp is not met (request value: "10.0.0.1")' },
      },
    ],
  },
  {
    name: 'Basic policy variables: the ${iot:ClientId} topic filter pitfall',
    document: {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['iot:Connect'], Resource: ['*'] },
        { Effect: 'Allow', Action: ['iot:Subscribe'], Resource: [`${ARN}:topicfilter/my/topic/\${iot:ClientId}/update`] },
      ],
    },
    cases: [
      {
        title: 'a client connected as "+" may subscribe to my/topic/+/update, as the guide warns',
        request: { action: 'iot:Subscribe', resource: `${ARN}:topicfilter/my/topic/+/update`, clientId: '+' },
        decision: 'allow',
        reason: 'explicit-allow',
      },
      {
        title: 'but a client id of "*" is not a policy wildcard: substituted values are literal',
        request: { action: 'iot:Subscribe', resource: `${ARN}:topicfilter/my/topic/abc/update`, clientId: '*' },
        decision: 'deny',
        reason: 'implicit-deny',
      },
    ],
  },
];
