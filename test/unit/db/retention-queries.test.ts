import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../../../src/db/migrations.js';
import { writeMessages, type MessageRow } from '../../../src/db/batch-writer.js';
import { clusterClosedPartitions, listPartitions, runRetention } from '../../../src/db/retention.js';
import { recentMessages, runReadOnlySql } from '../../../src/db/queries.js';
import { UserError } from '../../../src/ui/errors.js';
import { embeddedServer, machineServer, type TestDatabase, type TestServer } from './helpers.js';

const HOUR = 3_600_000;
const NOW = new Date('2026-03-10T12:00:00Z');

function row(device: string, id: string, ts: Date, topic: string | null = null, payload: Record<string, unknown> = {}): MessageRow {
  return { message_id: id, device_id: device, ts, topic, payload: { device_id: device, ...payload }, stream: 's', shard_id: 'shardId-000000000000', sequence_number: id, received_at: ts };
}

async function rejects(promise: Promise<unknown>, code: string, message: RegExp): Promise<UserError> {
  try {
    await promise;
  } catch (error) {
    assert.instance(error, UserError);
    assert.is((error as UserError).code, code);
    assert.match((error as Error).message, message);
    return error as UserError;
  }
  throw new assert.Assertion({ message: `expected a ${code} UserError`, operator: 'rejects', actual: 'resolved', expects: code, generated: false });
}

