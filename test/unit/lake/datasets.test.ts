import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyAnalytics, planAnalytics } from '../../../src/targets/local/lake/apply.js';
import { DatasetRunner } from '../../../src/targets/local/lake/datasets.js';
import { DatasetScheduler, type SchedulerClock } from '../../../src/targets/local/lake/scheduler.js';
import { analyticsStatus } from '../../../src/targets/local/lake/status.js';
import { openStore } from '../../../src/targets/local/store.js';
import { components, day, message, setupLake, specWith, type AnalyticsInput } from './helpers.js';

const base: AnalyticsInput = {
  channels: [{ name: 'raw' }],
  datastores: [{ name: 'ds' }],
  pipelines: [{ name: 'p', channel: 'raw', datastore: 'ds' }],
};

async function feed(dir: string, db: ReturnType<typeof openStore>, msgs: ReturnType<typeof message>[]) {
  const c = await components(dir, db);
  await c.channels.putMessages('raw', msgs);
  await c.runner.runOnce();
  await c.close();
}

test('dataset run keeps content versions as CSV and prunes to versionsToKeep', async () => {
  const lake = await setupLake({ ...base, datasets: [{ name: 'per_device', sql: 'SELECT device, count(*) AS n, sum(v) AS total FROM ds GROUP BY device ORDER BY device;', versionsToKeep: 2 }] });
  try {
    const t = day('2030-07-01');
    await feed(lake.dir, lake.db, [message('a', t, { device: 'x', v: 1 }), message('b', t + 1, { device: 'y', v: 2 }), message('c', t + 2, { device: 'x', v: 3 })]);
    let now = t + 3_600_000;
    const runner = new DatasetRunner({ db: lake.db, stateDir: lake.dir, clock: () => now });
    const first = await runner.run('per_device');
    assert.equal(first.status, 'SUCCEEDED');
    assert.equal(first.rows, 2);
    assert.equal(first.preview, [
      ['x', 2, 4],
      ['y', 1, 2],
    ]);
    assert.equal(readFileSync(first.file!, 'utf8'), 'device,n,total\nx,2,4\ny,1,2\n');
    now += 1000;
    await feed(lake.dir, lake.db, [message('d', t + 5, { device: 'z', v: 10 })]);
    const second = await runner.run('per_device');
    now += 1000;
    const third = await runner.run('per_device');
    const versions = runner.versions('per_device').map((v) => v.version);
    assert.equal(versions, [third.version, second.version], 'the oldest version was pruned');
    assert.equal(readFileSync(runner.content('per_device').file, 'utf8'), 'device,n,total\nx,2,4\ny,1,2\nz,1,10\n');
    assert.throws(() => runner.content('per_device', first.version), /has no version/);
  } finally {
    lake.cleanup();
  }
});

test('deltaTime: each run sees only rows whose time falls after the previous window, minus the in-flight offset', async () => {
  const lake = await setupLake({
    ...base,
    datasets: [{ name: 'delta', sql: 'SELECT n FROM ds ORDER BY n', deltaTime: { offsetSeconds: -60, timeExpression: 'from_unixtime(ts)' } }],
  });
  try {
    const t = day('2030-07-02');
    const at = (n: number, secondsAfter: number) => message(`m${n}`, t + secondsAfter * 1000, { n, ts: t / 1000 + secondsAfter });
    await feed(lake.dir, lake.db, [at(1, 0), at(2, 100), at(3, 170)]);
    let now = t + 200_000; // window ends at 200 s - 60 s = 140 s
    const runner = new DatasetRunner({ db: lake.db, stateDir: lake.dir, clock: () => now });
    const first = await runner.run('delta', { trigger: 'schedule', scheduledFor: now });
    assert.equal(first.preview, [[1], [2]]);
    assert.equal([first.windowStart, first.windowEnd], [null, t + 140_000]);
    await feed(lake.dir, lake.db, [at(4, 250), at(5, 330)]);
    now = t + 400_000; // window [140 s, 340 s)
    const second = await runner.run('delta', { trigger: 'schedule', scheduledFor: now });
    assert.equal(second.preview, [[3], [4], [5]]);
    assert.equal([second.windowStart, second.windowEnd], [t + 140_000, t + 340_000]);
  } finally {
    lake.cleanup();
  }
});

