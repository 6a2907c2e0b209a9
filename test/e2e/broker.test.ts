import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { makeProject, MINIMAL_SPEC, rejects, waitFor, type Project } from '../helpers/project.js';
import { registerTestDevice } from '../helpers/devices.js';
import { LocalPlatform } from '../../src/targets/local/platform.js';
import { CONNECT_INTERVAL_MS } from '../../src/targets/local/broker.js';
import { openTarget } from '../../src/targets/index.js';
import { Context } from '../../src/context.js';
import { ensureDevicePolicy, registerDevice } from '../../src/services/devices.js';
import { connectDevice, readCredentials, type DeviceCredentials } from '../../src/services/publish.js';
import { createCa, LocalCa } from '../../src/targets/local/ca.js';
import { Registry } from '../../src/targets/local/registry.js';
import { openStore } from '../../src/targets/local/store.js';

let project: Project;
let platform: LocalPlatform;
let port: number;
const devicesDir = () => join(project.dir, 'devices');

function connect(creds: DeviceCredentials, clientId = creds.thingName) {
  return connectDevice(creds, { host: '127.0.0.1', port }, clientId);
}

const register = (thing: string) => registerTestDevice(project, thing);

test.before(async () => {
  project = makeProject(MINIMAL_SPEC);
  platform = new LocalPlatform({ stateDir: project.stateDir, spec: project.spec, mqttPort: 0 });
  await platform.start();
  port = platform.mqttPort;
});

test.after(async () => {
  await platform.stop();
  project.cleanup();
});

test('a registered device connects and publishes QoS1 on its own telemetry topic', async () => {
  const creds = await register('sensor-1');
  const client = await connect(creds);
  await client.publishAsync('dt/demo/sensor-1/telemetry', JSON.stringify({ temperature: 21 }), { qos: 1 });
  await client.endAsync();
  const s = platform.status();
  assert.is(s.publishesAccepted.total, 1);
  assert.is(s.publishesAccepted.byReason.qos1, 1);
  assert.ok(s.connectionsAccepted.total >= 1);
  const logged = platform.ingress!.readAfter(0, 10);
  assert.is(logged.length, 1);
  assert.is(logged[0]!.clientId, 'sensor-1');
  assert.equal(JSON.parse(logged[0]!.payload.toString()), { temperature: 21 });
});

test('a certificate from another CA is refused during the TLS handshake', async () => {
  const real = readCredentials(devicesDir(), 'sensor-1');
  const otherCa = await LocalCa.load(await createCa('someone else'));
  const foreign = await otherCa.issue({ thingName: 'sensor-1' });
  const before = platform.status().connectionsRefused.total;
  await rejects(connect({ ...real, cert: foreign.certPem, key: foreign.keyPem! }));
  await waitFor(() => platform.status().connectionsRefused.total > before, 5000, 'refusal counted');
  assert.ok((platform.status().connectionsRefused.byReason.untrustedCertificate ?? 0) >= 1, JSON.stringify(platform.status().connectionsRefused));
});

test('connecting with a client id other than the thing name is refused', async () => {
  const creds = readCredentials(devicesDir(), 'sensor-1');
  await rejects(connect(creds, 'not-sensor-1'));
  assert.ok((platform.status().connectionsRefused.byReason.policyDenied ?? 0) >= 1);
});

test("publishing to another device's topic is denied, counted and not delivered", async () => {
  const a = readCredentials(devicesDir(), 'sensor-1');
  const b = await register('sensor-2');
  // sensor-2 listens on its own command topic; sensor-1 may not publish there.
  const listener = await connect(b);
  const received: string[] = [];
  listener.on('message', (topic) => received.push(topic));
  await listener.subscribeAsync('cmd/demo/sensor-2/#', { qos: 1 });
  const before = platform.status().publishesDenied.byReason.policyDenied ?? 0;
  const attacker = await connect(a);
  const closed = new Promise<void>((r) => attacker.once('close', () => r()));
  attacker.publish('dt/demo/sensor-2/telemetry', '{"spoofed":true}', { qos: 1 });
  attacker.publish('cmd/demo/sensor-2/reboot', '{}', { qos: 1 });
  await closed; // AWS IoT disconnects a client on an unauthorized publish
  await new Promise((r) => setTimeout(r, 200));
  attacker.end(true);
  await listener.endAsync();
  assert.equal(received, []);
  assert.ok((platform.status().publishesDenied.byReason.policyDenied ?? 0) > before);
  assert.is(platform.ingress!.readAfter(0, 100).filter((m) => m.topic.includes('sensor-2')).length, 0);
});

