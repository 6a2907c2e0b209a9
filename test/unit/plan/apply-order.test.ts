import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyOrder, formatPlan, planResources, type PlanItem } from '../../../src/iot/plan/index.js';
import { arn, partitionOf } from '../../../src/targets/aws/arn.js';
import { claimOf, markerTags, withMarker } from '../../../src/targets/aws/ownership.js';

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

test('ARNs take the partition of the region', () => {
  assert.is(partitionOf('us-east-1'), 'aws');
  assert.is(partitionOf('cn-north-1'), 'aws-cn');
  assert.is(partitionOf('cn-northwest-1'), 'aws-cn');
  assert.is(partitionOf('us-gov-west-1'), 'aws-us-gov');
  assert.is(partitionOf('eu-west-1'), 'aws');
  assert.is(arn('cn-north-1', 'iam', '', '123456789012', 'role/x'), 'arn:aws-cn:iam::123456789012:role/x');
  assert.is(arn('us-gov-east-1', 'kinesis', 'us-gov-east-1', '1', 'stream/s'), 'arn:aws-us-gov:kinesis:us-gov-east-1:1:stream/s');
});

test('ownership: project and stage tags own; the old marker or a stageless project tag is legacy; anything else is foreign', () => {
  const o = { project: 'fleet', stage: 'default' };
  assert.is(claimOf({ 'iotctl:project': 'fleet', 'iotctl:stage': 'default' }, o), 'owned');
  assert.is(claimOf({ 'iotctl:project': 'fleet', 'iotctl:stage': 'prod' }, o), 'foreign');
  assert.is(claimOf({ 'iotctl:project': 'fleet-staging', 'iotctl:stage': 'default' }, o), 'foreign');
  assert.is(claimOf({ 'iotctl:project': 'fleet' }, o), 'legacy');
  assert.is(claimOf({ 'iotctl:managed': 'true' }, o, true), 'legacy');
  assert.is(claimOf({ 'iotctl:managed': 'true', 'iotctl:project': 'other' }, o, true), 'foreign');
  assert.is(claimOf({}, o), 'foreign');
  assert.is(claimOf({ team: 'payments' }, o), 'foreign');
  const d = withMarker('iotctl analytics dataset', o);
  assert.is(d, 'iotctl analytics dataset [iotctl:project=fleet stage=default]');
  assert.equal(markerTags(d), { 'iotctl:project': 'fleet', 'iotctl:stage': 'default' });
  assert.equal(markerTags(withMarker(d, { project: 'fleet-staging', stage: 'default' })), { 'iotctl:project': 'fleet-staging', 'iotctl:stage': 'default' });
  assert.equal(markerTags('iotctl analytics dataset'), {});
});

test.run();
