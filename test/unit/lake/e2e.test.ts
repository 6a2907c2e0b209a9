import { join } from 'node:path';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Catalog } from '../../../src/targets/local/lake/catalog.js';
import type { JsonObject } from '../../../src/iot/pipeline/index.js';
import { components, day, message, setupLake, type AnalyticsInput } from './helpers.js';

const DAYS = ['2030-03-01', '2030-03-02', '2030-03-03'];
const PER_DAY = 600;
const SITES: Record<string, string> = { d0: 'north', d1: 'south', d2: 'east', d3: 'west', d4: 'north' };

/** The input: deterministic telemetry over three days, with some broken and some filtered messages. */
function inputs() {
  const out: { id: string; receivedAt: number; raw: string | JsonObject }[] = [];
  for (let i = 0; i < DAYS.length * PER_DAY; i++) {
    const receivedAt = day(DAYS[Math.floor(i / PER_DAY)]!) + (i % PER_DAY) * 143_000;
    const id = `msg-${String(i).padStart(5, '0')}`;
    if (i % 97 === 13) out.push({ id, receivedAt, raw: '{"device": "d1", "temp": ' }); // truncated JSON
    else if (i % 50 === 7) out.push({ id, receivedAt, raw: { device: `d${i % 5}`, hum: i % 100 } }); // no temp
    else out.push({ id, receivedAt, raw: { device: `d${i % 5}`, temp: ((i * 7) % 60) - 10, hum: i % 100, secret: `s${i}` } });
  }
  return out;
}

/** What the pipeline must produce, computed here without the pipeline code. */
function expectedRows() {
  const rows = new Map<string, { dt: string; device: string; temp: number; tempF: number; hum: number; doubled: number; site: string; receivedAt: number }>();
  const failed: string[] = [];
  let filtered = 0;
  for (const m of inputs()) {
    if (typeof m.raw === 'string') {
      failed.push(m.id);
      continue;
    }
    const b = m.raw as { device: string; temp?: number; hum: number };
    if (b.temp === undefined || b.temp < 0) {
      filtered++;
      continue;
    }
    rows.set(m.id, {
      dt: new Date(m.receivedAt).toISOString().slice(0, 10),
      device: b.device,
      temp: b.temp,
      tempF: b.temp * 1.8 + 32,
      hum: b.hum,
      doubled: b.hum * 2,
      site: SITES[b.device]!,
      receivedAt: m.receivedAt,
    });
  }
  return { rows, failed, filtered };
}

const analytics: AnalyticsInput = {
  channels: [{ name: 'raw' }],
  datastores: [{ name: 'telemetry' }],
  pipelines: [
    {
      name: 'main',
      channel: 'raw',
      datastore: 'telemetry',
      activities: [
        { filter: { filter: 'temp >= 0' } },
        { math: { attribute: 'tempF', math: 'temp * 1.8 + 32' } },
        { removeAttributes: { attributes: ['secret'] } },
        { deviceRegistryEnrich: { attribute: 'registry', thingName: 'device' } },
        { lambda: { function: 'double', batchSize: 250 } },
      ],
    },
  ],
};
const functions = [{ name: 'double', template: 'noop' }];
const deps = {
  invoke: async (_fn: string, messages: JsonObject[]) => messages.map((m) => ({ ...m, doubled: (m.hum as number) * 2 })),
  lookupThing: (name: string) => (SITES[name] ? { thingName: name, thingTypeName: 'sensor', attributes: { site: SITES[name]! } } : undefined),
};

async function loaded() {
  const lake = await setupLake(analytics, { functions });
  const c = await components(lake.dir, lake.db, { deps });
  await c.channels.putMessages('raw', inputs().map((m) => message(m.id, m.receivedAt, m.raw)));
  const summary = await c.runner.runOnce();
  return { ...lake, ...c, summary };
}

