// `athena run` over a datastore of 10 million rows in 10 day partitions (generated with DuckDB), with a filter
// on the day partition, against the same query run bare on DuckDB over the same files, in the same run.
// Target: athena run at most 1.2x the bare query, and bytes scanned showing that only one day was read.
// Run: node --import tsx test/bench/athena.bench.ts   (BENCH_ROWS=1000000 for a quicker run)
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { specSchema } from '../../src/spec/schema.js';
import { applyAnalytics, planAnalytics } from '../../src/targets/local/lake/apply.js';
import { Catalog } from '../../src/targets/local/lake/catalog.js';
import { formatBytes } from '../../src/targets/local/lake/cli.js';
import { lit, openDuck } from '../../src/targets/local/lake/duck.js';
import { openStore } from '../../src/targets/local/store.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 10_000_000);
const DAYS = 10;
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const TARGET = 1.2;

const dir = mkdtempSync(join(tmpdir(), 'iotctl-bench-athena-'));
const db = openStore(dir);
applyAnalytics(db, (await planAnalytics(db, dir, specSchema.parse({ project: 'bench', analytics: { datastores: [{ name: 'telemetry' }] } }))).items);

// The datastore, written by DuckDB straight into the lake layout and registered in the manifest.
const root = join(dir, 'lake', 'datastore', 'telemetry');
mkdirSync(join(dir, 'lake', 'datastore'), { recursive: true });
const gen = await openDuck();
let t = performance.now();
const start = Date.UTC(2030, 0, 1);
const stepMs = (DAYS * 86_400_000) / ROWS;
await gen.connection.run(`
  COPY (
    SELECT 'msg-' || i AS __message_id,
           epoch_ms(${start} + CAST(floor(i * ${stepMs}) AS BIGINT)) AS __received_at,
           'sensor-' || lpad(CAST(i % 1000 AS VARCHAR), 4, '0') AS device_id,
           15 + (i % 200) / 10.0 AS temperature,
           40 + i % 37 AS humidity,
           CAST(epoch_ms(${start} + CAST(floor(i * ${stepMs}) AS BIGINT)) AS DATE) AS dt
    FROM range(${ROWS}) t(i)
  ) TO ${lit(root)} (FORMAT parquet, COMPRESSION snappy, PARTITION_BY (dt), FILENAME_PATTERN 'part-bench-{i}')`);
const generated = (await (await gen.connection.runAndReadAll(`SELECT file FROM glob(${lit(join(root, '*', '*.parquet'))})`)).getRowObjectsJson()) as { file: string }[];
// The manifest rows the datastore writer records for each file, with its schema as DuckDB describes it.
const insert = db.prepare(`INSERT INTO lake_datastore_files (datastore, file, dt, pipeline, rows, bytes, created_at, schema) VALUES ('telemetry', ?, ?, 'bench', ?, ?, ?, ?)`);
for (const { file } of generated) {
  const rows = Number((await gen.connection.runAndReadAll(`SELECT sum(row_group_num_rows) FROM (SELECT DISTINCT row_group_id, row_group_num_rows FROM parquet_metadata(${lit(file)}))`)).getRows()[0]![0]);
  const schema = ((await (await gen.connection.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${lit(file)}, hive_partitioning = false)`)).getRowObjectsJson()) as { column_name: string; column_type: string }[])
    .map((c) => `${c.column_name} ${c.column_type}`)
    .join(',');
  insert.run(relative(join(dir, 'lake'), file), /dt=([\d-]+)/.exec(file)![1], rows, statSync(file).size, Date.now(), schema);
}
const columns = db.prepare(`INSERT INTO lake_datastore_columns (datastore, key, name, type, position, added_at, changed_at) VALUES ('telemetry', ?, ?, ?, ?, 0, 0)`);
[['device_id', 'VARCHAR'], ['temperature', 'DOUBLE'], ['humidity', 'BIGINT']].forEach(([name, type], i) => columns.run(name, name, type, i));
gen.close();
const totalBytes = generated.reduce((s, { file }) => s + statSync(file).size, 0);
console.log(`${ROWS.toLocaleString('en-US')} rows in ${generated.length} files over ${DAYS} days (${formatBytes(totalBytes)}), generated in ${((performance.now() - t) / 1000).toFixed(1)} s\n`);

const day = '2030-01-05';
const query = (table: string) =>
  `SELECT device_id, count(*) AS n, round(avg(temperature), 3) AS avg_temp, max(humidity) AS max_hum FROM ${table} WHERE dt = DATE '${day}' GROUP BY device_id ORDER BY n DESC, device_id LIMIT 10`;

t = performance.now();
const catalog = await Catalog.open({ db, stateDir: dir });
const openMs = performance.now() - t;
const bare = await openDuck();
const bareSql = query(`read_parquet(${lit(join(root, '*', '*.parquet'))}, hive_partitioning = true)`);

const athenaTimes: number[] = [];
const bareTimes: number[] = [];
let last = await catalog.query(query('telemetry'));
let bareRows = (await bare.connection.runAndReadAll(bareSql)).getRows();
for (let i = 0; i < RUNS; i++) {
  t = performance.now();
  last = await catalog.query(query('telemetry'));
  athenaTimes.push(performance.now() - t);
  t = performance.now();
  bareRows = (await bare.connection.runAndReadAll(bareSql)).getRows();
  bareTimes.push(performance.now() - t);
}
if (JSON.stringify(last.rows.map((r) => r[0])) !== JSON.stringify(bareRows.map((r) => r[0]))) throw new Error('athena run and the bare query disagree');
const dayFiles = generated.filter(({ file }) => file.includes(`dt=${day}`));
const dayBytes = dayFiles.reduce((s, { file }) => s + statSync(file).size, 0);
if (last.stats.bytesScanned !== dayBytes) throw new Error(`bytes scanned ${last.stats.bytesScanned} != the day's files ${dayBytes}`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ratio = median(athenaTimes) / median(bareTimes);
console.log(`query: count/avg/max by device for dt = ${day}, median of ${RUNS} warm runs`);
console.log(`bare DuckDB over the same files            ${median(bareTimes).toFixed(1).padStart(8)} ms`);
console.log(`athena run (catalog view, profile, stats)  ${median(athenaTimes).toFixed(1).padStart(8)} ms   (+ ${openMs.toFixed(0)} ms once to open the catalog)`);
console.log(`bytes scanned: ${formatBytes(last.stats.bytesScanned)} of ${formatBytes(totalBytes)} (${last.stats.filesScanned} of ${last.stats.filesTotal} files, ${((100 * last.stats.bytesScanned) / totalBytes).toFixed(1)}%)`);
console.log('');
console.log(`ratio athena run / bare: ${ratio.toFixed(2)}`);
const pruned = last.stats.filesScanned < last.stats.filesTotal && last.stats.bytesScanned < totalBytes;
console.log(`${ratio <= TARGET && pruned ? 'PASS' : 'FAIL'}: ratio ${ratio.toFixed(2)} vs target <= ${TARGET}; partition pruning ${pruned ? 'read one day' : 'DID NOT prune'}`);

catalog.close();
bare.close();
db.close();
rmSync(dir, { recursive: true, force: true });
