import type { Db } from '../store.js';

/**
 * The lake's tables in the shared state store. SQLite is the lake's commit log: a file (channel segment
 * bytes, datastore part, dataset version) only counts once a row here says so, and checkpoints move in the
 * same transaction as the rows describing the files they cover.
 */
export function ensureLakeTables(db: Db): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS lake_resources (
      kind TEXT NOT NULL, name TEXT NOT NULL, config TEXT NOT NULL, applied_at INTEGER NOT NULL,
      PRIMARY KEY (kind, name));

    CREATE TABLE IF NOT EXISTS lake_channel_segments (
      channel TEXT NOT NULL, seq INTEGER NOT NULL, day TEXT NOT NULL, file TEXT NOT NULL,
      committed_bytes INTEGER NOT NULL, messages INTEGER NOT NULL, first_index INTEGER NOT NULL,
      min_received INTEGER, max_received INTEGER,
      PRIMARY KEY (channel, seq));
    CREATE TABLE IF NOT EXISTS lake_channel_ids (
      channel TEXT NOT NULL, message_id TEXT NOT NULL, day TEXT NOT NULL,
      PRIMARY KEY (channel, message_id)) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS lake_channel_ids_day ON lake_channel_ids (channel, day);
    CREATE TABLE IF NOT EXISTS lake_channel_stats (
      channel TEXT PRIMARY KEY, next_index INTEGER NOT NULL, duplicates INTEGER NOT NULL DEFAULT 0);

    CREATE TABLE IF NOT EXISTS lake_pipelines (
      pipeline TEXT PRIMARY KEY, channel TEXT NOT NULL,
      seq INTEGER NOT NULL, offset INTEGER NOT NULL, msg_index INTEGER NOT NULL,
      messages_in INTEGER NOT NULL DEFAULT 0, messages_out INTEGER NOT NULL DEFAULT 0,
      filtered INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
      last_error TEXT, updated_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS lake_pipeline_failures (
      pipeline TEXT NOT NULL, message_id TEXT NOT NULL, received_at INTEGER NOT NULL,
      activity INTEGER NOT NULL, activity_type TEXT NOT NULL, reason TEXT NOT NULL,
      payload TEXT NOT NULL, payload_encoding TEXT NOT NULL, failed_at INTEGER NOT NULL,
      PRIMARY KEY (pipeline, message_id));
    CREATE INDEX IF NOT EXISTS lake_pipeline_failures_time ON lake_pipeline_failures (pipeline, received_at);
    CREATE TABLE IF NOT EXISTS lake_reprocessing (
      id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, from_ms INTEGER, to_ms INTEGER, status TEXT NOT NULL,
      requested_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER,
      messages INTEGER, rows_out INTEGER, failed INTEGER, error TEXT);

    CREATE TABLE IF NOT EXISTS lake_flush_requests (
      id TEXT PRIMARY KEY, requested_at INTEGER NOT NULL, done_at INTEGER);

    CREATE TABLE IF NOT EXISTS lake_datastore_files (
      datastore TEXT NOT NULL, file TEXT NOT NULL, dt TEXT NOT NULL, pipeline TEXT NOT NULL,
      rows INTEGER NOT NULL, bytes INTEGER NOT NULL, min_received INTEGER, max_received INTEGER,
      created_at INTEGER NOT NULL, schema TEXT,
      PRIMARY KEY (datastore, file));
    CREATE INDEX IF NOT EXISTS lake_datastore_files_dt ON lake_datastore_files (datastore, dt);
    CREATE TABLE IF NOT EXISTS lake_datastore_columns (
      datastore TEXT NOT NULL, key TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL,
      position INTEGER NOT NULL, added_at INTEGER NOT NULL, changed_at INTEGER NOT NULL,
      PRIMARY KEY (datastore, key));
    CREATE TABLE IF NOT EXISTS lake_schema_changes (
      id INTEGER PRIMARY KEY AUTOINCREMENT, datastore TEXT NOT NULL, column_name TEXT NOT NULL,
      change TEXT NOT NULL, from_type TEXT, to_type TEXT NOT NULL, detail TEXT, file TEXT, at INTEGER NOT NULL);

    CREATE TABLE IF NOT EXISTS lake_dataset_versions (
      dataset TEXT NOT NULL, version TEXT NOT NULL, status TEXT NOT NULL, trigger TEXT NOT NULL,
      created_at INTEGER NOT NULL, scheduled_for INTEGER, window_start INTEGER, window_end INTEGER,
      rows INTEGER, bytes INTEGER, elapsed_ms INTEGER, error TEXT,
      PRIMARY KEY (dataset, version));
    CREATE TABLE IF NOT EXISTS lake_dataset_schedules (
      dataset TEXT PRIMARY KEY, schedule TEXT NOT NULL, anchor INTEGER NOT NULL,
      last_checked INTEGER NOT NULL, last_fire INTEGER, missed_total INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE IF NOT EXISTS lake_dataset_missed (
      dataset TEXT NOT NULL, scheduled_for INTEGER NOT NULL, detected_at INTEGER NOT NULL,
      PRIMARY KEY (dataset, scheduled_for));
  `);
  // Added after the first version of the table: each file's column list, so readers can skip union_by_name.
  const columns = db.prepare(`PRAGMA table_info(lake_datastore_files)`).all() as { name: string }[];
  if (!columns.some((c) => c.name === 'schema')) db.exec(`ALTER TABLE lake_datastore_files ADD COLUMN schema TEXT`);
}
