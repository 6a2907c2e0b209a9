import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

export type Db = Database.Database;

/**
 * The local platform's state store: one SQLite database in WAL mode shared by the daemon and the CLI.
 * Each component creates its own tables (prefixed by component) with CREATE TABLE IF NOT EXISTS.
 */
export function openStore(stateDir: string, file = 'state.db'): Db {
  mkdirSync(stateDir, { recursive: true });
  const db = new Database(join(stateDir, file));
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 10000');
  // NORMAL in WAL mode survives a process crash (SIGKILL); FULL also survives power loss. The ingress log
  // raises this to FULL for its own commits.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  return db;
}

/** A cheap change detector: PRAGMA data_version moves when another connection commits. */
export function watchDataVersion(db: Db, onChange: () => void, intervalMs = 200): () => void {
  let last = db.pragma('data_version', { simple: true });
  const timer = setInterval(() => {
    const now = db.pragma('data_version', { simple: true });
    if (now !== last) {
      last = now;
      onChange();
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Open the store for one piece of work and close it afterwards, whatever happens. */
export async function withStore<T>(stateDir: string, fn: (db: Db) => T | Promise<T>): Promise<T> {
  const db = openStore(stateDir);
  try {
    return await fn(db);
  } finally {
    db.close();
  }
}
