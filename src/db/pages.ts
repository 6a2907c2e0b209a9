import { createHash, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { UserError } from '../ui/errors.js';
import type { Queryable } from './connection.js';
import { timed } from './maintenance.js';
import { recentCursorOf, recentMessages, runReadOnlySql, sqlUserError, typeNames, type MessageRecord, type RecentCursor, type RecentQuery } from './queries.js';

/**
 * Results in pages small enough for one Lambda response (6 MB), each with a cursor for the next page, so that
 * every row comes exactly once across pages:
 * - `query recent` pages by key (the query's total order: ts, sequence number, message id): stateless, any
 *   container can serve the next page, and rows arriving meanwhile never shift it.
 * - `query sql` pages through one server-side cursor in a REPEATABLE READ READ ONLY transaction that the warm
 *   container keeps open between invocations (one snapshot for the whole result). When the next page reaches
 *   another container (or the transaction timed out), that one re-runs the statement and skips the rows already
 *   delivered (with synchronized scans and parallel plans off, so an unchanged table yields the same order); the
 *   page then says `resumed`: exact when the statement has an ORDER BY on a unique key.
 * A page's size is measured as the JSON the rows serialize to.
 */

/** Lambda's synchronous response limit is 6 MB (6,291,456 bytes); this leaves room for the page's other fields. */
export const MAX_PAGE_BYTES = 6_000_000;
export const DEFAULT_PAGE_BYTES = 5_500_000;

export interface Page<R = Record<string, unknown>> {
  rows: R[];
  rowCount: number;
  /** JSON bytes of `rows`. */
  bytes: number;
  /** Give it back for the next page; null when this was the last page. */
  cursor: string | null;
  /** The handler's time for this page, and the part of it spent in PostgreSQL. */
  ms: number;
  dbMs: number;
  columns?: Array<{ name: string; type: string }>;
  command?: string;
  /** query sql: the statement was re-run to continue (see above). */
  resumed?: boolean;
  /** query sql: cut at maxRows. */
  truncated?: boolean;
}

/**
 * How many of `rows` fit in `budget` bytes of JSON array (brackets and commas counted), and their size. Throws
 * when even the first row does not fit: it could never be returned.
 */
export function fitRows(rows: readonly unknown[], budget: number, used = 2): { count: number; bytes: number } {
  let bytes = used;
  for (let i = 0; i < rows.length; i++) {
    const size = Buffer.byteLength(JSON.stringify(rows[i])) + (bytes > 2 ? 1 : 0);
    if (bytes + size > budget) {
      if (i === 0 && used <= 2) {
        throw new UserError(`A row is ${(size / 1e6).toFixed(1)} MB as JSON, more than a page (${(budget / 1e6).toFixed(1)} MB) can carry.`, 'select fewer or smaller columns for it (e.g. payload->\'field\').', 'ROW_TOO_LARGE');
      }
      return { count: i, bytes };
    }
    bytes += size;
  }
  return { count: rows.length, bytes };
}

export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodeCursor<T>(cursor: string, kind: string): T {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { k?: string };
    if (value?.k === kind) return value as T;
  } catch {
    // falls through
  }
  throw new UserError('The page cursor is not one this query returned.', 'start again without a cursor.', 'BAD_CURSOR');
}

const fingerprint = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('base64url').slice(0, 16);

interface RecentState {
  k: 'recent';
  /** The query the cursor belongs to. */
  h: string;
  after: RecentCursor;
  /** Messages of the --limit still to come. */
  left: number;
}

export interface RecentPageOptions {
  cursor?: string | null;
  pageBytes?: number;
  /** Rows read per round trip while filling a page. */
  chunkRows?: number;
}

/** One page of recentMessages(q): at most q.limit messages in all, across pages. */
export async function recentPage(client: Queryable, q: RecentQuery, opts: RecentPageOptions = {}): Promise<Page<MessageRecord>> {
  const started = performance.now();
  const db = timed(client);
  const budget = Math.min(opts.pageBytes ?? DEFAULT_PAGE_BYTES, MAX_PAGE_BYTES);
  const h = fingerprint([q.deviceId, q.since?.toISOString() ?? null, q.topicFilter ?? null, q.limit]);
  let after: RecentCursor | undefined;
  let left = q.limit;
  if (opts.cursor) {
    const state = decodeCursor<RecentState>(opts.cursor, 'recent');
    if (state.h !== h) throw new UserError('The page cursor belongs to another query.', 'give the same device, --since, --topic and --limit as the first page.', 'BAD_CURSOR');
    after = state.after;
    left = state.left;
  }
  const rows: MessageRecord[] = [];
  let bytes = 2;
  let full = false;
  while (left > 0 && !full) {
    const want = Math.min(left, opts.chunkRows ?? 5_000);
    const chunk = (await recentMessages(db, { ...q, limit: want, after, withKeys: true })) as unknown as KeyedMessage[];
    let taken = 0;
    for (const row of chunk) {
      const size = messageJsonBytes(row) + (bytes > 2 ? 1 : 0);
      if (bytes + size > budget) {
        if (bytes === 2) throw new UserError(`A message is ${(size / 1e6).toFixed(1)} MB as JSON, more than a page (${(budget / 1e6).toFixed(1)} MB) can carry.`, 'read it with query sql, selecting fewer or smaller payload fields.', 'ROW_TOO_LARGE');
        break;
      }
      bytes += size;
      taken++;
    }
    for (const row of chunk.slice(0, taken)) rows.push(toMessage(row));
    left -= taken;
    if (taken > 0) after = recentCursorOf({ ...rows[rows.length - 1]!, ts_key: chunk[taken - 1]!.ts_key });
    if (taken < chunk.length) full = true;
    else if (chunk.length < want) left = 0; // no more messages
  }
  const more = left > 0;
  return {
    rows,
    rowCount: rows.length,
    bytes,
    cursor: more ? encodeCursor({ k: 'recent', h, after: after!, left } satisfies RecentState) : null,
    ms: Math.round(performance.now() - started),
    dbMs: Math.round(db.ms()),
  };
}

