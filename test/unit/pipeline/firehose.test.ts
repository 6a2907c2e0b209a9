import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compileFirehoseTransform, pipelineMetricsLine, widenGlueColumns, type FirehoseTransformationEvent } from '../../../src/iot/pipeline/firehose.js';
import type { Activity, JsonObject, ThingDescription } from '../../../src/iot/pipeline/index.js';
import { createHandler } from '../../../templates/pipeline-transform/handler.js';
import { components, message, setupLake } from '../lake/helpers.js';

interface FixtureMessage {
  at: number;
  payload?: JsonObject;
  raw?: string;
  expect: 'Ok' | 'Dropped' | 'ProcessingFailed';
  row?: JsonObject;
  rows?: JsonObject[];
  dt?: string;
  reason?: string;
}
interface Fixture {
  things: Record<string, ThingDescription>;
  cases: { name: string; activities: Activity[]; messages: FixtureMessage[] }[];
}
const fixture = JSON.parse(readFileSync(new URL('../../fixtures/pipeline/transform-cases.json', import.meta.url), 'utf8')) as Fixture;

const deps = {
  lookupThing: (name: string) => fixture.things[name],
  invoke: async (_fn: string, messages: JsonObject[]) => messages.flatMap((m) => (m.readings as number[]).map((r) => ({ device: m.device, r }))),
};

const recordId = (i: number) => `4954698668313554428650745793632167567570019247115678515${i}`;
const rawOf = (m: FixtureMessage) => m.raw ?? JSON.stringify(m.payload);

/** A transformation event as Firehose sends it to the Lambda. */
function eventOf(messages: FixtureMessage[]): FirehoseTransformationEvent {
  return {
    invocationId: 'a7d2b9b8-3c9e-4d7e-9b35-1f7a0c1d2e3f',
    deliveryStreamArn: 'arn:aws:firehose:us-east-1:123456789012:deliverystream/iotctl-test-pipeline-main',
    region: 'us-east-1',
    records: messages.map((m, i) => ({ recordId: recordId(i), approximateArrivalTimestamp: m.at, data: Buffer.from(rawOf(m)).toString('base64') })),
  };
}

/** Rows of an Ok answer: its base64 NDJSON decoded. */
const rowsOf = (data: string) =>
  Buffer.from(data, 'base64')
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as JsonObject);

/** Numbers within 1e-9 (the fixture's hand-computed floats), everything else equal. */
function assertRow(got: JsonObject, want: JsonObject, what: string) {
  assert.equal(Object.keys(got).sort(), Object.keys(want).sort(), `${what}: columns`);
  for (const k of Object.keys(want)) {
    if (typeof want[k] === 'number') assert.ok(Math.abs((got[k] as number) - (want[k] as number)) < 1e-9, `${what}.${k}: ${got[k]} vs ${want[k]}`);
    else assert.equal(got[k], want[k], `${what}.${k}`);
  }
}

