import { spawn } from 'node:child_process';
import { existsSync, lstatSync, openSync, readFileSync, rmSync, readdirSync, writeFileSync } from 'node:fs';
import { isMap, parseDocument } from 'yaml';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Spec } from '../../spec/schema.js';
import { UserError } from '../../ui/errors.js';
import { DaemonLock, isDaemonRunning, readDaemonInfo, runningDaemonPid, type DaemonInfo } from './daemon-info.js';
import { LocalPlatform, type PlatformStatus } from './platform.js';
import { attachComponents } from './components.js';
import { embeddedDataDir, isExternalDataDirOf, stopServerIn } from './postgres.js';
import { ensureStateDir, isStateDir, STATE_MARKER } from './state-dir.js';
import { DEFAULT_STAGE, STAGES_DIR } from '../../spec/stages.js';

/**
 * Build the whole local platform (broker, rules, and every component the spec needs). With publishInfo (the
 * `local up` daemon) it first takes the daemon lock of the state dir, held until the platform stops.
 */
export async function createPlatform(opts: { stateDir: string; spec: Spec; mqttPort?: number; log?: (line: string) => void; publishInfo?: boolean }): Promise<LocalPlatform> {
  let lock: DaemonLock | undefined;
  if (opts.publishInfo) {
    lock = DaemonLock.acquire(opts.stateDir);
    if (!lock) assertNotRunning(opts.stateDir, true);
  }
  try {
    const platform = new LocalPlatform({ ...opts, lock });
    await attachComponents(platform);
    return platform;
  } catch (e) {
    lock?.release();
    throw e;
  }
}

export function assertNotRunning(stateDir: string, locked = isDaemonRunning(stateDir)): void {
  if (!locked) return;
  const running = readDaemonInfo(stateDir);
  const pid = running?.pid ?? runningDaemonPid(stateDir);
  throw new UserError(
    `The local platform is already running (pid ${pid ?? '?'}${running ? `, mqtts://${running.mqtt.host}:${running.mqtt.port}` : ', starting'}).`,
    'Use it as it is, or stop it with `iotctl local down`.',
    'ALREADY_RUNNING',
  );
}

/** Start `local up` as a detached background process and wait until it is ready. */
export async function startDetached(argv: string[], stateDir: string, timeoutMs = 60_000): Promise<DaemonInfo> {
  const bin = fileURLToPath(new URL('../../../bin/run.js', import.meta.url));
  ensureStateDir(stateDir);
  const logFile = join(stateDir, 'daemon.log');
  const out = openSync(logFile, 'a', 0o600);
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

/**
 * Stop the daemon (SIGTERM, then SIGKILL after the timeout) and wait until its lock is released, which
 * happens when it exits, reaped or not. With no daemon, an embedded PostgreSQL that a crashed daemon left
 * running is stopped instead.
 */
export async function stopDaemon(stateDir: string, timeoutMs = 20_000): Promise<{ stopped: boolean; pid?: number; stoppedPostgresPid?: number }> {
  const pid = runningDaemonPid(stateDir);
  if (pid === undefined) {
    const stoppedPostgresPid = existsSync(stateDir) ? await stopServerIn(embeddedDataDir(stateDir)) : undefined;
    return { stopped: false, ...(stoppedPostgresPid ? { stoppedPostgresPid } : {}) };
  }
  signal(pid, 'SIGCONT'); // a stopped (SIGSTOP) daemon cannot handle SIGTERM
  signal(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  let killed = false;
  while (isDaemonRunning(stateDir)) {
    if (Date.now() > deadline) {
      if (killed) throw new UserError(`The local platform (pid ${pid}) did not exit after SIGKILL.`, `Check the process with \`ps -p ${pid}\`.`, 'STOP_FAILED');
      signal(pid, 'SIGKILL');
      killed = true;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  // A daemon killed by the timeout leaves its PostgreSQL behind.
  const stoppedPostgresPid = killed ? await stopServerIn(embeddedDataDir(stateDir)) : undefined;
  return { stopped: true, pid, ...(stoppedPostgresPid ? { stoppedPostgresPid } : {}) };
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

export function readStatus(stateDir: string): (PlatformStatus & { running: true }) | { running: false } {
  const info = readDaemonInfo(stateDir);
  if (!info || !existsSync(info.statusFile)) return { running: false };
  const status = JSON.parse(readFileSync(info.statusFile, 'utf8')) as PlatformStatus;
  return { ...status, uptimeSeconds: Math.round((Date.now() - Date.parse(status.startedAt)) / 1000), running: true };
}

export async function resetState(stateDir: string): Promise<{ removed: string[] }> {
  let st;
  try {
    st = lstatSync(stateDir);
  } catch {
    return { removed: [] };
  }
  // A link is never followed, and a folder iotctl did not make is never deleted (--state-dir names any path).
  if (st.isSymbolicLink() || !st.isDirectory() || !isStateDir(stateDir)) {
    throw new UserError(
      `${stateDir} is ${st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'not an iotctl state directory' : 'not a directory'}; \`local reset\` deletes only a state directory iotctl created (it has a ${STATE_MARKER} file).`,
      'check --state-dir (or IOTCTL_STATE_DIR); to delete that folder anyway, remove it yourself.',
      'NOT_A_STATE_DIR',
    );
  }
  assertNotRunning(stateDir);
  // The embedded PostgreSQL a crashed daemon left running, and its data when it lives outside the project.
  const dataDir = embeddedDataDir(stateDir);
  await stopServerIn(dataDir);
  // The default stage's directory also holds the other stages' (stages/): they are theirs to reset.
  const entries = readdirSync(stateDir);
  const removed = entries.filter((name) => name !== STAGES_DIR);
  if (!dataDir.startsWith(resolve(stateDir) + sep) && isExternalDataDirOf(dataDir, stateDir)) {
    rmSync(dirname(dataDir), { recursive: true, force: true });
    removed.push(dataDir);
  }
  if (!entries.includes(STAGES_DIR)) rmSync(stateDir, { recursive: true, force: true });
  else for (const name of entries) if (name !== STAGES_DIR) rmSync(join(stateDir, name), { recursive: true, force: true });
  return { removed };
}

/**
 * Keep a port chosen with `local up --mqtt-port N` for the project: written to iotctl.yaml (comments and layout
 * kept), so the endpoint.json of every registered device stays valid across restarts, as an AWS endpoint does.
 * The default stage's port is `local.mqttPort`; another stage's is `stages.<stage>.local.mqttPort`, so two
 * stages keep two ports. Returns whether the file changed.
 */
export function saveMqttPort(specFile: string, port: number, stage = DEFAULT_STAGE): boolean {
  if (!existsSync(specFile) || port <= 0) return false;
  const doc = parseDocument(readFileSync(specFile, 'utf8'));
  // The default stage's port lives in its override only when the file already puts it there.
  const inOverride = stage !== DEFAULT_STAGE || doc.hasIn(['stages', stage, 'local', 'mqttPort']);
  const path = inOverride ? ['stages', stage, 'local', 'mqttPort'] : ['local', 'mqttPort'];
  if (doc.getIn(path) === port) return false;
  // `prod:` with nothing under it is a null: make it a map first.
  if (inOverride && !isMap(doc.getIn(['stages', stage]))) doc.setIn(['stages', stage], doc.createNode({}));
  doc.setIn(path, port);
  writeFileSync(specFile, doc.toString());
  return true;
}
