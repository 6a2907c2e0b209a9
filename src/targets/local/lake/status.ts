import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { nextFireTime, parseSchedule } from '../../../iot/pipeline/schedule.js';
import type { Db } from '../store.js';
import { channelEnd } from './channel-store.js';
import { readLakeConfig } from './config.js';
import { LakePaths } from './paths.js';
import { ensureLakeTables } from './tables.js';
import type { AnalyticsStatus, ChannelStatus, DatasetStatus, DatastoreStatus, PipelineStatus, SchemaChangeStatus } from '../../../ports.js';

export type { AnalyticsStatus };

const iso = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

/** Everything `analytics status` shows, read from the state store (works with the daemon up or down). */
export async function analyticsStatus(db: Db, stateDir: string, now = Date.now()): Promise<AnalyticsStatus> {
  ensureLakeTables(db);
  const config = readLakeConfig(db);
  const paths = new LakePaths(stateDir);

  const channels: ChannelStatus[] = [...config.channels.values()].map((c) => {
    const agg = db.prepare(`SELECT coalesce(sum(messages), 0) AS messages, coalesce(sum(committed_bytes), 0) AS bytes, count(*) AS segments FROM lake_channel_segments WHERE channel = ?`).get(c.name) as {
      messages: number;
      bytes: number;
      segments: number;
    };
    const dup = db.prepare(`SELECT duplicates FROM lake_channel_stats WHERE channel = ?`).pluck().get(c.name) as number | undefined;
    // Locally a channel message counts once it is committed to a segment: received and stored are one.
    return { name: c.name, ...agg, delivered: agg.messages, duplicatesDropped: dup ?? 0, retentionDays: c.retentionDays ?? null };
  });

  const pipelines: PipelineStatus[] = [];
  for (const p of config.pipelines.values()) {
    const row = db.prepare(`SELECT * FROM lake_pipelines WHERE pipeline = ?`).get(p.name) as
      | { channel: string; seq: number; offset: number; msg_index: number; messages_in: number; messages_out: number; filtered: number; failed: number; last_error: string | null }
      | undefined;
    const end = channelEnd(db, p.channel);
    const lagMessages = row && row.channel === p.channel ? Math.max(0, end.index - row.msg_index) : 0;
    let lagSeconds = 0;
    if (row && lagMessages > 0) {
      const oldest = await receivedAtOf(db, paths, p.channel, row.seq, row.offset);
      if (oldest !== undefined) lagSeconds = Math.max(0, Math.round((now - oldest) / 1000));
    }
    const failures = db
      .prepare(`SELECT message_id AS messageId, received_at AS receivedAt, activity, activity_type AS activityType, reason FROM lake_pipeline_failures WHERE pipeline = ? ORDER BY failed_at DESC, received_at DESC LIMIT 5`)
      .all(p.name) as { messageId: string; receivedAt: number; activity: number; activityType: string; reason: string }[];
    pipelines.push({
      name: p.name,
      channel: p.channel,
      datastore: p.datastore,
      messagesIn: row?.messages_in ?? 0,
      messagesOut: row?.messages_out ?? 0,
      filtered: row?.filtered ?? 0,
      failed: row?.failed ?? 0,
      lagMessages,
      lagSeconds,
      lastError: row?.last_error ?? null,
      recentFailures: failures.map((f) => ({ ...f, receivedAt: iso(f.receivedAt)! })),
    });
  }

  const datastores: DatastoreStatus[] = [...config.datastores.values()].map((d) => {
    const agg = db
      .prepare(`SELECT coalesce(sum(rows), 0) AS rows, count(*) AS files, coalesce(sum(bytes), 0) AS bytes, count(DISTINCT dt) AS partitions FROM lake_datastore_files WHERE datastore = ?`)
      .get(d.name) as { rows: number; files: number; bytes: number; partitions: number };
    const columns = db.prepare(`SELECT name, type FROM lake_datastore_columns WHERE datastore = ? ORDER BY position`).all(d.name) as { name: string; type: string }[];
    return { name: d.name, format: d.format, ...agg, columns };
  });

  const datasets: DatasetStatus[] = [...config.datasets.values()].map((d) => {
    const last = db.prepare(`SELECT version, status, created_at AS at, rows, error FROM lake_dataset_versions WHERE dataset = ? ORDER BY created_at DESC, version DESC LIMIT 1`).get(d.name) as
      | { version: string; status: string; at: number; rows: number | null; error: string | null }
      | undefined;
    const versions = db.prepare(`SELECT count(*) FROM lake_dataset_versions WHERE dataset = ? AND status = 'SUCCEEDED'`).pluck().get(d.name) as number;
    const schedule = db.prepare(`SELECT schedule, anchor, last_checked AS lastChecked, missed_total AS missed FROM lake_dataset_schedules WHERE dataset = ?`).get(d.name) as
      | { schedule: string; anchor: number; lastChecked: number; missed: number }
      | undefined;
    let nextRun: number | undefined;
    if (d.schedule) {
      try {
        nextRun = nextFireTime(parseSchedule(d.schedule), Math.max(schedule?.lastChecked ?? now, now), schedule?.anchor ?? d.appliedAt);
      } catch {
        nextRun = undefined;
      }
    }
    const missed = db.prepare(`SELECT scheduled_for FROM lake_dataset_missed WHERE dataset = ? ORDER BY scheduled_for DESC LIMIT 5`).pluck().all(d.name) as number[];
    return {
      name: d.name,
      schedule: d.schedule ?? null,
      lastRun: last ? { version: last.version, status: last.status, at: iso(last.at)!, rows: last.rows, error: last.error } : null,
      nextRun: iso(nextRun),
      versions,
      missedRuns: schedule?.missed ?? 0,
      recentMissed: missed.map((t) => iso(t)!),
    };
  });

  const schemaChanges = (
    db
      .prepare(`SELECT datastore, column_name AS "column", change, from_type AS "from", to_type AS "to", detail, at FROM lake_schema_changes ORDER BY id DESC LIMIT 50`)
      .all() as (Omit<SchemaChangeStatus, 'at'> & { at: number })[]
  )
    .filter((c) => config.datastores.has(c.datastore))
    .map((c) => ({ ...c, at: iso(c.at)! }));

  const reprocessing = (
    db.prepare(`SELECT id, pipeline, status, from_ms AS fromMs, to_ms AS toMs, messages, error FROM lake_reprocessing ORDER BY requested_at DESC LIMIT 10`).all() as {
      id: string;
      pipeline: string;
      status: string;
      fromMs: number | null;
      toMs: number | null;
      messages: number | null;
      error: string | null;
    }[]
  ).map((r) => ({ id: r.id, pipeline: r.pipeline, status: r.status, from: iso(r.fromMs), to: iso(r.toMs), messages: r.messages, error: r.error }));

  return { countersSince: null, channels, pipelines, datastores, datasets, schemaChanges, reprocessing };
}

/** The receive time of the message at a channel position (the oldest one a pipeline has not committed). */
async function receivedAtOf(db: Db, paths: LakePaths, channel: string, seq: number, offset: number): Promise<number | undefined> {
  const segs = db.prepare(`SELECT seq, file, committed_bytes AS bytes, min_received AS minReceived FROM lake_channel_segments WHERE channel = ? AND seq >= ? ORDER BY seq LIMIT 2`).all(channel, seq) as {
    seq: number;
    file: string;
    bytes: number;
    minReceived: number | null;
  }[];
  for (const s of segs) {
    const at = s.seq === seq ? offset : 0;
    if (at >= s.bytes) continue;
    if (at === 0) return s.minReceived ?? undefined;
    const handle = await open(join(paths.root, s.file), 'r').catch(() => undefined);
    if (!handle) return s.minReceived ?? undefined;
    try {
      const buf = Buffer.alloc(Math.min(4096, s.bytes - at));
      await handle.read(buf, 0, buf.length, at);
      const match = /"received_at":(\d+)/.exec(buf.toString('utf8'));
      return match ? Number(match[1]) : undefined;
    } finally {
      await handle.close();
    }
  }
  return undefined;
}
