import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyOrder, formatPlan, planResources, type PlanItem } from '../../../src/iot/plan/index.js';

const item = (action: PlanItem['action'], kind: string, name: string): PlanItem => ({ action, kind, name, changes: [] });

test('apply creates and updates in dependency order, then deletes in reverse dependency order across sections', () => {
  const plans = [
    { section: 'devices', items: [item('noop', 'policy', 'p')] },
    { section: 'streams', items: [item('delete', 'stream', 'old'), item('create', 'stream', 'telemetry')] },
    { section: 'functions', items: [item('delete', 'function', 'old-fn'), item('replace', 'function', 'ingest')] },
    { section: 'analytics', items: [item('delete', 'stream', 'iotctl-fleet-ch-x')] },
    { section: 'rules', items: [item('delete', 'rule', 'to_old'), item('create', 'rule', 'to_new')] },
  ];
  const steps = applyOrder(plans).map((p) => `${p.section}: ${p.items.map((i) => `${i.action} ${i.name}`).join(', ')}`);
  assert.equal(steps, [
    'streams: create telemetry',
    'functions: replace ingest',
    'rules: create to_new',
    // The rule that wrote to the old stream goes first, the stream last.
    'rules: delete to_old',
    'analytics: delete iotctl-fleet-ch-x',
    'functions: delete old-fn',
    'streams: delete old',
  ]);
});

test('a resource made before the ownership tags is tagged when the spec declares it, and never pruned', () => {
  const adopt = { 'iotctl:project': 'fleet', 'iotctl:stage': 'default' };
  const items = planResources(
    [{ kind: 'stream', name: 'telemetry', config: { shards: 1 } }],
    [
      { kind: 'stream', name: 'telemetry', config: { shards: 1 }, adopt },
      { kind: 'stream', name: 'other', config: { shards: 1 }, adopt },
    ],
    { prune: true },
  );
  assert.equal(items, [{ action: 'replace', kind: 'stream', name: 'telemetry', changes: [{ path: 'tags', before: undefined, after: adopt }], desired: { shards: 1 }, actual: { shards: 1 } }]);
  assert.match(formatPlan(items), /~ stream telemetry\n {4}tags: \(unset\) -> \{"iotctl:project":"fleet","iotctl:stage":"default"\}/);
});

test.run();
