// `iotctl rules test` evaluates "exactly as the local runtime would": under the same time budget.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { testRule } from '../../../src/services/rules.js';

test('a backtracking regex in rules test gives the runtime\'s EVALUATION_TIMEOUT instead of hanging; other messages are evaluated', () => {
  const sql = "SELECT regexp_matches(s, '^(a+)+$') AS m FROM 'dt/#'";
  const started = performance.now();
  const outcomes = testRule(sql, [
    { topic: 'dt/a', payload: { s: 'a'.repeat(27) + 'b' } },
    { topic: 'dt/a', payload: { s: 'aaaa' } },
  ]);
  const elapsed = performance.now() - started;
  assert.ok(elapsed < 1000, `took ${elapsed.toFixed(0)} ms`);
  assert.equal(outcomes[0], { topic: 'dt/a', error: "SQL evaluation exceeded its 100 ms time budget in regexp_matches(): the regular expression backtracks catastrophically on this input", code: 'EVALUATION_TIMEOUT' });
  assert.equal(outcomes[1], { topic: 'dt/a', matched: true, output: { m: true } });
});

test.run();
