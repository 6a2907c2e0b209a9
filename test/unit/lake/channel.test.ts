import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Catalog } from '../../../src/targets/local/lake/catalog.js';
import { ChannelStore, payloadBytes, type StoredMessage } from '../../../src/targets/local/lake/channel-store.js';
import { DestinationNotFoundError } from '../../../src/targets/local/sinks.js';
import { day, filesUnder, message, setupLake } from './helpers.js';

async function readAll(store: ChannelStore, channel: string, batch = 1000): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  let pos = { seq: 0, offset: 0, index: 0 };
  for (;;) {
    const { messages, next } = await store.read(channel, pos, { maxMessages: batch });
    out.push(...messages);
    pos = next;
    if (!messages.length) return out;
  }
}

test('messages are kept exactly as received, partitioned by UTC ingress day', async () => {
  const { dir, db, cleanup } = await setupLake({ channels: [{ name: 'raw' }] });
  try {
    const store = new ChannelStore({ db, stateDir: dir });
    const binary = new Uint8Array([0xff, 0x00, 0xc3, 0x28, 0x0a]);
    const text = '{ "temp" : 21.50,\n "unicode": "h\u00e9llo \u{1F600}" }';
    await store.putMessages('raw', [
      message('m1', day('2030-01-01') + 5_000, text),
      message('m2', day('2030-01-01') + 86_399_999, binary),
      message('m3', day('2030-01-02'), 'not json at all'),
    ]);
    const all = await readAll(store, 'raw');
    assert.equal(all.map((m) => [m.messageId, m.receivedAt, m.encoding]), [
      ['m1', day('2030-01-01') + 5_000, 'utf8'],
      ['m2', day('2030-01-01') + 86_399_999, 'base64'],
      ['m3', day('2030-01-02'), 'utf8'],
    ]);
    assert.equal(payloadBytes(all[0]!).toString('utf8'), text);
    assert.equal(new Uint8Array(payloadBytes(all[1]!)), binary);
    assert.equal(filesUnder(join(dir, 'lake/raw')), ['raw/dt=2030-01-01/seg-000000000001.ndjson', 'raw/dt=2030-01-02/seg-000000000002.ndjson']);

    // DuckDB reads the raw channel as a table.
    const catalog = await Catalog.open({ db, stateDir: dir });
    try {
      const r = await catalog.query(`SELECT message_id, received_at, payload, payload_encoding, dt FROM channels.raw ORDER BY message_id`);
      assert.equal(r.rows, [
        ['m1', '2030-01-01T00:00:05.000Z', text, null, '2030-01-01'],
        ['m2', '2030-01-01T23:59:59.999Z', Buffer.from(binary).toString('base64'), 'base64', '2030-01-01'],
        ['m3', '2030-01-02T00:00:00.000Z', 'not json at all', null, '2030-01-02'],
      ]);
    } finally {
      catalog.close();
    }
  } finally {
    cleanup();
  }
});

test('a replayed message id is stored once (across batches and within one)', async () => {
  const { dir, db, cleanup } = await setupLake({ channels: [{ name: 'raw' }] });
  try {
    const store = new ChannelStore({ db, stateDir: dir });
    const t = day('2030-01-01');
    await store.putMessages('raw', [message('a', t, { v: 1 }), message('b', t, { v: 2 })]);
    await store.putMessages('raw', [message('b', t, { v: 2 }), message('c', t, { v: 3 }), message('c', t, { v: 3 })]);
    await store.putMessages('raw', [message('a', t, { v: 1 })]);
    assert.equal((await readAll(store, 'raw')).map((m) => m.messageId), ['a', 'b', 'c']);
    assert.equal(store.stats('raw').messages, 3);
    assert.equal(store.stats('raw').duplicatesDropped, 3);
  } finally {
    cleanup();
  }
});

test('an unknown channel is a DestinationNotFoundError, so the rule errorAction gets the reason', async () => {
  const { dir, db, cleanup } = await setupLake({ channels: [{ name: 'raw' }] });
  try {
    const store = new ChannelStore({ db, stateDir: dir });
    try {
      await store.putMessages('nope', [message('a', 1, {})]);
      assert.unreachable('should have thrown');
    } catch (e) {
      assert.instance(e, DestinationNotFoundError);
      assert.equal((e as Error).message, 'channel "nope" does not exist');
    }
  } finally {
    cleanup();
  }
});

test('concurrent batches share group commits and all land once; segments roll by size', async () => {
  const { dir, db, cleanup } = await setupLake({ channels: [{ name: 'raw' }] });
  try {
    const store = new ChannelStore({ db, stateDir: dir, segmentBytes: 4096 });
    const t = day('2030-01-01');
    await Promise.all(Array.from({ length: 20 }, (_, b) => store.putMessages('raw', Array.from({ length: 25 }, (_, i) => message(`m${b * 25 + i}`, t + b, { b, i, pad: 'x'.repeat(40) })))));
    const all = await readAll(store, 'raw', 37);
    assert.equal(all.length, 500);
    assert.equal(new Set(all.map((m) => m.messageId)).size, 500);
    const stats = store.stats('raw');
    assert.ok(stats.segments > 5, `expected several segments, got ${stats.segments}`);
    assert.equal(store.end('raw').index, 500);
  } finally {
    cleanup();
  }
});

test('bytes written but not committed (a crash between write and commit) are cut off on recovery', async () => {
  const { dir, db, cleanup } = await setupLake({ channels: [{ name: 'raw' }] });
  try {
    const store = new ChannelStore({ db, stateDir: dir });
    const t = day('2030-01-01');
    await store.putMessages('raw', [message('a', t, { v: 1 }), message('b', t, { v: 2 })]);
    const segment = join(dir, 'lake/raw/raw/dt=2030-01-01/seg-000000000001.ndjson');
    const committed = statSync(segment).size;
    // The torn tail of an append that never committed, and an orphan segment that no row describes.
    appendFileSync(segment, '{"message_id":"ghost","received_at":"2030-01-01T00:00:00.000Z","payl');
    writeFileSync(join(dir, 'lake/raw/raw/dt=2030-01-01/seg-000000000002.ndjson'), '{"message_id":"orphan"}\n');

    const restarted = new ChannelStore({ db, stateDir: dir });
    assert.equal(restarted.recover(), { truncated: 1, removed: 1 });
    assert.equal(statSync(segment).size, committed);
    await restarted.putMessages('raw', [message('c', t, { v: 3 })]);
    assert.equal((await readAll(restarted, 'raw')).map((m) => m.messageId), ['a', 'b', 'c']);
    assert.equal(readFileSync(segment, 'utf8').split('\n').filter(Boolean).length, 3);
  } finally {
    cleanup();
  }
});

test('retention deletes whole old days but never the segment being written', async () => {
  const { dir, db, cleanup } = await setupLake({ channels: [{ name: 'raw', retentionDays: 2 }] });
  try {
    const store = new ChannelStore({ db, stateDir: dir });
    await store.putMessages('raw', [message('old', day('2030-01-01'), {}), message('mid', day('2030-01-04'), {}), message('new', day('2030-01-05'), {})]);
    const { segmentsRemoved } = await store.applyRetention('raw', 2, day('2030-01-05') + 3_600_000);
    assert.equal(segmentsRemoved, 1);
    assert.equal((await readAll(store, 'raw')).map((m) => m.messageId), ['mid', 'new']);
    assert.equal(filesUnder(join(dir, 'lake/raw/raw')), ['dt=2030-01-04/seg-000000000002.ndjson', 'dt=2030-01-05/seg-000000000003.ndjson']);
  } finally {
    cleanup();
  }
});

test.run();
