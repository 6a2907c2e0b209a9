import type { Queryable } from './connection.js';
import { ensureRoles, type RolesResult } from './roles.js';

/**
 * The recent-data schema, versioned in `iotctl_schema_migrations`. Migrations are plain SQL strings
 * (no files to read at run time) because the ingest Lambda bundle runs them too.
 *
 * iot_messages is partitioned by day (UTC) on `ts`, the message time, so retention drops whole
 * partitions instead of deleting millions of rows. Its key is (message_id, ts): PostgreSQL requires
 * a unique constraint on a partitioned table to include the partition key. A retried or re-put
 * message carries the same message_id and the same payload time, so `ON CONFLICT DO NOTHING` still
 * makes retries idempotent; what it cannot catch is the same message_id arriving with a different
 * ts, which only happens when the payload has no ts and the arrival time stands in for it.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Advisory lock key (an arbitrary constant) serializing concurrent `migrate` runs on one database. */
const MIGRATION_LOCK_KEY = 7_140_150_001;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'iot_messages, partitioned by day',
    sql: `
CREATE TABLE iot_messages (
  message_id      text        NOT NULL,
  device_id       text        NOT NULL,
  ts              timestamptz NOT NULL,
  topic           text,
  payload         jsonb       NOT NULL,
  stream          text,
  shard_id        text,
  sequence_number text,
  received_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (message_id, ts)
) PARTITION BY RANGE (ts);

-- Catches rows for days that have no partition yet (a writer that did not call
-- iotctl_ensure_day_partition, or a timestamp far outside the window writers create partitions for),
-- so an insert never fails on a missing partition.
CREATE TABLE iot_messages_default PARTITION OF iot_messages DEFAULT;

-- Serves "the newest messages of device D" (query recent) with a backward-free index scan per partition.
CREATE INDEX iot_messages_device_ts ON iot_messages (device_id, ts DESC);

-- Creates the partition for one UTC day if it is missing; returns true when it created it.
-- Concurrent writers creating the same day serialize on an advisory lock; rows for that day that
-- landed in the default partition move into the new partition before it is attached.
CREATE FUNCTION iotctl_ensure_day_partition(day date) RETURNS boolean
LANGUAGE plpgsql AS $fn$
DECLARE
  part text := 'iot_messages_p' || to_char(day, 'YYYYMMDD');
  lo timestamptz := day::timestamp AT TIME ZONE 'UTC';
  hi timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
  IF to_regclass(format('%I', part)) IS NOT NULL THEN
    RETURN false;
  END IF;
  PERFORM pg_advisory_xact_lock(714015002, day - date '2000-01-01');
  -- Re-check with a query, not to_regclass: a query takes a fresh snapshot and sees the partition a
  -- writer that held the lock before us just committed; to_regclass would use a stale catalog snapshot.
  IF EXISTS (SELECT 1 FROM pg_class WHERE relname = part AND relnamespace = to_regnamespace(current_schema())) THEN
    RETURN false;
  END IF;
  EXECUTE format('CREATE TABLE %I (LIKE iot_messages INCLUDING DEFAULTS INCLUDING STORAGE)', part);
  EXECUTE format(
    'WITH moved AS (DELETE FROM iot_messages_default WHERE ts >= $1 AND ts < $2 RETURNING *) INSERT INTO %I SELECT * FROM moved',
    part) USING lo, hi;
  EXECUTE format('ALTER TABLE iot_messages ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
  RETURN true;
END
$fn$;
`,
  },
  {
    version: 2,
    name: 'iot_ingest_errors dead-letter table',
    sql: `
-- Records the ingest function could never write (not JSON, not an object...), kept with the reason
-- and the raw bytes so nothing is lost and the shard is not blocked. One row per stream record:
-- a retried batch does not add the same record twice.
CREATE TABLE iot_ingest_errors (
  id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  received_at     timestamptz NOT NULL DEFAULT now(),
  stream          text,
  shard_id        text,
  sequence_number text,
  reason          text        NOT NULL,
  raw_data        bytea,
  UNIQUE (stream, shard_id, sequence_number)
);
CREATE INDEX iot_ingest_errors_received_at ON iot_ingest_errors (received_at);
`,
  },
  {
    version: 3,
    name: 'day partitions created with the schema owner\'s rights',
    sql: `
-- Writers that may only INSERT (the embedded server's ingest role) still get their day's partition: the
-- function runs as its owner, with its search_path pinned so a caller cannot slip other objects in.
DO $do$
BEGIN
  EXECUTE format('ALTER FUNCTION iotctl_ensure_day_partition(date) SECURITY DEFINER SET search_path = %I, pg_temp', current_schema());
END
$do$;
`,
  },
  {
    version: 4,
    name: 'only the ingest role may create day partitions',
    sql: `
-- A SECURITY DEFINER function runs with its owner's rights: nobody but the ingest role (granted by ensureRoles
-- in roles.ts on every migrate) and the owner may call it.
REVOKE EXECUTE ON FUNCTION iotctl_ensure_day_partition(date) FROM PUBLIC;
`,
  },
];

export interface MigrationResult {
  /** Migrations applied by this run, in order. */
  applied: Array<{ version: number; name: string; ms: number }>;
  /** The schema version after the run. */
  version: number;
  /** The newest version this iotctl knows. */
  latest: number;
  /** The least-privilege roles (roles.ts): created, granted, or missing with a warning. */
  roles: RolesResult;
}

/**
 * Brings the schema up to date. Needs one dedicated connection (a Client or a PoolClient, not a
 * Pool): it holds a session advisory lock across the migration transactions so that two concurrent
 * runs (two CLIs, the daemon and a Lambda cold start) apply each migration exactly once.
 */
export async function migrate(client: Queryable, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrationResult> {
  const latest = Math.max(0, ...migrations.map((m) => m.version));
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
  try {
    // Created only when missing: a role that may not create tables (a writer calling this at start) can
    // still find the schema up to date.
    const { rows: table } = await client.query<{ t: string | null }>("SELECT to_regclass('iotctl_schema_migrations')::text AS t");
    if (!table[0]?.t) {
      await client.query(`CREATE TABLE IF NOT EXISTS iotctl_schema_migrations (
      version    integer     PRIMARY KEY,
      name       text        NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    }
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM iotctl_schema_migrations')).rows.map((r) => r.version));
    const newer = [...done].filter((v) => v > latest);
    if (newer.length) {
      throw new Error(`The database schema is at version ${Math.max(...newer)}, newer than this iotctl knows (${latest}); upgrade iotctl.`);
    }
    const applied: MigrationResult['applied'] = [];
    for (const migration of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(migration.version)) continue;
      const started = performance.now();
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        await client.query('INSERT INTO iotctl_schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        (error as Error).message = `Migration ${migration.version} (${migration.name}) failed: ${(error as Error).message}`;
        throw error;
      }
      applied.push({ version: migration.version, name: migration.name, ms: Math.round(performance.now() - started) });
      done.add(migration.version);
    }
    // Every run, not once: roles an administrator created since, and grants a restored dump lost, come back.
    const roles = await ensureRoles(client);
    return { applied, version: Math.max(0, ...done), latest, roles };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
  }
}
