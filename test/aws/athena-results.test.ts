import { PutObjectCommand, CreateBucketCommand, DeleteObjectCommand } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AwsAthena } from '../../src/targets/aws/athena.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';

// Large results streamed from the query's result object in S3, against moto_server through the realism proxy
// (which counts the calls and can refuse s3:GetObject). moto writes its own CSV at the output location from the
// rows seeded for GetQueryResults; each test replaces it with different rows once the query has started, so the
// rows a test reads show which path they came from.

let moto: Moto;
let restoreEnv: () => void;
const BUCKET = 'athena-results';
const settings = { database: 'iotctl', workgroup: 'primary', outputLocation: `s3://${BUCKET}/q/` };
// Slow enough that the test's PutObject lands between StartQueryExecution and SUCCEEDED (moto: 2 polls per state).
const poll = { initialMs: 150, factor: 1, maxMs: 150 };

test.before(async () => {
  moto = await startMoto({ realism: { latencyMs: 0 } });
  restoreEnv = useEnv(moto.env);
});
test.after(async () => {
  restoreEnv();
  await moto.stop();
});
test.before.each(async () => {
  await moto.reset();
  const aws = new AwsClients({});
  await (await aws.get('s3')).client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  aws.destroy();
  await motoApi('state-manager/set-transition', { model_name: 'athena::execution', transition: { progression: 'manual', times: 2 } });
});
test.after.each(async () => {
  await motoApi('state-manager/unset-transition', { model_name: 'athena::execution' });
  moto.realism!.set({ deny: [] });
});

async function motoApi(path: string, body: unknown): Promise<void> {
  const res = await fetch(`${moto.url}/moto-api/${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  assert.ok(res.status < 300, `moto-api ${path}: ${res.status} ${await res.text()}`);
}

const COLUMNS = [
  { Name: 'device_id', Type: 'varchar' },
  { Name: 'n', Type: 'integer' },
  { Name: 'temperature', Type: 'double' },
  { Name: 'note', Type: 'varchar' },
];
const cells = (...values: (string | undefined)[]) => ({ Data: values.map((v) => (v === undefined ? {} : { VarCharValue: v })) });

/** What GetQueryResults answers (moto's seeded rows): two rows. */
async function seedPages(): Promise<void> {
  await motoApi('static/athena/query-results', {
    results: [{ column_info: COLUMNS.map((c) => ({ ...c, Label: c.Name, Nullable: 'UNKNOWN', CaseSensitive: false })), rows: [cells('device_id', 'n', 'temperature', 'note'), cells('paged-1', '1', '20.5', 'x'), cells('paged-2', '2', '21.5', undefined)] }],
  });
}

/** The result object as Athena writes it: every value quoted, "" for a quote, NULL empty and unquoted. */
const OBJECT_ROWS = 2500;
function objectCsv(): string {
  let text = '"device_id","n","temperature","note"\n';
  for (let i = 0; i < OBJECT_ROWS; i++) text += `"object-${i}","${i}","${(i / 10).toFixed(1)}",${i % 3 === 0 ? '' : i % 3 === 1 ? '"a ""quoted"", multi\nline note"' : '""'}\n`;
  return text;
}

/** Replace the result object of a started query with OBJECT_ROWS different rows. */
function replaceObject(aws: AwsClients, queryId: string): Promise<unknown> {
  return aws.get('s3').then(({ client }) => client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `q/${queryId}.csv`, Body: objectCsv() })));
}

const callsOf = (op: string, since: number) => moto.realism!.calls().slice(since).filter((c) => c.key === op);

test('readAll streams the rows from the result object (one GetObject, one GetQueryResults for the column types)', async () => {
  await seedPages();
  const aws = new AwsClients({});
  let put: Promise<unknown> | undefined;
  const since = moto.realism!.calls().length;
  const query = await new AwsAthena(aws, settings, poll).run('SELECT * FROM telemetry', { readAll: true, onStarted: (id) => (put = replaceObject(aws, id)) });
  await put;
  const rows: unknown[][] = [];
  for await (const r of query.rows) rows.push(r);

  assert.is(rows.length, OBJECT_ROWS, 'the object\'s rows, not the two GetQueryResults answers');
  assert.equal(rows[0], ['object-0', 0, 0, null], 'NULL is an empty unquoted field');
  assert.equal(rows[1], ['object-1', 1, 0.1, 'a "quoted", multi\nline note'], 'quotes, commas and newlines inside a value');
  assert.equal(rows[2], ['object-2', 2, 0.2, ''], 'an empty string is ""');
  assert.equal(rows.at(-1)![0], `object-${OBJECT_ROWS - 1}`);
  assert.equal(query.columns.map((c) => c.type), ['varchar', 'integer', 'double', 'varchar']);
  const stats = query.stats();
  assert.is(stats.rows, OBJECT_ROWS);
  assert.is(stats.resultObject, `s3://${BUCKET}/q/${stats.queryId}.csv`);
  assert.is(callsOf('s3:GetObject', since).length, 1);
  assert.is(callsOf('athena:GetQueryResults', since).length, 1);
  assert.equal(moto.realism!.violations(), [], 'every request conforms to the AWS models');
  aws.destroy();
});

