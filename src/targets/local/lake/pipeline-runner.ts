import { randomUUID } from 'node:crypto';
import { compilePipeline, type CompiledPipeline, type PipelineDeps, type PipelineMessage } from '../../../iot/pipeline/index.js';
import { deepEqual } from '../../../iot/plan/index.js';
import type { ReprocessResult } from '../../../ports.js';
import type { Db } from '../store.js';
import type { ChannelPosition, ChannelStore, StoredMessage } from './channel-store.js';
import { readLakeConfig, type PipelineSpec } from './config.js';
import type { DatastoreBuffer, DatastoreFormat, DatastoreWriter, StagedFile } from './datastore-writer.js';
import { ensureLakeTables } from './tables.js';

export interface PipelineRunnerOptions {
  db: Db;
  channels: ChannelStore;
  writer: DatastoreWriter;
  /** The lambda and deviceRegistryEnrich dependencies (see PipelineDeps). */
  deps?: Pick<PipelineDeps, 'invoke' | 'lookupThing'>;
  clock?: () => number;
  /** Roll a datastore file after this many buffered rows... */
  flushRows?: number;
  /** ...or this many buffered bytes... */
  flushBytes?: number;
  /** ...or when the oldest buffered row is this old. */
  flushIntervalMs?: number;
  /** Messages read from the channel per step. */
  readBatch?: number;
  /** How often the background loop looks for work when nothing woke it. */
  pollIntervalMs?: number;
  log?: (message: string) => void;
}

/** A failed message waiting to be committed with the checkpoint that passes it. */
interface FailureRow {
  messageId: string;
  receivedAt: number;
  activity: number;
  activityType: string;
  reason: string;
  payload: string;
  encoding: string;
}

interface Counters {
  in: number;
  out: number;
  filtered: number;
  failed: number;
}

interface ActivePipeline {
  name: string;
  spec: PipelineSpec & { appliedAt?: number };
  format: DatastoreFormat;
  compiled?: CompiledPipeline;
  /** Why the pipeline cannot run (its activities do not compile); reported by status. */
  error?: string;
  /** Committed checkpoint (in SQLite) and the read position ahead of it (buffered, not yet committed). */
  committed: ChannelPosition;
  readPos: ChannelPosition;
  buffer: DatastoreBuffer;
  bufferSince?: number;
  pending: Counters;
  failures: FailureRow[];
}

export type { ReprocessResult };

export interface RunSummary {
  pipelines: { name: string; in: number; out: number; filtered: number; failed: number }[];
}

/**
 * Runs the configured pipelines: reads each channel from the pipeline's checkpoint, runs the activities,
 * buffers rows and rolls them into datastore files by size and age. The checkpoint, counters and failed
 * messages are committed in the same transaction as the files (see DatastoreWriter.commit), so a crash
 * loses and duplicates nothing: the next run starts at the checkpoint, which covers exactly the rows in
 * committed files. Failed messages are kept in lake_pipeline_failures with their reason and raw payload.
 */
export class PipelineRunner {
  private readonly db: Db;
  private readonly channels: ChannelStore;
  private readonly writer: DatastoreWriter;
  private readonly deps: Pick<PipelineDeps, 'invoke' | 'lookupThing'>;
  private readonly clock: () => number;
  private readonly flushRows: number;
  private readonly flushBytes: number;
  private readonly flushIntervalMs: number;
  private readonly readBatch: number;
  private readonly pollIntervalMs: number;
  private readonly log: (message: string) => void;
  private readonly active = new Map<string, ActivePipeline>();
  private mutex: Promise<unknown> = Promise.resolve();
  private running = false;
  private loopDone?: Promise<void>;
  private wake?: () => void;
  private unsubscribe?: () => void;
  private configDirty = true;

  constructor(opts: PipelineRunnerOptions) {
    this.db = opts.db;
    this.channels = opts.channels;
    this.writer = opts.writer;
    this.deps = opts.deps ?? {};
    this.clock = opts.clock ?? Date.now;
    this.flushRows = opts.flushRows ?? 250_000;
    this.flushBytes = opts.flushBytes ?? 64 * 1024 * 1024;
    this.flushIntervalMs = opts.flushIntervalMs ?? 10_000;
    this.readBatch = opts.readBatch ?? 5_000;
    this.pollIntervalMs = opts.pollIntervalMs ?? 1_000;
    this.log = opts.log ?? (() => undefined);
    ensureLakeTables(this.db);
  }

