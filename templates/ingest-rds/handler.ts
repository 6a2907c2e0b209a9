/**
 * ingest-rds: a Lambda handler for a Kinesis event source mapping that writes telemetry to PostgreSQL.
 *
 * - One INSERT .. ON CONFLICT DO NOTHING per batch (src/db/batch-writer.ts, shared with iotctl), so
 *   a retried batch or a re-put message never duplicates rows.
 * - A record that can never be written (not JSON, not a JSON object) goes to iot_ingest_errors with
 *   its reason and raw bytes, and is not reported as failed: it must not block its shard.
 * - When PostgreSQL is unreachable, every record not written is returned in batchItemFailures
 *   (the mapping must enable ReportBatchItemFailures), so the event source mapping retries them.
 *
 * - It never changes the schema: it runs as the ingest role (src/db/roles.ts: INSERT only), and a day's missing
 *   partition is created through iotctl_ensure_day_partition, which runs with the schema owner's rights. The
 *   maintenance-rds function (or the local platform) migrates and creates the next days' partitions ahead.
 *
 * The pg Pool lives at module level, reused across invocations of a warm container, and is
 * replaced after a connection or login error. Credentials and TLS come from database.ts: a Secrets
 * Manager secret or an IAM token on AWS (TLS verified against the shipped RDS CA bundle), DATABASE_URL locally.
 */
import pg from 'pg';
import {
  mapRecord,
  writeIngestErrors,
  writeMessages,
  type KinesisEvent,
  type MessageRow,
  type PoisonRecord,
} from '../../src/db/batch-writer.js';
import { isConnectionError } from '../../src/db/connection.js';
import { resolveConnection } from './database.js';

export interface BatchResponse {
  batchItemFailures: Array<{ itemIdentifier: string }>;
}

let pool: Promise<pg.Pool> | undefined;
/** Days whose partition exists, so a warm container calls the partition function only for a new day. */
const knownDays = new Set<string>();

/** The pool, created on first use from resolveConnection (secret, IAM token or URL; see database.ts). */
function getPool(): Promise<pg.Pool> {
  pool ??= (async () => {
    const { config } = await resolveConnection();
    const created = new pg.Pool({
      ...config,
      max: Number(process.env.PG_POOL_MAX ?? 2),
      connectionTimeoutMillis: Number(process.env.PG_CONNECT_TIMEOUT_MS ?? 5_000),
      idleTimeoutMillis: 60_000,
      application_name: 'iotctl-ingest-rds',
    });
    // An idle client whose server went away: the pool drops it; the next query reconnects.
    created.on('error', (error) => log('warn', 'idle PostgreSQL connection lost', { error: error.message }));
    return created;
  })().catch((error) => {
    pool = undefined;
    throw error;
  });
  return pool;
}

/**
 * Drops the pool after a connection or login error so the next invocation starts from fresh connections
 * and, with a secret, re-reads it (the password may have been rotated).
 */
function resetPool(): void {
  const old = pool;
  pool = undefined;
  knownDays.clear();
  old?.then((p) => p.end()).catch(() => undefined);
}

/** Ends the pool. Lambda never calls it; the local function runner does when it stops, and tests between servers. */
export async function close(): Promise<void> {
  const old = pool;
  pool = undefined;
  knownDays.clear();
  await (await old?.catch(() => undefined))?.end();
}

export async function handler(event: KinesisEvent): Promise<BatchResponse> {
  const records = event.Records ?? [];
  const receivedAt = new Date();
  const rows: MessageRow[] = [];
  const poison: PoisonRecord[] = [];
  for (const record of records) {
    const mapped = mapRecord(record, receivedAt);
    if (mapped.ok) rows.push(mapped.row);
    else poison.push(mapped.poison);
  }

  // Sequence numbers of the records now safely in PostgreSQL (as rows or as dead letters).
  const persisted = new Set<string>();
  try {
    const db = await getPool();
    let inserted: number;
    try {
      inserted = await writeMessages(db, rows, { knownDays });
    } catch (error) {
      if (!isDataError(error)) throw error;
      // A row PostgreSQL rejects for its content would fail the whole statement on every retry and
      // block the shard: find it row by row and dead-letter it.
      inserted = await writeRowByRow(db, rows, poison);
    }
    for (const row of rows) persisted.add(row.sequence_number);
    await writeIngestErrors(db, poison);
    for (const p of poison) persisted.add(p.sequence_number);
    if (poison.length) log('warn', 'records sent to iot_ingest_errors', { count: poison.length, reasons: [...new Set(poison.map((p) => p.reason))].slice(0, 5) });
    if (process.env.LOG_LEVEL === 'debug') log('debug', 'batch written', { records: records.length, inserted, duplicates: rows.length - inserted, deadLettered: poison.length });
    return { batchItemFailures: [] };
  } catch (error) {
    if (isConnectionError(error) || isLoginError(error)) resetPool();
    const failed = records.filter((r) => !persisted.has(r.kinesis.sequenceNumber));
    log('error', 'batch not written; reporting its records for retry', {
      error: (error as Error).message,
      code: (error as { code?: string }).code,
      failed: failed.length,
      records: records.length,
    });
    return { batchItemFailures: failed.map((r) => ({ itemIdentifier: r.kinesis.sequenceNumber })) };
  }
}

/** 28P01 (bad password) and 28000 (no such role / token refused): the credentials may have rotated or expired. */
function isLoginError(error: unknown): boolean {
  return /^28/.test((error as { code?: string }).code ?? '');
}

/** SQLSTATE classes 22 (data exception) and 23 (integrity violation): retrying the same row cannot help. */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: string }).code ?? '';
  return /^2[23]/.test(code);
}

/** Writes rows one at a time, moving those PostgreSQL rejects from `rows` to `poison`. */
async function writeRowByRow(db: pg.Pool, rows: MessageRow[], poison: PoisonRecord[]): Promise<number> {
  let inserted = 0;
  const kept: MessageRow[] = [];
  for (const row of rows) {
    try {
      inserted += await writeMessages(db, [row], { knownDays });
      kept.push(row);
    } catch (error) {
      if (!isDataError(error)) throw error;
      poison.push({
        stream: row.stream,
        shard_id: row.shard_id,
        sequence_number: row.sequence_number,
        reason: `rejected by PostgreSQL: ${(error as Error).message}`,
        raw_data: Buffer.from(JSON.stringify(row.payload)),
        received_at: row.received_at,
      });
    }
  }
  rows.splice(0, rows.length, ...kept);
  return inserted;
}

/** JSON lines, as CloudWatch Logs Insights parses them. LOG_LEVEL=debug adds a line per batch; silent drops all. */
function log(level: 'debug' | 'warn' | 'error', message: string, fields: Record<string, unknown>): void {
  if (process.env.LOG_LEVEL === 'silent') return;
  const line = JSON.stringify({ level, message, ...fields });
  if (level === 'error' || level === 'warn') console.error(line);
  else console.log(line);
}
