// Hostile input to the IoT SQL engine: a time budget per evaluation (a backtracking regex, heavy
// functions over a large payload) and caps on nesting (20,000 parentheses, deeply nested payloads),
// each ending in an SqlError/SqlRuntimeError with a code, never a RangeError or a stalled process.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  compileExpression, compileRule, compileTemplate, evaluationBudget, MAX_NESTING, runWithinBudget, SqlError, SqlRuntimeError,
  type EvaluationBudget,
} from '../../../src/iot/sql/index.js';

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const CATASTROPHIC = 'a'.repeat(40) + 'b';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

/** Evaluates under a budget the way the rules runtime does: evaluator checks plus V8's watchdog. */
function evaluateWithin(ms: number, evaluate: (budget: EvaluationBudget) => unknown): unknown {
  const budget = evaluationBudget(ms);
  return runWithinBudget(() => evaluate(budget), ms, () => budget);
}

test('a catastrophically backtracking regex is stopped at the budget with EVALUATION_TIMEOUT naming the function', () => {
  const rule = compileRule("SELECT regexp_matches(s, '^(a+)+$') AS m FROM 'dt/#'");
  const started = performance.now();
  const e = thrown(() => evaluateWithin(100, (budget) => rule.evaluate({ topic: 'dt/a', payload: json({ s: CATASTROPHIC }) }, { budget })));
  const elapsed = performance.now() - started;
  assert.instance(e, SqlRuntimeError);
  assert.is((e as SqlRuntimeError).code, 'EVALUATION_TIMEOUT');
  assert.is((e as SqlRuntimeError).functionName, 'regexp_matches');
  assert.match((e as Error).message, /exceeded its 100 ms time budget in regexp_matches\(\): the regular expression backtracks catastrophically/);
  assert.ok(elapsed < 1000, `stopped after ${elapsed.toFixed(0)} ms`);
});

test('regexp_replace and regexp_substr are stopped the same way, in templates too', () => {
  for (const expression of ["regexp_replace(s, '^(a|aa)+$', 'x')", "regexp_substr(s, '(a*)*b$|(a+)+c')"]) {
    const e = thrown(() => evaluateWithin(50, (budget) => compileExpression(expression).evaluate({ s: CATASTROPHIC + 'a'.repeat(10) }, {}, { budget })));
    assert.is((e as SqlRuntimeError).code, 'EVALUATION_TIMEOUT', expression);
  }
  const template = compileTemplate("errors/${regexp_substr(s, '^(a+)+$')}");
  const e = thrown(() => evaluateWithin(50, (budget) => template.render({ topic: 't', payload: json({ s: CATASTROPHIC }) }, { budget })));
  assert.is((e as SqlRuntimeError).code, 'EVALUATION_TIMEOUT');
});

test('Java-style patterns keep working under a budget: backreferences, lookaround, inline flags', () => {
  const cases: [string, unknown][] = [
    ["regexp_matches('abab', '^(ab)\\\\1$')", true],
    ["regexp_matches('price: 10EUR', '\\\\d+(?=EUR)')", true],
    ["regexp_substr('x-42', '(?<=-)\\\\d+')", '42'],
    ["regexp_matches('ABC', '(?i)abc')", true],
    ["regexp_replace('2020-04-03', '(\\\\d+)-(\\\\d+)-(\\\\d+)', '$3.$2.$1')", '03.04.2020'],
    ["regexp_matches(s, '^(a+)+$')", true],
  ];
  // What is checked is that they work under the budget's machinery; a generous budget keeps a loaded CI machine from timing them out.
  for (const [expression, expected] of cases) {
    assert.is(evaluateWithin(2_000, (budget) => compileExpression(expression).evaluate({ s: 'a'.repeat(40) }, {}, { budget })), expected, expression);
  }
});

test('the evaluator checks the deadline after every call: heavy functions over a large payload end in EVALUATION_TIMEOUT', () => {
  // A clock that advances 1 ms per reading makes the check deterministic: the deadline passes during the calls.
  let t = 0;
  const budget = evaluationBudget(5, () => t++);
  const rule = compileRule("SELECT sha512(s) AS a, sha512(s) AS b, sha512(s) AS c, sha512(s) AS d, sha512(s) AS e, sha512(s) AS f FROM 't'");
  const e = thrown(() => rule.evaluate({ topic: 't', payload: json({ s: 'x'.repeat(100_000) }) }, { budget }));
  assert.is((e as SqlRuntimeError).code, 'EVALUATION_TIMEOUT');
  assert.is((e as SqlRuntimeError).functionName, 'sha512');
  // ...and between the elements of a nested query.
  let u = 0;
  const nested = compileRule("SELECT (SELECT v FROM items WHERE v > 0) AS kept FROM 't'");
  const items = Array.from({ length: 1000 }, (_, i) => ({ v: i }));
  assert.is((thrown(() => nested.evaluate({ topic: 't', payload: json({ items }) }, { budget: evaluationBudget(10, () => u++) })) as SqlRuntimeError).code, 'EVALUATION_TIMEOUT');
  // Without a budget nothing changes.
  assert.is((nested.evaluate({ topic: 't', payload: json({ items }) }) as { kept: unknown[] }).kept.length, 999);
});

