import Database from 'better-sqlite3';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { ensureStateDir } from './state-dir.js';

export type Db = Database.Database;

/**
 * The local platform's state store: one SQLite database in WAL mode shared by the daemon and the CLI.
 * Each component creates its own tables (prefixed by component) with CREATE TABLE IF NOT EXISTS.
 */
export function openStore(stateDir: string, file = 'state.db'): Db {
  ensureStateDir(stateDir);
  const path = join(stateDir, file);
  const db = new Database(path);
  // SQLite gives the -wal and -shm files the database file's mode: private from the start.
  chmodSync(path, 0o600);
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
