import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyAnalytics, planAnalytics } from '../../../src/targets/local/lake/apply.js';
import { Catalog, LocalLake, WriterLock } from '../../../src/targets/local/lake/index.js';
import { analyticsStatus } from '../../../src/targets/local/lake/status.js';
import { openStore } from '../../../src/targets/local/store.js';
import { day, message, setupLake, specWith, type AnalyticsInput } from './helpers.js';

const until = async (what: string, check: () => boolean | Promise<boolean>, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

test('the daemon-side lake picks up applied changes live, writes datastores, and runs queued reprocessing', async () => {
  const v1: AnalyticsInput = { channels: [{ name: 'raw' }], datastores: [{ name: 'ds' }], pipelines: [{ name: 'p', channel: 'raw', datastore: 'ds' }] };
  const lake = await setupLake(v1);
  const daemonDb = openStore(lake.dir);
  const local = new LocalLake({ stateDir: lake.dir, db: daemonDb, runner: { flushIntervalMs: 50, pollIntervalMs: 20 } });
  try {
    await local.start();
    assert.is(new WriterLock(join(lake.dir, 'lake/writer.lock')).holder(), process.pid, 'the daemon holds the lake');
    const t = day('2030-10-01');
    await local.channels.putMessages('raw', [message('a', t, { n: 1 }), message('b', t + 1, { n: 2 })]);
    await until('the first rows', async () => (await analyticsStatus(lake.db, lake.dir)).datastores[0]!.rows === 2);

    // `analytics apply` from another process (here: another connection) changes the pipeline.
    const v2 = { ...v1, pipelines: [{ name: 'p', channel: 'raw', datastore: 'ds', activities: [{ math: { attribute: 'x', math: 'n * 10' } }] }] };
    applyAnalytics(lake.db, (await planAnalytics(lake.db, lake.dir, specWith(v2))).items);
    await new Promise((r) => setTimeout(r, 400)); // watchDataVersion polls every 200 ms
    await local.channels.putMessages('raw', [message('c', t + 2, { n: 3 })]);
    await until('the row from the new definition', async () => (await analyticsStatus(lake.db, lake.dir)).datastores[0]!.rows === 3);

    // `analytics reprocess` while the daemon runs: a queued request the runner picks up.
    lake.db.prepare(`INSERT INTO lake_reprocessing (id, pipeline, from_ms, to_ms, status, requested_at) VALUES ('r1', 'p', NULL, NULL, 'QUEUED', 0)`).run();
    await until('the reprocessing', () => (lake.db.prepare(`SELECT status FROM lake_reprocessing WHERE id = 'r1'`).pluck().get() as string) === 'SUCCEEDED');
    const status = await analyticsStatus(lake.db, lake.dir);
    assert.equal(status.datastores[0]!.rows, 3);
    assert.equal(status.pipelines[0]!.lagMessages, 0);
    const catalog = await Catalog.open({ db: lake.db, stateDir: lake.dir });
    assert.equal((await catalog.query(`SELECT __message_id, x FROM ds ORDER BY 1`)).rows, [
      ['a', 10],
      ['b', 20],
      ['c', 30],
    ]);
    catalog.close();
    assert.equal(status.reprocessing[0]!.messages, 3);
  } finally {
    await local.stop();
    daemonDb.close();
    assert.is(new WriterLock(join(lake.dir, 'lake/writer.lock')).holder(), undefined, 'stop() releases the lake');
    lake.cleanup();
  }
});

test.run();
