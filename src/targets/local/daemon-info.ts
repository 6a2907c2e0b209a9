import Database from 'better-sqlite3';
import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** What a running `iotctl local up` publishes about itself in <stateDir>/daemon.json. */
export interface DaemonInfo {
  pid: number;
  startedAt: string;
  mqtt: { host: string; port: number };
  databaseUrl?: string;
  /** Where the daemon writes its status snapshot for `local status`. */
  statusFile: string;
  logFile?: string;
}

export const daemonInfoPath = (stateDir: string) => join(stateDir, 'daemon.json');
const lockPath = (stateDir: string) => join(stateDir, 'daemon.lock');
const pidPath = (stateDir: string) => join(stateDir, 'daemon.pid');

/**
 * Liveness of the daemon is a kernel lock, never a pid: the daemon holds an exclusive lock on
 * <stateDir>/daemon.lock for its whole life. The lock is SQLite's (POSIX fcntl record locks, through
 * better-sqlite3, which the store already uses): the daemon runs `BEGIN EXCLUSIVE` and never ends it.
 * The kernel drops fcntl locks when the process's files are closed, which happens when it exits, so a
 * daemon killed with SIGKILL releases the lock at once, even while it stays an unreaped zombie, and a
 * reused pid can never look like our daemon. Asking is synchronous and cheap (open, one read, close; about
 * a millisecond): readers take a SHARED lock, which fails with SQLITE_BUSY only while the daemon holds
 * EXCLUSIVE, and never conflicts with other readers.
 */
export class DaemonLock {
  private constructor(private db: Database.Database | undefined, readonly stateDir: string) {}

  /** Take the lock, or return undefined when a live daemon holds it. */
  static acquire(stateDir: string): DaemonLock | undefined {
    mkdirSync(stateDir, { recursive: true });
    // The timeout rides out readers that hold SHARED for a moment; a daemon holds it for ever.
    const db = new Database(lockPath(stateDir), { timeout: 1_000 });
    try {
      db.pragma('journal_mode = DELETE'); // fcntl locking on the file itself (WAL would lock the -shm instead)
      db.exec('BEGIN EXCLUSIVE');
    } catch (e) {
      db.close();
      if ((e as { code?: string }).code === 'SQLITE_BUSY') return undefined;
      throw e;
    }
    const lock = new DaemonLock(db, stateDir);
    // What a previous (crashed) daemon published is not ours: remove it before anything reads it as ours.
    rmSync(daemonInfoPath(stateDir), { force: true });
    writeFileSync(pidPath(stateDir), `${process.pid}\n`);
    return lock;
  }

  release(): void {
    if (!this.db) return;
    try {
      this.db.exec('ROLLBACK');
    } catch {
      // closing drops the lock too
    }
    this.db.close();
    this.db = undefined;
  }
}

/** Whether a live daemon holds <stateDir>/daemon.lock. */
export function isDaemonRunning(stateDir: string): boolean {
  if (!existsSync(lockPath(stateDir))) return false;
  let db: Database.Database | undefined;
  try {
    db = new Database(lockPath(stateDir), { timeout: 0, fileMustExist: true });
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return false;
  } catch (e) {
    if ((e as { code?: string }).code === 'SQLITE_BUSY') return true;
    return false;
  } finally {
    db?.close();
  }
}

/** The pid of the daemon holding the lock (from daemon.json, or daemon.pid while it is still starting). */
export function runningDaemonPid(stateDir: string): number | undefined {
  if (!isDaemonRunning(stateDir)) return undefined;
  const fromInfo = readInfoFile(stateDir)?.pid;
  if (fromInfo) return fromInfo;
  try {
    const pid = Number(readFileSync(pidPath(stateDir), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a process we may signal exists. A zombie counts as existing: do not use this for liveness. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The running daemon's info, or undefined when none runs (the file a crashed daemon left is ignored). */
export function readDaemonInfo(stateDir: string): DaemonInfo | undefined {
  if (!existsSync(daemonInfoPath(stateDir))) return undefined;
  return isDaemonRunning(stateDir) ? readInfoFile(stateDir) : undefined;
}

function readInfoFile(stateDir: string): DaemonInfo | undefined {
  try {
    return JSON.parse(readFileSync(daemonInfoPath(stateDir), 'utf8')) as DaemonInfo;
  } catch {
    return undefined;
  }
}

export function writeJsonAtomic(file: string, data: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(data, null, 2));
  renameSync(tmp, file);
}

export function writeDaemonInfo(stateDir: string, info: DaemonInfo): void {
  writeJsonAtomic(daemonInfoPath(stateDir), info);
}

export function removeDaemonInfo(stateDir: string, pid: number): void {
  const current = readInfoFile(stateDir);
  if (current?.pid === pid) rmSync(daemonInfoPath(stateDir), { force: true });
}