test('without readAll (a table, --json) the rows are paged from GetQueryResults; the object is not read', async () => {
  await seedPages();
  const aws = new AwsClients({});
  const since = moto.realism!.calls().length;
  let put: Promise<unknown> | undefined;
  const query = await new AwsAthena(aws, settings, poll).run('SELECT * FROM telemetry', { onStarted: (id) => (put = replaceObject(aws, id)) });
  await put;
  const rows: unknown[][] = [];
  for await (const r of query.rows) rows.push(r);
  assert.equal(rows, [['paged-1', 1, 20.5, 'x'], ['paged-2', 2, 21.5, null]]);
  assert.is(query.stats().resultObject, undefined);
  assert.is(callsOf('s3:GetObject', since).length, 0);
  aws.destroy();
});

test('AccessDenied on the result object: falls back to paging, and says so once', async () => {
  await seedPages();
  moto.realism!.set({ deny: ['s3:GetObject'] });
  const aws = new AwsClients({});
  const notices: string[] = [];
  let put: Promise<unknown> | undefined;
  const query = await new AwsAthena(aws, settings, poll).run('SELECT * FROM telemetry', { readAll: true, onNotice: (m) => notices.push(m), onStarted: (id) => (put = replaceObject(aws, id)) });
  await put;
  const rows: unknown[][] = [];
  for await (const r of query.rows) rows.push(r);
  assert.equal(rows.map((r) => r[0]), ['paged-1', 'paged-2']);
  assert.is(notices.length, 1);
  assert.match(notices[0]!, /Reading the result object s3:\/\/athena-results\/q\/[0-9a-f-]+\.csv was refused \(AccessDenied\); paging GetQueryResults instead/);
  assert.is(query.stats().resultObject, undefined);
  aws.destroy();
});

test('a result object that is gone (expired by a lifecycle rule) falls back to paging too', async () => {
  await seedPages();
  const aws = new AwsClients({});
  let removed: Promise<unknown> | undefined;
  const notices: string[] = [];
  const query = await new AwsAthena(aws, settings, poll).run('SELECT * FROM telemetry', {
    readAll: true,
    onNotice: (m) => notices.push(m),
    onStarted: (id) => (removed = aws.get('s3').then(({ client }) => client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: `q/${id}.csv` })))),
  });
  await removed;
  const rows: unknown[][] = [];
  for await (const r of query.rows) rows.push(r);
  assert.equal(rows.map((r) => r[0]), ['paged-1', 'paged-2']);
  assert.match(notices[0]!, /NoSuchKey/);
  aws.destroy();
});

test('cli: athena run --format csv --out writes the streamed rows', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-athena-out-'));
  try {
    await seedPages();
    writeFileSync(join(dir, 'iotctl.yaml'), `project: fleet\ntarget: aws\nathena: { database: iotctl, workgroup: primary, outputLocation: 's3://${BUCKET}/q/' }\n`);
    // The CLI's query id is only known once it runs: replace every .csv that appears under q/ while it polls.
    const aws = new AwsClients({});
    const { client, sdk } = await aws.get('s3');
    let stop = false;
    const replaced = new Set<string>();
    const watcher = (async () => {
      while (!stop) {
        const list = await client.send(new sdk.ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'q/' }));
        for (const o of list.Contents ?? []) if (o.Key!.endsWith('.csv') && !replaced.has(o.Key!)) replaced.add(o.Key!), await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: o.Key!, Body: objectCsv() }));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const out = join(dir, 'out.csv');
    let stderr = '';
    try {
      // Not execFileSync: the realism proxy answering the CLI runs in this process.
      ({ stderr } = await promisify(execFile)(process.execPath, [join(process.cwd(), 'bin/run.js'), 'athena', 'run', 'SELECT * FROM telemetry', '--format', 'csv', '--out', out], { cwd: dir, env: { ...process.env, ...moto.env } }));
    } catch (e) {
      stderr = `failed: ${String((e as { stderr?: string }).stderr ?? e)}`;
    } finally {
      stop = true;
      await watcher;
      aws.destroy();
    }
    assert.not.match(stderr, /failed|Warning/);
    assert.match(stderr, /Wrote 2500 row\(s\)/);
    const text = readFileSync(out, 'utf8');
    assert.ok(text.startsWith('device_id,n,temperature,note\nobject-0,0,0,\n'), text.slice(0, 200));
    assert.is(text.split('\nobject-').length - 1, OBJECT_ROWS);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
