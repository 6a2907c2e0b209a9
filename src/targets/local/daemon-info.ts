import { existsSync, readFileSync, writeFileSync, renameSync, rmSync } from 'node:fs';
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

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The running daemon's info, or undefined when none runs (a stale file from a crash is ignored). */
export function readDaemonInfo(stateDir: string): DaemonInfo | undefined {
  const file = daemonInfoPath(stateDir);
  if (!existsSync(file)) return undefined;
  try {
    const info = JSON.parse(readFileSync(file, 'utf8')) as DaemonInfo;
    return isAlive(info.pid) ? info : undefined;
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