for (const c of fixture.cases) {
  test(`Firehose transform, ${c.name}: each record's result, rows, day partition and failure reason`, async () => {
    const logged: string[] = [];
    const metrics: string[] = [];
    const origError = console.error;
    console.error = (line: string) => logged.push(line);
    let response;
    try {
      const handler = createHandler(deps, { PIPELINE_NAME: 'main', IOTCTL_PROJECT: 'test', PIPELINE_ACTIVITIES: JSON.stringify(c.activities) }, undefined, (line) => metrics.push(line));
      response = await handler(eventOf(c.messages));
    } finally {
      console.error = origError;
    }
    // One metrics line per batch, counting the answers Firehose gets.
    assert.is(metrics.length, 1);
    const emf = JSON.parse(metrics[0]!);
    const results = response.records.map((r) => r.result);
    const count = (result: string) => results.filter((r) => r === result).length;
    assert.equal([emf.In, emf.Out, emf.Filtered, emf.Failed], [c.messages.length, count('Ok'), count('Dropped'), count('ProcessingFailed')]);
    assert.equal(response.records.map((r) => r.recordId), c.messages.map((_, i) => recordId(i)), 'one answer per record, in order');
    c.messages.forEach((m, i) => {
      const r = response.records[i]!;
      assert.equal(r.result, m.expect, `record ${i} result`);
      if (m.expect === 'Ok') {
        const rows = rowsOf(r.data);
        const want = m.rows ?? [m.row!];
        assert.equal(rows.length, want.length, `record ${i} rows`);
        rows.forEach((row, j) => {
          const { __message_id, __received_at, ...rest } = row;
          assert.equal(__received_at, m.rows ? c.messages[i]!.at : m.at);
          assert.equal(__message_id, m.rows ? `${recordId(i)}#${j}` : recordId(i));
          assertRow(rest, want[j]!, `record ${i} row ${j}`);
        });
        assert.equal(r.metadata, { partitionKeys: { dt: m.dt! } });
      } else {
        // Dropped and failed records keep their original bytes (Firehose writes failed ones to the error prefix).
        assert.equal(r.data, m.expect === 'Dropped' ? '' : Buffer.from(rawOf(m)).toString('base64'));
        assert.equal(r.metadata, undefined);
      }
      if (m.expect === 'ProcessingFailed') {
        const line = logged.map((l) => JSON.parse(l)).find((l) => l.recordId === recordId(i));
        assert.ok(line, `the reason of record ${i} is logged`);
        assert.equal(line.reason, m.reason);
        assert.equal(line.pipeline, 'main');
        assert.equal(line.receivedAt, new Date(m.at).toISOString(), 'analytics status shows when the record arrived');
      }
    });
  });

  test(`Firehose transform gives the local pipeline's rows for the same messages: ${c.name}`, async () => {
    const lake = await setupLake(
      { channels: [{ name: 'raw' }], datastores: [{ name: 'store' }], pipelines: [{ name: 'main', channel: 'raw', datastore: 'store', activities: c.activities as never }] },
      { functions: [{ name: 'split', template: 'noop' }] } as never,
    );
    const local = await components(lake.dir, lake.db, { deps });
    try {
      await local.channels.putMessages('raw', c.messages.map((m, i) => message(recordId(i), m.at, m.raw ?? m.payload)));
      const summary = await local.runner.runOnce();
      // The local rows, read back from the Parquet datastore with an independent reader.
      const localRows = new Map<string, JsonObject>();
      for (const f of local.writer.files('store'))
        for (const row of (await parquetReadObjects({ file: await asyncBufferFromFile(join(lake.dir, 'lake', f.file)) })) as JsonObject[])
          localRows.set(row.__message_id as string, normalise({ ...row, dt: f.dt }));
      const localFailed = (lake.db.prepare(`SELECT message_id AS id, reason FROM lake_pipeline_failures ORDER BY message_id`).all() as { id: string; reason: string }[]).map((f) => [f.id, f.reason]);

      const { response, failures, counts } = await compileFirehoseTransform(c.activities, deps).transform(eventOf(c.messages));
      const awsRows = new Map<string, JsonObject>();
      for (const r of response.records)
        if (r.result === 'Ok') for (const row of rowsOf(r.data)) awsRows.set(row.__message_id as string, normalise({ ...row, dt: r.metadata!.partitionKeys.dt }));

      assert.ok(localRows.size > 0);
      assert.equal(awsRows, localRows);
      assert.equal(failures.map((f) => [f.recordId, f.reason]).sort(), localFailed);
      assert.equal([counts.in, counts.failed], [summary.pipelines[0]!.in, summary.pipelines[0]!.failed]);
      // A filtered message is Dropped on Firehose (a lambda activity's merged inputs are Dropped too).
      if (!c.activities.some((a) => 'lambda' in a)) assert.equal(counts.dropped, summary.pipelines[0]!.filtered);
    } finally {
      await local.close();
      lake.cleanup();
    }
  });
}

/** Parquet's BIGINT (bigint), TIMESTAMP (Date) and null columns (absent from the row) as JSON has them. */
function normalise(row: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(row)) {
    if (v === null || v === undefined) continue;
    out[k] = typeof v === 'bigint' ? Number(v) : v instanceof Date ? v.getTime() : v;
  }
  return out;
}

test('a pipeline that cannot compile fails every record with the reason instead of throwing', async () => {
  const t = compileFirehoseTransform([{ deviceShadowEnrich: { attribute: 's', thingName: 'device' } }]);
  const { response, failures } = await t.transform(eventOf([{ at: 1, payload: { device: 'd' }, expect: 'ProcessingFailed' }]));
  assert.equal(response.records[0]!.result, 'ProcessingFailed');
  assert.match(failures[0]!.reason, /^the pipeline cannot run: activities\[0\]\.deviceShadowEnrich: the deviceShadowEnrich activity is not supported/);
});