test('channel -> pipeline -> Parquet -> athena run gives exactly the rows computed independently', async () => {
  const lake = await loaded();
  const catalog = await Catalog.open({ db: lake.db, stateDir: lake.dir });
  try {
    const exp = expectedRows();
    assert.equal(lake.summary.pipelines, [{ name: 'main', in: DAYS.length * PER_DAY, out: exp.rows.size, filtered: exp.filtered, failed: exp.failed.length }]);

    const r = await catalog.query(
      `SELECT CAST(dt AS VARCHAR) AS dt, device, count(*) AS n, round(sum(tempF), 6) AS f, sum(doubled) AS d, any_value(json_extract_string(registry, '$.attributes.site')) AS site
       FROM telemetry GROUP BY ALL ORDER BY dt, device`,
    );
    const groups = new Map<string, { dt: string; device: string; n: number; f: number; d: number; site: string }>();
    for (const row of exp.rows.values()) {
      const key = `${row.dt}/${row.device}`;
      const g = groups.get(key) ?? { dt: row.dt, device: row.device, n: 0, f: 0, d: 0, site: row.site };
      g.n++;
      g.f += row.tempF;
      g.d += row.doubled;
      groups.set(key, g);
    }
    const expected = [...groups.values()].sort((a, b) => (a.dt + a.device).localeCompare(b.dt + b.device)).map((g) => [g.dt, g.device, g.n, Math.round(g.f * 1e6) / 1e6, g.d, g.site]);
    assert.equal(r.rows, expected);
    assert.equal(r.columns.map((c) => c.name), ['dt', 'device', 'n', 'f', 'd', 'site']);

    // Failures are kept with their reason and the raw payload.
    const failures = lake.db.prepare(`SELECT message_id AS id, reason, payload FROM lake_pipeline_failures ORDER BY message_id`).all() as { id: string; reason: string; payload: string }[];
    assert.equal(failures.map((f) => f.id), exp.failed);
    assert.equal(failures[0]!.reason, 'the payload is not valid JSON; pipelines process JSON messages');
    assert.equal(failures[0]!.payload, '{"device": "d1", "temp": ');
  } finally {
    catalog.close();
    await lake.close();
    lake.cleanup();
  }
});

test('Parquet interop: hyparquet (an independent reader) reads the datastore files back row for row', async () => {
  const lake = await loaded();
  try {
    const exp = expectedRows();
    const files = lake.writer.files('telemetry');
    assert.equal(files.map((f) => f.dt), DAYS, 'one file per day partition');
    const seen = new Map<string, Record<string, unknown>>();
    for (const f of files) {
      const rows = (await parquetReadObjects({ file: await asyncBufferFromFile(join(lake.dir, 'lake', f.file)) })) as Record<string, unknown>[];
      assert.equal(rows.length, f.rows, `${f.file} row count`);
      for (const row of rows) {
        assert.not.ok(seen.has(row.__message_id as string), `duplicate ${row.__message_id}`);
        seen.set(row.__message_id as string, { ...row, dt: f.dt });
      }
    }
    assert.equal(seen.size, exp.rows.size);
    for (const [id, want] of exp.rows) {
      const got = seen.get(id)!;
      assert.ok(got, `row ${id} is missing`);
      assert.equal(got.dt, want.dt);
      assert.equal(got.device, want.device);
      assert.equal(Number(got.temp), want.temp);
      assert.ok(Math.abs((got.tempF as number) - want.tempF) < 1e-9, `tempF of ${id}`);
      assert.equal(Number(got.hum), want.hum);
      assert.equal(Number(got.doubled), want.doubled);
      assert.equal((got.__received_at as Date).getTime(), want.receivedAt);
      assert.equal(JSON.parse(got.registry as string), { attributes: { site: want.site }, thingName: want.device, thingTypeName: 'sensor' });
      assert.not.ok('secret' in got && got.secret !== null && got.secret !== undefined, 'removeAttributes removed secret');
    }
  } finally {
    await lake.close();
    lake.cleanup();
  }
});

