import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseSpec, SpecError } from '../../../src/spec/loader.js';
import { specSchema } from '../../../src/spec/schema.js';
import { countCsvRecords } from '../../../src/targets/aws/analytics/datasets.js';
import { datasetWindowProblem, referencedTables, schedulePeriod, windowedDatasetSql } from '../../../src/targets/aws/analytics/dataset-sql.js';
import { deltaPeriod, lifecycleRules } from '../../../src/targets/aws/analytics/model.js';
import { UserError } from '../../../src/ui/errors.js';

// The datalake engine's dataset SQL and S3 lifecycle, pure: delta windows, referenced tables, schedule periods.

test('schedulePeriod: rate() and even crons have one period; weekday crons are uneven', () => {
  assert.equal(schedulePeriod('rate(1 hour)'), { seconds: 3600, even: true });
  assert.equal(schedulePeriod('rate(15 minutes)'), { seconds: 900, even: true });
  assert.equal(schedulePeriod('cron(0 2 * * ? *)'), { seconds: 86_400, even: true });
  assert.equal(schedulePeriod('cron(0/30 * * * ? *)'), { seconds: 1800, even: true });
  const weekdays = schedulePeriod('cron(0 2 ? * MON-FRI *)');
  assert.equal(weekdays, { seconds: 3 * 86_400, even: false });
});

test('referencedTables: identifiers only, not strings, comments or longer names', () => {
  const sql = `SELECT t.device, 'telemetry' AS label -- from auditlog\n FROM "Telemetry" t JOIN telemetry_old o ON true /* auditlog */ WHERE x = 'auditlog'`;
  assert.equal(referencedTables(sql, ['telemetry', 'auditlog', 'telemetry_old', 'other']), { unqualified: ['telemetry', 'telemetry_old'], qualified: [] });
  assert.equal(referencedTables('SELECT * FROM iotctl.telemetry JOIN "iotctl" . "auditlog" ON true JOIN other ON true', ['telemetry', 'auditlog', 'other']), {
    unqualified: ['other'],
    qualified: ['telemetry', 'auditlog'],
  });
});

test('windowedDatasetSql: each datastore read is shadowed by a CTE over the schedule period, with dt pruning', () => {
  const sql = windowedDatasetSql('SELECT device, avg(temp) FROM telemetry GROUP BY device;', {
    database: 'iotctl',
    tables: ['telemetry', 'auditlog'],
    deltaTime: { offsetSeconds: -300, timeExpression: '__received_at' },
    periodSeconds: 86_400,
  });
  assert.is(
    sql,
    `WITH "telemetry" AS (SELECT * FROM "iotctl"."telemetry" WHERE dt >= date_format(date_add('second', -173100, current_timestamp), '%Y-%m-%d') AND (__received_at) >= date_add('second', -86700, current_timestamp) AND (__received_at) < date_add('second', -300, current_timestamp))\nSELECT device, avg(temp) FROM telemetry GROUP BY device`,
  );
});

test('windowedDatasetSql: joins the SQL own WITH list; no deltaTime leaves the SQL as written', () => {
  const sql = windowedDatasetSql('with recent AS (SELECT * FROM telemetry) SELECT * FROM recent', {
    database: 'db',
    tables: ['telemetry'],
    deltaTime: { offsetSeconds: 0, timeExpression: 'from_unixtime(ts)' },
    periodSeconds: 3600,
  });
  assert.match(sql, /^WITH "telemetry" AS \(SELECT \* FROM "db"\."telemetry" WHERE .* < current_timestamp\), recent AS \(SELECT \* FROM telemetry\) SELECT \* FROM recent$/);
  assert.is(windowedDatasetSql(' SELECT 1; ', { database: 'db', tables: ['telemetry'] }), 'SELECT 1');
});

test('windowedDatasetSql: a datastore named with its database cannot be windowed: a clear error, not a silent full scan', () => {
  assert.throws(
    () => windowedDatasetSql('SELECT count(*) FROM iotctl.telemetry', { database: 'iotctl', tables: ['telemetry'], deltaTime: { offsetSeconds: 0, timeExpression: '__received_at' }, periodSeconds: 3600 }),
    (e: unknown) => e instanceof UserError && /<database>\.telemetry/.test(e.message) && /without the database/.test(e.hint ?? ''),
  );
});

