import { randomUUID } from 'node:crypto';
import type { Db } from './store.js';
import type { EventSourceSpec } from '../../spec/schema.js';
import { ExpiredIteratorError, LOCAL_ACCOUNT_ID, StreamArgumentError, StreamNotFoundError, type LocalStreams, type StreamRecord } from './stream.js';
import { functionArn, type LocalFunctions } from './functions.js';

/**
 * The Kinesis event source mapping, with AWS's semantics:
 * - every shard is polled independently and processed in order; shards run in parallel;
 * - a batch holds up to BatchSize records (and at most 6 MB of event), gathered for up to
 *   MaximumBatchingWindowInSeconds once the first record is in;
 * - a shard without a checkpoint starts at StartingPosition; the per-shard checkpoint is committed to SQLite only
 *   after its records were handled, so a restart resumes exactly there (at-least-once, like Lambda);
 * - a function error retries the batch up to MaximumRetryAttempts (-1: until the records expire); with
 *   BisectBatchOnFunctionError the failed batch is split in two first, and splits do not use up retries;
 * - ReportBatchItemFailures: the checkpoint moves to just before the lowest failed sequence number and the rest
 *   is retried; an empty, null or unknown itemIdentifier fails the whole batch;
 * - records older than MaximumRecordAgeInSeconds are discarded; discarded records (age or retries exhausted)
 *   are described in the on-failure destination and the shard moves on, so a poison batch never blocks it.
 */

/** Lambda's invocation payload limit for synchronous invocations. */
const MAX_EVENT_BYTES = 6 * 1024 * 1024;
/** Per-record JSON overhead of the Kinesis event (keys, ARNs, ids), on top of base64 data and partition key. */
const RECORD_OVERHEAD_BYTES = 512;

export interface EventSourceMappingOptions {
  db: Db;
  streams: LocalStreams;
  functions: LocalFunctions;
  functionName: string;
  config: EventSourceSpec;
  clock?: () => number;
  /** How often an idle shard is polled (AWS polls each shard about once per second; locally faster). */
  pollIntervalMs?: number;
  /** Backoff before a retry: base * 2^(attempt-1), capped. */
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
  /** The daemon's log, for what cannot go to the function's log. */
  log?: (line: string) => void;
}

export interface EventSourceMappingStats {
  functionName: string;
  stream: string;
  state: 'Creating' | 'Enabled' | 'WaitingForStream' | 'Disabled';
  /** Invocations made. */
  batches: number;
  /** Records the function handled successfully. */
  records: number;
  /** Invocations that failed (function error, timeout, or a partial batch failure). */
  errors: number;
  retries: number;
  /** Records sent to the on-failure destination (retries exhausted or too old). */
  discarded: number;
  /** Age of the last record read, across shards (0 when caught up): Lambda's IteratorAge metric. */
  iteratorAgeMs: number;
  shards: Array<{ shardId: string; checkpoint: string | null; iteratorAgeMs: number }>;
}

type Outcome = { kind: 'ok' } | { kind: 'partial'; index: number } | { kind: 'error'; requestId: string };

interface Segment {
  records: StreamRecord[];
  /** Failed invocations of this segment's first record so far. */
  attempts: number;
}

export class EventSourceMappingRunner {
  readonly functionName: string;
  readonly config: EventSourceSpec;
  private readonly db: Db;
  private readonly streams: LocalStreams;
  private readonly functions: LocalFunctions;
  private readonly clock: () => number;
  private readonly pollIntervalMs: number;
  private readonly retryBaseDelayMs: number;
  private readonly retryMaxDelayMs: number;
  private readonly log?: (line: string) => void;
  private running = false;
  private loops: Promise<void>[] = [];
  private main?: Promise<void>;
  private wake = new Set<() => void>();
  private state: EventSourceMappingStats['state'] = 'Disabled';
  private readonly counters = { batches: 0, records: 0, errors: 0, retries: 0, discarded: 0 };
  private readonly shardAge = new Map<string, number>();
  private lastRequestId = new Map<string, string>();

  constructor(opts: EventSourceMappingOptions) {
    this.db = opts.db;
    this.streams = opts.streams;
    this.functions = opts.functions;
    this.functionName = opts.functionName;
    this.config = opts.config;
    this.clock = opts.clock ?? Date.now;
    this.pollIntervalMs = opts.pollIntervalMs ?? 200;
    this.retryBaseDelayMs = opts.retryBaseDelayMs ?? 1000;
    this.retryMaxDelayMs = opts.retryMaxDelayMs ?? 30_000;
    this.log = opts.log;
    ensureCheckpointTable(this.db);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.state = 'Creating';
    this.main = this.run();
  }

