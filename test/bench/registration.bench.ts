// Local bulk registration (`device register --from-file` path) with locally generated ECDSA P-256 keys:
// devices/s (target >= 500/s), as a ratio to issuing the certificates alone (the crypto floor).
// Run: node --import tsx test/bench/registration.bench.ts  (BENCH_DEVICES=2000)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSpec } from '../../src/spec/loader.js';
import { LocalDevices } from '../../src/targets/local/devices.js';
import { LocalCa, createCa } from '../../src/targets/local/ca.js';
import { openStore } from '../../src/targets/local/store.js';
import { ensureDevicePolicy, registerMany } from '../../src/services/devices.js';

const N = Number(process.env.BENCH_DEVICES ?? 2000);
const dir = mkdtempSync(join(tmpdir(), 'iotctl-bench-reg-'));
const spec = parseSpec('project: bench\n').spec;

const ca = await LocalCa.load(await createCa());
let t = performance.now();
for (let i = 0; i < N; i++) await ca.issue({ thingName: `floor-${i}` });
const floor = N / ((performance.now() - t) / 1000);

const db = openStore(join(dir, 'state'));
const devices = new LocalDevices(db, join(dir, 'state'), () => ({ host: '127.0.0.1', port: 8883 }));
await ensureDevicePolicy(devices, spec);
const requests = Array.from({ length: N }, (_, i) => ({ thingName: `dev-${i}`, attributes: { site: `s${i % 10}` } }));
t = performance.now();
const result = await registerMany(devices, spec, requests, join(dir, 'devices'));
const rate = result.registered.length / ((performance.now() - t) / 1000);
t = performance.now();
const rerun = await registerMany(devices, spec, requests, join(dir, 'devices'));
const skipRate = rerun.skipped.length / ((performance.now() - t) / 1000);
db.close();
rmSync(dir, { recursive: true, force: true });

console.log(`certificate issuance alone:  ${Math.round(floor)} certs/s`);
console.log(`bulk registration:           ${Math.round(rate)} devices/s = ${(rate / floor).toFixed(2)}x issuance (registry + 4 files each); target >= 500/s: ${rate >= 500 ? 'PASS' : 'FAIL'}`);
console.log(`re-run (all skipped):        ${Math.round(skipRate)} devices/s`);
