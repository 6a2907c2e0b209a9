// Fleet provisioning on the local broker: devices/s through the device provisioning MQTT API (CreateCertificateFromCsr
// then RegisterThing, over real MQTT/TLS with the claim certificate), as a ratio to the same work done in process
// (FleetProvisioning.handle without the broker: the floor). Sequential on one connection (one factory line), and
// 8 connections at once (8 lines). Clients disable Nagle, as device SDKs on a request/response API should.
// Run: node --import tsx test/bench/provisioning.bench.ts  (BENCH_DEVICES=300)
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { makeProject } from '../helpers/project.js';
import { LocalPlatform } from '../../src/targets/local/platform.js';
import { Context } from '../../src/context.js';
import { openTarget } from '../../src/targets/index.js';
import { ensureDevicePolicy } from '../../src/services/devices.js';
import { applyProvisioning, issueClaimCertificate, planProvisioning } from '../../src/services/provisioning.js';
import { LocalCa, newP256KeyAndCsr } from '../../src/targets/local/ca.js';
import { FleetProvisioning } from '../../src/targets/local/provisioning.js';
import { Registry } from '../../src/targets/local/registry.js';
import { ensurePki } from '../../src/targets/local/pki.js';

const N = Number(process.env.BENCH_DEVICES ?? 300);
const LINES = 8;
const p = makeProject(`project: bench\ntarget: local\nlocal: { mqttPort: 0 }\ndevices:\n  provisioning:\n    template: factory\n    thingName: "sensor-{{SerialNumber}}"\n`);
const platform = new LocalPlatform({ stateDir: p.stateDir, spec: p.spec, mqttPort: 0 });
await platform.start();
const target = await openTarget(new Context({ specFile: p.specFile, projectDir: p.dir, stateDir: p.stateDir }));
await ensureDevicePolicy(target.devices, p.spec);
await applyProvisioning(p.spec, target, await planProvisioning(p.spec, target));
const claim = await issueClaimCertificate(p.spec, target, join(p.dir, 'claim'));
await target.close();
const claimKey = readFileSync(join(claim.dir, 'private.key'), 'utf8');
const csrs = Array.from({ length: N * 3 }, (_, i) => newP256KeyAndCsr(`d${i}`).csrPem);

// The floor: the service alone, on the same registry.
const ca = LocalCa.load((await ensurePki(p.stateDir)).ca);
const service = new FleetProvisioning(new Registry(platform.db), () => ca);
const caller = { certificateId: 'floor', clientId: 'floor' };
let t = performance.now();
for (let i = 0; i < N; i++) {
  const created = await service.handle({ api: 'CreateCertificateFromCsr', format: 'json' }, Buffer.from(JSON.stringify({ certificateSigningRequest: csrs[i] })), caller);
  await service.handle({ api: 'RegisterThing', template: 'factory', format: 'json' }, Buffer.from(JSON.stringify({ certificateOwnershipToken: created.certificateOwnershipToken, parameters: { SerialNumber: `f${i}` } })), caller);
}
const floor = N / ((performance.now() - t) / 1000);

async function line(id: string): Promise<(csr: string, serial: string) => Promise<void>> {
  const client: MqttClient = await mqtt.connectAsync({ protocol: 'mqtts', host: '127.0.0.1', port: platform.mqttPort, cert: claim.certPem, key: claimKey, ca: claim.caPem, clientId: id, reconnectPeriod: 0 });
  (client as unknown as { stream: { setNoDelay?: (v: boolean) => void } }).stream.setNoDelay?.(true);
  await client.subscribeAsync(['$aws/certificates/create-from-csr/json/+', '$aws/provisioning-templates/factory/provision/json/+'], { qos: 1 });
  const waiters: ((b: Record<string, string>) => void)[] = [];
  client.on('message', (_topic, m) => waiters.shift()!(JSON.parse(m.toString())));
  const ask = (topic: string, body: unknown) => new Promise<Record<string, string>>((r) => { waiters.push(r); client.publish(topic, JSON.stringify(body), { qos: 1 }); });
  return async (csr, serial) => {
    const created = await ask('$aws/certificates/create-from-csr/json', { certificateSigningRequest: csr });
    const registered = await ask('$aws/provisioning-templates/factory/provision/json', { certificateOwnershipToken: created.certificateOwnershipToken, parameters: { SerialNumber: serial } });
    if (registered.thingName !== `sensor-${serial}`) throw new Error(JSON.stringify(registered));
  };
}

const one = await line('line-0');
t = performance.now();
for (let i = 0; i < N; i++) await one(csrs[N + i]!, `a${i}`);
const sequential = N / ((performance.now() - t) / 1000);

const lines = await Promise.all(Array.from({ length: LINES }, (_, k) => line(`line-${k + 1}`)));
let next = 0;
t = performance.now();
await Promise.all(lines.map(async (provision) => {
  while (next < N) {
    const i = next++;
    await provision(csrs[2 * N + i]!, `b${i}`);
  }
}));
const parallel = N / ((performance.now() - t) / 1000);

console.log(`Fleet provisioning (CreateCertificateFromCsr + RegisterThing), ${N} devices per run:`);
console.log(`  in process, no broker (floor):      ${floor.toFixed(0)} devices/s`);
console.log(`  MQTT/TLS, 1 claim connection:       ${sequential.toFixed(0)} devices/s   -> ${(sequential / floor).toFixed(2)}x of the floor`);
console.log(`  MQTT/TLS, ${LINES} claim connections:      ${parallel.toFixed(0)} devices/s   -> ${(parallel / floor).toFixed(2)}x of the floor`);
await platform.stop();
p.cleanup();
