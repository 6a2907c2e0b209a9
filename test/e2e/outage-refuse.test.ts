// Database outage with DATABASE_URL (issue 11): the platform's PostgreSQL is reached through a TCP proxy that
// refuses connections for 20 s (listener closed, every connection cut), then accepts again. The broker keeps
// acknowledging during the outage, and afterwards every acknowledged message is in iot_messages exactly once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync } from 'node:fs';
import { cli, makeProject, type Project } from '../helpers/project.js';
import { freshDatabase, SERVER_URL } from '../helpers/pg.js';
import { initSpec } from '../../src/spec/init-template.js';
import { freePort } from '../../src/targets/local/postgres.js';
import { latencySummary, seqCopies, sleep, startProxy, startPublisher } from './outage-support.js';

const OUTAGE_MS = 20_000;
let project: Project;

test('DATABASE_URL server refusing connections for 20 s: PUBACKs keep coming, every acknowledged message lands once', async () => {
  project = makeProject(initSpec('refuse').replace('mqttPort: 8883', `mqttPort: ${await freePort()}`));
  chmodSync(project.dir, 0o755);
  const db = await freshDatabase(undefined, 'iotctl_outage');
  const server = new URL(SERVER_URL);
  const proxy = await startProxy({ host: server.hostname, port: Number(server.port || 5432) });
  const viaProxy = new URL(db.url);
  viaProxy.host = `127.0.0.1:${proxy.port}`;
  const run = (...args: string[]) => cli(args, { cwd: project.dir, env: { DATABASE_URL: viaProxy.toString() }, timeoutMs: 120_000 });
  let refusing = false;
  try {
    const up = await run('local', 'up', '--detach');
    assert.is(up.code, 0, up.stderr);
    assert.is((await run('apply', '--yes')).code, 0);
    assert.is((await run('device', 'register', 'sensor-1')).code, 0);
    const publisher = await startPublisher({ projectDir: project.dir, stateDir: project.stateDir, device: 'sensor-1', topic: 'dt/refuse/sensor-1/telemetry', ratePerSecond: 25 });
    await sleep(3_000);
    const outageStart = Date.now();
    await proxy.refuse();
    refusing = true;
    await sleep(OUTAGE_MS);
    await proxy.accept();
    refusing = false;
    const outageEnd = Date.now();
    await sleep(3_000);
    const sent = await publisher.stop();

    const during = sent.filter((s) => s.sentAt >= outageStart && s.sentAt < outageEnd);
    const acked = sent.filter((s) => s.latencyMs !== undefined);
    console.log(`refuse: ${sent.length} published, ${acked.length} acknowledged; PUBACK latency during the outage ${latencySummary(during.map((s) => s.latencyMs ?? Infinity))}; before/after ${latencySummary(sent.filter((s) => !during.includes(s)).map((s) => s.latencyMs ?? Infinity))}`);
    assert.ok(during.length >= 400, `${during.length} messages published during the outage`);
    assert.equal(sent.filter((s) => s.latencyMs === undefined).map((s) => `${s.seq}: ${s.error}`), [], 'every publish acknowledged');
    assert.ok(Math.max(...during.map((s) => s.latencyMs!)) < 2_000, 'PUBACKs kept coming during the outage');

    const t = Date.now();
    const copies = await seqCopies(db.url, acked.length, 90_000);
    console.log(`refuse: all in iot_messages ${((Date.now() - t) / 1000).toFixed(1)} s after the last publish (${((Date.now() - outageEnd) / 1000).toFixed(1)} s after the server came back)`);
    assert.equal(acked.filter((s) => !copies.has(s.seq)).map((s) => s.seq), [], 'no acknowledged message lost');
    assert.equal([...copies].filter(([, n]) => n !== 1), [], 'no message twice');
    assert.is(copies.size, acked.length);
    const status = JSON.parse((await run('local', 'status', '--json')).stdout);
    const esm = status.components.eventSourceMappings[0];
    console.log(`refuse: event source mapping ${JSON.stringify({ batches: esm.batches, errors: esm.errors, retries: esm.retries, discarded: esm.discarded })}`);
    assert.is(esm.discarded, 0, 'nothing discarded to the on-failure destination');
  } finally {
    if (refusing) await proxy.accept().catch(() => {});
    await run('local', 'down');
    await proxy.close();
    await db.drop();
    project.cleanup();
  }
});

test.run();
