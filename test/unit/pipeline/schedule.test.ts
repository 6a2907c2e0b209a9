import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fireTimesBetween, nextFireTime, parseSchedule, ScheduleError } from '../../../src/iot/pipeline/schedule.js';

const t = (iso: string) => Date.parse(iso);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
const next = (expr: string, after: string, anchor = 0) => iso(nextFireTime(parseSchedule(expr), t(after), anchor));

test('rate schedules fire every period from their anchor', () => {
  const anchor = t('2030-01-01T00:00:30Z');
  assert.equal(next('rate(5 minutes)', '2030-01-01T00:00:00Z', anchor), '2030-01-01T00:00:30.000Z');
  assert.equal(next('rate(5 minutes)', '2030-01-01T00:00:30Z', anchor), '2030-01-01T00:05:30.000Z');
  assert.equal(next('rate(5 minutes)', '2030-01-01T00:07:00Z', anchor), '2030-01-01T00:10:30.000Z');
  assert.equal(next('rate(1 hour)', '2030-01-01T10:00:30Z', anchor), '2030-01-01T11:00:30.000Z');
  assert.equal(next('rate(2 days)', '2030-01-01T00:00:30Z', anchor), '2030-01-03T00:00:30.000Z');
});

test('rate units must be singular for 1 and plural above, as AWS requires', () => {
  assert.throws(() => parseSchedule('rate(1 minutes)'), /rate\(1 minute\)/);
  assert.throws(() => parseSchedule('rate(5 minute)'), /rate\(5 minutes\)/);
  assert.throws(() => parseSchedule('rate(0 minutes)'), (e: unknown) => e instanceof ScheduleError);
  assert.throws(() => parseSchedule('rate(5 weeks)'), /unknown rate unit/);
});

test('cron: fixed time every day, in UTC', () => {
  assert.equal(next('cron(0 2 * * ? *)', '2030-01-01T01:59:00Z'), '2030-01-01T02:00:00.000Z');
  assert.equal(next('cron(0 2 * * ? *)', '2030-01-01T02:00:00Z'), '2030-01-02T02:00:00.000Z');
  assert.equal(next('cron(0 2 * * ? *)', '2030-12-31T03:00:00Z'), '2031-01-01T02:00:00.000Z');
});

test('cron: steps, ranges, lists and names', () => {
  assert.equal(next('cron(0/15 * * * ? *)', '2030-01-01T00:16:00Z'), '2030-01-01T00:30:00.000Z');
  assert.equal(next('cron(5,35 8-9 * * ? *)', '2030-01-01T09:40:00Z'), '2030-01-02T08:05:00.000Z');
  // 2030-01-05 is a Saturday: the next weekday run is Monday the 7th.
  assert.equal(next('cron(30 6 ? * MON-FRI *)', '2030-01-04T07:00:00Z'), '2030-01-07T06:30:00.000Z');
  assert.equal(next('cron(0 0 1 JAN,JUL ? *)', '2030-02-01T00:00:00Z'), '2030-07-01T00:00:00.000Z');
  // Day-of-week numbers: 1 is Sunday. 2030-01-06 is a Sunday.
  assert.equal(next('cron(0 12 ? * 1 *)', '2030-01-01T00:00:00Z'), '2030-01-06T12:00:00.000Z');
});

test('cron: L, W and # in the day fields', () => {
  assert.equal(next('cron(0 0 L * ? *)', '2030-02-01T00:00:00Z'), '2030-02-28T00:00:00.000Z');
  assert.equal(next('cron(0 0 L * ? *)', '2032-02-01T00:00:00Z'), '2032-02-29T00:00:00.000Z');
  // 2030-06-15 is a Saturday: 15W is Friday the 14th.
  assert.equal(next('cron(0 0 15W * ? *)', '2030-06-01T00:00:00Z'), '2030-06-14T00:00:00.000Z');
  // The second Tuesday of March 2030 is the 12th.
  assert.equal(next('cron(0 9 ? * TUE#2 *)', '2030-03-01T00:00:00Z'), '2030-03-12T09:00:00.000Z');
  // The last Friday of January 2030 is the 25th.
  assert.equal(next('cron(0 9 ? * 6L *)', '2030-01-01T00:00:00Z'), '2030-01-25T09:00:00.000Z');
});

test('cron: year field and a schedule that never fires again', () => {
  assert.equal(next('cron(0 0 1 1 ? 2031-2032)', '2030-06-01T00:00:00Z'), '2031-01-01T00:00:00.000Z');
  assert.equal(next('cron(0 0 1 1 ? 2031)', '2031-06-01T00:00:00Z'), undefined);
});

test('cron syntax errors say what is wrong', () => {
  assert.throws(() => parseSchedule('cron(0 2 * * *)'), /6 fields/);
  assert.throws(() => parseSchedule('cron(0 2 * * * *)'), /exactly one of day-of-month and day-of-week must be \?/);
  assert.throws(() => parseSchedule('cron(61 2 * * ? *)'), /"61" is not valid in the minutes field/);
  assert.throws(() => parseSchedule('cron(0 2 ? * FUNDAY *)'), /day-of-week/);
  assert.throws(() => parseSchedule('every day'), /not a schedule expression/);
});

test('fireTimesBetween lists the fire times in a window', () => {
  const times = fireTimesBetween(parseSchedule('cron(0 * * * ? *)'), t('2030-01-01T00:30:00Z'), t('2030-01-01T03:00:00Z'));
  assert.equal(times.map(iso), ['2030-01-01T01:00:00.000Z', '2030-01-01T02:00:00.000Z', '2030-01-01T03:00:00.000Z']);
});

test.run();
