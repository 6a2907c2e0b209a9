// Bulk certificate rotation on the aws target (`device rotate --expiring 30d`): moto_server behind the realism
// proxy, which throttles every IoT API the rotation calls at the rate iotctl paces it at (ThrottlingException
// above it) and checks each request against AWS's API models.
// The bound the rates allow: for each paced API, the calls it took divided by its rate; the slowest API is the
// least time the run can take. Target: elapsed within 1.2x that bound, no device failed, then a rerun resumes
// (every rotation found in its grace: nothing rotated twice). moto signs certificates for one day, so every
// certificate is inside a 30-day window.
// moto_server signs each CSR with a fresh RSA-2048 key (~0.1-0.2 s of CPU), so on a busy machine moto itself may serve
// fewer CreateCertificateFromCsr calls per second than AWS's 15 TPS: the setup (same calls, unpaced, unthrottled)
// measures that capacity in the same run, and BENCH_RATE_SCALE=0.3 scales every rate (pacing and throttling alike)
// below it so that the rates, not moto's CPU, bound the run.
// Run: node --import tsx test/bench/bulk-rotate.bench.ts  (BENCH_DEVICES=1000, BENCH_RATE_SCALE=1)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMoto, useEnv } from '../helpers/moto.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { IOT_CERTIFICATE_TPS } from '../../src/targets/aws/devices.js';
import { IOT_REGISTRATION_TPS } from '../../src/targets/aws/rate.js';
import { awsDevicesOf } from '../helpers/devices.js';
import { parseSpec } from '../../src/spec/loader.js';
import { ensureDevicePolicy, registerMany } from '../../src/services/devices.js';
import { rotateExpiring } from '../../src/services/certificates.js';

const N = Number(process.env.BENCH_DEVICES ?? 1000);
const SCALE = Number(process.env.BENCH_RATE_SCALE ?? 1);
const rates: Record<string, number> = Object.fromEntries(Object.entries({ ...IOT_CERTIFICATE_TPS, ...IOT_REGISTRATION_TPS }).map(([op, tps]) => [op, tps * SCALE]));
const moto = await startMoto({ realism: { latencyMs: 20 } });
const restore = useEnv(moto.env);
const aws = new AwsClients({});
const spec = parseSpec('project: bench\n').spec;
const dir = mkdtempSync(join(tmpdir(), 'iotctl-bench-rotate-'));
const out = join(dir, 'devices');

// Setup, unthrottled and unpaced: N registered devices.
const fast = awsDevicesOf(aws, spec, 'default', Object.fromEntries(Object.keys(rates).map((op) => [op, 10_000])));
await ensureDevicePolicy(fast, spec);
const t0 = performance.now();
const reg = await registerMany(fast, spec, Array.from({ length: N }, (_, i) => ({ thingName: `rot-${i}` })), out, undefined, 16);
if (reg.failed.length) throw new Error(`setup: ${reg.failed.length} registrations failed: ${reg.failed[0]!.error}`);
const setupS = (performance.now() - t0) / 1000;
console.log(`setup (moto's own capacity, unpaced): ${N} devices registered in ${setupS.toFixed(1)} s = ${(N / setupS).toFixed(1)} devices/s`);

// The account's quotas, enforced by the proxy at the rates the client paces at.
moto.realism!.set({ throttle: Object.fromEntries(Object.entries(rates).map(([op, tps]) => [`iot:${op}`, tps])) });
const skip = moto.realism!.calls().length;
const devices = awsDevicesOf(aws, spec, 'default', rates);
const started = performance.now();
const result = await rotateExpiring(devices, spec, 30 * 86_400_000, { graceMs: 7 * 86_400_000, outDir: out });
const elapsed = (performance.now() - started) / 1000;
const calls = moto.realism!.calls().slice(skip);

// The bound: per paced API, the calls it served divided by its rate; the slowest API sets it.
const perOp = new Map<string, number>();
for (const c of calls) if (c.injected !== 'throttled') perOp.set(c.key, (perOp.get(c.key) ?? 0) + 1);
const bounds = [...perOp].map(([key, n]) => ({ key, n, s: n / (rates[key.replace(/^iot:/, '')] ?? Infinity) })).sort((a, b) => b.s - a.s);
const bound = bounds[0]!.s;
const throttledByProxy = calls.filter((c) => c.injected === 'throttled').length;
const throttledSeen = [...devices.limiter.throttles.values()].reduce((a, b) => a + b, 0);

const t1 = performance.now();
const rerun = await rotateExpiring(devices, spec, 30 * 86_400_000, { graceMs: 7 * 86_400_000, outDir: out });
const rerunS = (performance.now() - t1) / 1000;
const violations = moto.realism!.distinctViolations();
aws.destroy();
restore();
await moto.stop();
rmSync(dir, { recursive: true, force: true });

const ratio = elapsed / bound;
const ok = ratio <= 1.2 && result.failed.length === 0 && result.started.length === N && rerun.started.length === 0 && rerun.inGrace.length === N && rerun.failed.length === 0;
console.log(`rates:                 AWS IoT's documented TPS x ${SCALE}`);
console.log(`rate bound:            ${bound.toFixed(1)} s (${bounds.slice(0, 3).map((b) => `${b.key} ${b.n} calls at ${rates[b.key.replace(/^iot:/, '')]} TPS`).join('; ')})`);
console.log(`bulk rotation:         ${elapsed.toFixed(1)} s = ${ratio.toFixed(2)}x the bound (target <= 1.2x), ${(N / elapsed).toFixed(1)} devices/s, concurrency ${await devices.bulkConcurrency()}`);
console.log(`rotated ${result.started.length}, failed ${result.failed.length}; throttled by the proxy: ${throttledByProxy} calls (${throttledSeen} seen by the pacer), all retried`);
console.log(`rerun (resumes):       ${rerun.inGrace.length} in grace, ${rerun.started.length} rotated again, ${rerun.failed.length} failed, in ${rerunS.toFixed(1)} s`);
console.log(`moto's capacity bound: ${setupS.toFixed(1)} s (its unpaced registration of the same certificates); elapsed / max(bounds) = ${(elapsed / Math.max(bound, setupS)).toFixed(2)}x`);
console.log(`AWS model violations:  ${violations.length}`);
console.log(ok ? 'PASS' : 'FAIL');
if (result.failed.length) console.log(result.failed.slice(0, 5));
