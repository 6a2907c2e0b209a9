import { hash } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import type { Db } from './store.js';
import { DestinationNotFoundError, type StreamSink } from './sinks.js';
import { StreamArgumentError } from '../../iot/stream/tail.js';

/**
 * The local Kinesis data stream, in the shared SQLite store.
 *
 * Kinesis semantics kept here: the MD5 of the partition key (a 128-bit integer) picks the shard whose hash key
 * range holds it, the ranges split the 128-bit space evenly; sequence numbers are large decimal strings that rise
 * per shard; records expire after the retention period; readers use shard iterators of the five Kinesis types.
 *
 * Storage: one rowid table per shard (`stream_<streamId>_<shard>`), so a put is a single append to one B-tree with
 * no secondary index (about 4x faster than one shared table with a (stream, shard, id) index) and a shard read is
 * a rowid range scan. The rowid is the record's position in the shard; trim never deletes a shard's newest row,
 * so rowids are never reused. The sequence number is the stream's id (a new one each time a stream is created),
 * the shard index and the rowid, zero-padded to 56 digits (AWS's length), so it also sorts as text and a sequence
 * number from a deleted incarnation of the stream is recognised as foreign.
 */

export const HASH_SPACE = 1n << 128n;
/** Kinesis limits: 1 MiB of data per record, partition keys of 1 to 256 characters. */
export const MAX_RECORD_BYTES = 1024 * 1024;
export const MAX_PARTITION_KEY_LENGTH = 256;
/** A Kinesis shard iterator is valid for 5 minutes after it is returned. */
export const ITERATOR_TTL_MS = 5 * 60_000;
export const LOCAL_ACCOUNT_ID = '000000000000';
const MAX_GET_RECORDS = 10_000;

export type ShardIteratorType = 'LATEST' | 'TRIM_HORIZON' | 'AT_SEQUENCE_NUMBER' | 'AFTER_SEQUENCE_NUMBER' | 'AT_TIMESTAMP';
export const SHARD_ITERATOR_TYPES: readonly ShardIteratorType[] = ['LATEST', 'TRIM_HORIZON', 'AT_SEQUENCE_NUMBER', 'AFTER_SEQUENCE_NUMBER', 'AT_TIMESTAMP'];

export interface StreamConfig {
  name: string;
  shards: number;
  retentionHours: number;
}

export interface ShardDescription {
  shardId: string;
  hashKeyRange: { startingHashKey: string; endingHashKey: string };
  sequenceNumberRange: { startingSequenceNumber: string | null; endingSequenceNumber: string | null };
  records: number;
  bytes: number;
}

export interface StreamDescription {
  name: string;
  arn: string;
  status: 'ACTIVE';
  shards: number;
  retentionHours: number;
  createdAt: Date;
  records: number;
  bytes: number;
  shardList: ShardDescription[];
}

export interface StreamSummary {
  name: string;
  arn: string;
  shards: number;
  retentionHours: number;
  createdAt: Date;
}

export interface StreamRecord {
  sequenceNumber: string;
  partitionKey: string;
  data: Buffer;
  /** ms since epoch */
  approximateArrivalTimestamp: number;
}

export interface GetRecordsResult {
  records: StreamRecord[];
  nextShardIterator: string;
  millisBehindLatest: number;
}

export { StreamArgumentError };
/** Kinesis ExpiredIteratorException: the iterator is older than 5 minutes; get a new one. */
export class ExpiredIteratorError extends Error {
  override name = 'ExpiredIteratorException';
}
/** Kinesis ResourceNotFoundException. */
export class StreamNotFoundError extends DestinationNotFoundError {
  constructor(stream: string) {
    super('stream', stream);
    this.name = 'ResourceNotFoundException';
  }
}

export function shardIdOf(index: number): string {
  return `shardId-${String(index).padStart(12, '0')}`;
}

export function shardIndexOf(shardId: string): number {
  const m = /^shardId-(\d{12})$/.exec(shardId);
  if (!m) throw new StreamArgumentError(`"${shardId}" is not a shard id (shardId-000000000000)`);
  return Number(m[1]);
}

