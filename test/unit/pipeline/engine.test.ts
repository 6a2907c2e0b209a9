import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compilePipeline, PipelineCompileError, validatePipeline, type Activity, type JsonObject, type PipelineMessage } from '../../../src/iot/pipeline/index.js';

const msg = (id: string, body: JsonObject, receivedAt = 1_000): PipelineMessage => ({ id, receivedAt, body });
const bodies = (ms: PipelineMessage[]) => ms.map((m) => m.body);
const ids = (ms: { id: string }[]) => ms.map((m) => m.id);

test('filter keeps messages whose expression is true and counts the rest as filtered', async () => {
  const p = compilePipeline([{ filter: { filter: "temp > 20 AND device <> 'test'" } }]);
  const r = await p.process([msg('a', { temp: 25, device: 'd1' }), msg('b', { temp: 10, device: 'd1' }), msg('c', { temp: 30, device: 'test' }), msg('d', { device: 'd2' })]);
  assert.equal(ids(r.out), ['a']);
  assert.equal(ids(r.filtered), ['b', 'c', 'd']); // d: temp is Undefined, so the condition is not true
  assert.equal(r.failed, []);
});

test('selectAttributes keeps only the named attributes, including nested paths', async () => {
  const p = compilePipeline([{ selectAttributes: { attributes: ['temp', 'meta.site'] } }]);
  const r = await p.process([msg('a', { temp: 1, hum: 2, meta: { site: 'x', rack: 3 } })]);
  assert.equal(bodies(r.out), [{ temp: 1, meta: { site: 'x' } }]);
});

test('removeAttributes deletes attributes without touching the input message', async () => {
  const input = msg('a', { temp: 1, secret: 's', meta: { site: 'x', token: 't' } });
  const p = compilePipeline([{ removeAttributes: { attributes: ['secret', 'meta.token'] } }]);
  const r = await p.process([input]);
  assert.equal(bodies(r.out), [{ temp: 1, meta: { site: 'x' } }]);
  assert.equal(input.body, { temp: 1, secret: 's', meta: { site: 'x', token: 't' } });
});

test('addAttributes copies existing attributes to new names and keeps the originals (AWS semantics)', async () => {
  const p = compilePipeline([{ addAttributes: { attributes: { temp: 'temperature', 'meta.site': 'site', missing: 'nothing' } } }]);
  const r = await p.process([msg('a', { temp: 21.5, meta: { site: 'x' } })]);
  assert.equal(bodies(r.out), [{ temp: 21.5, meta: { site: 'x' }, temperature: 21.5, site: 'x' }]);
});

test('math sets the attribute to the expression value', async () => {
  const p = compilePipeline([{ math: { attribute: 'tempF', math: 'temp * 1.8 + 32' } }, { math: { attribute: 'ratio', math: 'hum / 4.0' } }]);
  const r = await p.process([msg('a', { temp: 20, hum: 10 }), msg('b', { temp: -40, hum: 2 })]);
  assert.equal(bodies(r.out), [
    { temp: 20, hum: 10, tempF: 68, ratio: 2.5 },
    { temp: -40, hum: 2, tempF: -40, ratio: 0.5 },
  ]);
});

test('math with an unknown attribute or an Undefined result fails the message with a clear reason', async () => {
  const p = compilePipeline([{ math: { attribute: 'tempF', math: 'temp * 1.8 + 32' } }]);
  const r = await p.process([msg('a', { hum: 1 }), msg('b', { temp: 'warm' }), msg('c', { temp: 0 })]);
  assert.equal(ids(r.out), ['c']);
  assert.equal(r.failed.length, 2);
  assert.equal(r.failed[0]!.reason, 'math "temp * 1.8 + 32" for "tempF" is Undefined: the message has no attribute "temp"');
  assert.equal(r.failed[0]!.activity, 0);
  assert.equal(r.failed[0]!.activityType, 'math');
  assert.equal(r.failed[0]!.message, msg('a', { hum: 1 }));
  assert.match(r.failed[1]!.reason, /is Undefined \(an operand has the wrong type\)/);
});

test('lambda gets batches of batchSize and its answers replace the messages in order', async () => {
  const calls: { fn: string; n: number }[] = [];
  const p = compilePipeline([{ lambda: { function: 'enrich', batchSize: 2 } }], {
    invoke: async (fn, messages) => {
      calls.push({ fn, n: messages.length });
      return messages.map((m) => ({ ...m, enriched: true }));
    },
  });
  const r = await p.process([msg('a', { v: 1 }), msg('b', { v: 2 }), msg('c', { v: 3 })]);
  assert.equal(calls, [
    { fn: 'enrich', n: 2 },
    { fn: 'enrich', n: 1 },
  ]);
  assert.equal(ids(r.out), ['a', 'b', 'c']);
  assert.equal(bodies(r.out), [
    { v: 1, enriched: true },
    { v: 2, enriched: true },
    { v: 3, enriched: true },
  ]);
});

test('a failing or misbehaving lambda fails its batch with the reason; other batches pass', async () => {
  const p = compilePipeline([{ lambda: { function: 'f', batchSize: 1 } }], {
    invoke: async (_fn, [m]) => {
      if (m!.v === 1) throw new Error('boom');
      if (m!.v === 2) return { not: 'an array' };
      if (m!.v === 3) return [42];
      return [m];
    },
  });
  const r = await p.process([msg('a', { v: 1 }), msg('b', { v: 2 }), msg('c', { v: 3 }), msg('d', { v: 4 })]);
  assert.equal(ids(r.out), ['d']);
  assert.equal(
    r.failed.map((f) => [f.message.id, f.reason]),
    [
      ['a', 'lambda function "f" failed: boom'],
      ['b', 'lambda function "f" returned an object, not an array of messages'],
      ['c', 'lambda function "f" returned number 42 at index 0, not a JSON object'],
    ],
  );
});

