// Replays must produce identical output: traceid(), timestamp(), newuuid() and rand() depend only
// on the evaluation context when a messageId is given.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compileExpression, compileRule, type EvalContext } from '../../../src/iot/sql/index.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const SQL = "SELECT newuuid() AS a, newuuid() AS b, rand() AS r, traceid() AS t, timestamp() AS ts FROM 'dt/#'";
const ctx: EvalContext = { topic: 'dt/x', payload: new Uint8Array(), messageId: 'msg-1', ruleName: 'ingest', timestamp: 1_700_000_000_000 };

test('pinned values: the derivation must not change between releases', () => {
  assert.equal(compileRule(SQL).evaluate(ctx), {
    a: 'c001f680-c136-4302-bfbb-f99f66b086c1',
    b: 'b80b3830-b390-4286-8c87-38fdfc1687c9',
    r: 0.6005396272247676,
    t: 'msg-1',
    ts: 1_700_000_000_000,
  });
});

test('same message and rule: same output, also from a separately compiled rule', () => {
  const first = compileRule(SQL).evaluate(ctx);
  assert.equal(compileRule(SQL).evaluate(ctx), first);
  assert.equal(compileRule(SQL).evaluate({ ...ctx }), first);
});

test('each call site gets its own UUID, and each is version 4', () => {
  const out = compileRule(SQL).evaluate(ctx) as { a: string; b: string };
  assert.match(out.a, UUID_V4);
  assert.match(out.b, UUID_V4);
  assert.is.not(out.a, out.b);
});

test('another message or another rule gives other values', () => {
  const rule = compileRule(SQL);
  const base = rule.evaluate(ctx) as Record<string, unknown>;
  const otherMessage = rule.evaluate({ ...ctx, messageId: 'msg-2' }) as Record<string, unknown>;
  const otherRule = rule.evaluate({ ...ctx, ruleName: 'archive' }) as Record<string, unknown>;
  for (const k of ['a', 'b', 'r']) {
    assert.is.not(otherMessage[k], base[k]);
    assert.is.not(otherRule[k], base[k]);
  }
  assert.is(otherMessage.t, 'msg-2');
});

test('without a messageId, newuuid() and rand() are random', () => {
  const rule = compileRule("SELECT newuuid() AS u, rand() AS r FROM 'dt/#'");
  const a = rule.evaluate({ topic: 'dt/x', payload: {} }) as { u: string; r: number };
  const b = rule.evaluate({ topic: 'dt/x', payload: {} }) as { u: string; r: number };
  assert.match(a.u, UUID_V4);
  assert.is.not(a.u, b.u);
  assert.is.not(a.r, b.r);
  assert.ok(a.r >= 0 && a.r < 1);
});

test('rand() stays in [0, 1) across many seeds', () => {
  const rand = compileExpression('rand()');
  for (let i = 0; i < 2000; i++) {
    const r = rand.evaluate({}, { messageId: `m${i}` }) as number;
    assert.ok(r >= 0 && r < 1, String(r));
  }
});

test('timestamp() is the ingress time and stays fixed during one evaluation', () => {
  const rule = compileRule("SELECT timestamp() AS a, timestamp() AS b FROM 'dt/#'");
  assert.equal(rule.evaluate({ topic: 'dt/x', payload: {}, timestamp: 42 }), { a: 42, b: 42 });
  const before = Date.now();
  const now = rule.evaluate({ topic: 'dt/x', payload: {} }) as { a: number; b: number };
  assert.is(now.a, now.b);
  assert.ok(now.a >= before && now.a <= Date.now());
});

test('traceid() is the messageId, and Undefined without one', () => {
  assert.is(compileExpression('traceid()').evaluate({}, { messageId: 'abc' }), 'abc');
  assert.is(compileExpression('traceid()').evaluate({}), undefined);
});

test.run();
