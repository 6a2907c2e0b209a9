import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import { ProcessLock } from './process-lock.js';
import { join } from 'node:path';
import { ensureStateDir } from './state-dir.js';

/** What a running `iotctl local up` publishes about itself in <stateDir>/daemon.json. */
export interface DaemonInfo {
  pid: number;
  startedAt: string;
  mqtt: { host: string; port: number };
  /**
   * The database for display: never a password (the embedded server's roles are in postgres.json, see
   * db-credentials.ts; a configured server's URL stays where the user keeps it).
   */
  databaseUrl?: string;
  /** 'embedded', or where the configured URL came from (DATABASE_URL, PG environment, iotctl.yaml). */
  databaseSource?: string;
  /** Where the daemon writes its status snapshot for `local status`. */
  statusFile: string;
  logFile?: string;
}

export const daemonInfoPath = (stateDir: string) => join(stateDir, 'daemon.json');
const lockPath = (stateDir: string) => join(stateDir, 'daemon.lock');

/**
 * Liveness of the daemon is a kernel lock, never a pid: the daemon holds <stateDir>/daemon.lock (a ProcessLock)
 * for its whole life, and every command asks the lock.
 */
export class DaemonLock {
  private constructor(private readonly lock: ProcessLock) {}

  /** Take the lock, or return undefined when a live daemon holds it. */
  static acquire(stateDir: string): DaemonLock | undefined {
    ensureStateDir(stateDir);
    const lock = ProcessLock.acquire(lockPath(stateDir));
    if (!lock) return undefined;
    // What a previous (crashed) daemon published is not ours: remove it before anything reads it as ours.
    rmSync(daemonInfoPath(stateDir), { force: true });
    return new DaemonLock(lock);
  }

  release(): void {
    this.lock.release();
  }
}

/** Whether a live daemon holds <stateDir>/daemon.lock. */
export function isDaemonRunning(stateDir: string): boolean {
  return ProcessLock.isHeld(lockPath(stateDir));
}

/** The pid of the daemon holding the lock (from daemon.json, or daemon.pid while it is still starting). */
export function runningDaemonPid(stateDir: string): number | undefined {
  if (!isDaemonRunning(stateDir)) return undefined;
  const pid = readInfoFile(stateDir)?.pid ?? ProcessLock.holder(lockPath(stateDir));
  return pid !== undefined && pid > 0 ? pid : undefined;
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

/** Replace `file` atomically with private (0600) JSON, through a fresh temporary file, never an existing one or a link. */
export function writeJsonAtomic(file: string, data: unknown): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify(data, null, 2), { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export function writeDaemonInfo(stateDir: string, info: DaemonInfo): void {
  writeJsonAtomic(daemonInfoPath(stateDir), info);
}

export function removeDaemonInfo(stateDir: string, pid: number): void {
  const current = readInfoFile(stateDir);
  if (current?.pid === pid) rmSync(daemonInfoPath(stateDir), { force: true });
}
