// Channel -> pipeline -> Parquet datastore throughput on one core (DuckDB threads=1), against DuckDB writing
// the same rows to Parquet straight from an in-memory table in the same run. Target: >= 50,000 msg/s.
// Run: node --import tsx test/bench/lake.bench.ts   (BENCH_MESSAGES=50000 for a quicker run)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { specSchema } from '../../src/spec/schema.js';
import { applyAnalytics, planAnalytics } from '../../src/targets/local/lake/apply.js';
import { ChannelStore } from '../../src/targets/local/lake/channel-store.js';
import { DatastoreWriter } from '../../src/targets/local/lake/datastore-writer.js';
import { lit, openDuck } from '../../src/targets/local/lake/duck.js';
import { PipelineRunner } from '../../src/targets/local/lake/pipeline-runner.js';
import { openStore } from '../../src/targets/local/store.js';

// One core, literally: V8 collects garbage on the main thread too (its GC otherwise runs helper threads),
// and DuckDB runs with one thread while JS waits for it.
if (!process.execArgv.includes('--single-threaded-gc')) {
  const r = spawnSync(process.execPath, ['--single-threaded-gc', ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

const N = Number(process.env.BENCH_MESSAGES ?? 300_000);
const TARGET = 50_000;
const BATCH = 500; // messages per putMessages, as the rules runtime hands them over

const dir = mkdtempSync(join(tmpdir(), 'iotctl-bench-lake-'));
const db = openStore(dir);
const spec = specSchema.parse({
  project: 'bench',
  analytics: {
    channels: [{ name: 'telemetry_raw' }],
    datastores: [{ name: 'telemetry' }],
    pipelines: [
      {
        name: 'telemetry_pipeline',
        channel: 'telemetry_raw',
        datastore: 'telemetry',
        activities: [{ filter: { filter: 'temperature > -50' } }, { math: { attribute: 'temperature_f', math: 'temperature * 1.8 + 32' } }, { removeAttributes: { attributes: ['fw'] } }],
      },
    ],
  },
});
applyAnalytics(db, (await planAnalytics(db, dir, spec)).items);

const encoder = new TextEncoder();
const start = Date.UTC(2030, 0, 31, 12);
const messages = Array.from({ length: N }, (_, i) => ({
  messageId: `msg-${i}`,
  receivedAt: start + Math.floor(i / 10),
  payload: encoder.encode(
    JSON.stringify({ device_id: `sensor-${String(i % 1000).padStart(4, '0')}`, ts: start / 1000 + i, temperature: 15 + (i % 200) / 10, humidity: 40 + (i % 37), battery: 3.7, fw: '1.2.3', seq: i }),
  ),
}));
const payloadBytes = messages[0]!.payload.length;

// Channel fill (the rules runtime's side), with fsync per group commit as in production.
const channels = new ChannelStore({ db, stateDir: dir });
let t = performance.now();
for (let i = 0; i < N; i += BATCH) await channels.putMessages('telemetry_raw', messages.slice(i, i + BATCH));
const appendRate = N / ((performance.now() - t) / 1000);

// Measured: channel -> activities -> Parquet, committed with the checkpoint.
const duck = await openDuck({ threads: 1 });
const writer = new DatastoreWriter({ db, stateDir: dir, duck: duck.connection });
const runner = new PipelineRunner({ db, channels, writer });
t = performance.now();
let cpu = process.cpuUsage();
const summary = await runner.runOnce();
const pipelineSeconds = (performance.now() - t) / 1000;
cpu = process.cpuUsage(cpu);
// CPU seconds of the whole process (JS, GC and DuckDB's thread, which never run at once here): what one
// dedicated core needs. On a busy machine wall time also counts waiting for a core, so the verdict uses CPU
// time; both are shown.
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
const pipelineRate = N / pipelineSeconds;
const cpuRate = N / cpuSeconds;
const files = writer.files('telemetry');
const rows = files.reduce((s, f) => s + f.rows, 0);
if (rows !== summary.pipelines[0]!.out || rows !== N) throw new Error(`expected ${N} rows, the datastore has ${rows}`);

// Baseline: the same rows, already in a DuckDB table in memory, written to Parquet by DuckDB alone.
const source = files.map((f) => lit(join(dir, 'lake', f.file))).join(', ');
await duck.connection.run(`CREATE TABLE mem AS SELECT * FROM read_parquet([${source}], union_by_name = true, hive_partitioning = false)`);
const baselineFile = join(dir, 'baseline.parquet');
t = performance.now();
cpu = process.cpuUsage();
await duck.connection.run(`COPY mem TO ${lit(baselineFile)} (FORMAT parquet, COMPRESSION snappy)`);
const baselineRate = N / ((performance.now() - t) / 1000);
cpu = process.cpuUsage(cpu);
const baselineCpuRate = N / ((cpu.user + cpu.system) / 1e6);

const fmt = (n: number) => Math.round(n).toLocaleString('en-US').padStart(10);
console.log(`${N.toLocaleString('en-US')} messages of ${payloadBytes} B, pipeline: filter -> math -> removeAttributes, DuckDB threads=1, single-threaded GC\n`);
console.log(`channel append (fsync per group, ${BATCH}/batch)           ${fmt(appendRate)} msg/s`);
console.log(`channel -> pipeline -> Parquet datastore, wall time     ${fmt(pipelineRate)} msg/s  (${pipelineSeconds.toFixed(2)} s, ${files.length} file(s))`);
console.log(`channel -> pipeline -> Parquet datastore, per CPU second ${fmt(cpuRate)} msg/s  (${cpuSeconds.toFixed(2)} CPU s)`);
console.log(`baseline: DuckDB COPY of the same rows from memory        ${fmt(baselineRate)} rows/s wall, ${fmt(baselineCpuRate).trim()} rows/CPU s`);
console.log('');
console.log(`ratio pipeline / baseline (wall): ${(pipelineRate / baselineRate).toFixed(3)}`);
console.log(`ratio pipeline / baseline (CPU):  ${(cpuRate / baselineCpuRate).toFixed(3)}`);
console.log(`${cpuRate >= TARGET ? 'PASS' : 'FAIL'}: ${fmt(cpuRate).trim()} msg per CPU second (one core) vs target >= ${TARGET.toLocaleString('en-US')} msg/s`);

await channels.close();
duck.close();
db.close();
rmSync(dir, { recursive: true, force: true });
