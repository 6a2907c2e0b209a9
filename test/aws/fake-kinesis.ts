import {
  AddTagsToStreamCommand,
  DescribeStreamSummaryCommand,
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  InvalidArgumentException,
  KinesisClient,
  ListShardsCommand,
  ListTagsForStreamCommand,
  ProvisionedThroughputExceededException,
  ResourceNotFoundException,
  type GetRecordsOutput,
  type Shard,
} from '@aws-sdk/client-kinesis';
import { mockClient } from 'aws-sdk-client-mock';
import { createHash } from 'node:crypto';

/**
 * A stateful fake of the Kinesis data plane, at the SDK boundary (aws-sdk-client-mock), for what moto 5.2
 * cannot do. Its rules are AWS's, as documented for GetRecords and resharding:
 *
 * - A record goes to the OPEN shard whose hash key range holds the MD5 of its partition key. Sequence numbers
 *   rise across the stream (so they also rise per shard).
 * - `split(shard)` closes the shard (it keeps its records) and opens two children that halve its range;
 *   `merge(a, b)` closes two adjacent shards and opens one child with both as parents.
 * - GetRecords on a closed shard, once its last record is returned, answers no NextShardIterator and lists
 *   ChildShards (moto keeps answering an iterator and writes new records to the parent).
 * - More than 5 GetRecords on one shard within any second fails with ProvisionedThroughputExceededException;
 *   `throttle(shard, n)` makes the next n calls fail that way too.
 * - `expireIterators()` expires every iterator issued so far (AWS: after 5 minutes): ExpiredIteratorException.
 * - AT_SEQUENCE_NUMBER/AFTER_SEQUENCE_NUMBER with a sequence number of another shard: InvalidArgumentException.
 * - ListShards pages `pageSize` shards at a time; a NextToken call must not name the stream.
 * - `maxPerCall` caps the records a GetRecords returns, so a backlog takes several calls.
 */

interface FakeRecord {
  seq: string;
  key: string;
  data: Buffer;
  at: Date;
}

interface FakeShard {
  id: string;
  parents: string[];
  start: bigint;
  end: bigint;
  records: FakeRecord[];
  closed: boolean;
}

interface FakeIterator {
  shardId: string;
  /** Index of the next record to return. */
  pos: number;
  expired: boolean;
}

export interface GetRecordsCall {
  shardId: string;
  at: number;
  iterator: string;
  outcome: 'ok' | 'throttled' | 'expired';
  records: number;
}

const SPACE = 1n << 128n;
const fail = (E: new (o: { message: string; $metadata: object }) => Error, message: string) => new E({ message, $metadata: {} });

export class FakeKinesis {
  readonly mock = mockClient(KinesisClient);
  readonly shards: FakeShard[] = [];
  readonly calls: GetRecordsCall[] = [];
  /** DescribeStreamSummary answers this status this many times before ACTIVE. */
  busy = { status: 'CREATING', times: 0 };
  private seq = 49_000_000_000_000_000_000n;
  private iterators = new Map<string, FakeIterator>();
  private nextIterator = 0;
  private throttles = new Map<string, number>();
  /** Every call fails with ResourceNotFoundException, as after DeleteStream. */
  deleted = false;
  /** The stream's tags: by default the ones AwsStreams (project `iotctl`, default stage) writes. */
  tags: Record<string, string> = { 'iotctl:managed': 'true', 'iotctl:project': 'iotctl', 'iotctl:stage': 'default' };

  constructor(
    readonly stream: string,
    shards: number,
    readonly opts: { maxPerCall?: number; pageSize?: number; tps?: number } = {},
  ) {
    const step = SPACE / BigInt(shards);
    for (let i = 0; i < shards; i++) this.addShard([], BigInt(i) * step, i === shards - 1 ? SPACE - 1n : BigInt(i + 1) * step - 1n);
    this.mock.on(ListShardsCommand).callsFake((input) => this.listShards(input));
    this.mock.on(GetShardIteratorCommand).callsFake((input) => this.getShardIterator(input));
    this.mock.on(GetRecordsCommand).callsFake((input) => this.getRecords(input));
    this.mock.on(DescribeStreamSummaryCommand).callsFake((input) => this.describeSummary(input));
    this.mock.on(ListTagsForStreamCommand).callsFake(() => {
      if (this.deleted) throw fail(ResourceNotFoundException, `Stream ${this.stream} not found`);
      return { Tags: Object.entries(this.tags).map(([Key, Value]) => ({ Key, Value })), HasMoreTags: false };
    });
    this.mock.on(AddTagsToStreamCommand).callsFake((input: { Tags?: Record<string, string> }) => {
      Object.assign(this.tags, input.Tags ?? {});
      return {};
    });
  }

