import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bindParameters, Catalog, QueryError } from '../../../src/targets/local/lake/catalog.js';
import { UserError } from '../../../src/ui/errors.js';
import { components, day, message, setupLake } from './helpers.js';

test('? placeholders take Athena-style literal parameters; strings, identifiers and comments are left alone', () => {
  assert.equal(
    bindParameters(`SELECT '?' AS q, "a?b" FROM t -- why?\nWHERE dt = ? AND device = ? AND n > ? /* ? */`, [`DATE '2030-01-01'`, 'sensor-1', '42']),
    `SELECT '?' AS q, "a?b" FROM t -- why?\nWHERE dt = DATE '2030-01-01' AND device = 'sensor-1' AND n > 42 /* ? */`,
  );
  assert.equal(bindParameters(`SELECT ?, ?, ?`, [`'it''s'`, 'O\'Brien', 'true']), `SELECT 'it''s', 'O''Brien', true`);
  assert.throws(
    () => bindParameters(`SELECT ? + ?`, ['1']),
    (e: unknown) => e instanceof UserError && e.message === 'The query has 2 ? placeholders but 1 --param value was given.',
  );
});

test('tables list datastores and channels with types from the files; bad SQL is a user error', async () => {
  const lake = await setupLake({ channels: [{ name: 'raw' }], datastores: [{ name: 'ds' }], pipelines: [{ name: 'p', channel: 'raw', datastore: 'ds' }] }, { athena: { database: 'plant' } });
  try {
    const c = await components(lake.dir, lake.db);
    await c.channels.putMessages('raw', [message('a', day('2030-09-01'), { device: 'x', v: 1.5 }), message('b', day('2030-09-02'), { device: 'y', v: 2 })]);
    await c.runner.runOnce();
    await c.close();
    const catalog = await Catalog.open({ db: lake.db, stateDir: lake.dir, database: 'plant' });
    try {
      const tables = await catalog.describe();
      assert.equal(
        tables.map((t) => [t.table, t.kind, t.files, t.partitions, t.columns.map((col) => `${col.name} ${col.type}`).join(', ')]),
        [
          ['plant.ds', 'datastore', 2, 2, '__message_id VARCHAR, __received_at TIMESTAMP, device VARCHAR, v DOUBLE, dt DATE'],
          ['channels.raw', 'channel', 2, 2, 'message_id VARCHAR, received_at TIMESTAMP, payload VARCHAR, payload_encoding VARCHAR, dt DATE'],
        ],
      );
      // Qualified and unqualified names, Presto functions, and max rows.
      const r = await catalog.query(`SELECT device, to_unixtime(__received_at) AS t FROM plant.ds UNION ALL SELECT device, 0 FROM ds ORDER BY 2 DESC, 1`, { maxRows: 3 });
      assert.equal(r.rows, [
        ['y', day('2030-09-02') / 1000],
        ['x', day('2030-09-01') / 1000],
        ['x', 0],
      ]);
      assert.ok(r.truncated);
      assert.equal(r.stats.rows, 4);
      try {
        await catalog.query(`SELECT nope FROM ds`);
        assert.unreachable('should have thrown');
      } catch (e) {
        assert.instance(e, QueryError);
        assert.match((e as Error).message, /Referenced column "nope" not found/);
      }
    } finally {
      catalog.close();
    }
  } finally {
    lake.cleanup();
  }
});

test.run();
