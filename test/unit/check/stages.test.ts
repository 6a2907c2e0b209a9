// iotctl check, the pure part: the stage graph from the spec, outcomes with "not reached" below a failure, percentiles.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseSpec } from '../../../src/spec/loader.js';
import { initSpec } from '../../../src/spec/init-template.js';
import { blocked, checkMetrics, checkPassed, percentile, planCheck, settle, summarizeRounds, type Observation, type StageKind } from '../../../src/services/check-stages.js';

const seed = parseSpec(initSpec('demo'), 'iotctl.yaml').spec;
const TOPIC = 'dt/demo/demo-default-canary/telemetry';

/** A spec with a rule on another topic, a rule feeding two destinations, and a function on an unfed stream. */
const mixed = parseSpec(
  `project: demo
streams: [{ name: a }, { name: b }, { name: idle }]
rules:
  - { name: both, sql: "SELECT * FROM 'dt/demo/+/telemetry'", actions: [{ kinesis: { stream: a } }, { iotAnalytics: { channel: raw } }] }
  - { name: also_a, sql: "SELECT * FROM 'dt/#'", actions: [{ kinesis: { stream: a } }, { kinesis: { stream: b } }] }
  - { name: elsewhere, sql: "SELECT * FROM 'cmd/+/x'", actions: [{ kinesis: { stream: idle } }] }
  - { name: republisher, sql: "SELECT * FROM 'dt/demo/+/telemetry'", actions: [{ republish: { topic: out } }] }
functions:
  - { name: fa, template: ingest-rds, eventSource: { stream: a } }
  - { name: fidle, template: ingest-rds, eventSource: { stream: idle } }
analytics:
  channels: [{ name: raw }]
  pipelines: [{ name: p, channel: raw, datastore: ds, activities: [] }]
  datastores: [{ name: ds }]
`,
  'iotctl.yaml',
).spec;

test('--athena: one table stage per datastore, after the lake stage of the channel that fills it; none without the flag', () => {
  const plan = planCheck(seed, TOPIC, { athena: true });
  assert.equal(plan.stages.at(-1), { id: 'athena telemetry_store', kind: 'athena', name: 'telemetry_store', after: ['lake telemetry_raw'], channel: 'telemetry_raw' });
  assert.not.ok(planCheck(seed, TOPIC).stages.some((s) => s.kind === 'athena'));
  // The lake failing leaves the table "not reached".
  const results = settle(plan, new Map<string, Observation>([['lake telemetry_raw', { status: 'failed', ms: null, detail: 'not flushed' }], ['broker', { status: 'passed', ms: 1, detail: '' }], ['rule telemetry_to_lake', { status: 'passed', ms: 1, detail: '' }]]), new Set(), 1000);
  assert.equal(results.at(-1), { stage: 'athena telemetry_store', status: 'not reached', ms: null, detail: 'lake telemetry_raw did not pass' });
});

test('checkMetrics: Success per step and for the whole check, Latency only for stages that passed with a time, nothing for skipped ones', () => {
  const at = new Date('2026-12-07T03:00:00Z');
  const m = checkMetrics(
    [
      { stage: 'broker', status: 'passed', ms: 12, detail: '' },
      { stage: 'stream telemetry', status: 'failed', ms: null, detail: '' },
      { stage: 'function ingest', status: 'not reached', ms: null, detail: '' },
      { stage: 'lake telemetry_raw', status: 'skipped', ms: null, detail: '' },
    ],
    false,
    { project: 'demo', stage: 'prod' },
    at,
  );
  const step = (x: (typeof m)[number]) => x.Dimensions.find((d) => d.Name === 'Step')!.Value;
  assert.equal(m.map((x) => `${x.MetricName} ${step(x)} ${x.Value} ${x.Unit}`), ['Success all 0 Count', 'Success broker 1 Count', 'Latency broker 12 Milliseconds', 'Success stream telemetry 0 Count', 'Success function ingest 0 Count']);
  assert.equal(m[0]!.Dimensions.slice(0, 2), [{ Name: 'Project', Value: 'demo' }, { Name: 'Stage', Value: 'prod' }]);
  assert.ok(m.every((x) => x.Timestamp === at));
});

test('the seed spec: broker, both rules, the stream, the ingest function, the lake channel with its datastore', () => {
  const plan = planCheck(seed, TOPIC);
  assert.equal(
    plan.stages.map((s) => [s.id, s.after]),
    [
      ['broker', []],
      ['rule telemetry_to_stream', ['broker']],
      ['rule telemetry_to_lake', ['broker']],
      ['stream telemetry', ['rule telemetry_to_stream']],
      ['function ingest', ['stream telemetry']],
      ['lake telemetry_raw', ['rule telemetry_to_lake']],
    ],
  );
  assert.equal(plan.stages.at(-1)!.pipelines, [{ pipeline: 'telemetry_pipeline', datastore: 'telemetry_store' }]);
});