  restore(): void {
    this.mock.restore();
  }

  put(key: string, data: unknown): FakeRecord & { shardId: string } {
    const hash = BigInt('0x' + createHash('md5').update(key).digest('hex'));
    const shard = this.shards.find((s) => !s.closed && s.start <= hash && hash <= s.end)!;
    const record = { seq: String(++this.seq), key, data: Buffer.from(JSON.stringify(data)), at: new Date() };
    shard.records.push(record);
    return { ...record, shardId: shard.id };
  }

  split(shardId: string): [string, string] {
    const parent = this.shard(shardId);
    parent.closed = true;
    const mid = (parent.start + parent.end) / 2n;
    return [this.addShard([shardId], parent.start, mid).id, this.addShard([shardId], mid + 1n, parent.end).id];
  }

  /** Closes two adjacent shards; one child takes their joint range. */
  merge(a: string, b: string): string {
    const [x, y] = [this.shard(a), this.shard(b)].sort((p, q) => (p.start < q.start ? -1 : 1));
    if (x!.end + 1n !== y!.start) throw fail(InvalidArgumentException, `${a} and ${b} are not adjacent`);
    x!.closed = y!.closed = true;
    return this.addShard([a, b], x!.start, y!.end).id;
  }

  throttle(shardId: string, times: number): void {
    this.throttles.set(shardId, times);
  }

  expireIterators(): void {
    for (const it of this.iterators.values()) it.expired = true;
  }

  private addShard(parents: string[], start: bigint, end: bigint): FakeShard {
    const shard = { id: `shardId-${String(this.shards.length).padStart(12, '0')}`, parents, start, end, records: [], closed: false };
    this.shards.push(shard);
    return shard;
  }

  private shard(id: string): FakeShard {
    const s = this.shards.find((x) => x.id === id);
    if (!s) throw fail(ResourceNotFoundException, `Shard ${id} in stream ${this.stream} does not exist`);
    return s;
  }

  private checkStream(name: string | undefined): void {
    if (name !== this.stream || this.deleted) throw fail(ResourceNotFoundException, `Stream ${name} not found`);
  }

  private describeSummary(input: { StreamName?: string }) {
    this.checkStream(input.StreamName);
    const status = this.busy.times > 0 ? (this.busy.times--, this.busy.status) : 'ACTIVE';
    return {
      StreamDescriptionSummary: {
        StreamName: this.stream,
        StreamARN: `arn:aws:kinesis:us-east-1:123456789012:stream/${this.stream}`,
        StreamStatus: status,
        StreamModeDetails: { StreamMode: 'PROVISIONED' },
        RetentionPeriodHours: 24,
        StreamCreationTimestamp: new Date(0),
        OpenShardCount: this.shards.filter((s) => !s.closed).length,
        EnhancedMonitoring: [],
      },
    };
  }

  private listShards(input: { StreamName?: string; NextToken?: string }) {
    if (input.NextToken && input.StreamName) throw fail(InvalidArgumentException, 'NextToken and StreamName cannot be provided together.');
    const from = input.NextToken ? Number(input.NextToken) : (this.checkStream(input.StreamName), 0);
    const size = this.opts.pageSize ?? 10_000;
    const page = this.shards.slice(from, from + size).map(
      (s): Shard => ({
        ShardId: s.id,
        ParentShardId: s.parents[0],
        AdjacentParentShardId: s.parents[1],
        HashKeyRange: { StartingHashKey: String(s.start), EndingHashKey: String(s.end) },
        SequenceNumberRange: { StartingSequenceNumber: s.records[0]?.seq ?? String(this.seq), EndingSequenceNumber: s.closed ? (s.records.at(-1)?.seq ?? String(this.seq)) : undefined },
      }),
    );
    return { Shards: page, NextToken: from + size < this.shards.length ? String(from + size) : undefined };
  }