test("subscribing to another device's commands is refused (SUBACK 0x80)", async () => {
  const a = readCredentials(devicesDir(), 'sensor-1');
  const client = await connect(a);
  // mqtt.js reports a SUBACK return code of 0x80 as a rejected subscribe.
  await rejects(client.subscribeAsync('cmd/demo/sensor-2/#', { qos: 1 }), /Subscribe error/);
  assert.is(platform.status().subscriptionsDenied.byReason.policyDenied, 1);
  await client.endAsync();
});

test('revoking a certificate drops the open connection at once and refuses new ones', async () => {
  const creds = await register('sensor-3');
  const client = await connect(creds);
  const closed = new Promise<void>((r) => client.once('close', () => r()));
  // Revoke from another connection to the store, as `iotctl device revoke` does from another process.
  const db = openStore(project.stateDir);
  const registry = new Registry(db);
  for (const c of registry.certificatesOf('sensor-3')) registry.setCertificateStatus(c.id, 'REVOKED');
  db.close();
  await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('connection not dropped')), 3000))]);
  client.end(true);
  await rejects(connect(creds));
  assert.ok((platform.status().connectionsRefused.byReason.certificateRevoked ?? 0) >= 1, JSON.stringify(platform.status().connectionsRefused));
});

test('payloads over 128 KB are refused as AWS refuses them', async () => {
  const creds = readCredentials(devicesDir(), 'sensor-1');
  const client = await connect(creds);
  const closed = new Promise<void>((r) => client.once('close', () => r()));
  client.publish('dt/demo/sensor-1/telemetry', Buffer.alloc(129 * 1024, 'a'), { qos: 1 });
  await closed;
  client.end(true);
  assert.ok((platform.status().publishesDenied.byReason.payloadTooLarge ?? 0) >= 1);
});

test('mosquitto_pub (a client this project did not write) publishes with the device credentials', async () => {
  const which = spawnSync('sh', ['-c', 'command -v mosquitto_pub']);
  assert.is(which.status, 0, 'mosquitto_pub is missing: .ci/run installs mosquitto-clients');
  const before = platform.status().publishesAccepted.total;
  const dir = join(devicesDir(), 'sensor-1');
  // sensor-1 connected in the test before: AWS IoT (and the local broker) allow 1 CONNECT per second per client id.
  await new Promise((r) => setTimeout(r, CONNECT_INTERVAL_MS));
  // The broker runs in this process, so the client must run asynchronously.
  const run = (args: string[]) => promisify(execFile)('mosquitto_pub', args, { timeout: 10_000 }).then(() => 0, (e: { code?: number }) => e.code ?? 1);
  const r = await run( ['-h', 'localhost', '-p', String(port), '--cafile', join(dir, 'ca.pem'), '--cert', join(dir, 'cert.pem'), '--key', join(dir, 'private.key'), '-i', 'sensor-1', '-t', 'dt/demo/sensor-1/telemetry', '-q', '1', '-m', '{"temperature":30}']);
  assert.is(r, 0);
  assert.is(platform.status().publishesAccepted.total, before + 1);
  // And with a client id that is not its thing name, mosquitto is refused too.
  const bad = await run( ['-h', 'localhost', '-p', String(port), '--cafile', join(dir, 'ca.pem'), '--cert', join(dir, 'cert.pem'), '--key', join(dir, 'private.key'), '-i', 'intruder', '-t', 'dt/demo/sensor-1/telemetry', '-q', '1', '-m', '{}']);
  assert.is.not(bad, 0);
});

test('maintenance trims consumed ingress entries after their retention, and the sequence goes on', async () => {
  const last = platform.ingress!.lastSeq();
  assert.ok(last > 0);
  await waitFor(() => platform.rules!.checkpoint === last, 5000, 'the rules runtime to catch up');
  platform.maintenance(Date.now() + 2 * 24 * 3_600_000);
  assert.equal(platform.ingress!.readAfter(0, 1000), []);
  assert.is(platform.ingress!.lastSeq(), last);
  assert.is(platform.status().rules!.lag, 0);
});

test.run();