test('get_or_default() does not swallow a timeout', () => {
  const e = thrown(() => evaluateWithin(50, (budget) => compileExpression("get_or_default(regexp_substr(s, '^(a+)+$'), 'fallback')").evaluate({ s: CATASTROPHIC }, {}, { budget })));
  assert.is((e as SqlRuntimeError).code, 'EVALUATION_TIMEOUT');
});

test('runWithinBudget leaves the process usable and returns results of work that finishes', () => {
  assert.is(runWithinBudget(() => 42, 50), 42);
  const e = thrown(() => runWithinBudget(() => /^(a+)+$/.test(CATASTROPHIC), 30));
  assert.is((e as SqlRuntimeError).code, 'EVALUATION_TIMEOUT');
  assert.is(runWithinBudget(() => /^(a+)+$/.test('aaa'), 50), true);
  const own = new Error('own');
  assert.is(thrown(() => runWithinBudget(() => { throw own; }, 50)), own);
});

test('20,000 nested parentheses are a TOO_DEEPLY_NESTED SqlError with a position, not a stack overflow', () => {
  const deep = '('.repeat(20_000) + 'temperature' + ')'.repeat(20_000);
  for (const compile of [
    () => compileRule(`SELECT ${deep} AS t FROM 'dt/#'`),
    () => compileRule(`SELECT * FROM 'dt/#' WHERE ${deep} > 1`),
    () => compileExpression(deep),
    () => compileTemplate(`dt/\${${deep}}`),
  ]) {
    const e = thrown(compile);
    assert.instance(e, SqlError);
    assert.is((e as SqlError).code, 'TOO_DEEPLY_NESTED');
    assert.match((e as SqlError).message, `more than ${MAX_NESTING} levels`);
    assert.is((e as SqlError).line, 1);
    assert.ok((e as SqlError).col > MAX_NESTING, String((e as SqlError).col));
  }
  // The caret points at the first parenthesis past the cap.
  const e = thrown(() => compileExpression(deep)) as SqlError;
  assert.is(e.offset, MAX_NESTING);
  assert.match(e.format(), /^TOO_DEEPLY_NESTED: .* \(line 1, col 1001\)/);
  // format() shows a window of the 40,000-character line, with the caret still under the fault.
  const [, shown, caret] = e.format().split('\n') as [string, string, string];
  assert.ok(shown.length < 200, `${shown.length} characters shown`);
  assert.is(shown[caret.length - 1], '(');
  assert.is(shown.slice(2, 3), '…');
});

test('every kind of nesting is capped: operators, NOT, minus, calls, arrays, objects, indexes, nested queries, long chains', () => {
  const n = 20_000;
  const sources = [
    'NOT '.repeat(n) + 'a',
    '- '.repeat(n) + 'a',
    'abs('.repeat(n) + 'a' + ')'.repeat(n),
    '['.repeat(n) + 'a' + ']'.repeat(n),
    '{"k":'.repeat(n) + 'a' + '}'.repeat(n),
    'a' + '[0]'.repeat(n),
    'a' + '.b'.repeat(n),
    '(SELECT '.repeat(2000) + 'a' + ' FROM x)'.repeat(2000),
    Array(n).fill('a').join(' + '),
    Array(n).fill('a = 1').join(' OR '),
  ];
  for (const source of sources) {
    const e = thrown(() => compileExpression(source));
    assert.instance(e, SqlError, source.slice(0, 20));
    assert.is((e as SqlError).code, 'TOO_DEEPLY_NESTED', source.slice(0, 20));
  }
  // Just under the cap still compiles and evaluates.
  const chain = Array(MAX_NESTING - 1).fill('a').join(' + ');
  assert.is(compileExpression(chain).evaluate({ a: 1 }), MAX_NESTING - 1);
  const parens = '('.repeat(MAX_NESTING - 1) + 'a' + ')'.repeat(MAX_NESTING - 1);
  assert.is(compileExpression(parens).evaluate({ a: 7 }), 7);
});

test('a deeply nested payload gives TOO_DEEPLY_NESTED from = and from string conversion, not a RangeError', () => {
  const depth = 60_000;
  const nested = '['.repeat(depth) + ']'.repeat(depth);
  const payload = new TextEncoder().encode(`{"a":${nested},"b":${nested}}`);
  const ctx = { topic: 't', payload };
  for (const sql of ["SELECT a = b AS same FROM 't'", "SELECT length(a) AS n FROM 't'", "SELECT upper(a) AS s FROM 't'", "SELECT * FROM 't' WHERE regexp_matches(a, 'x')"]) {
    const e = thrown(() => compileRule(sql).evaluate(ctx));
    assert.instance(e, SqlRuntimeError, sql);
    assert.is((e as SqlRuntimeError).code, 'TOO_DEEPLY_NESTED', sql);
  }
  // Reading and passing the value on is fine; only comparing or converting it recurses.
  assert.ok(Array.isArray((compileRule("SELECT VALUE a FROM 't'").evaluate(ctx))));
});

test.run();
