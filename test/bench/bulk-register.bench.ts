// Bulk registration on the aws target (`device register --from-file`), 1,000 devices against moto_server through
// the realism proxy (test/helpers/aws-realism.ts: 40 ms per call, conformance on), which throttles each IoT API
// at the account's quotas and reports the same quotas through Service Quotas (iotcore), as an account with
// raised limits would (moto serves no iotcore quotas). iotctl reads them and paces each API at its quota.
// The bound the quotas allow: each paced API is called once per device, so N / (its rate) for the slowest one.
// moto itself can be slower than that: its CreateCertificateFromCsr makes an RSA-2048 key per call, a few per
// second on a loaded 2-CPU machine. So the run first measures moto's own rate (a short burst, unpaced and
// unthrottled), and the bound is the larger of the two; both are printed.
// Targets: elapsed within 1.2x that bound, at least one API above 15 TPS, 0 throttling failures.
// Run: node --import tsx test/bench/bulk-register.bench.ts   (BENCH_DEVICES=1000)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMoto, useEnv } from '../helpers/moto.js';
import { awsDevicesOf } from '../helpers/devices.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { clearQuotaCache } from '../../src/targets/aws/quotas.js';
import { parseSpec } from '../../src/spec/loader.js';
import { ensureDevicePolicy, registerMany } from '../../src/services/devices.js';

const N = Number(process.env.BENCH_DEVICES ?? 1000);
// The account's applied quotas (TPS) for the registration path's APIs: AWS's current defaults.
const QUOTAS: Record<string, [string, number]> = {
  CreateThing: ['L-64CBACAC', 100],
  CreateCertificateFromCsr: ['L-01BCDDCA', Number(process.env.BENCH_CSR_TPS ?? 15)],
  AttachPolicy: ['L-CA7D4E3E', 15],
  AttachThingPrincipal: ['L-F64D1AA6', 100],
  AddThingToThingGroup: ['L-2904683A', 100],
};
const throttle = Object.fromEntries(Object.entries(QUOTAS).map(([op, [, tps]]) => [`iot:${op}`, tps]));
const applied = Object.entries(QUOTAS).map(([op, [code, tps]]) => ({ QuotaCode: code, QuotaName: `${op} API TPS`, Value: tps }));

const moto = await startMoto({ realism: { latencyMs: Number(process.env.BENCH_LATENCY_MS ?? 40), throttle, serviceQuotas: { iotcore: { applied } } } });
const restore = useEnv({ ...moto.env, IOTCTL_AWS_TPS: '' });
const dir = mkdtempSync(join(tmpdir(), 'iotctl-bench-bulkreg-'));
const spec = parseSpec('project: bench\n').spec;

async function run(label: string, env: string, n: number, workers?: number) {
  process.env.IOTCTL_AWS_TPS = env;
  clearQuotaCache();
  const aws = new AwsClients({});
  const devices = awsDevicesOf(aws, spec);
  await ensureDevicePolicy(devices, spec);
  const rates = await devices.apiRates();
  const since = moto.realism!.calls().length;
  const requests = Array.from({ length: n }, (_, i) => ({ thingName: `${label}-${i}`, attributes: { site: `s${i % 10}` } }));
  const started = performance.now();
  const result = await registerMany(devices, spec, requests, join(dir, label), undefined, workers);
  const elapsed = (performance.now() - started) / 1000;
  const calls = moto.realism!.calls().slice(since);
  const perOp = new Map<string, number>();
  for (const c of calls) if (c.key.startsWith('iot:')) perOp.set(c.key.slice(4), (perOp.get(c.key.slice(4)) ?? 0) + (c.injected ? 0 : 1));
  const throttled = calls.filter((c) => c.injected === 'throttled').length;
  // Each paced API's calls at its rate; the slowest one bounds the run.
  const bound = Math.max(...Object.entries(rates.rates).map(([op, tps]) => (perOp.get(op) ?? 0) / tps));
  aws.destroy();
  return { rates, elapsed, bound, result, throttled, perOp, concurrency: await devices.bulkConcurrency() };
}

try {
  // moto's own rate: a burst with no pacing and no throttling.
  moto.realism!.set({ throttle: {} });
  const probeN = Number(process.env.BENCH_PROBE ?? 60);
  const probe = await run('probe', '1000', probeN, 24);
  const capacity = probeN / probe.elapsed;
  moto.realism!.set({ throttle });
  const r = await run('quota', '', N);
  const quotaBound = r.bound;
  const motoBound = N / capacity;
  r.bound = Math.max(quotaBound, motoBound);
  const over15 = Object.entries(r.rates.rates).filter(([, tps]) => tps > 15).map(([op, tps]) => `${op} ${tps}`);
  console.log(`rates from Service Quotas: ${Object.entries(r.rates.rates).map(([op, tps]) => `${op} ${tps}/s (${r.rates.sources[op]})`).join(', ')}`);
  console.log(`calls per API: ${[...r.perOp].map(([op, n]) => `${op} ${n}`).join(', ')}`);
  console.log(`bound the quotas allow:  ${quotaBound.toFixed(1)} s (${N} devices)`);
  console.log(`moto's own rate here:    ${capacity.toFixed(1)} devices/s unpaced (${probeN} devices, 24 workers) -> ${motoBound.toFixed(1)} s for ${N}`);
  console.log(`bound used:              ${r.bound.toFixed(1)} s (${quotaBound >= motoBound ? 'the quotas' : 'moto on this machine; the quotas allow less time'})`);
  console.log(`bulk registration:       ${r.elapsed.toFixed(1)} s = ${(r.elapsed / r.bound).toFixed(2)}x the bound (target <= 1.2x), ${(N / r.elapsed).toFixed(1)} devices/s, ${r.concurrency} workers`);
  console.log(`registered ${r.result.registered.length}, failed ${r.result.failed.length}; throttled by the proxy: ${r.throttled} calls (retried); throttling failures: ${r.result.failed.filter((f) => /Throttl|Rate exceeded/i.test(f.error)).length}`);
  const ok = r.elapsed <= 1.2 * r.bound && r.result.failed.length === 0 && r.result.registered.length === N && over15.length > 0;
  console.log(`${ok ? 'PASS' : 'FAIL'}: ${(r.elapsed / r.bound).toFixed(2)}x the bound, ${r.result.failed.length} failed, APIs above 15 TPS: ${over15.join(', ')}`);
  if (r.result.failed.length) console.log(r.result.failed.slice(0, 5));
} finally {
  restore();
  await moto.stop();
  rmSync(dir, { recursive: true, force: true });
}