  /** Stop polling; waits for the batch in flight (its checkpoint is written if it completes). */
  async stop(): Promise<void> {
    this.running = false;
    for (const w of this.wake) w();
    await this.main;
    await Promise.all(this.loops);
    this.state = 'Disabled';
  }

  stats(): EventSourceMappingStats {
    const checkpoints = new Map(
      (this.db.prepare('SELECT shard_id, sequence_number FROM lambda_esm_checkpoints WHERE function_name = ? AND stream = ?').all(this.functionName, this.config.stream) as Array<{ shard_id: string; sequence_number: string }>).map((r) => [r.shard_id, r.sequence_number]),
    );
    const shards = [...new Set([...this.shardAge.keys(), ...checkpoints.keys()])].sort().map((shardId) => ({ shardId, checkpoint: checkpoints.get(shardId) ?? null, iteratorAgeMs: this.shardAge.get(shardId) ?? 0 }));
    return {
      functionName: this.functionName,
      stream: this.config.stream,
      state: this.state,
      ...this.counters,
      iteratorAgeMs: Math.max(0, ...shards.map((s) => s.iteratorAgeMs)),
      shards,
    };
  }

  // ---- the loops ----

  private async run(): Promise<void> {
    // The function may be deployed before its stream exists (`local up` creates streams from the spec).
    while (this.running && !this.streams.hasStream(this.config.stream)) {
      this.state = 'WaitingForStream';
      await this.sleep(this.pollIntervalMs * 5);
    }
    if (!this.running) return;
    this.state = 'Enabled';
    this.loops = this.streams.listShards(this.config.stream).map((shardId) => this.runShard(shardId));
  }

  private async runShard(shardId: string): Promise<void> {
    this.shardAge.set(shardId, 0);
    let iterator: string | undefined;
    while (this.running) {
      try {
        iterator ??= this.startIterator(shardId);
        const batch = await this.collectBatch(shardId, iterator);
        iterator = batch.next;
        if (!batch.records.length) continue;
        await this.processBatch(shardId, batch.records);
        // Resume from the checkpoint: after a fully handled batch it is the batch's last record.
        iterator = undefined;
      } catch (err) {
        iterator = undefined;
        if (err instanceof StreamNotFoundError) {
          this.state = 'WaitingForStream';
          await this.sleep(this.pollIntervalMs * 5);
          if (this.streams.hasStream(this.config.stream)) this.state = 'Enabled';
        } else if (!(err instanceof ExpiredIteratorError)) {
          this.logLine('ERROR', `event source mapping ${this.config.stream}/${shardId}: ${(err as Error).message}`);
          await this.sleep(this.retryBaseDelayMs);
        }
      }
    }
  }

  private startIterator(shardId: string): string {
    const stream = this.config.stream;
    const checkpoint = this.checkpointOf(shardId);
    if (checkpoint) {
      try {
        return this.streams.getShardIterator(stream, shardId, 'AFTER_SEQUENCE_NUMBER', { sequenceNumber: checkpoint });
      } catch (err) {
        if (!(err instanceof StreamArgumentError)) throw err;
        // The stream was deleted and created again: the old checkpoint means nothing in the new one.
        this.logLine('WARN', `event source mapping: checkpoint ${checkpoint} of ${stream}/${shardId} is not valid in the stream any more (${err.message}); starting at ${this.config.startingPosition}`);
      }
    }
    switch (this.config.startingPosition) {
      case 'TRIM_HORIZON':
        return this.streams.getShardIterator(stream, shardId, 'TRIM_HORIZON');
      case 'AT_TIMESTAMP':
        return this.streams.getShardIterator(stream, shardId, 'AT_TIMESTAMP', { timestamp: parseStartingTimestamp(this.config.startingPositionTimestamp) });
      case 'LATEST': {
        // Pin LATEST at the mapping's creation, so a restart before the first batch does not skip records.
        const position = this.streams.latestSequenceNumber(stream, shardId);
        this.writeCheckpoint(shardId, position);
        return this.streams.getShardIterator(stream, shardId, 'AFTER_SEQUENCE_NUMBER', { sequenceNumber: position });
      }
    }
  }

