import { userInfo } from 'node:os';
import type pg from 'pg';
import { Client } from './pg.js';
import { UserError } from '../ui/errors.js';
import { readDaemonInfo } from '../targets/local/daemon-info.js';

/** What any pg client (a Client, a Pool, a PoolClient) offers; the db code needs only this. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

type SpecDatabase = { database?: { url?: string } };

export type DatabaseSource = 'DATABASE_URL' | 'PG environment' | 'iotctl.yaml' | 'embedded';

/** The PostgreSQL server iotctl talks to, and why that one. */
export interface DatabaseTarget {
  /** The connection string; undefined when PG* variables are used (pg reads them itself). */
  url: string | undefined;
  /** For messages and daemon.json: the URL with its password masked. */
  display: string;
  /** A DatabaseSource here; the aws target adds its own (e.g. RDS with an IAM token). */
  source: string;
  /** Extra pg.ClientConfig from the target: TLS options, an IAM token or a secret's password. */
  clientConfig?: Record<string, unknown>;
}

const PG_ENV = ['PGHOST', 'PGHOSTADDR', 'PGPORT', 'PGDATABASE', 'PGUSER', 'PGPASSWORD', 'PGSERVICE', 'PGSSLMODE'];

/**
 * Which server: DATABASE_URL, else the PG* variables, else `database.url` in iotctl.yaml, else the
 * embedded server of a running local platform (`.iotctl/daemon.json`).
 */
export function resolveDatabaseUrl(opts: {
  /** The spec, or a function loading it: it is only read when no environment variable decides. */
  spec?: SpecDatabase | (() => SpecDatabase | undefined);
  stateDir: string;
  env?: NodeJS.ProcessEnv;
}): DatabaseTarget {
  const configured = configuredDatabase(opts);
  if (configured) return configured;
  const daemon = readDaemonDatabaseUrl(opts.stateDir);
  if (daemon) return { url: daemon, display: redactUrl(daemon), source: 'embedded' };
  throw new UserError(
    'No PostgreSQL server: the local platform is not running and no database is configured.',
    'start the local platform with `iotctl local up`, or set DATABASE_URL (or database.url in iotctl.yaml).',
    'NO_DATABASE',
  );
}

/**
 * The server the user configured (DATABASE_URL, PG*, database.url), or undefined when the local
 * platform should start its embedded one. The daemon uses this; commands use resolveDatabaseUrl.
 */
export function configuredDatabase(opts: { spec?: SpecDatabase | (() => SpecDatabase | undefined); env?: NodeJS.ProcessEnv }): DatabaseTarget | undefined {
  const env = opts.env ?? process.env;
  if (env.DATABASE_URL) return { url: env.DATABASE_URL, display: redactUrl(env.DATABASE_URL), source: 'DATABASE_URL' };
  if (PG_ENV.some((name) => env[name])) return { url: undefined, display: pgEnvDisplayUrl(env), source: 'PG environment' };
  const spec = typeof opts.spec === 'function' ? opts.spec() : opts.spec;
  const specUrl = spec?.database?.url;
  if (specUrl) return { url: specUrl, display: redactUrl(specUrl), source: 'iotctl.yaml' };
  return undefined;
}

/** The databaseUrl of a running daemon, or undefined when there is none or its pid is dead. */
function readDaemonDatabaseUrl(stateDir: string): string | undefined {
  return readDaemonInfo(stateDir)?.databaseUrl;
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/:\/\/([^:@/]+):[^@/]*@/, '://$1:***@');
  }
}

/** The URL pg will effectively use from PG* variables (same defaults as libpq), password masked. */
function pgEnvDisplayUrl(env: NodeJS.ProcessEnv): string {
  const user = env.PGUSER ?? safeUserName();
  const host = env.PGHOST ?? env.PGHOSTADDR ?? 'localhost';
  const port = env.PGPORT ?? '5432';
  const database = env.PGDATABASE ?? user;
  const auth = encodeURIComponent(user) + (env.PGPASSWORD ? ':***' : '');
  return `postgres://${auth}@${host.startsWith('/') ? encodeURIComponent(host) : host}:${port}/${encodeURIComponent(database)}`;
}

function safeUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'postgres';
  }
}

export function clientConfig(target: DatabaseTarget, extra: pg.ClientConfig = {}): pg.ClientConfig {
  return {
    ...(target.url ? { connectionString: target.url } : {}),
    connectionTimeoutMillis: 10_000,
    application_name: 'iotctl',
    ...(target.clientConfig as pg.ClientConfig | undefined),
    ...extra,
  };
}

/** A connected client, or a UserError that says which server refused and what to do. */
export async function connect(target: DatabaseTarget, extra: pg.ClientConfig = {}): Promise<pg.Client> {
  const client = new Client(clientConfig(target, extra));
  // A server that goes away while the client is idle emits 'error'; without a listener Node would crash.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw connectionUserError(error, target);
  }
  return client;
}

/** Runs fn with a connected client and always closes it. */
export async function withClient<T>(target: DatabaseTarget, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connect(target);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Errors that mean "the server is unreachable or the session died": retrying later may succeed. */
export function isConnectionError(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | undefined;
  const code = e?.code ?? '';
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code)) return true;
  // SQLSTATE class 08 (connection exception), 57P01..57P03 (admin shutdown, crash shutdown, cannot connect now), 53300 (too many connections).
  if (/^08/.test(code) || ['57P01', '57P02', '57P03', '53300'].includes(code)) return true;
  return /Connection terminated|connection timeout|Client has encountered a connection error|not queryable/i.test(e?.message ?? '');
}

export function connectionUserError(error: unknown, target: DatabaseTarget): Error {
  const e = error as { code?: string; message?: string };
  const where = `${target.display} (from ${target.source})`;
  switch (e.code) {
    case 'ECONNREFUSED':
      return new UserError(
        `PostgreSQL refused the connection at ${where}.`,
        target.source === 'embedded' ? 'restart the local platform with `iotctl local up`.' : 'check that the server is running and the host and port are right.',
        'DB_UNREACHABLE',
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new UserError(`Cannot resolve the PostgreSQL host of ${where}.`, 'check the host name in the connection URL.', 'DB_UNREACHABLE');
    case '28P01':
    case '28000':
      return new UserError(`PostgreSQL rejected the credentials for ${where}: ${e.message}`, 'check the user and password in the connection URL.', 'DB_AUTH');
    case '3D000':
      return new UserError(`${e.message} on ${where}.`, 'create it (`createdb NAME`) or fix the database name in the URL.', 'DB_MISSING');
    default:
      if (isConnectionError(error)) return new UserError(`Cannot connect to PostgreSQL at ${where}: ${e.message}`, 'check that the server is running and reachable.', 'DB_UNREACHABLE');
      return error instanceof Error ? error : new Error(String(error));
  }
}
