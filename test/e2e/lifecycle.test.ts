// Process lifecycle of `iotctl local up` as a user meets it: Ctrl-C in the foreground, a daemon killed with
// SIGKILL that nobody reaps (PID 1 in a container), a port chosen once and kept, credentials written anywhere.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, cli, makeProject, waitFor, type Project } from '../helpers/project.js';
import { initSpec } from '../../src/spec/init-template.js';
import { embeddedDataDir, freePort } from '../../src/targets/local/postgres.js';
import { isDaemonRunning, readDaemonInfo } from '../../src/targets/local/daemon-info.js';

const env = { DATABASE_URL: '' };

async function project(): Promise<Project> {
  const p = makeProject(initSpec('lc').replace('mqttPort: 8883', `mqttPort: ${await freePort()}`));
  chmodSync(p.dir, 0o755);
  return p;
}

const run = (p: Project, ...args: string[]) => cli(args, { cwd: p.dir, env, timeoutMs: 120_000 });
const t0 = Date.now();
test.after.each(() => console.log(`  ${((Date.now() - t0) / 1000).toFixed(1)} s`));

/** The process state letter from /proc (R, S, Z...), or undefined when the pid is gone. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}
const gone = (pid: number) => procState(pid) === undefined || procState(pid) === 'Z';

function postmasterPid(p: Project): number {
  return Number(readFileSync(join(embeddedDataDir(p.stateDir), 'postmaster.pid'), 'utf8').split('\n')[0]);
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));
}

test('SIGINT (Ctrl-C) to a foreground local up stops every component, PostgreSQL last, and logs it', async () => {
  const p = await project();
  try {
    const child = spawn(process.execPath, [BIN, 'local', 'up'], { cwd: p.dir, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'ignore'] });
    await waitFor(() => readDaemonInfo(p.stateDir), 60_000, 'the platform to be up');
    const pg = postmasterPid(p);
    child.kill('SIGINT');
    child.kill('SIGINT'); // impatient second Ctrl-C: must not cut the stop short
    assert.is(await exited(child), 0);
    const log = readFileSync(join(p.stateDir, 'daemon.log'), 'utf8');
    assert.match(log, /SIGINT: stopping/);
    assert.match(log, /local platform stopped \(broker, rules, .*, postgres\)\n$/);
    assert.ok(gone(pg), `the embedded PostgreSQL (pid ${pg}) stopped`);
    assert.not.ok(isDaemonRunning(p.stateDir));
  } finally {
    await run(p, 'local', 'down');
    p.cleanup();
  }
});

test('a daemon killed with SIGKILL and never reaped (a zombie) is not running; down stops its PostgreSQL; up simply starts', async () => {
  const p = await project();
  // The daemon's parent is `sleep`, which never reaps it: after SIGKILL it stays a zombie, as under a PID 1
  // that does not reap orphans.
  const holder = spawn('sh', ['-c', `"${process.execPath}" "${BIN}" local up & exec sleep 300`], { cwd: p.dir, env: { ...process.env, ...env, IOTCTL_DAEMON: '1' }, stdio: 'ignore' });
  try {
    const info = await waitFor(() => readDaemonInfo(p.stateDir), 60_000, 'the platform to be up');
    const pg = postmasterPid(p);
    process.kill(info.pid, 'SIGKILL');
    // The kernel drops the lock once every thread has exited, a moment after the process shows as a zombie.
    await waitFor(() => !isDaemonRunning(p.stateDir), 10_000, 'the daemon lock to be released');
    assert.is(procState(info.pid), 'Z', 'the daemon is an unreaped zombie: kill(pid, 0) still succeeds on it');

    const status = await run(p, 'local', 'status', '--json');
    assert.is(JSON.parse(status.stdout).running, false, status.stderr);
    assert.ok(!gone(pg), 'its PostgreSQL outlived it');
    const down = await run(p, 'local', 'down');
    assert.is(down.code, 0, down.stderr);
    assert.match(down.stderr, new RegExp(`Stopped the embedded PostgreSQL \\(pid ${pg}\\)`));
    assert.ok(gone(pg));

    const up = await run(p, 'local', 'up', '--detach');
    assert.is(up.code, 0, up.stderr);
    const again = readDaemonInfo(p.stateDir)!;
    assert.is.not(again.pid, info.pid);
    // Killed again, its PostgreSQL left behind: reset stops it before deleting the state.
    process.kill(again.pid, 'SIGKILL');
    await waitFor(() => !isDaemonRunning(p.stateDir), 10_000, 'the lock to be released');
    const pg2 = postmasterPid(p);
    const reset = await run(p, 'local', 'reset', '--yes');
    assert.is(reset.code, 0, reset.stderr);
    assert.ok(gone(pg2), 'reset stopped the left-behind PostgreSQL');
    assert.not.ok(existsSync(p.stateDir));
  } finally {
    holder.kill('SIGKILL');
    await run(p, 'local', 'down');
    p.cleanup();
  }
});

test('a port given with --mqtt-port is kept in iotctl.yaml, so devices keep working after a plain restart; credentials are found wherever register wrote them', async () => {
  const p = await project();
  const port = await freePort();
  try {
    const up = await run(p, 'local', 'up', '--detach', '--mqtt-port', String(port));
    assert.is(up.code, 0, up.stderr);
    assert.match(up.stderr, new RegExp(`Saved local.mqttPort: ${port}`));
    const yaml = readFileSync(p.specFile, 'utf8');
    assert.match(yaml, new RegExp(`mqttPort: ${port}`));
    assert.match(yaml, /# MQTT over TLS with client certificates/, 'comments are kept');
    assert.is((await run(p, 'apply', '--yes')).code, 0);
    assert.is((await run(p, 'device', 'register', 'd1')).code, 0);
    const reg = await run(p, 'device', 'register', 'd2', '--out', 'certs');
    assert.is(reg.code, 0, reg.stderr);
    assert.is((await run(p, 'local', 'down')).code, 0);

    const plain = await run(p, 'local', 'up', '--detach');
    assert.is(plain.code, 0, plain.stderr);
    assert.is(readDaemonInfo(p.stateDir)!.mqtt.port, port);
    for (const d of ['d1', 'd2']) {
      const pub = await run(p, 'publish', '--device', d, '--payload', '{"t": 1}');
      assert.is(pub.code, 0, `${d}: ${pub.stderr}`);
    }
  } finally {
    await run(p, 'local', 'down');
    p.cleanup();
  }
});

test.run();
