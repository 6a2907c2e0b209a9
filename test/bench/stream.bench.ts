// putRecord throughput into a 4-shard local stream, against a bare INSERT into a plain SQLite table in the same
// database and run. The rules runtime must sustain 20k msg/s end to end, so putRecord alone must stay far above.
// Run: node --import tsx test/bench/stream.bench.ts   (BENCH_SCALE=0.2 for a quicker run)
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/targets/local/store.js';
import { LocalStreams } from '../../src/targets/local/stream.js';

const scale = Number(process.env.BENCH_SCALE ?? 1);
const N = Math.max(10_000, Math.round(200_000 * scale));
const TX = 200; // records per transaction, as the rules runtime commits a batch with its checkpoint
const TARGET = 20_000;

const dir = mkdtempSync(join(tmpdir(), 'iotctl-bench-stream-'));
const db = openStore(dir);
const streams = new LocalStreams(db);
streams.ensureStream({ name: 'bench', shards: 4, retentionHours: 24 });
db.exec('CREATE TABLE bare (id INTEGER PRIMARY KEY, partition_key TEXT NOT NULL, data BLOB NOT NULL, arrival INTEGER NOT NULL)');
const bare = db.prepare('INSERT INTO bare (partition_key, data, arrival) VALUES (?, ?, ?)');

const payload = Buffer.from(JSON.stringify({ device_id: 'sensor-0001', ts: Date.now(), temperature: 21.5, humidity: 48.2, battery: 3.71, seq: 123456 }));
const uuids = Array.from({ length: N }, () => randomUUID());
const devices = Array.from({ length: 1000 }, (_, i) => `sensor-${String(i).padStart(4, '0')}`);

function measure(label: string, put: (i: number) => void): number {
  const run = db.transaction((from: number, to: number) => {
    for (let i = from; i < to; i++) put(i);
  });
  const warm = Math.min(5000, N / 10);
  run(0, warm);
  const started = process.hrtime.bigint();
  for (let i = 0; i < N; i += TX) run(i, Math.min(N, i + TX));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const rate = N / seconds;
  console.log(`${label.padEnd(46)} ${Math.round(rate).toLocaleString('en-US').padStart(10)} records/s`);
  return rate;
}

console.log(`${N.toLocaleString('en-US')} records of ${payload.length} B, ${TX} per transaction, WAL, synchronous=NORMAL\n`);
const baseline = measure('baseline: bare INSERT into a plain table', (i) => bare.run(uuids[i], payload, Date.now()));
const unique = measure('putRecord, 4 shards, unique keys (uuid)', (i) => streams.putRecord('bench', payload, uuids[i]!));
const device = measure('putRecord, 4 shards, 1000 device keys', (i) => streams.putRecord('bench', payload, devices[i % devices.length]!));

// Outside any transaction each put commits on its own (a caller that does not batch).
const single = (() => {
  const n = Math.min(20_000, N);
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) streams.putRecord('bench', payload, devices[i % devices.length]!);
  const rate = n / (Number(process.hrtime.bigint() - started) / 1e9);
  console.log(`${'putRecord, autocommit per record'.padEnd(46)} ${Math.round(rate).toLocaleString('en-US').padStart(10)} records/s`);
  return rate;
})();

console.log('');
console.log(`ratio putRecord(unique keys) / bare insert: ${(unique / baseline).toFixed(2)}`);
console.log(`ratio putRecord(device keys) / bare insert: ${(device / baseline).toFixed(2)}`);
console.log(`ratio putRecord(autocommit)  / bare insert: ${(single / baseline).toFixed(2)}`);
const worst = Math.min(unique, device);
// At 20k msg/s the rules runtime has 50 µs per message for everything; putRecord may take at most a quarter of it.
const budgetUs = 1e6 / TARGET / 4;
const pass = 1e6 / worst <= budgetUs;
console.log(
  `${pass ? 'PASS' : 'FAIL'}: batched putRecord costs ${(1e6 / worst).toFixed(1)} µs (worst case, ${Math.round(worst).toLocaleString('en-US')}/s); ` +
    `budget ${budgetUs.toFixed(1)} µs = a quarter of the 50 µs per message at the 20,000 msg/s target`,
);
db.close();
rmSync(dir, { recursive: true, force: true });
process.exitCode = pass ? 0 : 1;
