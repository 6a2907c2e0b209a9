import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Db } from '../../../src/targets/local/store.js';
import {
  LocalStreams,
  hashKeyRanges,
  ExpiredIteratorError,
  StreamArgumentError,
  StreamNotFoundError,
  desiredStreamResources,
  actualStreamResources,
} from '../../../src/targets/local/stream.js';
import { DestinationNotFoundError } from '../../../src/targets/local/sinks.js';
import { planResources } from '../../../src/iot/plan/index.js';

const dirs: string[] = [];
function fresh(clock?: () => number): { db: Db; streams: LocalStreams; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'iotctl-stream-'));
  dirs.push(dir);
  const db = openStore(dir);
  return { db, streams: new LocalStreams(db, { clock, region: 'eu-west-1' }), dir };
}
test.after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const enc = (s: string) => Buffer.from(s);
const isA = (cls: abstract new (...a: never[]) => Error) => (e: unknown) => e instanceof cls;
const text = (b: Buffer) => b.toString('utf8');

test('hash key ranges split the 128-bit space evenly, as CreateStream does', () => {
  // The values AWS shows for 3- and 4-shard streams.
  assert.equal(
    hashKeyRanges(3).map((r) => [r.start.toString(), r.end.toString()]),
    [
      ['0', '113427455640312821154458202477256070484'],
      ['113427455640312821154458202477256070485', '226854911280625642308916404954512140969'],
      ['226854911280625642308916404954512140970', '340282366920938463463374607431768211455'],
    ],
  );
  assert.equal(hashKeyRanges(4)[1]!.start.toString(), '85070591730234615865843651857942052864');
  assert.equal(hashKeyRanges(4)[3]!.end.toString(), '340282366920938463463374607431768211455');
});

test('the MD5 of the partition key picks the shard whose hash key range holds it', () => {
  const { streams } = fresh();
  streams.ensureStream({ name: 'telemetry', shards: 4, retentionHours: 24 });
  // md5('a') = 0cc175b9..., md5('b') = 92eb5ffe..., md5('c') = 4a8a08f0..., md5('e') = e1671797...: the first byte
  // alone places each in a quarter of the space: [00-3f] [40-7f] [80-bf] [c0-ff].
  const expected: Record<string, string> = { a: 'shardId-000000000000', c: 'shardId-000000000001', b: 'shardId-000000000002', d: 'shardId-000000000002', e: 'shardId-000000000003' };
  for (const [key, shardId] of Object.entries(expected)) assert.is(streams.putRecord('telemetry', enc(key), key).shardId, shardId, key);
  // And the described ranges hold each key's hash (decimal strings compared as big integers).
  const md5: Record<string, bigint> = { a: 0x0cc175b9c0f1b6a831c399e269772661n, b: 0x92eb5ffee6ae2fec3ad71c777531578fn, e: 0xe1671797c52e15f763380b45e841ec32n };
  const shards = streams.describeStream('telemetry').shardList;
  for (const [key, hash] of Object.entries(md5)) {
    const s = shards.find((x) => x.shardId === expected[key]!)!;
    assert.ok(BigInt(s.hashKeyRange.startingHashKey) <= hash && hash <= BigInt(s.hashKeyRange.endingHashKey), key);
  }
  assert.is(shards[2]!.records, 2);
});

test('sequence numbers are 56-digit decimal strings that rise per shard and sort as text', () => {
  const { streams } = fresh();
  streams.ensureStream({ name: 's', shards: 2, retentionHours: 24 });
  const byShard = new Map<string, string[]>();
  for (let i = 0; i < 200; i++) {
    const r = streams.putRecord('s', enc(`m${i}`), `device-${i % 7}`);
    assert.match(r.sequenceNumber, /^\d{56}$/);
    byShard.set(r.shardId, [...(byShard.get(r.shardId) ?? []), r.sequenceNumber]);
  }
  assert.is(byShard.size, 2);
  for (const seqs of byShard.values()) {
    for (let i = 1; i < seqs.length; i++) {
      assert.ok(BigInt(seqs[i]!) > BigInt(seqs[i - 1]!));
      assert.ok(seqs[i]! > seqs[i - 1]!);
    }
  }
});

