import { AthenaClient, GetQueryExecutionCommand, GetQueryResultsCommand, StartQueryExecutionCommand, StopQueryExecutionCommand, type QueryExecutionState, type Row } from '@aws-sdk/client-athena';
import { BatchCreatePartitionCommand, CreateDatabaseCommand, CreateTableCommand } from '@aws-sdk/client-glue';
import { mockClient } from 'aws-sdk-client-mock';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type QueryProgress } from '../../src/ports.js';
import { athenaCostUsd, athenaParameter, AwsAthena, tableFormat } from '../../src/targets/aws/athena.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { CancelledError, UserError } from '../../src/ui/errors.js';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';

// Athena and Glue against moto_server; Athena's paging and FAILED state through a stateful fake, because
// moto's GetQueryResults ignores MaxResults and its executions never fail.

let moto: Moto;
let restoreEnv: () => void;
const settings = { database: 'iotctl', workgroup: 'primary' };
const fastPoll = { initialMs: 5, factor: 1.5, maxMs: 20 };

test.before(async () => {
  moto = await startMoto();
  restoreEnv = useEnv(moto.env);
});
test.after(async () => {
  restoreEnv();
  await moto.stop();
});
test.before.each(async () => {
  await moto.reset();
});

async function motoApi(path: string, body: unknown): Promise<void> {
  const res = await fetch(`${moto.url}/moto-api/${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  assert.ok(res.status < 300, `moto-api ${path}: ${res.status} ${await res.text()}`);
}

const cells = (...values: (string | undefined)[]): Row => ({ Data: values.map((v) => (v === undefined ? {} : { VarCharValue: v })) });

async function collect<T>(rows: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const r of rows) out.push(r);
  return out;
}

test('moto: a SELECT runs, the header row is skipped, and values take their column types', async () => {
  const types = ['varchar', 'integer', 'bigint', 'bigint', 'double', 'decimal', 'boolean', 'date', 'timestamp'];
  const names = ['device_id', 'n', 'total', 'huge', 'avg_temp', 'price', 'ok', 'dt', 'at'];
  await motoApi('static/athena/query-results', {
    results: [
      {
        column_info: names.map((Name, i) => ({ Name, Label: Name, Type: types[i], Nullable: 'UNKNOWN', CaseSensitive: false })),
        rows: [
          cells(...names),
          cells('sensor-1', '3', '42', '9007199254740993', '21.5', '10.25', 'true', '2030-01-31', '2030-01-31 10:00:00.000'),
          cells('sensor-2', undefined, '-7', '12', 'NaN', '0.10', 'false', undefined, '2030-01-31 11:00:00.000'),
        ],
      },
    ],
  });
  const aws = new AwsClients({});
  const progress: QueryProgress[] = [];
  const query = await new AwsAthena(aws, settings, fastPoll).run('SELECT * FROM telemetry WHERE device_id = ? AND n > ?', { params: ['sensor-1', '2'], onProgress: (p) => progress.push(p) });

  assert.equal(query.columns, names.map((name, i) => ({ name, type: types[i] })));
  const rows = await collect(query.rows);
  assert.equal(rows.length, 2, 'the header row is not a data row');
  assert.equal(rows[0], ['sensor-1', 3, 42, '9007199254740993', 21.5, 10.25, true, '2030-01-31', '2030-01-31 10:00:00.000']);
  assert.equal(rows[1]!.slice(0, 4), ['sensor-2', null, -7, 12]);
  assert.ok(Number.isNaN(rows[1]![4]));
  assert.equal(rows[1]![6], false);
  assert.is(rows[1]![7], null, 'a cell without VarCharValue is null');

  const stats = query.stats();
  assert.is(stats.rows, 2);
  assert.is(stats.bytesExact, true);
  assert.match(stats.queryId!, /^[0-9a-f-]{36}$/);
  assert.is(progress.at(-1)!.state, 'SUCCEEDED');

  // What AWS was asked: the workgroup, the database, and the parameters as Athena literals.
  const { client } = await aws.get('athena');
  const seen = (await client.send(new GetQueryExecutionCommand({ QueryExecutionId: stats.queryId }))).QueryExecution!;
  assert.is(seen.WorkGroup, 'primary');
  assert.is(seen.QueryExecutionContext?.Database, 'iotctl');
  assert.equal(seen.ExecutionParameters, ["'sensor-1'", '2']);
  aws.destroy();
});

test('moto: progress follows the query through QUEUED and RUNNING to SUCCEEDED', async () => {
  // moto moves one state on every second GetQueryExecution.
  await motoApi('state-manager/set-transition', { model_name: 'athena::execution', transition: { progression: 'manual', times: 2 } });
  try {
    const aws = new AwsClients({});
    const progress: QueryProgress[] = [];
    const query = await new AwsAthena(aws, { ...settings, outputLocation: 's3://results/athena/' }, fastPoll).run('SELECT 1', { onProgress: (p) => progress.push(p) });
    assert.equal([...new Set(progress.map((p) => p.state))], ['QUEUED', 'RUNNING', 'SUCCEEDED']);
    assert.ok(progress.every((p, i) => i === 0 || p.elapsedMs >= progress[i - 1]!.elapsedMs));
    assert.equal(await collect(query.rows), [], 'moto returns no rows when none were seeded');
    aws.destroy();
  } finally {
    await motoApi('state-manager/unset-transition', { model_name: 'athena::execution' });
  }
});

test('moto: Ctrl-C while the query runs calls StopQueryExecution and ends as cancelled (exit 2)', async () => {
  // The query stays QUEUED, as a long query would.
  await motoApi('state-manager/set-transition', { model_name: 'athena::execution', transition: { progression: 'manual', times: 1_000_000 } });
  try {
    const aws = new AwsClients({});
    const ctl = new AbortController();
    let polls = 0;
    const error = await new AwsAthena(aws, settings, fastPoll)
      .run('SELECT * FROM telemetry', { signal: ctl.signal, onProgress: () => ++polls === 3 && ctl.abort() })
      .then(() => undefined, (e: unknown) => e);
    assert.instance(error, CancelledError);
    assert.is((error as CancelledError).exitCode, 2);
    const queryId = /([0-9a-f-]{36})/.exec((error as Error).message)?.[1];
    assert.ok(queryId, `the message names the query: ${(error as Error).message}`);
    const { client } = await aws.get('athena');
    const after = await client.send(new GetQueryExecutionCommand({ QueryExecutionId: queryId }));
    assert.is(after.QueryExecution?.Status?.State, 'CANCELLED', 'moto saw StopQueryExecution');
    aws.destroy();
  } finally {
    await motoApi('state-manager/unset-transition', { model_name: 'athena::execution' });
  }
});

test('moto: athena tables reads the Glue Data Catalog (columns with partition keys, location, format, partition count)', async () => {
  const aws = new AwsClients({});
  const { client: glue } = await aws.get('glue');
  await glue.send(new CreateDatabaseCommand({ DatabaseInput: { Name: 'iotctl' } }));
  await glue.send(
    new CreateTableCommand({
      DatabaseName: 'iotctl',
      TableInput: {
        Name: 'telemetry',
        PartitionKeys: [{ Name: 'dt', Type: 'date' }],
        StorageDescriptor: {
          Location: 's3://lake/datastore/telemetry/',
          Columns: [
            { Name: 'device_id', Type: 'string' },
            { Name: 'temperature', Type: 'double' },
          ],
          InputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat',
          SerdeInfo: { SerializationLibrary: 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe' },
        },
      },
    }),
  );
  await glue.send(
    new CreateTableCommand({
      DatabaseName: 'iotctl',
      TableInput: {
        Name: 'raw_messages',
        StorageDescriptor: { Location: 's3://lake/channel/raw/', Columns: [{ Name: 'payload', Type: 'string' }], SerdeInfo: { SerializationLibrary: 'org.openx.data.jsonserde.JsonSerDe' } },
      },
    }),
  );
  const days = ['2030-01-30', '2030-01-31', '2030-02-01'];
  await glue.send(
    new BatchCreatePartitionCommand({
      DatabaseName: 'iotctl',
      TableName: 'telemetry',
      PartitionInputList: days.map((dt) => ({ Values: [dt], StorageDescriptor: { Location: `s3://lake/datastore/telemetry/dt=${dt}/` } })),
    }),
  );
  const tables = await new AwsAthena(aws, settings).tables();
  assert.equal(tables, [
    { table: 'raw_messages', kind: 'table', format: 'json', location: 's3://lake/channel/raw/', columns: [{ name: 'payload', type: 'string' }] },
    {
      table: 'telemetry',
      kind: 'table',
      format: 'parquet',
      location: 's3://lake/datastore/telemetry/',
      partitions: 3,
      columns: [
        { name: 'device_id', type: 'string' },
        { name: 'temperature', type: 'double' },
        { name: 'dt', type: 'date' },
      ],
    },
  ]);

  const missing = await new AwsAthena(aws, { ...settings, database: 'nope' }).tables().then(() => undefined, (e: unknown) => e);
  // A user-facing state with its fix, not a plain error printed as a bug.
  assert.instance(missing, UserError);
  assert.is((missing as UserError).code, 'DATABASE_NOT_FOUND');
  assert.match((missing as Error).message, /Glue database "nope" does not exist/);
  assert.match((missing as UserError).hint!, /iotctl analytics apply/);
  aws.destroy();
});