  /** Read until the batch is full, the event would pass 6 MB, or the batching window closes. */
  private async collectBatch(shardId: string, iterator: string): Promise<{ records: StreamRecord[]; next: string }> {
    const records: StreamRecord[] = [];
    const windowMs = this.config.maximumBatchingWindowSeconds * 1000;
    let windowStart = 0;
    let bytes = 0;
    let next = iterator;
    while (this.running) {
      const res = this.streams.getRecords(next, this.config.batchSize - records.length);
      next = res.nextShardIterator;
      for (const r of res.records) {
        const size = Math.ceil(r.data.length / 3) * 4 + r.partitionKey.length + RECORD_OVERHEAD_BYTES;
        if (records.length && bytes + size > MAX_EVENT_BYTES) {
          // The event is full: continue the next batch right after the last record taken.
          next = this.streams.getShardIterator(this.config.stream, shardId, 'AFTER_SEQUENCE_NUMBER', { sequenceNumber: records[records.length - 1]!.sequenceNumber });
          return { records, next };
        }
        bytes += size;
        records.push(r);
      }
      const last = res.records[res.records.length - 1];
      this.shardAge.set(shardId, last ? Math.max(0, this.clock() - last.approximateArrivalTimestamp) : records.length ? this.shardAge.get(shardId)! : 0);
      if (records.length >= this.config.batchSize) break;
      if (records.length && !windowStart) windowStart = Date.now();
      if (records.length && (windowMs === 0 || Date.now() - windowStart >= windowMs)) break;
      const wait = records.length ? Math.min(this.pollIntervalMs, windowMs - (Date.now() - windowStart)) : this.pollIntervalMs;
      await this.sleep(wait);
    }
    return { records, next };
  }

  /** Handle one batch to completion: success, or records discarded to the on-failure destination. */
  private async processBatch(shardId: string, batch: StreamRecord[]): Promise<void> {
    const queue: Segment[] = [{ records: batch, attempts: 0 }];
    while (queue.length && this.running) {
      const seg = queue[0]!;
      if (this.config.maximumRecordAgeInSeconds >= 0) {
        const cutoff = this.clock() - this.config.maximumRecordAgeInSeconds * 1000;
        let expired = seg.records.findIndex((r) => r.approximateArrivalTimestamp >= cutoff);
        if (expired === -1) expired = seg.records.length;
        if (expired > 0) {
          this.discard(shardId, seg.records.slice(0, expired), 'RecordAgeExceeded', seg.attempts);
          seg.records = seg.records.slice(expired);
          if (!seg.records.length) {
            queue.shift();
            continue;
          }
        }
      }

      const outcome = await this.invoke(shardId, seg.records);
      if (outcome.kind === 'ok') {
        this.writeCheckpoint(shardId, seg.records[seg.records.length - 1]!.sequenceNumber);
        this.counters.records += seg.records.length;
        queue.shift();
        continue;
      }
      this.counters.errors++;
      if (outcome.kind === 'partial') {
        if (outcome.index > 0) {
          // Everything before the lowest failed record is done.
          this.writeCheckpoint(shardId, seg.records[outcome.index - 1]!.sequenceNumber);
          this.counters.records += outcome.index;
          seg.records = seg.records.slice(outcome.index);
          seg.attempts = 1;
        } else seg.attempts++;
      } else if (this.config.bisectBatchOnFunctionError && seg.records.length > 1) {
        const half = Math.ceil(seg.records.length / 2);
        queue.splice(0, 1, { records: seg.records.slice(0, half), attempts: seg.attempts }, { records: seg.records.slice(half), attempts: seg.attempts });
        continue;
      } else seg.attempts++;

      const maxRetries = this.config.maximumRetryAttempts;
      if (maxRetries >= 0 && seg.attempts > maxRetries) {
        this.discard(shardId, seg.records, 'RetryAttemptsExhausted', seg.attempts);
        queue.shift();
        continue;
      }
      this.counters.retries++;
      await this.sleep(Math.min(this.retryMaxDelayMs, this.retryBaseDelayMs * 2 ** (seg.attempts - 1)));
    }
  }

