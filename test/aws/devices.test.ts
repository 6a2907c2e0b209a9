// AwsDevices against moto_server: register (local key + CSR, the user's CSR, AWS-generated keys), list
// (the stage group), show, revoke, delete, rollback on a failure part-way, bad thing names, policy versions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import type { AwsDevices } from '../../src/targets/aws/devices.js';
import { awsDevicesOf } from '../helpers/devices.js';
import { AMAZON_ROOT_CA_1 } from '../../src/targets/aws/amazon-root-ca.js';
import { newP256KeyAndCsr } from '../../src/targets/local/ca.js';
import { parseSpec } from '../../src/spec/loader.js';
import { desiredDevicePolicy, ensureDevicePolicy, registerDevice, registerMany } from '../../src/services/devices.js';
import { UserError } from '../../src/ui/errors.js';
import type { PolicyDocument, PolicyStatement } from '../../src/iot/policy/index.js';

const spec = parseSpec('project: awsdev\n').spec;
const policyName = spec.devices.policy.name;
/** The stage's device policy on AWS: `iotctl-<project>-<stage>--<name>`. */
const policyOnAws = 'iotctl-awsdev-default--iotctl-device';
let moto: Moto;
let restore: () => void;
let aws: AwsClients;
let devices: AwsDevices;
let out: string;

test.before(async () => {
  moto = await startMoto();
  restore = useEnv(moto.env);
  out = mkdtempSync(join(tmpdir(), 'iotctl-aws-devices-'));
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
  devices = awsDevicesOf(aws, spec);
});

const iot = async () => aws.get('iot');
async function allCertificates() {
  const { client, sdk } = await iot();
  return (await client.send(new sdk.ListCertificatesCommand({}))).certificates ?? [];
}
async function thingNames() {
  const { client, sdk } = await iot();
  return ((await client.send(new sdk.ListThingsCommand({}))).things ?? []).map((t) => t.thingName);
}
async function rejects(fn: () => Promise<unknown>, code: string | RegExp): Promise<UserError> {
  try {
    await fn();
  } catch (e) {
    assert.instance(e, UserError, String(e));
    const err = e as UserError;
    if (typeof code === 'string') assert.is(err.code, code, err.message);
    else assert.match(err.code, code, err.message);
    return err;
  }
  assert.unreachable('expected a UserError');
  throw new Error();
}

test('the bundled CA is Amazon Root CA 1 (the one in the system trust store)', () => {
  const ca = new X509Certificate(AMAZON_ROOT_CA_1);
  assert.match(ca.subject, /CN=Amazon Root CA 1/);
  assert.is(ca.fingerprint256, '8E:CD:E6:88:4F:3D:87:B1:12:5B:A3:1A:C3:FC:B1:3D:70:16:DE:7F:57:CC:90:4F:E1:CB:97:C6:AE:98:19:6E');
  assert.ok(ca.verify(ca.publicKey), 'self-signed');
  if (existsSync('/etc/ssl/certs/Amazon_Root_CA_1.pem')) assert.is(new X509Certificate(readFileSync('/etc/ssl/certs/Amazon_Root_CA_1.pem')).fingerprint256, ca.fingerprint256);
});

