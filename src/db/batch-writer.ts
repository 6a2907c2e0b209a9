import type { Queryable } from './connection.js';

/**
 * The ingest path shared by the ingest-rds Lambda template and the local platform: map Kinesis
 * records to rows (pure), and write a batch of rows in one statement that retries make idempotent.
 */

/** One record of a Lambda Kinesis event (`event.Records[i]`). */
export interface KinesisEventRecord {
  kinesis: {
    kinesisSchemaVersion?: string;
    partitionKey: string;
    sequenceNumber: string;
    /** Base64 of the record's bytes. */
    data: string;
    /** Seconds since the epoch, with a fraction (e.g. 1545084650.987). */
    approximateArrivalTimestamp: number;
  };
  eventSource?: string;
  eventVersion?: string;
  /** `shardId-000000000000:<sequenceNumber>` */
  eventID: string;
  eventName?: string;
  invokeIdentityArn?: string;
  awsRegion?: string;
  /** `arn:aws:kinesis:<region>:<account>:stream/<name>` */
  eventSourceARN: string;
}

export interface KinesisEvent {
  Records: KinesisEventRecord[];
}

export interface MessageRow {
  message_id: string;
  device_id: string;
  ts: Date;
  topic: string | null;
  payload: Record<string, unknown>;
  stream: string;
  shard_id: string;
  sequence_number: string;
  received_at: Date;
}

/** A record that can never become a row, kept for the dead-letter table. */
export interface PoisonRecord {
  stream: string;
  shard_id: string;
  sequence_number: string;
  reason: string;
  raw_data: Buffer;
  received_at: Date;
}

export type MappedRecord = { ok: true; row: MessageRow } | { ok: false; poison: PoisonRecord };

/** Epoch numbers below this are taken as seconds, not milliseconds (1e11 ms is March 1973). */
const SECONDS_CUTOFF = 1e11;

/**
 * Maps one Kinesis record to a row, or says why it never can (not JSON, not a JSON object, text
 * PostgreSQL's jsonb rejects). Pure: the same record always maps to the same row (except
 * received_at, which is given).
 */
