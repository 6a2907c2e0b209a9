import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatPlan } from '../../../src/iot/plan/index.js';
import { AnalyticsValidationError, applyAnalytics, planAnalytics, reconcileStorage } from '../../../src/targets/local/lake/apply.js';
import { Catalog } from '../../../src/targets/local/lake/catalog.js';
import { components, day, message, setupLake, specWith, type AnalyticsInput } from './helpers.js';

const base: AnalyticsInput = {
  channels: [{ name: 'raw' }],
  datastores: [{ name: 'ds' }],
  pipelines: [{ name: 'p', channel: 'raw', datastore: 'ds', activities: [{ math: { attribute: 'out', math: 'n * 2' } }] }],
};

async function apply(lake: { db: ReturnType<typeof import('../../../src/targets/local/store.js').openStore>; dir: string }, analytics: AnalyticsInput, opts: { prune?: boolean; functions?: { name: string; template: string }[] } = {}) {
  const plan = await planAnalytics(lake.db, lake.dir, specWith(analytics, { functions: opts.functions ?? [] }), { prune: opts.prune });
  applyAnalytics(lake.db, plan.items);
  return plan;
}

async function query(lake: { db: Parameters<typeof Catalog.open>[0]['db']; dir: string }, sql: string) {
  const catalog = await Catalog.open({ db: lake.db, stateDir: lake.dir });
  try {
    return (await catalog.query(sql)).rows;
  } finally {
    catalog.close();
  }
}

async function problemsOf(promise: Promise<unknown>): Promise<string[]> {
  try {
    await promise;
  } catch (e) {
    if (e instanceof AnalyticsValidationError) return e.problems.map((p) => `${p.path}: ${p.message}`);
    throw e;
  }
  assert.unreachable('expected an AnalyticsValidationError');
  return [];
}

test('plan: create, then no changes; a changed activity is a replace with a field diff; prune deletes', async () => {
  const lake = await setupLake(base);
  try {
    const again = await planAnalytics(lake.db, lake.dir, specWith(base));
    assert.equal(formatPlan(again.items), 'No changes. The target matches iotctl.yaml.');
    const changed = await planAnalytics(lake.db, lake.dir, specWith({ ...base, pipelines: [{ ...base.pipelines![0]!, activities: [{ math: { attribute: 'out', math: 'n * 3' } }] }] }));
    assert.equal(formatPlan(changed.items), '~ pipeline p\n    activities[0].math.math: "n * 2" -> "n * 3"\nPlan: 0 to create, 1 to replace, 0 to delete.');
    const pruned = await planAnalytics(lake.db, lake.dir, specWith({ channels: [{ name: 'raw' }] }), { prune: true });
    assert.equal(formatPlan(pruned.items), '- datastore ds\n- pipeline p\nPlan: 0 to create, 0 to replace, 2 to delete.');
  } finally {
    lake.cleanup();
  }
});

test('invalid pipelines and dataset SQL are refused at apply time with their spec paths', async () => {
  const lake = await setupLake(base);
  try {
    const c = await components(lake.dir, lake.db);
    await c.channels.putMessages('raw', [message('a', day('2030-08-01'), { n: 1, device: 'x' })]);
    await c.runner.runOnce();
    await c.close();
    const problems = await problemsOf(
      planAnalytics(
        lake.db,
        lake.dir,
        specWith({
          ...base,
          pipelines: [
            {
              name: 'p',
              channel: 'raw',
              datastore: 'ds',
              activities: [{ filter: { filter: 'n >' } }, { lambda: { function: 'nope' } }, { deviceShadowEnrich: { attribute: 's', thingName: 'device' } }, { math: { attribute: 'dt', math: 'n' } }],
            },
            { name: 'q', channel: 'missing', datastore: 'ds' },
          ],
          datastores: [{ name: 'ds', format: 'json' }],
          datasets: [
            { name: 'syntax', sql: 'SELEC n FROM ds' },
            { name: 'table', sql: 'SELECT n FROM elsewhere' },
            { name: 'column', sql: 'SELECT nosuchcolumn FROM ds' },
            { name: 'delta', sql: 'SELECT n FROM ds', deltaTime: { offsetSeconds: 0, timeExpression: 'n' } },
            { name: 'sched', sql: 'SELECT n FROM ds', schedule: 'cron(0 2 * * * *)' },
          ],
        }),
      ),
    );
    assert.equal(problems.map((p) => p.replace(/: .*/s, '')), [
      'analytics.pipelines[0].activities[0].filter.filter',
      'analytics.pipelines[0].activities[1].lambda.function',
      'analytics.pipelines[0].activities[2].deviceShadowEnrich',
      'analytics.pipelines[0].activities[3].math.attribute',
      'analytics.pipelines[1].channel',
      'analytics.datasets[4].schedule',
      'analytics.datastores[0].format',
      'analytics.datasets[0].sql',
      'analytics.datasets[1].sql',
      'analytics.datasets[2].sql',
      'analytics.datasets[3].deltaTime.timeExpression',
    ]);
    assert.match(problems[6]!, /datastore "ds" holds parquet files; its format cannot change to json/);
    assert.match(problems[8]!, /reads "elsewhere", which is not a datastore/);
    assert.match(problems[9]!, /Binder Error: Referenced column "nosuchcolumn" not found/);
  } finally {
    lake.cleanup();
  }
});