const analytics = (datasets: unknown[]) =>
  specSchema.parse({ project: 'p', target: 'aws', analytics: { channels: [{ name: 'raw', retentionDays: 30 }], datastores: [{ name: 'telemetry', retentionDays: 365 }, { name: 'keep' }], datasets } }).analytics;

test('a deltaTime dataset needs a schedule with a fixed period on AWS', () => {
  const [hourly, manual, weekdays] = analytics([
    { name: 'hourly', sql: 'SELECT 1', schedule: 'rate(1 hour)', deltaTime: { timeExpression: '__received_at' } },
    { name: 'manual', sql: 'SELECT 1', deltaTime: { timeExpression: '__received_at' } },
    { name: 'weekdays', sql: 'SELECT 1', schedule: 'cron(0 2 ? * MON-FRI *)', deltaTime: { timeExpression: '__received_at' } },
  ]).datasets;
  assert.is(datasetWindowProblem(hourly!), undefined);
  assert.is(deltaPeriod(hourly!), 3600);
  assert.match(datasetWindowProblem(manual!)!, /needs a schedule/);
  assert.match(datasetWindowProblem(weekdays!)!, /uneven intervals/);
  assert.throws(() => deltaPeriod(weekdays!), (e: unknown) => e instanceof UserError && /weekdays/.test(e.message) && /rate\(/.test(e.hint ?? ''));
});

test('spec validate: a deltaTime dataset without a fixed-period schedule is refused at file:line:col on the aws target only', () => {
  const yaml = (target: string) =>
    [`project: p`, `target: ${target}`, 'analytics:', '  datasets:', '    - name: weekdays', '      sql: SELECT 1', '      schedule: cron(0 2 ? * MON-FRI *)', '      deltaTime:', '        timeExpression: __received_at', ''].join('\n');
  assert.not.throws(() => parseSpec(yaml('local')));
  try {
    parseSpec(yaml('aws'), 'iotctl.yaml');
    assert.unreachable('expected a SpecError');
  } catch (e) {
    if (!(e instanceof SpecError)) throw e;
    assert.equal(
      e.problems.map((p) => [`${p.line}:${p.col}`, p.path]),
      [['9:9', 'analytics.datasets[0].deltaTime']],
    );
    assert.match(e.problems[0]!.message, /uneven intervals/);
  }
});

test('lifecycleRules: retention of channels and datastores, and about versionsToKeep runs of scheduled content', () => {
  const a = analytics([
    { name: 'nightly', sql: 'SELECT 1', schedule: 'cron(0 2 * * ? *)', versionsToKeep: 7 },
    { name: 'hourly', sql: 'SELECT 1', schedule: 'rate(1 hour)', versionsToKeep: 30 },
    { name: 'adhoc', sql: 'SELECT 1' },
  ]);
  assert.equal(lifecycleRules(a), [
    { id: 'iotctl-channel-raw', prefix: 'raw/raw/', days: 30 },
    { id: 'iotctl-dataset-hourly', prefix: 'datasets/hourly/scheduled/', days: 2 },
    { id: 'iotctl-dataset-nightly', prefix: 'datasets/nightly/scheduled/', days: 7 },
    { id: 'iotctl-datastore-telemetry', prefix: 'datastore/telemetry/', days: 365 },
  ]);
});

test('countCsvRecords: quoted newlines are not records; a last line without a newline is', async () => {
  const count = (...chunks: string[]) => countCsvRecords(Readable.from(chunks.map((c) => Buffer.from(c))));
  assert.is(await count('"a","b"\n"1","x\ny"\n"2",'), 3);
  assert.is(await count('"a"\n', '"1"\n'), 2);
  assert.is(await count(''), 0);
  assert.is(await count('"a","b', '"\n"1","2"\n'), 2);
});

test.run();