/** The even split of the 128-bit hash key space into `shards` ranges, as CreateStream makes it. */
export function hashKeyRanges(shards: number): Array<{ start: bigint; end: bigint }> {
  const n = BigInt(shards);
  return Array.from({ length: shards }, (_, i) => ({ start: (HASH_SPACE * BigInt(i)) / n, end: (HASH_SPACE * BigInt(i + 1)) / n - 1n }));
}

/** MD5 of the partition key (UTF-8) as an unsigned 128-bit integer: the record's hash key. */
export function partitionKeyHash(partitionKey: string): bigint {
  // crypto.hash, the one-shot digest, is about 3x faster than createHash for short keys.
  return BigInt('0x' + hash('md5', partitionKey, 'hex'));
}

const ID_PAD = '0'.repeat(44);

/** '4' + stream id (7 digits) + shard index (4 digits) + rowid (44 digits): 56 digits. */
export function formatSequenceNumber(streamId: number, shardIndex: number, id: number): string {
  const rowid = String(id);
  return '4' + String(streamId).padStart(7, '0') + String(shardIndex).padStart(4, '0') + ID_PAD.slice(rowid.length) + rowid;
}

export function parseSequenceNumber(sequenceNumber: string): { streamId: number; shardIndex: number; id: number } {
  if (typeof sequenceNumber !== 'string' || !/^4\d{55}$/.test(sequenceNumber)) throw new StreamArgumentError(`"${sequenceNumber}" is not a sequence number`);
  return { streamId: Number(sequenceNumber.slice(1, 8)), shardIndex: Number(sequenceNumber.slice(8, 12)), id: Number(sequenceNumber.slice(12)) };
}

function shardTable(streamId: number, shard: number): string {
  return `stream_${streamId}_${shard}`;
}

export function streamArn(region: string, name: string): string {
  return `arn:aws:kinesis:${region}:${LOCAL_ACCOUNT_ID}:stream/${name}`;
}

/** The opaque position a shard iterator encodes: records after `afterId` that arrived at or after `minArrival`. */
interface IteratorPosition {
  streamId: number;
  shard: number;
  afterId: number;
  minArrival: number;
  issuedAt: number;
}

function encodeIterator(p: IteratorPosition): string {
  return Buffer.from(JSON.stringify([1, p.streamId, p.shard, p.afterId, p.minArrival, p.issuedAt])).toString('base64url');
}

function decodeIterator(iterator: string): IteratorPosition {
  try {
    const [v, streamId, shard, afterId, minArrival, issuedAt] = JSON.parse(Buffer.from(iterator, 'base64url').toString('utf8')) as number[];
    if (v === 1 && [streamId, shard, afterId, minArrival, issuedAt].every((n) => Number.isSafeInteger(n)))
      return { streamId: streamId!, shard: shard!, afterId: afterId!, minArrival: minArrival!, issuedAt: issuedAt! };
  } catch {
    // fall through
  }
  throw new StreamArgumentError('Invalid ShardIterator');
}

interface ShardStatements {
  table: string;
  insert: Statement;
  read: Statement;
  maxId: Statement;
  /** The first row at or after a rowid (binary search over arrival times). */
  rowAtOrAfter: Statement;
}

interface CachedStream {
  id: number;
  name: string;
  shards: number;
  /** End of each shard's hash key range, ascending; the record goes to the first shard whose end >= hash. */
  ends: bigint[];
  statements: ShardStatements[];
  loadedAt: number;
}

interface StreamRow {
  id: number;
  name: string;
  shards: number;
  retention_hours: number;
  created_at: number;
}

export interface LocalStreamsOptions {
  region?: string;
  /** ms since epoch; injected so retention can be tested. */
  clock?: () => number;
  /** How often start() trims expired records. */
  trimIntervalMs?: number;
}

/** How long putRecord trusts its cached stream metadata before re-reading it (another process may change it). */
const CACHE_TTL_MS = 1000;
/** Partition keys repeat (device ids), so their shard choice is cached; bounded so unique keys cannot grow it. */
const SHARD_CACHE_MAX = 50_000;