test('a lambda that splits messages gives derived ids and the source receive time', async () => {
  const p = compilePipeline([{ lambda: { function: 'split', batchSize: 10 } }], {
    invoke: async (_fn, messages) => messages.flatMap((m) => (m.readings as number[]).map((r) => ({ device: m.device, r }))),
  });
  const r = await p.process([msg('a', { device: 'x', readings: [1, 2] }, 5), msg('b', { device: 'y', readings: [3] }, 7)]);
  assert.equal(ids(r.out), ['b#0', 'b#1', 'b#2']);
  assert.equal(r.out.map((m) => m.receivedAt), [7, 7, 7]);
  assert.equal(bodies(r.out), [
    { device: 'x', r: 1 },
    { device: 'x', r: 2 },
    { device: 'y', r: 3 },
  ]);
});

test('deviceRegistryEnrich adds the registry data under the attribute; the thing name comes from a message attribute', async () => {
  const lookups: string[] = [];
  const p = compilePipeline([{ deviceRegistryEnrich: { attribute: 'device', thingName: 'thing' } }], {
    lookupThing: (name) => {
      lookups.push(name);
      return name === 'sensor-1' ? { thingName: 'sensor-1', thingTypeName: 'sensor', attributes: { site: 'plant-a' } } : undefined;
    },
  });
  const r = await p.process([msg('a', { thing: 'sensor-1', t: 1 }), msg('b', { thing: 'sensor-1', t: 2 }), msg('c', { thing: 'ghost' }), msg('d', { t: 3 })]);
  assert.equal(bodies(r.out), [
    { thing: 'sensor-1', t: 1, device: { attributes: { site: 'plant-a' }, thingName: 'sensor-1', thingTypeName: 'sensor' } },
    { thing: 'sensor-1', t: 2, device: { attributes: { site: 'plant-a' }, thingName: 'sensor-1', thingTypeName: 'sensor' } },
    { thing: 'ghost' },
    { t: 3 },
  ]);
  assert.equal(lookups, ['sensor-1', 'ghost'], 'each thing is looked up once per batch');
});

test('a registry lookup that throws fails the message', async () => {
  const p = compilePipeline([{ deviceRegistryEnrich: { attribute: 'device', thingName: 'thing' } }], {
    lookupThing: () => {
      throw new Error('registry unavailable');
    },
  });
  const r = await p.process([msg('a', { thing: 'x' })]);
  assert.equal(r.failed.map((f) => f.reason), ['looking up thing "x" failed: registry unavailable']);
});

test('activities run in order over the batch; failures name the activity index', async () => {
  const activities: Activity[] = [
    { filter: { filter: 'NOT isUndefined(temp)' } },
    { addAttributes: { attributes: { temp: 'celsius' } } },
    { removeAttributes: { attributes: ['temp'] } },
    { math: { attribute: 'fahrenheit', math: 'celsius * 9 / 5 + 32' } },
    { selectAttributes: { attributes: ['device', 'fahrenheit'] } },
  ];
  const p = compilePipeline(activities);
  const r = await p.process([msg('a', { device: 'd', temp: 100, junk: 1 }), msg('b', { device: 'd', temp: 'x' }), msg('c', { device: 'd' })]);
  assert.equal(bodies(r.out), [{ device: 'd', fahrenheit: 212 }]);
  assert.equal(ids(r.filtered), ['c']);
  assert.equal(r.failed.map((f) => [f.message.id, f.activity]), [['b', 3]]);
});

test('deviceShadowEnrich is refused at compile time on the local target', () => {
  try {
    compilePipeline([{ deviceShadowEnrich: { attribute: 'shadow', thingName: 'thing' } }]);
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.instance(e, PipelineCompileError);
    assert.equal((e as PipelineCompileError).problems[0]!.message, 'deviceShadowEnrich is not supported on the local target: the local platform has no device shadows');
  }
});

test('validation reports every problem with its activity index', () => {
  const problems = validatePipeline(
    [
      { filter: { filter: 'temp >' } },
      { math: { attribute: 'bad name', math: 'temp * 2' } },
      { math: { attribute: 'ok', math: 'nosuchfn(temp)' } },
      { lambda: { function: 'missing', batchSize: 10 } },
      { addAttributes: { attributes: { a: 'dt' } } },
      { deviceShadowEnrich: { attribute: 's', thingName: 't' } },
    ],
    { functions: ['ingest'], reservedAttributes: ['dt'] },
  );
  assert.equal(
    problems.map((p) => [p.activity, p.path]),
    [
      [0, 'filter.filter'],
      [1, 'math.attribute'],
      [2, 'math.math'],
      [3, 'lambda.function'],
      [4, 'addAttributes.attributes.a'],
      [5, 'deviceShadowEnrich'],
    ],
  );
  assert.match(problems[0]!.message, /^invalid filter expression: /);
  assert.match(problems[1]!.message, /"bad name" is not a valid attribute name/);
  assert.match(problems[2]!.message, /^invalid math expression: UNKNOWN_FUNCTION/);
  assert.equal(problems[3]!.message, 'function "missing" does not exist');
  assert.equal(problems[3]!.hint, 'define it under functions: (defined: ingest)');
  assert.equal(problems[4]!.message, '"dt" is reserved by the datastore');
});

test('lambda and deviceRegistryEnrich need their dependencies', () => {
  try {
    compilePipeline([{ lambda: { function: 'f', batchSize: 1 } }, { deviceRegistryEnrich: { attribute: 'd', thingName: 't' } }]);
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.equal((e as PipelineCompileError).problems.map((p) => p.activity), [0, 1]);
  }
});

test.run();