// ---------------------------------------------------------------- a stateful fake where moto cannot serve

/**
 * Athena as far as paging goes: a finished query whose result set is `total` rows (plus the header row),
 * served in pages of at most MaxResults (Athena's limit is 1,000), with an opaque NextToken per page.
 */
function fakeAthena(total: number, opts: { state?: QueryExecutionState; reason?: string } = {}) {
  const mock = mockClient(AthenaClient);
  const tokens = new Map<string, number>();
  mock.on(StartQueryExecutionCommand).resolves({ QueryExecutionId: 'q-1' });
  mock.on(GetQueryExecutionCommand).resolves({
    QueryExecution: {
      QueryExecutionId: 'q-1',
      StatementType: 'DML',
      Status: { State: opts.state ?? 'SUCCEEDED', StateChangeReason: opts.reason },
      Statistics: { DataScannedInBytes: 123_456 },
    },
  });
  mock.on(StopQueryExecutionCommand).resolves({});
  mock.on(GetQueryResultsCommand).callsFake((input: { MaxResults?: number; NextToken?: string }) => {
    const max = Math.min(input.MaxResults ?? 1000, 1000);
    const start = input.NextToken === undefined ? 0 : tokens.get(input.NextToken);
    if (start === undefined) throw Object.assign(new Error('invalid NextToken'), { name: 'InvalidRequestException' });
    // Position 0 is the header row; data row i sits at position i + 1.
    const rows: Row[] = [];
    for (let pos = start; pos < Math.min(start + max, total + 1); pos++) rows.push(pos === 0 ? cells('seq', 'device_id') : cells(String(pos - 1), `sensor-${(pos - 1) % 7}`));
    const next = start + max;
    let NextToken: string | undefined;
    if (next < total + 1) {
      NextToken = `tok-${tokens.size}-${next}`;
      tokens.set(NextToken, next);
    }
    return {
      ResultSet: { Rows: rows, ResultSetMetadata: { ColumnInfo: [{ Name: 'seq', Type: 'bigint' }, { Name: 'device_id', Type: 'varchar' }] } },
      NextToken,
    };
  });
  return mock;
}

