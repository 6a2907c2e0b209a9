/**
 * query-rds: `query recent` and `query sql` where the operator's machine cannot reach the database (RDS in
 * private subnets). Runs in the database's VPC as the reader role (SELECT only, read-only transactions), the
 * same parameterized queries as the CLI (src/db/queries.ts) with a statement timeout, and returns the rows in
 * pages under Lambda's 6 MB response limit with a cursor for the next page (src/db/pages.ts).
 *
 * Events:
 *   {"query": "recent", "deviceId": "d1", "limit": 100, "since"?: ISO, "topic"?: filter, "cursor"?: string}
 *   {"query": "sql", "sql": "SELECT ...", "timeoutMs"?: n, "maxRows"?: n, "cursor"?: string}
 *   both: "pageBytes"? (at most 6,000,000), "chunkRows"? (rows per round trip)
 * Returns a Page ({rows, rowCount, bytes, cursor, ms, dbMs, columns?, ...}), or {error: {message, hint, code}}
 * for a bad query (a user error, not a function error).
 */
import type pg from 'pg';
import { isConnectionError } from '../../src/db/connection.js';
import { Client } from '../../src/db/pg.js';
import { DEFAULT_PAGE_BYTES, recentPage, SqlPager, type Page } from '../../src/db/pages.js';
import { UserError } from '../../src/ui/errors.js';
import { resolveConnection } from '../ingest-rds/database.js';

export type QueryEvent =
  | { query: 'recent'; deviceId: string; limit: number; since?: string; topic?: string; includeCanary?: boolean; cursor?: string | null; pageBytes?: number; chunkRows?: number }
  | { query: 'sql'; sql: string; timeoutMs?: number; maxRows?: number; cursor?: string | null; pageBytes?: number; chunkRows?: number };

export type QueryResponse = Page<object> | { error: { message: string; hint?: string; code: string } };

let config: Promise<pg.ClientConfig> | undefined;
let recentClient: Promise<pg.Client> | undefined;

function connectionConfig(): Promise<pg.ClientConfig> {
  config ??= resolveConnection().then(
    (r) => ({ ...r.config, application_name: 'iotctl-query-rds', connectionTimeoutMillis: Number(process.env.PG_CONNECT_TIMEOUT_MS ?? 5_000) }) as pg.ClientConfig,
    (error) => {
      config = undefined;
      throw error;
    },
  );
  return config;
}

async function newClient(): Promise<pg.Client> {
  const client = new Client(await connectionConfig());
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/**
 * One connection for `recent` pages, kept while the container is warm, read-only and time-limited for its whole
 * session: a page then costs only its own queries (no BEGIN, SET, ROLLBACK round trips).
 */
function getRecentClient(timeoutMs: number): Promise<pg.Client> {
  recentClient ??= newClient()
    .then(async (client) => {
      await client.query(`SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY; SET statement_timeout = ${Math.max(1, Math.round(timeoutMs))}`);
      return client;
    })
    .catch((error) => {
      recentClient = undefined;
      throw error;
    });
  return recentClient;
}

const pager = new SqlPager(newClient);

/** Ends the connections (the local function runner between servers, tests). */
export async function close(): Promise<void> {
  await pager.closeAll();
  const c = recentClient;
  recentClient = undefined;
  config = undefined;
  await (await c?.catch(() => undefined))?.end().catch(() => undefined);
}

export async function handler(event: QueryEvent): Promise<QueryResponse> {
  try {
    const timeoutMs = Number(process.env.QUERY_TIMEOUT_MS ?? 30_000);
    // pages.ts caps it at MAX_PAGE_BYTES whatever is asked.
    const pageBytes = event.pageBytes ?? Number(process.env.PAGE_BYTES ?? DEFAULT_PAGE_BYTES);
    if (event?.query === 'recent') {
      if (typeof event.deviceId !== 'string' || !event.deviceId) throw new UserError('"deviceId" is missing.', 'send {"query": "recent", "deviceId": "...", "limit": 100}.', 'BAD_EVENT');
      const since = event.since === undefined ? undefined : new Date(event.since);
      if (since && Number.isNaN(since.getTime())) throw new UserError(`"since" is not a time: ${event.since}.`, 'give an ISO time.', 'BAD_EVENT');
      const client = await getRecentClient(timeoutMs);
      try {
        return await recentPage(client, { deviceId: event.deviceId, limit: event.limit, since, topicFilter: event.topic, includeCanary: event.includeCanary === true }, { cursor: event.cursor, pageBytes, chunkRows: event.chunkRows });
      } catch (error) {
        if (isConnectionError(error)) {
          // The connection died: the next invocation opens a new one.
          recentClient = undefined;
          await client.end().catch(() => undefined);
        }
        throw error;
      }
    }
    if (event?.query === 'sql') {
      if (typeof event.sql !== 'string') throw new UserError('"sql" is missing.', 'send {"query": "sql", "sql": "SELECT ..."}.', 'BAD_EVENT');
      return await pager.page(event.sql, { timeoutMs: event.timeoutMs ?? timeoutMs, maxRows: event.maxRows, cursor: event.cursor, pageBytes, chunkRows: event.chunkRows });
    }
    throw new UserError(`Unknown query "${(event as { query?: unknown })?.query}".`, 'send "query": "recent" or "sql".', 'BAD_EVENT');
  } catch (error) {
    if (error instanceof UserError) return { error: { message: error.message, hint: error.hint, code: error.code } };
    throw error;
  }
}
