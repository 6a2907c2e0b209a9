/** Issue 16, part of 13: iotctl.yaml's YAML is bounded, so hostile input ends in a spec error at once. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseSpec, SpecError } from '../../../src/spec/loader.js';
import { initSpec } from '../../../src/spec/init-template.js';

function refusal(yaml: string): { error: SpecError; ms: number } {
  const started = performance.now();
  try {
    parseSpec(yaml, 'iotctl.yaml');
  } catch (e) {
    if (e instanceof SpecError) return { error: e, ms: performance.now() - started };
    throw e;
  }
  throw new Error('accepted');
}

test('a billion-laughs document is a spec error at the first alias, in well under a second', () => {
  const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (const [prev, name] of [['a', 'b'], ['b', 'c'], ['c', 'd'], ['d', 'e'], ['e', 'f'], ['f', 'g'], ['g', 'h'], ['h', 'i']]) levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
  const { error, ms } = refusal(`project: demo\n${levels.join('\n')}\n`);
  assert.equal(error.problems.map((p) => [p.line, p.col]), [[3, 8]]);
  assert.match(error.problems[0]!.message, /aliases expand into too much data.*billion laughs/);
  assert.ok(ms < 500, `${ms} ms`);
});

test('anchors and a few aliases still work', () => {
  const spec = parseSpec('project: demo\ndevices:\n  attributes: &attrs {site: lab}\nstreams:\n  - &s {name: a, shards: 1}\n  - {name: b, shards: 1}\n').spec;
  assert.equal(spec.devices.attributes, { site: 'lab' });
});

test('more than 50,000 tokens is refused before parsing, where the limit was reached', () => {
  const { error, ms } = refusal(`project: demo\nx:\n${Array.from({ length: 60_000 }, (_, i) => `  k${i}: 1\n`).join('')}`);
  assert.match(error.problems[0]!.message, /more than 50,000 YAML tokens/);
  assert.ok(error.problems[0]!.line > 3000 && error.problems[0]!.line < 10_000, String(error.problems[0]!.line));
  assert.ok(ms < 1_000, `${ms} ms`);
  // The sample spec is far below the limit.
  parseSpec(initSpec('demo'));
});

test('duplicate keys are still reported at file:line:col (checked in linear time)', () => {
  const { error } = refusal('project: demo\nregion: eu-west-1\nregion: us-east-1\n');
  assert.equal(error.problems.map((p) => [p.line, p.col, p.message]), [[3, 1, 'Map keys must be unique']]);
  const many = `project: demo\ndevices:\n  attributes:\n${Array.from({ length: 5_000 }, (_, i) => `    k${i}: v\n`).join('')}`;
  assert.is(Object.keys(parseSpec(many).spec.devices.attributes).length, 5_000);
});

test.run();