test('putRecords and putRecord join an open transaction, so a rollback removes the records', () => {
  const { db, streams } = fresh();
  streams.ensureStream({ name: 's', shards: 1, retentionHours: 24 });
  assert.throws(() =>
    db.transaction(() => {
      streams.putRecord('s', enc('x'), 'k');
      streams.putRecords('s', [{ data: enc('y'), partitionKey: 'k' }]);
      assert.ok(db.inTransaction);
      throw new Error('rules runtime failed');
    })(),
  );
  assert.is(streams.describeStream('s').records, 0);
  assert.is(streams.putRecords('s', [{ data: enc('1'), partitionKey: 'k' }, { data: enc('2'), partitionKey: 'k' }]).length, 2);
  assert.is(streams.describeStream('s').records, 2);
});

test('bad puts: unknown stream, empty or long partition key, oversized record', () => {
  const { streams } = fresh();
  streams.ensureStream({ name: 's', shards: 1, retentionHours: 24 });
  assert.throws(() => streams.putRecord('nope', enc('x'), 'k'), (e: unknown) => e instanceof DestinationNotFoundError && (e as Error).message === 'stream "nope" does not exist');
  assert.throws(() => streams.putRecord('s', enc('x'), ''), isA(StreamArgumentError));
  assert.throws(() => streams.putRecord('s', enc('x'), 'k'.repeat(257)), isA(StreamArgumentError));
  assert.throws(() => streams.putRecord('s', new Uint8Array(1024 * 1024 + 1), 'k'), /at most 1048576 bytes/);
});

test('every iterator type reads from the right position', () => {
  let now = 1_700_000_000_000;
  const { streams } = fresh(() => now);
  streams.ensureStream({ name: 's', shards: 1, retentionHours: 24 });
  const shard = 'shardId-000000000000';
  const seqs: string[] = [];
  for (let i = 0; i < 5; i++) {
    now += 1000;
    seqs.push(streams.putRecord('s', enc(`r${i}`), 'k').sequenceNumber);
  }
  const read = (it: string) => streams.getRecords(it).records.map((r) => text(r.data));
  assert.equal(read(streams.getShardIterator('s', shard, 'TRIM_HORIZON')), ['r0', 'r1', 'r2', 'r3', 'r4']);
  assert.equal(read(streams.getShardIterator('s', shard, 'AT_SEQUENCE_NUMBER', { sequenceNumber: seqs[2] })), ['r2', 'r3', 'r4']);
  assert.equal(read(streams.getShardIterator('s', shard, 'AFTER_SEQUENCE_NUMBER', { sequenceNumber: seqs[2] })), ['r3', 'r4']);
  // r3 arrived at base+4000.
  assert.equal(read(streams.getShardIterator('s', shard, 'AT_TIMESTAMP', { timestamp: new Date(1_700_000_004_000) })), ['r3', 'r4']);
  assert.equal(read(streams.getShardIterator('s', shard, 'AT_TIMESTAMP', { timestamp: 1_700_000_003_500 })), ['r3', 'r4']);
  const future = streams.getShardIterator('s', shard, 'AT_TIMESTAMP', { timestamp: now + 10_000 });
  const latest = streams.getShardIterator('s', shard, 'LATEST');
  assert.equal(read(latest), []);
  now += 1000;
  streams.putRecord('s', enc('r5'), 'k');
  assert.equal(read(latest), ['r5']);
  // A future timestamp skips records that arrive before it.
  assert.equal(read(future), []);
  now += 20_000;
  streams.putRecord('s', enc('r6'), 'k');
  assert.equal(read(future), ['r6']);
});

