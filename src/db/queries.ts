import type pg from 'pg';
import { UserError } from '../ui/errors.js';
import type { Queryable } from './connection.js';

/** Queries over the recent data. Every value the user gives travels as a bind parameter. */

export interface MessageRecord {
  message_id: string;
  device_id: string;
  ts: Date;
  topic: string | null;
  payload: Record<string, unknown>;
  stream: string | null;
  shard_id: string | null;
  sequence_number: string | null;
  received_at: Date;
}

export interface RecentQuery {
  deviceId: string;
  /** Only messages with ts >= since. */
  since?: Date;
  limit: number;
  /** An MQTT topic filter (`+` one level, `#` the rest). */
  topicFilter?: string;
  /** The clock (tests inject it). */
  now?: Date;
  /** Only messages after this one in the order below: the next page's start (recentCursorOf gives it). */
  after?: RecentCursor;
  /**
   * For pages (pages.ts): add ts_key (ts as PostgreSQL's exact text, microseconds included) for recentCursorOf,
   * and give the payload as payload_text (jsonb's text, unparsed) instead of payload.
   */
  withKeys?: boolean;
  /** Also `iotctl check`'s canary messages ("iotctl_check": true), left out by default. */
  includeCanary?: boolean;
}

/** Where a page of `query recent` ended: the sort key of its last message. */
export interface RecentCursor {
  /** ts as PostgreSQL's text: a JS Date would cut its microseconds and skip or repeat rows. */
  ts: string;
  seq: string | null;
  id: string;
}

const DAY_MS = 86_400_000;

/**
 * The newest messages of one device, newest first.
 *
 * Messages of one ingress group commit share their timestamp (timestamp() is the ingress time in ms), so equal
 * ts are common in a burst: they are ordered by arrival, which is the stream's sequence number (decimal text:
 * a longer one is a greater one), then by message id, so the order never depends on the plan or on where rows
 * happen to sit on disk.
 *
 * Asks for the newest rows from yesterday 00:00 UTC on first: that touches two day partitions (and
 * the default one) instead of every retained day, which halves planning and execution time. Only a
 * device with fewer than `limit` messages since then costs a second query for the older rows.
 */
export async function recentMessages(client: Queryable, q: RecentQuery): Promise<MessageRecord[]> {
  if (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > 100_000) {
    throw new UserError(`Invalid limit ${q.limit}.`, 'give --limit a whole number from 1 to 100000.');
  }
  const topic = q.topicFilter === undefined ? undefined : topicFilterCondition(q.topicFilter);
  const now = (q.now ?? new Date()).getTime();
  const recentFrom = new Date(Math.floor(now / DAY_MS) * DAY_MS - DAY_MS);
  if (q.since && q.since.getTime() >= recentFrom.getTime()) return selectRecent(client, q.deviceId, q.limit, topic, q.since, undefined, q);
  const recent = await selectRecent(client, q.deviceId, q.limit, topic, recentFrom, undefined, q);
  if (recent.length === q.limit) return recent;
  const older = await selectRecent(client, q.deviceId, q.limit - recent.length, topic, q.since, recentFrom, q);
  return recent.concat(older);
}

/** The cursor after `m` (a row recentMessages returned, with its key columns). */
export function recentCursorOf(m: MessageRecord & { ts_key?: string }): RecentCursor {
  if (m.ts_key === undefined) throw new Error('recentCursorOf needs rows read with withKeys');
  return { ts: m.ts_key, seq: m.sequence_number, id: m.message_id };
}

