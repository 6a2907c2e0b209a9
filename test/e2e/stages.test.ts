// Two stages of one project on the local target at once: each has its own state directory (CA, devices,
// stream, embedded PostgreSQL) and broker port, sees only its own devices and messages, and stops alone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, makeProject, removeExternalCluster, waitFor, type CliResult, type Project } from '../helpers/project.js';

const SPEC = `project: stg
target: local
local: { mqttPort: 0 }
streams:
  - name: telemetry
rules:
  - name: telemetry_to_stream
    sql: SELECT *, topic(3) AS device_id, topic() AS topic, traceid() AS message_id, timestamp() AS ts FROM 'dt/stg/+/telemetry'
    actions:
      - kinesis: { stream: telemetry, partitionKey: '\${topic(3)}' }
functions:
  - name: ingest
    template: ingest-rds
    eventSource: { stream: telemetry, maximumBatchingWindowSeconds: 0 }
stages:
  dev:
  staging:
    streams: [{ name: telemetry, shards: 2 }]
`;
const STAGES = ['dev', 'staging'] as const;

function json<T = unknown>(r: CliResult): T {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

const t0 = Date.now();
test.after.each(() => console.log(`  ${((Date.now() - t0) / 1000).toFixed(1)} s`));

test('local up --stage dev and --stage staging run at once; each sees only its own devices and messages; down stops one', async () => {
  const p: Project = makeProject(SPEC);
  chmodSync(p.dir, 0o755); // the embedded server runs as the postgres user when we are root
  const run = (stage: string, ...args: string[]) => cli([...args, '--stage', stage], { cwd: p.dir, env: { DATABASE_URL: '' }, timeoutMs: 120_000 });
  const stageDir = (stage: string) => join(p.stateDir, 'stages', stage);
  try {
    const ups = await Promise.all(STAGES.map((s) => run(s, 'local', 'up', '--detach', '--json')));
    const ports = ups.map((u) => json<{ mqtt: { port: number } }>(u).mqtt.port);
    assert.is.not(ports[0], ports[1], 'each stage has its own broker port');
    for (const s of STAGES) assert.ok(existsSync(join(stageDir(s), 'daemon.lock')), `${s} has its own state dir`);
    assert.not.ok(existsSync(join(p.stateDir, 'daemon.lock')), 'the default stage did not start');

    await Promise.all(STAGES.map(async (s) => {
      assert.is((await run(s, 'apply', '--yes')).code, 0);
      const reg = await run(s, 'device', 'register', 'sensor-1');
      assert.is(reg.code, 0, reg.stderr);
      const pub = await run(s, 'publish', '--device', 'sensor-1', '--payload', `{"from": "${s}"}`);
      assert.is(pub.code, 0, pub.stderr);
    }));
    // One thing name, one certificate per stage (each stage has its own CA), in devices/@<stage>/.
    const certs = STAGES.map((s) => readFileSync(join(p.dir, 'devices', `@${s}`, 'sensor-1', 'cert.pem'), 'utf8'));
    assert.is.not(certs[0], certs[1]);

    for (const s of STAGES) {
      const rows = await waitFor(async () => {
        const r = await run(s, 'query', 'recent', '--device', 'sensor-1', '--json');
        const got = r.code === 0 ? (JSON.parse(r.stdout) as { payload: { from: string } }[]) : [];
        return got.length ? got : undefined;
      }, 60_000, `the message in ${s}'s database`);
      assert.equal(rows.map((r) => r.payload.from), [s], `${s} sees only its own message`);
      // status.json is refreshed by the daemon every few hundred ms: wait for the publish to be counted.
      const status = await waitFor(async () => {
        const st = json<{ endpoints: { mqtt: string }; publishesAccepted: { total: number } }>(await run(s, 'local', 'status', '--json'));
        return st.publishesAccepted.total > 0 ? st : undefined;
      }, 10_000, `${s}'s status to count the publish`);
      assert.is(status.publishesAccepted.total, 1, `${s}'s broker counted only its own publish`);
      assert.match(status.endpoints.mqtt, new RegExp(`:${ports[STAGES.indexOf(s)]}$`));
      const devices = json<{ thingName: string }[]>(await run(s, 'device', 'list', '--json'));
      assert.equal(devices.map((d) => d.thingName), ['sensor-1']);
    }

    const down = await run('dev', 'local', 'down');
    assert.is(down.code, 0, down.stderr);
    assert.is(json<{ running: boolean }>(await run('dev', 'local', 'status', '--json')).running, false);
    assert.is(json<{ running: boolean }>(await run('staging', 'local', 'status', '--json')).running, true, 'staging keeps running');
    const again = await run('staging', 'query', 'recent', '--device', 'sensor-1', '--json');
    assert.is(json<unknown[]>(again).length, 1);
  } finally {
    for (const s of STAGES) await run(s, 'local', 'down');
    for (const s of STAGES) removeExternalCluster(stageDir(s));
    p.cleanup();
  }
});

test('spec resolve prints the effective spec of a stage (YAML, or JSON with --json); spec validate points into the override', async () => {
  const p = makeProject(SPEC);
  mkdirSync(p.stateDir, { mode: 0o700 }); // so that the spec cache is used: each command below runs after one that filled it
  try {
    const yaml = await cli(['spec', 'resolve', '--stage', 'staging'], { cwd: p.dir });
    assert.is(yaml.code, 0, yaml.stderr);
    assert.match(yaml.stdout, /^project: stg\nstage: staging\n/);
    assert.match(yaml.stdout, /streams:\n {2}- name: telemetry\n {4}shards: 2\n {4}retentionHours: 24\n/);
    assert.not.match(yaml.stdout, /^stages:/m);
    const asJson = json<{ stage: string; streams: { shards: number }[] }>(await cli(['spec', 'resolve', '--json'], { cwd: p.dir, env: { IOTCTL_STAGE: 'dev' } }));
    assert.equal([asJson.stage, asJson.streams[0]!.shards], ['dev', 1]);
    for (let i = 0; i < 2; i++) {
      const all = json<{ stages: string[] }>(await cli(['spec', 'validate', '--json'], { cwd: p.dir }));
      assert.equal(all.stages, ['default', 'dev', 'staging']);
    }
    const cache = JSON.parse(readFileSync(join(p.stateDir, 'spec-cache.json'), 'utf8')) as { specs: Record<string, { stage: string }> };
    assert.equal(Object.keys(cache.specs).sort(), ['default', 'dev', 'staging'], 'one cached spec per stage');

    const bad = makeProject(SPEC.replace('shards: 2', 'shards: 0'));
    try {
      const r = await cli(['spec', 'validate'], { cwd: bad.dir });
      assert.is(r.code, 1);
      const line = SPEC.split('\n').findIndex((l) => l.includes('shards: 2')) + 1;
      assert.match(r.stderr, new RegExp(`iotctl\\.yaml:${line}:\\d+ streams\\[0\\]\\.shards: \\(stage staging\\)`));
      assert.is((await cli(['spec', 'validate', '--stage', 'dev'], { cwd: bad.dir })).code, 0, 'one stage is validated alone');
    } finally {
      bad.cleanup();
    }
    const secret = makeProject(`${SPEC}  prod:\n    database: { url: 'postgres://app:Sup3rSecretPass@db.example:5432/fleet' }\n`);
    try {
      const shown = await cli(['spec', 'resolve', '--stage', 'prod'], { cwd: secret.dir });
      assert.is(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, /url: postgres:\/\/app:\S+@db\.example:5432\/fleet/);
      assert.not.match(shown.stdout, /Sup3rSecretPass/, 'spec resolve masks a password in database.url');
    } finally {
      secret.cleanup();
    }
    const typo = await cli(['spec', 'resolve', '--stage', 'stagign', '--target', 'aws'], { cwd: p.dir });
    assert.is(typo.code, 1);
    assert.match(typo.stderr, /Stage 'stagign' \(from --stage\) is not declared.*\nTry: did you mean --stage staging\?/);
  } finally {
    p.cleanup();
  }
});

test.run();
