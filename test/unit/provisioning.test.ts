/** Fleet provisioning, pure: the spec's section, the template body iotctl generates, its evaluation, the claim policy. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { specProblems } from '../helpers/project.js';
import { claimPolicy, evaluateTemplate, provisioningRequest, provisioningTemplateBody, ProvisioningError, templateValue } from '../../src/iot/provisioning.js';
import { evaluatePolicies, iotArn } from '../../src/iot/policy/index.js';

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

test('request topics: JSON payloads of the three APIs only', () => {
  assert.equal(provisioningRequest('$aws/certificates/create-from-csr/json'), { api: 'CreateCertificateFromCsr' });
  assert.equal(provisioningRequest('$aws/certificates/create/json'), { api: 'CreateKeysAndCertificate' });
  assert.equal(provisioningRequest('$aws/provisioning-templates/factory/provision/json'), { api: 'RegisterThing', template: 'factory' });
  assert.is(provisioningRequest('$aws/certificates/create/json/accepted'), undefined);
  assert.is(provisioningRequest('$aws/provisioning-templates/factory/provision/cbor'), undefined);
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
