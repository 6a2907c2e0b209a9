/**
 * `query recent --limit 100` (recentMessages) on a 10-million-row iot_messages (10,000 devices x 1,000
 * messages over 10 day partitions), against the same query on 100,000 rows (100 devices x 1,000
 * messages) in the same run. Reports the median server execution time (EXPLAIN ANALYZE) over random
 * devices, and the client round trip. Targets: median <= 2 ms at 10M, and <= 1.5x the 100k time.
 * After loading, the closed day partitions are clustered by device (clusterClosedPartitions, the
 * daily maintenance a live system runs after midnight UTC), at both sizes.
 *
 *   node --import tsx test/bench/db-query.bench.ts                     (10M rows; ~3-5 minutes here)
 *   BENCH_ROWS=1000000 node --import tsx test/bench/db-query.bench.ts  (smaller)
 */
import pg from 'pg';
import { recentMessages } from '../../src/db/queries.js';
import { clusterClosedPartitions } from '../../src/db/retention.js';
import { benchDatabase, generateMessages, median, percentile, SERVER_URL, verdict, type BenchDatabase } from './db-dataset.js';

const MESSAGES_PER_DEVICE = 1_000;
const BIG_ROWS = Number(process.env.BENCH_ROWS ?? 10_000_000);
const SMALL_ROWS = 100_000;
const RUNS = Number(process.env.BENCH_RUNS ?? 300);
const DAY_MS = 86_400_000;
// Data up to yesterday 23:45 UTC, as a live platform has: recent, and retained for 10 days.
const LAST_DAY = new Date(Math.floor(Date.now() / DAY_MS) * DAY_MS - DAY_MS);
const RECENT_FROM = LAST_DAY; // recentMessages' first window starts at yesterday 00:00 UTC

// The statement recentMessages sends first (no --since, no --topic); with 100 messages per device
// per day it returns all 100 rows, so it is the only statement. Measured server-side.
const RECENT_SQL = `SELECT message_id, device_id, ts, topic, payload, stream, shard_id, sequence_number, received_at
     FROM iot_messages WHERE device_id = $1 AND ts >= $3
     ORDER BY ts DESC LIMIT $2`;

interface Measured {
  rows: number;
  serverMedianMs: number;
  serverP95Ms: number;
  planningMedianMs: number;
  /** Median 8 kB pages per query found in shared_buffers, and read from outside it (the OS page cache or disk). */
  sharedHit: number;
  sharedRead: number;
  clientMedianMs: number;
  plan: string;
}

async function measure(label: string, rows: number): Promise<Measured> {
  const devices = Math.max(1, Math.round(rows / MESSAGES_PER_DEVICE));
  let db: BenchDatabase | undefined;
  try {
    db = await benchDatabase(label);
    const t = performance.now();
    await generateMessages(db.url, { devices, messagesPerDevice: MESSAGES_PER_DEVICE, lastDay: LAST_DAY });
    console.log(`${label}: generated ${(devices * MESSAGES_PER_DEVICE).toLocaleString('en-US')} rows (${devices} devices) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const client = new pg.Client(db.url);
    await client.connect();
    try {
      const tc = performance.now();
      const { clustered } = await clusterClosedPartitions(client);
      console.log(`${label}: daily maintenance clustered ${clustered.length} closed day partitions by device in ${((performance.now() - tc) / 1000).toFixed(1)} s`);
      const device = (i: number) => `dev-${String(i % devices).padStart(5, '0')}`;
      const pick = () => device(Math.floor(Math.random() * devices));
      // Warm up: the first reads after a bulk load also set hint bits.
      for (let i = 0; i < Math.min(devices, 200); i++) await recentMessages(client, { deviceId: device(i), limit: 100 });
      const server: number[] = [];
      const planning: number[] = [];
      const hit: number[] = [];
      const read: number[] = [];
      const clientMs: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const { rows: plan } = await client.query(`EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) ${RECENT_SQL}`, [pick(), 100, RECENT_FROM]);
        server.push(plan[0]['QUERY PLAN'][0]['Execution Time']);
        hit.push(plan[0]['QUERY PLAN'][0].Plan['Shared Hit Blocks']);
        read.push(plan[0]['QUERY PLAN'][0].Plan['Shared Read Blocks']);
        planning.push(plan[0]['QUERY PLAN'][0]['Planning Time']);
        const t0 = performance.now();
        const got = await recentMessages(client, { deviceId: pick(), limit: 100 });
        clientMs.push(performance.now() - t0);
        if (got.length !== 100) throw new Error(`expected 100 rows, got ${got.length}`);
      }
      const { rows: plan } = await client.query(`EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) ${RECENT_SQL}`, [pick(), 100, RECENT_FROM]);
      return { rows: devices * MESSAGES_PER_DEVICE, serverMedianMs: median(server), serverP95Ms: percentile(server, 95), planningMedianMs: median(planning), sharedHit: median(hit), sharedRead: median(read), clientMedianMs: median(clientMs), plan: plan.map((r) => r['QUERY PLAN']).join('\n') };
    } finally {
      await client.end();
    }
  } finally {
    await db?.drop();
  }
}

const small = await measure('q100k', SMALL_ROWS);
const big = await measure('q10m', BIG_ROWS);
console.log(`\nplan at ${big.rows.toLocaleString('en-US')} rows:\n${big.plan}\n`);
for (const m of [small, big]) {
  console.log(`${m.rows.toLocaleString('en-US').padStart(11)} rows: server execution median ${m.serverMedianMs.toFixed(3)} ms (p95 ${m.serverP95Ms.toFixed(3)} ms), planning median ${m.planningMedianMs.toFixed(3)} ms, client round trip median ${m.clientMedianMs.toFixed(3)} ms; pages per query: ${m.sharedHit} in shared_buffers, ${m.sharedRead} read`);
}
const ratio = big.serverMedianMs / small.serverMedianMs;
console.log(`median at ${big.rows.toLocaleString('en-US')} rows: ${big.serverMedianMs.toFixed(3)} ms (target <= 2 ms)  ${verdict(big.serverMedianMs <= 2)}`);
const { rows: [settings] } = await (async () => {
  const c = new pg.Client(SERVER_URL);
  await c.connect();
  try {
    return await c.query("SELECT current_setting('shared_buffers') AS sb");
  } finally {
    await c.end();
  }
})();
console.log(`(server shared_buffers = ${settings.sb}: pages beyond it are read from the OS page cache, which is what grows with the table)`);
console.log(`ratio ${big.rows.toLocaleString('en-US')} / 100,000 rows: ${ratio.toFixed(2)}x (target <= 1.5x)  ${verdict(ratio <= 1.5)}`);
