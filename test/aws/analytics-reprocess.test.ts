import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { gunzipSync, gzipSync } from 'node:zlib';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { JsonObject, ThingDescription } from '../../src/iot/pipeline/index.js';
import type { ReprocessResult } from '../../src/ports.js';
import { specSchema, type SpecInput } from '../../src/spec/schema.js';
import { applyDatalake, datalakeContext, planDatalake } from '../../src/targets/aws/analytics/datalake.js';
import { AwsAnalytics } from '../../src/targets/aws/analytics/index.js';
import { recordIdOf } from '../../src/targets/aws/analytics/reprocess.js';
import { AwsCallError, AwsClients } from '../../src/targets/aws/sdk.js';
import { UserError } from '../../src/ui/errors.js';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';
import { components, message, setupLake } from '../unit/lake/helpers.js';
/** Dataset content downloads (reprocess writes none here). */
const CONTENT = { contentDir: join(tmpdir(), `iotctl-reprocess-content-${process.pid}`) };

// `analytics reprocess` on the datalake engine against moto_server: raw channel objects in, the pipeline's
// datastore objects of those days replaced, the rows equal to what the local lake stores for the same messages.

interface FixtureMessage {
  at: number;
  payload?: JsonObject;
  raw?: string;
  expect: 'Ok' | 'Dropped' | 'ProcessingFailed';
  reason?: string;
}
interface Fixture {
  things: Record<string, ThingDescription>;
  cases: { name: string; activities: JsonObject[]; messages: FixtureMessage[] }[];
}
// The fixture the transform tests share (filter, math, attribute changes, registry enrichment; no lambda: moto runs none).
const fixture = JSON.parse(readFileSync(new URL('../fixtures/pipeline/transform-cases.json', import.meta.url), 'utf8')) as Fixture;
const enrichCase = fixture.cases.find((c) => !c.activities.some((a) => 'lambda' in a))!;

const BUCKET = 'iotctl-lake-default--lake-123456789012-us-east-1';
const UUID = (n: number) => `6f9d3c9c-74c3-4d8a-a4f6-${String(n).padStart(12, '0')}`;
const analytics: NonNullable<SpecInput['analytics']> = {
  channels: [{ name: 'raw' }],
  datastores: [{ name: 'telemetry' }, { name: 'auditlog', format: 'json' }],
  pipelines: [
    { name: 'main', channel: 'raw', datastore: 'telemetry', activities: enrichCase.activities as never },
    // Another pipeline writing to the same datastore: its stream name starts with main's.
    { name: 'main_eu', channel: 'raw', datastore: 'telemetry', activities: [] },
    { name: 'audit', channel: 'raw', datastore: 'auditlog', activities: [{ selectAttributes: { attributes: ['device', 'temp'] } }] },
  ],
  datasets: [],
};
const spec = specSchema.parse({ project: 'lake', target: 'aws', analytics });

/** The raw objects, as the raw delivery stream files them: day 1 in a gzipped and an uncompressed object, day 2 in one. */
const msgs = enrichCase.messages;
const line = (m: FixtureMessage) => m.raw ?? JSON.stringify(m.payload);
const RAW = [
  // The rule's firehose action appends '\n' and the stream appends another: blank lines between messages.
  { key: `raw/raw/dt=2024-03-17/iotctl-lake-default--ch-raw-1-2024-03-17-17-50-00-${UUID(1)}.gz`, lines: msgs.slice(0, 4).map(line), gzip: true, sep: '\n\n' },
  { key: `raw/raw/dt=2024-03-17/iotctl-lake-default--ch-raw-1-2024-03-17-17-55-00-${UUID(2)}`, lines: msgs.slice(4, 8).map(line), gzip: false, sep: '\n' },
  { key: `raw/raw/dt=2024-03-18/iotctl-lake-default--ch-raw-1-2024-03-18-21-35-00-${UUID(3)}.gz`, lines: msgs.slice(8).map(line), gzip: true, sep: '\n' },
];
const bodyOf = (r: (typeof RAW)[number]) => r.lines.map((l) => l + r.sep).join('');
/** Each raw message with the id and arrival time reprocess gives it (1-based line numbers of the object). */
const rawMessages = RAW.flatMap((r) => {
  const at = Date.parse(r.key.replace(/.*-1-(\d{4}-\d{2}-\d{2})-(\d{2})-(\d{2})-(\d{2})-.*/, '$1T$2:$3:$4Z'));
  return r.lines.map((text, i) => ({ id: recordIdOf(r.key, i * r.sep.length + 1), at, text }));
});

