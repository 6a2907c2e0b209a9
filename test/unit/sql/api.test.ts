// The public API beyond single values: rule metadata, payload ownership, contexts.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compileExpression, compileRule, SqlRuntimeError } from '../../../src/iot/sql/index.js';

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

test('compileRule exposes the SQL, topic filter and functions used', () => {
  const sql = "SELECT *, topic(3) AS device, timestamp() AS ts FROM 'dt/+/+/telemetry' WHERE temperature > 20 AND cast(x AS Int) = 1";
  const rule = compileRule(sql);
  assert.is(rule.sql, sql);
  assert.is(rule.topicFilter, 'dt/+/+/telemetry');
  assert.equal(rule.functions, ['topic', 'timestamp', 'cast']);
  assert.equal(rule.unsupportedLocally, []);
  assert.is(rule.matches('dt/s/d/telemetry'), true);
  assert.is(rule.matches('dt/s/d/status'), false);
});

test('FROM and WHERE rejections return undefined', () => {
  const rule = compileRule("SELECT * FROM 'a/+' WHERE v > 1");
  assert.is(rule.evaluate({ topic: 'b/c', payload: json({ v: 5 }) }), undefined);
  assert.is(rule.evaluate({ topic: 'a/c', payload: json({ v: 0 }) }), undefined);
  assert.equal(rule.evaluate({ topic: 'a/c', payload: json({ v: 5 }) }), { v: 5 });
});

test('a payload passed as an object is never modified', () => {
  const payload = { v: 1, nested: { k: 1 } };
  const out = compileRule("SELECT *, 2 AS v, 3 AS nested.extra FROM 'a'").evaluate({ topic: 'a', payload }) as Record<string, unknown>;
  assert.equal(out, { v: 2, nested: { k: 1, extra: 3 } });
  assert.equal(payload, { v: 1, nested: { k: 1 } });
  const star = compileRule("SELECT * FROM 'a'").evaluate({ topic: 'a', payload });
  assert.equal(star, payload);
  assert.is.not(star, payload);
});

test('later SELECT items read the payload as received, not the output being built', () => {
  const rule = compileRule("SELECT *, v * 10 AS v, v AS original FROM 'a'");
  assert.equal(rule.evaluate({ topic: 'a', payload: json({ v: 2 }) }), { v: 20, original: 2 });
});

test('an output never contains itself, however * is used', () => {
  for (const sql of ["SELECT *, * AS copy FROM 'a'", "SELECT *, {'inner': *} AS wrapped FROM 'a'", "SELECT *, (SELECT VALUE * FROM *) AS again FROM 'a'"]) {
    const out = compileRule(sql).evaluate({ topic: 'a', payload: json({ v: 1 }) });
    assert.not.throws(() => JSON.stringify(out), sql);
  }
  assert.equal(compileRule("SELECT *, * AS copy FROM 'a'").evaluate({ topic: 'a', payload: json({ v: 1 }) }), { v: 1, copy: { v: 1 } });
});

test('each evaluation parses its own copy of byte payloads', () => {
  const rule = compileRule("SELECT *, 1 AS added FROM 'a'");
  const payload = json({ v: 1 });
  const first = rule.evaluate({ topic: 'a', payload }) as Record<string, unknown>;
  first.v = 99;
  assert.equal(rule.evaluate({ topic: 'a', payload }), { v: 1, added: 1 });
});

test('Buffer payloads work like Uint8Array', () => {
  assert.equal(compileRule("SELECT VALUE a FROM 'x'").evaluate({ topic: 'x', payload: Buffer.from('{"a":[1]}') }), [1]);
  assert.equal(compileRule("SELECT VALUE a FROM 'x'").evaluate({ topic: 'x', payload: Buffer.from(' \n{"a":2}') }), 2);
});

test('binary SELECT * returns the very bytes received', () => {
  const bytes = new Uint8Array([0, 1, 2, 255]);
  const out = compileRule("SELECT * FROM 'a'").evaluate({ topic: 'a', payload: bytes });
  assert.ok(out instanceof Uint8Array);
  assert.equal([...(out as Uint8Array)], [0, 1, 2, 255]);
});

test('reading an attribute of a binary payload is a runtime error', () => {
  try {
    compileRule("SELECT * FROM 'a' WHERE device_type = 'thermostat'").evaluate({ topic: 'a', payload: new Uint8Array([1, 2]) });
    assert.unreachable();
  } catch (e) {
    assert.ok(e instanceof SqlRuntimeError);
    assert.is(e.code, 'PAYLOAD_NOT_JSON');
    assert.match(e.message, "'device_type'");
  }
});

test('evaluate() without a topic is an INVALID_CONTEXT error', () => {
  const rule = compileRule("SELECT * FROM 'a'");
  assert.throws(() => rule.evaluate({ payload: {} } as never), (e: SqlRuntimeError) => e.code === 'INVALID_CONTEXT');
  assert.throws(() => rule.evaluate({ topic: 'a' } as never), (e: SqlRuntimeError) => e.code === 'INVALID_CONTEXT');
});

test('compileExpression: documents, bytes, context and Undefined', () => {
  const expr = compileExpression('temperature * 1.8 + 32');
  assert.is(expr.expression, 'temperature * 1.8 + 32');
  assert.is(expr.evaluate({ temperature: 21.5 }), 70.7);
  assert.is(expr.evaluate(json({ temperature: 0 })), 32);
  assert.is(expr.evaluate({}), undefined);
  assert.is(expr.evaluate(null), undefined);
  assert.is(compileExpression('topic(2)').evaluate({}, { topic: 'a/b' }), 'b');
  assert.is(compileExpression('topic()').evaluate({}), '');
  assert.is(compileExpression('clientid()').evaluate({}), 'n/a');
  assert.equal(compileExpression('*').evaluate({ a: 1 }), { a: 1 });
  assert.is(compileExpression("status = 'ok' AND battery > 3.5").evaluate({ status: 'ok', battery: 3.7 }), true);
});

test('compileExpression does not modify the document', () => {
  const doc = { a: { b: 1 } };
  compileExpression("{'x': a}").evaluate(doc);
  assert.equal(doc, { a: { b: 1 } });
});

test('output keys that look like prototype members stay ordinary keys', () => {
  const out = compileRule("SELECT 1 AS __proto__, {'__proto__': 2} AS o FROM 'a'").evaluate({ topic: 'a', payload: {} }) as Record<string, unknown>;
  assert.is(Object.getPrototypeOf(out), Object.prototype);
  assert.equal(Object.keys(out), ['__proto__', 'o']);
  assert.is(JSON.stringify(out), '{"__proto__":1,"o":{"__proto__":2}}');
});

test.run();