  /** Marks the configuration as changed; the runner picks it up before its next step. */
  reload(): void {
    this.configDirty = true;
    this.wake?.();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.unsubscribe = this.channels.onAppend(() => this.wake?.());
    this.loopDone = this.loop();
  }

  /** Stops the loop after its current step and commits what is buffered. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake?.();
    await this.loopDone;
    this.unsubscribe?.();
    await this.exclusive(async () => {
      for (const p of this.active.values()) await this.flushSafely(p);
    });
  }

  /** Processes everything committed in the channels now, then commits (tests, CLI catch-up). */
  async runOnce(): Promise<RunSummary> {
    return this.exclusive(async () => {
      await this.syncConfig();
      const summary: RunSummary = { pipelines: [] };
      for (const p of this.active.values()) {
        const totals: Counters = { in: 0, out: 0, filtered: 0, failed: 0 };
        while (p.compiled && (await this.step(p))) {
          if (!this.shouldFlush(p)) continue;
          add(totals, p.pending);
          await this.flush(p);
        }
        add(totals, p.pending);
        await this.flush(p);
        summary.pipelines.push({ name: p.name, ...totals });
      }
      await this.runQueuedReprocessing();
      return summary;
    });
  }

  /**
   * StartPipelineReprocessing: runs the channel's raw messages received in [from, to] through the
   * pipeline's current activities. Unlike AWS, which appends (so reprocessing twice duplicates rows),
   * the local datastore replaces: rows this pipeline wrote for messages received in the window are
   * swapped for the new output in one commit, so reprocessing is idempotent.
   */
  async reprocess(pipeline: string, window: { from?: number; to?: number } = {}, id = randomUUID()): Promise<ReprocessResult> {
    return this.exclusive(() => this.reprocessNow(pipeline, window, id));
  }

  private async loop(): Promise<void> {
    while (this.running) {
      let worked = false;
      try {
        await this.exclusive(async () => {
          await this.syncConfig();
          for (const p of this.active.values()) {
            if (!this.running) break;
            if (p.compiled && (await this.step(p))) worked = true;
            if (this.shouldFlush(p)) await this.flushSafely(p);
          }
          await this.runQueuedReprocessing();
          await this.runQueuedFlushes();
        });
      } catch (e) {
        this.log(`analytics: pipeline step failed: ${(e as Error).message}`);
      }
      if (!worked && this.running) await this.sleep(this.nextDeadline());
    }
  }

  private nextDeadline(): number {
    let wait = this.pollIntervalMs;
    for (const p of this.active.values())
      if (p.bufferSince !== undefined) wait = Math.min(wait, Math.max(0, p.bufferSince + this.flushIntervalMs - this.clock()));
    return wait;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }

  /** Serialises all pipeline work (the loop, runOnce, reprocessing) on one chain. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.mutex.then(fn, fn);
    this.mutex = run.catch(() => undefined);
    return run;
  }

  /**
   * Applies configuration changes. A changed (or re-created) pipeline first commits what it buffered
   * under its old definition, then restarts from its committed checkpoint with the new one.
   */
  private async syncConfig(): Promise<void> {
    if (!this.configDirty) return;
    this.configDirty = false;
    const config = readLakeConfig(this.db);
    for (const [name, p] of this.active) {
      const spec = config.pipelines.get(name);
      if (spec && spec.appliedAt === p.spec.appliedAt && deepEqual(strip(spec), strip(p.spec)) && config.datastores.get(spec.datastore)?.format === p.format) continue;
      await this.flushSafely(p);
      this.active.delete(name);
    }
    for (const [name, spec] of config.pipelines) {
      if (this.active.has(name)) continue;
      const datastore = config.datastores.get(spec.datastore);
      const state = this.ensureState(name, spec.channel);
      const active: ActivePipeline = {
        name,
        spec,
        format: datastore?.format ?? 'parquet',
        committed: state,
        readPos: { ...state },
        buffer: this.writer.newBuffer(spec.datastore),
        pending: { in: 0, out: 0, filtered: 0, failed: 0 },
        failures: [],
      };
      if (!datastore) active.error = `datastore "${spec.datastore}" does not exist`;
      else if (!config.channels.has(spec.channel)) active.error = `channel "${spec.channel}" does not exist`;
      else {
        try {
          active.compiled = compilePipeline(spec.activities, { ...this.deps, target: 'local' });
        } catch (e) {
          active.error = (e as Error).message;
        }
      }
      if (active.error) this.log(`analytics: pipeline ${name} cannot run: ${active.error}`);
      this.db.prepare(`UPDATE lake_pipelines SET last_error = ? WHERE pipeline = ?`).run(active.error ?? null, name);
      this.active.set(name, active);
    }
  }