test("only rules whose FROM takes the canary's topic; a stream fed by two rules waits on both; unfed streams and their functions are left out", () => {
  const plan = planCheck(mixed, TOPIC);
  assert.equal(plan.stages.map((s) => s.id), ['broker', 'rule both', 'rule also_a', 'rule republisher', 'stream a', 'stream b', 'function fa', 'lake raw']);
  assert.equal(plan.stages.find((s) => s.id === 'stream a')!.after, ['rule both', 'rule also_a']);
  assert.equal(plan.stages.find((s) => s.id === 'rule both')!.channels, ['raw']);
  assert.equal(plan.stages.find((s) => s.id === 'rule republisher')!.streams, []);
  // Another topic reaches none of the rules.
  assert.equal(planCheck(mixed, 'other/topic').stages.map((s) => s.id), ['broker']);
});

const pass = (ms: number, detail = 'ok'): Observation => ({ status: 'passed', ms, detail });
const fail = (detail: string): Observation => ({ status: 'failed', ms: null, detail });
const none = new Set<StageKind>();

test('all observed: every stage passed in plan order, ok', () => {
  const plan = planCheck(seed, TOPIC);
  const observed = new Map(plan.stages.map((s, i) => [s.id, pass(10 * (i + 1))]));
  const results = settle(plan, observed, none, 120_000);
  assert.equal(results.map((r) => [r.stage, r.status, r.ms]), plan.stages.map((s, i) => [s.id, 'passed', 10 * (i + 1)]));
  assert.ok(checkPassed(results));
});

test('a failed rule: its stream and the function below are not reached; the other branch is unaffected', () => {
  const plan = planCheck(seed, TOPIC);
  const observed = new Map([
    ['broker', pass(5)],
    ['rule telemetry_to_stream', fail('rule telemetry_to_stream is disabled')],
    ['rule telemetry_to_lake', pass(20)],
    ['lake telemetry_raw', pass(300)],
  ]);
  const results = settle(plan, observed, none, 120_000);
  assert.equal(results.map((r) => r.status), ['passed', 'failed', 'passed', 'not reached', 'not reached', 'passed']);
  assert.is(results[3]!.detail, 'rule telemetry_to_stream did not pass');
  assert.is(results[4]!.detail, 'stream telemetry did not pass');
  assert.not.ok(checkPassed(results));
});

test('a denied publish: everything after the broker is not reached, whatever an observer said', () => {
  const plan = planCheck(seed, TOPIC);
  const results = settle(plan, new Map([['broker', fail('denied')], ['function ingest', fail('database down')]]), none, 1000);
  assert.equal(results.map((r) => r.status), ['failed', 'not reached', 'not reached', 'not reached', 'not reached', 'not reached']);
});

test('a stage reached but never seen fails for the time-out; one fed by two rules is reached while one of them passed', () => {
  const plan = planCheck(mixed, TOPIC);
  const observed = new Map([['broker', pass(1)], ['rule both', fail('error')], ['rule also_a', pass(3)], ['rule republisher', pass(3)], ['stream a', pass(4)], ['stream b', pass(4)], ['lake raw', pass(9)]]);
  const results = settle(plan, observed, none, 30_000);
  assert.is(results.find((r) => r.stage === 'function fa')!.status, 'failed');
  assert.is(results.find((r) => r.stage === 'function fa')!.detail, 'not seen within 30 s');
  // The lake passed although its only rule failed: what was observed wins.
  assert.is(results.find((r) => r.stage === 'lake raw')!.status, 'passed');
});

test('--skip: skipped stages count as passing for the exit code and block nothing below them', () => {
  const plan = planCheck(seed, TOPIC);
  const observed = new Map([['broker', pass(1)], ['rule telemetry_to_stream', pass(2)], ['rule telemetry_to_lake', pass(2)], ['function ingest', pass(50)]]);
  const results = settle(plan, observed, new Set<StageKind>(['stream', 'lake']), 1000);
  assert.equal(results.map((r) => r.status), ['passed', 'passed', 'passed', 'skipped', 'passed', 'skipped']);
  assert.ok(checkPassed(results));
  const fn = plan.stages.find((s) => s.id === 'function ingest')!;
  assert.not.ok(blocked(fn, () => 'skipped'));
  assert.ok(blocked(fn, () => 'failed'));
  assert.not.ok(blocked(fn, () => undefined));
});

test('percentiles are nearest-rank; --watch summarizes passed rounds per stage', () => {
  assert.is(percentile([], 50), undefined);
  assert.is(percentile([7], 95), 7);
  const values = Array.from({ length: 20 }, (_, i) => 20 - i); // 20..1
  assert.is(percentile(values, 50), 10);
  assert.is(percentile(values, 95), 19);
  assert.is(percentile(values, 100), 20);
  const round = (brokerMs: number, fnStatus: 'passed' | 'failed') => [
    { stage: 'broker', status: 'passed' as const, ms: brokerMs, detail: '' },
    { stage: 'function ingest', status: fnStatus, ms: fnStatus === 'passed' ? brokerMs * 10 : null, detail: '' },
  ];
  assert.equal(summarizeRounds([round(10, 'passed'), round(30, 'failed'), round(20, 'passed')]), [
    { stage: 'broker', rounds: 3, passed: 3, p50: 20, p95: 30 },
    { stage: 'function ingest', rounds: 3, passed: 2, p50: 100, p95: 200 },
  ]);
});

test.run();
