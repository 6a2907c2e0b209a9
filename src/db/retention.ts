import type { Queryable } from './connection.js';

/**
 * Retention for iot_messages: partitions that end before the cutoff (now - keep) are detached and
 * dropped, which costs the same for a thousand rows or ten million; the rows older than the cutoff
 * in the partition that straddles it (and in the default partition) are deleted.
 */
export interface RetentionOptions {
  keepMs: number;
  now?: Date;
  dryRun?: boolean;
  /** How long DDL may wait for locks held by running queries before giving up for this run. */
  lockTimeoutMs?: number;
}

export interface RetentionResult {
  cutoff: Date;
  dryRun: boolean;
  /**
   * Whole partitions dropped (or that would be), with their row counts: exact in a dry run; when
   * dropping, PostgreSQL's statistics (pg_class.reltuples) when it has them, because counting a
   * day's million rows would take longer than dropping them. detachMs is how long iot_messages was
   * locked; dropMs is removing the files.
   */
  dropped: Array<{ partition: string; from: Date; to: Date; rows: number; rowsExact: boolean; detachMs?: number; dropMs?: number }>;
  /** Rows deleted (or that would be) from partitions that straddle the cutoff, and how long that took. */
  deleted: Array<{ partition: string; rows: number; ms: number }>;
  rowsDropped: number;
  rowsDeleted: number;
  ms: number;
}

interface PartitionInfo {
  name: string;
  from: Date | null;
  to: Date | null;
}

/** The partitions of iot_messages with their bounds (null bounds: the default partition). */
export async function listPartitions(client: Queryable): Promise<PartitionInfo[]> {
  const { rows } = await client.query<{ name: string; lo: Date | null; hi: Date | null }>(`
    SELECT c.relname AS name, b[1]::timestamptz AS lo, b[2]::timestamptz AS hi
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    LEFT JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)') AS b ON true
    WHERE i.inhparent = 'iot_messages'::regclass
    ORDER BY lo NULLS FIRST`);
  return rows.map((r) => ({ name: r.name, from: r.lo, to: r.hi }));
}

export async function runRetention(client: Queryable, opts: RetentionOptions): Promise<RetentionResult> {
  const started = performance.now();
  const now = opts.now ?? new Date();
  const cutoff = new Date(now.getTime() - opts.keepMs);
  const dryRun = opts.dryRun ?? false;
  const partitions = await listPartitions(client);
  const whole = partitions.filter((p) => p.to !== null && p.to.getTime() <= cutoff.getTime());
  // The default partition can hold rows of any time, so it is always trimmed, never dropped.
  const straddling = partitions.filter((p) => p.to === null || (p.from!.getTime() < cutoff.getTime() && p.to.getTime() > cutoff.getTime()));

  const dropped: RetentionResult['dropped'] = [];
  for (const p of whole) {
    const estimate = dryRun ? undefined : await estimatedRows(client, p.name);
    const rows = estimate ?? (await countRows(client, p.name));
    const entry: RetentionResult['dropped'][number] = { partition: p.name, from: p.from!, to: p.to!, rows, rowsExact: estimate === undefined };
    if (!dryRun) Object.assign(entry, await dropPartition(client, p.name, opts.lockTimeoutMs ?? 5_000));
    dropped.push(entry);
  }

  const deleted: RetentionResult['deleted'] = [];
  for (const p of straddling) {
    const t = performance.now();
    const sql = dryRun ? `SELECT count(*)::bigint AS n FROM ${ident(p.name)} WHERE ts < $1` : `DELETE FROM ${ident(p.name)} WHERE ts < $1`;
    const result = await client.query<{ n: string }>(sql, [cutoff]);
    const rows = dryRun ? Number(result.rows[0]!.n) : (result.rowCount ?? 0);
    if (rows > 0) deleted.push({ partition: p.name, rows, ms: Math.round(performance.now() - t) });
  }

  return {
    cutoff,
    dryRun,
    dropped,
    deleted,
    rowsDropped: dropped.reduce((s, d) => s + d.rows, 0),
    rowsDeleted: deleted.reduce((s, d) => s + d.rows, 0),
    ms: Math.round(performance.now() - started),
  };
}

/**
 * DETACH then DROP, each in its own short transaction: DETACH needs an ACCESS EXCLUSIVE lock on
 * iot_messages only for a moment, and the slow part (unlinking a large file) then holds no lock on
 * it. lock_timeout keeps a long-running query from stalling every writer queued behind our lock.
 */
