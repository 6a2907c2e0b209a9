// Topic filter validation and matching, including AWS IoT's departure from MQTT 3.1.1 for `#`.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compileRule, topicMatches, validateTopicFilter } from '../../../src/iot/sql/index.js';

const cases: Array<[filter: string, topic: string, matches: boolean]> = [
  ['a/b', 'a/b', true],
  ['a/b', 'a/c', false],
  ['a/b', 'a/b/c', false],
  ['a/b', 'A/b', false],
  ['a/+', 'a/b', true],
  ['a/+', 'a/', true],
  ['a/+', 'a', false],
  ['a/+', 'a/b/c', false],
  ['+/b', 'a/b', true],
  ['+/b', '/b', true],
  ['+', 'a', true],
  ['+', 'a/b', false],
  ['+/+', '/finance', true],
  ['a/+/c', 'a/x/c', true],
  ['a/+/c', 'a/x/d', false],
  ['a/#', 'a/b', true],
  ['a/#', 'a/b/c/d', true],
  ['a/#', 'a/', true],
  ['a/#', 'a', false], // AWS: the parent level is not matched
  ['a/#', 'ab', false],
  ['a/#', 'b/a', false],
  ['#', 'a', true],
  ['#', 'a/b/c', true],
  ['#', '/', true],
  ['a/+/#', 'a/b/c', true],
  ['a/+/#', 'a/b', false],
  ['dt/+/+/telemetry', 'dt/site/dev1/telemetry', true],
  ['dt/+/+/telemetry', 'dt/site/dev1/status', false],
  ['dt/+/+/telemetry', 'dt/site/telemetry', false],
  ['#', '$aws/things/t/shadow/update', false],
  ['+/things/#', '$aws/things/t', false],
  ['$aws/things/+/shadow/update', '$aws/things/t/shadow/update', true],
  ['$aws/events/presence/+/+', '$aws/events/presence/connected/c1', true],
];

for (const [filter, topic, expected] of cases) {
  test(`'${filter}' ${expected ? 'matches' : 'does not match'} '${topic}'`, () => {
    assert.is(topicMatches(filter, topic), expected);
    assert.is(compileRule(`SELECT * FROM '${filter}'`).matches(topic), expected);
  });
}

test('valid filters', () => {
  for (const f of ['a', 'a/b', '#', '+', 'a/+/b/#', '/', '/a', 'a//b', '$aws/things/+/shadow/#', 'sensor/temp erature']) {
    validateTopicFilter(f);
  }
});

test('invalid filters', () => {
  for (const f of ['', 'a/#/b', 'a/b#', '#a', 'a+/b', 'a/+b', 'a/b\u0000', 'x'.repeat(257)]) {
    assert.throws(() => validateTopicFilter(f), (e: Error & { code?: string }) => e.code === 'INVALID_TOPIC_FILTER', f);
  }
});

test('the 256-byte limit counts UTF-8 bytes, not characters', () => {
  validateTopicFilter('a'.repeat(256));
  assert.throws(() => validateTopicFilter('€'.repeat(86)));
});

test('Basic Ingest topics reach only the named rule, with FROM matched against the topic without the prefix', () => {
  const rule = compileRule("SELECT topic() AS t, topic(2) AS thing FROM 'devices/#'");
  assert.is(rule.matches('$aws/rules/ingest/devices/d1', 'ingest'), true);
  assert.is(rule.matches('$aws/rules/ingest/devices/d1', 'other'), false);
  assert.is(rule.matches('$aws/rules/ingest/devices/d1'), false);
  assert.is(rule.matches('$aws/rules/ingest/x/y', 'ingest'), false);
  assert.is(rule.matches('$aws/rules/ingest', 'ingest'), false);
  assert.equal(rule.evaluate({ topic: '$aws/rules/ingest/devices/d1', payload: {}, ruleName: 'ingest' }), { t: 'devices/d1', thing: 'd1' });
  assert.is(rule.evaluate({ topic: '$aws/rules/ingest/x/y', payload: {}, ruleName: 'ingest' }), undefined);
});

test('a rule without FROM is reachable only through Basic Ingest', () => {
  const rule = compileRule('SELECT VALUE topic(1)');
  assert.is(rule.topicFilter, '');
  assert.is(rule.evaluate({ topic: 'a/b', payload: {} }), undefined);
  assert.is(rule.evaluate({ topic: '$aws/rules/r1/a/b', payload: {}, ruleName: 'r1' }), 'a');
});

test.run();
