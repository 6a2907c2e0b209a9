// Fleet provisioning on the aws target. The claim certificate (CreateKeysAndCertificate, the claim policy,
// AttachPolicy, UpdateCertificate) and the provisioning role (IAM) run against moto_server. moto 5.2 serves no
// provisioning templates, so those IoT calls alone go to a stateful fake at the SDK boundary; every other call
// still reaches moto.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mockClient } from 'aws-sdk-client-mock';
import * as iotSdk from '@aws-sdk/client-iot';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';
import { AwsClients, isAwsError, translateError } from '../../src/targets/aws/sdk.js';
import { awsDevicesOf } from '../helpers/devices.js';
import { parseSpec } from '../../src/spec/loader.js';
import { ensureDevicePolicy } from '../../src/services/devices.js';
import { applyProvisioning, issueClaimCertificate, planProvisioning } from '../../src/services/provisioning.js';
import type { Target } from '../../src/ports.js';
import { stageNames } from '../../src/targets/aws/naming.js';
import { AwsProvisioning } from '../../src/targets/aws/provisioning.js';
import { ownerOf, ownerTagList } from '../../src/targets/aws/ownership.js';
import { validate } from '../helpers/aws-conformance.js';
import { botocoreMissing, serviceModel } from '../helpers/aws-models.js';

/** The faked calls' inputs, checked against AWS's own model of the IoT API (what moto cannot check for them). */
const checked: string[] = [];
function conforms(operation: string, input: Record<string, unknown>): void {
  if (botocoreMissing()) return;
  const model = serviceModel('iot');
  const violations = validate({ service: 'iot', operation, model, op: model.operations[operation]! }, input);
  assert.equal(violations, [], `${operation}: ${JSON.stringify(violations)}`);
  checked.push(operation);
}

const yaml = `project: awsprov
target: aws
devices:
  provisioning:
    template: factory
    thingName: "sensor-{{SerialNumber}}"
`;
const spec = parseSpec(yaml).spec;
const names = stageNames({ project: 'awsprov', stage: 'default' });
let moto: Moto;
let restore: () => void;
let aws: AwsClients;
let out: string;

test.before(async () => {
  moto = await startMoto();
  restore = useEnv(moto.env);
  out = mkdtempSync(join(tmpdir(), 'iotctl-aws-prov-'));
});
test.after(async () => {
  aws?.destroy();
  restore();
  await moto.stop();
  rmSync(out, { recursive: true, force: true });
});
test.before.each(async () => {
  await moto.reset();
  aws?.destroy();
  aws = new AwsClients({});
});

const target = (): Target => {
  const devices = awsDevicesOf(aws, spec);
  return { name: 'aws', devices, physicalName: (kind: string, n: string) => (kind === 'provisioning template' ? names.provisioningTemplate(n) : n) } as unknown as Target;
};

test('with no template declared and none deployed, the plan is empty and the provisioning API moto lacks reads as none', async () => {
  const none = parseSpec('project: awsprov\ntarget: aws\n').spec;
  const t = target();
  assert.equal(await planProvisioning(none, t), []);
  // Directly: moto answers ListProvisioningTemplates with an error page, which reads as no template when none is declared.
  assert.equal(await t.devices.listTemplates(false), []);
});

