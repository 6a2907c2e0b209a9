/**
 * Retention on a 10-million-row iot_messages (10,000 devices x 1,000 messages, 10 day partitions of
 * 1M rows): runRetention dropping the oldest day (DETACH + DROP of its partition), against DELETE of
 * the next day's rows (the same number) in the same run. Target: the drop takes at most 100 ms.
 *
 *   node --import tsx test/bench/db-retention.bench.ts                    (10M rows; ~3-4 minutes here)
 *   BENCH_ROWS=1000000 node --import tsx test/bench/db-retention.bench.ts
 */
import pg from 'pg';
import { runRetention } from '../../src/db/retention.js';
import { benchDatabase, DAY_MS, generateMessages, verdict } from './db-dataset.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 10_000_000);
const MESSAGES_PER_DEVICE = 1_000;
const devices = Math.max(1, Math.round(ROWS / MESSAGES_PER_DEVICE));
const lastDay = new Date(Math.floor(Date.now() / DAY_MS) * DAY_MS - DAY_MS);

const db = await benchDatabase('retention');
try {
  let t = performance.now();
  const partitions = await generateMessages(db.url, { devices, messagesPerDevice: MESSAGES_PER_DEVICE, lastDay });
  console.log(`generated ${(devices * MESSAGES_PER_DEVICE).toLocaleString('en-US')} rows in ${partitions.length} day partitions in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const client = new pg.Client(db.url);
  await client.connect();
  try {
    const firstDay = lastDay.getTime() - (partitions.length - 1) * DAY_MS;
    // keep = everything from the second day on: the oldest day is wholly expired, no day straddles the cutoff.
    const now = new Date();
    const keepMs = now.getTime() - (firstDay + DAY_MS);
    const dry = await runRetention(client, { keepMs, now, dryRun: true });
    const sizeMb = Math.round(Number((await client.query('SELECT pg_total_relation_size($1::regclass) AS b', [partitions[0]])).rows[0].b) / 1048576);
    const result = await runRetention(client, { keepMs, now });
    if (result.dropped.length !== 1 || result.dropped[0]!.partition !== partitions[0] || result.rowsDeleted !== 0) {
      throw new Error(`unexpected retention result: ${JSON.stringify(result)}`);
    }
    console.log(`dry run (counts rows, changes nothing): ${dry.ms} ms`);
    const d = result.dropped[0]!;
    console.log(`runRetention: dropped ${d.partition} (~${d.rows.toLocaleString('en-US')} rows, ${d.rowsExact ? 'counted' : 'from statistics'}) in ${result.ms} ms: DETACH ${d.detachMs} ms (the only lock on iot_messages), DROP ${d.dropMs} ms (removing ${sizeMb} MB of files)`);

    // Baseline: DELETE the next day's rows, as a table without partitions would have to.
    const from = new Date(firstDay + DAY_MS);
    const to = new Date(firstDay + 2 * DAY_MS);
    t = performance.now();
    const deleted = await client.query('DELETE FROM iot_messages WHERE ts >= $1 AND ts < $2', [from, to]);
    const deleteMs = performance.now() - t;
    console.log(`DELETE baseline: ${deleted.rowCount?.toLocaleString('en-US')} rows in ${deleteMs.toFixed(0)} ms (and the table keeps their dead space until VACUUM)`);
    console.log(`drop vs DELETE: ${(deleteMs / result.ms).toFixed(0)}x faster`);
    console.log(`drop of one day out of ${(devices * MESSAGES_PER_DEVICE).toLocaleString('en-US')} rows: ${result.ms} ms (target <= 100 ms)  ${verdict(result.ms <= 100)}`);
    console.log(`  of which iot_messages is locked (DETACH): ${d.detachMs} ms (target <= 100 ms)  ${verdict((d.detachMs ?? Infinity) <= 100)}`);
  } finally {
    await client.end();
  }
} finally {
  await db.drop();
}
