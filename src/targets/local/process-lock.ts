import Database from 'better-sqlite3';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * An exclusive lock held by a process for as long as it lives, whose liveness never rests on a pid.
 *
 * It is SQLite's file lock (POSIX fcntl record locks, through better-sqlite3, which the store already uses):
 * the holder runs `BEGIN EXCLUSIVE` on the lock file and never ends it. The kernel drops fcntl locks when the
 * process's files are closed, which happens when it exits, so a process killed with SIGKILL releases the lock
 * at once even while it stays an unreaped zombie (kill(pid, 0) still succeeds on a zombie), and a reused pid
 * can never look like the holder. Asking is synchronous and cheap (open, one read, close; about a
 * millisecond): askers take a SHARED lock, which fails with SQLITE_BUSY only while the holder has EXCLUSIVE,
 * and never conflicts with other askers. The holder's pid sits beside it in `<file>.pid`, for messages.
 */
export class ProcessLock {
  private constructor(private db: Database.Database | undefined, readonly file: string) {}

  /** Take the lock, or return undefined when a live process holds it. */
  static acquire(file: string, timeoutMs = 1_000): ProcessLock | undefined {
    mkdirSync(dirname(file), { recursive: true });
    for (let attempt = 0; ; attempt++) {
      // The timeout rides out askers that hold SHARED for a moment; a holder keeps it for ever.
      const db = new Database(file, { timeout: timeoutMs });
      try {
        db.pragma('journal_mode = DELETE'); // locks on the file itself (WAL would lock the -shm file instead)
        db.exec('BEGIN EXCLUSIVE');
      } catch (e) {
        db.close();
        const code = (e as { code?: string }).code;
        if (code === 'SQLITE_BUSY') return undefined;
        // A pid file left by an older version of iotctl at this path: not a database, not a lock.
        if (code === 'SQLITE_NOTADB' && attempt === 0) {
          rmSync(file, { force: true });
          continue;
        }
        throw e;
      }
      writeFileSync(`${file}.pid`, `${process.pid}\n`);
      return new ProcessLock(db, file);
    }
  }

  /** Whether a live process holds the lock on `file`. */
  static isHeld(file: string): boolean {
    if (!existsSync(file)) return false;
    let db: Database.Database | undefined;
    try {
      db = new Database(file, { timeout: 0, fileMustExist: true });
      db.prepare('SELECT count(*) FROM sqlite_master').get();
      return false;
    } catch (e) {
      return (e as { code?: string }).code === 'SQLITE_BUSY';
    } finally {
      db?.close();
    }
  }

  /** The pid of the live holder, if any. */
  static holder(file: string): number | undefined {
    if (!ProcessLock.isHeld(file)) return undefined;
    try {
      const pid = Number(readFileSync(`${file}.pid`, 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 ? pid : -1;
    } catch {
      return -1;
    }
  }

  get held(): boolean {
    return this.db !== undefined;
  }

  release(): void {
    if (!this.db) return;
    rmSync(`${this.file}.pid`, { force: true });
    try {
      this.db.exec('ROLLBACK');
    } catch {
      // closing drops the lock too
    }
    this.db.close();
    this.db = undefined;
  }
}