test('claim-certificate: AWS-made keys, the claim policy on the template\'s topics only, then revoked', async () => {
  const t = target();
  const claim = await issueClaimCertificate(spec, t, join(out, 'claim'));
  assert.is(statSync(join(claim.dir, 'private.key')).mode & 0o777, 0o600);
  const { client, sdk } = await aws.get('iot');
  const policies = await client.send(new sdk.ListAttachedPoliciesCommand({ target: `arn:aws:iot:us-east-1:123456789012:cert/${claim.certificateId}` }));
  assert.equal(policies.policies?.map((p) => p.policyName), [names.claimPolicy('factory')]);
  const doc = JSON.parse((await client.send(new sdk.GetPolicyCommand({ policyName: names.claimPolicy('factory') }))).policyDocument!);
  const topics = doc.Statement.flatMap((s: { Resource: string | string[] }) => [s.Resource].flat());
  assert.ok(topics.includes(`arn:aws:iot:*:*:topic/$aws/provisioning-templates/${names.provisioningTemplate('factory')}/provision/*`), JSON.stringify(topics));
  assert.ok(topics.includes('arn:aws:iot:*:*:topic/$aws/certificates/create-from-csr/*'));
  assert.ok(!topics.some((r: string) => r.includes('topic/dt/')), 'no telemetry topics');
  assert.is((await client.send(new sdk.DescribeCertificateCommand({ certificateId: claim.certificateId }))).certificateDescription?.status, 'ACTIVE');
  await t.devices.revokeCertificate(claim.certificateId, { revoked: true });
  assert.is((await client.send(new sdk.DescribeCertificateCommand({ certificateId: claim.certificateId }))).certificateDescription?.status, 'REVOKED');
});

