/**
 * The query-rds and maintenance-rds handlers (issue 19), in this process against the machine's PostgreSQL:
 *
 * 1. query-rds `recent`: the handler's own time per page (paging, JSON size accounting, its connection) against
 *    a direct `pg` query of the same rows (recentMessages, what `query recent` runs), measured in one run.
 *    Target: at most 1.2x.
 * 2. maintenance-rds on a table of BENCH_ROWS rows (default 2M: 10M takes ~4 minutes to generate here; set
 *    BENCH_ROWS=10000000 for the full size) over 10 day partitions, as an hourly run sees it the hour after
 *    midnight: the oldest day has expired (dropped), the next day straddles the cutoff (its first hour deleted),
 *    the partitions ahead are created, and every closed day was already clustered by earlier runs. Target: under
 *    1 s of database time. The once-a-day extra, clustering the day that just closed, is measured separately.
 *
 *   node --import tsx test/bench/pg-ops.bench.ts
 */
import pg from 'pg';
import { recentMessages } from '../../src/db/queries.js';
import { runMaintenance } from '../../src/db/maintenance.js';
import { handler as queryHandler, close as closeQuery } from '../../templates/query-rds/handler.js';
import { benchDatabase, DAY_MS, generateMessages, median, verdict } from './db-dataset.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 2_000_000);
const QUERY_DEVICES = 500;
const RUNS = Number(process.env.BENCH_RUNS ?? 200);
const MESSAGES_PER_DEVICE = 1_000;

const lastDay = new Date(Math.floor(Date.now() / DAY_MS) * DAY_MS - DAY_MS);

// ---- 1. query handler vs direct pg ----
{
  const db = await benchDatabase('pgops_query');
  try {
    await generateMessages(db.url, { devices: QUERY_DEVICES, messagesPerDevice: MESSAGES_PER_DEVICE, lastDay });
    process.env.DATABASE_URL = db.url;
    const direct = new pg.Client(db.url);
    await direct.connect();
    try {
      for (const limit of [100, 1000]) {
        const handlerMs: number[] = [];
        const directMs: number[] = [];
        // Interleaved, so both see the same machine load; each device's rows are read once first (untimed) so
        // neither pays for bringing them into the cache, and the order alternates.
        for (let i = 0; i < RUNS; i++) {
          const deviceId = `dev-${String(Math.floor(Math.random() * QUERY_DEVICES)).padStart(5, '0')}`;
          await recentMessages(direct, { deviceId, limit });
          const viaHandler = async () => {
            const t = performance.now();
            const page = await queryHandler({ query: 'recent', deviceId, limit });
            handlerMs.push(performance.now() - t);
            return page;
          };
          const viaPg = async () => {
            const t = performance.now();
            const rows = await recentMessages(direct, { deviceId, limit });
            directMs.push(performance.now() - t);
            return rows;
          };
          const [page, rows] = i % 2 ? [await viaHandler(), await viaPg()] : await viaPg().then(async (r) => [await viaHandler(), r] as const);
          if (!('rows' in page) || page.rows.length !== rows.length || page.cursor !== null) throw new Error(`unexpected page: ${JSON.stringify(page).slice(0, 300)}`);
        }
        // The first runs warm the connections and the JIT; drop them.
        const h = median(handlerMs.slice(10));
        const d = median(directMs.slice(10));
        console.log(`query recent --limit ${limit}: handler ${h.toFixed(2)} ms per page, direct pg ${d.toFixed(2)} ms (median of ${RUNS - 10}): ${(h / d).toFixed(2)}x (target <= 1.2x)  ${verdict(h / d <= 1.2)}`);
      }
    } finally {
      await direct.end();
      await closeQuery();
    }
  } finally {
    await db.drop();
  }
}

// ---- 2. maintenance on a large table ----
{
  const db = await benchDatabase('pgops_maint');
  try {
    const devices = Math.max(1, Math.round(ROWS / MESSAGES_PER_DEVICE));
    let t = performance.now();
    const partitions = await generateMessages(db.url, { devices, messagesPerDevice: MESSAGES_PER_DEVICE, lastDay });
    console.log(`generated ${(devices * MESSAGES_PER_DEVICE).toLocaleString('en-US')} rows in ${partitions.length} day partitions in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const client = new pg.Client(db.url);
    await client.connect();
    try {
      // Earlier runs clustered every closed day: mark them so (CLUSTER ON only sets the flag; no rewrite here).
      const indexes = await client.query<{ t: string; i: string }>(
        `SELECT t.relname AS t, i.relname AS i FROM pg_inherits h JOIN pg_index x ON x.indexrelid = h.inhrelid
         JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid WHERE h.inhparent = 'iot_messages_device_ts'::regclass`,
      );
      for (const r of indexes.rows) await client.query(`ALTER TABLE ${r.t} CLUSTER ON ${r.i}`);
      await client.query('CHECKPOINT');
      const firstDay = lastDay.getTime() - (partitions.length - 1) * DAY_MS;
      // 01:00 the day after the last day; keeping (days - 1) days puts the cutoff at 01:00 on the second day.
      const now = new Date(lastDay.getTime() + DAY_MS + 3_600_000);
      const keepMs = now.getTime() - (firstDay + DAY_MS + 3_600_000);
      const plan = await runMaintenance(client, { keepMs, now, dryRun: true });
      const run = await runMaintenance(client, { keepMs, now });
      if (run.dropped.length !== 1 || run.dropped[0]!.partition !== partitions[0] || run.clustered.length !== 0) throw new Error(`unexpected run: ${JSON.stringify(run)}`);
      console.log(`dry run: ${plan.dbMs} ms of database time (counts the rows it would remove)`);
      console.log(
        `maintenance of ${(devices * MESSAGES_PER_DEVICE).toLocaleString('en-US')} rows: dropped ${run.dropped[0]!.partition} (~${run.rowsDropped.toLocaleString('en-US')} rows), deleted ${run.rowsDeleted.toLocaleString('en-US')} rows of the straddling hour, created ${run.created.length} partitions: ` +
          `${run.dbMs} ms of database time, ${run.ms} ms in all (target < 1000 ms)  ${verdict(run.dbMs < 1000)}`,
      );
      const d = run.dropped[0]!;
      console.log(`  of which: DETACH ${d.detachMs} ms, DROP ${d.dropMs} ms, straddling DELETE ${run.deleted.map((x) => `${x.partition} ${x.rows} rows ${x.ms} ms`).join(', ')}`);
      // The once-a-day extra: the day that closed last is clustered by the first run after midnight.
      const last = partitions[partitions.length - 1]!;
      await client.query(`ALTER TABLE ${last} SET WITHOUT CLUSTER`);
      t = performance.now();
      const clustered = await runMaintenance(client, { keepMs, now });
      console.log(`once a day: clustering ${last} (${(devices * 100).toLocaleString('en-US')} rows) took ${clustered.clustered[0]?.ms} ms (${clustered.dbMs} ms of database time for that run)`);
    } finally {
      await client.end();
    }
  } finally {
    await db.drop();
  }
}