export class LocalStreams implements StreamSink {
  readonly region: string;
  private readonly clock: () => number;
  private readonly trimIntervalMs: number;
  /** Stream metadata and prepared statements by stream name (for puts) and by stream id (for iterators). */
  private readonly byName = new Map<string, CachedStream>();
  private readonly byId = new Map<number, CachedStream>();
  private readonly shardOfKey = new Map<string, number>();
  private readonly retentionRow = new Map<number, { hours: number; at: number }>();
  private trimTimer?: NodeJS.Timeout;
  private readonly selectStream: Statement;
  private readonly selectStreamById: Statement;
  private readonly putMany: (stream: string, records: Array<{ data: Uint8Array; partitionKey: string }>) => Array<{ shardId: string; sequenceNumber: string }>;

  constructor(
    private readonly db: Db,
    opts: LocalStreamsOptions = {},
  ) {
    this.region = opts.region ?? 'us-east-1';
    this.clock = opts.clock ?? Date.now;
    this.trimIntervalMs = opts.trimIntervalMs ?? 60_000;
    // AUTOINCREMENT: a re-created stream gets a new id, so its tables and sequence numbers are new too.
    db.exec(`CREATE TABLE IF NOT EXISTS stream_streams (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      name TEXT NOT NULL UNIQUE,
      shards INTEGER NOT NULL,
      retention_hours INTEGER NOT NULL,
      created_at INTEGER NOT NULL
    )`);
    this.selectStream = db.prepare('SELECT id, name, shards, retention_hours, created_at FROM stream_streams WHERE name = ?');
    this.selectStreamById = db.prepare('SELECT id, name, shards, retention_hours, created_at FROM stream_streams WHERE id = ?');
    const many = db.transaction((stream: string, records: Array<{ data: Uint8Array; partitionKey: string }>) => records.map((r) => this.putRecord(stream, r.data, r.partitionKey)));
    this.putMany = (stream, records) => (db.inTransaction ? records.map((r) => this.putRecord(stream, r.data, r.partitionKey)) : many(stream, records));
  }

  // ---- control plane ----

  /** Create the stream, or update its retention. Returns what changed. */
  ensureStream(config: StreamConfig): 'created' | 'updated' | 'unchanged' {
    validateConfig(config);
    const existing = this.selectStream.get(config.name) as StreamRow | undefined;
    this.forget(config.name);
    if (!existing) {
      this.db.transaction(() => {
        const id = Number(
          this.db.prepare('INSERT INTO stream_streams (name, shards, retention_hours, created_at) VALUES (?, ?, ?, ?)').run(config.name, config.shards, config.retentionHours, this.clock()).lastInsertRowid,
        );
        for (let shard = 0; shard < config.shards; shard++)
          this.db.exec(`CREATE TABLE IF NOT EXISTS ${shardTable(id, shard)} (id INTEGER PRIMARY KEY, partition_key TEXT NOT NULL, data BLOB NOT NULL, arrival INTEGER NOT NULL)`);
      })();
      return 'created';
    }
    if (existing.shards !== config.shards)
      throw new StreamArgumentError(
        `stream "${config.name}" has ${existing.shards} shard(s); changing it to ${config.shards} would need resharding, which the local stream does not do`,
      );
    if (existing.retention_hours === config.retentionHours) return 'unchanged';
    this.db.prepare('UPDATE stream_streams SET retention_hours = ? WHERE id = ?').run(config.retentionHours, existing.id);
    return 'updated';
  }

  /** Delete the stream and its records. Returns false if it did not exist. */
  deleteStream(name: string): boolean {
    const existing = this.selectStream.get(name) as StreamRow | undefined;
    this.forget(name);
    if (!existing) return false;
    this.db.transaction(() => {
      for (let shard = 0; shard < existing.shards; shard++) this.db.exec(`DROP TABLE IF EXISTS ${shardTable(existing.id, shard)}`);
      this.db.prepare('DELETE FROM stream_streams WHERE id = ?').run(existing.id);
    })();
    return true;
  }