function retentionAndQueries(serverName: string, start: () => Promise<TestServer>) {
  const t = suite(`retention and queries (${serverName})`);
  let server: TestServer;
  let db: TestDatabase;
  let client: pg.Client;

  t.before(async () => {
    server = await start();
    db = await server.fresh();
    client = new pg.Client(db.url);
    await client.connect();
    await migrate(client);
  });
  t.after(async () => {
    await client.end();
    await db.drop();
    await server.stop();
  });

  t('retention: dry-run reports, then whole old days are dropped and the boundary day trimmed', async () => {
    const rows: MessageRow[] = [];
    // Four days of hourly rows for one device: 03-07, 03-08, 03-09, 03-10 (up to NOW).
    for (let ts = Date.parse('2026-03-07T00:00:00Z'); ts <= NOW.getTime(); ts += HOUR) rows.push(row('r1', `r-${ts}`, new Date(ts)));
    assert.is(await writeMessages(client, rows, { now: NOW }), rows.length);
    // Rows in the default partition: one far in the past (outside the partition window), one in the future.
    await client.query("INSERT INTO iot_messages (message_id, device_id, ts, payload) VALUES ('old', 'r1', '1999-01-01T00:00:00Z', '{}'), ('future', 'r1', '2027-01-01T00:00:00Z', '{}')");
    const total = rows.length + 2;
    const keepMs = 24 * HOUR; // cutoff 2026-03-09T12:00Z

    const dry = await runRetention(client, { keepMs, now: NOW, dryRun: true });
    assert.equal(dry.cutoff, new Date('2026-03-09T12:00:00Z'));
    assert.equal(dry.dropped.map((d) => [d.partition, d.rows]), [['iot_messages_p20260307', 24], ['iot_messages_p20260308', 24]]);
    assert.equal(dry.dropped[0]!.from, new Date('2026-03-07T00:00:00Z'));
    assert.equal(dry.dropped[0]!.to, new Date('2026-03-08T00:00:00Z'));
    assert.equal(dry.deleted.map(({ ms, ...d }) => d), [{ partition: 'iot_messages_default', rows: 1 }, { partition: 'iot_messages_p20260309', rows: 12 }]);
    assert.is(dry.rowsDropped + dry.rowsDeleted, 61);
    assert.is(Number((await client.query('SELECT count(*) AS n FROM iot_messages')).rows[0].n), total, 'a dry run changes nothing');

    const real = await runRetention(client, { keepMs, now: NOW });
    // Never analyzed, these partitions have no row estimate, so the rows are counted exactly.
    const timeless = <T extends { ms?: number }>(list: T[]) => list.map(({ ms, ...d }) => d);
    assert.equal({ ...real, ms: 0, dryRun: true, dropped: real.dropped.map(({ detachMs, dropMs, ...d }) => d), deleted: timeless(real.deleted) }, { ...dry, ms: 0, deleted: timeless(dry.deleted) });
    assert.ok(real.dropped.every((d) => typeof d.detachMs === 'number' && typeof d.dropMs === 'number'));
    assert.is(Number((await client.query('SELECT count(*) AS n FROM iot_messages')).rows[0].n), total - 61);
    assert.is((await client.query("SELECT to_regclass('iot_messages_p20260307') AS r")).rows[0].r, null);
    assert.equal((await listPartitions(client)).map((p) => p.name), ['iot_messages_default', 'iot_messages_p20260309', 'iot_messages_p20260310']);
    const oldest = (await client.query("SELECT min(ts) AS m FROM iot_messages WHERE device_id = 'r1'")).rows[0].m as Date;
    assert.equal(oldest, new Date('2026-03-09T12:00:00Z'));

    const again = await runRetention(client, { keepMs, now: NOW });
    assert.equal([again.dropped, again.deleted], [[], []]);

    // An analyzed partition is dropped without counting it: the estimate is reported as such.
    await client.query('ANALYZE iot_messages_p20260309');
    const later = await runRetention(client, { keepMs, now: new Date('2026-03-11T00:00:00Z') });
    assert.equal(later.dropped.map((d) => [d.partition, d.rows, d.rowsExact]), [['iot_messages_p20260309', 12, false]]);
  });

  t('query recent: newest first, limit, since, topic filters', async () => {
    const base = Date.parse('2026-03-10T11:00:00Z');
    const rows = Array.from({ length: 10 }, (_, i) => row('q1', `q-${i}`, new Date(base - i * 60_000), i % 2 ? 'dt/acme/q1/status' : 'dt/acme/q1/telemetry', { i }));
    rows.push(row('q2', 'other', new Date(base), 'dt/acme/q2/telemetry'));
    await writeMessages(client, rows, { now: NOW });

    const newest = await recentMessages(client, { deviceId: 'q1', limit: 3 });
    assert.equal(newest.map((m) => m.message_id), ['q-0', 'q-1', 'q-2']);
    assert.equal(newest[0]!.payload, { device_id: 'q1', i: 0 });
    assert.equal(newest[0]!.ts, new Date(base));
    assert.is((await recentMessages(client, { deviceId: 'q1', limit: 50 })).length, 10);
    const since = await recentMessages(client, { deviceId: 'q1', limit: 50, since: new Date(base - 4 * 60_000) });
    assert.equal(since.map((m) => m.message_id), ['q-0', 'q-1', 'q-2', 'q-3', 'q-4']);
    const status = await recentMessages(client, { deviceId: 'q1', limit: 50, topicFilter: 'dt/+/q1/status' });
    assert.equal(status.map((m) => m.message_id), ['q-1', 'q-3', 'q-5', 'q-7', 'q-9']);
    assert.is((await recentMessages(client, { deviceId: 'q1', limit: 50, topicFilter: 'dt/acme/#' })).length, 10);
    assert.is((await recentMessages(client, { deviceId: 'q1', limit: 50, topicFilter: '#' })).length, 10);
    assert.is((await recentMessages(client, { deviceId: 'q1', limit: 50, topicFilter: 'dt/acme/q1/telemetry' })).length, 5);
    assert.is((await recentMessages(client, { deviceId: 'q1', limit: 50, topicFilter: 'dt/+/q1' })).length, 0);
    assert.is((await recentMessages(client, { deviceId: 'q1', limit: 50, topicFilter: 'dt/acme/q1/telemetry/#' })).length, 5, "'x/#' matches x itself");
  });

  t('query recent: the recent window (from yesterday 00:00 UTC) and older rows join seamlessly', async () => {
    const now = new Date('2026-03-10T11:30:00Z');
    const times = ['2026-03-10T11:00:00Z', '2026-03-09T06:00:00Z', '2026-03-09T00:00:00Z', '2026-03-08T23:59:59.999Z', '2026-03-08T12:00:00Z', '2026-03-07T00:00:00Z'];
    await writeMessages(client, times.map((ts, i) => row('w1', `w-${i}`, new Date(ts), i % 2 ? 'odd' : 'even')), { now });
    const ids = async (q: Partial<Parameters<typeof recentMessages>[1]>) => (await recentMessages(client, { deviceId: 'w1', limit: 50, now, ...q })).map((m) => m.message_id);
    assert.equal(await ids({ limit: 2 }), ['w-0', 'w-1']);
    assert.equal(await ids({ limit: 4 }), ['w-0', 'w-1', 'w-2', 'w-3']);
    assert.equal(await ids({}), ['w-0', 'w-1', 'w-2', 'w-3', 'w-4', 'w-5']);
    assert.equal(await ids({ since: new Date('2026-03-09T03:00:00Z') }), ['w-0', 'w-1']);
    assert.equal(await ids({ since: new Date('2026-03-08T20:00:00Z') }), ['w-0', 'w-1', 'w-2', 'w-3']);
    assert.equal(await ids({ topicFilter: 'odd' }), ['w-1', 'w-3', 'w-5']);
    assert.equal(await ids({ topicFilter: 'even', limit: 2 }), ['w-0', 'w-2']);
  });

  t('query recent: SQL in the device id or topic filter is inert', async () => {
    const evil = "x'; drop table iot_messages;--";
    assert.equal(await recentMessages(client, { deviceId: evil, limit: 10 }), []);
    assert.equal(await recentMessages(client, { deviceId: 'q1', limit: 10, topicFilter: "dt/'); DROP TABLE iot_messages;--/#" }), []);
    await writeMessages(client, [row(evil, 'evil-1', new Date('2026-03-10T11:30:00Z'))], { now: NOW });
    const found = await recentMessages(client, { deviceId: evil, limit: 10 });
    assert.equal(found.map((m) => [m.device_id, m.message_id]), [[evil, 'evil-1']]);
    assert.is(Number((await client.query("SELECT count(*) AS n FROM iot_messages WHERE device_id = 'q1'")).rows[0].n), 10);
  });

  t('query sql: reads, types, row cap, EXPLAIN', async () => {
    const r = await runReadOnlySql(client, "SELECT device_id, count(*) AS n, max(ts) AS last FROM iot_messages WHERE device_id = 'q1' GROUP BY 1;", { timeoutMs: 5000 });
    assert.equal(r.columns, [{ name: 'device_id', type: 'text' }, { name: 'n', type: 'bigint' }, { name: 'last', type: 'timestamp with time zone' }]);
    assert.equal(r.rows, [{ device_id: 'q1', n: '10', last: new Date('2026-03-10T11:00:00Z') }]);
    assert.is(r.truncated, false);
    const capped = await runReadOnlySql(client, 'SELECT g FROM generate_series(1, 100) g', { timeoutMs: 5000, maxRows: 10 });
    assert.equal([capped.rowCount, capped.truncated, capped.rows.at(-1)], [10, true, { g: 10 }]);
    const explain = await runReadOnlySql(client, "EXPLAIN SELECT * FROM iot_messages WHERE device_id = 'q1'", { timeoutMs: 5000 });
    assert.is(explain.columns[0]!.name, 'QUERY PLAN');
    assert.ok(explain.rowCount > 0);
  });

  t('query sql: writes, multiple statements and slow queries are refused with user errors', async () => {
    const before = Number((await client.query('SELECT count(*) AS n FROM iot_messages')).rows[0].n);
    await rejects(runReadOnlySql(client, 'DELETE FROM iot_messages', { timeoutMs: 5000 }), 'SQL_READ_ONLY', /read-only/);
    await rejects(runReadOnlySql(client, 'WITH d AS (DELETE FROM iot_messages RETURNING 1) SELECT count(*) FROM d', { timeoutMs: 5000 }), 'SQL_READ_ONLY', /read-only/);
    await rejects(runReadOnlySql(client, 'SELECT 1; DELETE FROM iot_messages', { timeoutMs: 5000 }), 'SQL_ERROR', /one statement/);
    await rejects(runReadOnlySql(client, 'CREATE TABLE sneaky (a int)', { timeoutMs: 5000 }), 'SQL_READ_ONLY', /read-only/);
    await rejects(runReadOnlySql(client, 'SELEC 1', { timeoutMs: 5000 }), 'SQL_ERROR', /syntax error .*at character 1/);
    await rejects(runReadOnlySql(client, 'SELECT nope FROM iot_messages', { timeoutMs: 5000 }), 'SQL_ERROR', /column "nope" does not exist/);
    const started = Date.now();
    await rejects(runReadOnlySql(client, 'SELECT pg_sleep(3)', { timeoutMs: 200 }), 'SQL_TIMEOUT', /cancelled after 200 ms/);
    assert.ok(Date.now() - started < 2000, `timed out promptly (${Date.now() - started} ms)`);
    assert.is(Number((await client.query('SELECT count(*) AS n FROM iot_messages')).rows[0].n), before);
    assert.is((await client.query("SELECT to_regclass('sneaky') AS r")).rows[0].r, null);
    // The connection is still usable, outside any transaction.
    assert.is((await client.query('SELECT 1 AS one')).rows[0].one, 1);
    assert.is((await client.query('SELECT pg_current_xact_id_if_assigned() IS NULL AS idle')).rows[0].idle, true);
  });

  t('cluster: closed days are rewritten once in device order, a busy one is retried, today is left alone, big payloads survive', async () => {
    const now = new Date('2025-06-03T12:00:00Z');
    const devices = ['c1', 'c2', 'c3'];
    const rows: MessageRow[] = [];
    // Arrival order: every device interleaved, ten minutes apart, over 06-01, 06-02 and today 06-03 (to 11:50).
    for (let ts = Date.parse('2025-06-01T00:00:00Z'); ts < now.getTime(); ts += 10 * 60_000) {
      for (const d of devices) rows.push(row(d, `${d}-${ts}`, new Date(ts)));
    }
    // A 100 KB incompressible payload (stored in TOAST) on a closed day must come through the rewrite intact.
    const blob = randomBytes(50_000).toString('hex');
    rows.push(row('c2', 'c2-big', new Date('2025-06-01T05:00:30Z'), null, { blob }));
    assert.is(await writeMessages(client, rows, { now }), rows.length);

    const physical = async (part: string) =>
      (await client.query<{ device_id: string }>(`SELECT device_id FROM ${part} WHERE device_id LIKE 'c_' ORDER BY ctid`)).rows.map((r) => r.device_id);
    const devicesInOrder = (ids: string[]) => ids.filter((d, i) => i === 0 || d !== ids[i - 1]);
    assert.equal(devicesInOrder(await physical('iot_messages_p20250601')).slice(0, 4), ['c1', 'c2', 'c3', 'c1']);

    const mine = (names: string[]) => names.filter((n) => /^iot_messages_p2025060[123]$/.test(n));
    const holder = new pg.Client(db.url);
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT count(*) FROM iot_messages_p20250602');
      const first = await clusterClosedPartitions(client, { now, lockTimeoutMs: 200 });
      assert.equal(mine(first.clustered.map((c) => c.partition)), ['iot_messages_p20250601']);
      assert.equal(first.busy, ['iot_messages_p20250602']);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    const second = await clusterClosedPartitions(client, { now, lockTimeoutMs: 200 });
    assert.equal(mine(second.clustered.map((c) => c.partition)), ['iot_messages_p20250602']);
    assert.equal(second.busy, []);
    assert.equal((await clusterClosedPartitions(client, { now })).clustered, []);

    // Closed days: each device's rows are now contiguous, newest first; today keeps arrival order.
    assert.equal(devicesInOrder(await physical('iot_messages_p20250601')), devices);
    assert.equal(devicesInOrder(await physical('iot_messages_p20250602')), devices);
    assert.equal(devicesInOrder(await physical('iot_messages_p20250603')).slice(0, 4), ['c1', 'c2', 'c3', 'c1']);
    const { rows: order } = await client.query<{ ts: Date }>("SELECT ts FROM iot_messages_p20250602 WHERE device_id = 'c1' ORDER BY ctid");
    assert.is(order.length, 144);
    assert.ok(order.every((r, i) => i === 0 || r.ts < order[i - 1]!.ts));

    // Same answers as before: the newest of today and yesterday, then older days, and the big payload.
    const recent = await recentMessages(client, { deviceId: 'c2', limit: 300, now });
    assert.is(recent.length, 300);
    assert.equal(recent.map((m) => m.message_id).slice(0, 2), [`c2-${now.getTime() - 10 * 60_000}`, `c2-${now.getTime() - 20 * 60_000}`]);
    assert.ok(recent.every((m, i) => i === 0 || m.ts <= recent[i - 1]!.ts));
    const all = await recentMessages(client, { deviceId: 'c2', limit: 1000, now });
    assert.is(all.length, 144 * 2 + 72 + 1);
    const big = all.find((m) => m.message_id === 'c2-big');
    assert.is(big?.payload.blob, blob);
  });

  return t;
}

retentionAndQueries('machine', machineServer).run();
retentionAndQueries('embedded', embeddedServer).run();
