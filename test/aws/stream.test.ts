import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NotFoundError, type TailOptions, type TailRecord } from '../../src/ports.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { AwsStreams } from '../../src/targets/aws/stream.js';
import { startMoto, useEnv, type Moto } from '../helpers/moto.js';

/** The stream port on moto_server's Kinesis (a real Kinesis API implementation this project did not write). */

let moto: Moto;
let restore: () => void;
let aws: AwsClients;
let streams: AwsStreams;

test.before(async () => {
  moto = await startMoto();
  restore = useEnv(moto.env);
  aws = new AwsClients({});
  streams = new AwsStreams(aws, { idlePollMs: 200, waitPollMs: 100 });
});

test.after(async () => {
  aws.destroy();
  restore();
  await moto.stop();
});

async function put(stream: string, records: Array<{ key: string; data: unknown }>): Promise<string[]> {
  const { client, sdk } = await aws.get('kinesis');
  const out = await client.send(
    new sdk.PutRecordsCommand({
      StreamName: stream,
      Records: records.map((r) => ({ PartitionKey: r.key, Data: Buffer.from(typeof r.data === 'string' ? r.data : JSON.stringify(r.data)) })),
    }),
  );
  return out.Records!.map((r) => r.ShardId!);
}

/** A running tail that the test pulls from in steps. */
function follow(stream: string, opts: Omit<TailOptions, 'signal'>) {
  const abort = new AbortController();
  const it = streams.tail(stream, { ...opts, signal: abort.signal })[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<TailRecord>> | undefined;
  return {
    abort,
    /** Up to n records, or fewer when `ms` passes first. */
    async take(n: number, ms = 5000): Promise<TailRecord[]> {
      const got: TailRecord[] = [];
      const deadline = Date.now() + ms;
      while (got.length < n) {
        pending ??= it.next();
        const left = deadline - Date.now();
        const r = await Promise.race([pending, new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), Math.max(0, left)))]);
        if (r === 'timeout') break;
        pending = undefined;
        if (r.done) break;
        got.push(r.value);
      }
      return got;
    },
    async close() {
      abort.abort();
      await it.return?.();
    },
  };
}

const ids = (records: TailRecord[]) => records.map((r) => (r.data as { n: number }).n).sort((a, b) => a - b);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

test('ensure creates a provisioned stream, then changes retention and shard count in place', async () => {
  assert.is(await streams.ensure({ name: 'telemetry', shards: 2, retentionHours: 48 }), 'created');
  let d = await streams.describe('telemetry');
  assert.is(d.status, 'ACTIVE');
  assert.is(d.mode, 'provisioned');
  assert.is(d.shards, 2);
  assert.is(d.retentionHours, 48);
  assert.is(d.shardList.length, 2);
  assert.ok(d.shardList.every((s) => s.open && s.sequenceNumberRange.endingSequenceNumber === null));
  assert.match(d.arn, /^arn:aws:kinesis:us-east-1:123456789012:stream\/telemetry$/);

  assert.is(await streams.ensure({ name: 'telemetry', shards: 2, retentionHours: 48 }), 'unchanged');
  assert.is(await streams.ensure({ name: 'telemetry', shards: 2, retentionHours: 24 }), 'updated');
  assert.is((await streams.describe('telemetry')).retentionHours, 24);
  assert.is(await streams.ensure({ name: 'telemetry', shards: 2, retentionHours: 168 }), 'updated');
  assert.is((await streams.describe('telemetry')).retentionHours, 168);

  assert.is(await streams.ensure({ name: 'telemetry', shards: 4, retentionHours: 168 }), 'updated');
  d = await streams.describe('telemetry');
  assert.is(d.shards, 4);
  const closed = d.shardList.filter((s) => !s.open);
  const open = d.shardList.filter((s) => s.open);
  assert.equal(closed.map((s) => s.shardId), ['shardId-000000000000', 'shardId-000000000001']);
  assert.ok(closed.every((s) => s.sequenceNumberRange.endingSequenceNumber !== null));
  assert.is(open.length, 4);
  // Each parent split into two children that cover its hash range.
  for (const parent of closed) {
    const kids = open.filter((s) => s.parentShardId === parent.shardId);
    assert.is(kids.length, 2, parent.shardId);
    assert.is(kids[0]!.hashKeyRange.startingHashKey, parent.hashKeyRange.startingHashKey);
    assert.is(kids[1]!.hashKeyRange.endingHashKey, parent.hashKeyRange.endingHashKey);
  }
  assert.is(await streams.ensure({ name: 'telemetry', shards: 4, retentionHours: 168 }), 'unchanged');
});