  listStreams(): StreamSummary[] {
    const rows = this.db.prepare('SELECT id, name, shards, retention_hours, created_at FROM stream_streams ORDER BY name').all() as StreamRow[];
    return rows.map((r) => ({ name: r.name, arn: streamArn(this.region, r.name), shards: r.shards, retentionHours: r.retention_hours, createdAt: new Date(r.created_at) }));
  }

  hasStream(name: string): boolean {
    return this.selectStream.get(name) !== undefined;
  }

  describeStream(name: string): StreamDescription {
    const row = this.requireRow(name);
    const cutoff = this.clock() - row.retention_hours * 3_600_000;
    const shardList = hashKeyRanges(row.shards).map((range, i): ShardDescription => {
      const s = this.db
        .prepare(`SELECT COUNT(*) AS records, COALESCE(SUM(length(data)), 0) AS bytes, MIN(id) AS first_id FROM ${shardTable(row.id, i)} WHERE arrival >= ?`)
        .get(cutoff) as { records: number; bytes: number; first_id: number | null };
      return {
        shardId: shardIdOf(i),
        hashKeyRange: { startingHashKey: range.start.toString(), endingHashKey: range.end.toString() },
        // Open shards have no ending sequence number, as in Kinesis; the starting one is the oldest readable record.
        sequenceNumberRange: { startingSequenceNumber: s.first_id !== null ? formatSequenceNumber(row.id, i, s.first_id) : null, endingSequenceNumber: null },
        records: s.records,
        bytes: s.bytes,
      };
    });
    return {
      name: row.name,
      arn: streamArn(this.region, row.name),
      status: 'ACTIVE',
      shards: row.shards,
      retentionHours: row.retention_hours,
      createdAt: new Date(row.created_at),
      records: shardList.reduce((n, s) => n + s.records, 0),
      bytes: shardList.reduce((n, s) => n + s.bytes, 0),
      shardList,
    };
  }

  /** The shard ids of a stream, in order (ListShards). */
  listShards(name: string): string[] {
    const row = this.requireRow(name);
    return Array.from({ length: row.shards }, (_, i) => shardIdOf(i));
  }

  streamArn(name: string): string {
    return streamArn(this.region, name);
  }

  /**
   * A sequence number just below every record the shard will receive from now on: the position a LATEST
   * iterator starts from, in a form a consumer can persist and resume from with AFTER_SEQUENCE_NUMBER.
   */
  latestSequenceNumber(stream: string, shardId: string): string {
    const s = this.cachedByName(stream);
    const shard = this.shardIndexIn(s, stream, shardId);
    return formatSequenceNumber(s.id, shard, this.maxId(s, shard));
  }

  /** Unexpired records of a shard after a sequence number (all of them without one): a consumer's backlog. */
  countAfter(stream: string, shardId: string, sequenceNumber?: string): number {
    const s = this.cachedByName(stream);
    const shard = this.shardIndexIn(s, stream, shardId);
    let afterId = 0;
    if (sequenceNumber) {
      const seq = parseSequenceNumber(sequenceNumber);
      if (seq.streamId === s.id && seq.shardIndex === shard) afterId = seq.id;
    }
    const cutoff = this.clock() - this.retentionMs(s);
    return (this.db.prepare(`SELECT COUNT(*) AS n FROM ${s.statements[shard]!.table} WHERE id > ? AND arrival >= ?`).get(afterId, cutoff) as { n: number }).n;
  }

  // ---- data plane: writes ----

