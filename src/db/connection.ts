import { userInfo } from 'node:os';
import type pg from 'pg';
import { Client } from './pg.js';
import { UserError } from '../ui/errors.js';
import { readDaemonInfo } from '../targets/local/daemon-info.js';
import { embeddedRoleUrl, readEmbeddedCredentials, type DatabaseRole } from '../targets/local/db-credentials.js';
import { redactSecrets, redactUrl } from './redact.js';

export { redactSecrets, redactUrl, type DatabaseRole };

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
  /** Which of the embedded server's roles (db-credentials.ts): reader for queries, owner (the default) for migrations. */
  role?: DatabaseRole;
}): DatabaseTarget {
  const configured = configuredDatabase(opts);
  if (configured) return configured;
  const daemon = runningDaemonDatabase(opts.stateDir, opts.role ?? 'owner');
  if (daemon) return daemon;
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
  if (env.DATABASE_URL) return { url: checkConnectionUrl(env.DATABASE_URL, 'DATABASE_URL'), display: redactUrl(env.DATABASE_URL), source: 'DATABASE_URL' };
  if (PG_ENV.some((name) => env[name])) return { url: undefined, display: pgEnvDisplayUrl(env), source: 'PG environment' };
  const spec = typeof opts.spec === 'function' ? opts.spec() : opts.spec;
  const specUrl = spec?.database?.url;
  if (specUrl) return { url: checkConnectionUrl(specUrl, 'database.url in iotctl.yaml'), display: redactUrl(specUrl), source: 'iotctl.yaml' };
  return undefined;
}

/**
 * The running daemon's database for one role, or undefined when no daemon runs. daemon.json holds no password:
 * the embedded server's come from postgres.json (0600); a server the daemon was configured with is named there
 * without its password, so this process needs the same configuration.
 */
function runningDaemonDatabase(stateDir: string, role: DatabaseRole): DatabaseTarget | undefined {
  const info = readDaemonInfo(stateDir);
  if (!info?.databaseUrl) return undefined;
  if (info.databaseSource && info.databaseSource !== 'embedded') {
    throw new UserError(
      `The local platform uses the PostgreSQL server at ${redactUrl(info.databaseUrl)} (from ${info.databaseSource} where it was started), whose password iotctl never stores.`,
      `give this command the same setting (${info.databaseSource === 'iotctl.yaml' ? 'database.url in iotctl.yaml' : info.databaseSource === 'PG environment' ? 'the PG* variables' : 'DATABASE_URL'}).`,
      'DB_CREDENTIALS_ELSEWHERE',
    );
  }
  const credentials = readEmbeddedCredentials(stateDir);
  if (!credentials?.rolesVersion) {
    throw new UserError(
      `Cannot read the embedded PostgreSQL's credentials in ${stateDir}/postgres.json.`,
      'run iotctl as the user that started the local platform, or restart it with `iotctl local down` and `iotctl local up`.',
      'DB_CREDENTIALS_MISSING',
    );
  }
  const url = embeddedRoleUrl(credentials, role);
  return { url, display: redactUrl(url), source: 'embedded' };
}

/**
 * A connection URL as pg will parse it, or a UserError (password masked) for one it cannot: pg takes
 * postgres:// and postgresql:// URLs and socket paths, not libpq's key=value strings, and a malformed URL
 * would otherwise end as "Invalid URL" at connect time.
 */
export function checkConnectionUrl(url: string, from: string): string {
  const shown = redactSecrets(url, []);
  if (url.startsWith('/')) return url;
  if (/^\s*[a-z_]+\s*=/i.test(url)) {
    throw new UserError(
      // The string last: the masked password runs to the next space, so nothing may follow it.
      `${from} is a key=value connection string, and iotctl takes a URL: ${shown}`,
      'write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE (percent-encode special characters in the password, e.g. @ as %40).',
      'DB_URL_INVALID',
    );
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  let valid = scheme === 'postgres' || scheme === 'postgresql' || scheme === 'socket';
  if (valid) {
    // What pg's parser (pg-connection-string) does: encode spaces and stray %, then parse, with a dummy host for "@/".
    const encoded = / |%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i.test(url) ? encodeURI(url).replace(/%25(\d\d)/g, '%$1') : url;
    valid = [encoded, encoded.replace('@/', '@___DUMMY___/')].some((candidate) => {
      try {
        new URL(candidate, 'postgres://base');
        return true;
      } catch {
        return false;
      }
    });
  }
  if (!valid) {
    throw new UserError(
      `${from} is not a valid PostgreSQL URL: ${shown}`,
      'write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE (percent-encode special characters in the password, e.g. @ as %40, # as %23, / as %2F).',
      'DB_URL_INVALID',
    );
  }
  return url;
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
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
  let client: pg.Client;
  try {
    client = new Client(clientConfig(target, extra));
  } catch (error) {
    // pg parses the URL here: a malformed one (from an adapter that did not check it) is the user's to fix.
    throw new UserError(`Cannot use the PostgreSQL URL ${target.display} (from ${target.source}): ${redactSecrets((error as Error).message)}`, 'check the connection URL.', 'DB_URL_INVALID');
  }
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
export async function withClient<T>(target: DatabaseTarget, ...args: [fn: (client: pg.Client) => Promise<T>] | [extra: pg.ClientConfig, fn: (client: pg.Client) => Promise<T>]): Promise<T> {
  const [extra, fn] = args.length === 1 ? [{}, args[0]] : args;
  const client = await connect(target, extra);
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
  return /Connection terminated|connection timeout|timeout expired|Query read timeout|Client has encountered a connection error|not queryable/i.test(e?.message ?? '');
}

export function connectionUserError(error: unknown, target: DatabaseTarget): Error {
  const e = error as { code?: string; message?: string };
  const where = `${target.display} (from ${target.source})`;
  if (/timeout expired|connection timeout|Query read timeout/i.test(e.message ?? '') || e.code === 'ETIMEDOUT') {
    return new UserError(
      `PostgreSQL at ${where} did not answer in time (${e.message}): the server is overloaded, stopped or unreachable.`,
      target.source === 'embedded' ? 'check it with `iotctl local status`, or restart the local platform (`iotctl local down`, `iotctl local up`).' : 'check that the server is running and reachable, then try again.',
      'DB_TIMEOUT',
    );
  }
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
      return new UserError(`PostgreSQL rejected the credentials for ${where}: ${redactSecrets(e.message ?? '')}`, 'check the user and password in the connection URL.', 'DB_AUTH');
    case '3D000':
      return new UserError(`${e.message} on ${where}.`, 'create it (`createdb NAME`) or fix the database name in the URL.', 'DB_MISSING');
    default:
      if (isConnectionError(error)) return new UserError(`Cannot connect to PostgreSQL at ${where}: ${redactSecrets(e.message ?? '')}`, 'check that the server is running and reachable.', 'DB_UNREACHABLE');
      return error instanceof Error ? error : new Error(String(error));
  }
}
