import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, makeProject, type Project } from '../helpers/project.js';

const SPEC = (threshold: number, extraRule = '') => `project: demo
local: { mqttPort: 0 }
streams: [{ name: telemetry }]
rules:
  - name: hot
    sql: SELECT temperature, topic(3) AS device FROM 'dt/+/+/telemetry' WHERE temperature > ${threshold}
    actions:
      - kinesis: { stream: telemetry, partitionKey: '\${topic(3)}' }
${extraRule}`;

let project: Project;
const run = (...args: string[]) => cli(args, { cwd: project.dir });

test.before(() => {
  project = makeProject(SPEC(20));
});
test.after(() => project.cleanup());

test('rules test evaluates a spec rule or --sql against sample messages without a platform', async () => {
  const hit = await run('rules', 'test', 'hot', '--topic', 'dt/demo/s1/telemetry', '--payload', '{"temperature": 25, "humidity": 3}', '--json');
  assert.is(hit.code, 0, hit.stderr);
  assert.equal(JSON.parse(hit.stdout), [{ topic: 'dt/demo/s1/telemetry', matched: true, output: { temperature: 25, device: 's1' } }]);
  const miss = await run('rules', 'test', 'hot', '--topic', 'dt/demo/s1/telemetry', '--payload', '{"temperature": 5}');
  assert.is(miss.stdout.trim(), '{"matched":false}');
  writeFileSync(join(project.dir, 'm.jsonl'), ['{"topic": "dt/a/b/telemetry", "payload": {"temperature": 30}}', '{"topic": "other", "payload": {"temperature": 30}}', ''].join('\n'));
  const many = await run('rules', 'test', '--sql', "SELECT VALUE temperature * 2 FROM 'dt/#'", '--messages', 'm.jsonl');
  assert.equal(many.stdout.trim().split('\n'), ['60', '{"matched":false}']);
});

test('rules test shows SQL errors with a caret under the fault', async () => {
  const r = await run('rules', 'test', '--sql', "SELECT nosuchfn(a) FROM 'x'", '--topic', 'x', '--payload', '{}');
  assert.is(r.code, 1);
  assert.match(r.stderr, /UNKNOWN_FUNCTION/);
  assert.match(r.stderr, /\^/);
});

test('rules apply plans, applies, then reports no changes; a change is a field-level replace', async () => {
  const dry = await run('rules', 'apply', '--dry-run');
  assert.match(dry.stderr, /\+ rule hot/);
  assert.equal(JSON.parse((await run('rules', 'list', '--json')).stdout), []);
  assert.is((await run('rules', 'apply', '--yes')).code, 0);
  assert.match((await run('rules', 'apply', '--yes')).stderr, /No changes/);
  assert.is((await run('rules', 'diff')).code, 0);
  writeFileSync(project.specFile, SPEC(30));
  const diff = await run('rules', 'diff');
  assert.is(diff.code, 3);
  assert.match(diff.stdout, /~ rule hot\n\s+sql: .*temperature > 20.* -> .*temperature > 30/);
  const noYes = await run('rules', 'apply');
  assert.is(noYes.code, 1);
  assert.match(noYes.stderr, /--yes/);
  assert.is((await run('rules', 'apply', '--yes')).code, 0);
  assert.match(JSON.parse((await run('rules', 'show', 'hot', '--json')).stdout).sql, /> 30/);
});

test('rules disable/enable, and --prune deletes rules the spec no longer declares', async () => {
  assert.is((await run('rules', 'disable', 'hot')).code, 0);
  assert.is(JSON.parse((await run('rules', 'show', 'hot', '--json')).stdout).enabled, false);
  assert.is((await run('rules', 'enable', 'hot')).code, 0);
  writeFileSync(project.specFile, SPEC(30, `  - name: extra\n    sql: SELECT * FROM 'a/#'\n    actions: [{ republish: { topic: b } }]\n`));
  assert.is((await run('rules', 'apply', '--yes')).code, 0);
  writeFileSync(project.specFile, SPEC(30));
  const keep = await run('rules', 'apply', '--dry-run');
  assert.match(keep.stderr, /No changes/);
  const prune = await run('rules', 'apply', '--prune', '--yes');
  assert.match(prune.stderr, /- rule extra/);
  assert.equal(JSON.parse((await run('rules', 'list', '--json')).stdout).map((r: { name: string }) => r.name), ['hot']);
  const missing = await run('rules', 'show', 'extra');
  assert.is(missing.code, 1);
});

test('the package exports the engines as iotctl/rules and iotctl/policy', async () => {
  const rules = await import('iotctl/rules');
  assert.equal(rules.compileRule("SELECT *, topic(2) AS d FROM 'a/+'").evaluate({ topic: 'a/x', payload: { v: 1 } }), { v: 1, d: 'x' });
  assert.is(rules.topicMatches('a/#', 'a/b/c'), true);
  const policy = await import('iotctl/policy');
  assert.is(policy.evaluatePolicy({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:*', Resource: '*' }] }, { action: 'iot:Publish', resource: 'arn:aws:iot:us-east-1:1:topic/x', clientId: 'c' }).decision, 'allow');
});

test.run();
