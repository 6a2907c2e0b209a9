import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Spec } from '../../spec/schema.js';
import { UserError } from '../../ui/errors.js';
import { isAlive, readDaemonInfo, type DaemonInfo } from './daemon-info.js';
import { LocalPlatform, type PlatformStatus } from './platform.js';
import { attachComponents } from './components.js';

/** Build the whole local platform (broker, rules, and every component the spec needs). */
export async function createPlatform(opts: { stateDir: string; spec: Spec; mqttPort?: number; log?: (line: string) => void; publishInfo?: boolean }): Promise<LocalPlatform> {
  const platform = new LocalPlatform(opts);
  await attachComponents(platform);
  return platform;
}

export function assertNotRunning(stateDir: string): void {
  const running = readDaemonInfo(stateDir);
  if (running) {
    throw new UserError(`The local platform is already running (pid ${running.pid}, mqtts://${running.mqtt.host}:${running.mqtt.port}).`, 'Use it as it is, or stop it with `iotctl local down`.', 'ALREADY_RUNNING');
  }
}

/** Start `local up` as a detached background process and wait until it is ready. */
export async function startDetached(argv: string[], stateDir: string, timeoutMs = 60_000): Promise<DaemonInfo> {
  const bin = fileURLToPath(new URL('../../../bin/run.js', import.meta.url));
  mkdirSync(stateDir, { recursive: true });
  const logFile = join(stateDir, 'daemon.log');
  const out = openSync(logFile, 'a');
  const child = spawn(process.execPath, [bin, 'local', 'up', ...argv.filter((a) => a !== '--detach')], { detached: true, stdio: ['ignore', out, out], env: { ...process.env, IOTCTL_DAEMON: '1' } });
  child.unref();
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? 1));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const info = readDaemonInfo(stateDir);
    if (info && info.pid === child.pid) return info;
    if (exited !== null) {
      const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join('\n') : '';
      throw new UserError(`The local platform failed to start:\n${tail}`, `See ${logFile}.`, 'START_FAILED');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new UserError(`The local platform did not become ready within ${timeoutMs / 1000} s.`, `See ${logFile}.`, 'START_TIMEOUT');
}

export async function stopDaemon(stateDir: string, timeoutMs = 20_000): Promise<{ stopped: boolean; pid?: number }> {
  const info = readDaemonInfo(stateDir);
  if (!info) return { stopped: false };
  process.kill(info.pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (isAlive(info.pid)) {
    if (Date.now() > deadline) {
      process.kill(info.pid, 'SIGKILL');
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { stopped: true, pid: info.pid };
}

export function readStatus(stateDir: string): (PlatformStatus & { running: true }) | { running: false } {
  const info = readDaemonInfo(stateDir);
  if (!info || !existsSync(info.statusFile)) return { running: false };
  const status = JSON.parse(readFileSync(info.statusFile, 'utf8')) as PlatformStatus;
  return { ...status, uptimeSeconds: Math.round((Date.now() - Date.parse(status.startedAt)) / 1000), running: true };
}

export function resetState(stateDir: string): { removed: string[] } {
  assertNotRunning(stateDir);
  if (!existsSync(stateDir)) return { removed: [] };
  const removed = readdirSync(stateDir);
  rmSync(stateDir, { recursive: true, force: true });
  return { removed };
}