  /** The committed checkpoint; a pipeline seen for the first time starts at the channel's end, as on AWS. */
  private ensureState(pipeline: string, channel: string): ChannelPosition {
    const row = this.db.prepare(`SELECT channel, seq, offset, msg_index AS idx FROM lake_pipelines WHERE pipeline = ?`).get(pipeline) as
      | { channel: string; seq: number; offset: number; idx: number }
      | undefined;
    if (row && row.channel === channel) return { seq: row.seq, offset: row.offset, index: row.idx };
    const start = this.channels.end(channel);
    initPipelineState(this.db, pipeline, channel, start, this.clock());
    return start;
  }

  /** Reads one batch and runs it through the activities into the buffer. Returns messages read. */
  private async step(p: ActivePipeline): Promise<number> {
    // Never read past a full file: a file holds at most flushRows rows.
    const maxMessages = Math.max(1, Math.min(this.readBatch, this.flushRows - p.buffer.rows));
    const { messages, next } = await this.channels.read(p.spec.channel, p.readPos, { maxMessages });
    if (!messages.length) {
      p.readPos = next;
      return 0;
    }
    await this.process(p, messages, p.buffer, p.pending, p.failures);
    p.readPos = next;
    p.bufferSince ??= this.clock();
    return messages.length;
  }

