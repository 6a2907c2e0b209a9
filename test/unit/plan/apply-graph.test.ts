import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runGraph, type GraphEvent } from '../../../src/services/graph.js';
import { applySteps, type ApplySection } from '../../../src/services/apply.js';
import { runSteps } from '../../../src/ui/tasks.js';
import type { PlanItem } from '../../../src/iot/plan/index.js';

const tick = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Steps that record when they start and end (in order), each taking `ms`. */
function recorder() {
  const log: string[] = [];
  const step = (id: string, after: string[], ms: number, fail = false) => ({
    id,
    after,
    async run() {
      log.push(`start ${id}`);
      await tick(ms);
      log.push(`end ${id}`);
      if (fail) throw new Error(`${id} failed`);
    },
  });
  return { log, step };
}

test('independent steps start at once; a step starts only after all it needs ended', async () => {
  const { log, step } = recorder();
  await runGraph([step('streams', [], 30), step('functions', [], 5), step('analytics', [], 10), step('rules', ['streams', 'functions', 'analytics'], 1)]);
  assert.equal(log.slice(0, 3), ['start streams', 'start functions', 'start analytics']);
  const at = (x: string) => log.indexOf(x);
  for (const dep of ['streams', 'functions', 'analytics']) assert.ok(at(`end ${dep}`) < at('start rules'), `rules started before ${dep} ended: ${log}`);
  // rules did not wait for a step it does not need beyond the last of its own.
  assert.is(at('start rules'), at('end streams') + 1);
});

test('a failure starts nothing more, awaits the running steps, skips dependents, and throws its error', async () => {
  const { log, step } = recorder();
  const events: GraphEvent[] = [];
  const err = await runGraph([step('a', [], 5, true), step('slow', [], 30), step('b', ['a'], 1), step('c', ['slow'], 1)], { on: (e) => events.push(e) }).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.is(err?.message, 'a failed');
  assert.ok(log.includes('end slow'), 'the running step was awaited before throwing');
  assert.not.ok(log.includes('start b'), 'a dependent of the failed step started');
  assert.not.ok(log.includes('start c'), 'a step started after a failure');
  assert.equal(events.filter((e) => e.state === 'skipped').map((e) => e.id).sort(), ['b', 'c']);
});

test('at most `limit` steps run at once', async () => {
  let running = 0;
  let peak = 0;
  const s = (id: string) => ({ id, after: [], run: async () => ((running++, (peak = Math.max(peak, running))), await tick(5), running--) });
  await runGraph(['a', 'b', 'c', 'd', 'e'].map(s), { limit: 2 });
  assert.is(peak, 2);
});

test('unknown dependencies and cycles are bugs, not hangs', async () => {
  await runGraph([{ id: 'a', after: ['nope'], run: () => undefined }]).then(() => assert.unreachable(), (e: Error) => assert.match(e.message, /unknown step nope/));
  await runGraph([{ id: 'a', after: ['b'], run: () => undefined }, { id: 'b', after: ['a'], run: () => undefined }]).then(() => assert.unreachable(), (e: Error) => assert.match(e.message, /cycle/));
});

const item = (action: PlanItem['action'], kind = 'x'): PlanItem => ({ action, kind, name: kind, changes: [] }) as PlanItem;
const section = (name: string): ApplySection => ({ name, plan: async () => [], apply: async () => undefined });
const NAMES = ['devices', 'streams', 'database', 'functions', 'provisioning', 'analytics', 'rules'];

test('aws apply steps: rules wait for analytics (and functions only when they invoke one); the rest starts at once; deletes after every create, in reverse', () => {
  const all = NAMES.map(section);
  const plans = NAMES.map((s) => ({ section: s, items: s === 'streams' ? [item('create'), item('delete')] : s === 'rules' ? [item('create'), item('delete')] : [item('create')] }));
  const by = Object.fromEntries(applySteps(all, plans, 'aws').map((s) => [s.id!, s.after!]));
  assert.equal(by['apply:rules'], ['apply:analytics']);
  for (const s of ['devices', 'streams', 'database', 'functions', 'analytics']) assert.equal(by[`apply:${s}`], [], s);
  assert.equal(by['apply:provisioning']!.sort(), ['apply:devices', 'apply:functions']);
  // The rule goes before the stream it writes to.
  assert.equal(by['delete:rules']!.length, NAMES.length);
  assert.equal(by['delete:streams'], ['delete:rules']);
  const invoking = plans.map((p) => (p.section === 'rules' ? { ...p, items: [{ ...item('create', 'rule'), desired: { actions: [{ kinesis: {} }], errorAction: { lambda: { function: 'f' } } } } as PlanItem] } : p));
  const by2 = Object.fromEntries(applySteps(all, invoking, 'aws').map((s) => [s.id!, s.after!]));
  assert.equal(by2['apply:rules']!.sort(), ['apply:analytics', 'apply:functions']);
});

/** Sections that log, for the exists-before-ready tests: streams says its stream exists, then takes 60 ms. */
function timedSections(streamsFails: boolean) {
  const log: string[] = [];
  const mk = (name: string, body: (hooks: { exists?: () => void }) => Promise<void>): ApplySection => ({
    name,
    plan: async () => [],
    apply: async (_items, hooks = {}) => {
      log.push(`start ${name}`);
      await body(hooks);
      log.push(`end ${name}`);
    },
  });
  const all = [
    mk('streams', async (hooks) => {
      if (streamsFails) {
        await tick(10);
        throw new Error('CreateStream refused');
      }
      await tick(5);
      hooks.exists?.();
      await tick(60);
    }),
    mk('analytics', () => tick(10)),
    mk('rules', () => tick(1)),
  ];
  const plans = all.map((s) => ({ section: s.name, items: [item('create')] }));
  return { log, steps: applySteps(all, plans, 'aws') };
}

test('rules start once the streams exist, before they are ready', async () => {
  const { log, steps } = timedSections(false);
  await runSteps(steps, 'quiet', { graph: {} });
  assert.ok(log.indexOf('start rules') < log.indexOf('end streams'), log.join(', '));
  assert.ok(log.indexOf('start rules') > log.indexOf('end analytics'), log.join(', '));
});

test('a stream that fails before it exists: rules never apply, the stream\'s error is thrown', async () => {
  const { log, steps } = timedSections(true);
  const err = await runSteps(steps, 'quiet', { graph: {} }).then(() => undefined, (e: Error) => e);
  assert.is(err?.message, 'CreateStream refused');
  assert.not.ok(log.includes('start rules'), log.join(', '));
});

test('local apply steps stay one after another in dependency order', () => {
  const all = NAMES.map(section);
  const steps = applySteps(all, NAMES.map((s) => ({ section: s, items: [item('create')] })), 'local');
  steps.forEach((s, i) => assert.equal(s.after, i ? [steps[i - 1]!.id] : []));
});

test.run();
