// iotctl check on a healthy local platform (the init spec, lake included): the check's time from its publish to
// its result, and its overhead (from the last stage's arrival to the result), against the pipeline's own
// publish -> row latency measured in the same run (a device publishing, a poll for its row in PostgreSQL).
// Targets: the check under 2 s, its overhead under 100 ms. Uses DATABASE_URL when set, else the embedded server.
// Run: node --import tsx test/bench/check.bench.ts   (BENCH_ROUNDS, default 5)
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { initSpec } from '../../src/spec/init-template.js';
import { freePort } from '../../src/targets/local/postgres.js';
import { connectDevice, readCredentials } from '../../src/services/publish.js';
import { readDaemonInfo } from '../../src/targets/local/daemon-info.js';
import { resolveDatabaseUrl } from '../../src/db/connection.js';
import { percentile } from '../../src/services/check-stages.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const dir = mkdtempSync(join(tmpdir(), 'iotctl-bench-check-'));
chmodSync(dir, 0o755);
writeFileSync(join(dir, 'iotctl.yaml'), initSpec('bench').replace('mqttPort: 8883', `mqttPort: ${await freePort()}`));
const bin = join(import.meta.dirname, '../../bin/run.js');
const iotctl = (...args: string[]) => {
  const started = performance.now();
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`iotctl ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return { stdout: r.stdout, wallMs: performance.now() - started };
};

iotctl('local', 'up', '--detach');
try {
  iotctl('apply', '--yes');
  iotctl('device', 'register', 'sensor-1');
  iotctl('check', '--json'); // registers the canary: first use only
  const client = await connectDevice(readCredentials(join(dir, 'devices'), 'sensor-1'), readDaemonInfo(join(dir, '.iotctl'))!.mqtt);
  const db = new pg.Client({ connectionString: resolveDatabaseUrl({ stateDir: join(dir, '.iotctl'), env: {} }).url! });
  await db.connect();
  const pipelineMs: number[] = [];
  const checkMs: number[] = [];
  const overheadMs: number[] = [];
  const wallMs: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // The pipeline alone: one message, its row polled every 5 ms.
    const id = randomUUID();
    const sent = performance.now();
    await client.publishAsync('dt/bench/sensor-1/telemetry', JSON.stringify({ id, temperature: 20 }), { qos: 1 });
    for (;;) {
      const { rows } = await db.query("SELECT 1 FROM iot_messages WHERE payload->>'id' = $1", [id]);
      if (rows.length) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    pipelineMs.push(performance.now() - sent);
    const run = iotctl('check', '--json');
    const report = JSON.parse(run.stdout) as { ok: boolean; totalMs: number; overheadMs: number };
    if (!report.ok) throw new Error(`check failed: ${run.stdout}`);
    checkMs.push(report.totalMs);
    overheadMs.push(report.overheadMs);
    wallMs.push(run.wallMs);
  }
  client.end();
  await db.end();
  const p50 = (xs: number[]) => Math.round(percentile(xs, 50)!);
  console.log(`pipeline publish -> row (baseline): p50 ${p50(pipelineMs)} ms over ${ROUNDS} rounds`);
  console.log(`check publish -> result (lake included): p50 ${p50(checkMs)} ms = ${(p50(checkMs) / p50(pipelineMs)).toFixed(1)}x the pipeline's publish -> row; target < 2000 ms: ${p50(checkMs) < 2000 ? 'PASS' : 'FAIL'}`);
  console.log(`check overhead after the last stage: p50 ${p50(overheadMs)} ms; target < 100 ms: ${p50(overheadMs) < 100 ? 'PASS' : 'FAIL'}`);
  console.log(`whole \`iotctl check\` process (start-up, canary, connect, close): p50 ${p50(wallMs)} ms`);
} finally {
  spawnSync(process.execPath, [bin, 'local', 'down'], { cwd: dir });
  rmSync(dir, { recursive: true, force: true });
}
