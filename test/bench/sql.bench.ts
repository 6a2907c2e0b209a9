// Throughput of the IoT SQL engine on the telemetry rule every deployment runs, measured on one
// core against a bare JSON.parse of the same payloads (the floor any evaluation has to pay).
// Run: node --import tsx test/bench/sql.bench.ts

import { compileRule } from '../../src/iot/sql/index.js';

const SQL = "SELECT *, topic(3) AS device, timestamp() AS ts FROM 'dt/+/+/telemetry' WHERE temperature > 20";
const TARGET_PER_SECOND = 200_000;
const PAYLOAD_COUNT = 1024;
const PAYLOAD_BYTES = 200;
const RUN_MS = Number(process.env.BENCH_MS ?? 2000);

/** 200-byte JSON telemetry documents, all different, roughly 3 in 4 passing the WHERE clause. */
function makePayloads(): Uint8Array[] {
  const encoder = new TextEncoder();
  const out: Uint8Array[] = [];
  for (let i = 0; i < PAYLOAD_COUNT; i++) {
    const doc: Record<string, unknown> = {
      deviceId: `sensor-${String(i).padStart(5, '0')}`,
      temperature: 15 + ((i * 7) % 20) + 0.25,
      humidity: 40 + (i % 30),
      pressure: 1000 + (i % 50) * 0.5,
      battery: 3.7,
      status: i % 10 === 0 ? 'warn' : 'ok',
      seq: i,
      note: '',
    };
    // Pad the note so every payload is exactly PAYLOAD_BYTES long.
    const base = JSON.stringify(doc).length;
    doc.note = 'x'.repeat(Math.max(0, PAYLOAD_BYTES - base));
    const bytes = encoder.encode(JSON.stringify(doc));
    if (bytes.length !== PAYLOAD_BYTES) throw new Error(`payload ${i} is ${bytes.length} bytes, not ${PAYLOAD_BYTES}`);
    out.push(bytes);
  }
  return out;
}

/** Runs `step(i)` in a loop for about RUN_MS and returns calls per second (after a warm-up). */
function measure(step: (i: number) => unknown): number {
  let sink: unknown;
  for (let i = 0; i < 50_000; i++) sink = step(i);
  let calls = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(RUN_MS) * 1_000_000n;
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 10_000; i++) sink = step(calls + i);
    calls += 10_000;
    now = process.hrtime.bigint();
  }
  if (sink === Symbol.for('never')) console.log(sink); // keep the result alive
  return calls / (Number(now - start) / 1e9);
}

const payloads = makePayloads();
const rule = compileRule(SQL);
const topics = Array.from({ length: 16 }, (_, i) => `dt/site${i % 4}/dev${i}/telemetry`);
const decoder = new TextDecoder();

let passed = 0;
for (let i = 0; i < payloads.length; i++) {
  if (rule.evaluate({ topic: topics[i % 16]!, payload: payloads[i]!, timestamp: 1_700_000_000_000 }) !== undefined) passed++;
}

const jsonPerSecond = measure((i) => JSON.parse(decoder.decode(payloads[i & (PAYLOAD_COUNT - 1)]!)));
const sqlPerSecond = measure((i) =>
  rule.evaluate({ topic: topics[i & 15]!, payload: payloads[i & (PAYLOAD_COUNT - 1)]!, timestamp: 1_700_000_000_000 + i }),
);

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const verdict = sqlPerSecond >= TARGET_PER_SECOND ? 'PASS' : 'FAIL';
console.log(`rule: ${SQL}`);
console.log(`payloads: ${PAYLOAD_COUNT} x ${PAYLOAD_BYTES} bytes, ${passed} pass WHERE`);
console.log(
  `sql.evaluate: ${fmt(sqlPerSecond)} evals/s = ${(sqlPerSecond / jsonPerSecond).toFixed(2)}x JSON.parse (${fmt(jsonPerSecond)}/s); target >= ${fmt(TARGET_PER_SECOND)}/s: ${verdict}`,
);
if (verdict === 'FAIL') process.exitCode = 1;