test('apply creates the template with its role, changes nothing the second time, updates, and deletes it on removal', async () => {
  const t = target();
  await ensureDevicePolicy(t.devices, spec);
  const templates = new Map<string, { body: string; description: string; enabled: boolean; roleArn: string; tags: unknown[]; versions: number }>();
  const calls: string[] = [];
  const send = iotSdk.IoTClient.prototype.send as unknown as (this: unknown, command: unknown) => Promise<unknown>;
  const realSend = { call: (client: unknown, command: unknown) => send.call(client, command) };
  const mock = mockClient(iotSdk.IoTClient);
  try {
    const arn = (n: string) => `arn:aws:iot:us-east-1:123456789012:provisioningtemplate/${n}`;
    let propagated = false;
    mock.on(iotSdk.CreateProvisioningTemplateCommand).callsFake((i) => {
      conforms('CreateProvisioningTemplate', i);
      if (!propagated) {
        // AWS, a moment after CreateRole: IoT cannot pass the new role yet.
        propagated = true;
        calls.push('CreateRefused');
        throw translateError(Object.assign(new Error('The provisioning role cannot be assumed by AWS IoT.'), { name: 'InvalidRequestException', $metadata: { httpStatusCode: 400 } }), 'iot', 'CreateProvisioningTemplate', i, {});
      }
      calls.push('Create');
      templates.set(i.templateName, { body: i.templateBody, description: i.description, enabled: i.enabled, roleArn: i.provisioningRoleArn, tags: i.tags, versions: 1 });
      return { templateArn: arn(i.templateName), templateName: i.templateName, defaultVersionId: 1 };
    });
    mock.on(iotSdk.ListProvisioningTemplatesCommand).callsFake(() => ({ templates: [...templates.keys()].map((n) => ({ templateName: n, templateArn: arn(n) })) }));
    mock.on(iotSdk.DescribeProvisioningTemplateCommand).callsFake((i) => {
      const x = templates.get(i.templateName)!;
      return { templateName: i.templateName, templateBody: x.body, description: x.description, enabled: x.enabled, provisioningRoleArn: x.roleArn };
    });
    mock.on(iotSdk.ListProvisioningTemplateVersionsCommand).callsFake((i) => ({ versions: Array.from({ length: templates.get(i.templateName)!.versions }, (_, k) => ({ versionId: k + 1, isDefaultVersion: k + 1 === templates.get(i.templateName)!.versions })) }));
    mock.on(iotSdk.CreateProvisioningTemplateVersionCommand).callsFake((i) => {
      conforms('CreateProvisioningTemplateVersion', i);
      calls.push('CreateVersion');
      const x = templates.get(i.templateName)!;
      Object.assign(x, { body: i.templateBody, versions: x.versions + 1 });
      return {};
    });
    mock.on(iotSdk.UpdateProvisioningTemplateCommand).callsFake((i) => {
      conforms('UpdateProvisioningTemplate', i);
      calls.push('Update');
      Object.assign(templates.get(i.templateName)!, { description: i.description, enabled: i.enabled, roleArn: i.provisioningRoleArn });
      return {};
    });
    mock.on(iotSdk.DeleteProvisioningTemplateCommand).callsFake((i) => {
      conforms('DeleteProvisioningTemplate', i);
      calls.push('Delete');
      templates.delete(i.templateName);
      return {};
    });
    templates.set('iotctl-someone-else--factory', { body: '{}', description: '', enabled: true, roleArn: 'arn:aws:iam::123456789012:role/x', tags: [{ Key: 'iotctl:project', Value: 'someone' }, { Key: 'iotctl:stage', Value: 'else' }], versions: 1 });
    mock.on(iotSdk.ListTagsForResourceCommand).callsFake((i, getClient) => {
      if (!i.resourceArn.includes(':provisioningtemplate/')) return realSend.call(getClient(), new iotSdk.ListTagsForResourceCommand(i));
      const found = templates.get(i.resourceArn.split('/').pop());
      if (!found) throw translateError(Object.assign(new Error('not found'), { name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 404 } }), 'iot', 'ListTagsForResource', i, {});
      return { tags: found.tags };
    });
    // Everything else the section calls goes to moto.
    for (const C of [iotSdk.DescribeThingGroupCommand, iotSdk.CreateThingGroupCommand, iotSdk.DescribeThingTypeCommand, iotSdk.CreateThingTypeCommand, iotSdk.GetPolicyCommand]) {
      mock.on(C as never).callsFake((i: unknown, getClient: () => unknown) => realSend.call(getClient(), new (C as new (x: unknown) => unknown)(i)));
    }

    const first = await planProvisioning(spec, t);
    assert.equal(first.map((i) => `${i.action} ${i.name} ${i.physical}`), [`create factory ${names.provisioningTemplate('factory')}`]);
    await applyProvisioning(spec, t, first);
    const stored = templates.get(names.provisioningTemplate('factory'))!;
    assert.equal(stored.tags, [...ownerTagList(ownerOf('awsprov')), { Key: 'iotctl:template', Value: 'factory' }]);
    const body = JSON.parse(stored.body);
    assert.equal(body.Resources.policy.Properties.PolicyName, names.devicePolicy('iotctl-device'));
    assert.equal(body.Resources.thing.Properties.ThingGroups, [names.deviceGroup]);

    // The role: on moto, with the confused-deputy conditions and the least-privilege inline policy.
    const iam = await aws.get('iam');
    const role = await iam.client.send(new iam.sdk.GetRoleCommand({ RoleName: names.provisioningRole('factory') }));
    assert.is(role.Role!.Arn, stored.roleArn);
    const trust = JSON.parse(decodeURIComponent(role.Role!.AssumeRolePolicyDocument!));
    assert.equal(trust.Statement[0].Principal, { Service: 'iot.amazonaws.com' });
    assert.equal(trust.Statement[0].Condition, { StringEquals: { 'aws:SourceAccount': '123456789012' }, ArnLike: { 'aws:SourceArn': `arn:aws:iot:us-east-1:123456789012:provisioningtemplate/${names.provisioningTemplate('factory')}` } });
    const inline = JSON.parse(decodeURIComponent((await iam.client.send(new iam.sdk.GetRolePolicyCommand({ RoleName: names.provisioningRole('factory'), PolicyName: 'fleet-provisioning' }))).PolicyDocument!));
    // "*" only for ListAttachedPolicies, which has no resource type (any other Resource would never match it).
    const wide = (inline.Statement as { Action: string[]; Resource: string[] }[]).filter((x) => x.Resource.includes('*'));
    assert.equal(wide.map((x) => x.Action), [['iot:ListAttachedPolicies']], 'no other resource is *');

    const again = await planProvisioning(spec, t);
    assert.equal(again.map((i) => i.action), ['noop']);

    const changed = parseSpec(yaml.replace('sensor-{{SerialNumber}}', 'meter-{{SerialNumber}}')).spec;
    const update = await planProvisioning(changed, t);
    assert.equal(update.map((i) => i.action), ['replace']);
    await applyProvisioning(changed, t, update);
    assert.match(templates.get(names.provisioningTemplate('factory'))!.body, /meter-/);

    const removed = parseSpec('project: awsprov\ntarget: aws\n').spec;
    const deletion = await planProvisioning(removed, t);
    assert.equal(deletion.map((i) => i.action), ['delete']);
    await applyProvisioning(removed, t, deletion);
    // Another project's template is listed by AWS but never planned, changed or deleted.
    assert.equal([...templates.keys()], ['iotctl-someone-else--factory']);
    assert.equal(calls, ['CreateRefused', 'Create', 'CreateVersion', 'Update', 'Delete']);
    if (!botocoreMissing()) assert.ok(checked.length >= 4);
    await iam.client.send(new iam.sdk.GetRoleCommand({ RoleName: names.provisioningRole('factory') })).then(
      () => assert.unreachable('the role is deleted with its template'),
      (e: Error) => assert.ok(isAwsError(e, 'NoSuchEntity', 'NoSuchEntityException'), String(e)),
    );
  } finally {
    mock.restore();
  }
});