test('fake: results past 1,000 rows are paged with NextToken, every row once and in order, fetched lazily', async () => {
  const mock = fakeAthena(2_503);
  try {
    const aws = new AwsClients({ region: 'us-east-1' });
    const query = await new AwsAthena(aws, settings, fastPoll).run('SELECT seq, device_id FROM telemetry');
    assert.is(mock.commandCalls(GetQueryResultsCommand).length, 1, 'only the first page before iterating');

    const seqs: number[] = [];
    const iterator = query.rows[Symbol.asyncIterator]();
    for (let i = 0; i < 10; i++) seqs.push((await iterator.next()).value[0] as number);
    assert.is(mock.commandCalls(GetQueryResultsCommand).length, 1, 'no page read ahead of the consumer');
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) seqs.push(r.value[0] as number);

    assert.is(seqs.length, 2_503);
    assert.ok(seqs.every((s, i) => s === i), 'each row once, in order');
    const calls = mock.commandCalls(GetQueryResultsCommand).map((c) => c.args[0].input);
    assert.is(calls.length, 3);
    assert.ok(calls.every((c) => c.MaxResults === 1000));
    assert.equal(calls.map((c) => c.NextToken === undefined), [true, false, false]);
    assert.equal(query.stats(), { rows: 2_503, bytesScanned: 123_456, bytesExact: true, elapsedMs: query.stats().elapsedMs, queryId: 'q-1' });
    aws.destroy();
  } finally {
    mock.restore();
  }
});

