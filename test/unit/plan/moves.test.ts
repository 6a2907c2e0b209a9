import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatPlan, planResources, type Resource } from '../../../src/iot/plan/index.js';

const fn = (physical: string, extra: Partial<Resource> = {}): Resource => ({ kind: 'function', name: 'ingest', physical, config: { memoryMb: 256 }, ...extra });
const stream = (physical: string, extra: Partial<Resource> = {}): Resource => ({ kind: 'stream', name: 'telemetry', physical, config: { shards: 1 }, keepsData: true, ...extra });

test('a renamed resource is moved: the new name is applied and the old one deleted, without --prune', () => {
  const items = planResources([fn('iotctl-fleet-dev--ingest')], [fn('ingest')]);
  assert.equal(
    items.map((i) => [i.action, i.physical, i.note]),
    [
      ['replace', 'iotctl-fleet-dev--ingest', undefined],
      ['delete', 'ingest', 'renamed to iotctl-fleet-dev--ingest'],
    ],
  );
  // The delete names the old physical name, even where it is the logical one: an adapter given none deletes the new one.
  assert.equal(items[0]!.changes[0], { path: 'physicalName', before: 'ingest', after: 'iotctl-fleet-dev--ingest' });
});

test('a renamed resource that keeps data is never deleted by the move; a later --prune deletes the retired copy', () => {
  const first = planResources([stream('iotctl-fleet-dev--telemetry')], [stream('telemetry')], { prune: true });
  assert.equal(first.map((i) => i.action), ['replace']);
  assert.match(first[0]!.note!, /the old telemetry keeps its data/);
  const later = [stream('iotctl-fleet-dev--telemetry'), stream('telemetry', { retired: true })];
  assert.equal(planResources([stream('iotctl-fleet-dev--telemetry')], later).map((i) => i.action), ['noop']);
  const pruned = planResources([stream('iotctl-fleet-dev--telemetry')], later, { prune: true });
  assert.equal(pruned.map((i) => [i.action, i.physical]), [['noop', 'iotctl-fleet-dev--telemetry'], ['delete', 'telemetry']]);
});

test('a retired copy that keeps no data (a move cut short before its delete phase) is deleted by the next apply, without --prune', () => {
  const items = planResources([fn('iotctl-fleet-dev--ingest')], [fn('iotctl-fleet-dev--ingest'), fn('ingest', { retired: true })]);
  assert.equal(items.map((i) => [i.action, i.physical]), [['noop', 'iotctl-fleet-dev--ingest'], ['delete', 'ingest']]);
});

test('plans show the physical name where it differs, and notes', () => {
  const text = formatPlan(planResources([stream('iotctl-fleet-dev--telemetry'), fn('iotctl-fleet-dev--ingest')], [stream('telemetry')]));
  assert.match(text, /^~ stream telemetry \(iotctl-fleet-dev--telemetry\)$/m);
  assert.match(text, /^ {4}physicalName: "telemetry" -> "iotctl-fleet-dev--telemetry"$/m);
  assert.match(text, /^ {4}note: a new stream iotctl-fleet-dev--telemetry is created/m);
  assert.match(text, /^\+ function ingest \(iotctl-fleet-dev--ingest\)$/m);
  assert.match(formatPlan(planResources([], [stream('telemetry', { retired: true })], { prune: true })), /^- stream telemetry$/m);
  // The local target names resources by their logical names: nothing extra.
  assert.match(formatPlan(planResources([{ kind: 'rule', name: 'r', physical: 'r', config: {} }], [])), /^\+ rule r$/m);
});

test.run();
