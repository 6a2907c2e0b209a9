#!/usr/bin/env node
// The local end-to-end demo: a fresh project, the embedded platform, devices publishing over MQTT/TLS,
// rules fanning out to the stream -> ingest Lambda -> PostgreSQL and to the Parquet lake, then queries.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const bin = resolve('bin/run.js');
const dir = process.env.DEMO_DIR ?? mkdtempSync(join(tmpdir(), 'iotctl-demo-'));
// As root, the embedded PostgreSQL runs as the postgres user; it keeps its data in the project when it can
// enter the project folder (else under /var/lib/iotctl). The demo's own folder is made enterable.
if (!process.env.DEMO_DIR) chmodSync(dir, 0o755);
const env = { ...process.env };
delete env.DATABASE_URL; // the demo runs the embedded PostgreSQL

function iotctl(args, { allowFail = false, quiet = false } = {}) {
  process.stderr.write(`\n$ iotctl ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: dir, env, stdio: quiet ? ['ignore', 'pipe', 'inherit'] : 'inherit', encoding: 'utf8' });
  if (r.status !== 0 && !allowFail) {
    process.stderr.write(`demo step failed (exit ${r.status}); state kept in ${dir}\n`);
    spawnSync(process.execPath, [bin, 'local', 'down'], { cwd: dir, env, stdio: 'inherit' });
    process.exit(1);
  }
  return r;
}

/** Poll a query without echoing it until it answers n = 60; one line says what is awaited, with a time-out. */
async function waitUntil(what, args, seconds) {
  process.stderr.write(`\nWaiting for ${what} (up to ${seconds} s)...`);
  const started = Date.now();
  while (Date.now() - started < seconds * 1000) {
    const r = spawnSync(process.execPath, [bin, ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    if (r.status === 0 && /"n":\s*"?60"?/.test(r.stdout)) {
      process.stderr.write(` done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
      return;
    }
    await sleep(500);
  }
  process.stderr.write(` not after ${seconds} s; state kept in ${dir}\n`);
  spawnSync(process.execPath, [bin, 'local', 'down'], { cwd: dir, env, stdio: 'inherit' });
  process.exit(1);
}

const freePort = () => new Promise((res) => { const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); }); });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

process.stderr.write(`iotctl demo in ${dir}\n`);
if (!existsSync(join(dir, 'iotctl.yaml'))) iotctl(['init', '--project', 'demo']);
iotctl(['local', 'up', '--detach', '--mqtt-port', String(await freePort())]);
try {
  iotctl(['apply', '--yes']);
  const devices = ['sensor-1', 'sensor-2', 'sensor-3'];
  for (const d of devices) iotctl(['device', 'register', d, '--attribute', `site=lab-${d.slice(-1)}`]);
  for (const d of devices) {
    iotctl(['publish', '--device', d, '--count', '20', '--rate', '200', '--payload', '{"seq": {{seq}}, "temperature": {{random}}, "humidity": 40}']);
  }
  // One malformed message: it goes to the error destinations with its reason, and nothing crashes.
  iotctl(['publish', '--device', 'sensor-1', '--payload', 'not json at all']);

  // Wait quietly for the recent-data path (stream -> ingest Lambda -> PostgreSQL) to catch up.
  await waitUntil('60 rows in PostgreSQL (stream -> ingest Lambda)', ['query', 'sql', 'SELECT count(*) AS n FROM iot_messages', '--format', 'json'], 30);
  iotctl(['query', 'recent', '--device', 'sensor-1', '--limit', '5']);
  iotctl(['stream', 'tail', '--from', 'trim-horizon', '--device', 'sensor-2', '--limit', '3']);

  // The data-lake path: run the pipeline's output through Athena (DuckDB over Parquet).
  await waitUntil('60 rows in the lake (channel -> pipeline -> Parquet)', ['athena', 'run', 'SELECT count(*) AS n FROM telemetry_store', '--format', 'json'], 60);
  iotctl(['athena', 'run', "SELECT device_id, count(*) AS messages, round(avg(temperature), 1) AS avg_c, round(avg(temperature_f), 1) AS avg_f, any_value(json_extract_string(device, '$.attributes.site')) AS site FROM telemetry_store GROUP BY device_id ORDER BY device_id"]);
  iotctl(['analytics', 'dataset', 'run', 'daily_device_summary']);
  iotctl(['rules', 'errors', '--limit', '2']); // the malformed message, with its reason
  iotctl(['local', 'status']);
} finally {
  iotctl(['local', 'down']);
}
process.stderr.write(`\nDemo finished. The project is in ${dir} (iotctl.yaml, devices/, .iotctl/).\n`);