test('ensure: on-demand streams, and switching mode in place', async () => {
  assert.is(await streams.ensure({ name: 'od', shards: 1, retentionHours: 24, mode: 'on-demand' }), 'created');
  assert.is((await streams.describe('od')).mode, 'on-demand');
  // The shard count is AWS's business in on-demand mode.
  assert.is(await streams.ensure({ name: 'od', shards: 9, retentionHours: 24, mode: 'on-demand' }), 'unchanged');
  assert.is(await streams.ensure({ name: 'od', shards: 2, retentionHours: 24, mode: 'provisioned' }), 'updated');
  const d = await streams.describe('od');
  assert.is(d.mode, 'provisioned');
  assert.is(d.shards, 2);
  // 2 -> 5 takes two UpdateShardCount calls (2 -> 4 -> 5).
  assert.is(await streams.ensure({ name: 'od', shards: 5, retentionHours: 24, mode: 'provisioned' }), 'updated');
  assert.is((await streams.describe('od')).shards, 5);
  assert.is((await streams.describe('od')).shardList.filter((s) => s.open).length, 5);
});

test('list, describe and delete; a missing stream is NotFoundError', async () => {
  await streams.ensure({ name: 'to-delete', shards: 1, retentionHours: 24 });
  const names = (await streams.list()).map((s) => s.name);
  assert.ok(names.includes('to-delete') && names.includes('telemetry'), names.join());
  assert.equal(names, [...names].sort());
  const one = (await streams.list()).find((s) => s.name === 'to-delete')!;
  assert.is(one.shards, 1);
  assert.ok(!Number.isNaN(Date.parse(one.createdAt)));

  assert.is(await streams.delete('to-delete'), true);
  assert.is(await streams.delete('to-delete'), false);
  assert.not.ok((await streams.list()).some((s) => s.name === 'to-delete'));
  try {
    await streams.describe('to-delete');
    assert.unreachable('describe of a deleted stream');
  } catch (e) {
    assert.instance(e, NotFoundError);
    assert.is((e as NotFoundError).resource, 'to-delete');
  }
  const t = follow('to-delete', { from: { kind: 'trim-horizon' } });
  try {
    await t.take(1, 2000);
    assert.unreachable('tail of a missing stream');
  } catch (e) {
    assert.instance(e, NotFoundError);
  } finally {
    await t.close();
  }
});

test('tail from trim-horizon: every record of both shards exactly once, and on across a reshard', async () => {
  await streams.ensure({ name: 'tail2', shards: 2, retentionHours: 24 });
  const shardsUsed = await put('tail2', range(0, 40).map((n) => ({ key: `sensor-${n % 10}`, data: { n, device_id: `sensor-${n % 10}` } })));
  assert.is(new Set(shardsUsed).size, 2, 'the keys spread over both shards');

  const t = follow('tail2', { from: { kind: 'trim-horizon' } });
  try {
    const first = await t.take(40);
    assert.equal(ids(first), range(0, 40));
    assert.is(new Set(first.map((r) => `${r.shardId}/${r.sequenceNumber}`)).size, 40);
    assert.equal(new Set(first.map((r) => r.shardId)), new Set(shardsUsed));
    const r0 = first.find((r) => (r.data as { n: number }).n === 0)!;
    assert.is(r0.partitionKey, 'sensor-0');
    assert.is(r0.json, true);
    assert.is(r0.stream, 'tail2');
    assert.ok(Math.abs(Date.parse(r0.approximateArrivalTimestamp) - Date.now()) < 60_000);

    // Per shard, sequence numbers rise (one reader per shard, in order).
    for (const shard of new Set(shardsUsed)) {
      const seqs = first.filter((r) => r.shardId === shard).map((r) => BigInt(r.sequenceNumber));
      assert.equal(seqs, [...seqs].sort((a, b) => (a < b ? -1 : 1)));
    }

    assert.is(await streams.ensure({ name: 'tail2', shards: 4, retentionHours: 24 }), 'updated');
    await put('tail2', range(40, 60).map((n) => ({ key: `sensor-${n % 10}`, data: { n } })));
    // moto 5.2 keeps writing to the closed parents after UpdateShardCount (AWS writes to the children and
    // ends the parents with ChildShards); child following under AWS's rules is in stream-fake.test.ts.
    const second = await t.take(20);
    assert.equal(ids(second), range(40, 60));
    assert.is((await t.take(1, 600)).length, 0, 'nothing twice');
  } finally {
    await t.close();
  }

  // A new tail after the reshard starts at the roots of the lineage: still every record once.
  const again = follow('tail2', { from: { kind: 'trim-horizon' } });
  try {
    const all = await again.take(60);
    assert.equal(ids(all), range(0, 60));
    assert.is((await again.take(1, 600)).length, 0);
  } finally {
    await again.close();
  }
});

