/**
 * `iot:ConnectAttributes` and the IAM set operators, with AWS's "MQTT persistent sessions policy
 * examples" from "Connect policy examples":
 *   https://docs.aws.amazon.com/iot/latest/developerguide/connect-policy.html
 * and IAM's "Set operators for multivalued context keys" (ForAllValues over an empty set is true,
 * ForAnyValue over an empty set is false):
 *   https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
 * Documents are copied from the pages; the CONNECTs and the outcomes follow each example's description.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { evaluatePolicy, validatePolicyDocument, type PolicyCondition, type PolicyDocument } from '../../../src/iot/policy/index.js';

const ARN = 'arn:aws:iot:us-east-1:123456789012';

/** The CONNECTs a client can make: clean without will, persistent, with a will, both, and a feature AWS may add. */
const CLEAN: string[] = [];
const PERSISTENT = ['PersistentConnect'];
const WILL = ['LastWill'];
const BOTH = ['PersistentConnect', 'LastWill'];
const NEW_FEATURE = ['SomeNewFeature'];
const PERSISTENT_AND_NEW = ['PersistentConnect', 'SomeNewFeature'];

const allow = (condition: PolicyCondition): PolicyDocument => ({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Action: ['iot:Connect'], Resource: `${ARN}:client/client1`, Condition: condition }],
});

interface Example {
  description: string;
  document: PolicyDocument;
  outcomes: Array<[attributes: string[], decision: 'allow' | 'deny', reason?: string]>;
}

const EXAMPLES: Example[] = [
  {
    description: 'allows connect with the PersistentConnect feature',
    document: allow({ 'ForAllValues:StringEquals': { 'iot:ConnectAttributes': ['PersistentConnect'] } }),
    outcomes: [[CLEAN, 'allow'], [PERSISTENT, 'allow'], [WILL, 'deny'], [BOTH, 'deny'], [NEW_FEATURE, 'deny']],
  },
  {
    description: 'disallows PersistentConnect, other features are allowed',
    document: allow({ 'ForAllValues:StringNotEquals': { 'iot:ConnectAttributes': ['PersistentConnect'] } }),
    outcomes: [[CLEAN, 'allow'], [PERSISTENT, 'deny'], [WILL, 'allow'], [BOTH, 'deny'], [NEW_FEATURE, 'allow']],
  },
  {
    description: 'the same with StringEquals: any other feature, including a new one, is allowed',
    document: {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['iot:Connect'], Resource: '*' },
        { Effect: 'Deny', Action: ['iot:Connect'], Resource: '*', Condition: { 'ForAnyValue:StringEquals': { 'iot:ConnectAttributes': ['PersistentConnect'] } } },
      ],
    },
    outcomes: [[CLEAN, 'allow'], [PERSISTENT, 'deny', 'explicit-deny'], [WILL, 'allow'], [BOTH, 'deny', 'explicit-deny'], [NEW_FEATURE, 'allow']],
  },
  {
    description: 'allows connect with both PersistentConnect and LastWill; any other new feature is not allowed',
    document: allow({ 'ForAllValues:StringEquals': { 'iot:ConnectAttributes': ['PersistentConnect', 'LastWill'] } }),
    outcomes: [[CLEAN, 'allow'], [PERSISTENT, 'allow'], [WILL, 'allow'], [BOTH, 'allow'], [NEW_FEATURE, 'deny'], [PERSISTENT_AND_NEW, 'deny']],
  },
  {
    description: 'allows a clean connect with or without LastWill; no other feature is allowed',
    document: allow({ 'ForAllValues:StringEquals': { 'iot:ConnectAttributes': ['LastWill'] } }),
    outcomes: [[CLEAN, 'allow'], [WILL, 'allow'], [PERSISTENT, 'deny'], [BOTH, 'deny']],
  },
  {
    description: 'allows connect only with PersistentConnect; a new feature is allowed as long as the connection is persistent',
    document: allow({ 'ForAnyValue:StringEquals': { 'iot:ConnectAttributes': ['PersistentConnect'] } }),
    outcomes: [[CLEAN, 'deny'], [PERSISTENT, 'allow'], [PERSISTENT_AND_NEW, 'allow'], [WILL, 'deny'], [BOTH, 'allow']],
  },
];

for (const example of EXAMPLES) {
  test(`AWS connect example is valid: ${example.description}`, () => {
    assert.equal(validatePolicyDocument(example.document), []);
  });
  for (const [attributes, decision, reason] of example.outcomes) {
    test(`${example.description} / CONNECT with [${attributes.join(', ')}] -> ${decision}`, () => {
      const result = evaluatePolicy(example.document, { action: 'iot:Connect', resource: `${ARN}:client/client1`, clientId: 'client1', connectAttributes: attributes });
      assert.is(result.decision, decision);
      assert.is(result.reason, reason ?? (decision === 'allow' ? 'explicit-allow' : 'implicit-deny'));
    });
  }
}

test('an empty set: ForAllValues holds, ForAnyValue does not, for positive and negated operators alike', () => {
  const holds = (operator: string, values: string[], attributes: string[] | undefined) =>
    evaluatePolicy(allow({ [operator]: { 'iot:ConnectAttributes': values } }), {
      action: 'iot:Connect', resource: `${ARN}:client/client1`, clientId: 'client1', connectAttributes: attributes,
    }).decision === 'allow';
  for (const attributes of [[], undefined, ['']]) {
    const label = JSON.stringify(attributes);
    assert.ok(holds('ForAllValues:StringEquals', ['PersistentConnect'], attributes), `ForAllValues:StringEquals ${label}`);
    assert.ok(holds('ForAllValues:StringNotEquals', ['PersistentConnect'], attributes), `ForAllValues:StringNotEquals ${label}`);
    assert.ok(holds('ForAllValues:StringLike', ['*'], attributes), `ForAllValues:StringLike ${label}`);
    assert.not.ok(holds('ForAnyValue:StringEquals', ['PersistentConnect'], attributes), `ForAnyValue:StringEquals ${label}`);
    assert.not.ok(holds('ForAnyValue:StringNotEquals', ['PersistentConnect'], attributes), `ForAnyValue:StringNotEquals ${label}`);
    assert.not.ok(holds('ForAnyValue:StringLike', ['*'], attributes), `ForAnyValue:StringLike ${label}`);
  }
});

test('connectAttributes in the request wins over a context entry of the same key', () => {
  const document = allow({ 'ForAnyValue:StringEquals': { 'iot:ConnectAttributes': ['LastWill'] } });
  const request = { action: 'iot:Connect', resource: `${ARN}:client/client1`, clientId: 'client1' };
  assert.is(evaluatePolicy(document, { ...request, context: { 'iot:ConnectAttributes': ['LastWill'] } }).decision, 'allow');
  assert.is(evaluatePolicy(document, { ...request, connectAttributes: [], context: { 'iot:ConnectAttributes': ['LastWill'] } }).decision, 'deny');
});

test('the failing set condition names the request values', () => {
  const result = evaluatePolicy(allow({ 'ForAllValues:StringEquals': { 'iot:ConnectAttributes': ['LastWill'] } }), {
    action: 'iot:Connect', resource: `${ARN}:client/client1`, clientId: 'client1', connectAttributes: BOTH,
  });
  assert.is(result.statements[0]!.reason, 'condition ForAllValues:StringEquals iot:ConnectAttributes is not met (request values: "PersistentConnect", "LastWill")');
});

test.run();
