import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { newP256KeyAndCsr } from '../../src/targets/local/ca.js';
import { join } from 'node:path';
import { cli, makeProject, rejects, waitFor, type Project } from '../helpers/project.js';
import { LocalPlatform } from '../../src/targets/local/platform.js';
import { connectDevice, readCredentials, type DeviceCredentials } from '../../src/services/publish.js';

// Certificate lifecycle on the local target, end to end: the built CLI changes the registry while a broker
// (in this process) serves real MQTT-over-TLS clients with the credentials the CLI wrote.

let project: Project;
let platform: LocalPlatform;
const SPEC = `project: demo
target: local
local: { mqttPort: 0 }
devices:
  certificateValidity: 400d
`;

const run = (...args: string[]) => cli(args, { cwd: project.dir });
const json = async <T>(...args: string[]): Promise<T> => {
  const r = await run(...args, '--json');
  assert.is(r.code, 0, `iotctl ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
};
const devicesDir = () => join(project.dir, 'devices');
const connect = (creds: DeviceCredentials) => connectDevice(creds, { host: '127.0.0.1', port: platform.mqttPort });

test.before(async () => {
  project = makeProject(SPEC);
  platform = new LocalPlatform({ stateDir: project.stateDir, spec: project.spec, mqttPort: 0 });
  await platform.start();
});

test.after(async () => {
  await platform.stop();
  project.cleanup();
});

type Row = { thingName: string; certificateId: string; daysLeft: number; expiry: string; status: string; notAfter: string; rotation?: string };

test('register --validity issues a short certificate that --expiring finds; the spec validity applies otherwise', async () => {
  await json('device', 'register', 'sensor-1', '--validity', '1h');
  await json('device', 'register', 'sensor-2');
  const soon = await json<Row[]>('device', 'list', '--expiring', '2h');
  assert.equal(soon.map((r) => r.thingName), ['sensor-1']);
  assert.is(soon[0]!.daysLeft, 0);
  assert.is(soon[0]!.expiry, 'expiring');
  const left = Date.parse(soon[0]!.notAfter) - Date.now();
  assert.ok(left > 55 * 60_000 && left <= 3_600_000, `notAfter in about an hour, got ${left} ms`);
  assert.equal(await json<Row[]>('device', 'list', '--expiring', '30m'), []);
  // sensor-2 got devices.certificateValidity (400d): inside a 500d window, not a 30d one.
  const year = await json<Row[]>('device', 'list', '--expiring', '500d');
  assert.is(year.find((r) => r.thingName === 'sensor-2')?.daysLeft, 399);
  const status = await json<{ certificates: { active: number; expiring: number; expired: number; rotating: number } }>('status', '--expiring', '2h');
  assert.equal(status.certificates, { windowDays: 0, active: 2, expiring: 1, expired: 0, rotating: 0 });
  const bad = await run('device', 'register', 'sensor-x', '--validity', 'soon');
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /Invalid --validity "soon"/);
});

test('rotate a connected device: old certificate works in the grace, new one connects, finish retires the old one', async () => {
  const old = readCredentials(devicesDir(), 'sensor-1');
  const client = await connect(old);
  let oldClosed = false;
  client.on('close', () => (oldClosed = true));

  const started = await json<{ action: string; oldCertificateId: string; newCertificateId: string; credentials: string; graceUntil: string }>('device', 'rotate', 'sensor-1', '--grace', '1h', '--validity', '30d');
  assert.is(started.action, 'started');
  assert.is(started.credentials, join(devicesDir(), 'sensor-1', 'next'));
  // The old credentials are untouched beside the new ones.
  assert.equal(readCredentials(devicesDir(), 'sensor-1').cert, old.cert);
  const next = { ...readCredentials(join(devicesDir(), 'sensor-1'), 'next'), thingName: 'sensor-1' };
  assert.is.not(next.cert, old.cert);

  // During the grace the old certificate keeps its connection and can publish.
  await client.publishAsync('dt/demo/sensor-1/telemetry', '{"t":1}', { qos: 1 });
  assert.not.ok(oldClosed);

  // The rotation is visible in device show and status.
  const shown = await json<{ rotation: { newCertificateId: string } | null; certificates: Row[] }>('device', 'show', 'sensor-1');
  assert.is(shown.rotation?.newCertificateId, started.newCertificateId);
  assert.equal(shown.certificates.map((c) => [c.status, c.rotation]).sort(), [['ACTIVE', 'new'], ['ACTIVE', 'old']]);
  const status = await json<{ certificates: { rotating: number } }>('status');
  assert.is(status.certificates.rotating, 1);

  // A rerun within the grace changes nothing.
  const again = await json<{ action: string; newCertificateId: string }>('device', 'rotate', 'sensor-1');
  assert.equal([again.action, again.newCertificateId], ['in-grace', started.newCertificateId]);

  // Finishing before the new certificate has connected is refused, and nothing is retired.
  const early = await run('device', 'rotate', '--finish', 'sensor-1');
  assert.is(early.code, 1);
  assert.match(early.stderr, /has not connected yet/);
  assert.not.ok(oldClosed);

  // The new certificate connects (the broker records it); then finish retires the old one.
  await client.endAsync();
  const fresh = await connect(next);
  await fresh.publishAsync('dt/demo/sensor-1/telemetry', '{"t":2}', { qos: 1 });
  await fresh.endAsync();
  const finished = await json<{ action: string; credentials: string }>('device', 'rotate', '--finish', 'sensor-1');
  assert.is(finished.action, 'finished');
  assert.not.ok(existsSync(join(devicesDir(), 'sensor-1', 'next')));
  assert.equal(readCredentials(devicesDir(), 'sensor-1').cert, next.cert);

  // The old certificate is gone: a connection with it is refused; the new one (now in the thing's folder) connects.
  const refusedBefore = platform.status().connectionsRefused.total;
  await rejects(connect(old));
  assert.ok(platform.status().connectionsRefused.total > refusedBefore);
  const after = await connect(readCredentials(devicesDir(), 'sensor-1'));
  await after.endAsync();
  const certs = await json<{ certificates: Row[]; rotation: unknown }>('device', 'show', 'sensor-1');
  assert.is(certs.rotation, null);
  assert.equal(certs.certificates.map((c) => c.certificateId), [started.newCertificateId]);
});

test('finish drops a connection still open with the old certificate', async () => {
  const old = readCredentials(devicesDir(), 'sensor-2');
  await json('device', 'rotate', 'sensor-2', '--grace', '1h');
  const next = { ...readCredentials(join(devicesDir(), 'sensor-2'), 'next'), thingName: 'sensor-2' };
  const fresh = await connect(next);
  await fresh.endAsync();
  const client = await connect(old);
  const closed = new Promise<void>((r) => client.once('close', () => r()));
  await json('device', 'rotate', '--finish', 'sensor-2');
  await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('old connection not dropped')), 5000))]);
  client.end(true);
});

test('rotate --csr: the new key never leaves the device; finish leaves no stale key beside the new certificate', async () => {
  await json('device', 'register', 'sensor-5');
  const { keyPem, csrPem } = newP256KeyAndCsr('sensor-5');
  writeFileSync(join(project.dir, 'sensor-5.csr'), csrPem);
  const r = await json<{ action: string }>('device', 'rotate', 'sensor-5', '--csr', 'sensor-5.csr');
  assert.is(r.action, 'started');
  assert.not.ok(existsSync(join(devicesDir(), 'sensor-5', 'next', 'private.key')));
  const next = { ...readCredentials(devicesDir(), 'sensor-5'), cert: readFileSync(join(devicesDir(), 'sensor-5', 'next', 'cert.pem'), 'utf8'), key: keyPem };
  const client = await connect(next);
  await client.endAsync();
  await json('device', 'rotate', '--finish', 'sensor-5');
  assert.not.ok(existsSync(join(devicesDir(), 'sensor-5', 'private.key')));
  assert.is(readFileSync(join(devicesDir(), 'sensor-5', 'cert.pem'), 'utf8'), next.cert);
});

test('bulk --expiring rotates only the expiring device, and a rerun resumes instead of rotating again', async () => {
  await json('device', 'register', 'sensor-3', '--validity', '2h');
  type Bulk = { started: { thingName: string }[]; inGrace: { thingName: string }[]; skipped: number; failed: unknown[] };
  const first = await json<Bulk>('device', 'rotate', '--expiring', '3h', '--grace', '1h');
  assert.equal(first.started.map((r) => r.thingName), ['sensor-3']);
  assert.equal(first.failed, []);
  assert.is(first.skipped, 3);
  const rerun = await json<Bulk>('device', 'rotate', '--expiring', '3h', '--grace', '1h');
  assert.equal(rerun.started, []);
  assert.equal(rerun.inGrace.map((r) => r.thingName), ['sensor-3']);
});

test('prune deletes revoked and unattached certificates, never an ACTIVE attached one', async () => {
  await json('device', 'register', 'sensor-4');
  await json('device', 'revoke', 'sensor-4');
  type Prune = { deleted: { certificateId: string; reason: string; things: string[] }[] };
  const dry = await json<Prune>('device', 'prune-certificates', '--dry-run');
  assert.equal(dry.deleted.map((d) => [d.things, d.reason]), [[['sensor-4'], 'revoked']]);
  const sensor1 = (await json<{ certificates: Row[] }>('device', 'show', 'sensor-1')).certificates;
  // Dry run: nothing deleted.
  assert.is((await json<{ certificates: Row[] }>('device', 'show', 'sensor-4')).certificates.length, 1);
  const done = await json<Prune>('device', 'prune-certificates');
  assert.equal(done.deleted.map((d) => d.reason), ['revoked']);
  assert.equal((await json<{ certificates: Row[] }>('device', 'show', 'sensor-4')).certificates, []);
  // Every ACTIVE attached certificate is still there (sensor-3's rotation both sides included), and works.
  assert.equal((await json<{ certificates: Row[] }>('device', 'show', 'sensor-1')).certificates, sensor1);
  assert.is((await json<{ certificates: Row[] }>('device', 'show', 'sensor-3')).certificates.length, 2);
  const client = await connect(readCredentials(devicesDir(), 'sensor-1'));
  await client.endAsync();
  await waitFor(() => true);
});

test.run();