/** One parameterized SELECT: device, optional [from, before) window and topic condition. */
async function selectRecent(
  client: Queryable,
  deviceId: string,
  limit: number,
  topic: { op: '=' | '~'; value: string } | undefined,
  from: Date | undefined,
  before: Date | undefined,
  { after, withKeys, includeCanary = false }: Pick<RecentQuery, 'after' | 'withKeys' | 'includeCanary'> = {},
): Promise<MessageRecord[]> {
  const values: unknown[] = [deviceId, limit];
  const where = ['device_id = $1'];
  if (!includeCanary) where.push(`NOT (payload @> '{"iotctl_check": true}')`);
  if (from) {
    values.push(from);
    where.push(`ts >= $${values.length}`);
  }
  if (before) {
    values.push(before);
    where.push(`ts < $${values.length}`);
  }
  if (topic) {
    values.push(topic.value);
    where.push(`topic ${topic.op} $${values.length}`);
  }
  if (after) {
    // Strictly after the cursor in the ORDER BY below; the plain ts bound lets the index skip newer rows.
    values.push(after.ts, after.seq, after.id);
    const [t, q, i] = [values.length - 2, values.length - 1, values.length];
    where.push(`ts <= $${t}::timestamptz`);
    where.push(`(ts, coalesce(length(sequence_number), -1), coalesce(sequence_number, ''), message_id) < ($${t}::timestamptz, coalesce(length($${q}::text), -1), coalesce($${q}::text, ''), $${i}::text)`);
  }
  // A sequence number is decimal text: a longer one is a greater one; rows without one (written by hand) come last.
  const { rows } = await client.query<MessageRecord>(
    `SELECT message_id, device_id, ts, topic, ${withKeys ? 'payload::text AS payload_text' : 'payload'}, stream, shard_id, sequence_number, received_at${withKeys ? ', ts::text AS ts_key' : ''}
     FROM iot_messages WHERE ${where.join(' AND ')}
     ORDER BY ts DESC, coalesce(length(sequence_number), -1) DESC, coalesce(sequence_number, '') DESC, message_id DESC LIMIT $2`,
    values,
  );
  return rows;
}

/**
 * An MQTT filter as a SQL condition on `topic`: exact equality without wildcards, else an anchored
 * POSIX regex in which every literal character is escaped. `#` alone matches any topic, so it adds
 * no condition (undefined).
 */
