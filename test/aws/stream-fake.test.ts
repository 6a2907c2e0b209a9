import { GetShardIteratorCommand } from '@aws-sdk/client-kinesis';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NotFoundError, type TailOptions, type TailRecord } from '../../src/ports.js';
import { AwsClients } from '../../src/targets/aws/sdk.js';
import { AwsStreams, nextShardCount, type AwsStreamsOptions } from '../../src/targets/aws/stream.js';
import { UserError } from '../../src/ui/errors.js';
import { useEnv } from '../helpers/moto.js';
import { FakeKinesis } from './fake-kinesis.js';

/**
 * The stream tail under AWS's rules that moto cannot play: child shards after a reshard, throttling,
 * expired iterators and the 5 GetRecords/s/shard limit (see fake-kinesis.ts for the fake's rules).
 */

const restoreEnv = useEnv({ AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' });
let fake: FakeKinesis | undefined;
let aws: AwsClients | undefined;

test.after.each(() => {
  fake?.restore();
  aws?.destroy();
  fake = aws = undefined;
});
test.after(() => restoreEnv());

function setup(shards: number, fakeOpts: ConstructorParameters<typeof FakeKinesis>[2] = {}, opts: AwsStreamsOptions = {}) {
  fake = new FakeKinesis('s', shards, fakeOpts);
  aws = new AwsClients({});
  return { fake, streams: new AwsStreams(aws, { idlePollMs: 200, backoffBaseMs: 100, backoffCapMs: 800, waitPollMs: 40, ...opts }) };
}

function follow(streams: AwsStreams, opts: Omit<TailOptions, 'signal'>) {
  const abort = new AbortController();
  const it = streams.tail('s', { ...opts, signal: abort.signal })[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<TailRecord>> | undefined;
  return {
    async take(n: number, ms = 5000): Promise<TailRecord[]> {
      const got: TailRecord[] = [];
      const deadline = Date.now() + ms;
      while (got.length < n) {
        pending ??= it.next();
        const r = await Promise.race([pending, new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), Math.max(0, deadline - Date.now())))]);
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

type Doc = { n: number; key: string };
const doc = (r: TailRecord) => r.data as Doc;
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const keyOf = (n: number) => `sensor-${n % 8}`;

/** Per partition key, records must come out in the order they were put (n rises). */
function assertKeyOrder(records: TailRecord[]) {
  const last = new Map<string, number>();
  for (const r of records) {
    const { n } = doc(r);
    assert.ok((last.get(r.partitionKey) ?? -1) < n, `key ${r.partitionKey}: ${n} after ${last.get(r.partitionKey)}`);
    last.set(r.partitionKey, n);
  }
}

test('after a reshard, children are read from their start once their parent is drained: each record once, in order per key', async () => {
  // 5 records per GetRecords: draining a parent takes several polls, so a child started early would overtake it.
  const { fake, streams } = setup(2, { maxPerCall: 5, pageSize: 3 });
  let n = 0;
  const putN = (count: number) => range(0, count).map(() => fake.put(keyOf(n), { n: n++, key: keyOf(n - 1) }));
  putN(30);
  const children = [...fake.split('shardId-000000000000'), ...fake.split('shardId-000000000001')];
  const inChildren = putN(30);
  assert.ok(inChildren.every((r) => children.includes(r.shardId)));

  const t = follow(streams, { from: { kind: 'trim-horizon' } });
  try {
    const got = await t.take(60);
    assert.equal(sorted(got.map((r) => doc(r).n)), range(0, 60));
    assertKeyOrder(got);
    assert.ok(got.filter((r) => doc(r).n >= 30).every((r) => children.includes(r.shardId)));
    // Each child's first read comes after its parent's last.
    for (const shard of fake.shards.filter((s) => s.parents.length)) {
      const firstChild = fake.calls.find((c) => c.shardId === shard.id)!.at;
      const lastParent = fake.calls.filter((c) => c.shardId === shard.parents[0]).at(-1)!.at;
      assert.ok(firstChild >= lastParent, shard.id);
    }

    // A live reshard of a child: its children (grandchildren of the roots) follow.
    const grandchildren = fake.split(children[0]!);
    putN(40);
    const more = await t.take(40);
    assert.equal(sorted(more.map((r) => doc(r).n)), range(60, 100));
    assertKeyOrder([...got, ...more]);
    assert.ok(more.some((r) => grandchildren.includes(r.shardId)));
    assert.is((await t.take(1, 500)).length, 0, 'nothing twice');
  } finally {
    await t.close();
  }
});

test('after a merge, the child waits for both parents', async () => {
  const { fake, streams } = setup(2, { maxPerCall: 3 });
  let n = 0;
  // Uneven parents: one drains long before the other.
  for (const _ of range(0, 40)) fake.put(keyOf(n % 2 ? n : 0), { n: n++ });
  const child = fake.merge('shardId-000000000000', 'shardId-000000000001');
  for (const _ of range(0, 20)) fake.put(keyOf(n), { n: n++ });
  const t = follow(streams, { from: { kind: 'trim-horizon' } });
  try {
    const got = await t.take(60, 10_000);
    assert.equal(sorted(got.map((r) => doc(r).n)), range(0, 60));
    assertKeyOrder(got);
  } finally {
    await t.close();
  }
  const firstChild = fake.calls.find((c) => c.shardId === child)!.at;
  for (const parent of ['shardId-000000000000', 'shardId-000000000001']) assert.ok(firstChild >= fake.calls.filter((c) => c.shardId === parent).at(-1)!.at, parent);
});

test('a merge of shards born after the tail started also waits for both parents', async () => {
  const { fake, streams } = setup(2, { maxPerCall: 2 });
  const t = follow(streams, { from: { kind: 'latest' } });
  try {
    assert.is((await t.take(1, 600)).length, 0);
    let n = 0;
    const [, c3] = fake.split('shardId-000000000000');
    const [c4] = fake.split('shardId-000000000001');
    for (const _ of range(0, 60)) fake.put(keyOf(n), { n: n++ });
    const m = fake.merge(c3!, c4!);
    for (const _ of range(0, 30)) fake.put(keyOf(n), { n: n++ });
    const got = await t.take(90, 15_000);
    assert.equal(sorted(got.map((r) => doc(r).n)), range(0, 90));
    assertKeyOrder(got);
    const firstChild = fake.calls.find((c) => c.shardId === m)!.at;
    for (const parent of [c3!, c4!]) assert.ok(firstChild >= fake.calls.filter((c) => c.shardId === parent).at(-1)!.at, parent);
  } finally {
    await t.close();
  }
});

test('a tail whose signal is already aborted ends at once, without records or errors', async () => {
  const { fake, streams } = setup(2);
  fake.put('k', { n: 1 });
  const got: TailRecord[] = [];
  for await (const r of streams.tail('s', { from: { kind: 'trim-horizon' }, signal: AbortSignal.abort() })) got.push(r);
  assert.is(got.length, 0);
});

test('a stream deleted under a running tail ends it with NotFoundError', async () => {
  const { fake, streams } = setup(2);
  fake.put('k', { n: 1 });
  const t = follow(streams, { from: { kind: 'trim-horizon' } });
  try {
    assert.is((await t.take(1)).length, 1);
    fake.deleted = true;
    await t.take(1, 3000);
    assert.unreachable('the tail went on');
  } catch (e) {
    assert.instance(e, NotFoundError);
  } finally {
    await t.close();
  }
});

test('from latest: open shards start at their tip, and children born later are read from their start', async () => {
  const { fake, streams } = setup(2);
  for (const i of range(0, 10)) fake.put(keyOf(i), { n: -1 - i });
  const t = follow(streams, { from: { kind: 'latest' } });
  try {
    assert.is((await t.take(1, 600)).length, 0);
    let n = 0;
    for (const _ of range(0, 8)) fake.put(keyOf(n), { n: n++ });
    const kids = fake.split('shardId-000000000001');
    for (const _ of range(0, 16)) fake.put(keyOf(n), { n: n++ });
    const got = await t.take(24);
    assert.equal(sorted(got.map((r) => doc(r).n)), range(0, 24));
    assertKeyOrder(got);
    assert.ok(got.some((r) => kids.includes(r.shardId)));
    const childIterators = fake.mock.commandCalls(GetShardIteratorCommand).filter((c) => kids.includes(c.args[0].input.ShardId!));
    assert.equal(
      childIterators.map((c) => c.args[0].input.ShardIteratorType),
      ['TRIM_HORIZON', 'TRIM_HORIZON'],
    );
  } finally {
    await t.close();
  }
});

test('ProvisionedThroughputExceeded: exponential backoff with jitter, capped, and no record lost', async () => {
  const { fake, streams } = setup(1, { maxPerCall: 5 });
  for (const n of range(0, 20)) fake.put(keyOf(n), { n });
  fake.throttle('shardId-000000000000', 6);
  const t = follow(streams, { from: { kind: 'trim-horizon' } });
  try {
    const got = await t.take(20, 8000);
    assert.equal(got.map((r) => doc(r).n), range(0, 20));
  } finally {
    await t.close();
  }
  const calls = fake.calls;
  assert.equal(calls.slice(0, 6).map((c) => c.outcome), Array(6).fill('throttled'));
  assert.is(calls[6]!.outcome, 'ok');
  // The iterator stays good: the retry reuses it.
  assert.ok(calls.slice(0, 7).every((c) => c.iterator === calls[0]!.iterator));
  // Call k+1 waits between half and all of min(800, 100 * 2^(k-1)) ms (never under the 5/s floor); slack for a busy machine.
  for (let k = 1; k <= 6; k++) {
    const gap = calls[k]!.at - calls[k - 1]!.at;
    const ceiling = Math.min(800, 100 * 2 ** (k - 1));
    assert.ok(gap >= Math.max(200, ceiling / 2) - 2 && gap <= Math.max(210, ceiling) + 150, `gap ${k}: ${gap} ms, ceiling ${ceiling}`);
  }
});

test('ExpiredIteratorException: a new iterator after the last sequence number seen on that shard', async () => {
  const { fake, streams } = setup(2);
  const put = range(0, 10).map((n) => fake.put(keyOf(n), { n }));
  const t = follow(streams, { from: { kind: 'trim-horizon' } });
  try {
    assert.equal(sorted((await t.take(10)).map((r) => doc(r).n)), range(0, 10));
    fake.expireIterators();
    for (const n of range(10, 20)) fake.put(keyOf(n), { n });
    const more = await t.take(10);
    assert.equal(sorted(more.map((r) => doc(r).n)), range(10, 20));
    assert.is((await t.take(1, 500)).length, 0, 'nothing twice');
  } finally {
    await t.close();
  }
  assert.ok(fake.calls.some((c) => c.outcome === 'expired'));
  for (const shardId of new Set(put.map((r) => r.shardId))) {
    const lastSeq = put.filter((r) => r.shardId === shardId).at(-1)!.seq;
    const renewals = fake.mock.commandCalls(GetShardIteratorCommand, { ShardId: shardId, ShardIteratorType: 'AFTER_SEQUENCE_NUMBER' });
    assert.equal(renewals.map((c) => c.args[0].input.StartingSequenceNumber), [lastSeq], shardId);
  }
});

test('at most 5 GetRecords per second per shard, even with a backlog', async () => {
  const { fake, streams } = setup(2, { maxPerCall: 10, tps: 5 });
  for (const n of range(0, 1000)) fake.put(`k${n}`, { n });
  const t = follow(streams, { from: { kind: 'trim-horizon' } });
  let got: TailRecord[];
  try {
    got = await t.take(1000, 2500);
  } finally {
    await t.close();
  }
  assert.ok(got.length < 1000, 'the backlog outlasts the window');
  assert.is(fake.calls.filter((c) => c.outcome === 'throttled').length, 0);
  for (const shard of ['shardId-000000000000', 'shardId-000000000001']) {
    const times = fake.calls.filter((c) => c.shardId === shard).map((c) => c.at);
    for (const t0 of times) assert.ok(times.filter((x) => x >= t0 && x < t0 + 1000).length <= 5, `${shard}: more than 5 calls in the second after ${t0}`);
    // And not idling behind a backlog: close to the limit over 2.5 s.
    assert.ok(times.length >= 8, `${shard}: only ${times.length} GetRecords in 2.5 s`);
  }
  assert.is(new Set(got.map((r) => doc(r).n)).size, got.length);
});

test('from a sequence number: its shard from that record on, the other shards from its arrival time', async () => {
  const { fake, streams } = setup(2);
  const put = [];
  for (const n of range(0, 12)) {
    put.push(fake.put(keyOf(n), { n }));
    await new Promise((r) => setTimeout(r, 15));
  }
  const from = put[5]!;
  const t = follow(streams, { from: { kind: 'sequence', sequenceNumber: from.seq } });
  try {
    const got = await t.take(7);
    assert.equal(sorted(got.map((r) => doc(r).n)), range(5, 12));
    assert.is((await t.take(1, 500)).length, 0);
  } finally {
    await t.close();
  }
  const bad = follow(streams, { from: { kind: 'sequence', sequenceNumber: '12345' } });
  try {
    await bad.take(1);
    assert.unreachable('an unknown sequence number');
  } catch (e) {
    assert.instance(e, UserError);
    assert.match((e as Error).message, /12345 is not in stream "s"/);
  } finally {
    await bad.close();
  }
});

test('ensure waits while the stream is UPDATING, and gives up after its bound with a clear error', async () => {
  const { fake, streams } = setup(2);
  fake.busy = { status: 'UPDATING', times: 3 };
  assert.is(await streams.ensure({ name: 's', shards: 2, retentionHours: 24 }), 'unchanged');
  assert.is(fake.busy.times, 0);

  const impatient = new AwsStreams(aws!, { waitTimeoutMs: 300, waitPollMs: 40 });
  fake.busy = { status: 'UPDATING', times: 1_000 };
  const t0 = Date.now();
  try {
    await impatient.ensure({ name: 's', shards: 2, retentionHours: 24 });
    assert.unreachable('a stream that never becomes ACTIVE');
  } catch (e) {
    assert.instance(e, UserError);
    assert.is((e as UserError).code, 'STREAM_NOT_ACTIVE');
    assert.match((e as Error).message, /still UPDATING/);
  }
  assert.ok(Date.now() - t0 < 1000);
});

test('resharding steps: at most double or half per UpdateShardCount', () => {
  const path = (open: number, target: number) => {
    const steps = [];
    while (open !== target) steps.push((open = nextShardCount(open, target)));
    return steps;
  };
  assert.equal(path(1, 5), [2, 4, 5]);
  assert.equal(path(8, 1), [4, 2, 1]);
  assert.equal(path(3, 4), [4]);
  assert.equal(path(5, 3), [3]);
  assert.equal(path(2, 2), []);
});

test.run();