test('getRecords pages with nextShardIterator and reports MillisBehindLatest', () => {
  let now = 1_000_000;
  const { streams } = fresh(() => now);
  streams.ensureStream({ name: 's', shards: 1, retentionHours: 24 });
  for (let i = 0; i < 7; i++) streams.putRecord('s', enc(String(i)), 'k');
  now += 5000;
  let it = streams.getShardIterator('s', 'shardId-000000000000', 'TRIM_HORIZON');
  const pages: string[][] = [];
  const behind: number[] = [];
  for (let i = 0; i < 4; i++) {
    const res = streams.getRecords(it, 3);
    pages.push(res.records.map((r) => text(r.data)));
    behind.push(res.millisBehindLatest);
    it = res.nextShardIterator;
  }
  assert.equal(pages, [['0', '1', '2'], ['3', '4', '5'], ['6'], []]);
  assert.equal(behind, [5000, 5000, 0, 0]);
  assert.is(streams.getRecords(it).records[0]?.approximateArrivalTimestamp, undefined);
});

test('iterator errors: malformed, expired after 5 minutes, a sequence number of another shard, unknown shard', () => {
  let now = 1_000_000;
  const { streams } = fresh(() => now);
  streams.ensureStream({ name: 's', shards: 2, retentionHours: 24 });
  assert.throws(() => streams.getRecords('not-an-iterator'), isA(StreamArgumentError));
  const it = streams.getShardIterator('s', 'shardId-000000000000', 'TRIM_HORIZON');
  now += 5 * 60_000 + 1;
  assert.throws(() => streams.getRecords(it), isA(ExpiredIteratorError));
  const put = streams.putRecord('s', enc('x'), 'a'); // 'a' hashes to shard 0
  assert.is(put.shardId, 'shardId-000000000000');
  assert.throws(() => streams.getShardIterator('s', 'shardId-000000000001', 'AT_SEQUENCE_NUMBER', { sequenceNumber: put.sequenceNumber }), /does not belong/);
  assert.throws(() => streams.getShardIterator('s', 'shardId-000000000002', 'TRIM_HORIZON'), isA(StreamNotFoundError));
  assert.throws(() => streams.getShardIterator('s', 'shardId-000000000000', 'AT_SEQUENCE_NUMBER'), /needs a StartingSequenceNumber/);
  assert.throws(() => streams.getShardIterator('s', 'shardId-000000000000', 'AT_TIMESTAMP'), /needs a Timestamp/);
});

test('records expire after the retention period: reads skip them, trim deletes them', () => {
  let now = 1_700_000_000_000;
  const { streams } = fresh(() => now);
  streams.ensureStream({ name: 's', shards: 1, retentionHours: 1 });
  streams.putRecord('s', enc('old'), 'k');
  now += 30 * 60_000;
  const newer = streams.putRecord('s', enc('newer'), 'k').sequenceNumber;
  now += 31 * 60_000; // 'old' is 61 minutes old, 'newer' 31
  const it = () => streams.getShardIterator('s', 'shardId-000000000000', 'TRIM_HORIZON');
  assert.equal(streams.getRecords(it()).records.map((r) => text(r.data)), ['newer']);
  assert.is(streams.describeStream('s').records, 1);
  assert.is(streams.trim(), 1);
  assert.is(streams.trim(), 0);
  now += 30 * 60_000;
  assert.equal(streams.getRecords(it()).records, []);
  assert.is(streams.describeStream('s').records, 0);
  // The shard's newest row stays (unreadable) so its sequence numbers keep rising once every record expired.
  assert.is(streams.trim(), 0);
  assert.ok(streams.putRecord('s', enc('again'), 'k').sequenceNumber > newer);
  assert.equal(streams.getRecords(it()).records.map((r) => text(r.data)), ['again']);
  assert.is(streams.trim(), 1);
});

