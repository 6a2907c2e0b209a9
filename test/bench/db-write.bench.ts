/**
 * Ingest write throughput: writeMessages (one INSERT .. SELECT FROM unnest .. ON CONFLICT DO NOTHING
 * per 10,000-record batch of ~200-byte payloads) against two baselines on the same table in the same
 * run: COPY FROM STDIN (pg-copy-streams; the fastest way in, but not idempotent) and one INSERT per row.
 * Targets: >= 0.5x COPY, >= 10x per-row INSERT.
 *
 *   node --import tsx test/bench/db-write.bench.ts        (DATABASE_URL or the machine's server)
 *   BENCH_BATCHES=4 node --import tsx test/bench/db-write.bench.ts
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { mapRecord, writeMessages, type KinesisEventRecord, type MessageRow } from '../../src/db/batch-writer.js';
import { migrate } from '../../src/db/migrations.js';
import { benchDatabase, verdict } from './db-dataset.js';

const BATCH = 10_000;
const BATCHES = Number(process.env.BENCH_BATCHES ?? 8);
const SINGLE_ROWS = Number(process.env.BENCH_SINGLE_ROWS ?? 2_000);

let counter = 0;
const now = Date.now();
/** One telemetry message, ~200 bytes of JSON. */
function payload(i: number): Record<string, unknown> {
  const device = `sensor-${String(i % 500).padStart(4, '0')}`;
  return { device_id: device, message_id: `msg-${++counter}`, ts: now - (counter % 3_600_000), topic: `dt/bench/${device}/telemetry`, temperature: 21.5 + (i % 10) / 10, humidity: 48.25, battery: 0.91, status: 'ok', fw: '1.4.2', rssi: -67 };
}
function batchRows(): MessageRow[] {
  return Array.from({ length: BATCH }, (_, i) => {
    const m = mapRecord(record(payload(i)));
    if (!m.ok) throw new Error('unexpected poison');
    return m.row;
  });
}
function record(doc: Record<string, unknown>): KinesisEventRecord {
  const seq = String(49590338271490256608559692538361571095921575989136588898n + BigInt(counter));
  return {
    kinesis: { kinesisSchemaVersion: '1.0', partitionKey: String(doc.device_id), sequenceNumber: seq, data: Buffer.from(JSON.stringify(doc)).toString('base64'), approximateArrivalTimestamp: now / 1000 },
    eventSource: 'aws:kinesis', eventID: `shardId-000000000000:${seq}`, eventSourceARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/bench',
  };
}

const escapeCopy = (s: string) => s.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
function copyText(rows: MessageRow[]): string {
  let out = '';
  for (const r of rows) {
    out += [r.message_id, r.device_id, r.ts.toISOString(), r.topic ?? '\\N', JSON.stringify(r.payload), r.stream, r.shard_id, r.sequence_number, r.received_at.toISOString()].map((v) => (v === '\\N' ? v : escapeCopy(v))).join('\t') + '\n';
  }
  return out;
}

const db = await benchDatabase('write');
const client = new pg.Client(db.url);
await client.connect();
try {
  await migrate(client);
  const sample = batchRows();
  console.log(`payload size: ${JSON.stringify(sample[0]!.payload).length} bytes; batch ${BATCH} rows; ${BATCHES} batches per method`);
  // Warm up (partitions created, plans cached), then empty the table.
  await writeMessages(client, sample);
  await pipeline(Readable.from([copyText(batchRows())]), client.query(copyStreams.from('COPY iot_messages (message_id, device_id, ts, topic, payload, stream, shard_id, sequence_number, received_at) FROM STDIN')));
  await client.query('TRUNCATE iot_messages');

  let unnestMs = 0;
  let copyMs = 0;
  let unnestRows = 0;
  let copyRows = 0;
  // Alternate the methods so both see the same table growth and machine noise.
  for (let b = 0; b < BATCHES; b++) {
    const a = batchRows();
    let t = performance.now();
    unnestRows += await writeMessages(client, a);
    unnestMs += performance.now() - t;
    const c = batchRows();
    t = performance.now();
    const text = copyText(c); // serializing is part of COPY's cost, as building arrays is part of unnest's
    await pipeline(Readable.from([text]), client.query(copyStreams.from('COPY iot_messages (message_id, device_id, ts, topic, payload, stream, shard_id, sequence_number, received_at) FROM STDIN')));
    copyMs += performance.now() - t;
    copyRows += c.length;
  }

  // A retried batch: every row conflicts.
  const retry = batchRows();
  await writeMessages(client, retry);
  let t = performance.now();
  const dup = await writeMessages(client, retry);
  const retryMs = performance.now() - t;

  // The whole handler path: decode + map Kinesis records, then write.
  const records = Array.from({ length: BATCH }, (_, i) => record(payload(i)));
  t = performance.now();
  const mapped = records.map((r) => mapRecord(r)).flatMap((m) => (m.ok ? [m.row] : []));
  await writeMessages(client, mapped);
  const handlerMs = performance.now() - t;

  const singles = batchRows().slice(0, SINGLE_ROWS);
  t = performance.now();
  for (const r of singles) {
    await client.query(
      'INSERT INTO iot_messages (message_id, device_id, ts, topic, payload, stream, shard_id, sequence_number, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING',
      [r.message_id, r.device_id, r.ts, r.topic, JSON.stringify(r.payload), r.stream, r.shard_id, r.sequence_number, r.received_at],
    );
  }
  const singleMs = performance.now() - t;

  const rate = (rows: number, ms: number) => (rows / ms) * 1000;
  const unnestRate = rate(unnestRows, unnestMs);
  const copyRate = rate(copyRows, copyMs);
  const singleRate = rate(singles.length, singleMs);
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
  console.log(`writeMessages (unnest, ON CONFLICT): ${fmt(unnestRate)} rows/s  (${fmt(unnestRows)} rows, ${(unnestMs / BATCHES).toFixed(0)} ms per batch)`);
  console.log(`COPY FROM STDIN baseline:            ${fmt(copyRate)} rows/s  (${(copyMs / BATCHES).toFixed(0)} ms per batch)`);
  console.log(`one INSERT per row baseline:         ${fmt(singleRate)} rows/s  (${singles.length} rows)`);
  console.log(`retried batch (all duplicates):      ${retryMs.toFixed(0)} ms, ${dup} rows inserted`);
  console.log(`handler path (decode+map+write):     ${fmt(rate(BATCH, handlerMs))} rows/s`);
  const vsCopy = unnestRate / copyRate;
  const vsSingle = unnestRate / singleRate;
  console.log(`ratio vs COPY:        ${vsCopy.toFixed(2)}x  (target >= 0.5x)  ${verdict(vsCopy >= 0.5)}`);
  console.log(`ratio vs row INSERTs: ${vsSingle.toFixed(1)}x  (target >= 10x)  ${verdict(vsSingle >= 10)}`);
  if (dup !== 0) throw new Error(`a retried batch inserted ${dup} rows`);
} finally {
  await client.end();
  await db.drop();
}
