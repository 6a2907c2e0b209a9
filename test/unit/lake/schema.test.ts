import { join } from 'node:path';
import { asyncBufferFromFile, parquetSchema, parquetMetadataAsync } from 'hyparquet';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Catalog } from '../../../src/targets/local/lake/catalog.js';
import { analyticsStatus } from '../../../src/targets/local/lake/status.js';
import { components, day, message, setupLake, type AnalyticsInput } from './helpers.js';

const analytics: AnalyticsInput = {
  channels: [{ name: 'raw' }],
  datastores: [{ name: 'ds' }],
  pipelines: [{ name: 'p', channel: 'raw', datastore: 'ds' }],
};

async function describe(dir: string, db: Parameters<typeof Catalog.open>[0]['db']) {
  const catalog = await Catalog.open({ db, stateDir: dir });
  try {
    const [table] = await catalog.describe();
    const rows = (await catalog.query(`SELECT * EXCLUDE (__message_id, __received_at, dt) FROM ds ORDER BY __message_id`)).rows;
    return { columns: table!.columns.map((c) => `${c.name} ${c.type}`), rows };
  } finally {
    catalog.close();
  }
}

test('payload schemas vary: new fields become columns, int widens to double, mixed types become VARCHAR', async () => {
  const lake = await setupLake(analytics);
  try {
    const c = await components(lake.dir, lake.db);
    const t = day('2030-06-01');
    // File 1: the first shape.
    await c.channels.putMessages('raw', [message('a1', t, { device: 'x', temp: 20 }), message('a2', t + 1, { device: 'y', temp: 21 })]);
    await c.runner.runOnce();
    // File 2: a new field, and a decimal where integers were.
    await c.channels.putMessages('raw', [message('b1', t + 2, { device: 'x', temp: 20.5, humidity: 40 })]);
    await c.runner.runOnce();
    // File 3: a number column receives a string; a new column with mixed kinds in one file; nested values.
    await c.channels.putMessages('raw', [
      message('c1', t + 3, { device: 'x', humidity: 'high', status: 1, loc: { lat: 1.5, lon: 2 } }),
      message('c2', t + 4, { device: 'y', humidity: 41, status: 'ok', loc: [1, 2] }),
    ]);
    await c.runner.runOnce();

    const { columns, rows } = await describe(lake.dir, lake.db);
    assert.equal(columns, ['__message_id VARCHAR', '__received_at TIMESTAMP', 'device VARCHAR', 'temp DOUBLE', 'humidity VARCHAR', 'status VARCHAR', 'loc VARCHAR', 'dt DATE']);
    assert.equal(rows, [
      ['x', 20, null, null, null],
      ['y', 21, null, null, null],
      ['x', 20.5, '40', null, null],
      ['x', null, 'high', '1', '{"lat":1.5,"lon":2}'],
      ['y', null, '41', 'ok', '[1,2]'],
    ]);

    const status = await analyticsStatus(lake.db, lake.dir);
    const changes = status.schemaChanges.map((s) => [s.column, s.change, s.from, s.to, s.detail]).reverse();
    assert.equal(changes, [
      ['device', 'added', null, 'VARCHAR', null],
      ['temp', 'added', null, 'BIGINT', null],
      ['temp', 'widened', 'BIGINT', 'DOUBLE', 'decimal values'],
      ['humidity', 'added', null, 'BIGINT', null],
      ['humidity', 'stringified', 'BIGINT', 'VARCHAR', 'mixed integer, string values stored as VARCHAR'],
      ['status', 'added', null, 'VARCHAR', 'mixed integer, string values stored as VARCHAR'],
      ['loc', 'added', null, 'VARCHAR', null],
    ]);
    assert.equal(status.datastores[0]!.columns, [
      { name: 'device', type: 'VARCHAR' },
      { name: 'temp', type: 'DOUBLE' },
      { name: 'humidity', type: 'VARCHAR' },
      { name: 'status', type: 'VARCHAR' },
      { name: 'loc', type: 'VARCHAR' },
    ]);

    // Each file's own schema: the third file writes humidity as VARCHAR, the first has no humidity column.
    const files = c.writer.files('ds');
    const schemaOf = async (i: number) => {
      const meta = await parquetMetadataAsync(await asyncBufferFromFile(join(lake.dir, 'lake', files[i]!.file)));
      return parquetSchema(meta).children.map((ch) => ch.element.name);
    };
    assert.equal(await schemaOf(0), ['__message_id', '__received_at', 'device', 'temp']);
    assert.equal(await schemaOf(2), ['__message_id', '__received_at', 'device', 'humidity', 'status', 'loc']);
    await c.close();
  } finally {
    lake.cleanup();
  }
});

test('attribute names that differ only in case share one column; reserved names and case clashes fail with a reason', async () => {
  const lake = await setupLake(analytics);
  try {
    const c = await components(lake.dir, lake.db);
    const t = day('2030-06-01');
    await c.channels.putMessages('raw', [
      message('a', t, { Temp: 1 }),
      message('b', t + 1, { temp: 2 }),
      message('c', t + 2, { dt: '2030-01-01', temp: 3 }),
      message('d', t + 3, { temp: 4, TEMP: 5 }),
      message('e', t + 4, { __message_id: 'spoof' }),
    ]);
    await c.runner.runOnce();
    const { columns, rows } = await describe(lake.dir, lake.db);
    assert.equal(columns, ['__message_id VARCHAR', '__received_at TIMESTAMP', 'Temp BIGINT', 'dt DATE']);
    assert.equal(rows, [[1], [2]]);
    const failures = lake.db.prepare(`SELECT message_id AS id, activity_type AS type, reason FROM lake_pipeline_failures ORDER BY message_id`).all();
    assert.equal(failures, [
      { id: 'c', type: 'datastore', reason: 'attribute "dt" is reserved by the datastore (its day partition); rename it with addAttributes + removeAttributes activities' },
      { id: 'd', type: 'datastore', reason: 'attributes that differ only in case map to one datastore column "Temp" (column names are case-insensitive)' },
      { id: 'e', type: 'datastore', reason: 'attribute "__message_id" is reserved by the datastore (row metadata); rename it with addAttributes + removeAttributes activities' },
    ]);
    await c.close();
  } finally {
    lake.cleanup();
  }
});

test('a JSON datastore keeps the same typing rules', async () => {
  const lake = await setupLake({ ...analytics, datastores: [{ name: 'ds', format: 'json' }] });
  try {
    const c = await components(lake.dir, lake.db);
    const t = day('2030-06-01');
    await c.channels.putMessages('raw', [message('a', t, { v: 1 }), message('b', t + 1, { v: 2 })]);
    await c.runner.runOnce();
    await c.channels.putMessages('raw', [message('c', t + 2, { v: 'three' })]);
    await c.runner.runOnce();
    assert.ok(c.writer.files('ds').every((f) => f.file.endsWith('.json')));
    const { columns, rows } = await describe(lake.dir, lake.db);
    assert.equal(columns, ['__message_id VARCHAR', '__received_at TIMESTAMP', 'v VARCHAR', 'dt DATE']);
    assert.equal(rows, [['1'], ['2'], ['three']]);
    await c.close();
  } finally {
    lake.cleanup();
  }
});

test.run();
