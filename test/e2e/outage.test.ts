// Outages while the platform runs: the embedded PostgreSQL killed with SIGKILL is restarted by the daemon
// (crash recovery), `local status` shows it, and ingest catches up with nothing lost or duplicated.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { cli, makeProject, waitFor, type Project } from '../helpers/project.js';
import { initSpec } from '../../src/spec/init-template.js';
import { embeddedDataDir, freePort } from '../../src/targets/local/postgres.js';
import { resolveDatabaseUrl } from '../../src/db/connection.js';

let project: Project;
const run = (...args: string[]) => cli(args, { cwd: project.dir, env: { DATABASE_URL: '' }, timeoutMs: 120_000 });
const postmasterPid = () => Number(readFileSync(join(embeddedDataDir(project.stateDir), 'postmaster.pid'), 'utf8').split('\n')[0]);

test('kill -9 of the embedded postmaster: the daemon restarts it, status shows it, every message lands once', async () => {
  project = makeProject(initSpec('outage').replace('mqttPort: 8883', `mqttPort: ${await freePort()}`));
  chmodSync(project.dir, 0o755);
  try {
    assert.is((await run('local', 'up', '--detach')).code, 0);
    assert.is((await run('apply', '--yes')).code, 0);
    assert.is((await run('device', 'register', 'sensor-1')).code, 0);
    // Seqs 1..50 before the kill, 10000..500000 during the outage.
    const publish = (suffix: string) => run('publish', '--device', 'sensor-1', '--count', '50', '--payload', `{"seq": {{seq}}${suffix}, "temperature": 20}`);
    assert.is((await publish('')).code, 0);
    const killed = postmasterPid();
    process.kill(killed, 'SIGKILL');
    // The broker keeps acknowledging while PostgreSQL is down: the stream holds the records.
    const during = await publish('0000');
    assert.is(during.code, 0, during.stderr);
    await waitFor(async () => {
      const s = JSON.parse((await run('local', 'status', '--json')).stdout);
      return s.components?.postgres?.restarts >= 1 && s.components.postgres.pid !== killed;
    }, 60_000, 'the daemon to restart PostgreSQL');
    const status = JSON.parse((await run('local', 'status', '--json')).stdout);
    assert.match(status.components.postgres.lastExit, /signal SIGKILL/);
    const db = new pg.Client({ connectionString: resolveDatabaseUrl({ stateDir: project.stateDir, env: {} }).url! });
    await db.connect();
    try {
      const rows = await waitFor(async () => {
        const r = await db.query<{ seq: number; copies: number }>("SELECT (payload->>'seq')::bigint AS seq, count(*)::int AS copies FROM iot_messages GROUP BY 1");
        return r.rows.length >= 100 ? r.rows : undefined;
      }, 90_000, '100 messages in iot_messages');
      assert.is(rows.length, 100);
      assert.equal(rows.filter((r) => r.copies > 1), [], 'no message twice');
    } finally {
      await db.end();
    }
  } finally {
    await run('local', 'down');
    project.cleanup();
  }
});

test.run();