// Today: Firehose may still deliver objects of it, so reprocess leaves it alone.
const TODAY = new Date().toISOString().slice(0, 10);
const TODAY_RAW = `raw/raw/dt=${TODAY}/iotctl-lake-default--ch-raw-1-${TODAY}-00-00-00-${UUID(7)}.gz`;
const TODAY_MAIN = `datastore/telemetry/dt=${TODAY}/iotctl-lake-default--pl-main-1-${TODAY}-00-05-00-${UUID(8)}.parquet`;

const OLD_MAIN = `datastore/telemetry/dt=2024-03-17/iotctl-lake-default--pl-main-1-2024-03-17-17-56-00-${UUID(4)}.parquet`;
const OTHER = `datastore/telemetry/dt=2024-03-17/iotctl-lake-default--pl-main_eu-1-2024-03-17-17-56-00-${UUID(5)}.parquet`;
const NO_RAW_DAY = `datastore/telemetry/dt=2024-03-15/iotctl-lake-default--pl-main-1-2024-03-15-10-00-00-${UUID(6)}.parquet`;

let moto: Moto;
let restore: () => void;
let aws: AwsClients;
let target: AwsAnalytics;
let dir: string;

test.before(async () => {
  moto = await startMoto();
  restore = useEnv(moto.env);
  aws = new AwsClients({ endpointUrl: moto.url });
  target = new AwsAnalytics(aws, spec, CONTENT);
  const ctx = await datalakeContext(aws, spec);
  await applyDatalake(aws, spec, await planDatalake(aws, spec, { context: ctx }), { context: ctx });

  const { client: iot, sdk: i } = await aws.get('iot');
  await iot.send(new i.CreateThingTypeCommand({ thingTypeName: 'sensor' }));
  for (const t of Object.values(fixture.things))
    await iot.send(new i.CreateThingCommand({ thingName: t.thingName, thingTypeName: t.thingTypeName, attributePayload: { attributes: t.attributes } }));

  for (const r of RAW) await put(r.key, r.gzip ? gzipSync(bodyOf(r)) : Buffer.from(bodyOf(r)));
  await put(TODAY_RAW, gzipSync(line(msgs[0]!) + '\n'));
  for (const k of [OLD_MAIN, OTHER, NO_RAW_DAY, TODAY_MAIN]) await put(k, Buffer.from('an earlier Parquet object'));
  dir = (await import('node:fs')).mkdtempSync(join((await import('node:os')).tmpdir(), 'iotctl-reprocess-test-'));
});
test.after(async () => {
  aws.destroy();
  restore();
  await moto.stop();
  (await import('node:fs')).rmSync(dir, { recursive: true, force: true });
});

async function put(Key: string, Body: Buffer) {
  const { client, sdk } = await aws.get('s3');
  await client.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key, Body }));
}
async function keys(prefix: string): Promise<string[]> {
  const { client, sdk } = await aws.get('s3');
  return ((await client.send(new sdk.ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!).sort();
}
async function get(Key: string): Promise<Buffer> {
  const { client, sdk } = await aws.get('s3');
  return Buffer.from(await (await client.send(new sdk.GetObjectCommand({ Bucket: BUCKET, Key }))).Body!.transformToByteArray());
}

/** Parquet's BIGINT (bigint), TIMESTAMP (Date) and null columns (absent) as JSON has them; column names in lower case. */
function normalise(row: Record<string, unknown>): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(row)) {
    if (v === null || v === undefined) continue;
    out[k.toLowerCase()] = typeof v === 'bigint' ? Number(v) : v instanceof Date ? v.getTime() : v;
  }
  return out;
}

