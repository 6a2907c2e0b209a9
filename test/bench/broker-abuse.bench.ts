// The broker under abuse (issue 16): 200 silent TCP connections (no TLS ClientHello) and 3 clients sending PUBLISH
// packets that declare 200 MB must not raise the daemon's RSS by more than 50 MB, and a normal device's QoS1 publish
// latency stays under 50 ms meanwhile. Printed against the same device's latency without abuse, in the same run.
// The platform (rules and ingress on) runs in its own process, so its RSS is its own.
// Run: npm run bench -- broker-abuse   (or node --import tsx test/bench/broker-abuse.bench.ts after npm run build)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseSpec } from '../../src/spec/loader.js';
import { LocalDevices } from '../../src/targets/local/devices.js';
import { openStore } from '../../src/targets/local/store.js';
import { desiredDevicePolicy } from '../../src/services/devices.js';
import { publishPacket, RawClient, remainingLength, type RawCredentials } from '../helpers/raw-mqtt.js';

const SILENT = 200;
const OVERSIZED_CLIENTS = 3;
const DECLARED = 200 * 1024 * 1024;
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 300);
const dir = mkdtempSync(join(tmpdir(), 'iotctl-bench-abuse-'));
const stateDir = join(dir, 'state');
const spec = parseSpec('project: bench\nlocal: { mqttPort: 0 }\n').spec;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function registerDevices(names: string[]): Promise<Record<string, RawCredentials>> {
  const db = openStore(stateDir);
  const devices = new LocalDevices(db, stateDir, () => ({ host: '127.0.0.1', port: 0 }));
  await devices.putPolicy(spec.devices.policy.name, desiredDevicePolicy(spec));
  const out: Record<string, RawCredentials> = {};
  for (const thingName of names) {
    const d = await devices.register({ thingName, thingType: 'sensor', attributes: {}, policyName: spec.devices.policy.name });
    out[thingName] = { cert: d.certPem, key: d.keyPem!, ca: '' };
  }
  const ca = readFileSync(join(stateDir, 'ca/ca.pem'), 'utf8');
  for (const c of Object.values(out)) c.ca = ca;
  db.close();
  return out;
}

async function startPlatform(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'support/platform-child.ts'), stateDir, 'on'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
  return { child, ...JSON.parse(line) };
}

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

/** Sequential QoS1 publishes of the normal device: each latency is PUBLISH written -> PUBACK read, in ms. */
async function latencies(client: RawClient, topic: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    client.write(publishPacket(topic, JSON.stringify({ temperature: 21.5, seq: i }), { qos: 1, id: (i % 65535) + 1 }));
    const ack = await client.next(5000);
    if (ack?.type !== 4) throw new Error(`no PUBACK for publish ${i} (got ${ack?.type ?? 'a closed connection'})`);
    out.push(performance.now() - started);
    await sleep(5);
  }
  return out;
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))]!;

/** An abuser: connects, declares a 200 MB PUBLISH and streams its body until the broker hangs up; again and again. */
async function oversizedSender(port: number, creds: RawCredentials, clientId: string, stop: () => boolean, stats: { attempts: number; bytesSent: number; refused: number }) {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  while (!stop()) {
    const started = Date.now();
    const { client, returnCode } = await RawClient.connect(port, creds, clientId).catch(() => ({ client: undefined, returnCode: -1 }));
    if (client && returnCode === 0) {
      stats.attempts++;
      client.write(Buffer.concat([Buffer.from([0x30]), remainingLength(DECLARED), Buffer.from([0, 1, 0x74])]));
      let sent = 0;
      while (!client.isClosed && sent < DECLARED && !stop()) {
        if (!client.write(chunk)) await Promise.race([new Promise((r) => client.socket.once('drain', r)), client.closed, sleep(1000)]);
        sent += chunk.length;
      }
      stats.bytesSent += sent;
      if (client.isClosed) stats.refused++;
      client.destroy();
    } else client?.destroy();
    // AWS's quota (1 CONNECT per second per client id) applies to abusers too.
    await sleep(Math.max(0, 1050 - (Date.now() - started)));
  }
}

const creds = await registerDevices(['normal', ...Array.from({ length: OVERSIZED_CLIENTS }, (_, i) => `abuser-${i}`)]);
const { child, port } = await startPlatform();
try {
  const normal = (await RawClient.connect(port, creds.normal!, 'normal')).client;
  const topic = 'dt/bench/normal/telemetry';
  await latencies(normal, topic, 50); // warm-up
  await sleep(500);
  const rssBase = rssMb(child.pid!);
  const baseline = await latencies(normal, topic, SAMPLES);

  // Abuse: silent TCP connections (re-opened as the handshake timeout closes them) and oversized senders.
  let stopping = false;
  const silent = new Set<Socket>();
  const openSilent = () => {
    if (stopping) return;
    const s = tcpConnect({ host: '127.0.0.1', port });
    s.on('error', () => {});
    s.once('close', () => { silent.delete(s); openSilent(); });
    silent.add(s);
  };
  for (let i = 0; i < SILENT; i++) openSilent();
  const abuse = { attempts: 0, bytesSent: 0, refused: 0 };
  const senders = Array.from({ length: OVERSIZED_CLIENTS }, (_, i) => oversizedSender(port, creds[`abuser-${i}`]!, `abuser-${i}`, () => stopping, abuse));
  let rssPeak = rssMb(child.pid!);
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssMb(child.pid!))), 50);
  await sleep(1000);
  const underAbuse = await latencies(normal, topic, SAMPLES);
  const openSilentAtEnd = silent.size;
  stopping = true;
  clearInterval(sampler);
  rssPeak = Math.max(rssPeak, rssMb(child.pid!));
  for (const s of silent) s.destroy();
  await Promise.all(senders);
  normal.end();

  const growth = rssPeak - rssBase;
  const [b50, b99, a50, a99] = [quantile(baseline, 0.5), quantile(baseline, 0.99), quantile(underAbuse, 0.5), quantile(underAbuse, 0.99)];
  console.log(`Broker under abuse: ${SILENT} silent TCP connections (${openSilentAtEnd} open at the end) + ${OVERSIZED_CLIENTS} clients declaring ${DECLARED / 1024 / 1024} MB PUBLISH packets`);
  console.log(`  oversized attempts: ${abuse.attempts}, each closed by the broker: ${abuse.refused}, body bytes the abusers got out before the close: ${(abuse.bytesSent / Math.max(1, abuse.attempts) / 1024).toFixed(0)} KB on average`);
  console.log(`  daemon RSS: ${rssBase.toFixed(1)} MB before, ${rssPeak.toFixed(1)} MB peak under abuse -> +${growth.toFixed(1)} MB (target <= 50 MB): ${growth <= 50 ? 'PASS' : 'FAIL'}`);
  console.log(`  normal device QoS1 publish latency, ${SAMPLES} sequential publishes: median ${b50.toFixed(2)} ms / p99 ${b99.toFixed(2)} ms without abuse, median ${a50.toFixed(2)} ms / p99 ${a99.toFixed(2)} ms under abuse`);
  console.log(`    -> ${(a50 / b50).toFixed(2)}x of the baseline median (p99 ${(a99 / b99).toFixed(2)}x); target p99 < 50 ms: ${a99 < 50 ? 'PASS' : 'FAIL'}`);
} finally {
  await new Promise((r) => { child.once('exit', r); child.kill('SIGTERM'); });
  rmSync(dir, { recursive: true, force: true });
}