test('register writes the credentials; list, show, revoke (INACTIVE, then REVOKED) and delete', async () => {
  await ensureDevicePolicy(devices, spec);
  const reg = await registerDevice(devices, spec, { thingName: 'sensor-1', thingType: 'thermostat', attributes: { site: 'lab' } }, out);
  // The key was made here: cert.pem's public key is the one in private.key... except that moto signs a key of its own.
  assert.ok(reg.keyPem?.includes('BEGIN PRIVATE KEY'));
  assert.is(statSync(join(reg.dir, 'private.key')).mode & 0o777, 0o600);
  assert.is(readFileSync(join(reg.dir, 'ca.pem'), 'utf8'), AMAZON_ROOT_CA_1);
  const endpoint = JSON.parse(readFileSync(join(reg.dir, 'endpoint.json'), 'utf8'));
  assert.is(endpoint.port, 8883);
  assert.equal(await devices.endpoint(), endpoint, 'the endpoint is asked once and kept');
  assert.match(new X509Certificate(readFileSync(join(reg.dir, 'cert.pem'))).subject, /CN=sensor-1/);
  assert.match(reg.fingerprint, /^SHA256:([0-9A-F]{2}:){31}[0-9A-F]{2}$/);

  const { client, sdk } = await iot();
  const type = await client.send(new sdk.DescribeThingTypeCommand({ thingTypeName: 'thermostat' }));
  assert.is(type.thingTypeName, 'thermostat', 'the missing thing type was created');

  const list = await devices.list();
  assert.is(list.length, 1);
  assert.equal({ ...list[0], createdAt: undefined }, { thingName: 'sensor-1', thingType: 'thermostat', attributes: { site: 'lab' }, certificateId: reg.certificateId, certificateStatus: 'ACTIVE', createdAt: undefined });
  assert.ok(!Number.isNaN(Date.parse(list[0]!.createdAt)));

  const shown = await devices.show('sensor-1');
  assert.is(shown?.certificateStatus, 'ACTIVE');
  assert.equal(shown?.policies, [policyOnAws]);
  assert.is(shown?.fingerprint, reg.fingerprint);
  assert.ok(shown?.notAfter);
  assert.is(await devices.show('nope'), undefined);

  assert.equal(await devices.revoke('sensor-1'), { revoked: [reg.certificateId] });
  assert.is((await devices.show('sensor-1'))?.certificateStatus, 'INACTIVE');
  assert.equal(await devices.revoke('sensor-1', { revoked: true }), { revoked: [reg.certificateId] });
  assert.is((await devices.show('sensor-1'))?.certificateStatus, 'REVOKED');
  assert.equal(await devices.revoke('sensor-1', { revoked: true }), { revoked: [] }, 'REVOKED is final');

  assert.equal(await devices.delete('sensor-1'), { deletedCertificates: [reg.certificateId] });
  assert.equal(await thingNames(), []);
  assert.equal(await allCertificates(), []);
  await rejects(() => devices.delete('sensor-1'), 'THING_NOT_FOUND');
});

test("the user's CSR is signed, and no private key is written", async () => {
  await ensureDevicePolicy(devices, spec);
  const { csrPem } = newP256KeyAndCsr('csr-dev');
  const reg = await registerDevice(devices, spec, { thingName: 'csr-dev', csrPem }, out);
  assert.is(reg.keyPem, undefined);
  assert.not.ok(existsSync(join(reg.dir, 'private.key')));
  assert.match(new X509Certificate(reg.certPem).subject, /CN=csr-dev/);
  // A broken CSR is refused before any call: nothing is created.
  await rejects(() => devices.register({ thingName: 'csr-bad', thingType: 'sensor', attributes: {}, policyName, csrPem: csrPem.replace(/[A-Z]{8}/, 'AAAAAAAA') }), /^CSR_/);
  assert.equal(await thingNames(), ['csr-dev']);
});

test('--aws-generated-keys: CreateKeysAndCertificate, and the key AWS returned is written', async () => {
  await ensureDevicePolicy(devices, spec);
  const reg = await devices.register({ thingName: 'awskeys', thingType: 'sensor', attributes: {}, policyName, awsGeneratedKeys: true });
  assert.match(reg.keyPem ?? '', /PRIVATE KEY/);
  assert.is((await devices.show('awskeys'))?.certificateStatus, 'ACTIVE');
});

test('a failure part-way undoes every step: no thing, no certificate, no attachment left', async () => {
  await ensureDevicePolicy(devices, spec);
  const { client } = await iot();
  // Fail AttachThingPrincipal, the last step, as AWS would (AccessDenied).
  client.middlewareStack.add(
    ((next: (a: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: unknown) => {
      if (context.commandName === 'AttachThingPrincipalCommand') throw Object.assign(new Error('User is not authorized'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 403 } });
      return next(args);
    }) as never,
    { step: 'initialize', name: 'failAttach', priority: 'low' },
  );
  const err = await rejects(() => registerDevice(devices, spec, { thingName: 'half' }, out), /AccessDenied/);
  assert.match(err.message, /iot:AttachThingPrincipal/);
  assert.equal(await thingNames(), []);
  assert.equal(await allCertificates(), []);
  assert.not.ok(existsSync(join(out, 'half')));
  client.middlewareStack.remove('failAttach');
});

test('a missing policy: a clear error, and nothing is left', async () => {
  await rejects(() => devices.register({ thingName: 'nopolicy', thingType: 'sensor', attributes: {}, policyName: 'missing' }), 'POLICY_NOT_FOUND');
  assert.equal(await thingNames(), []);
  assert.equal(await allCertificates(), []);
});

test('a thing name AWS rejects fails before any call', async () => {
  for (const name of ['has space', 'x'.repeat(129), 'slash/name', '']) {
    await rejects(() => devices.register({ thingName: name, thingType: 'sensor', attributes: {}, policyName }), 'INVALID_THING_NAME');
  }
  assert.equal(await thingNames(), []);
});

