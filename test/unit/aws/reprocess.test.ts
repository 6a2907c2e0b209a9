import { gzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { thingLookup, lambdaInvoke, tableInputWithColumns } from '../../../src/iot/pipeline/aws-deps.js';
import {
  clampToDay,
  decompress,
  duckType,
  firehoseObjectTime,
  lowerCaseKeys,
  parquetSelect,
  rawRecords,
  recordIdOf,
  reprocessDays,
  reprocessObjectName,
  writtenByStream,
} from '../../../src/targets/aws/analytics/reprocess.js';

// The pure parts of `analytics reprocess` on the datalake engine (the S3 round trip is in test/aws/analytics-reprocess.test.ts).

const ms = (iso: string) => Date.parse(iso);
const UUID = '6f9d3c9c-74c3-4d8a-a4f6-ac5d6a0ea2b7';

test('the window widens to whole UTC days that have raw objects; no bound means the first or last raw day', () => {
  const raw = ['2030-03-18', '2030-03-16', '2030-03-17', '2030-03-20'];
  const later = ms('2031-01-01T00:00:00Z');
  assert.equal(reprocessDays(raw, {}, later), {
    days: ['2030-03-16', '2030-03-17', '2030-03-18', '2030-03-20'],
    pending: [],
    from: ms('2030-03-16T00:00:00Z'),
    to: ms('2030-03-20T23:59:59.999Z'),
  });
  assert.equal(reprocessDays(raw, { from: ms('2030-03-17T13:05:00Z'), to: ms('2030-03-18T00:00:01Z') }, later), {
    days: ['2030-03-17', '2030-03-18'],
    pending: [],
    from: ms('2030-03-17T00:00:00Z'),
    to: ms('2030-03-18T23:59:59.999Z'),
  });
  // One bound: the other end is the raw data's.
  assert.equal(reprocessDays(raw, { from: ms('2030-03-18T23:00:00Z') }, later).days, ['2030-03-18', '2030-03-20']);
  assert.equal(reprocessDays(raw, { to: ms('2030-03-16T23:59:59.999Z') }, later).days, ['2030-03-16']);
  // The window replaced is that of the days reprocessed; without any, the widened request.
  assert.equal(reprocessDays(raw, { from: ms('2030-03-15T05:00:00Z'), to: ms('2030-03-16T06:00:00Z') }, later), { days: ['2030-03-16'], pending: [], from: ms('2030-03-16T00:00:00Z'), to: ms('2030-03-16T23:59:59.999Z') });
  assert.equal(reprocessDays(raw, { from: ms('2030-03-19T05:00:00Z'), to: ms('2030-03-19T06:00:00Z') }, later), { days: [], pending: [], from: ms('2030-03-19T00:00:00Z'), to: ms('2030-03-19T23:59:59.999Z') });
  assert.equal(reprocessDays([], {}, later), { days: [], pending: [], from: 0, to: 0 });
});

test('a day Firehose may still deliver (until 15 minutes after it ends) is left for later', () => {
  const raw = ['2030-03-17', '2030-03-18'];
  assert.equal(reprocessDays(raw, {}, ms('2030-03-18T12:00:00Z')), { days: ['2030-03-17'], pending: ['2030-03-18'], from: ms('2030-03-17T00:00:00Z'), to: ms('2030-03-17T23:59:59.999Z') });
  assert.equal(reprocessDays(raw, {}, ms('2030-03-18T00:14:59Z')).pending, ['2030-03-17', '2030-03-18']);
  assert.equal(reprocessDays(raw, {}, ms('2030-03-18T00:15:00Z')).days, ['2030-03-17']);
  assert.equal(reprocessDays(raw, {}, ms('2030-03-19T00:15:00Z')).days, raw);
});

test("the time in a Firehose object's name, read from the end (stream names contain '-' and digits)", () => {
  assert.is(firehoseObjectTime(`raw/raw/dt=2030-03-17/iotctl-lake-ch-raw-1-2030-03-17-05-33-20-${UUID}.gz`), ms('2030-03-17T05:33:20Z'));
  assert.is(firehoseObjectTime(`datastore/t/dt=2030-03-17/iotctl-lake-pl-a-1-12-2030-03-17-23-59-59-${UUID}.parquet`), ms('2030-03-17T23:59:59Z'));
  assert.is(firehoseObjectTime(`x/iotctl-lake-ch-raw-7-2030-03-17-05-33-20-${UUID}`), ms('2030-03-17T05:33:20Z'));
  assert.is(firehoseObjectTime('raw/raw/dt=2030-03-17/messages.ndjson.gz'), undefined);
});

test('objects of a pipeline: its stream name, then a Firehose suffix or a reprocess output, never a longer stream name', () => {
  const day = 'datastore/telemetry/dt=2030-03-17/';
  const mine = 'iotctl-lake-pl-main';
  assert.ok(writtenByStream(`${day}${mine}-1-2030-03-17-05-33-20-${UUID}.parquet`, mine));
  assert.ok(writtenByStream(`${day}${mine}-3-2030-03-17-05-33-20-${UUID}`, mine));
  assert.ok(writtenByStream(`${day}${reprocessObjectName(mine, UUID, 'parquet')}`, mine));
  assert.ok(writtenByStream(`${day}${reprocessObjectName(mine, UUID, 'json.gz')}`, mine));
  // Pipelines "main_eu", "main-1", "main-2030" and "main-reprocess-x" have streams that start with "iotctl-lake-pl-main".
  assert.not.ok(writtenByStream(`${day}iotctl-lake-pl-main_eu-1-2030-03-17-05-33-20-${UUID}.parquet`, mine));
  assert.not.ok(writtenByStream(`${day}iotctl-lake-pl-main-1-1-2030-03-17-05-33-20-${UUID}.parquet`, mine));
  assert.not.ok(writtenByStream(`${day}iotctl-lake-pl-main-2030-1-2030-03-17-05-33-20-${UUID}.parquet`, mine));
  assert.not.ok(writtenByStream(`${day}iotctl-lake-pl-main-reprocess-x-1-2030-03-17-05-33-20-${UUID}.parquet`, mine));
  assert.not.ok(writtenByStream(`${day}${reprocessObjectName('iotctl-lake-pl-main-1', UUID, 'parquet')}`, mine));
  assert.not.ok(writtenByStream(`${day}notes.txt`, mine));
});

test('raw objects: gzip by its magic bytes, or as they are', () => {
  const text = '{"a":1}\n{"a":2}\n';
  assert.is(decompress(gzipSync(text)).toString(), text);
  assert.is(decompress(Buffer.from(text)).toString(), text);
  assert.is(decompress(new Uint8Array()).length, 0);
});

test('raw lines become records with stable ids; blank lines are skipped; bytes stay as they were', () => {
  const key = 'raw/raw/dt=2030-03-17/o.gz';
  const body = Buffer.concat([Buffer.from('{"a":1}\n\n{"a":\n'), Buffer.from([0xff, 0xfe]), Buffer.from('\r\n  \n{"b":2}')]);
  const records = rawRecords(key, body, 42);
  assert.equal(
    records.map((r) => [r.line, Buffer.from(r.data, 'base64'), r.approximateArrivalTimestamp]),
    [
      [1, Buffer.from('{"a":1}'), 42],
      [3, Buffer.from('{"a":'), 42],
      [4, Buffer.from([0xff, 0xfe, 0x0d]), 42],
      [6, Buffer.from('{"b":2}'), 42],
    ],
  );
  assert.equal(records.map((r) => r.recordId), [1, 3, 4, 6].map((l) => recordIdOf(key, l)));
  assert.is(recordIdOf(key, 1), recordIdOf(key, 1));
  assert.is.not(recordIdOf(key, 1), recordIdOf('raw/raw/dt=2030-03-17/p.gz', 1));
  assert.is(recordIdOf(key, 1).length, 32);
});

test("an object's time is kept inside the day it is filed under", () => {
  assert.is(clampToDay(ms('2030-03-17T05:00:00Z'), '2030-03-17'), ms('2030-03-17T05:00:00Z'));
  assert.is(clampToDay(ms('2030-03-18T00:04:00Z'), '2030-03-17'), ms('2030-03-17T23:59:59.999Z'));
  assert.is(clampToDay(ms('2030-03-16T23:00:00Z'), '2030-03-17'), ms('2030-03-17T00:00:00Z'));
});

test('Glue column types map to DuckDB types; nested types are refused', () => {
  assert.equal(
    ['string', 'bigint', 'int', 'double', 'float', 'boolean', 'timestamp', 'date', 'decimal(12,3)', 'DECIMAL', 'varchar(20)', 'smallint', 'tinyint'].map(duckType),
    ['VARCHAR', 'BIGINT', 'INTEGER', 'DOUBLE', 'FLOAT', 'BOOLEAN', 'TIMESTAMP', 'DATE', 'DECIMAL(12, 3)', 'DECIMAL(10, 0)', 'VARCHAR', 'SMALLINT', 'TINYINT'],
  );
  assert.is(duckType('array<string>'), undefined);
  assert.throws(() => parquetSelect([{ name: 'tags', type: 'array<string>' }], '/tmp/x'), /tags array<string>/);
});

test('the Parquet query types every table column in order; timestamps take epoch ms or text', () => {
  const sql = parquetSelect(
    [
      { name: '__message_id', type: 'string' },
      { name: '__received_at', type: 'timestamp' },
      { name: 'temp', type: 'double' },
      { name: "o'k", type: 'bigint' },
    ],
    "/tmp/it's.ndjson",
  );
  assert.is(
    sql,
    `SELECT "__message_id", CASE WHEN regexp_full_match("__received_at", '-?[0-9]+') THEN epoch_ms(CAST("__received_at" AS BIGINT)) ELSE CAST("__received_at" AS TIMESTAMP) END AS "__received_at", "temp", "o'k" ` +
      `FROM read_json('/tmp/it''s.ndjson', format = 'newline_delimited', maximum_object_size = 67108864, columns = {'__message_id': 'VARCHAR', '__received_at': 'VARCHAR', 'temp': 'DOUBLE', 'o''k': 'BIGINT'})`,
  );
  assert.is(lowerCaseKeys('{"__message_id":"m","tempF":1.5,"Site":"x"}'), '{"__message_id":"m","tempf":1.5,"site":"x"}');
});

test('shared AWS deps: DescribeThing is cached for its ttl; Invoke errors and answers; UpdateTable changes the columns only', async () => {
  let now = 0;
  const calls: string[] = [];
  const lookup = thingLookup(async (name) => (calls.push(name), name === 'ghost' ? undefined : { thingName: name, attributes: { site: 'n' } }), 1000, () => now);
  assert.equal(await lookup('d1'), { thingName: 'd1', thingTypeName: undefined, attributes: { site: 'n' } });
  assert.is(await lookup('ghost'), undefined);
  await lookup('d1');
  now = 1000;
  await lookup('d1');
  assert.equal(calls, ['d1', 'ghost', 'd1']);

  const invoke = lambdaInvoke(async (_fn, payload) => ({ Payload: Buffer.from(JSON.stringify((JSON.parse(Buffer.from(payload).toString()) as unknown[]).length)) }));
  assert.is(await invoke('f', [{}, {}]), 2);
  const failing = lambdaInvoke(async () => ({ FunctionError: 'Unhandled', Payload: Buffer.from('{"errorMessage":"boom"}') }));
  await failing('f', []).then(
    () => assert.unreachable(),
    (e: Error) => assert.is(e.message, 'Unhandled: {"errorMessage":"boom"}'),
  );

  const table = { Name: 't', TableType: 'EXTERNAL_TABLE', Parameters: { a: 'b' }, PartitionKeys: [{ Name: 'dt', Type: 'string' }], StorageDescriptor: { Location: 's3://b/x/', Columns: [] } };
  assert.equal(tableInputWithColumns(table, [{ name: 'c', type: 'bigint' }]), {
    Name: 't',
    TableType: 'EXTERNAL_TABLE',
    Parameters: { a: 'b' },
    PartitionKeys: [{ Name: 'dt', Type: 'string' }],
    StorageDescriptor: { Location: 's3://b/x/', Columns: [{ Name: 'c', Type: 'bigint' }] },
  });
});

test.run();
