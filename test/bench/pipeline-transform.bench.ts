// The pipeline-transform Lambda's record handling on one Firehose batch at the maximum buffer size (3 MiB of
// 200-byte JSON messages, base64 in, base64 NDJSON out), against the local pipeline engine on the same records
// in the same run (decode + JSON.parse + the activities + the datastore buffer, as PipelineRunner does).
// Target: under 1 s of CPU per batch. Median of ROUNDS after a warm-up round.
// Run: node --import tsx test/bench/pipeline-transform.bench.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileFirehoseTransform, type FirehoseTransformationEvent } from '../../src/iot/pipeline/firehose.js';
import { compilePipeline, type Activity, type PipelineMessage } from '../../src/iot/pipeline/index.js';
import { DatastoreWriter } from '../../src/targets/local/lake/datastore-writer.js';
import { openStore } from '../../src/targets/local/store.js';

const BATCH_BYTES = 3 * 1024 * 1024;
const PAYLOAD_BYTES = 200;
const N = Math.floor(BATCH_BYTES / PAYLOAD_BYTES);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const TARGET_CPU_SECONDS = 1;

const activities: Activity[] = [
  { filter: { filter: 'temperature > -50' } },
  { math: { attribute: 'temperature_f', math: 'temperature * 1.8 + 32' } },
  { removeAttributes: { attributes: ['fw'] } },
  { deviceRegistryEnrich: { attribute: 'registry', thingName: 'device_id' } },
];
const things = new Map(Array.from({ length: 100 }, (_, i) => [`sensor-${String(i).padStart(4, '0')}`, { thingName: `sensor-${i}`, thingTypeName: 'sensor', attributes: { site: `site-${i % 7}` } }]));
const deps = { lookupThing: (name: string) => things.get(name) };

/** 200-byte telemetry documents, padded to exactly PAYLOAD_BYTES. */
function payload(i: number): string {
  const doc = { device_id: `sensor-${String(i % 100).padStart(4, '0')}`, ts: 1_900_000_000 + i, temperature: 15 + (i % 200) / 10, humidity: 40 + (i % 37), battery: 3.7, fw: '1.2.3', seq: i, note: '' };
  doc.note = 'x'.repeat(PAYLOAD_BYTES - JSON.stringify(doc).length);
  const text = JSON.stringify(doc);
  if (Buffer.byteLength(text) !== PAYLOAD_BYTES) throw new Error(`payload ${i} is ${Buffer.byteLength(text)} bytes`);
  return text;
}

const arrival = Date.UTC(2030, 0, 31, 12);
const payloads = Array.from({ length: N }, (_, i) => payload(i));
const event: FirehoseTransformationEvent = {
  invocationId: 'bench',
  deliveryStreamArn: 'arn:aws:firehose:us-east-1:123456789012:deliverystream/bench',
  region: 'us-east-1',
  records: payloads.map((p, i) => ({ recordId: `record-${i}`, approximateArrivalTimestamp: arrival + i, data: Buffer.from(p).toString('base64') })),
};
const raw = payloads.map((p) => Buffer.from(p));

// The local engine's per-batch work, as PipelineRunner.process does it, into a datastore buffer.
const dir = mkdtempSync(join(tmpdir(), 'iotctl-bench-transform-'));
const db = openStore(dir);
const writer = new DatastoreWriter({ db, stateDir: dir, duck: undefined as never, fsync: false });
const local = compilePipeline(activities, { ...deps, target: 'local' });
const decoder = new TextDecoder();
async function localBatch(): Promise<number> {
  const inputs: PipelineMessage[] = [];
  for (let i = 0; i < N; i++) inputs.push({ id: `record-${i}`, receivedAt: arrival + i, body: JSON.parse(decoder.decode(raw[i])) });
  const result = await local.process(inputs, { inPlace: true });
  const buffer = writer.newBuffer('bench');
  for (const row of result.out) if (buffer.add(row)) throw new Error('row rejected');
  return buffer.rows;
}

const transform = compileFirehoseTransform(activities, deps);
async function firehoseBatch(): Promise<number> {
  const outcome = await transform.transform(event);
  if (outcome.counts.out !== N) throw new Error(`expected ${N} Ok records, got ${outcome.counts.out}`);
  return outcome.counts.out;
}

/** CPU seconds of each round (user + system), after one warm-up round. */
async function measure(fn: () => Promise<number>): Promise<number[]> {
  await fn();
  const out: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const before = process.cpuUsage();
    await fn();
    const used = process.cpuUsage(before);
    out.push((used.user + used.system) / 1e6);
  }
  return out;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// Interleaved, so both see the same machine load.
const localTimes: number[] = [];
const firehoseTimes: number[] = [];
for (let r = 0; r < 3; r++) {
  localTimes.push(...(await measure(localBatch)));
  firehoseTimes.push(...(await measure(firehoseBatch)));
}
const l = median(localTimes);
const f = median(firehoseTimes);

console.log(`${N.toLocaleString('en-US')} records x ${PAYLOAD_BYTES} B = ${(N * PAYLOAD_BYTES / 1024 / 1024).toFixed(2)} MiB batch; activities: filter -> math -> removeAttributes -> deviceRegistryEnrich`);
console.log(`local pipeline engine (parse + activities + datastore buffer): ${(l * 1000).toFixed(0).padStart(5)} ms CPU per batch  (${Math.round(N / l).toLocaleString('en-US')} msg/CPU s)`);
console.log(`Firehose transform (base64 in/out, rows, partition keys):     ${(f * 1000).toFixed(0).padStart(5)} ms CPU per batch  (${Math.round(N / f).toLocaleString('en-US')} msg/CPU s)`);
console.log(`ratio Firehose transform / local engine (CPU): ${(f / l).toFixed(2)}`);
console.log(`${f < TARGET_CPU_SECONDS ? 'PASS' : 'FAIL'}: ${f.toFixed(3)} s CPU per 3 MiB batch vs target < ${TARGET_CPU_SECONDS} s`);

db.close();
rmSync(dir, { recursive: true, force: true });