/** Every row of the datastore's Parquet objects, by __message_id, with its day. */
async function awsRows(prefix: string): Promise<Map<string, JsonObject>> {
  const rows = new Map<string, JsonObject>();
  for (const key of (await keys(prefix)).filter((k) => k.includes('-reprocess-'))) {
    const file = join(dir, 'download.parquet');
    (await import('node:fs')).writeFileSync(file, await get(key));
    for (const row of (await parquetReadObjects({ file: await asyncBufferFromFile(file) })) as Record<string, unknown>[]) {
      assert.not.ok(rows.has(row.__message_id as string), `row ${row.__message_id} is stored once`);
      rows.set(row.__message_id as string, normalise({ ...row, dt: /dt=([\d-]+)\//.exec(key)![1] }));
    }
  }
  return rows;
}

/** The local lake's rows and failures for the same messages (same ids, same receive times). */
async function localRows(): Promise<{ rows: Map<string, JsonObject>; failed: [string, string][] }> {
  const lake = await setupLake({ channels: [{ name: 'raw' }], datastores: [{ name: 'store' }], pipelines: [{ name: 'main', channel: 'raw', datastore: 'store', activities: enrichCase.activities as never }] });
  const local = await components(lake.dir, lake.db, { deps: { lookupThing: (name: string) => fixture.things[name] } });
  try {
    await local.channels.putMessages('raw', rawMessages.map((m) => message(m.id, m.at, m.text)));
    await local.runner.runOnce();
    const rows = new Map<string, JsonObject>();
    for (const f of local.writer.files('store'))
      for (const row of (await parquetReadObjects({ file: await asyncBufferFromFile(join(lake.dir, 'lake', f.file)) })) as Record<string, unknown>[])
        rows.set(row.__message_id as string, normalise({ ...row, dt: f.dt }));
    const failed = (lake.db.prepare(`SELECT message_id AS id, reason FROM lake_pipeline_failures ORDER BY message_id`).all() as { id: string; reason: string }[]).map((f): [string, string] => [f.id, f.reason]);
    return { rows, failed };
  } finally {
    await local.close();
    lake.cleanup();
  }
}

/** The failure records reprocess wrote under errors/<pipeline>/processing-failed/. */
async function failures(pipeline: string): Promise<{ key: string; records: Record<string, unknown>[] }[]> {
  const out = [];
  for (const key of await keys(`errors/${pipeline}/processing-failed/`))
    out.push({ key, records: (await get(key)).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) });
  return out;
}

let first: ReprocessResult;
let firstRows: Map<string, JsonObject>;

test("reprocess replaces the pipeline's objects of each raw day with rows equal to the local lake's", async () => {
  const progress: string[] = [];
  first = (await target.reprocess('main', { timeoutSeconds: 60, progress: (l) => progress.push(l) })) as ReprocessResult;
  assert.equal(
    { ...first, id: undefined },
    {
      id: undefined,
      pipeline: 'main',
      from: Date.parse('2024-03-17T00:00:00Z'),
      to: Date.parse('2024-03-18T23:59:59.999Z'),
      messages: 9,
      out: 3,
      filtered: 2,
      failed: 4,
      filesWritten: 2,
      filesReplaced: 1,
    },
  );
  assert.is(progress[0], `Skipping ${TODAY}: Firehose may still deliver objects of a day until 15 minutes after it ends (UTC); reprocess it after that.`);
  assert.match(progress[1]!, /whole UTC days 2024-03-17 to 2024-03-18/);
  assert.match(progress.join('\n'), /__received_at/);
  assert.match(progress.join('\n'), /2024-03-17: 8 message\(s\) in 2 raw object\(s\): 2 row\(s\) written, 2 filtered, 4 failed; 1 previous object/);

  // One new object per day; the old one of this pipeline is gone; another pipeline's object and a day without raw data are untouched.
  assert.equal(await keys('datastore/telemetry/dt=2024-03-17/'), [OTHER, `datastore/telemetry/dt=2024-03-17/iotctl-lake-default--pl-main-reprocess-${first.id}.parquet`].sort());
  assert.equal(await keys('datastore/telemetry/dt=2024-03-18/'), [`datastore/telemetry/dt=2024-03-18/iotctl-lake-default--pl-main-reprocess-${first.id}.parquet`]);
  assert.equal(await keys('datastore/telemetry/dt=2024-03-15/'), [NO_RAW_DAY]);
  assert.equal(await keys(`datastore/telemetry/dt=${TODAY}/`), [TODAY_MAIN]);
  assert.is((await get(OTHER)).toString(), 'an earlier Parquet object');

  firstRows = await awsRows('datastore/telemetry/');
  const local = await localRows();
  assert.is(firstRows.size, 3);
  assert.equal(firstRows, local.rows);

  // The Glue table was widened with the new attributes, as the transform Lambda widens it.
  const { client: glue, sdk: g } = await aws.get('glue');
  const columns = (await glue.send(new g.GetTableCommand({ DatabaseName: 'iotctl_lake_default__lake', Name: 'telemetry' }))).Table!.StorageDescriptor!.Columns!.map((c) => `${c.Name} ${c.Type}`);
  assert.equal(columns.slice(0, 2), ['__message_id string', '__received_at timestamp']);
  for (const c of ['device string', 'temp double', 'hum bigint', 'tempf double', 'humratio double', 'site string', 'registry string', 'readings string', 'ok boolean']) assert.ok(columns.includes(c), `${c} in ${columns}`);

  // Failures: under errors/<pipeline>/processing-failed/dt=<day>/, each with its reason and raw bytes, as locally.
  const errors = await failures('main');
  assert.equal(errors.map((e) => e.key), [`errors/main/processing-failed/dt=2024-03-17/iotctl-lake-default--pl-main-reprocess-${first.id}.json`]);
  const records = errors[0]!.records;
  assert.equal(records.map((r) => [r.recordId, r.reason]).sort(), local.failed);
  const malformed = records.find((r) => r.reason === 'the payload is not valid JSON; pipelines process JSON messages')!;
  assert.is(Buffer.from(malformed.rawData as string, 'base64').toString(), msgs[4]!.raw);
  assert.equal(malformed.source, { bucket: BUCKET, key: RAW[1]!.key, line: 1 });
  assert.equal([malformed.activity, malformed.activityType], [-1, 'channel']);
});

test('reprocessing again gives the same rows once, and replaces the earlier output and failure records', async () => {
  const second = (await target.reprocess('main', { timeoutSeconds: 60 })) as ReprocessResult;
  assert.is.not(second.id, first.id);
  assert.equal([second.messages, second.out, second.failed, second.filesWritten, second.filesReplaced], [9, 3, 4, 2, 2]);
  assert.equal(await keys('datastore/telemetry/dt=2024-03-17/'), [OTHER, `datastore/telemetry/dt=2024-03-17/iotctl-lake-default--pl-main-reprocess-${second.id}.parquet`].sort());
  assert.equal(await awsRows('datastore/telemetry/'), firstRows);
  const errors = await failures('main');
  assert.equal(errors.map((e) => e.key), [`errors/main/processing-failed/dt=2024-03-17/iotctl-lake-default--pl-main-reprocess-${second.id}.json`]);
  assert.is(errors[0]!.records.length, 4);
});

test('a window within one day reprocesses that whole day only', async () => {
  const before = await keys('datastore/telemetry/dt=2024-03-17/');
  const progress: string[] = [];
  const r = (await target.reprocess('main', { from: Date.parse('2024-03-18T21:00:00Z'), to: Date.parse('2024-03-18T22:00:00Z'), timeoutSeconds: 60, progress: (l) => progress.push(l) })) as ReprocessResult;
  assert.equal([r.from, r.to, r.messages, r.out, r.filesWritten, r.filesReplaced], [Date.parse('2024-03-18T00:00:00Z'), Date.parse('2024-03-18T23:59:59.999Z'), 1, 1, 1, 1]);
  assert.match(progress[0]!, /whole UTC days 2024-03-18 to 2024-03-18/);
  assert.equal(await keys('datastore/telemetry/dt=2024-03-17/'), before);
  assert.equal(await awsRows('datastore/telemetry/'), firstRows);
});

test('a JSON datastore gets gzipped NDJSON rows as Firehose writes them', async () => {
  const r = (await target.reprocess('audit', { timeoutSeconds: 60 })) as ReprocessResult;
  // The malformed line and the array fail; the reserved `dt` attribute does not survive selectAttributes.
  assert.equal([r.messages, r.out, r.failed], [9, 7, 2]);
  const objects = await keys('datastore/auditlog/');
  assert.equal(objects, [`datastore/auditlog/dt=2024-03-17/iotctl-lake-default--pl-audit-reprocess-${r.id}.json.gz`, `datastore/auditlog/dt=2024-03-18/iotctl-lake-default--pl-audit-reprocess-${r.id}.json.gz`]);
  const rows = gunzipSync(await get(objects[0]!)).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as JsonObject);
  assert.equal(rows[0], { __message_id: rawMessages[0]!.id, __received_at: rawMessages[0]!.at, device: 'd1', temp: 20 });
  assert.is(rows.length, 6);
});

test('a failing AWS call of an activity (no IoT endpoint) stops the run before it replaces anything', async () => {
  const before = [await keys('datastore/telemetry/'), await keys('errors/main/')];
  const undo = useEnv({ AWS_ENDPOINT_URL_IOT: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: '1' });
  const broken = new AwsClients({});
  try {
    const err = await new AwsAnalytics(broken, spec, CONTENT).reprocess('main', { timeoutSeconds: 60 }).catch((e) => e);
    assert.instance(err, AwsCallError);
    assert.is(err.awsCode, 'EndpointUnreachable');
    assert.is(err.operation, 'DescribeThing');
  } finally {
    broken.destroy();
    undo();
  }
  assert.equal([await keys('datastore/telemetry/'), await keys('errors/main/')], before);
});

test('an unknown pipeline is NOT_FOUND and names the pipelines', async () => {
  try {
    await target.reprocess('nope', { timeoutSeconds: 60 });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, UserError);
    assert.is((e as UserError).code, 'NOT_FOUND');
    assert.is((e as UserError).hint, 'Pipelines: main, main_eu, audit');
  }
});

test.run();