test("a template of this stage's name that another stage owns is refused, and no role is made for it", async () => {
  const t = target();
  const physical = names.provisioningTemplate('factory');
  const send = iotSdk.IoTClient.prototype.send as unknown as (this: unknown, command: unknown) => Promise<unknown>;
  const mock = mockClient(iotSdk.IoTClient);
  try {
    mock.on(iotSdk.ListProvisioningTemplatesCommand).resolves({ templates: [{ templateName: physical, templateArn: `arn:aws:iot:us-east-1:123456789012:provisioningtemplate/${physical}` }] });
    mock.on(iotSdk.ListTagsForResourceCommand).resolves({ tags: [{ Key: 'iotctl:project', Value: 'awsprov' }, { Key: 'iotctl:stage', Value: 'prod' }] });
    mock.on(iotSdk.CreateProvisioningTemplateCommand).rejects(new Error('must not be called'));
    for (const C of [iotSdk.DescribeThingGroupCommand, iotSdk.CreateThingGroupCommand, iotSdk.DescribeThingTypeCommand, iotSdk.CreateThingTypeCommand]) {
      mock.on(C as never).callsFake((i: unknown, getClient: () => unknown) => send.call(getClient(), new (C as new (x: unknown) => unknown)(i)));
    }
    const items = await planProvisioning(spec, t);
    assert.equal(items.map((i) => i.action), ['create']);
    const error = await applyProvisioning(spec, t, items).then(() => undefined, (e: { code?: string }) => e);
    assert.is(error?.code, 'RESOURCE_NOT_OURS');
  } finally {
    mock.restore();
  }
  const iam = await aws.get('iam');
  assert.equal((await iam.client.send(new iam.sdk.ListRolesCommand({}))).Roles?.filter((r) => r.RoleName?.includes('--prov-')), []);
});

