// planResources in the target's shape (`compare`), fields the target cannot update in place (`immutable`),
// and the rendering of both (pure).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { diffFields, formatPlan, planRefusals, planResources, type Resource } from '../../../src/iot/plan/index.js';
import { assertApplicable } from '../../../src/services/refusals.js';

test('the target shape decides: a difference only it shows is a change, under target: paths', () => {
  const desired: Resource = { kind: 'rule', name: 'r', config: { actions: [{ lake: 'raw' }] }, compare: { actions: [{ s: 'ch-raw' }, { s: 'pl-a' }, { s: 'pl-b' }] } };
  const actual: Resource = { kind: 'rule', name: 'r', config: { actions: [{ lake: 'raw' }] }, compare: { actions: [{ s: 'ch-raw' }, { s: 'pl-a' }] } };
  const [item] = planResources([desired], [actual]);
  assert.is(item!.action, 'replace');
  assert.equal(item!.changes, [{ path: 'target:actions[2]', before: undefined, after: { s: 'pl-b' } }]);
  assert.match(formatPlan([item!]), 'target:actions[2]: (unset) -> {"s":"pl-b"}');
  // Equal in the target's shape: no change, whatever the spec's shape says.
  assert.is(planResources([{ ...desired, config: { other: 1 } }], [{ ...actual, compare: desired.compare }])[0]!.action, 'noop');
  // Different in both: the spec's fields are shown.
  assert.equal(planResources([{ ...desired, config: { sql: 'b' } }], [{ ...actual, config: { sql: 'a' } }])[0]!.changes.map((c) => c.path), ['sql']);
});

test('items added or removed at the end of a list show one by one', () => {
  assert.equal(diffFields([1, 2], [1, 2, 3, 4]).map((c) => c.path), ['[2]', '[3]']);
  assert.equal(diffFields({ a: [1, 2, 3] }, { a: [1] }).map((c) => [c.path, c.before]), [['a[1]', 2], ['a[2]', 3]]);
  assert.equal(diffFields([1, 2], [3]), [{ path: '', before: [1, 2], after: [3] }]);
});

test('an immutable field: marked with what it replaces, or refused with how to fix it', () => {
  const immutable = { 'eventSource.startingPosition': { replaces: 'the event source mapping' }, format: { refuse: { reason: 'cannot change format', hint: 'keep it' } } };
  const [fn] = planResources([{ kind: 'function', name: 'f', config: { eventSource: { startingPosition: 'LATEST', batchSize: 2 } }, immutable }], [{ kind: 'function', name: 'f', config: { eventSource: { startingPosition: 'TRIM_HORIZON', batchSize: 1 } } }]);
  assert.equal(fn!.changes.map((c) => [c.path, c.replaces]), [['eventSource.batchSize', undefined], ['eventSource.startingPosition', 'the event source mapping']]);
  assert.match(formatPlan([fn!]), 'eventSource.startingPosition: "TRIM_HORIZON" -> "LATEST"  (cannot change in place: replaces the event source mapping)');
  assert.equal(planRefusals([fn!]), []);
  assert.not.throws(() => assertApplicable([fn!]));

  const [ds] = planResources([{ kind: 'datastore', name: 'd', config: { format: 'json' }, immutable }], [{ kind: 'datastore', name: 'd', config: { format: 'parquet' } }]);
  assert.equal(ds!.refused, [{ reason: 'cannot change format', hint: 'keep it' }]);
  assert.match(formatPlan([ds!]), '! cannot apply: cannot change format');
  assert.match(formatPlan([ds!]), '1 cannot be applied');
  assert.throws(() => assertApplicable([ds!]), (e: { code?: string; hint?: string }) => e.code === 'PLAN_REFUSED' && e.hint === 'keep it');
  // Unchanged, nothing is refused.
  assert.is(planResources([{ kind: 'datastore', name: 'd', config: { format: 'json' }, immutable }], [{ kind: 'datastore', name: 'd', config: { format: 'json' } }])[0]!.refused, undefined);
});

test.run();
