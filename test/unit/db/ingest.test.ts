import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { freePort } from '../../../src/targets/local/postgres.js';
import { migrate, MIGRATIONS } from '../../../src/db/migrations.js';
import { ensurePartitions, writeMessages, mapRecord } from '../../../src/db/batch-writer.js';
import { handler, close } from '../../../templates/ingest-rds/handler.js';
import { count, embeddedServer, kinesisEvent, kinesisRecord, machineServer, withPg, type TestDatabase, type TestServer } from './helpers.js';

/** The same tests against the machine's PostgreSQL 15 and the embedded PostgreSQL 18. */
function ingestSuite(serverName: 'machine' | 'embedded', start: () => Promise<TestServer>) {
  const t = suite(`ingest (${serverName})`);
  let server: TestServer;
  let db: TestDatabase;

  t.before(async () => {
    server = await start();
    db = await server.fresh();
    process.env.DATABASE_URL = db.url;
    process.env.LOG_LEVEL = 'silent';
  });
  t.after(async () => {
    await close();
    await db.drop();
    await server.stop();
  });

  t('migrations apply once; running them again (and concurrently) changes nothing', async () => {
    const first = await withPg(db.url, (c) => migrate(c));
    assert.equal(first.applied.map((m) => m.version), MIGRATIONS.map((m) => m.version));
    assert.is(first.version, MIGRATIONS.length);
    const again = await Promise.all([0, 1, 2].map(() => withPg(db.url, (c) => migrate(c))));
    for (const r of again) {
      assert.equal(r.applied, []);
      assert.is(r.version, MIGRATIONS.length);
    }
    assert.is(await count(db.url, 'SELECT count(*) AS n FROM iotctl_schema_migrations'), MIGRATIONS.length);
  });

  t('concurrent migrations on an empty database apply each migration exactly once', async () => {
    const other = await server.fresh();
    try {
      const results = await Promise.all([0, 1, 2, 3].map(() => withPg(other.url, (c) => migrate(c))));
      assert.is(results.reduce((s, r) => s + r.applied.length, 0), MIGRATIONS.length);
      assert.is(await count(other.url, 'SELECT count(*) AS n FROM iotctl_schema_migrations'), MIGRATIONS.length);
    } finally {
      await other.drop();
    }
  });

  t('the handler writes a Kinesis batch: every column, one row per record', async () => {
    const now = Date.now();
    const records = [1, 2, 3].map((i) =>
      kinesisRecord({ device_id: 'dev-a', message_id: `a-${i}`, ts: now - i * 1000, topic: 'dt/acme/dev-a/telemetry', temperature: 20 + i }, { partitionKey: 'dev-a' }),
    );
    const response = await handler(kinesisEvent(records));
    assert.equal(response, { batchItemFailures: [] });
    const rows = await withPg(db.url, async (c) => (await c.query("SELECT * FROM iot_messages WHERE device_id = 'dev-a' ORDER BY ts DESC")).rows);
    assert.is(rows.length, 3);
    assert.equal(rows.map((r) => r.message_id), ['a-1', 'a-2', 'a-3']);
    assert.equal(rows[0].payload, { device_id: 'dev-a', message_id: 'a-1', ts: now - 1000, topic: 'dt/acme/dev-a/telemetry', temperature: 21 });
    assert.is(rows[0].ts.getTime(), now - 1000);
    assert.is(rows[0].topic, 'dt/acme/dev-a/telemetry');
    assert.is(rows[0].stream, 'telemetry');
    assert.is(rows[0].shard_id, 'shardId-000000000000');
    assert.is(rows[0].sequence_number, records[0]!.kinesis.sequenceNumber);
    assert.ok(Math.abs(rows[0].received_at.getTime() - Date.now()) < 60_000);
    // The row sits in its day's partition, not in the default one.
    const day = new Date(now - 1000).toISOString().slice(0, 10).replace(/-/g, '');
    assert.is(await count(db.url, `SELECT count(*) AS n FROM iot_messages_p${day} WHERE device_id = 'dev-a'`) + await count(db.url, `SELECT count(*) AS n FROM iot_messages WHERE device_id = 'dev-a' AND tableoid::regclass::text <> 'iot_messages_p${day}'`), 3);
    assert.is(await count(db.url, 'SELECT count(*) AS n FROM iot_messages_default'), 0);
  });

  t('a duplicated batch and a re-put message (new sequence number) add no rows', async () => {
    const ts = Date.now();
    const records = [1, 2, 3, 4].map((i) => kinesisRecord({ device_id: 'dev-b', message_id: `b-${i}`, ts: ts - i }));
    assert.equal(await handler(kinesisEvent(records)), { batchItemFailures: [] });
    assert.equal(await handler(kinesisEvent(records)), { batchItemFailures: [] });
    // The same message put again by the rule (at-least-once): new sequence number, same payload.
    const reput = kinesisRecord({ device_id: 'dev-b', message_id: 'b-2', ts: ts - 2 });
    assert.equal(await handler(kinesisEvent([reput, records[0]!])), { batchItemFailures: [] });
    assert.is(await count(db.url, "SELECT count(*) AS n FROM iot_messages WHERE device_id = 'dev-b'"), 4);
    // Records without message_id or ts: the key comes from stream/shard/sequence and the arrival time, so a retry is still a no-op.
    const anonymous = [kinesisRecord({ v: 1 }, { partitionKey: 'dev-c' }), kinesisRecord({ v: 2 }, { partitionKey: 'dev-c' })];
    await handler(kinesisEvent(anonymous));
    await handler(kinesisEvent(anonymous));
    assert.is(await count(db.url, "SELECT count(*) AS n FROM iot_messages WHERE device_id = 'dev-c'"), 2);
  });

  t('a poison record goes to iot_ingest_errors, the rest of its batch lands, and nothing is reported failed', async () => {
    const good1 = kinesisRecord({ device_id: 'dev-p', message_id: 'p-1', ts: Date.now() });
    const bad = kinesisRecord(null, { raw: Buffer.from('temperature=21;oops'), partitionKey: 'dev-p' });
    const notObject = kinesisRecord([1, 2, 3]);
    const good2 = kinesisRecord({ device_id: 'dev-p', message_id: 'p-2', ts: Date.now() });
    const event = kinesisEvent([good1, bad, notObject, good2]);
    assert.equal(await handler(event), { batchItemFailures: [] });
    assert.equal(await handler(event), { batchItemFailures: [] }); // a retry records the dead letters once
    assert.is(await count(db.url, "SELECT count(*) AS n FROM iot_messages WHERE device_id = 'dev-p'"), 2);
    const errors = await withPg(db.url, async (c) => (await c.query('SELECT stream, shard_id, sequence_number, reason, raw_data FROM iot_ingest_errors ORDER BY id')).rows);
    assert.is(errors.length, 2);
    assert.equal(
      errors.map((e) => [e.stream, e.shard_id, e.sequence_number]),
      [bad, notObject].map((r) => ['telemetry', 'shardId-000000000000', r.kinesis.sequenceNumber]),
    );
    assert.match(errors[0].reason, /^not JSON: /);
    assert.is(errors[1].reason, 'not a JSON object (got an array)');
    assert.equal(errors[0].raw_data, Buffer.from('temperature=21;oops'));
  });

  t('rows written without the partition function land in the default partition, and move out when their day is created', async () => {
    const day = '2026-01-15';
    await withPg(db.url, async (c) => {
      await c.query(`INSERT INTO iot_messages (message_id, device_id, ts, payload) VALUES ('d-1', 'dev-d', '${day}T10:00:00Z', '{}'), ('d-2', 'dev-d', '${day}T23:59:59.999Z', '{}'), ('d-3', 'dev-d', '2026-01-16T00:00:00Z', '{}')`);
      assert.is(Number((await c.query('SELECT count(*) AS n FROM iot_messages_default')).rows[0].n), 3);
      assert.is(await ensurePartitions(c, [day]), 1);
      assert.is(await ensurePartitions(c, [day]), 0);
      assert.is(Number((await c.query('SELECT count(*) AS n FROM iot_messages_p20260115')).rows[0].n), 2);
      assert.is(Number((await c.query("SELECT count(*) AS n FROM iot_messages_default WHERE device_id = 'dev-d'")).rows[0].n), 1);
      // Writing into a day whose rows sit in the default partition still works, and stays idempotent.
      const rec = mapRecord(kinesisRecord({ device_id: 'dev-d', message_id: 'd-3', ts: Date.parse('2026-01-16T00:00:00Z') }));
      assert.ok(rec.ok);
      if (rec.ok) assert.is(await writeMessages(c, [rec.row], { now: new Date('2026-01-16T12:00:00Z') }), 0);
      assert.is(Number((await c.query("SELECT count(*) AS n FROM iot_messages WHERE device_id = 'dev-d'")).rows[0].n), 3);
      assert.is(Number((await c.query('SELECT count(*) AS n FROM iot_messages_p20260116')).rows[0].n), 1);
    });
  });

  t('concurrent writers creating the same day partition both succeed', async () => {
    const ts = Date.parse('2026-02-02T08:00:00Z');
    const batch = (prefix: string) => Array.from({ length: 50 }, (_, i) => { const m = mapRecord(kinesisRecord({ device_id: 'dev-e', message_id: `${prefix}-${i}`, ts: ts + i })); if (!m.ok) throw new Error('unexpected poison'); return m.row; });
    const pool = new pg.Pool({ connectionString: db.url, max: 4 });
    try {
      const written = await Promise.all(['x', 'y', 'z', 'x'].map((p) => writeMessages(pool, batch(p), { now: new Date(ts) })));
      assert.is(written.reduce((a, b) => a + b, 0), 150);
    } finally {
      await pool.end();
    }
    assert.is(await count(db.url, "SELECT count(*) AS n FROM iot_messages_p20260202 WHERE device_id = 'dev-e'"), 150);
  });

  t('PostgreSQL refusing connections: every record is reported for retry, and the retry succeeds', async () => {
    const records = [1, 2, 3].map((i) => kinesisRecord({ device_id: 'dev-f', message_id: `f-${i}`, ts: Date.now() }));
    const goodUrl = process.env.DATABASE_URL!;
    await close();
    process.env.DATABASE_URL = `postgres://postgres:x@127.0.0.1:${await freePort()}/nothing`;
    try {
      const failed = await handler(kinesisEvent(records));
      assert.equal(failed, { batchItemFailures: records.map((r) => ({ itemIdentifier: r.kinesis.sequenceNumber })) });
    } finally {
      process.env.DATABASE_URL = goodUrl;
    }
    // The failed pool was dropped, so this invocation connects afresh to the (now right) server.
    assert.equal(await handler(kinesisEvent(records)), { batchItemFailures: [] });
    assert.is(await count(db.url, "SELECT count(*) AS n FROM iot_messages WHERE device_id = 'dev-f'"), 3);
  });

  t('the backend is terminated mid-batch: records reported for retry; the next invocation reconnects and writes them', async () => {
    await handler(kinesisEvent([kinesisRecord({ device_id: 'warm', ts: Date.now() })])); // warm pool
    const records = [1, 2].map((i) => kinesisRecord({ device_id: 'dev-g', message_id: `g-${i}`, ts: Date.now() }));
    const blocker = new pg.Client(db.url);
    await blocker.connect();
    try {
      // Hold the table so the handler's INSERT waits, then kill its backend while it waits.
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE iot_messages IN ACCESS EXCLUSIVE MODE');
      const pending = handler(kinesisEvent(records));
      let victims = 0;
      for (let i = 0; i < 200 && victims === 0; i++) {
        await new Promise((r) => setTimeout(r, 25));
        const { rows } = await blocker.query(
          "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = 'iotctl-ingest-rds' AND datname = current_database() AND wait_event_type = 'Lock'",
        );
        victims = rows.length;
      }
      assert.is(victims, 1, 'the handler waited on the lock');
      const response = await pending;
      assert.equal(response.batchItemFailures.map((f) => f.itemIdentifier), records.map((r) => r.kinesis.sequenceNumber));
    } finally {
      await blocker.query('ROLLBACK').catch(() => undefined);
      await blocker.end();
    }
    assert.equal(await handler(kinesisEvent(records)), { batchItemFailures: [] });
    assert.is(await count(db.url, "SELECT count(*) AS n FROM iot_messages WHERE device_id = 'dev-g'"), 2);
  });

  return t;
}

ingestSuite('machine', machineServer).run();
ingestSuite('embedded', embeddedServer).run();
