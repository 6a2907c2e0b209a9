import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { arn, partitionOf, policyInPartition } from '../../../src/targets/aws/arn.js';
import { claimOf, markerTags, withMarker } from '../../../src/targets/aws/ownership.js';
import { stageNames } from '../../../src/targets/aws/naming.js';
import { fromAws, ruleNames, ruleOwnerTags, toPayload } from '../../../src/targets/aws/rules.js';

test('ARNs take the partition of the region', () => {
  assert.is(partitionOf('us-east-1'), 'aws');
  assert.is(partitionOf('cn-north-1'), 'aws-cn');
  assert.is(partitionOf('cn-northwest-1'), 'aws-cn');
  assert.is(partitionOf('us-gov-west-1'), 'aws-us-gov');
  assert.is(partitionOf('eu-west-1'), 'aws');
  assert.is(arn('cn-north-1', 'iam', '', '123456789012', 'role/x'), 'arn:aws-cn:iam::123456789012:role/x');
  assert.is(arn('us-gov-east-1', 'kinesis', 'us-gov-east-1', '1', 'stream/s'), 'arn:aws-us-gov:kinesis:us-gov-east-1:1:stream/s');
  // The device policy document: written in the region's partition, read back as iotctl wrote it.
  const doc = JSON.stringify({ Statement: [{ Resource: ['arn:aws:iot:*:*:topic/dt/x'] }, { Resource: 'arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}' }] });
  const cn = policyInPartition(doc, 'cn-north-1');
  assert.not.ok(cn.includes('arn:aws:'));
  assert.is((cn.match(/"arn:aws-cn:iot:/g) ?? []).length, 2);
  assert.is(policyInPartition(cn, 'cn-north-1', true), doc);
  assert.is(policyInPartition(doc, 'eu-west-1'), doc);
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

test("rules: the owner marker carries project and stage; an older iotctl's `[iotctl:<project>]` reads as its default stage", () => {
  const o = { project: 'fleet', stage: 'default' };
  const s = { partition: 'aws', region: 'us-east-1', account: '123456789012', names: ruleNames(stageNames(o)) };
  const rule = { name: 'r', description: 'to the stream', sql: "SELECT * FROM 'x'", enabled: true, actions: [{ republish: { topic: 'y' } }] };
  const payload = toPayload(rule as never, s, o);
  assert.is(payload.description, 'to the stream [iotctl:project=fleet stage=default]');
  assert.equal(ruleOwnerTags(payload.description), { 'iotctl:project': 'fleet', 'iotctl:stage': 'default' });
  assert.equal(ruleOwnerTags('to the stream [iotctl:fleet]'), { 'iotctl:project': 'fleet', 'iotctl:stage': 'default' });
  assert.is(claimOf(ruleOwnerTags('x [iotctl:fleet-staging]'), o), 'foreign');
  assert.equal(ruleOwnerTags('hand-made'), {});
  assert.is(fromAws('r', { ...payload, ruleName: 'r' } as never, s).description, 'to the stream');
  assert.is(fromAws('r', { ...payload, description: 'to the stream [iotctl:fleet]' } as never, s).description, 'to the stream');
});

test.run();
