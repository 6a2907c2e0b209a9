// Publish to row: median time from a QoS1 publish to its row in iot_messages, through the whole local
// pipeline (broker -> ingress log -> rule -> stream -> event source mapping -> ingest-rds -> PostgreSQL),
// under a 1,000 msg/s load (target: median <= 1 s). Baseline in the same run: the PUBACK round trip.
// Uses DATABASE_URL when set, else the embedded PostgreSQL. Run: node --import tsx test/bench/publish-to-row.bench.ts
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

const RATE = Number(process.env.BENCH_RATE ?? 1000);
// Tags this run's rows, so a shared DATABASE_URL with older rows does not skew the figures.
const RUN = randomUUID();
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const dir = mkdtempSync(join(tmpdir(), 'iotctl-bench-p2r-'));
chmodSync(dir, 0o755);
writeFileSync(join(dir, 'iotctl.yaml'), initSpec('bench').replace('mqttPort: 8883', `mqttPort: ${await freePort()}`));
const bin = join(import.meta.dirname, '../../bin/run.js');
const iotctl = (...args: string[]) => {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`iotctl ${args.join(' ')}: ${r.stderr}`);
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.95)]!;

iotctl('local', 'up', '--detach');
try {
  iotctl('apply', '--yes');
  iotctl('device', 'register', 'sensor-1');
  const client = await connectDevice(readCredentials(join(dir, 'devices'), 'sensor-1'), readDaemonInfo(join(dir, '.iotctl'))!.mqtt);
  const sentAt = new Map<number, number>();
  const ackMs: number[] = [];
  const total = RATE * SECONDS;
  const started = performance.now();
  const inflight: Promise<unknown>[] = [];
  for (let i = 1; i <= total; i++) {
    const due = started + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const t0 = Date.now();
    const p0 = performance.now();
    sentAt.set(i, t0);
    inflight.push(client.publishAsync('dt/bench/sensor-1/telemetry', JSON.stringify({ run: RUN, seq: i, temperature: 21.5, pad: 'x'.repeat(80) }), { qos: 1 }).then(() => ackMs.push(performance.now() - p0)));
  }
  await Promise.all(inflight);
  const achieved = total / ((performance.now() - started) / 1000);
  client.end();

  const db = new pg.Client({ connectionString: resolveDatabaseUrl({ stateDir: join(dir, '.iotctl'), env: {} }).url! });
  await db.connect();
  for (let i = 0; i < 120; i++) {
    const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM iot_messages WHERE payload->>'run' = $1", [RUN]);
    if (rows[0]!.n >= total) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  // received_at is stamped by the ingest handler in the statement that makes the row queryable.
  const { rows } = await db.query<{ seq: number; received: Date }>("SELECT (payload->>'seq')::int AS seq, received_at AS received FROM iot_messages WHERE payload->>'run' = $1", [RUN]);
  await db.end();
  const latencies = rows.map((r) => r.received.getTime() - sentAt.get(r.seq)!);
  const med = median(latencies);
  const ack = median(ackMs);
  console.log(`load: ${Math.round(achieved)} msg/s for ${SECONDS}s (${total} messages, ${rows.length} rows)`);
  console.log(`PUBACK round trip (baseline): median ${ack.toFixed(1)} ms`);
  console.log(`publish -> row queryable:     median ${med} ms, p95 ${p95(latencies)} ms = ${(med / ack).toFixed(1)}x the PUBACK round trip; target median <= 1000 ms: ${med <= 1000 && rows.length === total ? 'PASS' : 'FAIL'}`);
} finally {
  spawnSync(process.execPath, [bin, 'local', 'down'], { cwd: dir });
  rmSync(dir, { recursive: true, force: true });
}