test('a new pipeline starts at the end of its channel (as on AWS); reprocess picks up older messages', async () => {
  const lake = await setupLake({ channels: [{ name: 'raw' }], datastores: [{ name: 'ds' }] });
  try {
    const c = await components(lake.dir, lake.db);
    const t = day('2030-08-02');
    await c.channels.putMessages('raw', [message('old1', t, { n: 1 }), message('old2', t + 1000, { n: 2 })]);
    await apply(lake, base);
    await c.channels.putMessages('raw', [message('new1', t + 2000, { n: 3 })]);
    c.runner.reload();
    assert.equal((await c.runner.runOnce()).pipelines, [{ name: 'p', in: 1, out: 1, filtered: 0, failed: 0 }]);
    assert.equal(await query(lake, `SELECT __message_id, out FROM ds ORDER BY 1`), [['new1', 6]]);
    const r = await c.runner.reprocess('p', {});
    assert.equal([r.messages, r.out], [3, 3]);
    assert.equal(await query(lake, `SELECT __message_id, out FROM ds ORDER BY 1`), [
      ['new1', 6],
      ['old1', 2],
      ['old2', 4],
    ]);
    await c.close();
  } finally {
    lake.cleanup();
  }
});

test('reprocess replaces the window rows instead of appending: twice gives the same rows; outside the window stays', async () => {
  const lake = await setupLake(base);
  try {
    const c = await components(lake.dir, lake.db);
    const t = day('2030-08-03');
    await c.channels.putMessages('raw', Array.from({ length: 30 }, (_, i) => message(`m${i}`, t + i * 3_600_000 * 2, { n: i })));
    await c.runner.runOnce(); // 30 messages over 2.5 days
    await apply(lake, { ...base, pipelines: [{ ...base.pipelines![0]!, activities: [{ math: { attribute: 'out', math: 'n * 100' } }] }] });
    c.runner.reload();
    const from = t + 24 * 3_600_000; // day 2 only
    const to = t + 48 * 3_600_000 - 1;
    const first = await c.runner.reprocess('p', { from, to });
    assert.equal([first.messages, first.out, first.filesReplaced], [12, 12, 1]);
    const second = await c.runner.reprocess('p', { from, to });
    assert.equal([second.messages, second.out], [12, 12]);
    const rows = (await query(lake, `SELECT n, out FROM ds ORDER BY n`)) as number[][];
    assert.equal(rows.length, 30);
    for (const [n, out] of rows) assert.equal(out, n! >= 12 && n! < 24 ? n! * 100 : n! * 2, `row n=${n}`);
    assert.equal(await query(lake, `SELECT count(DISTINCT __message_id) FROM ds`), [[30]]);
    await c.close();
  } finally {
    lake.cleanup();
  }
});

test('a changed pipeline commits what it buffered under the old definition, then runs the new one', async () => {
  const lake = await setupLake(base);
  try {
    const c = await components(lake.dir, lake.db, { flushRows: 1000 });
    const t = day('2030-08-04');
    await c.channels.putMessages('raw', [message('a', t, { n: 1 })]);
    await c.runner.runOnce();
    await apply(lake, { ...base, pipelines: [{ ...base.pipelines![0]!, activities: [{ math: { attribute: 'out', math: 'n + 1000' } }] }] });
    c.runner.reload();
    await c.channels.putMessages('raw', [message('b', t + 1, { n: 2 })]);
    await c.runner.runOnce();
    assert.equal(await query(lake, `SELECT __message_id, out FROM ds ORDER BY 1`), [
      ['a', 2],
      ['b', 1002],
    ]);
    await c.close();
  } finally {
    lake.cleanup();
  }
});

test('prune removes the configuration and the data of deleted resources', async () => {
  const lake = await setupLake(base);
  try {
    const c = await components(lake.dir, lake.db);
    await c.channels.putMessages('raw', [message('a', day('2030-08-05'), { n: 1 })]);
    await c.runner.runOnce();
    await c.close();
    assert.ok(existsSync(join(lake.dir, 'lake/datastore/ds')));
    await apply(lake, { channels: [{ name: 'raw' }] }, { prune: true });
    assert.equal(reconcileStorage(lake.db, lake.dir), { channels: [], datastores: ['ds'], datasets: [] });
    assert.not.ok(existsSync(join(lake.dir, 'lake/datastore/ds')));
    assert.equal(lake.db.prepare(`SELECT count(*) FROM lake_datastore_files`).pluck().get(), 0);
    assert.equal(lake.db.prepare(`SELECT count(*) FROM lake_pipelines`).pluck().get(), 0);
    assert.ok(existsSync(join(lake.dir, 'lake/raw/raw')), 'the channel stays');
  } finally {
    lake.cleanup();
  }
});

test.run();