  /**
   * PutRecord. Synchronous and transaction-neutral: inside the caller's open transaction it simply becomes part
   * of it (the rules runtime commits puts together with its checkpoint); outside one it autocommits.
   */
  putRecord(stream: string, data: Uint8Array, partitionKey: string): { shardId: string; sequenceNumber: string } {
    const s = this.cachedByName(stream);
    if (typeof partitionKey !== 'string' || partitionKey.length < 1 || partitionKey.length > MAX_PARTITION_KEY_LENGTH)
      throw new StreamArgumentError(`the partition key must be 1 to ${MAX_PARTITION_KEY_LENGTH} characters long`);
    if (data.byteLength > MAX_RECORD_BYTES) throw new StreamArgumentError(`the record is ${data.byteLength} bytes; Kinesis records hold at most ${MAX_RECORD_BYTES} bytes`);
    const shard = this.shardFor(s, partitionKey);
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const id = Number(s.statements[shard]!.insert.run(partitionKey, buf, this.clock()).lastInsertRowid);
    return { shardId: shardIdOf(shard), sequenceNumber: formatSequenceNumber(s.id, shard, id) };
  }

  /** PutRecords: all records in one transaction (or in the caller's). */
  putRecords(stream: string, records: Array<{ data: Uint8Array; partitionKey: string }>): Array<{ shardId: string; sequenceNumber: string }> {
    return this.putMany(stream, records);
  }

  /**
   * Delete records older than their stream's retention period. Returns how many were deleted. A shard's newest
   * row always stays (reads skip it once expired), so the shard's rowids keep rising.
   */
  trim(now = this.clock()): number {
    let deleted = 0;
    for (const row of this.db.prepare('SELECT name FROM stream_streams').all() as Array<{ name: string }>) {
      const s = this.cachedByName(row.name);
      const cutoff = now - this.retentionMs(s);
      for (let shard = 0; shard < s.shards; shard++) {
        const boundary = this.firstIdArrivedAtOrAfter(s, shard, cutoff);
        deleted += this.db.prepare(`DELETE FROM ${s.statements[shard]!.table} WHERE id < ? AND arrival < ? AND id < (SELECT MAX(id) FROM ${s.statements[shard]!.table})`).run(boundary, cutoff).changes;
      }
    }
    return deleted;
  }

  /** Trim expired records periodically (the daemon calls this). */
  start(): void {
    if (this.trimTimer) return;
    this.trimTimer = setInterval(() => this.trim(), this.trimIntervalMs);
    this.trimTimer.unref();
  }

  stop(): void {
    clearInterval(this.trimTimer);
    this.trimTimer = undefined;
  }

  // ---- data plane: reads ----

  getShardIterator(
    stream: string,
    shardId: string,
    type: ShardIteratorType,
    opts: { sequenceNumber?: string; timestamp?: Date | number } = {},
  ): string {
    const s = this.cachedByName(stream);
    const shard = this.shardIndexIn(s, stream, shardId);
    const now = this.clock();
    const position = (afterId: number, minArrival = 0) => encodeIterator({ streamId: s.id, shard, afterId, minArrival, issuedAt: now });
    switch (type) {
      case 'TRIM_HORIZON':
        return position(0);
      case 'LATEST':
        return position(this.maxId(s, shard));
      case 'AT_SEQUENCE_NUMBER':
      case 'AFTER_SEQUENCE_NUMBER': {
        if (!opts.sequenceNumber) throw new StreamArgumentError(`${type} needs a StartingSequenceNumber`);
        const seq = parseSequenceNumber(opts.sequenceNumber);
        if (seq.streamId !== s.id) throw new StreamArgumentError(`sequence number ${opts.sequenceNumber} is not from stream "${stream}" (it may be from an earlier stream of that name)`);
        if (seq.shardIndex !== shard) throw new StreamArgumentError(`sequence number ${opts.sequenceNumber} does not belong to ${shardId}`);
        return position(type === 'AT_SEQUENCE_NUMBER' ? seq.id - 1 : seq.id);
      }
      case 'AT_TIMESTAMP': {
        if (opts.timestamp === undefined) throw new StreamArgumentError('AT_TIMESTAMP needs a Timestamp');
        const ts = typeof opts.timestamp === 'number' ? opts.timestamp : opts.timestamp.getTime();
        if (!Number.isFinite(ts)) throw new StreamArgumentError('the Timestamp is not a valid time');
        // Resolve the position now; the arrival filter stays on for records still to come.
        return position(this.firstIdArrivedAtOrAfter(s, shard, Math.trunc(ts)) - 1, Math.trunc(ts));
      }
      default:
        throw new StreamArgumentError(`unknown ShardIteratorType "${String(type)}"; use one of ${SHARD_ITERATOR_TYPES.join(', ')}`);
    }
  }