async function dropPartition(client: Queryable, name: string, lockTimeoutMs: number): Promise<{ detachMs: number; dropMs: number }> {
  const started = performance.now();
  await client.query('BEGIN');
  try {
    await client.query(`SELECT set_config('lock_timeout', $1, true)`, [`${lockTimeoutMs}ms`]);
    await client.query(`ALTER TABLE iot_messages DETACH PARTITION ${ident(name)}`);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
  const detached = performance.now();
  await client.query(`DROP TABLE ${ident(name)}`);
  return { detachMs: Math.round(detached - started), dropMs: Math.round(performance.now() - detached) };
}

/** reltuples: -1 until the table was first vacuumed or analyzed (autovacuum does so as rows arrive). */
async function estimatedRows(client: Queryable, table: string): Promise<number | undefined> {
  const { rows } = await client.query<{ n: number }>('SELECT reltuples::float8 AS n FROM pg_class WHERE oid = $1::regclass', [ident(table)]);
  const n = rows[0]?.n;
  return n === undefined || n < 0 ? undefined : Math.round(n);
}

async function countRows(client: Queryable, table: string): Promise<number> {
  const { rows } = await client.query<{ n: string }>(`SELECT count(*)::bigint AS n FROM ${ident(table)}`);
  return Number(rows[0]!.n);
}

function ident(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

export interface ClusterOptions {
  now?: Date;
  /** How long CLUSTER may wait for its lock before this partition is left for the next run. */
  lockTimeoutMs?: number;
  /** List the partitions that would be clustered, without clustering them (their ms is then absent). */
  dryRun?: boolean;
  /** Partitions to leave alone (a dry run's retention would drop them first). */
  skip?: readonly string[];
}

export interface ClusterResult {
  clustered: Array<{ partition: string; ms?: number }>;
  /** Partitions whose lock could not be had within lockTimeoutMs (busy); the next run retries them. */
  busy: string[];
}

/**
 * Rewrites each closed day partition (its day has ended) once, in (device_id, ts DESC) order, so the
 * newest messages of one device sit on a few adjacent heap pages instead of one page per message.
 * Rows arrive interleaved across all devices, so without this `query recent --limit 100` touches ~100
 * pages, which stop fitting in shared_buffers as the table grows (0.7 ms instead of 0.1 ms at 10M rows).
 *
 * Run it daily, after midnight UTC. CLUSTER holds an ACCESS EXCLUSIVE lock on that one partition
 * while it rewrites it (about 5 s per million rows here): late writes to that day and queries that
 * read it wait meanwhile. lock_timeout keeps it from queueing behind a long query (and so stalling
 * everything queued behind it). Rows that arrive after a day was clustered are simply appended.
 */
export async function clusterClosedPartitions(client: Queryable, opts: ClusterOptions = {}): Promise<ClusterResult> {
  const now = opts.now ?? new Date();
  // The partition's piece of iot_messages_device_ts; indisclustered marks the ones already done.
  const { rows } = await client.query<{ partition: string; index: string }>(
    `SELECT t.relname AS partition, i.relname AS index
     FROM pg_inherits h
     JOIN pg_index x ON x.indexrelid = h.inhrelid
     JOIN pg_class i ON i.oid = x.indexrelid
     JOIN pg_class t ON t.oid = x.indrelid
     WHERE h.inhparent = 'iot_messages_device_ts'::regclass AND NOT x.indisclustered`,
  );
  const pending = new Map(rows.map((r) => [r.partition, r.index]));
  const closed = (await listPartitions(client)).filter((p) => p.to !== null && p.to.getTime() <= now.getTime() && pending.has(p.name) && !opts.skip?.includes(p.name));
  const result: ClusterResult = { clustered: [], busy: [] };
  if (opts.dryRun) {
    result.clustered = closed.map((p) => ({ partition: p.name }));
    return result;
  }
  for (const p of closed) {
    const started = performance.now();
    await client.query('BEGIN');
    try {
      await client.query(`SELECT set_config('lock_timeout', $1, true)`, [`${opts.lockTimeoutMs ?? 5_000}ms`]);
      await client.query(`CLUSTER ${ident(p.name)} USING ${ident(pending.get(p.name)!)}`);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      if ((error as { code?: string }).code === '55P03') {
        result.busy.push(p.name);
        continue;
      }
      throw error;
    }
    // The new physical order changes the ts/device correlation the planner costs index scans with.
    await client.query(`ANALYZE ${ident(p.name)}`);
    result.clustered.push({ partition: p.name, ms: Math.round(performance.now() - started) });
  }
  return result;
}
