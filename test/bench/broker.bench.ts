// Broker throughput: QoS1 publishes/s from 100 connected devices, 200-byte payloads.
//   - iotctl over TLS with policy enforcement, rules disabled (issue 2's figure)
//     as a ratio to the same broker over plain TCP and to Mosquitto over TLS on this machine;
//   - iotctl with the durable ingress log + rules (issue 3's figure, target >= 20,000 msg/s),
//     as a ratio to the broker with rules disabled.
// Run: node --import tsx test/bench/broker.bench.ts   (BENCH_MESSAGES=50000 by default)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createServer } from 'node:net';
import { parseSpec } from '../../src/spec/loader.js';
import { LocalDevices } from '../../src/targets/local/devices.js';
import { openStore } from '../../src/targets/local/store.js';
import { desiredDevicePolicy } from '../../src/services/devices.js';
import { fmt, qos1Load, type LoadClient } from './support/load.js';

const TOTAL = Number(process.env.BENCH_MESSAGES ?? 50_000);
const DEVICES = 100;
const dir = mkdtempSync(join(tmpdir(), 'iotctl-bench-broker-'));
const spec = parseSpec('project: bench\nlocal: { mqttPort: 0 }\n').spec;

async function registerDevices(stateDir: string): Promise<LoadClient[]> {
  const db = openStore(stateDir);
  const devices = new LocalDevices(db, stateDir, () => ({ host: '127.0.0.1', port: 0 }));
  await devices.putPolicy(spec.devices.policy.name, desiredDevicePolicy(spec));
  const out: LoadClient[] = [];
  for (let i = 0; i < DEVICES; i++) {
    const d = await devices.register({ thingName: `dev-${i}`, thingType: 'sensor', attributes: {}, policyName: spec.devices.policy.name });
    out.push({ clientId: d.thingName, cert: d.certPem, key: d.keyPem });
  }
  db.close();
  return out;
}

async function startPlatform(stateDir: string, rules: boolean): Promise<{ child: ChildProcess; port: number; plainTcpPort: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'support/platform-child.ts'), stateDir, rules ? 'on' : 'off'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
  return { child, ...JSON.parse(line) };
}

const stop = (child: ChildProcess) => new Promise((r) => { child.once('exit', r); child.kill('SIGTERM'); });
const freePort = () => new Promise<number>((res) => { const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address() as { port: number }; s.close(() => res(port)); }); });
const topic = (c: LoadClient) => `dt/bench/${c.clientId}/telemetry`;

const stateDir = join(dir, 'state');
const clients = await registerDevices(stateDir);
const ca = readFileSync(join(stateDir, 'ca/ca.pem'), 'utf8');
const results: Record<string, number> = {};

{
  const p = await startPlatform(stateDir, false);
  await qos1Load({ protocol: 'mqtts', port: p.port, ca, clients, topic, total: 5000, bytes: 200 }); // warm-up
  results.tls = await qos1Load({ protocol: 'mqtts', port: p.port, ca, clients, topic, total: TOTAL, bytes: 200 });
  results.tcp = await qos1Load({ protocol: 'mqtt', port: p.plainTcpPort, clients: clients.map((c) => ({ clientId: c.clientId })), topic, total: TOTAL, bytes: 200 });
  await stop(p.child);
}
{
  const p = await startPlatform(stateDir, true);
  await qos1Load({ protocol: 'mqtts', port: p.port, ca, clients, topic, total: 5000, bytes: 200 });
  results.ingress = await qos1Load({ protocol: 'mqtts', port: p.port, ca, clients, topic, total: TOTAL, bytes: 200 });
  await stop(p.child);
}

const mosquitto = spawnSync('sh', ['-c', 'command -v mosquitto || ls /usr/sbin/mosquitto'], { encoding: 'utf8' }).stdout.trim();
if (mosquitto) {
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, `cafile ${join(stateDir, 'ca/ca.pem')}`, `certfile ${join(stateDir, 'ca/server.pem')}`, `keyfile ${join(stateDir, 'ca/server.key')}`, 'require_certificate true', 'allow_anonymous true', 'persistence false', 'max_queued_messages 1000000', ...(process.getuid?.() === 0 ? ['user root'] : []), ''].join('\n'));
  const child = spawn(mosquitto, ['-c', conf], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  await qos1Load({ protocol: 'mqtts', port, ca, clients, topic, total: 5000, bytes: 200 });
  results.mosquitto = await qos1Load({ protocol: 'mqtts', port, ca, clients, topic, total: TOTAL, bytes: 200 });
  await stop(child);
}

console.log(`QoS1 publishes/s, ${DEVICES} devices, ${fmt(TOTAL)} messages of 200 B, one load-generator process:`);
console.log(`  iotctl broker, TLS + policies (rules off):  ${fmt(results.tls!)} msg/s`);
console.log(`  iotctl broker, plain TCP (rules off):       ${fmt(results.tcp!)} msg/s   -> TLS is ${(results.tls! / results.tcp!).toFixed(2)}x of plain TCP`);
if (results.mosquitto) console.log(`  mosquitto, TLS (require_certificate):      ${fmt(results.mosquitto)} msg/s   -> iotctl is ${(results.tls! / results.mosquitto).toFixed(2)}x of Mosquitto (target >= 0.8x): ${results.tls! / results.mosquitto >= 0.8 ? 'PASS' : 'FAIL'}`);
else console.log('  mosquitto: not installed here, no comparison');
console.log(`  iotctl, TLS + durable ingress + rules:     ${fmt(results.ingress!)} msg/s   -> ${(results.ingress! / results.tls!).toFixed(2)}x of rules disabled; target >= 20,000 msg/s: ${results.ingress! >= 20_000 ? 'PASS' : 'FAIL'}`);
rmSync(dir, { recursive: true, force: true });
