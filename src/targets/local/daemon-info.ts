import { existsSync, readFileSync, writeFileSync, renameSync, rmSync, statSync } from 'node:fs';
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

/** Whether a process we may signal exists (another user's process, EPERM, is not ours). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The daemon rewrites status.json every second; a file older than this means the pid is not our daemon. */
const STALE_STATUS_MS = 15_000;

/** The running daemon's info, or undefined when none runs (a stale file from a crash is ignored). */
export function readDaemonInfo(stateDir: string): DaemonInfo | undefined {
  const file = daemonInfoPath(stateDir);
  if (!existsSync(file)) return undefined;
  try {
    const info = JSON.parse(readFileSync(file, 'utf8')) as DaemonInfo;
    // After a crash the pid may have been reused by an unrelated process: require a fresh status file too.
    const fresh = existsSync(info.statusFile) && Date.now() - statSync(info.statusFile).mtimeMs < STALE_STATUS_MS;
    return isAlive(info.pid) && fresh ? info : undefined;
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
  const current = existsSync(daemonInfoPath(stateDir)) ? (JSON.parse(readFileSync(daemonInfoPath(stateDir), 'utf8')) as DaemonInfo) : undefined;
  if (current?.pid === pid) rmSync(daemonInfoPath(stateDir), { force: true });
}