test('a filter on the day partition reads only that day: bytes scanned for one day < all days', async () => {
  const lake = await loaded();
  const catalog = await Catalog.open({ db: lake.db, stateDir: lake.dir });
  try {
    const exp = expectedRows();
    const files = lake.writer.files('telemetry');
    const total = files.reduce((s, f) => s + f.bytes, 0);
    const dayBytes = files.filter((f) => f.dt === '2030-03-02').reduce((s, f) => s + f.bytes, 0);
    const oneDay = await catalog.query(`SELECT count(*) FROM telemetry WHERE dt = ?`, { params: [`DATE '2030-03-02'`] });
    assert.equal(oneDay.rows, [[[...exp.rows.values()].filter((r) => r.dt === '2030-03-02').length]]);
    assert.equal(oneDay.stats.filesScanned, 1);
    assert.equal(oneDay.stats.filesTotal, 3);
    assert.equal(oneDay.stats.bytesScanned, dayBytes);
    assert.ok(oneDay.stats.bytesScanned < total);
    assert.ok(oneDay.stats.bytesExact);
    const all = await catalog.query(`SELECT count(*) FROM telemetry`);
    assert.equal(all.stats.bytesScanned, total);
    assert.equal(all.stats.filesScanned, 3);
  } finally {
    catalog.close();
    await lake.close();
    lake.cleanup();
  }
});

test('files roll by row count (never one per message) and small files of a day are compacted', async () => {
  const lake = await setupLake(analytics, { functions });
  try {
    const c = await components(lake.dir, lake.db, { deps, flushRows: 100, readBatch: 50, compactMinFiles: 1000 });
    const msgs = inputs().slice(0, PER_DAY);
    await c.channels.putMessages('raw', msgs.map((m) => message(m.id, m.receivedAt, m.raw)));
    await c.runner.runOnce();
    const rolled = c.writer.files('telemetry');
    const rows = expectedRows();
    const dayRows = [...rows.rows.values()].filter((r) => r.dt === DAYS[0]).length;
    assert.ok(rolled.length >= 4, `several files: ${rolled.map((f) => f.rows)}`);
    assert.ok(rolled.every((f) => f.rows <= 100 && f.rows > 1), `file rows: ${rolled.map((f) => f.rows)}`);
    assert.equal(rolled.reduce((s, f) => s + f.rows, 0), dayRows);
    await c.close();

    // Compaction merges the day's small files into one; every row survives once.
    const d = await components(lake.dir, lake.db, { deps, compactMinFiles: 3 });
    await d.channels.putMessages('raw', inputs().slice(PER_DAY - 10, PER_DAY + 0).map((m) => message(`late-${m.id}`, m.receivedAt, m.raw)));
    await d.runner.runOnce();
    const compacted = d.writer.files('telemetry');
    assert.equal(compacted.length, 1);
    const catalog = await Catalog.open({ db: lake.db, stateDir: lake.dir });
    const r = await catalog.query(`SELECT count(*), count(DISTINCT __message_id) FROM telemetry`);
    const late = inputs()
      .slice(PER_DAY - 10, PER_DAY)
      .filter((m) => rows.rows.has(m.id)).length;
    assert.equal(r.rows, [[dayRows + late, dayRows + late]]);
    catalog.close();
    await d.close();
  } finally {
    lake.cleanup();
  }
});

test('pruning stays exact when DuckDB lists only some of the files it read', async () => {
  const lake = await setupLake({ channels: [{ name: 'raw' }], datastores: [{ name: 'ds' }], pipelines: [{ name: 'p', channel: 'raw', datastore: 'ds' }] });
  try {
    const c = await components(lake.dir, lake.db);
    const days = Array.from({ length: 8 }, (_, i) => `2030-04-0${i + 1}`);
    await c.channels.putMessages('raw', days.flatMap((d, i) => Array.from({ length: 20 + i * 10 }, (_, j) => message(`${d}-${j}`, day(d) + j * 1000, { v: j, day: i }))));
    await c.runner.runOnce();
    const files = c.writer.files('ds');
    assert.equal(files.length, 8);
    const catalog = await Catalog.open({ db: lake.db, stateDir: lake.dir });
    const r = await catalog.query(`SELECT count(*) FROM ds WHERE dt >= DATE '2030-04-03'`);
    const wanted = files.filter((f) => f.dt >= '2030-04-03');
    assert.equal(r.rows, [[wanted.reduce((s, f) => s + f.rows, 0)]]);
    assert.equal(r.stats.filesScanned, 6);
    assert.equal(r.stats.bytesScanned, wanted.reduce((s, f) => s + f.bytes, 0));
    assert.ok(r.stats.bytesExact);
    catalog.close();
    await c.close();
  } finally {
    lake.cleanup();
  }
});

test.run();