test('fake: a FAILED query is a user error with Athena\'s reason and the query id', async () => {
  const mock = fakeAthena(0, { state: 'FAILED', reason: "COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved" });
  try {
    const aws = new AwsClients({ region: 'us-east-1' });
    const error = await new AwsAthena(aws, settings, fastPoll).run('SELECT nope FROM telemetry').then(() => undefined, (e: unknown) => e);
    assert.instance(error, UserError);
    assert.not.instance(error, CancelledError);
    assert.is((error as UserError).exitCode, 1);
    assert.is((error as UserError).code, 'ATHENA_QUERY_FAILED');
    assert.match((error as Error).message, "Athena query q-1 failed: COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved");
    assert.match((error as UserError).hint!, /athena tables/);
    assert.is(mock.commandCalls(GetQueryResultsCommand).length, 0);
    aws.destroy();
  } finally {
    mock.restore();
  }
});

test('fake: Ctrl-C while reading pages stops reading and is cancelled, without StopQueryExecution (the query is done)', async () => {
  const mock = fakeAthena(5_000);
  try {
    const aws = new AwsClients({ region: 'us-east-1' });
    const ctl = new AbortController();
    const query = await new AwsAthena(aws, settings, fastPoll).run('SELECT 1', { signal: ctl.signal });
    let n = 0;
    const error = await (async () => {
      for await (const _ of query.rows) if (++n === 1500) ctl.abort();
    })().then(() => undefined, (e: unknown) => e);
    assert.instance(error, CancelledError);
    // Page 1 holds the header and 999 rows, page 2 the next 1,000: the page in hand is finished, no third is read.
    assert.is(n, 1999);
    assert.is(mock.commandCalls(GetQueryResultsCommand).length, 2);
    assert.is(mock.commandCalls(StopQueryExecutionCommand).length, 0);
    aws.destroy();
  } finally {
    mock.restore();
  }
});

test('cost: $5 per TB scanned, rounded up to the MB, 10 MB minimum; nothing scanned costs nothing', () => {
  assert.is(athenaCostUsd(0), 0);
  const tenMb = (10 * 1024 * 1024 * 5) / 1024 ** 4;
  assert.is(athenaCostUsd(1), tenMb);
  assert.is(athenaCostUsd(10 * 1024 * 1024), tenMb);
  assert.is(athenaCostUsd(1024 ** 4), 5);
  assert.is(athenaCostUsd(1024 ** 4 + 1), ((1024 * 1024 + 1) * 1024 * 1024 * 5) / 1024 ** 4);
});

test('parameters: Athena literals pass as they are, anything else becomes a quoted string', () => {
  assert.is(athenaParameter('42'), '42');
  assert.is(athenaParameter('-1.5e3'), '-1.5e3');
  assert.is(athenaParameter("'text'"), "'text'");
  assert.is(athenaParameter("DATE '2030-01-31'"), "DATE '2030-01-31'");
  assert.is(athenaParameter('TRUE'), 'TRUE');
  assert.is(athenaParameter('sensor-1'), "'sensor-1'");
  assert.is(athenaParameter("o'brien"), "'o''brien'");
});

test('formats: from the SerDe and input format', () => {
  const t = (SerializationLibrary: string, InputFormat = '') => tableFormat({ StorageDescriptor: { SerdeInfo: { SerializationLibrary }, InputFormat } });
  assert.is(t('org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'), 'parquet');
  assert.is(t('org.openx.data.jsonserde.JsonSerDe'), 'json');
  assert.is(t('org.apache.hive.hcatalog.data.JsonSerDe'), 'json');
  assert.is(t('org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe', 'org.apache.hadoop.mapred.TextInputFormat'), 'csv');
  assert.is(t('org.apache.hadoop.hive.ql.io.orc.OrcSerde'), 'orc');
  assert.is(tableFormat({ Parameters: { classification: 'Avro' } }), 'avro');
  assert.is(tableFormat({}), 'unknown');
});

test.run();