  /** Parses, runs the activities and buffers rows; failures of any stage are recorded with a reason. */
  private async process(p: ActivePipeline, messages: StoredMessage[], buffer: DatastoreBuffer, counters: Counters, failures: FailureRow[]): Promise<void> {
    // Raw messages by id, for failure records only: built the first time a message fails.
    let byId: Map<string, StoredMessage> | undefined;
    const raw = { get: (id: string) => (byId ??= new Map(messages.map((m) => [m.messageId, m]))).get(id) };
    const inputs: PipelineMessage[] = [];
    const fail = (m: StoredMessage, activity: number, activityType: string, reason: string) => {
      failures.push({ messageId: m.messageId, receivedAt: m.receivedAt, activity, activityType, reason, payload: m.payload, encoding: m.encoding });
      counters.failed++;
    };
    counters.in += messages.length;
    for (const m of messages) {
      if (m.encoding !== 'utf8') {
        fail(m, -1, 'channel', 'the payload is binary, not a JSON object; pipelines process JSON messages');
        continue;
      }
      let body: unknown;
      try {
        body = JSON.parse(m.payload);
      } catch {
        fail(m, -1, 'channel', 'the payload is not valid JSON; pipelines process JSON messages');
        continue;
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        fail(m, -1, 'channel', `the payload is ${Array.isArray(body) ? 'a JSON array' : `the JSON ${body === null ? 'null' : typeof body}`}, not a JSON object`);
        continue;
      }
      inputs.push({ id: m.messageId, receivedAt: m.receivedAt, body: body as Record<string, unknown> });
    }
    const result = await p.compiled!.process(inputs, { inPlace: true });
    counters.filtered += result.filtered.length;
    for (const f of result.failed) fail(raw.get(f.message.id)!, f.activity, f.activityType, f.reason);
    const datastoreIndex = p.spec.activities.length;
    for (const row of result.out) {
      const reason = buffer.add(row);
      if (!reason) counters.out++;
      else {
        // Rows a lambda split off carry a derived id (<source>#<n>); blame their source message.
        const source = raw.get(row.id) ?? raw.get(row.id.replace(/#\d+$/, ''));
        fail(source ?? { messageId: row.id, receivedAt: row.receivedAt, payload: JSON.stringify(row.body), encoding: 'utf8' }, datastoreIndex, 'datastore', reason);
      }
    }
  }

  private shouldFlush(p: ActivePipeline): boolean {
    if (p.bufferSince === undefined) return false;
    return p.buffer.rows >= this.flushRows || p.buffer.bytes >= this.flushBytes || this.clock() - p.bufferSince >= this.flushIntervalMs;
  }

  private async flushSafely(p: ActivePipeline): Promise<void> {
    try {
      await this.flush(p);
    } catch (e) {
      const message = (e as Error).message;
      this.log(`analytics: pipeline ${p.name} could not write datastore ${p.spec.datastore}: ${message}`);
      this.db.prepare(`UPDATE lake_pipelines SET last_error = ? WHERE pipeline = ?`).run(`writing datastore ${p.spec.datastore}: ${message}`, p.name);
    }
  }

  /** Writes the buffer as datastore files and commits them with the checkpoint, counters and failures. */
  private async flush(p: ActivePipeline): Promise<void> {
    const moved = p.readPos.index !== p.committed.index || p.readPos.seq !== p.committed.seq || p.readPos.offset !== p.committed.offset;
    if (!p.buffer.rows && !p.failures.length && !moved) {
      p.bufferSince = undefined;
      return;
    }
    const staged: StagedFile[] = p.buffer.rows ? await this.writer.stage(p.buffer, p.name, p.format) : [];
    const now = this.clock();
    const readPos = p.readPos;
    const pending = p.pending;
    const failures = p.failures;
    try {
      this.writer.commit(staged, () => {
        this.db
          .prepare(
            `UPDATE lake_pipelines SET seq = ?, offset = ?, msg_index = ?, messages_in = messages_in + ?, messages_out = messages_out + ?,
               filtered = filtered + ?, failed = failed + ?, updated_at = ?, last_error = NULL WHERE pipeline = ? AND channel = ?`,
          )
          .run(readPos.seq, readPos.offset, readPos.index, pending.in, pending.out, pending.filtered, pending.failed, now, p.name, p.spec.channel);
        insertFailures(this.db, p.name, failures, now);
      });
    } catch (e) {
      this.writer.discard(staged);
      throw e;
    }
    p.committed = { ...readPos };
    p.buffer = this.writer.newBuffer(p.spec.datastore);
    p.bufferSince = undefined;
    p.pending = { in: 0, out: 0, filtered: 0, failed: 0 };
    p.failures = [];
    for (const dt of new Set(staged.map((f) => f.dt))) {
      const merged = await this.writer.stageCompaction(p.spec.datastore, dt, p.name, p.format);
      if (merged) this.writer.commit([merged]);
    }
  }

  /**
   * Flush requests (`iotctl check`, from another process): every pipeline reads what its channel holds now
   * and commits it at once instead of at its flush interval. Done requests are kept an hour, then removed.
   */
  private async runQueuedFlushes(): Promise<void> {
    const ids = this.db.prepare(`SELECT id FROM lake_flush_requests WHERE done_at IS NULL`).pluck().all() as string[];
    if (!ids.length) return;
    for (const p of this.active.values()) {
      while (p.compiled && (await this.step(p))) if (this.shouldFlush(p)) await this.flushSafely(p);
      await this.flushSafely(p);
    }
    const now = this.clock();
    const done = this.db.prepare(`UPDATE lake_flush_requests SET done_at = ? WHERE id = ?`);
    this.db.transaction(() => {
      for (const id of ids) done.run(now, id);
      this.db.prepare(`DELETE FROM lake_flush_requests WHERE done_at < ?`).run(now - 3_600_000);
    })();
  }

  private async runQueuedReprocessing(): Promise<void> {
    const queued = this.db.prepare(`SELECT id, pipeline, from_ms AS fromMs, to_ms AS toMs FROM lake_reprocessing WHERE status = 'QUEUED' ORDER BY requested_at`).all() as {
      id: string;
      pipeline: string;
      fromMs: number | null;
      toMs: number | null;
    }[];
    for (const r of queued) {
      try {
        await this.reprocessNow(r.pipeline, { from: r.fromMs ?? undefined, to: r.toMs ?? undefined }, r.id);
      } catch (e) {
        this.db.prepare(`UPDATE lake_reprocessing SET status = 'FAILED', error = ?, finished_at = ? WHERE id = ?`).run((e as Error).message, this.clock(), r.id);
      }
    }
  }

  private async reprocessNow(pipeline: string, window: { from?: number; to?: number }, id: string): Promise<ReprocessResult> {
    await this.syncConfig();
    const p = this.active.get(pipeline);
    if (!p) throw new Error(`pipeline "${pipeline}" does not exist`);
    if (!p.compiled) throw new Error(`pipeline "${pipeline}" cannot run: ${p.error}`);
    const from = window.from ?? 0;
    const to = window.to ?? END_OF_TIME;
    const startedAt = this.clock();
    this.db
      .prepare(
        `INSERT INTO lake_reprocessing (id, pipeline, from_ms, to_ms, status, requested_at, started_at) VALUES (?, ?, ?, ?, 'RUNNING', ?, ?)
         ON CONFLICT (id) DO UPDATE SET status = 'RUNNING', started_at = excluded.started_at`,
      )
      .run(id, pipeline, window.from ?? null, window.to ?? null, startedAt, startedAt);
    // Everything before the checkpoint is in the datastore; messages after it are still ahead of the
    // pipeline and will be processed normally, so the replay stops at the checkpoint.
    await this.flush(p);
    const upTo = p.committed;
    const counters: Counters = { in: 0, out: 0, filtered: 0, failed: 0 };
    const failures: FailureRow[] = [];
    const buffer = this.writer.newBuffer(p.spec.datastore);
    const segments = this.db
      .prepare(`SELECT seq, first_index AS firstIndex FROM lake_channel_segments WHERE channel = ? AND seq <= ? AND max_received >= ? AND min_received <= ? ORDER BY seq`)
      .all(p.spec.channel, upTo.seq, from, to) as { seq: number; firstIndex: number }[];
    for (const seg of segments) {
      let pos: ChannelPosition = { seq: seg.seq, offset: 0, index: seg.firstIndex };
      for (;;) {
        const { messages, next } = await this.channels.read(p.spec.channel, pos, { maxMessages: this.readBatch, untilSeq: seg.seq });
        const inWindow: StoredMessage[] = [];
        let index = pos.index;
        for (const m of messages) {
          if (index >= upTo.index) break;
          index++;
          if (m.receivedAt >= from && m.receivedAt <= to) inWindow.push(m);
        }
        if (inWindow.length) await this.process(p, inWindow, buffer, counters, failures);
        if (messages.length < this.readBatch || index >= upTo.index) break;
        pos = next;
      }
    }
    const staged = await this.writer.stageReplacement(buffer, pipeline, p.format, from, to);
    const now = this.clock();
    try {
      this.writer.commit(staged, () => {
        this.db.prepare(`DELETE FROM lake_pipeline_failures WHERE pipeline = ? AND received_at BETWEEN ? AND ?`).run(pipeline, from, to);
        insertFailures(this.db, pipeline, failures, now);
        this.db
          .prepare(`UPDATE lake_reprocessing SET status = 'SUCCEEDED', finished_at = ?, messages = ?, rows_out = ?, failed = ?, error = NULL WHERE id = ?`)
          .run(now, counters.in, counters.out, counters.failed, id);
      });
    } catch (e) {
      this.writer.discard(staged);
      throw e;
    }
    return {
      id,
      pipeline,
      from,
      to,
      messages: counters.in,
      out: counters.out,
      filtered: counters.filtered,
      failed: counters.failed,
      filesWritten: staged.filter((f) => f.rows > 0).length,
      filesReplaced: staged.reduce((n, f) => n + f.replaces.length, 0),
    };
  }
}

/** The open end of a reprocessing window (the latest time DuckDB's TIMESTAMP and the manifest agree on). */
const END_OF_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** Where a pipeline starts reading: stored by `analytics apply` (and by the runner for unseen pipelines). */
export function initPipelineState(db: Db, pipeline: string, channel: string, start: ChannelPosition, now: number): void {
  ensureLakeTables(db);
  db.prepare(
    `INSERT INTO lake_pipelines (pipeline, channel, seq, offset, msg_index, updated_at) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (pipeline) DO UPDATE SET channel = excluded.channel, seq = excluded.seq, offset = excluded.offset, msg_index = excluded.msg_index,
       messages_in = 0, messages_out = 0, filtered = 0, failed = 0, updated_at = excluded.updated_at`,
  ).run(pipeline, channel, start.seq, start.offset, start.index, now);
}

function insertFailures(db: Db, pipeline: string, failures: FailureRow[], now: number): void {
  if (!failures.length) return;
  const insert = db.prepare(
    `INSERT OR REPLACE INTO lake_pipeline_failures (pipeline, message_id, received_at, activity, activity_type, reason, payload, payload_encoding, failed_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  for (const f of failures) insert.run(pipeline, f.messageId, f.receivedAt, f.activity, f.activityType, f.reason, f.payload, f.encoding, now);
}

function add(totals: Counters, more: Counters): void {
  totals.in += more.in;
  totals.out += more.out;
  totals.filtered += more.filtered;
  totals.failed += more.failed;
}

function strip(spec: PipelineSpec & { appliedAt?: number }): unknown {
  const { appliedAt: _appliedAt, ...rest } = spec;
  return JSON.parse(JSON.stringify(rest));
}