type KeyedMessage = Omit<MessageRecord, 'payload'> & { payload_text: string; ts_key: string };

function toMessage(m: KeyedMessage): MessageRecord {
  return {
    message_id: m.message_id,
    device_id: m.device_id,
    ts: m.ts,
    topic: m.topic,
    payload: JSON.parse(m.payload_text) as Record<string, unknown>,
    stream: m.stream,
    shard_id: m.shard_id,
    sequence_number: m.sequence_number,
    received_at: m.received_at,
  };
}

/** `{"message_id":…,"received_at":…}` without the braces' contents: keys, quotes, colons, commas. */
const MESSAGE_KEYS_BYTES = Buffer.byteLength(JSON.stringify({ message_id: '', device_id: '', ts: '', topic: '', payload: 0, stream: '', shard_id: '', sequence_number: '', received_at: '' })) - 8 * 2 - 1;
const DATE_BYTES = 29; // "2026-01-02T03:04:05.678Z", or "+010000-01-01T00:00:00.000Z" outside years 0-9999

/**
 * An upper bound of JSON.stringify(message)'s bytes without serializing it (that would cost as much as the query):
 * jsonb's text is never shorter than JSON.stringify of the parsed payload (it adds spaces after ':' and ',', and
 * prints numbers in full where JavaScript may shorten them; strings are escaped alike).
 */
export function messageJsonBytes(m: KeyedMessage): number {
  return MESSAGE_KEYS_BYTES + 2 * DATE_BYTES + Buffer.byteLength(m.payload_text) + [m.message_id, m.device_id, m.topic, m.stream, m.shard_id, m.sequence_number].reduce((s, v) => s + jsonStringBytes(v), 0);
}

