/**
 * Stages: which stage a command acts on (--stage > IOTCTL_STAGE > iotctl.yaml's stage: > `default`), the merge
 * rule of `stages.<stage>` into the base spec, and problems in an override reported at the override's own line.
 */
import { awsClients } from '../../../src/targets/aws/index.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSpec, resolveStage, SpecError, type SpecProblem } from '../../../src/spec/loader.js';
import { closestStage, DEFAULT_STAGE, mergeStage, selectStage, stageStateDir } from '../../../src/spec/stages.js';
import { Context } from '../../../src/context.js';
import { resetState, saveMqttPort } from '../../../src/targets/local/lifecycle.js';
import { ensureStateDir } from '../../../src/targets/local/state-dir.js';
import { UserError } from '../../../src/ui/errors.js';

const BASE = `project: fleet
streams:
  - name: telemetry
    shards: 2
    retentionHours: 48
  - name: audit
rules:
  - name: to_stream
    sql: SELECT * FROM 'dt/#'
    actions:
      - kinesis: { stream: telemetry }
database:
  retention: 24h
  rds: { instance: dev-db, user: app }
functions:
  - name: ingest
    template: ingest
    environment: { LEVEL: debug, KEEP: 'yes' }
    vpc: { subnetIds: [a, b], securityGroupIds: [sg1] }
`;

function problemsOf(run: () => unknown): SpecProblem[] {
  try {
    run();
  } catch (e) {
    if (e instanceof SpecError) return e.problems;
    throw e;
  }
  return [];
}

function thrown(run: () => unknown): UserError {
  try {
    run();
  } catch (e) {
    if (e instanceof UserError) return e;
    throw e;
  }
  throw new Error('expected a UserError');
}

test('precedence: --stage, then IOTCTL_STAGE, then iotctl.yaml stage:, then the default stage', () => {
  assert.equal(selectStage({ flag: 'prod', env: 'dev', spec: 'staging' }), { name: 'prod', source: '--stage' });
  assert.equal(selectStage({ env: 'dev', spec: 'staging' }), { name: 'dev', source: 'IOTCTL_STAGE' });
  assert.equal(selectStage({ env: '', spec: 'staging' }), { name: 'staging', source: 'iotctl.yaml' });
  assert.equal(selectStage({}), { name: DEFAULT_STAGE, source: 'default' });
  assert.is(DEFAULT_STAGE, 'default');
});

test('a bad stage name is a user error naming its source, with the name to use', () => {
  const flag = thrown(() => selectStage({ flag: 'Prod' }));
  assert.is(flag.code, 'STAGE_INVALID');
  assert.match(flag.message, /'Prod' \(from --stage\)/);
  assert.match(flag.hint!, /--stage prod/);
  // The name becomes a directory (.iotctl/stages/<stage>): nothing but [a-z][a-z0-9]* gets that far.
  for (const bad of ['../../etc', 'a/b', '.', '', 'x'.repeat(17)]) assert.is(thrown(() => selectStage({ flag: bad })).code, 'STAGE_INVALID', bad);
  const env = thrown(() => selectStage({ env: 'eu-prod' }));
  assert.match(env.message, /IOTCTL_STAGE.*may not hold '-'/);
  assert.match(env.hint!, /--stage euprod/);
  const spec = problemsOf(() => parseSpec('project: fleet\nstage: Prod_1\n'));
  assert.is(spec.length, 1);
  assert.is(spec[0]!.path, 'stage');
  assert.is(spec[0]!.line, 2);
  assert.match(spec[0]!.message, /try 'prod1'/);
  const key = problemsOf(() => parseSpec('project: fleet\nstages:\n  eu-prod: {}\n'));
  assert.equal([key[0]?.line, key[0]?.path], [3, 'stages.eu-prod']);
  assert.match(key[0]!.message, /may not hold '-'.*try 'euprod'/);
});

