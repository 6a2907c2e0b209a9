// Substitution templates: ${expression} over the original payload and the message context.

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compileRule, compileTemplate, renderTemplate, type EvalContext } from '../../../src/iot/sql/index.js';

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const ctx: EvalContext = {
  topic: 'dt/site-a/dev-42/telemetry',
  payload: json({ device_id: 'dev-42', temp: 54.98, coords: { lat: 47.6 }, tags: ['a', 'b'], nothing: null }),
  clientId: 'client-9',
  timestamp: 1579637878451,
  messageId: 'msg-1',
  ruleName: 'archive',
};

test('topic levels and functions', () => {
  assert.is(renderTemplate('${topic(3)}', ctx), 'dev-42');
  assert.is(renderTemplate('${topic()}/republish', ctx), 'dt/site-a/dev-42/telemetry/republish');
  assert.is(renderTemplate('raw/${timestamp()}/${clientid()}.json', ctx), 'raw/1579637878451/client-9.json');
});

test('the AWS docs example: parse_time in an S3 key', () => {
  assert.is(renderTemplate('${parse_time("yyyy", timestamp(), "UTC")}', ctx), '2020');
  assert.is(renderTemplate("year=${parse_time('yyyy', timestamp())}/month=${parse_time('MM', timestamp())}", ctx), 'year=2020/month=01');
});

test('payload attributes, operators and value formatting', () => {
  assert.is(renderTemplate('device/${device_id}', ctx), 'device/dev-42');
  assert.is(renderTemplate('${temp * 2}|${coords.lat}|${coords}|${tags}|${nothing}|${temp > 50}', ctx), '109.96|47.6|{"lat":47.6}|["a","b"]|null|true');
  assert.is(renderTemplate('${upper(device_id) + "-" + topic(2)}', ctx), 'DEV-42-site-a');
});

test('Undefined renders as the empty string', () => {
  assert.is(renderTemplate('a/${missing}/b', ctx), 'a//b');
  assert.is(renderTemplate('${get(tags, 5)}', ctx), '');
});

test('braces inside the expression do not end the substitution', () => {
  assert.is(renderTemplate("${get({'k': '}'}, 'k')}x", ctx), '}x');
  assert.is(renderTemplate("${'a}b'}", ctx), 'a}b');
});

test('text without substitutions, and a lone $', () => {
  assert.is(renderTemplate('plain/text', ctx), 'plain/text');
  assert.is(renderTemplate('cost $5 {x}', ctx), 'cost $5 {x}');
  assert.is(renderTemplate('', ctx), '');
  assert.is(renderTemplate('${1}${2}', ctx), '12');
});

test('newuuid() in a template is deterministic per message, rule and position', () => {
  const t = compileTemplate('raw/${timestamp()}/${newuuid()}.json');
  const first = t.render(ctx);
  assert.match(first, /^raw\/1579637878451\/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.json$/);
  assert.is(t.render(ctx), first);
  assert.is.not(t.render({ ...ctx, messageId: 'msg-2' }), first);
});

test('a compiled template keeps its source and can be rendered many times', () => {
  const t = compileTemplate('${topic(2)}');
  assert.is(t.template, '${topic(2)}');
  assert.is(t.render(ctx), 'site-a');
  assert.is(t.render({ ...ctx, topic: 'dt/site-b/x/telemetry' }), 'site-b');
});

test('templates read the original payload, even a payload given as an object', () => {
  assert.is(renderTemplate('${a.b}', { topic: 't', payload: { a: { b: 7 } } }), '7');
});

test('Basic Ingest prefix is not part of topic() in templates', () => {
  assert.is(renderTemplate('${topic(1)}', { topic: '$aws/rules/archive/dt/x', payload: json({}) }), 'dt');
});

test("AWS's CloudWatch metric action example: ${value}, ${unit} and ${namespace} are payload attributes", () => {
  // https://docs.aws.amazon.com/iot/latest/developerguide/cloudwatch-metrics-rule-action.html
  const metric = { ...ctx, topic: 'my/topic', payload: json({ namespace: 'IoT', unit: 'Count', value: 42, nested: { value: 7 } }) };
  assert.is(renderTemplate('${namespace}/${unit}/${value}', metric), 'IoT/Count/42');
  assert.is(renderTemplate('${topic()}', metric), 'my/topic');
  assert.is(renderTemplate('${value * 2}|${nested.value}|${VALUE}', metric), '84|7|', 'attribute names are case-sensitive');
  assert.is(renderTemplate('${cast(value AS String)}', metric), '42');
  // SELECT VALUE stays a keyword right after SELECT, and `value` is an attribute after it.
  assert.is(compileRule("SELECT VALUE value * 2 FROM 'my/topic' WHERE value > 40").evaluate(metric), 84);
});

test.run();
