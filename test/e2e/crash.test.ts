// Crash test: a device publishes QoS1 as fast as it can, the platform process is killed with SIGKILL
// mid-run and restarted. Every message PUBACKed before the kill ends up in iot_messages exactly once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { cli, makeProject, waitFor, type Project } from '../helpers/project.js';
import { initSpec } from '../../src/spec/init-template.js';
import { freePort } from '../../src/targets/local/postgres.js';
import { connectDevice, readCredentials } from '../../src/services/publish.js';
import { readDaemonInfo, isDaemonRunning } from '../../src/targets/local/daemon-info.js';
import { resolveDatabaseUrl } from '../../src/db/connection.js';

let project: Project;
const run = (...args: string[]) => cli(args, { cwd: project.dir, env: { DATABASE_URL: '' }, timeoutMs: 120_000 });

test('SIGKILL mid-publish loses no PUBACKed message and duplicates none', async () => {
  project = makeProject(initSpec('crash').replace('mqttPort: 8883', `mqttPort: ${await freePort()}`));
  chmodSync(project.dir, 0o755);
  try {
    assert.is((await run('local', 'up', '--detach')).code, 0);
    assert.is((await run('apply', '--yes')).code, 0);
    assert.is((await run('device', 'register', 'sensor-1')).code, 0);
    const creds = readCredentials(join(project.dir, 'devices'), 'sensor-1');
    const daemon = readDaemonInfo(project.stateDir)!;

    // Publish with 50 in flight; record every seq the broker acknowledged.
    const client = await connectDevice(creds, daemon.mqtt);
    client.on('error', () => {});
    const acked = new Set<number>();
    let seq = 0;
    let closed = false;
    const whenClosed = new Promise((_, reject) => client.once('close', () => { closed = true; reject(new Error('closed')); }));
    whenClosed.catch(() => {});
    const lane = async () => {
      while (!closed) {
        const n = ++seq;
        try {
          await Promise.race([
            client.publishAsync('dt/crash/sensor-1/telemetry', JSON.stringify({ seq: n, temperature: 20 }), { qos: 1 }),
            whenClosed,
          ]);
          acked.add(n);
        } catch {
          return;
        }
      }
    };
    const lanes = Array.from({ length: 50 }, lane);
    await waitFor(() => acked.size >= 3000, 60_000, '3000 acknowledged publishes');
    process.kill(daemon.pid, 'SIGKILL');
    await Promise.all(lanes);
    client.end(true);
    // Liveness is the daemon lock: a SIGKILLed daemon may stay an unreaped zombie, whose pid still answers kill(pid, 0).
    await waitFor(() => !isDaemonRunning(project.stateDir), 10_000, 'the daemon to die');
    const ackedAtKill = acked.size;

    assert.is((await run('local', 'up', '--detach')).code, 0, 'restart');
    const url = resolveDatabaseUrl({ stateDir: project.stateDir, env: {} }).url!;
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const rows = await waitFor(async () => {
        const r = await db.query<{ seq: number; copies: number }>("SELECT (payload->>'seq')::int AS seq, count(*)::int AS copies FROM iot_messages GROUP BY 1");
        const found = new Set(r.rows.map((x) => x.seq));
        return [...acked].every((s) => found.has(s)) ? r.rows : undefined;
      }, 90_000, 'every acknowledged message in iot_messages');
      const duplicates = rows.filter((r) => r.copies > 1);
      assert.equal(duplicates, [], 'no message twice');
      const missing = [...acked].filter((s) => !rows.some((r) => r.seq === s));
      assert.equal(missing, []);
      console.log(`crash test: ${ackedAtKill} acknowledged before SIGKILL, ${rows.length} rows after restart (unacknowledged in-flight messages may also have landed)`);
    } finally {
      await db.end();
    }
  } finally {
    await run('local', 'down');
    project.cleanup();
  }
});

test.run();