test('tail filters: device (key or device_id), partition key, where; payloads that are not JSON come as base64', async () => {
  await streams.ensure({ name: 'filters', shards: 2, retentionHours: 24 });
  await put('filters', [
    { key: 'sensor-1', data: { n: 1, temperature: 20 } },
    { key: 'gateway-9', data: { n: 2, device_id: 'sensor-1', temperature: 35 } },
    { key: 'sensor-2', data: { n: 3, device_id: 'sensor-2', temperature: 40 } },
    { key: 'sensor-3', data: 'plain text, not json' },
  ]);
  const run = async (opts: Omit<TailOptions, 'signal'>, n: number): Promise<TailRecord[]> => {
    const t = follow('filters', opts);
    try {
      const got = await t.take(n, 3000);
      const extra = await t.take(1, 500);
      assert.is(extra.length, 0, `no more than expected: ${JSON.stringify(extra)} after ${JSON.stringify(got)}`);
      return got;
    } finally {
      await t.close();
    }
  };
  const from = { kind: 'trim-horizon' } as const;
  assert.equal(ids(await run({ from, filter: { device: 'sensor-1' } }, 2)), [1, 2]);
  assert.equal(ids(await run({ from, filter: { partitionKey: 'sensor-1' } }, 1)), [1]);
  const where = (doc: unknown) => typeof doc === 'object' && doc !== null && (doc as { temperature?: number }).temperature! > 30;
  assert.equal(ids(await run({ from, filter: { where } }, 2)), [2, 3]);
  const raw = await run({ from, filter: { partitionKey: 'sensor-3' } }, 1);
  assert.is(raw[0]!.json, false);
  assert.is(Buffer.from(raw[0]!.data as string, 'base64').toString(), 'plain text, not json');
  // `where` sees the raw bytes of a payload that is not JSON.
  let seen: unknown;
  await run({ from, filter: { partitionKey: 'sensor-3', where: (doc) => ((seen = doc), true) } }, 1);
  assert.ok(Buffer.isBuffer(seen));
});

test('tail from latest sees only records put after it started; from a timestamp, those after it', async () => {
  await streams.ensure({ name: 'latest', shards: 2, retentionHours: 24 });
  await put('latest', range(0, 10).map((n) => ({ key: `k${n}`, data: { n } })));
  const t = follow('latest', { from: { kind: 'latest' } });
  try {
    assert.is((await t.take(1, 800)).length, 0);
    await put('latest', range(10, 16).map((n) => ({ key: `k${n}`, data: { n } })));
    assert.equal(ids(await t.take(6)), range(10, 16));
  } finally {
    await t.close();
  }

  await new Promise((r) => setTimeout(r, 1100));
  const at = Date.now();
  await new Promise((r) => setTimeout(r, 50));
  await put('latest', range(16, 20).map((n) => ({ key: `k${n}`, data: { n } })));
  const ts = follow('latest', { from: { kind: 'timestamp', at } });
  try {
    assert.equal(ids(await ts.take(4)), range(16, 20));
    assert.is((await ts.take(1, 500)).length, 0);
  } finally {
    await ts.close();
  }
});

test('tail from latest calls onStarted once every open shard has its LATEST iterator, so a record put then is seen (iotctl check)', async () => {
  await streams.ensure({ name: 'started', shards: 3, retentionHours: 24 });
  const { client } = await aws.get('kinesis');
  const c = client as unknown as { send: (cmd: { constructor: { name: string } }, o?: unknown) => Promise<unknown> };
  const send = c.send.bind(c);
  let iterators = 0;
  c.send = (cmd, o) => (cmd.constructor.name === 'GetShardIteratorCommand' ? send(cmd, o).then((r) => (iterators++, r)) : send(cmd, o));
  let atStart = -1;
  let started!: () => void;
  const ready = new Promise<void>((r) => (started = r));
  const t = follow('started', { from: { kind: 'latest' }, onStarted: () => ((atStart = iterators), started()) });
  try {
    const first = t.take(1, 5000);
    await Promise.race([ready, new Promise((_, reject) => setTimeout(() => reject(new Error('onStarted was never called')), 5000))]);
    assert.is(atStart, 3, 'every shard had its iterator before onStarted');
    await put('started', [{ key: 'canary', data: { n: 42 } }]);
    assert.equal(ids(await first), [42]);
  } finally {
    c.send = send;
    await t.close();
  }
});

test('tail stops promptly when the signal aborts, also while its readers wait between polls', async () => {
  await streams.ensure({ name: 'abort', shards: 2, retentionHours: 24 });
  const slow = new AwsStreams(aws, { idlePollMs: 10_000 });
  const abort = new AbortController();
  const got: TailRecord[] = [];
  const run = (async () => {
    for await (const r of slow.tail('abort', { from: { kind: 'trim-horizon' }, signal: abort.signal })) got.push(r);
  })();
  await new Promise((r) => setTimeout(r, 700)); // both readers are now sleeping their 10 s idle gap
  const t0 = Date.now();
  abort.abort();
  await run;
  const ms = Date.now() - t0;
  assert.ok(ms < 300, `stopped after ${ms} ms`);
  assert.is(got.length, 0);
});

test.run();
