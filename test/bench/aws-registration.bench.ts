// Bulk registration on the aws target (`device register --from-file`), on the SDK-boundary fake with
// AWS IoT's quotas enforced (15 TPS for CreateThing, CreateCertificateFromCsr, AttachPolicy and
// AttachThingPrincipal; ThrottlingException above them) and network latency injected.
// Target: elapsed within 1.2x of what the quotas allow (N / 15 s), and no device failed.
// Run: node --import tsx test/bench/aws-registration.bench.ts  (BENCH_DEVICES=1000, BENCH_TPS=15)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeIot } from '../helpers/fake-iot.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { awsDevicesOf } from '../helpers/devices.js';
import { parseSpec } from '../../src/spec/loader.js';
import { ensureDevicePolicy, registerMany } from '../../src/services/devices.js';

Object.assign(process.env, { AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
const N = Number(process.env.BENCH_DEVICES ?? 1000);
const TPS = Number(process.env.BENCH_TPS ?? 15);
const quota = { CreateThing: TPS, CreateCertificateFromCsr: TPS, AttachPolicy: TPS, AttachThingPrincipal: TPS };

// Requests travel 5-40 ms (so arrivals jitter), responses 20-80 ms; AWS's bucket allows a small burst.
const fake = await new FakeIot({ tps: quota, burst: 3, requestMs: [5, 40], responseMs: [20, 80] }).install();
const aws = new AwsClients({});
const spec = parseSpec('project: bench\n').spec;
const devices = awsDevicesOf(aws, spec, 'default', quota);
const dir = mkdtempSync(join(tmpdir(), 'iotctl-bench-awsreg-'));
await ensureDevicePolicy(devices, spec);
const requests = Array.from({ length: N }, (_, i) => ({ thingName: `dev-${i}`, attributes: { site: `s${i % 10}` } }));

const started = performance.now();
const result = await registerMany(devices, spec, requests, join(dir, 'devices'));
const elapsed = (performance.now() - started) / 1000;
const floor = N / TPS; // every paced API needs N calls at TPS each; they overlap, so N / TPS is the least time
const t = performance.now();
const rerun = await registerMany(devices, spec, requests, join(dir, 'devices'));
const rerunS = (performance.now() - t) / 1000;
aws.destroy();
fake.restore();
rmSync(dir, { recursive: true, force: true });

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
const ratio = elapsed / floor;
const ok = ratio <= 1.2 && result.failed.length === 0 && result.registered.length === N && fake.things.size === N;
console.log(`quota-bound floor:           ${floor.toFixed(1)} s (${N} devices at ${TPS} TPS per API)`);
console.log(`bulk registration:           ${elapsed.toFixed(1)} s = ${ratio.toFixed(2)}x the floor (target <= 1.2x), ${(N / elapsed).toFixed(1)} devices/s, concurrency ${await devices.bulkConcurrency()}`);
console.log(`registered ${result.registered.length}, failed ${result.failed.length}; throttled by the fake: ${sum(fake.throttled)} calls, all retried`);
console.log(`re-run (all skipped):        ${rerun.skipped.length} skipped in ${rerunS.toFixed(1)} s`);
console.log(ok ? 'PASS' : 'FAIL');
if (result.failed.length) console.log(result.failed.slice(0, 5));