  /** GetRecords: up to `limit` records after the iterator's position, oldest first, never expired ones. */
  getRecords(iterator: string, limit = MAX_GET_RECORDS): GetRecordsResult {
    const p = decodeIterator(iterator);
    const now = this.clock();
    if (now - p.issuedAt > ITERATOR_TTL_MS) throw new ExpiredIteratorError('Iterator expired: shard iterators are valid for 5 minutes');
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_GET_RECORDS) throw new StreamArgumentError(`Limit must be 1 to ${MAX_GET_RECORDS}`);
    const s = this.cachedById(p.streamId);
    if (!s || p.shard >= s.shards) throw new StreamNotFoundError(`stream #${p.streamId} (it was deleted)`);
    const minArrival = Math.max(p.minArrival, now - this.retentionMs(s));
    // One row more than asked tells whether the reader is at the tip (MillisBehindLatest 0) without a second query.
    const rows = s.statements[p.shard]!.read.all(p.afterId, minArrival, limit + 1) as Array<{ id: number; partition_key: string; data: Buffer; arrival: number }>;
    const more = rows.length > limit;
    if (more) rows.pop();
    const records = rows.map((r) => ({
      sequenceNumber: formatSequenceNumber(s.id, p.shard, r.id),
      partitionKey: r.partition_key,
      data: r.data,
      approximateArrivalTimestamp: r.arrival,
    }));
    const last = rows[rows.length - 1];
    const next: IteratorPosition = last ? { ...p, afterId: last.id, minArrival: 0, issuedAt: now } : { ...p, issuedAt: now };
    return { records, nextShardIterator: encodeIterator(next), millisBehindLatest: more && last ? Math.max(0, now - last.arrival) : 0 };
  }

  // ---- internals ----

  private requireRow(name: string): StreamRow {
    const row = this.selectStream.get(name) as StreamRow | undefined;
    if (!row) throw new StreamNotFoundError(name);
    return row;
  }

  private retentionMs(s: CachedStream): number {
    // Retention can change under a running daemon (`apply`), so it is re-read at most once a second.
    const now = Date.now();
    const hit = this.retentionRow.get(s.id);
    if (hit && now - hit.at < CACHE_TTL_MS) return hit.hours * 3_600_000;
    const row = this.selectStreamById.get(s.id) as StreamRow | undefined;
    const hours = row?.retention_hours ?? 0;
    this.retentionRow.set(s.id, { hours, at: now });
    return hours * 3_600_000;
  }

  private shardIndexIn(s: CachedStream, stream: string, shardId: string): number {
    const shard = shardIndexOf(shardId);
    if (shard >= s.shards) throw new StreamNotFoundError(`${stream}/${shardId}`);
    return shard;
  }

  private maxId(s: CachedStream, shard: number): number {
    return (s.statements[shard]!.maxId.get() as { id: number | null }).id ?? 0;
  }

  /**
   * The first rowid whose arrival is at or after `ts` (or one past the newest row): a binary search over rowids,
   * since arrival times rise with rowids in a shard. O(log n) point lookups instead of a scan or an index.
   */
  private firstIdArrivedAtOrAfter(s: CachedStream, shard: number, ts: number): number {
    const st = s.statements[shard]!;
    let lo = 0;
    let hi = this.maxId(s, shard) + 1; // invariant: rows below lo arrived before ts; hi is at or after ts (or past the end)
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const row = st.rowAtOrAfter.get(mid) as { id: number; arrival: number } | undefined;
      if (!row || row.id >= hi) hi = mid;
      else if (row.arrival < ts) lo = row.id + 1;
      else hi = row.id;
    }
    return lo;
  }

  private forget(name: string): void {
    const hit = this.byName.get(name);
    if (hit) this.byId.delete(hit.id);
    this.byName.delete(name);
  }

  private load(row: StreamRow): CachedStream {
    const statements = Array.from({ length: row.shards }, (_, shard): ShardStatements => {
      const table = shardTable(row.id, shard);
      return {
        table,
        insert: this.db.prepare(`INSERT INTO ${table} (partition_key, data, arrival) VALUES (?, ?, ?)`),
        read: this.db.prepare(`SELECT id, partition_key, data, arrival FROM ${table} WHERE id > ? AND arrival >= ? ORDER BY id LIMIT ?`),
        maxId: this.db.prepare(`SELECT MAX(id) AS id FROM ${table}`),
        rowAtOrAfter: this.db.prepare(`SELECT id, arrival FROM ${table} WHERE id >= ? ORDER BY id LIMIT 1`),
      };
    });
    const s: CachedStream = { id: row.id, name: row.name, shards: row.shards, ends: hashKeyRanges(row.shards).map((r) => r.end), statements, loadedAt: Date.now() };
    this.byName.set(row.name, s);
    this.byId.set(row.id, s);
    return s;
  }

  private cachedByName(name: string): CachedStream {
    const now = Date.now();
    const hit = this.byName.get(name);
    if (hit && now - hit.loadedAt < CACHE_TTL_MS) return hit;
    const row = this.selectStream.get(name) as StreamRow | undefined;
    if (!row) {
      this.forget(name);
      throw new StreamNotFoundError(name);
    }
    if (hit && hit.id === row.id) {
      hit.loadedAt = now;
      return hit;
    }
    this.forget(name);
    return this.load(row);
  }

  private cachedById(id: number): CachedStream | undefined {
    const hit = this.byId.get(id);
    if (hit && Date.now() - hit.loadedAt < CACHE_TTL_MS) return hit;
    const row = this.selectStreamById.get(id) as StreamRow | undefined;
    if (!row) {
      if (hit) this.forget(hit.name);
      return undefined;
    }
    return this.cachedByName(row.name);
  }

  private shardFor(s: CachedStream, partitionKey: string): number {
    if (s.shards === 1) return 0;
    const key = `${s.shards}:${partitionKey}`;
    const known = this.shardOfKey.get(key);
    if (known !== undefined) return known;
    const hash = partitionKeyHash(partitionKey);
    let shard = 0;
    while (s.ends[shard]! < hash) shard++;
    if (this.shardOfKey.size >= SHARD_CACHE_MAX) this.shardOfKey.clear();
    this.shardOfKey.set(key, shard);
    return shard;
  }
}

