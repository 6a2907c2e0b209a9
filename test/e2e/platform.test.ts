// The whole seed architecture on real processes: `iotctl local up` (daemon), devices publishing over
// MQTT/TLS, both rules, stream -> event source mapping -> ingest-rds -> PostgreSQL -> `query recent`, and
// channel -> pipeline (filter, math, deviceRegistryEnrich) -> Parquet -> `athena run`. Run twice: against the
// machine's PostgreSQL (DATABASE_URL) and against the embedded default.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, makeProject, waitFor, type CliResult, type Project } from '../helpers/project.js';
import { freshDatabase } from '../helpers/pg.js';
import { initSpec } from '../../src/spec/init-template.js';
import { freePort } from '../../src/targets/local/postgres.js';

const DEVICES = ['sensor-1', 'sensor-2'];
const PER_DEVICE = 15;

function json<T = unknown>(r: CliResult): T {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

for (const variant of ['DATABASE_URL', 'embedded'] as const) {
  let project: Project;
  let env: Record<string, string>;
  let drop: (() => Promise<void>) | undefined;
  const run = (...args: string[]) => cli(args, { cwd: project.dir, env, timeoutMs: 120_000 });

  test(`[${variant}] init, local up, apply, register, publish -> query recent and athena run show the rows`, async () => {
    project = makeProject(initSpec('e2e').replace('mqttPort: 8883', `mqttPort: ${await freePort()}`));
    chmodSync(project.dir, 0o755); // the embedded server runs as the postgres user when we are root
    env = { DATABASE_URL: '' };
    if (variant === 'DATABASE_URL') {
      const db = await freshDatabase(undefined, 'iotctl_e2e');
      drop = db.drop;
      env = { DATABASE_URL: db.url };
    }
    try {
      const up = await run('local', 'up', '--detach');
      assert.is(up.code, 0, up.stderr);
      const applied = json<{ applied: boolean }>(await run('apply', '--yes', '--json'));
      assert.ok(applied.applied, 'apply applied');
      const again = await run('apply', '--yes');
      assert.match(again.stderr, /No changes/);
      for (const d of DEVICES) assert.is((await run('device', 'register', d, '--attribute', `site=site-of-${d}`)).code, 0);

      // Temperatures 1..15 per device, plus one reading the pipeline's filter drops and one that is not JSON.
      for (const d of DEVICES) {
        const r = await run('publish', '--device', d, '--count', String(PER_DEVICE), '--rate', '100', '--payload', '{"seq": {{seq}}, "temperature": {{seq}}}');
        assert.is(r.code, 0, r.stderr);
      }
      assert.is((await run('publish', '--device', 'sensor-1', '--payload', '{"seq": 99, "temperature": 900}')).code, 0);
      assert.is((await run('publish', '--device', 'sensor-2', '--payload', 'not json')).code, 0);

      // Recent-data path.
      const total = DEVICES.length * PER_DEVICE + 1;
      await waitFor(async () => {
        const r = await run('query', 'sql', 'SELECT count(*)::int AS n FROM iot_messages', '--json');
        return r.code === 0 && JSON.parse(r.stdout).rows[0].n === total;
      }, 60_000, `${total} rows in iot_messages`);
      const recent = json<{ device_id: string; topic: string; payload: { seq: number; temperature: number; message_id: string } }[]>(await run('query', 'recent', '--device', 'sensor-2', '--limit', '5', '--json'));
      assert.equal(recent.map((r) => r.payload.seq), [15, 14, 13, 12, 11]);
      assert.ok(recent.every((r) => r.device_id === 'sensor-2' && r.topic === 'dt/e2e/sensor-2/telemetry'), JSON.stringify(recent[0]));
      const injected = await run('query', 'recent', '--device', "x'; DROP TABLE iot_messages; --", '--json');
      assert.equal(json(injected), []);

      // The non-JSON message went to the rules' error path with its reason, nothing crashed.
      const errors = json<{ ruleName: string; error: { failures: { errorMessage: string }[]; base64OriginalPayload: string } }[]>(await run('rules', 'errors', '--json'));
      assert.equal(errors.map((e) => e.ruleName).sort(), ['telemetry_to_lake', 'telemetry_to_stream']);
      assert.is(Buffer.from(errors[0]!.error.base64OriginalPayload, 'base64').toString(), 'not json');

      // Data-lake path: expected rows computed here, independently of the pipeline.
      const expected = DEVICES.map((d) => {
        const temps = Array.from({ length: PER_DEVICE }, (_, i) => i + 1);
        return { device_id: d, n: temps.length, sum_t: temps.reduce((a, b) => a + b, 0), sum_f: Number(temps.reduce((a, t) => a + (t * 9) / 5 + 32, 0).toFixed(3)), site: `site-of-${d}` };
      });
      const query = "SELECT device_id, count(*)::int AS n, sum(temperature)::int AS sum_t, round(sum(temperature_f), 3)::double AS sum_f, any_value(json_extract_string(device, '$.attributes.site')) AS site FROM telemetry_store GROUP BY device_id ORDER BY device_id";
      const rows = await waitFor(async () => {
        const r = await run('athena', 'run', query, '--format', 'json');
        if (r.code !== 0) return undefined;
        const parsed = JSON.parse(r.stdout) as typeof expected;
        return parsed.reduce((a, x) => a + x.n, 0) === DEVICES.length * PER_DEVICE ? parsed : undefined;
      }, 60_000, 'the datastore to hold the pipeline output');
      assert.equal(rows, expected);
      const status = json<{ pipelines: { name: string; messagesIn: number; messagesOut: number; filtered: number }[] }>(await run('analytics', 'status', '--json'));
      const pipeline = status.pipelines.find((p) => p.name === 'telemetry_pipeline')!;
      assert.is(pipeline.filtered, 1);
      assert.is(pipeline.messagesOut, DEVICES.length * PER_DEVICE);
      assert.is(pipeline.messagesIn, DEVICES.length * PER_DEVICE + 1);

      const st = json<{ running: boolean; endpoints: { postgres: string }; publishesAccepted: { total: number } }>(await run('local', 'status', '--json'));
      assert.ok(st.running, 'running');
      assert.is(st.publishesAccepted.total, total + 1);
      if (variant === 'embedded') assert.match(st.endpoints.postgres, /^postgres:\/\/127\.0\.0\.1:\d+\/iotctl$/, 'shown without user or password');
    } finally {
      await run('local', 'down');
      await drop?.();
      project.cleanup();
    }
  });
}

test.run();