test('ensureStream creates, updates retention, refuses resharding; list, describe and delete', () => {
  const { streams } = fresh();
  assert.is(streams.ensureStream({ name: 's', shards: 2, retentionHours: 24 }), 'created');
  assert.is(streams.ensureStream({ name: 's', shards: 2, retentionHours: 24 }), 'unchanged');
  assert.is(streams.ensureStream({ name: 's', shards: 2, retentionHours: 48 }), 'updated');
  assert.throws(() => streams.ensureStream({ name: 's', shards: 3, retentionHours: 48 }), /resharding/);
  assert.throws(() => streams.ensureStream({ name: 'bad name', shards: 1, retentionHours: 1 }), isA(StreamArgumentError));
  streams.putRecord('s', enc('hello'), 'a');
  const d = streams.describeStream('s');
  assert.is(d.arn, 'arn:aws:kinesis:eu-west-1:000000000000:stream/s');
  assert.is(d.retentionHours, 48);
  assert.equal(
    d.shardList.map((s) => [s.shardId, s.records, s.bytes]),
    [
      ['shardId-000000000000', 1, 5],
      ['shardId-000000000001', 0, 0],
    ],
  );
  assert.equal(streams.listStreams().map((s) => s.name), ['s']);
  const oldSeq = streams.putRecord('s', enc('x'), 'a').sequenceNumber;
  assert.ok(streams.deleteStream('s'));
  assert.not.ok(streams.deleteStream('s'));
  assert.throws(() => streams.describeStream('s'), isA(StreamNotFoundError));
  assert.throws(() => streams.putRecord('s', enc('x'), 'a'), isA(StreamNotFoundError));
  // A stream created again under the same name is a new stream: old sequence numbers are foreign to it.
  streams.ensureStream({ name: 's', shards: 2, retentionHours: 1 });
  assert.is(streams.describeStream('s').records, 0);
  assert.throws(() => streams.getShardIterator('s', 'shardId-000000000000', 'AFTER_SEQUENCE_NUMBER', { sequenceNumber: oldSeq }), /earlier stream of that name/);
});

test('plan resources: desired streams from the spec against the local ones', () => {
  const { streams } = fresh();
  streams.ensureStream({ name: 'a', shards: 1, retentionHours: 24 });
  streams.ensureStream({ name: 'old', shards: 1, retentionHours: 24 });
  const plan = planResources(
    desiredStreamResources({ streams: [{ name: 'a', shards: 2, retentionHours: 24 }, { name: 'b', shards: 1, retentionHours: 24 }] }),
    actualStreamResources(streams.listStreams()),
    { prune: true },
  );
  assert.equal(
    plan.map((p) => [p.action, p.name, p.changes.map((c) => c.path).join(',')]),
    [
      ['replace', 'a', 'shards'],
      ['create', 'b', ''],
      ['delete', 'old', ''],
    ],
  );
});

test('another process writes while this one reads every record, in order (WAL)', async () => {
  const { streams, dir } = fresh();
  streams.ensureStream({ name: 's', shards: 2, retentionHours: 24 });
  const total = 3000;
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'writer-process.ts'), dir, 's', String(total)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
  const iterators = new Map(streams.listShards('s').map((id) => [id, streams.getShardIterator('s', id, 'TRIM_HORIZON')]));
  const seen: number[] = [];
  const deadline = Date.now() + 30_000;
  let sawPartial = false;
  while (seen.length < total && Date.now() < deadline) {
    for (const [id, it] of iterators) {
      const res = streams.getRecords(it, 500);
      iterators.set(id, res.nextShardIterator);
      for (const r of res.records) seen.push(Number(text(r.data)));
    }
    if (seen.length > 0 && seen.length < total) sawPartial = true;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.is(await exited, 0, stderr);
  assert.is(seen.length, total);
  assert.ok(sawPartial, 'the reader saw records while the writer was still writing');
  assert.equal([...seen].sort((a, b) => a - b), Array.from({ length: total }, (_, i) => i));
});

test.run();