export function mapRecord(record: KinesisEventRecord, receivedAt: Date = new Date()): MappedRecord {
  const stream = streamName(record.eventSourceARN);
  const shardId = shardIdOf(record);
  const sequenceNumber = record.kinesis.sequenceNumber;
  const raw = Buffer.from(record.kinesis.data ?? '', 'base64');
  const poison = (reason: string): MappedRecord => ({
    ok: false,
    poison: { stream, shard_id: shardId, sequence_number: sequenceNumber, reason, raw_data: raw, received_at: receivedAt },
  });

  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
  } catch (error) {
    if (error instanceof TypeError) return poison('not UTF-8 text');
    return poison(`not JSON: ${(error as Error).message}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    return poison(`not a JSON object (got ${doc === null ? 'null' : Array.isArray(doc) ? 'an array' : typeof doc})`);
  }
  const payload = doc as Record<string, unknown>;
  const unstorable = findUnstorableText(payload);
  if (unstorable) return poison(`jsonb cannot store ${unstorable}`);

  const arrivalMs = Math.round(record.kinesis.approximateArrivalTimestamp * 1000);
  return {
    ok: true,
    row: {
      message_id: idText(payload.message_id) ?? `kinesis:${stream}:${shardId}:${sequenceNumber}`,
      device_id: idText(payload.device_id) ?? record.kinesis.partitionKey,
      ts: new Date(parseTimestamp(payload.ts) ?? arrivalMs),
      topic: typeof payload.topic === 'string' ? payload.topic : null,
      payload,
      stream,
      shard_id: shardId,
      sequence_number: sequenceNumber,
      received_at: receivedAt,
    },
  };
}

export function streamName(eventSourceARN: string): string {
  const slash = eventSourceARN.indexOf(':stream/');
  return slash >= 0 ? eventSourceARN.slice(slash + ':stream/'.length) : eventSourceARN;
}

function shardIdOf(record: KinesisEventRecord): string {
  const colon = record.eventID.indexOf(':');
  return colon > 0 ? record.eventID.slice(0, colon) : record.eventID;
}

function idText(value: unknown): string | undefined {
  if (typeof value === 'string' && value.length > 0) return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** Epoch milliseconds (or seconds, see SECONDS_CUTOFF), a numeric string, or an ISO 8601 string; undefined otherwise. */
export function parseTimestamp(value: unknown): number | undefined {
  let ms: number | undefined;
  if (typeof value === 'number') ms = value;
  else if (typeof value === 'string' && value.trim() !== '') {
    ms = /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : Date.parse(value);
  }
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return undefined;
  if (ms < SECONDS_CUTOFF) ms *= 1000;
  // Outside what a Date (and timestamptz) can hold: fall back to the arrival time.
  return ms <= 8.64e15 ? Math.round(ms) : undefined;
}

/** PostgreSQL's jsonb rejects NUL characters and unpaired UTF-16 surrogates; find the first, if any. */
function findUnstorableText(value: unknown, depth = 0): string | undefined {
  if (typeof value === 'string') {
    if (value.includes('\u0000')) return 'a NUL character (\\u0000)';
    if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(value)) return 'an unpaired UTF-16 surrogate';
    return undefined;
  }
  if (value === null || typeof value !== 'object' || depth > 200) return undefined;
  if (Array.isArray(value)) {
    for (const item of value) {
      const found = findUnstorableText(item, depth + 1);
      if (found) return found;
    }
    return undefined;
  }
  for (const [key, item] of Object.entries(value)) {
    const found = findUnstorableText(key, depth + 1) ?? findUnstorableText(item, depth + 1);
    if (found) return found;
  }
  return undefined;
}

const DAY_MS = 86_400_000;

export interface WriteOptions {
  /** Partitions are created for days within [now - pastDays, now + futureDays]; rows outside go to the default partition. */
  now?: Date;
  pastDays?: number;
  futureDays?: number;
  /**
   * Days whose partition is known to exist (a warm function's memory): writeMessages calls the partition
   * function only for the others, and adds them here once it has. A day retention dropped since is harmless:
   * its late rows land in the default partition.
   */
  knownDays?: Set<string>;
}

/** UTC days (YYYY-MM-DD) of the rows that need a partition, sorted so concurrent writers lock in one order. */
export function partitionDays(rows: readonly Pick<MessageRow, 'ts'>[], opts: WriteOptions = {}): string[] {
  const now = (opts.now ?? new Date()).getTime();
  const lo = Math.floor((now - (opts.pastDays ?? 400) * DAY_MS) / DAY_MS);
  const hi = Math.floor((now + (opts.futureDays ?? 2) * DAY_MS) / DAY_MS);
  const days = new Set<number>();
  for (const row of rows) {
    const day = Math.floor(row.ts.getTime() / DAY_MS);
    if (day >= lo && day <= hi) days.add(day);
  }
  return [...days].sort((a, b) => a - b).map((d) => new Date(d * DAY_MS).toISOString().slice(0, 10));
}

/** Creates the missing day partitions (one round trip; a no-op when they all exist). */
export async function ensurePartitions(client: Queryable, days: readonly string[]): Promise<number> {
  if (days.length === 0) return 0;
  const { rows } = await client.query<{ created: number }>(
    'SELECT count(*) FILTER (WHERE iotctl_ensure_day_partition(d))::int AS created FROM unnest($1::date[]) AS d',
    [days],
  );
  return rows[0]?.created ?? 0;
}

// The payloads travel as one JSON array parsed once by jsonb_array_elements: a text[] of JSON
// documents costs ~2.5x more (pg escapes every quote client-side, then each element is re-parsed).
// ROWS FROM zips the arrays by position.
const INSERT_MESSAGES = `
INSERT INTO iot_messages (message_id, device_id, ts, topic, payload, stream, shard_id, sequence_number, received_at)
SELECT message_id, device_id, ts, topic, payload, stream, shard_id, sequence_number, received_at
FROM ROWS FROM (
  unnest($1::text[]), unnest($2::text[]), unnest($3::timestamptz[]), unnest($4::text[]), jsonb_array_elements($5::jsonb),
  unnest($6::text[]), unnest($7::text[]), unnest($8::text[]), unnest($9::timestamptz[])
) AS r(message_id, device_id, ts, topic, payload, stream, shard_id, sequence_number, received_at)
ON CONFLICT DO NOTHING`;

/**
 * Writes a batch in one INSERT .. SELECT FROM unnest(..) ON CONFLICT DO NOTHING (after making sure
 * the partitions for its days exist). Returns how many rows were new; duplicates of rows already
 * written (a retried batch, a re-put message) are skipped.
 */
export async function writeMessages(client: Queryable, rows: readonly MessageRow[], opts: WriteOptions = {}): Promise<number> {
  if (rows.length === 0) return 0;
  const days = partitionDays(rows, opts).filter((d) => !opts.knownDays?.has(d));
  await ensurePartitions(client, days);
  const n = rows.length;
  const ids = new Array<string>(n);
  const devices = new Array<string>(n);
  const times = new Array<string>(n);
  const topics = new Array<string | null>(n);
  const payloads = new Array<Record<string, unknown>>(n);
  const streams = new Array<string>(n);
  const shards = new Array<string>(n);
  const seqs = new Array<string>(n);
  const received = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    ids[i] = r.message_id;
    devices[i] = r.device_id;
    times[i] = r.ts.toISOString();
    topics[i] = r.topic;
    payloads[i] = r.payload;
    streams[i] = r.stream;
    shards[i] = r.shard_id;
    seqs[i] = r.sequence_number;
    received[i] = r.received_at.toISOString();
  }
  const result = await client.query(INSERT_MESSAGES, [ids, devices, times, topics, JSON.stringify(payloads), streams, shards, seqs, received]);
  for (const d of days) opts.knownDays?.add(d);
  return result.rowCount ?? 0;
}

/** Writes dead letters; a record already recorded (a retried batch) is not added again. */
export async function writeIngestErrors(client: Queryable, records: readonly PoisonRecord[]): Promise<number> {
  if (records.length === 0) return 0;
  const result = await client.query(
    `INSERT INTO iot_ingest_errors (received_at, stream, shard_id, sequence_number, reason, raw_data)
     SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[])
     ON CONFLICT (stream, shard_id, sequence_number) DO NOTHING`,
    [
      records.map((r) => r.received_at.toISOString()),
      records.map((r) => r.stream),
      records.map((r) => r.shard_id),
      records.map((r) => r.sequence_number),
      records.map((r) => r.reason),
      records.map((r) => r.raw_data),
    ],
  );
  return result.rowCount ?? 0;
}
