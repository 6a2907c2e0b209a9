import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { evaluatePolicy, type PolicyCondition, type PolicyRequest } from '../../../src/iot/policy/index.js';

const request: PolicyRequest = {
  action: 'iot:Connect',
  resource: 'arn:aws:iot:us-east-1:123456789012:client/sensor-42',
  clientId: 'sensor-42',
  thingName: 'sensor-42',
  thingTypeName: 'Thermometer',
  thingAttributes: { site: 'lyon', floor: '3', installed: '2024-05-01T00:00:00Z' },
  context: {
    'aws:SourceIp': '10.1.2.3',
    'iot:ConnectAttributes': ['PersistentConnect', 'LastWill'],
    'iot:Certificate.Subject.CommonName': 'sensor-42',
    'iot:SourceArn': 'arn:aws:iot:us-east-1:123456789012:thing/sensor-42',
  },
};

/** Whether an Allow statement with this condition applies to the request. */
function holds(Condition: PolicyCondition, req: PolicyRequest = request): boolean {
  return evaluatePolicy({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*', Condition }] }, req).decision === 'allow';
}

const table = (rows: [PolicyCondition, boolean][]) => {
  for (const [condition, expected] of rows) assert.is(holds(condition), expected, JSON.stringify(condition));
};

test('string operators', () => {
  table([
    [{ StringEquals: { 'iot:Connection.Thing.ThingTypeName': 'Thermometer' } }, true],
    [{ StringEquals: { 'iot:Connection.Thing.ThingTypeName': 'thermometer' } }, false],
    [{ StringEquals: { 'iot:Connection.Thing.ThingTypeName': 'Therm*' } }, false],
    [{ StringEqualsIgnoreCase: { 'iot:Connection.Thing.ThingTypeName': 'THERMOMETER' } }, true],
    [{ StringLike: { 'iot:ClientId': 'sensor-*' } }, true],
    [{ StringLike: { 'iot:ClientId': 'sensor-?' } }, false],
    [{ StringNotLike: { 'iot:ClientId': 'gateway-*' } }, true],
    [{ StringNotEquals: { 'iot:ClientId': 'sensor-42' } }, false],
    [{ StringNotEqualsIgnoreCase: { 'iot:ClientId': 'SENSOR-42' } }, false],
  ]);
});

test('values of one key are alternatives; keys and operators must all hold', () => {
  table([
    [{ StringEquals: { 'iot:Connection.Thing.Attributes[site]': ['paris', 'lyon'] } }, true],
    [{ StringNotEquals: { 'iot:Connection.Thing.Attributes[site]': ['paris', 'lyon'] } }, false],
    [{ StringNotEquals: { 'iot:Connection.Thing.Attributes[site]': ['paris', 'nice'] } }, true],
    [{ StringEquals: { 'iot:Connection.Thing.Attributes[site]': 'lyon', 'iot:Connection.Thing.ThingTypeName': 'Pump' } }, false],
    [{ StringEquals: { 'iot:Connection.Thing.Attributes[site]': 'lyon' }, NumericGreaterThan: { 'iot:Connection.Thing.Attributes[floor]': 2 } }, true],
    [{ StringEquals: { 'iot:Connection.Thing.Attributes[site]': 'lyon' }, NumericGreaterThan: { 'iot:Connection.Thing.Attributes[floor]': 3 } }, false],
  ]);
});

test('a missing key fails positive operators and satisfies negated ones; IfExists and Null test presence', () => {
  const missing = 'iot:Connection.Thing.Attributes[nope]';
  table([
    [{ StringEquals: { [missing]: 'x' } }, false],
    [{ StringLike: { [missing]: '*' } }, false],
    [{ StringNotEquals: { [missing]: 'x' } }, true],
    [{ ArnNotLike: { 'iot:Nothing': 'arn:*' } }, true],
    [{ StringEqualsIfExists: { [missing]: 'x' } }, true],
    [{ StringEqualsIfExists: { 'iot:Connection.Thing.Attributes[site]': 'paris' } }, false],
    [{ Null: { [missing]: 'true' } }, true],
    [{ Null: { [missing]: 'false' } }, false],
    [{ Null: { 'iot:Connection.Thing.Attributes[site]': false } }, true],
  ]);
});

test('numeric and date operators', () => {
  table([
    [{ NumericEquals: { 'iot:Connection.Thing.Attributes[floor]': '3' } }, true],
    [{ NumericLessThan: { 'iot:Connection.Thing.Attributes[floor]': '3' } }, false],
    [{ NumericLessThanEquals: { 'iot:Connection.Thing.Attributes[floor]': '3' } }, true],
    [{ NumericGreaterThanEquals: { 'iot:Connection.Thing.Attributes[floor]': '4' } }, false],
    [{ NumericNotEquals: { 'iot:Connection.Thing.Attributes[floor]': '4' } }, true],
    [{ NumericEquals: { 'iot:Connection.Thing.Attributes[site]': '3' } }, false],
    [{ DateGreaterThan: { 'iot:Connection.Thing.Attributes[installed]': '2024-01-01T00:00:00Z' } }, true],
    [{ DateLessThan: { 'iot:Connection.Thing.Attributes[installed]': '2024-01-01T00:00:00Z' } }, false],
    [{ DateEquals: { 'iot:Connection.Thing.Attributes[installed]': '1714521600' } }, true],
  ]);
});

test('Bool accepts strings and JSON booleans', () => {
  table([
    [{ Bool: { 'iot:Connection.Thing.IsAttached': 'true' } }, true],
    [{ Bool: { 'iot:Connection.Thing.IsAttached': true } }, true],
    [{ Bool: { 'iot:Connection.Thing.IsAttached': 'TRUE' } }, true],
    [{ Bool: { 'iot:Connection.Thing.IsAttached': false } }, false],
  ]);
  assert.is(holds({ Bool: { 'iot:Connection.Thing.IsAttached': 'false' } }, { ...request, isAttached: false }), true);
});

test('IP address operators take addresses and CIDR blocks, v4 and v6', () => {
  table([
    [{ IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } }, true],
    [{ IpAddress: { 'aws:SourceIp': ['192.168.0.0/16', '10.1.2.3'] } }, true],
    [{ IpAddress: { 'aws:SourceIp': '10.1.2.0/31' } }, false],
    [{ NotIpAddress: { 'aws:SourceIp': '192.168.0.0/16' } }, true],
    [{ IpAddress: { 'aws:SourceIp': '2001:db8::/32' } }, false],
  ]);
  assert.is(holds({ IpAddress: { 'aws:SourceIp': '2001:db8::/32' } }, { ...request, context: { 'aws:SourceIp': '2001:db8::1' } }), true);
});

test('ARN operators compare component by component, with wildcards', () => {
  table([
    [{ ArnLike: { 'iot:SourceArn': 'arn:aws:iot:*:123456789012:thing/sensor-*' } }, true],
    [{ ArnEquals: { 'iot:SourceArn': 'arn:aws:iot:us-east-1:123456789012:thing/sensor-42' } }, true],
    [{ ArnLike: { 'iot:SourceArn': 'arn:aws:iot:*:thing/sensor-42' } }, false],
    [{ ArnNotLike: { 'iot:SourceArn': 'arn:aws:iot:*:*:thing/gateway-*' } }, true],
  ]);
});

test('policy variables in condition values', () => {
  table([
    [{ StringEquals: { 'iot:Certificate.Subject.CommonName': '${iot:Connection.Thing.ThingName}' } }, true],
    [{ StringLike: { 'iot:ClientId': '${iot:Connection.Thing.ThingTypeName}*' } }, false],
    [{ StringLike: { 'iot:ClientId': '${iot:Connection.Thing.Attributes[nope], \'sensor\'}-*' } }, true],
    // Numeric values are not templates: no substitution.
    [{ NumericEquals: { 'iot:Connection.Thing.Attributes[floor]': '${iot:Connection.Thing.Attributes[floor]}' } }, false],
  ]);
});

test('set operators on multi-valued keys', () => {
  table([
    [{ 'ForAnyValue:StringEquals': { 'iot:ConnectAttributes': ['LastWill'] } }, true],
    [{ 'ForAnyValue:StringEquals': { 'iot:ConnectAttributes': ['Other'] } }, false],
    [{ 'ForAllValues:StringEquals': { 'iot:ConnectAttributes': ['PersistentConnect'] } }, false],
    [{ 'ForAllValues:StringEquals': { 'iot:ConnectAttributes': ['PersistentConnect', 'LastWill', 'Other'] } }, true],
    [{ 'ForAllValues:StringEquals': { 'iot:Missing': ['x'] } }, true],
    [{ 'ForAnyValue:StringEquals': { 'iot:Missing': ['x'] } }, false],
    [{ 'ForAnyValue:StringNotEquals': { 'iot:ConnectAttributes': 'PersistentConnect' } }, true],
    [{ StringEquals: { 'iot:ConnectAttributes': 'LastWill' } }, true],
  ]);
});

test('condition keys are case-insensitive', () => {
  table([[{ StringEquals: { 'IOT:CLIENTID': 'sensor-42', 'aws:sourceip': '10.1.2.3' } }, true]]);
});

test('the failing condition is named in the statement reason', () => {
  const result = evaluatePolicy(
    {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: 'iot:Connect',
          Resource: '*',
          Condition: { StringLike: { 'iot:ClientId': 'sensor-*' }, 'ForAllValues:StringEquals': { 'iot:ConnectAttributes': 'LastWill' } },
        },
      ],
    },
    request,
  );
  assert.is(
    result.statements[0]!.reason,
    'condition ForAllValues:StringEquals iot:ConnectAttributes is not met (request values: "PersistentConnect", "LastWill")',
  );
});

test.run();
