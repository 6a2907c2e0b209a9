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
 */
export async function openDuck(opts: { threads?: number } = {}): Promise<Duck> {
  const options: Record<string, string> = {};
  if (opts.threads) options.threads = String(opts.threads);
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