export function topicFilterCondition(filter: string): { op: '=' | '~'; value: string } | undefined {
  validateTopicFilter(filter);
  if (filter === '#') return undefined;
  if (!/[+#]/.test(filter)) return { op: '=', value: filter };
  const levels = filter.split('/');
  let pattern = '';
  levels.forEach((level, i) => {
    const sep = i === 0 ? '' : '/';
    if (level === '#') pattern += `(${sep}.*)?`; // 'a/#' matches 'a' itself and everything below it
    else if (level === '+') pattern += `${sep}[^/]*`;
    else pattern += sep + level.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
  });
  return { op: '~', value: `^${pattern}$` };
}

export function validateTopicFilter(filter: string): void {
  const bad = (why: string) => new UserError(`Invalid topic filter "${filter}": ${why}.`, "use '+' for one whole level and '#' as the last level, e.g. dt/+/telemetry or dt/#.");
  if (filter.length === 0) throw bad('it is empty');
  const levels = filter.split('/');
  levels.forEach((level, i) => {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) throw bad("'#' must be a whole level and the last one");
    if (level.includes('+') && level !== '+') throw bad("'+' must be a whole level");
  });
}

export interface SqlResult {
  columns: Array<{ name: string; type: string }>;
  rows: Record<string, unknown>[];
  rowCount: number;
  /** True when the result had more than maxRows rows and was cut. */
  truncated: boolean;
  command: string;
  ms: number;
}

/**
 * Runs one user statement in a READ ONLY transaction with a statement timeout, always rolled back.
 * The extended query protocol refuses several statements in one string, so `SELECT 1; COMMIT; ...`
 * cannot escape the transaction. SELECTs are read through a cursor so a huge result is cut at
 * maxRows instead of filling memory; statements a cursor cannot hold (EXPLAIN, SHOW) run directly.
 * Needs a dedicated connection (a Client or a PoolClient).
 */
export async function runReadOnlySql(client: pg.ClientBase, sql: string, opts: { timeoutMs: number; maxRows?: number }): Promise<SqlResult> {
  const text = sql.trim().replace(/;\s*$/, '');
  if (!text) throw new UserError('The SQL statement is empty.', 'pass one statement, e.g. iotctl query sql "SELECT count(*) FROM iot_messages".');
  const maxRows = opts.maxRows ?? 10_000;
  const started = performance.now();
  await client.query('BEGIN READ ONLY');
  try {
    await client.query(`SELECT set_config('statement_timeout', $1, true)`, [`${Math.max(1, Math.round(opts.timeoutMs))}ms`]);
    await client.query('SAVEPOINT iotctl_cursor');
    let result: pg.QueryResult;
    let truncated = false;
    let declared = true;
    try {
      await client.query({ text: `DECLARE iotctl_query NO SCROLL CURSOR FOR ${text}`, queryMode: 'extended' } as pg.QueryConfig);
    } catch {
      // Not something a cursor can hold (EXPLAIN, SHOW, a write, a syntax error): DECLARE only parses
      // and plans, so running the statement itself costs nothing extra and reports the real error.
      declared = false;
      await client.query('ROLLBACK TO SAVEPOINT iotctl_cursor');
    }
    if (declared) {
      result = await client.query({ text: `FETCH FORWARD ${maxRows + 1} FROM iotctl_query`, queryMode: 'extended' } as pg.QueryConfig);
      result.command = 'SELECT';
      if (result.rows.length > maxRows) {
        result.rows.length = maxRows;
        truncated = true;
      }
    } else {
      try {
        result = await client.query({ text, queryMode: 'extended' } as pg.QueryConfig);
      } catch (error) {
        if ((error as { code?: string }).code === '25006') {
          await client.query('ROLLBACK TO SAVEPOINT iotctl_cursor');
          throw (await privilegeError(client, text)) ?? error;
        }
        throw error;
      }
    }
    const types = await typeNames(client, result.fields.map((f) => f.dataTypeID));
    return {
      columns: result.fields.map((f) => ({ name: f.name, type: types.get(f.dataTypeID) ?? String(f.dataTypeID) })),
      rows: result.rows,
      rowCount: result.rows.length,
      truncated,
      command: result.command,
      ms: Math.round(performance.now() - started),
    };
  } catch (error) {
    throw sqlUserError(error, opts.timeoutMs);
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

/**
 * The read-only transaction refuses a write before PostgreSQL checks privileges, which would hide whether the
 * role itself may write. EXPLAIN (without ANALYZE) plans the statement and checks its privileges but runs
 * nothing, so a role that may only read gets its "permission denied" here; a role that may write gets undefined
 * (and the read-only error stands).
 */
async function privilegeError(client: pg.ClientBase, text: string): Promise<Error | undefined> {
  try {
    await client.query({ text: `EXPLAIN ${text}`, queryMode: 'extended' } as pg.QueryConfig);
  } catch (error) {
    await client.query('ROLLBACK TO SAVEPOINT iotctl_cursor');
    if ((error as { code?: string }).code === '42501') return error as Error;
  }
  return undefined;
}

export async function typeNames(client: Queryable, oids: number[]): Promise<Map<number, string>> {
  if (oids.length === 0) return new Map();
  const { rows } = await client.query<{ oid: number; name: string }>('SELECT oid::int AS oid, format_type(oid, NULL) AS name FROM pg_type WHERE oid = ANY($1::oid[])', [oids]);
  return new Map(rows.map((r) => [r.oid, r.name]));
}

export function sqlUserError(error: unknown, timeoutMs: number): Error {
  const e = error as { code?: string; message?: string; position?: string };
  if (e.code === '25006') {
    return new UserError(`query sql is read-only: ${e.message}.`, 'use SELECT statements here; change data with psql or `iotctl db` commands.', 'SQL_READ_ONLY');
  }
  if (e.code === '57014') {
    return new UserError(`The query was cancelled after ${timeoutMs} ms (statement timeout).`, 'narrow the query (a WHERE on device_id and ts uses the index), or raise --timeout.', 'SQL_TIMEOUT');
  }
  if (e.code === '42501') {
    // insufficient_privilege: on the embedded server the reader role may read the tables only.
    return new UserError(`query sql may only read the tables: ${e.message}.`, 'query iot_messages and the other tables; server files, programs and writes are refused by PostgreSQL itself.', 'SQL_PERMISSION_DENIED');
  }
  if (e.code === '42601' && /multiple commands/i.test(e.message ?? '')) {
    return new UserError('query sql runs one statement at a time.', 'remove the extra statements (the ";" and what follows).', 'SQL_ERROR');
  }
  // Syntax errors, unknown tables and columns, type errors: the user's SQL is wrong.
  if (e.code && /^(42|22|0A|2F|3F)/.test(e.code)) {
    return new UserError(`SQL error: ${e.message}${e.position ? ` (at character ${e.position})` : ''}.`, 'fix the statement; `\\d iot_messages` in psql lists the columns.', 'SQL_ERROR');
  }
  return error instanceof Error ? error : new Error(String(error));
}
