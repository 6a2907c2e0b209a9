// `iotctl check` on real processes: one local platform (daemon, PostgreSQL from DATABASE_URL) shared by the
// file. A healthy platform passes every stage; then one stage at a time is broken and exactly that stage fails
// with its reason while the stages below it are "not reached".
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, makeProject, type CliResult, type Project } from '../helpers/project.js';
import { freshDatabase } from '../helpers/pg.js';
import { initSpec } from '../../src/spec/init-template.js';
import { defaultDevicePolicy } from '../../src/iot/policy/index.js';
import { freePort } from '../../src/targets/local/postgres.js';

interface Report {
  stages: { stage: string; status: string; ms: number | null; detail: string }[];
  ok: boolean;
  canary: string;
  checkId: string;
}

let project: Project;
let env: Record<string, string>;
let drop: (() => Promise<void>) | undefined;
let specText: string;
const run = (args: string[], extraEnv: Record<string, string> = {}) => cli(args, { cwd: project.dir, env: { ...env, ...extraEnv }, timeoutMs: 90_000 });

function report(r: CliResult, code: number): Report {
  assert.is(r.code, code, `exit ${r.code}: ${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout) as Report;
}
const statuses = (rep: Report) => Object.fromEntries(rep.stages.map((s) => [s.stage, s.status]));
const detail = (rep: Report, stage: string) => rep.stages.find((s) => s.stage === stage)!.detail;
const check = (extraEnv?: Record<string, string>, ...args: string[]) => run(['check', '--json', '--timeout', '30s', ...args], extraEnv);

const ALL = ['broker', 'rule telemetry_to_stream', 'rule telemetry_to_lake', 'stream telemetry', 'function ingest', 'lake telemetry_raw'];

test.before(async () => {
  specText = initSpec('ck').replace('mqttPort: 8883', `mqttPort: ${await freePort()}`);
  project = makeProject(specText);
  const db = await freshDatabase(undefined, 'iotctl_check');
  drop = db.drop;
  env = { DATABASE_URL: db.url };
  // uvu reports nothing for a failing hook: say why.
  const up = await run(['local', 'up', '--detach']);
  if (up.code !== 0) console.error(up.stderr);
  assert.is(up.code, 0, up.stderr);
  const applied = await run(['apply', '--yes']);
  if (applied.code !== 0) console.error(applied.stderr);
  assert.is(applied.code, 0, applied.stderr);
});

test.after(async () => {
  await run(['local', 'down']);
  await drop?.();
  project.cleanup();
});

test('a healthy platform passes every stage, in order, with times; the canary keeps its key private in the state dir', async () => {
  const rep = report(await check(), 0);
  assert.ok(rep.ok);
  assert.equal(rep.stages.map((s) => s.stage), ALL);
  assert.equal(rep.stages.map((s) => s.status), ALL.map(() => 'passed'), JSON.stringify(rep.stages, null, 1));
  assert.ok(rep.stages.every((s) => typeof s.ms === 'number' && s.ms >= 0 && s.ms < 30_000));
  assert.is(rep.canary, 'ck-default-canary');
  assert.match(detail(rep, 'lake telemetry_raw'), /datastore telemetry_store/);
  // The check has the platform flush its pipelines: well before their 10 s flush interval.
  assert.ok(rep.stages.at(-1)!.ms! < 8000, `lake after ${rep.stages.at(-1)!.ms} ms`);
  assert.is(statSync(join(project.stateDir, 'canary', 'ck-default-canary', 'private.key')).mode & 0o777, 0o600);

  // query recent leaves canary messages out unless asked.
  const recent = await run(['query', 'recent', '--device', 'ck-default-canary', '--json']);
  assert.equal(JSON.parse(recent.stdout), []);
  const withCanary = JSON.parse((await run(['query', 'recent', '--device', 'ck-default-canary', '--include-canary', '--json'])).stdout) as { payload: { check_id: string; iotctl_check: boolean } }[];
  assert.is(withCanary.length, 1);
  assert.ok(withCanary.every((m) => m.payload.iotctl_check === true));

  // Piped without --json: a table, one row per stage.
  const piped = await run(['check', '--skip', 'lake']);
  assert.is(piped.code, 0, piped.stderr);
  assert.match(piped.stdout, /^stage\tstatus\tms\tdetail$/m);
  assert.match(piped.stdout, /^lake telemetry_raw\tskipped\t\t--skip lake$/m);
});

test('--athena: the datastore table returns the row through the lake query port (DuckDB locally)', async () => {
  const rep = report(await check(undefined, '--athena', '--skip', 'function'), 0);
  assert.is(statuses(rep)['athena telemetry_store'], 'passed', JSON.stringify(rep.stages, null, 1));
  assert.match(detail(rep, 'athena telemetry_store'), /table ck.telemetry_store returns the row \(DuckDB/);
});

test('the stream rule disabled: that rule fails, the stream and the function are not reached, the lake branch passes', async () => {
  assert.is((await run(['rules', 'disable', 'telemetry_to_stream'])).code, 0);
  try {
    const rep = report(await check(), 1);
    assert.equal(statuses(rep), {
      broker: 'passed',
      'rule telemetry_to_stream': 'failed',
      'rule telemetry_to_lake': 'passed',
      'stream telemetry': 'not reached',
      'function ingest': 'not reached',
      'lake telemetry_raw': 'passed',
    });
    assert.match(detail(rep, 'rule telemetry_to_stream'), /disabled/);
  } finally {
    assert.is((await run(['rules', 'enable', 'telemetry_to_stream'])).code, 0);
  }
});

test('the stream rule failing (its stream never created): the rule fails with the rule error, its stream is not reached', async () => {
  const failing = specText
    .replace("      - kinesis: { stream: telemetry, partitionKey: '${topic(3)}' }", "      - kinesis: { stream: never_created, partitionKey: '${topic(3)}' }")
    .replace('streams:\n  - name: telemetry\n', 'streams:\n  - name: never_created\n  - name: telemetry\n');
  assert.is.not(failing, specText);
  writeFileSync(project.specFile, failing);
  try {
    assert.is((await run(['rules', 'apply', '--yes'])).code, 0); // the rule only: the stream is not created
    const rep = report(await check(), 1);
    assert.equal(statuses(rep), {
      broker: 'passed',
      'rule telemetry_to_stream': 'failed',
      'rule telemetry_to_lake': 'passed',
      'stream never_created': 'not reached',
      'lake telemetry_raw': 'passed',
    });
    assert.match(detail(rep, 'rule telemetry_to_stream'), /rule error: never_created: stream "never_created" does not exist/);
  } finally {
    writeFileSync(project.specFile, specText);
    assert.is((await run(['rules', 'apply', '--yes'])).code, 0);
  }
});

test("the function deployed without its mapping: only the function stage fails, saying so", async () => {
  // The same state dir, another spec: the ingest function without its eventSource.
  const noMapping = join(project.dir, 'no-mapping.yaml');
  writeFileSync(noMapping, specText.replace(/\n {4}eventSource:[\s\S]*?\n(?=\n)/, '\n'));
  const deployed = await run(['lambda', 'deploy', 'ingest-rds', '--name', 'ingest', '--spec', noMapping]);
  assert.is(deployed.code, 0, deployed.stderr);
  try {
    const rep = report(await check(), 1);
    assert.equal(statuses(rep), { ...Object.fromEntries(ALL.map((s) => [s, 'passed'])), 'function ingest': 'failed' });
    assert.match(detail(rep, 'function ingest'), /no event source mapping on stream telemetry/);
  } finally {
    assert.is((await run(['lambda', 'deploy', 'ingest-rds', '--name', 'ingest'])).code, 0);
  }
});

test('the database down (DATABASE_URL at a dead port): only the function stage fails, with the connection error', async () => {
  const rep = report(await check({ DATABASE_URL: `postgres://postgres@127.0.0.1:${await freePort()}/gone` }), 1);
  assert.equal(statuses(rep), { ...Object.fromEntries(ALL.map((s) => [s, 'passed'])), 'function ingest': 'failed' });
  assert.match(detail(rep, 'function ingest'), /database refuses connections: .*(ECONNREFUSED|connect)/i);
});

