// Disk full for the state directory (issue 11): .iotctl/ is a 24 MB tmpfs. When a filler file takes the
// remaining space, publishes are refused with a counted reason (the ingress log cannot commit, so there is
// no PUBACK) instead of being acknowledged and lost; when space returns, publishes are acknowledged again and
// every acknowledged message reaches iot_messages exactly once. PostgreSQL is the machine's (DATABASE_URL),
// outside the full disk.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { cli, makeProject, waitFor, type Project } from '../helpers/project.js';
import { freshDatabase } from '../helpers/pg.js';
import { initSpec } from '../../src/spec/init-template.js';
import { freePort } from '../../src/targets/local/postgres.js';
import { readDaemonInfo } from '../../src/targets/local/daemon-info.js';
import { seqCopies, sleep, startPublisher } from './outage-support.js';

let project: Project;

/** Writes zeros until ENOSPC; returns the bytes written. */
function fill(file: string): number {
  const fd = openSync(file, 'w');
  let written = 0;
  try {
    for (const size of [1 << 20, 64 << 10, 4 << 10, 512]) {
      const chunk = Buffer.alloc(size);
      for (;;) {
        try {
          written += writeSync(fd, chunk);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw e;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

test('disk full under .iotctl: publishes refused and counted, none acknowledged and lost; recovery when space returns', async () => {
  project = makeProject(initSpec('diskfull').replace('mqttPort: 8883', `mqttPort: ${await freePort()}`));
  chmodSync(project.dir, 0o755);
  mkdirSync(project.stateDir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', project.stateDir], { stdio: 'pipe' });
  } catch (e) {
    console.log(`SKIPPED disk-full test: cannot mount a tmpfs here (${(e as Error).message.split('\n')[0]}); it needs root with CAP_SYS_ADMIN`);
    project.cleanup();
    return;
  }
  const db = await freshDatabase(undefined, 'iotctl_diskfull');
  const run = (...args: string[]) => cli(args, { cwd: project.dir, env: { DATABASE_URL: db.url }, timeoutMs: 120_000 });
  const filler = join(project.stateDir, 'filler');
  try {
    const up = await run('local', 'up', '--detach');
    assert.is(up.code, 0, up.stderr);
    assert.is((await run('apply', '--yes')).code, 0);
    assert.is((await run('device', 'register', 'sensor-1')).code, 0);
    const daemonPid = readDaemonInfo(project.stateDir)!.pid;
    const publisher = await startPublisher({ projectDir: project.dir, stateDir: project.stateDir, device: 'sensor-1', topic: 'dt/diskfull/sensor-1/telemetry', ratePerSecond: 25 });
    await sleep(2_000);
    const fullAt = Date.now();
    const filled = fill(filler);
    await sleep(6_000);
    rmSync(filler);
    const freedAt = Date.now();
    await sleep(6_000);
    const sent = await publisher.stop();

    const duringFull = sent.filter((s) => s.sentAt >= fullAt && s.sentAt < freedAt);
    const refused = sent.filter((s) => s.latencyMs === undefined);
    const acked = sent.filter((s) => s.latencyMs !== undefined);
    const afterwards = sent.filter((s) => s.sentAt >= freedAt + 2_000);
    await sleep(1_500); // status.json is rewritten every second
    const status = JSON.parse((await run('local', 'status', '--json')).stdout);
    console.log(`disk full: filler ${(filled / 2 ** 20).toFixed(1)} MB; ${sent.length} published, ${duringFull.length} while full, ${refused.length} refused, ${acked.length} acknowledged; publishesDenied ${JSON.stringify(status.publishesDenied.byReason)}`);
    assert.ok(refused.length > 0, 'publishes were refused while the disk was full');
    assert.ok(refused.every((s) => s.sentAt >= fullAt), 'nothing refused before the disk filled');
    // Each refusal closes the connection (as AWS IoT does), so a message already on its way when the broker
    // closed is never read: not acknowledged, and not counted either. Every one the broker read is counted.
    const diskFull = status.publishesDenied.byReason.diskFull ?? 0;
    assert.ok(diskFull > 0 && diskFull <= refused.length, `refusals counted as diskFull: ${JSON.stringify(status.publishesDenied)}`);
    assert.is(status.publishesDenied.total, diskFull, 'no other reason');
    assert.ok(afterwards.length > 50 && afterwards.every((s) => s.latencyMs !== undefined), 'publishes acknowledged again once space returned');
    assert.ok(status.running && status.pid === daemonPid, 'the daemon stayed up');

    const copies = await seqCopies(db.url, acked.length, 60_000);
    assert.equal(acked.filter((s) => !copies.has(s.seq)).map((s) => s.seq), [], 'no acknowledged message lost');
    assert.equal([...copies].filter(([, n]) => n !== 1), [], 'no message twice');
    const extra = [...copies.keys()].filter((seq) => !acked.some((s) => s.seq === seq));
    console.log(`disk full: ${copies.size} in iot_messages; ${extra.length} refused publish(es) that were stored anyway`);
    // The lake (under the full disk too) catches up as well: every acknowledged message once in the datastore.
    const lake = await waitFor(async () => {
      const r = await run('athena', 'run', 'SELECT count(*)::int AS n, count(DISTINCT seq)::int AS d FROM telemetry_store', '--format', 'json');
      const row = r.code === 0 ? (JSON.parse(r.stdout) as { n: number; d: number }[])[0] : undefined;
      return row && row.n >= acked.length ? row : undefined;
    }, 60_000, 'the acknowledged messages in the lake');
    assert.equal(lake, { n: copies.size, d: copies.size }, 'the lake holds each stored message once');
  } catch (e) {
    try {
      console.log(execFileSync('tail', ['-n', '25', join(project.stateDir, 'daemon.log')], { encoding: 'utf8' }).replace(/^/gm, '    daemon.log: ').slice(0, 6000));
    } catch {
      /* no log */
    }
    throw e;
  } finally {
    rmSync(filler, { force: true });
    await run('local', 'down');
    try {
      execFileSync('umount', [project.stateDir], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['-l', project.stateDir], { stdio: 'pipe' });
    }
    await db.drop();
    project.cleanup();
  }
});

test.run();
