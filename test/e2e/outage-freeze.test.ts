// Database freeze (issue 11): with a device publishing QoS1, the embedded PostgreSQL's process group is
// SIGSTOPped for 20 s, then resumed. The broker keeps acknowledging during the freeze (the ingress log and the
// stream buffer, as Kinesis does in front of RDS), and afterwards every acknowledged message is in
// iot_messages exactly once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, makeProject, type Project } from '../helpers/project.js';
import { initSpec } from '../../src/spec/init-template.js';
import { embeddedDataDir, freePort } from '../../src/targets/local/postgres.js';
import { resolveDatabaseUrl } from '../../src/db/connection.js';
import { latencySummary, seqCopies, sleep, startPublisher } from './outage-support.js';

const FREEZE_MS = 20_000;
let project: Project;
const run = (...args: string[]) => cli(args, { cwd: project.dir, env: { DATABASE_URL: '' }, timeoutMs: 120_000 });

test('SIGSTOP of the embedded PostgreSQL for 20 s: PUBACKs keep coming, every acknowledged message lands once', async () => {
  project = makeProject(initSpec('freeze').replace('mqttPort: 8883', `mqttPort: ${await freePort()}`));
  chmodSync(project.dir, 0o755);
  let frozen = 0;
  try {
    assert.is((await run('local', 'up', '--detach')).code, 0);
    assert.is((await run('apply', '--yes')).code, 0);
    assert.is((await run('device', 'register', 'sensor-1')).code, 0);
    const postmaster = Number(readFileSync(join(embeddedDataDir(project.stateDir), 'postmaster.pid'), 'utf8').split('\n')[0]);
    const publisher = await startPublisher({ projectDir: project.dir, stateDir: project.stateDir, device: 'sensor-1', topic: 'dt/freeze/sensor-1/telemetry', ratePerSecond: 25 });
    await sleep(3_000);
    const freezeStart = Date.now();
    process.kill(-postmaster, 'SIGSTOP'); // the postmaster and every backend: its own process group
    frozen = postmaster;
    await sleep(FREEZE_MS);
    process.kill(-postmaster, 'SIGCONT');
    frozen = 0;
    const freezeEnd = Date.now();
    await sleep(3_000);
    const sent = await publisher.stop();

    const during = sent.filter((s) => s.sentAt >= freezeStart && s.sentAt < freezeEnd);
    const acked = sent.filter((s) => s.latencyMs !== undefined);
    console.log(`freeze: ${sent.length} published, ${acked.length} acknowledged; PUBACK latency during the freeze ${latencySummary(during.map((s) => s.latencyMs ?? Infinity))}; before/after ${latencySummary(sent.filter((s) => !during.includes(s)).map((s) => s.latencyMs ?? Infinity))}`);
    assert.ok(during.length >= 400, `${during.length} messages published during the freeze`);
    assert.equal(sent.filter((s) => s.latencyMs === undefined).map((s) => `${s.seq}: ${s.error}`), [], 'every publish acknowledged');
    assert.ok(Math.max(...during.map((s) => s.latencyMs!)) < 2_000, 'PUBACKs kept coming during the freeze');

    const t = Date.now();
    const copies = await seqCopies(resolveDatabaseUrl({ stateDir: project.stateDir, env: {} }).url!, acked.length, 90_000);
    console.log(`freeze: all in iot_messages ${((Date.now() - t) / 1000).toFixed(1)} s after the last publish (${((Date.now() - freezeEnd) / 1000).toFixed(1)} s after SIGCONT)`);
    assert.equal(acked.filter((s) => !copies.has(s.seq)).map((s) => s.seq), [], 'no acknowledged message lost');
    assert.equal([...copies].filter(([, n]) => n !== 1), [], 'no message twice');
    assert.is(copies.size, acked.length);
    const status = JSON.parse((await run('local', 'status', '--json')).stdout);
    assert.is(status.components.postgres.pid, postmaster, 'a frozen server is waited for, not restarted');
  } finally {
    if (frozen) process.kill(-frozen, 'SIGCONT');
    await run('local', 'down');
    project.cleanup();
  }
});

test.run();
