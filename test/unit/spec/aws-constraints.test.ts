import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseSpec } from '../../../src/spec/loader.js';
import { initSpec } from '../../../src/spec/init-template.js';
import { specProblems } from '../../helpers/project.js';

const fn = (window: number, target: string) =>
  `project: fleet\ntarget: ${target}\nstreams: [{ name: telemetry }]\nfunctions:\n  - name: ingest\n    template: ingest-rds\n    eventSource: { stream: telemetry, maximumBatchingWindowSeconds: ${window} }\n`;

test('on aws a fractional batching window is refused at its line and column (Lambda takes whole seconds), not rounded', () => {
  const [problem, ...rest] = specProblems(fn(0.2, 'aws'));
  assert.is(rest.length, 0);
  assert.match(problem!.message, /0\.2 is not a whole number of seconds/);
  assert.match(String(problem!.hint), /Use 0/);
  assert.is(problem!.line, 7);
  assert.equal(specProblems(fn(1, 'aws')), []);
  // The local platform honours a fraction.
  assert.equal(specProblems(fn(0.2, 'local')), []);
});

test('the init spec validates for both targets', () => {
  for (const target of ['local', 'aws'] as const) assert.ok(parseSpec(initSpec('fleet', target), 'iotctl.yaml').spec);
});

test.run();
