import { spawn } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Catalog } from '../../../src/targets/local/lake/catalog.js';
import type { PipelineMessage } from '../../../src/iot/pipeline/index.js';
import { components, day, filesUnder, message, setupLake, type AnalyticsInput } from './helpers.js';

const analytics: AnalyticsInput = {
  channels: [{ name: 'raw' }],
  datastores: [{ name: 'ds' }],
  pipelines: [{ name: 'p', channel: 'raw', datastore: 'ds', activities: [{ math: { attribute: 'twice', math: 'n * 2' } }] }],
};

const msgs = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => message(`m${from + k}`, day('2030-05-01') + (from + k) * 1000, { n: from + k }));

async function rowsIn(dir: string, db: Parameters<typeof Catalog.open>[0]['db']): Promise<{ rows: number; distinct: number; sum: number }> {
  const catalog = await Catalog.open({ db, stateDir: dir });
  try {
    const r = await catalog.query(`SELECT count(*), count(DISTINCT __message_id), coalesce(sum(twice), 0) FROM ds`);
    const [rows, distinct, sum] = r.rows[0] as number[];
    return { rows: rows!, distinct: distinct!, sum: sum! };
  } finally {
    catalog.close();
  }
}

test('a crash mid-roll (files written and renamed, checkpoint not advanced) loses and duplicates nothing', async () => {
  const lake = await setupLake(analytics);
  try {
    const c1 = await components(lake.dir, lake.db);
    await c1.channels.putMessages('raw', msgs(0, 600));
    await c1.runner.runOnce();
    await c1.channels.putMessages('raw', msgs(600, 1000));

    // The runner reads the next batch and writes its file, then the process dies before the commit.
    const checkpoint = lake.db.prepare(`SELECT seq, offset, msg_index AS idx FROM lake_pipelines WHERE pipeline = 'p'`).get() as { seq: number; offset: number; idx: number };
    assert.equal(checkpoint.idx, 600);
    const { messages } = await c1.channels.read('raw', { seq: checkpoint.seq, offset: checkpoint.offset, index: checkpoint.idx }, { maxMessages: 1000 });
    const buffer = c1.writer.newBuffer('ds');
    for (const m of messages) buffer.add({ id: m.messageId, receivedAt: m.receivedAt, body: { ...JSON.parse(m.payload), twice: JSON.parse(m.payload).n * 2 } } as PipelineMessage);
    const staged = await c1.writer.stage(buffer, 'p', 'parquet');
    assert.equal(staged.length, 1);
    const partition = join(lake.dir, 'lake/datastore/ds/dt=2030-05-01');
    writeFileSync(join(partition, '.part-crashed.parquet.tmp'), 'half a parquet file');
    writeFileSync(join(lake.dir, 'lake/tmp/stage-crashed.ndjson'), '{"n":1}\n');
    c1.duck.close(); // killed: no stop(), no commit
    await c1.channels.close(); // (closes file handles only; every append was already committed)

    // Before recovery, queries already see only committed files.
    assert.equal(await rowsIn(lake.dir, lake.db), { rows: 600, distinct: 600, sum: 599 * 600 });

    const c2 = await components(lake.dir, lake.db);
    const recovered = c2.writer.recover();
    assert.equal(recovered.removed.sort(), [staged[0]!.file, 'datastore/ds/dt=2030-05-01/.part-crashed.parquet.tmp'].sort());
    c2.channels.recover();
    await c2.runner.runOnce();
    assert.equal(await rowsIn(lake.dir, lake.db), { rows: 1000, distinct: 1000, sum: 999 * 1000 });
    const manifest = (lake.db.prepare(`SELECT file FROM lake_datastore_files`).pluck().all() as string[]).map((f) => f.replace('datastore/ds/', '')).sort();
    assert.equal(filesUnder(join(lake.dir, 'lake/datastore/ds')), manifest, 'no file on disk that the manifest does not list');
    assert.equal(filesUnder(join(lake.dir, 'lake/tmp')), []);
    await c2.close();
  } finally {
    lake.cleanup();
  }
});

test('a file the manifest does not list (e.g. a replaced file not yet deleted at a crash) is never read and is removed', async () => {
  const lake = await setupLake(analytics);
  try {
    const c = await components(lake.dir, lake.db);
    await c.channels.putMessages('raw', msgs(0, 300));
    await c.runner.runOnce();
    const [file] = c.writer.files('ds');
    copyFileSync(join(lake.dir, 'lake', file!.file), join(lake.dir, 'lake/datastore/ds/dt=2030-05-01/part-orphan.parquet'));
    assert.equal(await rowsIn(lake.dir, lake.db), { rows: 300, distinct: 300, sum: 299 * 300 });
    assert.equal(c.writer.recover().removed, ['datastore/ds/dt=2030-05-01/part-orphan.parquet']);
    await c.close();
  } finally {
    lake.cleanup();
  }
});

/** Runs the lake in a child process that is SIGKILLed after `killAfter` puts, mid-stream. */
function runAndKill(dir: string, total: number, killAfterPuts: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures/crash-child.ts'), dir, String(total)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let puts = 0;
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.on('data', (d: Buffer) => {
      puts += (d.toString().match(/^put /gm) ?? []).length;
      if (puts >= killAfterPuts && !child.killed) child.kill('SIGKILL');
    });
    child.on('exit', (_code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited without being killed: ${err}`))));
  });
}

test('SIGKILL of a running lake, then restart and replay: every message exactly once', async () => {
  const total = 1500;
  for (const killAfter of [23, 61]) {
    const lake = await setupLake(analytics);
    try {
      await runAndKill(lake.dir, total, killAfter);
      const c = await components(lake.dir, lake.db);
      c.channels.recover();
      c.writer.recover();
      // The rules runtime replays whatever it had not seen acknowledged: here, everything.
      const base = Date.UTC(2030, 4, 1, 23, 50);
      const encoder = new TextEncoder();
      const all = Array.from({ length: total }, (_, j) => ({ messageId: `m${j}`, receivedAt: base + j * 700, payload: encoder.encode(JSON.stringify({ n: j, device: `d${j % 3}`, v: j % 2 ? j : `s${j}` })) }));
      await c.channels.putMessages('raw', all);
      await c.runner.runOnce();
      const got = await rowsIn(lake.dir, lake.db);
      assert.equal(got, { rows: total, distinct: total, sum: (total - 1) * total }, `killed after ${killAfter} puts`);
      await c.close();
    } finally {
      lake.cleanup();
    }
  }
});

test.run();