test("a provisioning role of this stage's name that another stage owns is refused by put and left by delete", async () => {
  const iam = await aws.get('iam');
  const RoleName = names.provisioningRole('lathe');
  const trust = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'iot.amazonaws.com' }, Action: 'sts:AssumeRole' }] });
  await iam.client.send(new iam.sdk.CreateRoleCommand({ RoleName, Path: names.rolePath, AssumeRolePolicyDocument: trust, Tags: ownerTagList(ownerOf('awsprov', 'prod')) }));
  const mock = mockClient(iotSdk.IoTClient);
  try {
    mock.on(iotSdk.ListTagsForResourceCommand).rejects(Object.assign(new Error('not found'), { name: 'ResourceNotFoundException' }));
    mock.on(iotSdk.DeleteProvisioningTemplateCommand).callsFake((i) => {
      throw translateError(Object.assign(new Error('not found'), { name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 404 } }), 'iot', 'DeleteProvisioningTemplate', i, {});
    });
    mock.on(iotSdk.CreateProvisioningTemplateCommand).rejects(new Error('must not be called'));
    const p = new AwsProvisioning(new AwsClients({}), names, ownerOf('awsprov'));
    const input = { name: 'lathe', thingName: 'x-{{SerialNumber}}', attributes: {}, policyName: 'iotctl-device', thingType: '', description: '', enabled: true };
    const error = await p.put(input, await p.templateConfig(input)).then(() => undefined, (e: { code?: string }) => e);
    assert.is(error?.code, 'RESOURCE_NOT_OURS');
    await p.delete('lathe');
  } finally {
    mock.restore();
  }
  const role = await iam.client.send(new iam.sdk.GetRoleCommand({ RoleName }));
  assert.equal(JSON.parse(decodeURIComponent(role.Role!.AssumeRolePolicyDocument!)), JSON.parse(trust), 'untouched');
  await iam.client.send(new iam.sdk.DeleteRoleCommand({ RoleName }));
});

test('a pre-provisioning hook: the template names the function, which lets this template (only) invoke it', async () => {
  const hooked = parseSpec(yaml + '    preProvisioningHook: vet\nfunctions:\n  - name: vet\n    template: ingest-rds\n').spec;
  const t = target();
  await ensureDevicePolicy(t.devices, hooked);
  const iam = await aws.get('iam');
  const role = await iam.client.send(new iam.sdk.CreateRoleCommand({ RoleName: 'fn-role', AssumeRolePolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }] }) }));
  const lambda = await aws.get('lambda');
  // An empty zip archive: moto stores the code without running it.
  const zip = Buffer.from([0x50, 0x4b, 0x05, 0x06, ...new Array(18).fill(0)]);
  await lambda.client.send(new lambda.sdk.CreateFunctionCommand({ FunctionName: names.function('vet'), Runtime: 'nodejs22.x', Role: role.Role!.Arn!, Handler: 'index.handler', Code: { ZipFile: zip } }));
  const created: Record<string, unknown>[] = [];
  const send = iotSdk.IoTClient.prototype.send as unknown as (this: unknown, command: unknown) => Promise<unknown>;
  const mock = mockClient(iotSdk.IoTClient);
  try {
    mock.on(iotSdk.CreateProvisioningTemplateCommand).callsFake((i) => {
      conforms('CreateProvisioningTemplate', i);
      created.push(i);
      return {};
    });
    mock.on(iotSdk.ListProvisioningTemplatesCommand).resolves({ templates: [] });
    for (const C of [iotSdk.DescribeThingGroupCommand, iotSdk.CreateThingGroupCommand, iotSdk.DescribeThingTypeCommand, iotSdk.CreateThingTypeCommand, iotSdk.GetPolicyCommand, iotSdk.ListTagsForResourceCommand]) {
      mock.on(C as never).callsFake((i: unknown, getClient: () => unknown) => send.call(getClient(), new (C as new (x: unknown) => unknown)(i)));
    }
    await applyProvisioning(hooked, t, await planProvisioning(hooked, t));
  } finally {
    mock.restore();
  }
  assert.equal(created[0]!.preProvisioningHook, { targetArn: `arn:aws:lambda:us-east-1:123456789012:function:${names.function('vet')}`, payloadVersion: '2020-04-01' });
  const policy = JSON.parse((await lambda.client.send(new lambda.sdk.GetPolicyCommand({ FunctionName: names.function('vet') }))).Policy!);
  const statement = policy.Statement.find((s: { Sid: string }) => s.Sid === `iotctl-provisioning-${names.provisioningTemplate('factory')}`);
  assert.ok(statement, JSON.stringify(policy));
  assert.equal(statement.Principal, { Service: 'iot.amazonaws.com' });
  assert.match(JSON.stringify(statement.Condition), /provisioningtemplate\/iotctl-awsprov-default--factory/);
});

test.run();