  private getShardIterator(input: { StreamName?: string; ShardId?: string; ShardIteratorType?: string; StartingSequenceNumber?: string; Timestamp?: Date }) {
    this.checkStream(input.StreamName);
    const shard = this.shard(input.ShardId!);
    const bySeq = () => {
      const i = shard.records.findIndex((r) => r.seq === input.StartingSequenceNumber);
      if (i < 0) throw fail(InvalidArgumentException, `StartingSequenceNumber ${input.StartingSequenceNumber} used in GetShardIterator on shard ${shard.id} is invalid because it did not come from this shard.`);
      return i;
    };
    let pos: number;
    switch (input.ShardIteratorType) {
      case 'TRIM_HORIZON':
        pos = 0;
        break;
      case 'LATEST':
        pos = shard.records.length;
        break;
      case 'AT_SEQUENCE_NUMBER':
        pos = bySeq();
        break;
      case 'AFTER_SEQUENCE_NUMBER':
        pos = bySeq() + 1;
        break;
      case 'AT_TIMESTAMP': {
        const i = shard.records.findIndex((r) => r.at.getTime() >= new Date(input.Timestamp!).getTime());
        pos = i < 0 ? shard.records.length : i;
        break;
      }
      default:
        throw fail(InvalidArgumentException, `bad ShardIteratorType ${input.ShardIteratorType}`);
    }
    return { ShardIterator: this.issue(shard.id, pos) };
  }

  private issue(shardId: string, pos: number): string {
    const token = `it-${++this.nextIterator}`;
    this.iterators.set(token, { shardId, pos, expired: false });
    return token;
  }

  private getRecords(input: { ShardIterator?: string; Limit?: number }): GetRecordsOutput {
    if (this.deleted) throw fail(ResourceNotFoundException, `Stream ${this.stream} not found`);
    const it = this.iterators.get(input.ShardIterator!);
    if (!it) throw fail(InvalidArgumentException, `unknown iterator ${input.ShardIterator}`);
    const now = Date.now();
    const call: GetRecordsCall = { shardId: it.shardId, at: now, iterator: input.ShardIterator!, outcome: 'ok', records: 0 };
    const tps = this.opts.tps ?? 5;
    const recent = this.calls.filter((c) => c.shardId === it.shardId && now - c.at < 1000).length;
    const forced = this.throttles.get(it.shardId) ?? 0;
    this.calls.push(call);
    if (forced > 0 || recent >= tps) {
      if (forced > 0) this.throttles.set(it.shardId, forced - 1);
      call.outcome = 'throttled';
      throw fail(ProvisionedThroughputExceededException, 'Rate exceeded for shard');
    }
    if (it.expired) {
      call.outcome = 'expired';
      throw fail(ExpiredIteratorException, 'Iterator expired');
    }
    const shard = this.shard(it.shardId);
    const take = shard.records.slice(it.pos, it.pos + Math.min(input.Limit ?? 10_000, this.opts.maxPerCall ?? 10_000));
    call.records = take.length;
    const pos = it.pos + take.length;
    const atEnd = pos >= shard.records.length;
    const out: GetRecordsOutput = {
      Records: take.map((r) => ({ SequenceNumber: r.seq, PartitionKey: r.key, Data: new Uint8Array(r.data), ApproximateArrivalTimestamp: r.at })),
      MillisBehindLatest: atEnd ? 0 : 1000,
    };
    if (shard.closed && atEnd) {
      out.ChildShards = this.shards
        .filter((s) => s.parents.includes(shard.id))
        .map((s) => ({ ShardId: s.id, ParentShards: s.parents, HashKeyRange: { StartingHashKey: String(s.start), EndingHashKey: String(s.end) } }));
    } else {
      out.NextShardIterator = this.issue(shard.id, pos);
    }
    return out;
  }
}
