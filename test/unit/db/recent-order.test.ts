// `query recent` orders messages that share a timestamp by arrival. The ingress log stamps every message of one
// group commit with the same time (timestamp() = ingress time, ms), so a device that sends a burst (a busy
// machine delays the client's timer and it catches up) gets several rows with equal ts. Seen in the
// platform e2e under load: 13,14,15,10,.. instead of 15..11. The stream's sequence number is the arrival order.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pg from 'pg';
import { migrate } from '../../../src/db/migrations.js';
import { writeMessages, type MessageRow } from '../../../src/db/batch-writer.js';
import { recentMessages } from '../../../src/db/queries.js';
import { formatSequenceNumber } from '../../../src/targets/local/stream.js';
import { freshDatabase, MACHINE_URL } from './helpers.js';

test('query recent: rows with equal ts come newest-arrival first (stream sequence number), whatever their physical order', async () => {
  const db = await freshDatabase(MACHINE_URL);
  const client = new pg.Client(db.url);
  await client.connect();
  try {
    await migrate(client);
    const now = new Date();
    const burst = new Date(now.getTime() - 60_000);
    const row = (seq: number, ts: Date): MessageRow => ({
      message_id: `m-${seq}`, device_id: 'd1', ts, topic: 't', payload: { seq }, stream: 'telemetry', shard_id: 'shardId-000000000001',
      sequence_number: formatSequenceNumber(1, 1, seq), received_at: now,
    });
    // 1..9 a second apart, then 10..15 in one group commit (one ts), written in a scrambled physical order
    // across several batches, as retries and bisected batches do.
    const rows = [...Array.from({ length: 9 }, (_, i) => row(i + 1, new Date(burst.getTime() - (10 - i) * 1000))), ...[13, 10, 15, 11, 14, 12].map((s) => row(s, burst))];
    for (const chunk of [rows.slice(0, 9), rows.slice(9, 11), rows.slice(11)]) await writeMessages(client, chunk);
    await client.query('ANALYZE iot_messages');
    const seqs = async () => (await recentMessages(client, { deviceId: 'd1', limit: 5 })).map((m) => m.payload.seq);
    assert.equal(await seqs(), [15, 14, 13, 12, 11]);
    // Whether the planner reads the index or sorts a sequential scan.
    await client.query('SET enable_indexscan = off; SET enable_bitmapscan = off');
    assert.equal(await seqs(), [15, 14, 13, 12, 11]);
  } finally {
    await client.end();
    await db.drop();
  }
});

test.run();