  private async invoke(shardId: string, records: StreamRecord[]): Promise<Outcome> {
    this.counters.batches++;
    let result;
    try {
      result = await this.functions.invoke(this.functionName, this.kinesisEvent(shardId, records));
    } catch (err) {
      // The function could not be invoked at all (deleted, artifact missing): retried like a function error.
      this.logLine('ERROR', `event source mapping could not invoke ${this.functionName}: ${(err as Error).message}`);
      return { kind: 'error', requestId: randomUUID() };
    }
    this.lastRequestId.set(shardId, result.requestId);
    if (result.functionError) return { kind: 'error', requestId: result.requestId };
    if (!this.config.reportBatchItemFailures) return { kind: 'ok' };
    return interpretBatchResponse(result.payload, records);
  }

  kinesisEvent(shardId: string, records: StreamRecord[]): { Records: unknown[] } {
    const region = this.streams.region;
    const eventSourceARN = this.streams.streamArn(this.config.stream);
    const invokeIdentityArn = `arn:aws:iam::${LOCAL_ACCOUNT_ID}:role/iotctl-lambda-${this.functionName}`;
    return {
      Records: records.map((r) => ({
        kinesis: {
          kinesisSchemaVersion: '1.0',
          partitionKey: r.partitionKey,
          sequenceNumber: r.sequenceNumber,
          data: r.data.toString('base64'),
          approximateArrivalTimestamp: r.approximateArrivalTimestamp / 1000,
        },
        eventSource: 'aws:kinesis',
        eventVersion: '1.0',
        eventID: `${shardId}:${r.sequenceNumber}`,
        eventName: 'aws:kinesis:record',
        invokeIdentityArn,
        awsRegion: region,
        eventSourceARN,
      })),
    };
  }

