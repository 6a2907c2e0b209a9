import type { Queryable } from './connection.js';
import { clusterClosedPartitions, runRetention, type ClusterResult, type RetentionResult } from './retention.js';

/**
 * One maintenance run of the recent-data store, as the maintenance-rds function (and the local platform's
 * schedule) does it, as the schema owner: drop the day partitions that have expired and delete the expired rows
 * of the day that straddles the cutoff (retention.ts), cluster each closed day by device once, and create the
 * next days' partitions ahead of time so the ingest role seldom needs the partition function. A dry run reads
 * the same catalog and counts, and changes nothing.
 */
export interface MaintenanceOptions {
  keepMs: number;
  now?: Date;
  dryRun?: boolean;
  /** Partitions created for today and this many days after it (default 2). */
  daysAhead?: number;
  lockTimeoutMs?: number;
}

export interface MaintenanceResult {
  dryRun: boolean;
  cutoff: string;
  dropped: Array<{ partition: string; rows: number; rowsExact: boolean; detachMs?: number; dropMs?: number }>;
  deleted: RetentionResult['deleted'];
  rowsDropped: number;
  rowsDeleted: number;
  clustered: ClusterResult['clustered'];
  /** Closed days whose lock could not be had; the next run clusters them. */
  busy: string[];
  /** Days (YYYY-MM-DD) whose partition was created (or would be). */
  created: string[];
  /** Wall time of the run, and the part of it spent waiting for PostgreSQL. */
  ms: number;
  dbMs: number;
}

const DAY_MS = 86_400_000;

export async function runMaintenance(client: Queryable, opts: MaintenanceOptions): Promise<MaintenanceResult> {
  const started = performance.now();
  const db = timed(client);
  const now = opts.now ?? new Date();
  const dryRun = opts.dryRun ?? false;
  const lockTimeoutMs = opts.lockTimeoutMs ?? 5_000;
  const retention = await runRetention(db, { keepMs: opts.keepMs, now, dryRun, lockTimeoutMs });
  const cluster = await clusterClosedPartitions(db, { now, lockTimeoutMs, dryRun, skip: retention.dropped.map((d) => d.partition) });
  const today = Math.floor(now.getTime() / DAY_MS);
  const days = Array.from({ length: (opts.daysAhead ?? 2) + 1 }, (_, i) => new Date((today + i) * DAY_MS).toISOString().slice(0, 10));
  const created = dryRun ? await missingDays(db, days) : await createDays(db, days);
  return {
    dryRun,
    cutoff: retention.cutoff.toISOString(),
    dropped: retention.dropped.map(({ partition, rows, rowsExact, detachMs, dropMs }) => ({ partition, rows, rowsExact, ...(detachMs === undefined ? {} : { detachMs, dropMs }) })),
    deleted: retention.deleted,
    rowsDropped: retention.rowsDropped,
    rowsDeleted: retention.rowsDeleted,
    clustered: cluster.clustered,
    busy: cluster.busy,
    created,
    ms: Math.round(performance.now() - started),
    dbMs: Math.round(db.ms()),
  };
}

async function createDays(client: Queryable, days: string[]): Promise<string[]> {
  const { rows } = await client.query<{ day: string }>('SELECT d::text AS day FROM unnest($1::date[]) AS d WHERE iotctl_ensure_day_partition(d) ORDER BY d', [days]);
  return rows.map((r) => r.day);
}

async function missingDays(client: Queryable, days: string[]): Promise<string[]> {
  const { rows } = await client.query<{ day: string }>(
    `SELECT d::text AS day FROM unnest($1::date[]) AS d
     WHERE to_regclass(quote_ident('iot_messages_p' || to_char(d, 'YYYYMMDD'))) IS NULL ORDER BY d`,
    [days],
  );
  return rows.map((r) => r.day);
}

/** The client, summing how long its queries take: the run's database time. */
export function timed(client: Queryable): Queryable & { ms(): number } {
  let total = 0;
  return {
    async query(text: string, values?: unknown[]) {
      const t = performance.now();
      try {
        return await client.query(text, values);
      } finally {
        total += performance.now() - t;
      }
    },
    ms: () => total,
  } as Queryable & { ms(): number };
}
