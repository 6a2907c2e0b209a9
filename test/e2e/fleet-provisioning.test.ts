/**
 * Fleet provisioning by claim on the local platform, with a real MQTT-over-TLS client: a device holding only the
 * shared claim certificate gets its own certificate (CreateCertificateFromCsr / CreateKeysAndCertificate) and its
 * thing (RegisterThing) through the device provisioning MQTT API's topics and payloads, then connects as itself.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { cli, makeProject, rejects, type Project } from '../helpers/project.js';
import { LocalPlatform } from '../../src/targets/local/platform.js';
import { Context } from '../../src/context.js';
import { openTarget } from '../../src/targets/index.js';
import { ensureDevicePolicy } from '../../src/services/devices.js';
import { issueClaimCertificate, planProvisioning, applyProvisioning } from '../../src/services/provisioning.js';
import { newP256KeyAndCsr } from '../../src/targets/local/ca.js';
import { Registry } from '../../src/targets/local/registry.js';
import { decodeCbor, encodeCbor } from '../../src/iot/cbor.js';
import { LocalFunctions } from '../../src/targets/local/functions.js';
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';

const SPEC = `project: demo
target: local
local: { mqttPort: 0 }
devices:
  provisioning:
    template: factory
    thingName: "sensor-{{SerialNumber}}"
    attributes: { serial: "{{SerialNumber}}" }
`;

let project: Project;
let platform: LocalPlatform;
let claim: { cert: string; key: string; ca: string; certificateId: string };
let functions: LocalFunctions;

const ctx = () => new Context({ specFile: project.specFile, projectDir: project.dir, stateDir: project.stateDir });

async function withTarget<T>(fn: (t: Awaited<ReturnType<typeof openTarget>>) => Promise<T>): Promise<T> {
  const target = await openTarget(ctx());
  try {
    return await fn(target);
  } finally {
    await target.close();
  }
}

function connect(creds: { cert: string; key: string; ca: string }, clientId: string): Promise<MqttClient> {
  return mqtt.connectAsync({ protocol: 'mqtts', host: '127.0.0.1', port: platform.mqttPort, cert: creds.cert, key: creds.key, ca: creds.ca, clientId, reconnectPeriod: 0, connectTimeout: 5000 });
}

/** Publishes one API request after subscribing to both its answers, and resolves with the one that comes. */
async function call(client: MqttClient, topic: string, payload: unknown): Promise<{ outcome: 'accepted' | 'rejected'; body: Record<string, unknown> }> {
  await client.subscribeAsync([`${topic}/accepted`, `${topic}/rejected`], { qos: 1 });
  const answer = new Promise<{ outcome: 'accepted' | 'rejected'; body: Record<string, unknown> }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer on ${topic}/accepted or /rejected`)), 5000);
    const onMessage = (t: string, message: Buffer) => {
      if (t !== `${topic}/accepted` && t !== `${topic}/rejected`) return;
      clearTimeout(timer);
      client.off('message', onMessage);
      resolve({ outcome: t.endsWith('/accepted') ? 'accepted' : 'rejected', body: (topic.endsWith('/cbor') ? decodeCbor(message) : JSON.parse(message.toString())) as Record<string, unknown> });
    };
    client.on('message', onMessage);
  });
  await client.publishAsync(topic, typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload), { qos: 1 });
  return answer;
}

test.before(async () => {
  project = makeProject(SPEC);
  platform = new LocalPlatform({ stateDir: project.stateDir, spec: project.spec, mqttPort: 0 });
  // The function runner, with a pre-provisioning hook deployed (the full platform plugs it in as a component).
  functions = new LocalFunctions(platform.db, { region: 'us-east-1' });
  const artifactPath = resolve(import.meta.dirname, '../fixtures/lambda/provisioning-hook.cjs');
  functions.register({ name: 'vet', template: 'provisioning-hook', artifactPath, sha256: createHash('sha256').update(readFileSync(artifactPath)).digest('hex'), handler: 'handler', timeoutSeconds: 5, memoryMb: 128, environment: {} });
  platform.sinks.functions = functions;
  await platform.start();
  await withTarget(async (target) => {
    await ensureDevicePolicy(target.devices, project.spec);
    await applyProvisioning(project.spec, target, await planProvisioning(project.spec, target));
    const issued = await issueClaimCertificate(project.spec, target, join(project.dir, 'claim'));
    claim = { cert: issued.certPem, key: readFileSync(join(issued.dir, 'private.key'), 'utf8'), ca: issued.caPem, certificateId: issued.certificateId };
  });
});

test.after(async () => {
  await platform.stop();
  await functions.stop();
  project.cleanup();
});

test('apply plans the template once, then nothing', async () => {
  const items = await withTarget((t) => planProvisioning(project.spec, t));
  assert.equal(items.map((i) => `${i.action} ${i.kind} ${i.name}`), ['noop provisioning template factory']);
  const stored = new Registry(platform.db).getProvisioningTemplate('factory')!;
  assert.equal((stored.body as { Resources: { thing: { Properties: { ThingName: unknown } } } }).Resources.thing.Properties.ThingName, { 'Fn::Join': ['', ['sensor-', { Ref: 'SerialNumber' }]] });
});

test('a device with the claim certificate gets its own certificate and thing over MQTT, then connects with it', async () => {
  const device = await connect(claim, 'factory-line-1');
  const { keyPem, csrPem } = newP256KeyAndCsr('sensor-0001');
  const created = await call(device, '$aws/certificates/create-from-csr/json', { certificateSigningRequest: csrPem });
  assert.is(created.outcome, 'accepted', JSON.stringify(created.body));
  assert.equal(Object.keys(created.body).sort(), ['certificateId', 'certificateOwnershipToken', 'certificatePem']);
  const registry = new Registry(platform.db);
  assert.is(registry.getCertificate(created.body.certificateId as string)!.status, 'PENDING_ACTIVATION');

  const registered = await call(device, '$aws/provisioning-templates/factory/provision/json', { certificateOwnershipToken: created.body.certificateOwnershipToken, parameters: { SerialNumber: '0001' } });
  assert.is(registered.outcome, 'accepted', JSON.stringify(registered.body));
  assert.equal(registered.body, { deviceConfiguration: {}, thingName: 'sensor-0001' });
  await device.endAsync();

  const thing = registry.getThing('sensor-0001')!;
  assert.equal(thing.attributes, { serial: '0001' });
  assert.is(registry.getCertificate(created.body.certificateId as string)!.status, 'ACTIVE');
  assert.equal(registry.policiesOf(created.body.certificateId as string).map((p) => p.name), ['iotctl-device']);

  // Its own certificate, with the device policy: it publishes its telemetry as itself.
  const own = await connect({ cert: created.body.certificatePem as string, key: keyPem, ca: claim.ca }, 'sensor-0001');
  await own.publishAsync('dt/demo/sensor-0001/telemetry', '{"t":1}', { qos: 1 });
  await own.endAsync();
  // The token is spent: it provisions nothing twice.
  const again = await connect(claim, 'factory-line-1b');
  const reused = await call(again, '$aws/provisioning-templates/factory/provision/json', { certificateOwnershipToken: created.body.certificateOwnershipToken, parameters: { SerialNumber: '0001' } });
  assert.is(reused.outcome, 'rejected');
  assert.is(reused.body.errorCode, 'InvalidCertificateOwnershipToken');
  await again.endAsync();
});

test("AWS's own device SDK (IotIdentityClientv2) provisions a device against the local broker", async () => {
  const { keyPem, csrPem } = newP256KeyAndCsr('sdk');
  const input = JSON.stringify({ host: '127.0.0.1', port: platform.mqttPort, clientId: 'factory-sdk', cert: claim.cert, key: claim.key, ca: claim.ca, template: 'factory', csr: csrPem, serial: 'sdk1' });
  const out = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../helpers/sdk-v2-provisioning.ts'), input], { timeout: 30_000 }, (e, stdout, stderr) => (e ? reject(new Error(`${e.message}\n${stderr}`)) : resolve(stdout))),
  );
  const r = JSON.parse(out.trim().split('\n').pop()!);
  assert.is(r.error, undefined, JSON.stringify(r.error));
  assert.ok(r.created.certificateOwnershipToken && r.created.certificatePem && r.created.certificateId);
  assert.equal(r.registered, { deviceConfiguration: {}, thingName: 'sensor-sdk1' });
  // The SDK reads the rejected payload as AWS's modeled ErrorResponse.
  assert.equal(r.spent.modeledError, { statusCode: 400, errorCode: 'InvalidCertificateOwnershipToken', errorMessage: 'Certificate ownership token is invalid or expired.' });
  const own = await connect({ cert: r.created.certificatePem, key: keyPem, ca: claim.ca }, 'sensor-sdk1');
  await own.endAsync();
});

test('CreateKeysAndCertificate: AWS-made keys, then RegisterThing', async () => {
  const device = await connect(claim, 'factory-line-2');
  const created = await call(device, '$aws/certificates/create/json', {});
  assert.is(created.outcome, 'accepted');
  assert.equal(Object.keys(created.body).sort(), ['certificateId', 'certificateOwnershipToken', 'certificatePem', 'privateKey']);
  const registered = await call(device, '$aws/provisioning-templates/factory/provision/json', { certificateOwnershipToken: created.body.certificateOwnershipToken, parameters: { SerialNumber: '0002' } });
  assert.equal(registered.body, { deviceConfiguration: {}, thingName: 'sensor-0002' });
  await device.endAsync();
  const own = await connect({ cert: created.body.certificatePem as string, key: created.body.privateKey as string, ca: claim.ca }, 'sensor-0002');
  await own.endAsync();
});

test('the cbor payload format: requests and answers in CBOR', async () => {
  const device = await connect(claim, 'factory-line-cbor');
  const created = await call(device, '$aws/certificates/create/cbor', encodeCbor({}));
  assert.is(created.outcome, 'accepted');
  assert.ok(typeof created.body.privateKey === 'string' && typeof created.body.certificateOwnershipToken === 'string');
  const registered = await call(device, '$aws/provisioning-templates/factory/provision/cbor', encodeCbor({ certificateOwnershipToken: created.body.certificateOwnershipToken, parameters: { SerialNumber: 'c1' } }));
  assert.equal(registered.body, { deviceConfiguration: {}, thingName: 'sensor-c1' });
  const bad = await call(device, '$aws/provisioning-templates/factory/provision/cbor', Buffer.from('{"json": "is not cbor"}'));
  assert.equal([bad.outcome, bad.body.statusCode, bad.body.errorCode], ['rejected', 400, 'InvalidPayload']);
  await device.endAsync();
});

test('a device certificate with the device policy cannot call the provisioning API', async () => {
  const claimDevice = await connect(claim, 'factory-line-8');
  const created = await call(claimDevice, '$aws/certificates/create/json', {});
  await call(claimDevice, '$aws/provisioning-templates/factory/provision/json', { certificateOwnershipToken: created.body.certificateOwnershipToken, parameters: { SerialNumber: '0008' } });
  await claimDevice.endAsync();
  const own = await connect({ cert: created.body.certificatePem as string, key: created.body.privateKey as string, ca: claim.ca }, 'sensor-0008');
  const before = platform.status().publishesDenied.byReason.policyDenied ?? 0;
  const closed = new Promise<void>((resolve) => own.once('close', () => resolve()));
  own.publish('$aws/certificates/create/json', '{}', { qos: 1 });
  await closed; // AWS IoT closes an MQTT 3.1.1 connection for a publish its policy denies
  own.end(true);
  assert.is((platform.status().publishesDenied.byReason.policyDenied ?? 0) - before, 1);
});

test('bad requests get the documented rejected payloads', async () => {
  const device = await connect(claim, 'factory-line-3');
  const shape = (b: Record<string, unknown>) => Object.keys(b).sort().join(',');
  const empty = await call(device, '$aws/provisioning-templates/factory/provision/json', { parameters: { SerialNumber: '9' } });
  assert.equal(empty, { outcome: 'rejected', body: { statusCode: 400, errorCode: 'InvalidCertificateOwnershipToken', errorMessage: 'Certificate ownership token cannot be empty.' } });
  const notJson = await call(device, '$aws/certificates/create-from-csr/json', 'not json');
  assert.is(notJson.outcome, 'rejected');
  assert.is(shape(notJson.body), 'errorCode,errorMessage,statusCode');
  assert.is(notJson.body.statusCode, 400);
  const badCsr = await call(device, '$aws/certificates/create-from-csr/json', { certificateSigningRequest: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' });
  assert.is(badCsr.body.errorCode, 'InvalidCsr');
  const created = await call(device, '$aws/certificates/create/json', {});
  const missing = await call(device, '$aws/provisioning-templates/factory/provision/json', { certificateOwnershipToken: created.body.certificateOwnershipToken, parameters: {} });
  assert.equal(missing.body, { statusCode: 400, errorCode: 'InvalidParameters', errorMessage: 'Missing parameter: SerialNumber' });
  await device.endAsync();
});

test('the claim certificate reaches nothing but the provisioning API of its template', async () => {
  const device = await connect(claim, 'factory-line-4');
  // SUBACK 0x80 for another template's answers (mqtt.js rejects the subscribe for it).
  await rejects(device.subscribeAsync('$aws/provisioning-templates/other/provision/json/accepted', { qos: 1 }), /Unspecified error/);
  await device.subscribeAsync('$aws/provisioning-templates/factory/provision/json/accepted', { qos: 1 });
  // Publishing elsewhere is denied: AWS IoT closes an MQTT 3.1.1 connection for it.
  const closed = new Promise<void>((resolve) => device.once('close', () => resolve()));
  device.publish('dt/demo/sensor-0001/telemetry', '{}', { qos: 1 });
  await closed;
  device.end(true);
});

test('a claim certificate used after it is revoked is refused', async () => {
  const open = await connect(claim, 'factory-line-5');
  const dropped = new Promise<void>((resolve) => open.once('close', () => resolve()));
  await withTarget((t) => t.devices.revokeCertificate(claim.certificateId));
  await dropped; // the open connection is dropped at once
  open.end(true);
  await rejects(connect(claim, 'factory-line-6'));
  assert.ok((platform.status().connectionsRefused.byReason.certificateRevoked ?? 0) >= 1, JSON.stringify(platform.status().connectionsRefused));
});

test('a pre-provisioning hook runs in the function runner: it refuses a device, or rewrites its parameters', async () => {
  const vetted = { name: 'vetted', description: '', thingName: 'meter-{{SerialNumber}}', attributes: { seen: '{{Seen}}' }, enabled: true, policyName: 'iotctl-device', thingType: 'meter', preProvisioningHook: 'vet' };
  const issued = await withTarget(async (t) => {
    await t.devices.putTemplate(vetted);
    return issueClaim(t, vetted);
  });
  const device = await connect(issued, 'line-7');
  const refused = await call(device, '$aws/certificates/create/json', {});
  const no = await call(device, '$aws/provisioning-templates/vetted/provision/json', { certificateOwnershipToken: refused.body.certificateOwnershipToken, parameters: { SerialNumber: 'x1' } });
  assert.equal(no.body, { statusCode: 403, errorCode: 'AccessDenied', errorMessage: 'The pre-provisioning hook did not allow provisioning' });
  assert.is(new Registry(platform.db).getThing('meter-x1'), undefined);
  const created = await call(device, '$aws/certificates/create/json', {});
  const yes = await call(device, '$aws/provisioning-templates/vetted/provision/json', { certificateOwnershipToken: created.body.certificateOwnershipToken, parameters: { SerialNumber: '7' } });
  assert.equal(yes.body, { deviceConfiguration: {}, thingName: 'meter-0007' });
  await device.endAsync();
  const thing = new Registry(platform.db).getThing('meter-0007')!;
  assert.equal([thing.thingType, thing.attributes.seen], ['meter', 'line-7,64,64,provisioningtemplate/vetted,true']);
});

test('cli: apply, claim-certificate --json, revoke --certificate, and the template deleted when the spec drops it', async () => {
  const p = makeProject(SPEC);
  try {
    const apply = await cli(['apply', '--yes'], { cwd: p.dir });
    assert.is(apply.code, 0, apply.stderr);
    assert.match(apply.stderr, /\+ provisioning template factory/);
    const issued = await cli(['device', 'claim-certificate', '--json', '--out', 'claim'], { cwd: p.dir });
    assert.is(issued.code, 0, issued.stderr);
    const out = JSON.parse(issued.stdout);
    assert.equal([out.template, out.policyName, out.credentials], ['factory', 'factory-claim', join(p.dir, 'claim')]);
    assert.is(statSync(join(p.dir, 'claim', 'private.key')).mode & 0o777, 0o600);
    const revoked = await cli(['device', 'revoke', '--certificate', out.certificateId, '--json'], { cwd: p.dir });
    assert.equal(JSON.parse(revoked.stdout), { revoked: [out.certificateId] });
    writeFileSync(p.specFile, 'project: demo\ntarget: local\nlocal: { mqttPort: 0 }\n');
    const removed = await cli(['apply', '--yes'], { cwd: p.dir });
    assert.match(removed.stderr, /- provisioning template factory/);
    const none = await cli(['device', 'claim-certificate'], { cwd: p.dir });
    assert.is(none.code, 1);
    assert.match(none.stderr, /declares no provisioning template/);
  } finally {
    p.cleanup();
  }
});

async function issueClaim(t: Awaited<ReturnType<typeof openTarget>>, input: Parameters<Awaited<ReturnType<typeof openTarget>>['devices']['issueClaimCertificate']>[0]) {
  const c = await t.devices.issueClaimCertificate(input);
  return { cert: c.certPem, key: c.keyPem!, ca: c.caPem };
}

test.run();
