/**
 * Benchmark datasets for the db benchmarks: fresh databases on the machine's PostgreSQL and a fast
 * server-side generator for iot_messages (devices x messages, one message every 864 s, 100 per day).
 *
 * Loading 10M rows through indexed inserts takes ~5 minutes here, so each day is loaded into a bare
 * table, indexed, given a CHECK constraint matching its range (so ATTACH needs no validation scan),
 * and attached; the indexes built match the parent's, so ATTACH adopts them. The result is the same
 * table the ingest path produces.
 */
import pg from 'pg';
import { migrate } from '../../src/db/migrations.js';
import { freshDatabase, type TestDatabase } from '../helpers/pg.js';

export const SERVER_URL = process.env.DATABASE_URL ?? process.env.DATABASE_URL_TEST ?? 'postgres://postgres@127.0.0.1:5432/test';
export const MESSAGES_PER_DAY = 100;
export const DAY_MS = 86_400_000;

export type BenchDatabase = TestDatabase;

export function benchDatabase(label: string): Promise<BenchDatabase> {
  return freshDatabase(SERVER_URL, `iotctl_bench_${label}`);
}

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/**
 * Generates devices x messagesPerDevice rows ending on `lastDay` (UTC midnight), spread over
 * messagesPerDevice / 100 days. Returns the day partitions created, oldest first.
 */
export async function generateMessages(url: string, opts: { devices: number; messagesPerDevice: number; lastDay: Date; concurrency?: number }): Promise<string[]> {
  const days = Math.ceil(opts.messagesPerDevice / MESSAGES_PER_DAY);
  const client = new pg.Client(url);
  await client.connect();
  await migrate(client);
  await client.end();
  const dayStarts = Array.from({ length: days }, (_, i) => opts.lastDay.getTime() - (days - 1 - i) * DAY_MS);
  const queue = [...dayStarts.entries()];
  const worker = async () => {
    const c = new pg.Client(url);
    await c.connect();
    await c.query("SET maintenance_work_mem = '512MB'; SET synchronous_commit = off");
    for (let next = queue.shift(); next; next = queue.shift()) {
      const [index, start] = next;
      const perDay = Math.min(MESSAGES_PER_DAY, opts.messagesPerDevice - index * MESSAGES_PER_DAY);
      const part = `iot_messages_p${day(start).replace(/-/g, '')}`;
      const lo = new Date(start).toISOString();
      const hi = new Date(start + DAY_MS).toISOString();
      await c.query(`CREATE TABLE ${part} (LIKE iot_messages INCLUDING DEFAULTS INCLUDING STORAGE)`);
      await c.query(
        `INSERT INTO ${part}
         SELECT 'm-' || d || '-' || k, 'dev-' || lpad(d::text, 5, '0'), ts, 'dt/bench/dev-' || lpad(d::text, 5, '0') || '/telemetry',
                jsonb_build_object('device_id', 'dev-' || lpad(d::text, 5, '0'), 'temperature', 20 + (k % 10) * 0.5, 'humidity', 40 + d % 20, 'seq', k),
                'bench', 'shardId-000000000000', (d::bigint * 100000 + k)::text, ts
         FROM generate_series(0, $2::int - 1) AS j, generate_series(0, $1::int - 1) AS d,
              LATERAL (SELECT $3::int * $2::int + j AS k, $4::timestamptz + j * interval '864 seconds' AS ts) AS x`,
        [opts.devices, perDay, index, lo],
      );
      await c.query(`ALTER TABLE ${part} ADD PRIMARY KEY (message_id, ts)`);
      await c.query(`CREATE INDEX ON ${part} (device_id, ts DESC)`);
      await c.query(`ALTER TABLE ${part} ADD CONSTRAINT ${part}_range CHECK (ts >= '${lo}' AND ts < '${hi}')`);
      await c.query(`ALTER TABLE iot_messages ATTACH PARTITION ${part} FOR VALUES FROM ('${lo}') TO ('${hi}')`);
      await c.query(`ALTER TABLE ${part} DROP CONSTRAINT ${part}_range`);
    }
    await c.end();
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 2 }, worker));
  const c = new pg.Client(url);
  await c.connect();
  await c.query('ANALYZE iot_messages');
  await c.end();
  return dayStarts.map((s) => `iot_messages_p${day(s).replace(/-/g, '')}`);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function verdict(ok: boolean): string {
  return ok ? 'PASS' : 'FAIL';
}