test('binary payloads fail with the local reason; attributes differing only in case cannot both be columns', async () => {
  const t = compileFirehoseTransform([]);
  const event = eventOf([{ at: 1, payload: { Temp: 1, temp: 2 }, expect: 'ProcessingFailed' }]);
  event.records.push({ recordId: 'bin', approximateArrivalTimestamp: 1, data: Buffer.from([0xff, 0xfe, 0x00]).toString('base64') });
  const { response, failures } = await t.transform(event);
  assert.equal(response.records.map((r) => r.result), ['ProcessingFailed', 'ProcessingFailed']);
  assert.equal(failures.map((f) => [f.activityType, f.reason]), [
    ['channel', 'the payload is binary, not a JSON object; pipelines process JSON messages'],
    ['datastore', 'attributes that differ only in case map to one datastore column "Temp" (column names are case-insensitive)'],
  ]);
});

test('columns report the kinds seen per column (for the Glue schema), case-insensitively', async () => {
  const t = compileFirehoseTransform([]);
  const { columns } = await t.transform(eventOf([
    { at: 1, payload: { a: 1, b: 'x', n: { k: 1 } }, expect: 'Ok' },
    { at: 2, payload: { A: 1.5, c: true, z: null }, expect: 'Ok' },
  ]));
  assert.equal([...columns.entries()], [
    ['a', { name: 'a', mask: 1 | 2 }],
    ['b', { name: 'b', mask: 8 }],
    ['n', { name: 'n', mask: 16 }],
    ['c', { name: 'c', mask: 4 }],
    ['z', { name: 'z', mask: 0 }],
  ]);
});

test('the Glue schema widens as the local lake widens its columns; an unchanged schema is not rewritten', () => {
  const base = [{ name: '__message_id', type: 'string' }, { name: '__received_at', type: 'timestamp' }];
  const seen = (entries: [string, number][]) => new Map(entries.map(([name, mask]) => [name.toLowerCase(), { name, mask }]));
  const first = widenGlueColumns(base, seen([['Temp', 1], ['site', 8], ['ok', 4], ['nested', 16], ['none', 0]]));
  assert.equal(first, [...base, { name: 'temp', type: 'bigint' }, { name: 'site', type: 'string' }, { name: 'ok', type: 'boolean' }, { name: 'nested', type: 'string' }]);
  assert.equal(widenGlueColumns(first!, seen([['temp', 1], ['site', 8]])), undefined, 'nothing new: no write');
  assert.equal(widenGlueColumns(first!, seen([['temp', 2]]))!.find((c) => c.name === 'temp'), { name: 'temp', type: 'double' });
  assert.equal(widenGlueColumns(first!, seen([['ok', 1]]))!.find((c) => c.name === 'ok'), { name: 'ok', type: 'string' });
  assert.equal(widenGlueColumns([{ name: 'temp', type: 'string' }], seen([['temp', 1]])), undefined, 'string stays string');
});

test('the handler writes the widened schema once, when a batch brings a new attribute', async () => {
  let columns = [{ name: '__message_id', type: 'string' }, { name: '__received_at', type: 'timestamp' }];
  const writes: string[][] = [];
  let reads = 0;
  const handler = createHandler({}, { PIPELINE_ACTIVITIES: '[]', LOG_LEVEL: 'silent' }, {
    read: async () => (reads++, columns),
    write: async (c) => {
      writes.push(c.map((x) => `${x.name} ${x.type}`));
      columns = c;
    },
  });
  await handler(eventOf([{ at: 1, payload: { temp: 1 }, expect: 'Ok' }]));
  await handler(eventOf([{ at: 2, payload: { temp: 2 }, expect: 'Ok' }]));
  await handler(eventOf([{ at: 3, payload: { temp: 2.5, hum: 3 }, expect: 'Ok' }]));
  assert.equal(writes, [
    ['__message_id string', '__received_at timestamp', 'temp bigint'],
    ['__message_id string', '__received_at timestamp', 'temp double', 'hum bigint'],
  ]);
  assert.equal(reads, 1, 'read once per container');
});

