/**
 * Trino/Athena date and time functions on the local lake, with the argument order and the results the
 * Trino documentation gives ("Date and time functions and operators",
 * https://trino.io/docs/current/functions/datetime.html), so a query written for Athena runs unchanged.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Catalog } from '../../../src/targets/local/lake/catalog.js';
import { setupLake } from './helpers.js';

let lake: Awaited<ReturnType<typeof setupLake>>;
let catalog: Catalog;

test.before(async () => {
  lake = await setupLake({ channels: [], datastores: [] }, { athena: { database: 'my-fleet' } });
  catalog = await Catalog.open({ db: lake.db, stateDir: lake.dir, database: 'my-fleet', datastores: [], channels: [] });
});
test.after(() => {
  catalog.close();
  lake.cleanup();
});

/** One value, as text (CAST AS VARCHAR), so the expected values read like the documentation's. */
async function value(expression: string): Promise<unknown> {
  const r = await catalog.query(`SELECT CAST(${expression} AS VARCHAR) AS v`);
  return r.rows[0]![0];
}

const cases: Array<[string, string]> = [
  // date_add(unit, value, timestamp)
  [`date_add('second', 86, TIMESTAMP '2020-03-01 00:00:00')`, '2020-03-01 00:01:26'],
  [`date_add('hour', 9, TIMESTAMP '2020-03-01 00:00:00')`, '2020-03-01 09:00:00'],
  [`date_add('day', -1, TIMESTAMP '2020-03-01 00:00:00')`, '2020-02-29 00:00:00'],
  [`date_add('month', 1, TIMESTAMP '2012-10-31 01:00:00')`, '2012-11-30 01:00:00'],
  [`date_add('year', 1, TIMESTAMP '2020-02-29 12:00:00')`, '2021-02-28 12:00:00'],
  // date_diff(unit, timestamp1, timestamp2): whole units elapsed
  [`date_diff('second', TIMESTAMP '2020-03-01 00:00:00', TIMESTAMP '2020-03-02 00:00:00')`, '86400'],
  [`date_diff('hour', TIMESTAMP '2020-03-01 00:00:00', TIMESTAMP '2020-03-02 00:00:00')`, '24'],
  [`date_diff('day', DATE '2020-03-01', DATE '2020-03-02')`, '1'],
  [`date_diff('second', TIMESTAMP '2020-06-01 12:30:45.000000', TIMESTAMP '2020-06-02 12:30:45.123456')`, '86400'],
  [`date_diff('millisecond', TIMESTAMP '2020-06-01 12:30:45.000000', TIMESTAMP '2020-06-02 12:30:45.123456')`, '86400123'],
  [`date_diff('day', TIMESTAMP '2020-01-01 23:00:00', TIMESTAMP '2020-01-02 01:00:00')`, '0'],
  // date_trunc(unit, x)
  [`date_trunc('second', TIMESTAMP '2001-08-22 03:04:05.321')`, '2001-08-22 03:04:05'],
  [`date_trunc('minute', TIMESTAMP '2001-08-22 03:04:05.321')`, '2001-08-22 03:04:00'],
  [`date_trunc('hour', TIMESTAMP '2001-08-22 03:04:05.321')`, '2001-08-22 03:00:00'],
  [`date_trunc('day', TIMESTAMP '2001-08-22 03:04:05.321')`, '2001-08-22 00:00:00'],
  [`date_trunc('week', TIMESTAMP '2001-08-22 03:04:05.321')`, '2001-08-20 00:00:00'],
  [`date_trunc('month', TIMESTAMP '2001-08-22 03:04:05.321')`, '2001-08-01 00:00:00'],
  [`date_trunc('quarter', TIMESTAMP '2001-08-22 03:04:05.321')`, '2001-07-01 00:00:00'],
  [`date_trunc('year', TIMESTAMP '2001-08-22 03:04:05.321')`, '2001-01-01 00:00:00'],
  // date_format with MySQL specifiers
  [`date_format(TIMESTAMP '2022-10-20 05:10:00', '%m-%d-%Y %H')`, '10-20-2022 05'],
  [`date_format(TIMESTAMP '2022-10-20 05:10:07', '%Y-%m-%d %H:%i:%s')`, '2022-10-20 05:10:07'],
  [`date_format(TIMESTAMP '2022-10-20 05:10:07', '%M %e, %Y %T %% %W')`, 'October 20, 2022 05:10:07 % Thursday'],
  // from_iso8601_timestamp: the instant (shown in UTC, the session time zone)
  [`from_iso8601_timestamp('2020-05-11T11:15:05')`, '2020-05-11 11:15:05+00'],
  [`from_iso8601_timestamp('2020-05-11T11:15:05.055+01:00')`, '2020-05-11 10:15:05.055+00'],
  // interval arithmetic
  [`TIMESTAMP '2012-08-08 01:00' + INTERVAL '29' HOUR`, '2012-08-09 06:00:00'],
  [`TIMESTAMP '2012-10-31 01:00' + INTERVAL '1' MONTH`, '2012-11-30 01:00:00'],
  [`TIMESTAMP '2012-10-31 01:00' - INTERVAL '1' MONTH`, '2012-09-30 01:00:00'],
  [`TIMESTAMP '2012-08-08 01:00' - INTERVAL '29' HOUR`, '2012-08-06 20:00:00'],
  [`CAST(DATE '2012-08-08' + INTERVAL '2' DAY AS DATE)`, '2012-08-10'],
  [`CAST(DATE '2012-08-08' - INTERVAL '2' DAY AS DATE)`, '2012-08-06'],
];

for (const [expression, expected] of cases) {
  test(expression, async () => {
    assert.is(await value(expression), expected);
  });
}

test('current_date is the UTC date, as in Athena', async () => {
  assert.is(await value('current_date'), new Date().toISOString().slice(0, 10));
});

test.run();
