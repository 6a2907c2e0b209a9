// Broker throughput: QoS1 publishes/s from 100 connected devices, 200-byte payloads.
//   - iotctl over TLS with policy enforcement, rules disabled (issue 2's figure)
//     as a ratio to the same broker over plain TCP and to Mosquitto over TLS on this machine;
//   - iotctl with the durable ingress log + rules (issue 3's figure, target >= 20,000 msg/s),
//     as a ratio to the broker with rules disabled.
// Run: node --import tsx test/bench/broker.bench.ts   (BENCH_MESSAGES=50000 by default)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
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
// A second state dir with the same CA and devices, for the platform with rules on.
const ingressDir = join(dir, 'state-ingress');
cpSync(stateDir, ingressDir, { recursive: true });

const rulesOff = await startPlatform(stateDir, false);
const rulesOn = await startPlatform(ingressDir, true);
let mosquittoPort: number | undefined;
let mosquittoChild: ChildProcess | undefined;
const mosquitto = spawnSync('sh', ['-c', 'command -v mosquitto || ls /usr/sbin/mosquitto'], { encoding: 'utf8' }).stdout.trim();
if (mosquitto) {
  mosquittoPort = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, [`listener ${mosquittoPort} 127.0.0.1`, `cafile ${join(stateDir, 'ca/ca.pem')}`, `certfile ${join(stateDir, 'ca/server.pem')}`, `keyfile ${join(stateDir, 'ca/server.key')}`, 'require_certificate true', 'allow_anonymous true', 'persistence false', 'max_queued_messages 1000000', ...(process.getuid?.() === 0 ? ['user root'] : []), ''].join('\n'));
  mosquittoChild = spawn(mosquitto, ['-c', conf], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
}

// Interleaved rounds, medians: this machine is noisy, and every system sees the same noise.
const runs: Record<string, () => Promise<number>> = {
  tls: () => qos1Load({ protocol: 'mqtts', port: rulesOff.port, ca, clients, topic, total: TOTAL, bytes: 200 }),
  tcp: () => qos1Load({ protocol: 'mqtt', port: rulesOff.plainTcpPort, clients: clients.map((c) => ({ clientId: c.clientId })), topic, total: TOTAL, bytes: 200 }),
  ingress: () => qos1Load({ protocol: 'mqtts', port: rulesOn.port, ca, clients, topic, total: TOTAL, bytes: 200 }),
  ...(mosquittoPort ? { mosquitto: () => qos1Load({ protocol: 'mqtts', port: mosquittoPort!, ca, clients, topic, total: TOTAL, bytes: 200 }) } : {}),
};
const samples: Record<string, number[]> = {};
for (const run of Object.values(runs)) await run(); // warm-up
for (let round = 0; round < ROUNDS; round++) for (const [name, run] of Object.entries(runs)) (samples[name] ??= []).push(await run());
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const results: Record<string, number> = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
await Promise.all([stop(rulesOff.child), stop(rulesOn.child), mosquittoChild && stop(mosquittoChild)]);

console.log(`QoS1 publishes/s, ${DEVICES} devices, ${fmt(TOTAL)} messages of 200 B per run, one load-generator process, median of ${ROUNDS} interleaved rounds:`);
console.log(`  iotctl broker, TLS + policies (rules off):  ${fmt(results.tls!)} msg/s`);
console.log(`  iotctl broker, plain TCP (rules off):       ${fmt(results.tcp!)} msg/s   -> TLS is ${(results.tls! / results.tcp!).toFixed(2)}x of plain TCP`);
if (results.mosquitto) console.log(`  mosquitto, TLS (require_certificate):      ${fmt(results.mosquitto)} msg/s   -> iotctl is ${(results.tls! / results.mosquitto).toFixed(2)}x of Mosquitto (target >= 0.8x): ${results.tls! / results.mosquitto >= 0.8 ? 'PASS' : 'FAIL'}`);
else console.log('  mosquitto: not installed here, no comparison');
console.log(`  iotctl, TLS + durable ingress + rules:     ${fmt(results.ingress!)} msg/s   -> ${(results.ingress! / results.tls!).toFixed(2)}x of rules disabled; target >= 20,000 msg/s: ${results.ingress! >= 20_000 ? 'PASS' : 'FAIL'}`);
rmSync(dir, { recursive: true, force: true });