test('an existing thing is refused, and left as it was', async () => {
  await ensureDevicePolicy(devices, spec);
  await devices.register({ thingName: 'twice', thingType: 'sensor', attributes: { a: '1' }, policyName });
  await rejects(() => devices.register({ thingName: 'twice', thingType: 'sensor', attributes: {}, policyName }), 'THING_EXISTS');
  assert.is((await allCertificates()).length, 1);
  assert.equal((await devices.show('twice'))?.attributes, { a: '1' });
});

test("list: the stage group's things, never the account's others", async () => {
  const { client, sdk } = await iot();
  await devices.ensureGroup();
  const names = Array.from({ length: 30 }, (_, i) => `bulk-${String(i).padStart(3, '0')}`);
  for (let i = 0; i < names.length; i += 10)
    await Promise.all(
      names.slice(i, i + 10).map(async (thingName) => {
        await client.send(new sdk.CreateThingCommand({ thingName }));
        await client.send(new sdk.AddThingToThingGroupCommand({ thingGroupName: 'iotctl-awsdev-default--devices', thingName }));
      }),
    );
  await client.send(new sdk.CreateThingCommand({ thingName: 'someone-elses' }));
  const list = await devices.list();
  assert.equal(list.map((d) => d.thingName), names);
  assert.is(list[0]!.certificateId, null);
  for (const command of [() => devices.delete('someone-elses'), () => devices.revoke('someone-elses'), () => devices.show('someone-elses')]) await rejects(command, 'THING_NOT_IN_STAGE');
});

test("a thing group of the stage's name that iotctl did not make is refused before any thing is created", async () => {
  await ensureDevicePolicy(devices, spec);
  const { client, sdk } = await iot();
  await client.send(new sdk.CreateThingGroupCommand({ thingGroupName: 'iotctl-awsdev-default--devices', thingGroupProperties: { thingGroupDescription: 'made by hand' } }));
  const err = await rejects(() => registerDevice(devices, spec, { thingName: 'blocked' }, out), 'RESOURCE_NOT_OURS');
  assert.match(err.message, /IoT thing group iotctl-awsdev-default--devices/);
  assert.equal(await thingNames(), []);
});

test('bulk registration on aws: all registered, and a re-run skips them', async () => {
  await ensureDevicePolicy(devices, spec);
  const requests = Array.from({ length: 12 }, (_, i) => ({ thingName: `fleet-${i}`, attributes: { n: String(i) } }));
  const dir = join(out, 'fleet');
  const first = await registerMany(devices, spec, requests, dir);
  assert.equal(first.failed, []);
  assert.is(first.registered.length, 12);
  const again = await registerMany(devices, spec, requests, dir);
  assert.is(again.skipped.length, 12);
  assert.is((await allCertificates()).length, 12);
});

test('policy versions: each change is a new default version, never more than 5; an unchanged document is a no-op', async () => {
  const base = desiredDevicePolicy(spec);
  await devices.putPolicy('versions', base);
  const statements = ([] as PolicyStatement[]).concat(base.Statement as PolicyStatement[]);
  const docs: PolicyDocument[] = Array.from({ length: 6 }, (_, i) => ({
    ...base,
    Statement: [...statements, { Effect: 'Allow' as const, Action: 'iot:Publish', Resource: `arn:aws:iot:us-east-1:123456789012:topic/extra/${i}` }],
  }));
  for (const doc of docs) await devices.putPolicy('versions', doc);
  const { client, sdk } = await iot();
  const list = async () => (await client.send(new sdk.ListPolicyVersionsCommand({ policyName: 'iotctl-awsdev-default--versions' }))).policyVersions ?? [];
  const versions = await list();
  assert.ok(versions.length <= 5, `${versions.length} versions`);
  assert.equal(await devices.getPolicy('versions'), docs.at(-1));
  const def = versions.find((v) => v.isDefaultVersion)!;
  assert.is(def.versionId, String(Math.max(...versions.map((v) => Number(v.versionId)))), 'the default is the latest');
  // Same document, keys in another order: no new version.
  const reordered = JSON.parse(JSON.stringify({ Statement: docs.at(-1)!.Statement, Version: docs.at(-1)!.Version })) as PolicyDocument;
  await devices.putPolicy('versions', reordered);
  assert.equal((await list()).map((v) => v.versionId), versions.map((v) => v.versionId));
});

test.run();