test('the batch counts are one CloudWatch embedded metric format document', () => {
  const line = pipelineMetricsLine('main', 'demo', { in: 5, out: 2, dropped: 2, failed: 1 }, 1_900_000_000_000)!;
  const doc = JSON.parse(line);
  // The specification's structure: _aws holds Timestamp (epoch ms) and CloudWatchMetrics, nothing else.
  assert.equal(doc._aws, {
    Timestamp: 1_900_000_000_000,
    CloudWatchMetrics: [
      {
        Namespace: 'iotctl/Pipelines',
        Dimensions: [['Project', 'Pipeline']],
        Metrics: [
          { Name: 'In', Unit: 'Count' },
          { Name: 'Out', Unit: 'Count' },
          { Name: 'Filtered', Unit: 'Count' },
          { Name: 'Failed', Unit: 'Count' },
        ],
      },
    ],
  });
  // Every dimension a directive names is a string member of the root, every metric a number member.
  for (const d of doc._aws.CloudWatchMetrics[0].Dimensions.flat()) assert.type(doc[d], 'string', d);
  for (const m of doc._aws.CloudWatchMetrics[0].Metrics) assert.type(doc[m.Name], 'number', m.Name);
  assert.equal({ ...doc, _aws: undefined }, { _aws: undefined, Project: 'demo', Pipeline: 'main', In: 5, Out: 2, Filtered: 2, Failed: 1 });
  assert.not.match(line, /\n/, 'one log event: a single line');

  assert.equal(JSON.parse(pipelineMetricsLine('main', undefined, { in: 1, out: 1, dropped: 0, failed: 0 })!)._aws.CloudWatchMetrics[0].Dimensions, [['Pipeline']], 'without a project: Pipeline alone');
  assert.is(pipelineMetricsLine(undefined, 'demo', { in: 1, out: 1, dropped: 0, failed: 0 }), undefined, 'without a pipeline name: no metrics');
  const staged = JSON.parse(pipelineMetricsLine('main', 'demo', { in: 1, out: 1, dropped: 0, failed: 0 }, 0, 'prod')!);
  assert.equal([staged._aws.CloudWatchMetrics[0].Dimensions, staged.Stage], [[['Project', 'Stage', 'Pipeline']], 'prod'], 'with a stage: two stages of one project apart');
});

test('the handler writes its metrics line as is (no console prefix), once per batch', async () => {
  const lines: string[] = [];
  const handler = createHandler({}, { PIPELINE_NAME: 'main', IOTCTL_PROJECT: 'demo', PIPELINE_ACTIVITIES: JSON.stringify([{ filter: { filter: 'temp > 0' } }]), LOG_LEVEL: 'silent' }, undefined, (l) => lines.push(l));
  await handler(eventOf([
    { at: 1, payload: { temp: 1 }, expect: 'Ok' },
    { at: 2, payload: { temp: -1 }, expect: 'Dropped' },
    { at: 3, raw: 'not json', expect: 'ProcessingFailed' },
  ]));
  await handler(eventOf([{ at: 4, payload: { temp: 2 }, expect: 'Ok' }]));
  assert.is(lines.length, 2);
  assert.ok(lines.every((l) => l.startsWith('{"_aws":')), 'the line is the JSON object alone');
  assert.equal(lines.map((l) => JSON.parse(l)).map((d) => [d.Project, d.Pipeline, d.In, d.Out, d.Filtered, d.Failed]), [
    ['demo', 'main', 3, 1, 1, 1],
    ['demo', 'main', 1, 1, 0, 0],
  ]);
});

test('the bundled template (the artifact Lambda runs) transforms a Firehose event from its environment', async () => {
  const { bundleTemplate } = await import('../../../src/services/bundle.js');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { createRequire } = await import('node:module');
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-transform-'));
  const saved = process.env.PIPELINE_ACTIVITIES;
  try {
    const { artifactPath } = await bundleTemplate('pipeline-transform', dir);
    process.env.PIPELINE_ACTIVITIES = JSON.stringify([{ filter: { filter: 'temp > 0' } }, { math: { attribute: 'twice', math: 'temp * 2' } }]);
    const mod = createRequire(import.meta.url)(artifactPath) as { handler: (e: FirehoseTransformationEvent) => Promise<{ records: { result: string; data: string }[] }> };
    const out = await mod.handler(eventOf([
      { at: 1_900_000_000_000, payload: { temp: 3 }, expect: 'Ok' },
      { at: 1_900_000_000_000, payload: { temp: -3 }, expect: 'Dropped' },
    ]));
    assert.equal(out.records.map((r) => r.result), ['Ok', 'Dropped']);
    assert.equal(rowsOf(out.records[0]!.data), [{ __message_id: recordId(0), __received_at: 1_900_000_000_000, temp: 3, twice: 6 }]);
  } finally {
    if (saved === undefined) delete process.env.PIPELINE_ACTIVITIES;
    else process.env.PIPELINE_ACTIVITIES = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