function jsonStringBytes(value: string | null): number {
  if (value === null) return 4;
  return /["\\\u0000-\u001f]/.test(value) ? Buffer.byteLength(JSON.stringify(value)) : Buffer.byteLength(value) + 2;
}

interface SqlState {
  k: 'sql';
  h: string;
  /** The open transaction in the container that served the previous page. */
  id: string;
  /** Rows delivered so far. */
  n: number;
}

export interface SqlPageOptions {
  timeoutMs: number;
  cursor?: string | null;
  pageBytes?: number;
  chunkRows?: number;
  /** Cut the whole result at this many rows (truncated: true on the page that reaches it). */
  maxRows?: number;
  /** How long an open result waits for its next page before PostgreSQL ends its transaction. */
  idleMs?: number;
}

interface OpenResult {
  client: pg.Client;
  h: string;
  delivered: number;
  /** Rows fetched that did not fit the previous page. */
  pending: Record<string, unknown>[];
  columns: Array<{ name: string; type: string }>;
  done: boolean;
}

/**
 * `query sql` in pages. Holds the open results of this process (a warm Lambda container): connect() opens a
 * dedicated connection per result, since its transaction outlives the invocation.
 */
export class SqlPager {
  private readonly open = new Map<string, OpenResult>();

  constructor(
    private readonly connect: () => Promise<pg.Client>,
    private readonly maxOpen = 4,
  ) {}

  async page(sql: string, opts: SqlPageOptions): Promise<Page> {
    const started = performance.now();
    const budget = Math.min(opts.pageBytes ?? DEFAULT_PAGE_BYTES, MAX_PAGE_BYTES);
    const h = fingerprint([sql, opts.maxRows ?? null]);
    let id: string;
    let state: OpenResult | undefined;
    let resumed = false;
    let dbMs = 0;
    if (opts.cursor) {
      const c = decodeCursor<SqlState>(opts.cursor, 'sql');
      if (c.h !== h) throw new UserError('The page cursor belongs to another statement.', 'give the same SQL as the first page.', 'BAD_CURSOR');
      id = c.id;
      state = this.open.get(id);
      if (!state || state.delivered !== c.n) {
        await this.close(id);
        const t = performance.now();
        state = await this.start(sql, opts, c.n);
        dbMs += performance.now() - t;
        if (!state) throw new UserError('The statement no longer returns rows to continue from.', 'run it again without a cursor.', 'BAD_CURSOR');
        state.h = h;
        resumed = true;
      }
    } else {
      id = randomUUID();
      const t = performance.now();
      state = await this.start(sql, opts, 0);
      dbMs += performance.now() - t;
      if (!state) {
        // Not something a cursor can hold (EXPLAIN, SHOW) or an error: one page, and the real error if any.
        const client = await this.connect();
        try {
          const t2 = performance.now();
          const r = await runReadOnlySql(client, sql, { timeoutMs: opts.timeoutMs, maxRows: opts.maxRows });
          dbMs += performance.now() - t2;
          const fit = fitRows(r.rows, budget);
          return { rows: r.rows.slice(0, fit.count), rowCount: fit.count, bytes: fit.bytes, cursor: null, ms: Math.round(performance.now() - started), dbMs: Math.round(dbMs), columns: r.columns, command: r.command, truncated: r.truncated || fit.count < r.rows.length };
        } finally {
          await client.end().catch(() => undefined);
        }
      }
      state.h = h;
    }
    this.open.set(id, state);
    const rows: Record<string, unknown>[] = [];
    let bytes = 2;
    let full = false;
    let truncated = false;
    try {
      while (!full) {
        if (!state.pending.length && !state.done) {
          const t = performance.now();
          const chunk = opts.chunkRows ?? 1_000;
          const r = await state.client.query(`FETCH FORWARD ${chunk} FROM iotctl_page`);
          dbMs += performance.now() - t;
          if (!state.columns.length && r.fields.length) {
            const types = await typeNames(state.client, r.fields.map((f) => f.dataTypeID));
            state.columns = r.fields.map((f) => ({ name: f.name, type: types.get(f.dataTypeID) ?? String(f.dataTypeID) }));
          }
          state.pending = r.rows;
          if (r.rows.length < chunk) state.done = true;
        }
        if (!state.pending.length) break;
        let take = state.pending;
        if (opts.maxRows !== undefined && state.delivered + take.length > opts.maxRows) {
          take = take.slice(0, Math.max(0, opts.maxRows - state.delivered));
          truncated = true;
        }
        const fit = fitRows(take, budget, bytes);
        rows.push(...take.slice(0, fit.count));
        bytes = fit.bytes;
        state.pending = state.pending.slice(fit.count);
        state.delivered += fit.count;
        if (fit.count < take.length) full = true;
        else if (truncated) break;
      }
    } catch (error) {
      await this.close(id);
      throw sqlUserError(error, opts.timeoutMs);
    }
    const last = truncated || (state.done && !state.pending.length);
    if (last) await this.close(id);
    return {
      rows,
      rowCount: rows.length,
      bytes,
      cursor: last ? null : encodeCursor({ k: 'sql', h, id, n: state.delivered } satisfies SqlState),
      ms: Math.round(performance.now() - started),
      dbMs: Math.round(dbMs),
      columns: state.columns,
      command: 'SELECT',
      ...(resumed ? { resumed } : {}),
      ...(truncated ? { truncated } : {}),
    };
  }

  /** Ends every open result (the local function runner's stop, tests). */
  async closeAll(): Promise<void> {
    await Promise.all([...this.open.keys()].map((id) => this.close(id)));
  }

  /** Opens the result and skips `skip` rows; undefined when the statement is not one a cursor can hold. */
  private async start(sql: string, opts: SqlPageOptions, skip: number): Promise<OpenResult | undefined> {
    const text = sql.trim().replace(/;\s*$/, '');
    if (!text) throw new UserError('The SQL statement is empty.', 'pass one statement, e.g. iotctl query sql "SELECT count(*) FROM iot_messages".');
    while (this.open.size >= this.maxOpen) await this.close(this.open.keys().next().value!);
    const client = await this.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      // statement_timeout bounds each FETCH; idle_in_transaction_session_timeout ends a result nobody asks for
      // (a frozen or recycled container) on the server's side; the other two make a re-run yield the same order.
      await client.query(
        `SELECT set_config('statement_timeout', $1, true), set_config('idle_in_transaction_session_timeout', $2, true),
                set_config('synchronize_seqscans', 'off', true), set_config('max_parallel_workers_per_gather', '0', true)`,
        [`${Math.max(1, Math.round(opts.timeoutMs))}ms`, `${Math.round(opts.idleMs ?? 120_000)}ms`],
      );
      try {
        await client.query({ text: `DECLARE iotctl_page NO SCROLL CURSOR FOR ${text}`, queryMode: 'extended' } as pg.QueryConfig);
      } catch {
        await client.end().catch(() => undefined);
        return undefined;
      }
      if (skip > 0) await client.query(`MOVE FORWARD ${Math.floor(skip)} FROM iotctl_page`);
      return { client, h: '', delivered: skip, pending: [], columns: [], done: false };
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
  }

  private async close(id: string): Promise<void> {
    const state = this.open.get(id);
    this.open.delete(id);
    if (state) {
      await state.client.query('ROLLBACK').catch(() => undefined);
      await state.client.end().catch(() => undefined);
    }
  }
}
