import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';

/** A DuckDB identifier, double-quoted. */
export const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** A DuckDB string literal, single-quoted. */
export const lit = (value: string): string => `'${value.replace(/'/g, "''")}'`;

/** A list literal of file paths: ['a', 'b']. */
export const fileList = (paths: readonly string[]): string => `[${paths.map(lit).join(', ')}]`;

export interface Duck {
  instance: DuckDBInstance;
  connection: DuckDBConnection;
  close(): void;
}

/**
 * An in-memory DuckDB. The lake never keeps a DuckDB database file: Parquet files plus the SQLite manifest
 * are the state, so a crash cannot leave a DuckDB file to repair. Sessions run in UTC, as Athena does.
 * `tempDirectory` is where it spills (DuckDB's default for an in-memory database is `.tmp` in the cwd).
 */
export async function openDuck(opts: { threads?: number; tempDirectory?: string } = {}): Promise<Duck> {
  const options: Record<string, string> = {};
  if (opts.threads) options.threads = String(opts.threads);
  if (opts.tempDirectory) options.temp_directory = opts.tempDirectory;
  const instance = await DuckDBInstance.create(':memory:', options);
  const connection = await instance.connect();
  await connection.run(`SET TimeZone = 'UTC'`);
  return {
    instance,
    connection,
    close() {
      connection.closeSync();
      instance.closeSync();
    },
  };
}

/** What a DuckDB that runs user SQL may touch. */
export interface Sandbox {
  /** Folders it may read, by prefix (DuckDB compares normalized paths, so `..` cannot leave them). */
  folders: readonly string[];
  /** Single files iotctl itself has DuckDB write: the query profile, a dataset's content. */
  files: readonly string[];
}

/**
 * Confines DuckDB to the sandbox (plus its temp directory): any other file, an extension install or load,
 * ATTACH, COPY or EXPORT elsewhere fails with a Permission Error. The configuration is then locked, so SQL
 * cannot undo it (SET, RESET and PRAGMA of a setting fail). Run it after the session's own settings.
 */
export async function confine(c: DuckDBConnection, sandbox: Sandbox): Promise<void> {
  await c.run(`SET allowed_directories = ${fileList(sandbox.folders.map((f) => (f.endsWith('/') ? f : `${f}/`)))}`);
  await c.run(`SET allowed_paths = ${fileList(sandbox.files)}`);
  await c.run(`SET autoinstall_known_extensions = false`);
  await c.run(`SET autoload_known_extensions = false`);
  await c.run(`SET allow_community_extensions = false`);
  await c.run(`SET enable_external_access = false`);
  await c.run(`SET lock_configuration = true`);
}

/** DuckDB's errors for what confine() refuses. */
export const SANDBOX_ERROR = /^(Permission Error|Invalid Input Error: Cannot change configuration option)/;