  /** Describe the records in the on-failure destination, move the checkpoint past them, in one commit. */
  private discard(shardId: string, records: StreamRecord[], condition: 'RetryAttemptsExhausted' | 'RecordAgeExceeded', invokeCount: number): void {
    const first = records[0]!;
    const last = records[records.length - 1]!;
    const record: Record<string, unknown> = {
      requestContext: {
        requestId: this.lastRequestId.get(shardId) ?? randomUUID(),
        functionArn: functionArn(this.functions.region, this.functionName),
        condition,
        approximateInvokeCount: invokeCount,
      },
      ...(invokeCount > 0 ? { responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' } } : {}),
      version: '1.0',
      timestamp: new Date(this.clock()).toISOString(),
      KinesisBatchInfo: {
        shardId,
        startSequenceNumber: first.sequenceNumber,
        endSequenceNumber: last.sequenceNumber,
        approximateArrivalOfFirstRecord: new Date(first.approximateArrivalTimestamp).toISOString(),
        approximateArrivalOfLastRecord: new Date(last.approximateArrivalTimestamp).toISOString(),
        batchSize: records.length,
        streamArn: this.streams.streamArn(this.config.stream),
      },
    };
    this.db.transaction(() => {
      this.functions.recordFailure(this.functionName, this.config.onFailure ?? '(none: discarded)', record);
      this.writeCheckpoint(shardId, last.sequenceNumber);
    })();
    this.counters.discarded += records.length;
    this.logLine(
      'WARN',
      `event source mapping discarded ${records.length} record(s) of ${this.config.stream}/${shardId} (${condition}), sequence numbers ${first.sequenceNumber}..${last.sequenceNumber}` +
        (this.config.onFailure ? `; details in on-failure destination "${this.config.onFailure}"` : '; no onFailure destination is configured'),
    );
  }

  // ---- helpers ----

  private checkpointOf(shardId: string): string | undefined {
    const row = this.db.prepare('SELECT sequence_number FROM lambda_esm_checkpoints WHERE function_name = ? AND stream = ? AND shard_id = ?').get(this.functionName, this.config.stream, shardId) as
      | { sequence_number: string }
      | undefined;
    return row?.sequence_number;
  }

  private writeCheckpoint(shardId: string, sequenceNumber: string): void {
    this.db
      .prepare(
        `INSERT INTO lambda_esm_checkpoints (function_name, stream, shard_id, sequence_number, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (function_name, stream, shard_id) DO UPDATE SET sequence_number = excluded.sequence_number, updated_at = excluded.updated_at`,
      )
      .run(this.functionName, this.config.stream, shardId, sequenceNumber, this.clock());
  }

  /**
   * Event source mapping messages go to the function's log, where `lambda logs` shows them. Logging must not
   * throw: it is called from the shard loop's error handler, and a full disk (SQLITE_FULL) there was an
   * unhandled rejection that took the whole daemon down.
   */
  private logLine(level: string, message: string): void {
    try {
      this.db.prepare('INSERT INTO lambda_logs (function_name, request_id, ts, level, message) VALUES (?, NULL, ?, ?, ?)').run(this.functionName, this.clock(), level, message);
    } catch (e) {
      this.log?.(`event source mapping ${this.functionName}: could not write its log (${(e as Error).message}): ${level} ${message}`);
    }
  }

  private sleep(ms: number): Promise<void> {
    if (!this.running || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake.add(done);
    });
  }
}

/**
 * ReportBatchItemFailures: no response, or no/empty batchItemFailures, is full success; a valid list resumes at
 * the lowest failed record; an empty, null or unknown itemIdentifier (or a malformed list) fails the whole batch.
 */
export function interpretBatchResponse(payload: unknown, records: StreamRecord[]): Outcome {
  if (payload === null || payload === undefined || typeof payload !== 'object') return { kind: 'ok' };
  const failures = (payload as { batchItemFailures?: unknown }).batchItemFailures;
  if (failures === null || failures === undefined) return { kind: 'ok' };
  if (!Array.isArray(failures)) return { kind: 'error', requestId: '' };
  if (!failures.length) return { kind: 'ok' };
  const index = new Map(records.map((r, i) => [r.sequenceNumber, i]));
  let lowest = Infinity;
  for (const f of failures) {
    const id = (f as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    const i = typeof id === 'string' && id ? index.get(id) : undefined;
    if (i === undefined) return { kind: 'error', requestId: '' };
    lowest = Math.min(lowest, i);
  }
  return { kind: 'partial', index: lowest };
}

function parseStartingTimestamp(value: string | undefined): number {
  if (value === undefined) throw new Error('startingPosition AT_TIMESTAMP needs startingPositionTimestamp (ISO time or Unix seconds)');
  const ms = /^\d+(\.\d+)?$/.test(value) ? Number(value) * 1000 : Date.parse(value);
  if (!Number.isFinite(ms)) throw new Error(`startingPositionTimestamp "${value}" is not an ISO time or Unix seconds`);
  return ms;
}

export function ensureCheckpointTable(db: Db): void {
  db.exec(`CREATE TABLE IF NOT EXISTS lambda_esm_checkpoints (
    function_name TEXT NOT NULL,
    stream TEXT NOT NULL,
    shard_id TEXT NOT NULL,
    sequence_number TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (function_name, stream, shard_id)
  )`);
}

/**
 * The daemon's set of event source mappings: one runner per deployed function that has an eventSource, kept in
 * step with the store, so `lambda deploy` from another process takes effect without a restart.
 */
export class EventSourceMappings {
  private readonly runners = new Map<string, { runner: EventSourceMappingRunner; key: string }>();
  private timer?: NodeJS.Timeout;
  private reconciling: Promise<void> = Promise.resolve();

  constructor(private readonly opts: Omit<EventSourceMappingOptions, 'functionName' | 'config'> & { reconcileIntervalMs?: number; log?: (line: string) => void }) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.reconcile(), this.opts.reconcileIntervalMs ?? 1000);
    this.timer.unref();
    void this.reconcile();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.reconciling;
    await Promise.all([...this.runners.values()].map((r) => r.runner.stop()));
    this.runners.clear();
  }

  stats(): EventSourceMappingStats[] {
    return [...this.runners.values()].map((r) => r.runner.stats());
  }

  /** Start, restart (changed settings) or stop runners to match the deployed functions. */
  reconcile(): Promise<void> {
    this.reconciling = this.reconciling.then(async () => {
      const wanted = new Map<string, EventSourceSpec>();
      for (const fn of this.opts.functions.list()) if (fn.eventSource) wanted.set(fn.name, fn.eventSource);
      for (const [name, { runner, key }] of [...this.runners]) {
        const spec = wanted.get(name);
        if (!spec || JSON.stringify(spec) !== key) {
          this.runners.delete(name);
          await runner.stop();
        }
      }
      for (const [name, spec] of wanted) {
        if (this.runners.has(name) || !this.timer) continue;
        const runner = new EventSourceMappingRunner({ ...this.opts, functionName: name, config: spec });
        this.runners.set(name, { runner, key: JSON.stringify(spec) });
        runner.start();
      }
    }).catch((e: unknown) => {
      // One failed pass (a locked store, a runner that failed to stop) must not wedge later passes.
      this.opts.log?.(`event source mappings: reconcile failed, retrying: ${(e as Error).message}`);
    });
    return this.reconciling;
  }
}