function validateConfig(c: StreamConfig): void {
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(c.name)) throw new StreamArgumentError(`"${c.name}" is not a valid stream name (letters, digits, _ . -; 1-128 characters)`);
  if (!Number.isInteger(c.shards) || c.shards < 1 || c.shards > 64) throw new StreamArgumentError(`stream "${c.name}": shards must be 1 to 64`);
  if (!Number.isInteger(c.retentionHours) || c.retentionHours < 1 || c.retentionHours > 8760)
    throw new StreamArgumentError(`stream "${c.name}": retentionHours must be 1 to 8760`);
}

// ---- desired vs actual, for `iotctl apply` (pure) ----

/** The spec's streams as plan Resources. A shard count change shows as a replace (the local stream cannot reshard). */
export function desiredStreamResources(spec: { streams: StreamConfig[] }): Array<{ kind: 'stream'; name: string; config: { shards: number; retentionHours: number } }> {
  return spec.streams.map((s) => ({ kind: 'stream', name: s.name, config: { shards: s.shards, retentionHours: s.retentionHours } }));
}

export function actualStreamResources(streams: Array<Pick<StreamSummary, 'name' | 'shards' | 'retentionHours'>>): Array<{ kind: 'stream'; name: string; config: { shards: number; retentionHours: number } }> {
  return streams.map((s) => ({ kind: 'stream', name: s.name, config: { shards: s.shards, retentionHours: s.retentionHours } }));
}