test('Context: --stage beats IOTCTL_STAGE beats the spec; a non-default stage has its own state dir under .iotctl/stages', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-stages-'));
  try {
    const specFile = join(dir, 'iotctl.yaml');
    writeFileSync(specFile, 'project: fleet\nstage: staging\nstages: { prod: {}, dev: {} }\n');
    const paths = { specFile, projectDir: dir, stateDir: join(dir, '.iotctl') };
    const ctx = async (stage?: { flag?: string; env?: string }) => {
      const c = new Context(paths, { stage });
      await c.prepare();
      return c;
    };
    assert.is((await ctx({ flag: 'prod', env: 'dev' })).stage, 'prod');
    assert.is((await ctx({ env: 'dev' })).stage, 'dev');
    const own = await ctx();
    assert.is(own.stage, 'staging');
    assert.is(own.spec.spec.stage, 'staging');
    assert.is(own.paths.stateDir, join(dir, '.iotctl', 'stages', 'staging'));
    writeFileSync(specFile, 'project: fleet\n');
    const plain = await ctx();
    assert.is(plain.stage, 'default');
    assert.is(plain.paths.stateDir, join(dir, '.iotctl'), "the default stage keeps .iotctl (existing users' state stays)");
    assert.is(stageStateDir('/p/.iotctl', 'dev'), '/p/.iotctl/stages/dev');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('merge rule: objects merge key by key; named lists merge by name and append new names; other lists and scalars replace', () => {
  const base = parseSpec(BASE).raw!;
  const { value } = mergeStage(base, {
    region: 'eu-west-1',
    streams: [{ name: 'telemetry', shards: 8 }, { name: 'archive' }],
    database: { rds: { instance: 'prod-db' } },
    functions: [{ name: 'ingest', environment: { LEVEL: 'info' }, vpc: { subnetIds: ['c'] } }],
  }, ['stages', 'prod']);
  const v = value as Record<string, any>;
  assert.is(v.region, 'eu-west-1');
  assert.equal(v.streams, [{ name: 'telemetry', shards: 8, retentionHours: 48 }, { name: 'audit' }, { name: 'archive' }]);
  assert.equal(v.database, { retention: '24h', rds: { instance: 'prod-db', user: 'app' } });
  assert.equal(v.functions[0].environment, { LEVEL: 'info', KEEP: 'yes' });
  assert.equal(v.functions[0].vpc, { subnetIds: ['c'], securityGroupIds: ['sg1'] }, 'a list that is not of named items replaces');
  assert.is(base.region, undefined, 'the base is not modified');
  assert.is((base.streams as { shards: number }[])[0]!.shards, 2);
});

test('resolveStage: defaults apply after the merge; a rule is switched off, not removed; an undeclared stage is the base', () => {
  const loaded = parseSpec(`${BASE}stages:\n  prod:\n    rules: [{ name: to_stream, enabled: false }]\n    account: "012345678901"\n  dev:\n`);
  assert.equal(loaded.declaredStages, ['prod', 'dev']);
  const prod = resolveStage(loaded, 'prod').spec;
  assert.is(prod.stage, 'prod');
  assert.is(prod.account, '012345678901');
  assert.is(prod.rules.length, 1);
  assert.is(prod.rules[0]!.enabled, false);
  assert.is(prod.rules[0]!.sql, "SELECT * FROM 'dt/#'");
  assert.is((prod as { stages?: unknown }).stages, undefined, 'the effective spec holds no stages');
  const dev = resolveStage(loaded, 'dev').spec;
  assert.is(dev.rules[0]!.enabled, true);
  assert.is(dev.account, undefined);
  const adhoc = resolveStage(loaded, 'alice');
  assert.is(adhoc.spec.stage, 'alice');
  assert.equal(adhoc.spec.streams, loaded.spec.streams);
});

test('an account id is 12 digits, quoted; a stage override may not set project, stage or stages', () => {
  const unquoted = problemsOf(() => parseSpec('project: fleet\naccount: 123456789012\n'));
  assert.match(unquoted[0]!.message, /quoted/);
  const short = problemsOf(() => parseSpec('project: fleet\nstages:\n  prod:\n    account: "1234"\n'));
  assert.is(short.length, 0, 'an override value is checked after the merge');
  const merged = problemsOf(() => resolveStage(parseSpec('project: fleet\nstages:\n  prod:\n    account: "1234"\n'), 'prod'));
  assert.equal([merged[0]!.line, merged[0]!.path], [4, 'account']);
  const fixed = problemsOf(() => parseSpec('project: fleet\nstages:\n  prod:\n    project: other\n'));
  assert.match(fixed[0]!.message, /project/);
  assert.is(fixed[0]!.line, 4, "points at the override's map (its first line), not the base's");
});

test('a problem in a value the override wrote points at the override; one in a value it did not write, at the base', () => {
  const text = `${BASE}stages:
  prod:
    streams:
      - name: telemetry
        shards: 99
      - name: Bad Name
`;
  const lines = text.split('\n');
  const lineOf = (needle: string) => lines.findIndex((l) => l.includes(needle)) + 1;
  const problems = problemsOf(() => resolveStage(parseSpec(text), 'prod'));
  const byPath = Object.fromEntries(problems.map((p) => [p.path, p]));
  assert.is(byPath['streams[0].shards']?.line, lineOf('shards: 99'), JSON.stringify(problems));
  assert.is(byPath['streams[2].name']?.line, lineOf('Bad Name'));
  // Rule SQL is compiled by the spec checks, after the schema: the column inside the override's text too.
  const sqlText = `${BASE}stages:\n  prod:\n    rules:\n      - name: to_stream\n        sql: SELECT * FRM 'dt/#'\n`;
  const sql = problemsOf(() => resolveStage(parseSpec(sqlText), 'prod'));
  assert.equal([sql[0]?.path, sql[0]?.line], ['rules[0].sql', sqlText.split('\n').findIndex((l) => l.includes('FRM')) + 1], JSON.stringify(sql));
  assert.ok(sql[0]!.col > 'sql: '.length + 8, 'the column is inside the SQL');
  // Base lines: a value the override merged into but did not set stays at the base's line.
  const small = `${BASE}stages:\n  prod:\n    streams: [{ name: telemetry, shards: 8 }]\n`;
  const loaded = resolveStage(parseSpec(small), 'prod');
  assert.is(loaded.locate(['streams', 0, 'retentionHours']).line, lineOf('retentionHours: 48'));
  assert.is(loaded.locate(['streams', 0, 'shards']).line, small.split('\n').findIndex((l) => l.includes('shards: 8')) + 1);
  assert.is(loaded.locate(['streams', 1, 'name']).line, lineOf('name: audit'));
});

test("a region written only in a stage's override counts as the spec's region (the schema's default does not)", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-stages-'));
  const saved = { AWS_REGION: process.env.AWS_REGION, AWS_DEFAULT_REGION: process.env.AWS_DEFAULT_REGION };
  delete process.env.AWS_REGION;
  delete process.env.AWS_DEFAULT_REGION;
  try {
    const specFile = join(dir, 'iotctl.yaml');
    writeFileSync(specFile, 'project: fleet\ntarget: aws\nstages:\n  prod:\n    region: eu-west-1\n  dev:\n');
    const paths = { specFile, projectDir: dir, stateDir: join(dir, '.iotctl') };
    const region = async (flag: string) => {
      const c = new Context(paths, { stage: { flag } });
      await c.prepare();
      return awsClients(c).settings.region;
    };
    assert.is(await region('prod'), 'eu-west-1');
    assert.is(await region('dev'), undefined, "dev wrote no region: the profile's applies, not us-east-1");
    const loaded = parseSpec(readFileSync(specFile, 'utf8'));
    assert.ok(resolveStage(loaded, 'prod').written(['region']));
    assert.not.ok(resolveStage(loaded, 'dev').written(['region']));
    assert.not.ok(resolveStage(loaded, 'prod').written(['local', 'mqttPort']));
  } finally {
    Object.assign(process.env, Object.fromEntries(Object.entries(saved).filter(([, v]) => v !== undefined)));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('closestStage suggests a declared stage for a typo, and nothing for an unrelated name', () => {
  assert.is(closestStage('prdo', ['dev', 'staging', 'prod']), 'prod');
  assert.is(closestStage('stagign', ['dev', 'staging', 'prod']), 'staging');
  assert.is(closestStage('alice', ['dev', 'staging', 'prod']), undefined);
});

test('the aws target refuses a stage iotctl.yaml does not declare (a typo must not deploy the base); local allows it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-stages-'));
  try {
    const specFile = join(dir, 'iotctl.yaml');
    writeFileSync(specFile, 'project: fleet\ntarget: aws\nstages: { prod: { region: eu-west-1 } }\n');
    const paths = { specFile, projectDir: dir, stateDir: join(dir, '.iotctl') };
    const typo = new Context(paths, { stage: { flag: 'prdo' } });
    await typo.prepare();
    const e = thrown(() => typo.spec);
    assert.is(e.code, 'STAGE_UNDECLARED');
    assert.match(e.hint!, /did you mean --stage prod\?/);
    const local = new Context(paths, { stage: { flag: 'prdo' }, target: 'local' });
    await local.prepare();
    assert.is(local.spec.spec.stage, 'prdo');
    const dflt = new Context(paths, {});
    await dflt.prepare();
    assert.is(dflt.spec.spec.region, 'us-east-1', 'the default stage needs no declaration');
    const named = new Context(paths, { stage: { flag: 'default' } });
    await named.prepare();
    assert.is(named.spec.stage, 'default', '--stage default needs none either');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("local up --mqtt-port saves a stage's port under stages.<stage>.local, the default stage's at local.mqttPort", () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-stages-'));
  try {
    const specFile = join(dir, 'iotctl.yaml');
    writeFileSync(specFile, '# fleet\nproject: fleet\nlocal: { mqttPort: 8883 }\nstages:\n  dev:\n  prod: { region: eu-west-1 }\n');
    assert.ok(saveMqttPort(specFile, 18884, 'dev'));
    assert.ok(saveMqttPort(specFile, 18885, 'prod'));
    assert.ok(saveMqttPort(specFile, 18886, 'qa'));
    assert.not.ok(saveMqttPort(specFile, 18884, 'dev'), 'unchanged');
    const loaded = parseSpec(readFileSync(specFile, 'utf8'));
    assert.is(loaded.spec.local.mqttPort, 8883, 'the base (default stage) keeps its port');
    assert.is(resolveStage(loaded, 'dev').spec.local.mqttPort, 18884);
    assert.is(resolveStage(loaded, 'prod').spec.local.mqttPort, 18885);
    assert.is(resolveStage(loaded, 'prod').spec.region, 'eu-west-1');
    assert.is(resolveStage(loaded, 'qa').spec.local.mqttPort, 18886);
    assert.match(readFileSync(specFile, 'utf8'), /^# fleet\n/, 'comments kept');
    assert.ok(saveMqttPort(specFile, 18000));
    assert.is(parseSpec(readFileSync(specFile, 'utf8')).spec.local.mqttPort, 18000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("local reset of the default stage leaves the other stages' state; reset of a stage deletes only its own", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-stages-'));
  try {
    const root = join(dir, '.iotctl');
    for (const stage of ['default', 'dev', 'prod']) {
      ensureStateDir(stageStateDir(root, stage));
      writeFileSync(join(stageStateDir(root, stage), 'state.db'), stage);
    }
    await resetState(stageStateDir(root, 'default'));
    assert.not.ok(existsSync(join(root, 'state.db')), "the default stage's state is gone");
    assert.is(readFileSync(join(root, 'stages', 'dev', 'state.db'), 'utf8'), 'dev');
    await resetState(stageStateDir(root, 'dev'));
    assert.not.ok(existsSync(join(root, 'stages', 'dev')));
    assert.is(readFileSync(join(root, 'stages', 'prod', 'state.db'), 'utf8'), 'prod');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