function fakeClock(start: number) {
  const timers: { fn: () => void; ms: number }[] = [];
  const clock: SchedulerClock & { t: number; timers: typeof timers } = {
    t: start,
    timers,
    now: () => clock.t,
    setTimeout: (fn, ms) => {
      const timer = { fn, ms };
      timers.push(timer);
      return timer;
    },
    clearTimeout: (handle) => {
      const i = timers.indexOf(handle as (typeof timers)[number]);
      if (i >= 0) timers.splice(i, 1);
    },
  };
  return clock;
}

test('the scheduler runs rate and cron datasets on time and records runs missed while it was down', async () => {
  const lake = await setupLake(base);
  try {
    const t0 = Date.parse('2030-07-03T00:30:00Z');
    const spec = specWith({
      ...base,
      datasets: [
        { name: 'hourly', sql: 'SELECT count(*) AS n FROM ds', schedule: 'rate(1 hour)' },
        { name: 'nightly', sql: 'SELECT count(*) AS n FROM ds', schedule: 'cron(0 2 * * ? *)' },
      ],
    });
    applyAnalytics(lake.db, (await planAnalytics(lake.db, lake.dir, spec)).items, t0);
    const clock = fakeClock(t0);
    const runs: string[] = [];
    const datasets = new DatasetRunner({ db: lake.db, stateDir: lake.dir, clock: clock.now });
    const scheduler = new DatasetScheduler({
      db: lake.db,
      clock,
      graceMs: 60_000,
      maxSleepMs: 86_400_000,
      run: async (name, scheduledFor) => {
        runs.push(`${name}@${new Date(scheduledFor).toISOString()}`);
        await datasets.run(name, { trigger: 'schedule', scheduledFor });
      },
    });
    const at = async (iso: string) => {
      clock.t = Date.parse(iso);
      return scheduler.tick();
    };

    assert.equal((await at('2030-07-03T01:29:59Z')).ran, []);
    assert.equal((await at('2030-07-03T01:30:05Z')).ran, [{ dataset: 'hourly', scheduledFor: Date.parse('2030-07-03T01:30:00Z') }]);
    assert.equal((await at('2030-07-03T02:00:10Z')).ran, [{ dataset: 'nightly', scheduledFor: Date.parse('2030-07-03T02:00:00Z') }]);
    // The platform is down from 02:00 until 06:30:30: four hourly runs pass unnoticed.
    const after = await at('2030-07-03T06:30:30Z');
    assert.equal(after.ran, [{ dataset: 'hourly', scheduledFor: Date.parse('2030-07-03T06:30:00Z') }]);
    assert.equal(after.missed.map((m) => new Date(m.scheduledFor).toISOString().slice(11, 16)), ['02:30', '03:30', '04:30', '05:30']);
    assert.equal(runs, ['hourly@2030-07-03T01:30:00.000Z', 'nightly@2030-07-03T02:00:00.000Z', 'hourly@2030-07-03T06:30:00.000Z']);

    const status = await analyticsStatus(lake.db, lake.dir, clock.t);
    const hourly = status.datasets.find((d) => d.name === 'hourly')!;
    assert.equal(hourly.missedRuns, 4);
    assert.equal(hourly.recentMissed[0], '2030-07-03T05:30:00.000Z');
    assert.equal(hourly.nextRun, '2030-07-03T07:30:00.000Z');
    assert.equal(hourly.lastRun?.status, 'SUCCEEDED');
    assert.equal(status.datasets.find((d) => d.name === 'nightly')!.nextRun, '2030-07-04T02:00:00.000Z');

    // start() arms a timer for the next fire time (07:30, an hour away).
    scheduler.start();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(clock.timers.map((tm) => tm.ms), [3_600_000 - 30_000]);
    await scheduler.stop();
    assert.equal(clock.timers, []);
  } finally {
    lake.cleanup();
  }
});

test('a scheduler started long after apply counts the runs it never saw as missed', async () => {
  const lake = await setupLake(base);
  try {
    const t0 = Date.parse('2030-07-04T00:00:00Z');
    const spec = specWith({ ...base, datasets: [{ name: 'q', sql: 'SELECT 1 AS one', schedule: 'rate(10 minutes)' }] });
    applyAnalytics(lake.db, (await planAnalytics(lake.db, lake.dir, spec)).items, t0);
    const clock = fakeClock(Date.parse('2030-07-04T01:00:20Z'));
    const ran: number[] = [];
    const scheduler = new DatasetScheduler({ db: lake.db, clock, run: async (_n, t) => void ran.push(t) });
    const result = await scheduler.tick();
    assert.equal(result.missed.length, 5); // 00:10 ... 00:50
    assert.equal(ran, [Date.parse('2030-07-04T01:00:00Z')]);
  } finally {
    lake.cleanup();
  }
});

test.run();