test("the device policy denies the canary's publish: the broker fails naming the statement, every later stage is not reached", async () => {
  const policy = defaultDevicePolicy({ telemetryTopic: 'dt/ck/${thing}/telemetry', commandsFilter: 'cmd/ck/${thing}/#' });
  const statements = [...(Array.isArray(policy.Statement) ? policy.Statement : [policy.Statement]), { Sid: 'NoCanaries', Effect: 'Deny', Action: 'iot:Publish', Resource: 'arn:aws:iot:*:*:topic/dt/ck/*-canary/telemetry' }];
  const denying = specText.replace('    name: ck-device', `    name: ck-device\n    document: ${JSON.stringify({ ...policy, Statement: statements })}`);
  writeFileSync(project.specFile, denying);
  try {
    const applied = await run(['apply', '--yes']);
    assert.is(applied.code, 0, applied.stderr);
    const rep = report(await check(), 1);
    assert.equal(statuses(rep), { ...Object.fromEntries(ALL.map((s) => [s, 'not reached'])), broker: 'failed' });
    assert.match(detail(rep, 'broker'), /denied by policy ck-device statement NoCanaries/);
  } finally {
    writeFileSync(project.specFile, specText); // the last test on this platform: no need to apply it back
  }
});

test('the platform not running: a precise error with the `local up` hint', async () => {
  const other = makeProject(initSpec('idle').replace('mqttPort: 8883', `mqttPort: ${await freePort()}`));
  try {
    const r = await cli(['check'], { cwd: other.dir, env });
    assert.is(r.code, 1);
    assert.match(r.stderr, /The local platform is not running/);
    assert.match(r.stderr, /iotctl local up/);
  } finally {
    other.cleanup();
  }
});

test.run();
