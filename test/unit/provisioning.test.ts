/** Fleet provisioning, pure: the spec's section, the template body iotctl generates, its evaluation, the claim policy. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { specProblems } from '../helpers/project.js';
import { claimPolicy, evaluateTemplate, provisioningRequest, provisioningTemplateBody, ProvisioningError, templateValue } from '../../src/iot/provisioning.js';
import { evaluatePolicies, iotArn } from '../../src/iot/policy/index.js';
import { CborError, decodeCbor, encodeCbor } from '../../src/iot/cbor.js';

const spec = (provisioning: string, extra = '') => `project: demo\n${extra}devices:\n  provisioning:\n${provisioning}`;

test('spec: devices.provisioning is checked at file:line:col', () => {
  assert.equal(specProblems(spec('    template: factory\n    thingName: "sensor-{{SerialNumber}}"\n')), []);
  const long = specProblems(spec(`    template: ${'t'.repeat(37)}\n    thingName: x\n`));
  assert.is(long.length, 1);
  assert.equal([long[0]!.line, long[0]!.path], [4, 'devices.provisioning.template']);
  assert.match(long[0]!.message, /36/);
  const braces = specProblems(spec('    template: factory\n    thingName: "sensor-{{Serial-Number}}"\n'));
  assert.equal([braces[0]!.line, braces[0]!.path], [5, 'devices.provisioning.thingName']);
  const hook = specProblems(spec('    template: factory\n    thingName: "s-{{Sn}}"\n    preProvisioningHook: vet\n'));
  assert.equal([hook[0]!.line, hook[0]!.path], [6, 'devices.provisioning.preProvisioningHook']);
  assert.match(hook[0]!.message, /function "vet" is not declared/);
  const unknown = specProblems(spec('    template: factory\n    thingName: x\n    thingname: y\n'));
  assert.ok(unknown.length >= 1);
});

test('template values: a literal, a Ref, an Fn::Join', () => {
  assert.equal(templateValue('fixed'), 'fixed');
  assert.equal(templateValue('{{Sn}}'), { Ref: 'Sn' });
  assert.equal(templateValue('s-{{Site}}-{{Sn}}'), { 'Fn::Join': ['', ['s-', { Ref: 'Site' }, '-', { Ref: 'Sn' }]] });
});

test("the generated body is AWS's template shape, and evaluates as RegisterThing does", () => {
  const body = provisioningTemplateBody({ template: 'factory', thingName: 'sensor-{{Sn}}', attributes: { site: '{{Site}}', line: 'L1' } }, { policy: 'dev-policy', thingType: 'sensor', thingGroups: ['g'] });
  assert.equal(Object.keys(body.Parameters as object), ['Sn', 'Site', 'AWS::IoT::Certificate::Id']);
  const r = evaluateTemplate(JSON.parse(JSON.stringify(body)), { Sn: '42', Site: 'lab' }, 'abc');
  assert.equal(r, { thingName: 'sensor-42', thingType: 'sensor', attributes: { site: 'lab', line: 'L1' }, thingGroups: ['g'], policies: ['dev-policy'], certificateStatus: 'ACTIVE' });
  const err = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      assert.instance(e, ProvisioningError);
      return (e as ProvisioningError).payload();
    }
    throw new Error('expected a rejection');
  };
  assert.equal(err(() => evaluateTemplate(body, { Sn: '42' }, 'abc')), { statusCode: 400, errorCode: 'InvalidParameters', errorMessage: 'Missing parameter: Site' });
  assert.is(err(() => evaluateTemplate(body, { Sn: 'bad name!', Site: 'x' }, 'abc')).errorCode, 'InvalidParameters');
  // A Default fills a parameter the device leaves out.
  const withDefault = { ...body, Parameters: { ...(body.Parameters as object), Site: { Type: 'String', Default: 'hq' } } };
  assert.equal(evaluateTemplate(withDefault, { Sn: '1' }, 'abc').attributes.site, 'hq');
});

test('request topics: the three APIs, in JSON or CBOR', () => {
  assert.equal(provisioningRequest('$aws/certificates/create-from-csr/json'), { api: 'CreateCertificateFromCsr', format: 'json' });
  assert.equal(provisioningRequest('$aws/certificates/create/cbor'), { api: 'CreateKeysAndCertificate', format: 'cbor' });
  assert.equal(provisioningRequest('$aws/provisioning-templates/factory/provision/json'), { api: 'RegisterThing', template: 'factory', format: 'json' });
  assert.equal(provisioningRequest('$aws/provisioning-templates/factory/provision/cbor'), { api: 'RegisterThing', template: 'factory', format: 'cbor' });
  assert.is(provisioningRequest('$aws/certificates/create/json/accepted'), undefined);
  assert.is(provisioningRequest('$aws/certificates/create/xml'), undefined);
});

test('CBOR: RFC 8949 appendix A vectors, and what the provisioning payloads hold', () => {
  const hex = (v: unknown) => encodeCbor(v).toString('hex');
  // RFC 8949 Appendix A.
  assert.is(hex(0), '00');
  assert.is(hex(23), '17');
  assert.is(hex(24), '1818');
  assert.is(hex(1000), '1903e8');
  assert.is(hex(1000000), '1a000f4240');
  assert.is(hex(-1), '20');
  assert.is(hex(-1000), '3903e7');
  assert.is(hex('IETF'), '6449455446');
  assert.is(hex('\u00fc'), '62c3bc');
  assert.is(hex([1, [2, 3], [4, 5]]), '8301820203820405');
  assert.is(hex({ a: 1, b: [2, 3] }), 'a26161016162820203');
  assert.is(hex(true), 'f5');
  assert.is(hex(null), 'f6');
  assert.equal(decodeCbor(Buffer.from('a26161016162820203', 'hex')), { a: 1, b: [2, 3] });
  assert.equal(decodeCbor(Buffer.from('3903e7', 'hex')), -1000);
  assert.equal(decodeCbor(Buffer.from('1b001fffffffffffff', 'hex')), Number.MAX_SAFE_INTEGER);
  const payload = { statusCode: 400, errorCode: 'InvalidPayload', errorMessage: 'x'.repeat(300), parameters: { SerialNumber: '1' }, ok: false };
  assert.equal(decodeCbor(encodeCbor(payload)), payload);
  for (const bad of ['a1', '7f', 'f97c00', 'a10102', '0000', 'c2']) assert.throws(() => decodeCbor(Buffer.from(bad, 'hex')), (e: unknown) => e instanceof CborError, bad);
  // A huge declared length is refused at once, not allocated.
  assert.throws(() => decodeCbor(Buffer.from('9b00000000ffffffff', 'hex')), (e: unknown) => e instanceof CborError);
});

test('the claim policy allows the provisioning API of its template and nothing else', () => {
  const doc = claimPolicy('factory');
  const can = (action: string, kind: 'client' | 'topic' | 'topicfilter', name: string) => evaluatePolicies([doc], { action, resource: iotArn(kind, name), clientId: 'line-1' }).decision === 'allow';
  assert.ok(can('iot:Connect', 'client', 'anything'));
  for (const t of ['$aws/certificates/create-from-csr/json', '$aws/certificates/create/json', '$aws/provisioning-templates/factory/provision/json']) {
    assert.ok(can('iot:Publish', 'topic', t), t);
    assert.ok(can('iot:Receive', 'topic', `${t}/accepted`), t);
    assert.ok(can('iot:Subscribe', 'topicfilter', `${t}/rejected`), t);
  }
  assert.not.ok(can('iot:Publish', 'topic', '$aws/provisioning-templates/other/provision/json'));
  assert.not.ok(can('iot:Publish', 'topic', 'dt/demo/x/telemetry'));
  assert.not.ok(can('iot:Subscribe', 'topicfilter', '#'));
  assert.not.ok(can('iot:Publish', 'topic', '$aws/things/x/shadow/update'));
});

test.run();
